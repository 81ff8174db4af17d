"""Where the step loop runs: one module decides, so adding a backend is a contained change.

* ``"python"`` loops over the readable ``cell.forward``/``cell.call``: the
  specification, and the fallback for any cell.
* ``"numba"`` and ``"cuda"`` run fused kernels for the built-in cells when
  those are available (see :data:`KERNELS`).
* ``"auto"`` picks the fastest available backend for the cell.
"""

import importlib

import numpy as np

from . import nest

BACKENDS = ("auto", "python", "numba", "cuda")

#: (backend name, cell class) -> module path of the kernel module for that cell.
#: Kernel modules are imported only when first used, so ``import rnnlab`` never
#: imports numba or compiles anything.
KERNELS = {}


def check_name(backend):
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    return backend


def register_kernel(backend, cell_class, module_path):
    """Declare that ``module_path`` runs ``cell_class`` on ``backend``.

    A kernel module provides:

    * ``unsupported(cell) -> str | None``: why this cell's configuration has no
      kernel (for example an activation the kernel does not implement), or None;
    * ``scan(layer, sequence_run, record) -> (outputs, final_states[, record])``
      like :func:`python_scan`; its record has ``stacked_states()`` and ``gates(cell)``;
    * ``backward(tape, d_outputs, d_final, truncate, per_step) -> bptt.Gradients``
      with ``inputs`` as (T, B, F) in processing order.
    """
    KERNELS[(backend, cell_class)] = module_path


def kernel_for(backend, cell):
    """The kernel module of ``backend`` for ``cell`` (imported on first use)."""
    return importlib.import_module(KERNELS[(backend, type(cell))])


def why_unavailable(backend, cell):
    """None when ``backend`` can run ``cell``, else the reason."""
    if backend == "python":
        return None
    if (backend, type(cell)) not in KERNELS:
        return f"backend {backend!r} has no kernel for {type(cell).__name__}"
    return kernel_for(backend, cell).unsupported(cell)


def resolve(backend, cell):
    """The concrete backend for ``cell``: ``"auto"`` prefers numba, then python."""
    if backend == "auto":
        return "numba" if why_unavailable("numba", cell) is None else "python"
    reason = why_unavailable(backend, cell)
    if reason is not None:
        kinds = ["python"] + [name for name in ("numba", "cuda") if why_unavailable(name, cell) is None]
        raise ValueError(f"{reason}; available for this cell: {kinds}")
    return backend


def run(layer, sequence_run, record=False):
    """Run ``layer.cell`` over a prepared :class:`~rnnlab.layers.SequenceRun`.

    Returns ``(outputs, final_states)``: outputs (T, B, O) in processing
    order, final_states the flat list of (B, size) arrays.  With ``record`` a
    third item is returned: the per-step record :mod:`rnnlab.bptt` needs
    (for the python backend a :class:`PythonRecord`).
    """
    backend = resolve(layer.backend, layer.cell)
    if backend == "python":
        return python_scan(layer.cell, sequence_run, layer.zero_output_for_mask, record)
    return kernel_for(backend, layer.cell).scan(layer, sequence_run, record)


def python_scan(cell, sequence_run, zero_output_for_mask, record=False):
    """The reference loop, one ``cell`` step per timestep, with Keras masking.

    At a masked step every state carries over unchanged, and the output repeats
    the previous output (zeros before the first step), or is zeros with
    ``zero_output_for_mask``.
    """
    x, mask = sequence_run.inputs, sequence_run.mask  # (T, B, F), (T, B) or None
    states = sequence_run.initial_states
    outputs = np.zeros((x.shape[0], x.shape[1], cell.output_size), dtype=x.dtype)  # (T, B, O)
    record = PythonRecord() if record else None
    previous_output = outputs[0]
    for t in range(x.shape[0]):
        packed = cell.pack_states(states)
        if record:
            output, new_states, cache = cell.forward(x[t], packed)
            record.caches.append(cache)
        else:
            output, new_states = cell._checked_call(x[t], packed)
        new_states = nest.flatten(new_states)
        if mask is not None:
            keep = mask[t][:, None]  # (B, 1): True where the step is real
            new_states = [np.where(keep, new, old) for new, old in zip(new_states, states)]
            output = np.where(keep, output, 0 if zero_output_for_mask else previous_output)
        outputs[t] = output
        previous_output, states = outputs[t], new_states
        if record:
            record.states.append(states)
    if record:
        return outputs, states, record
    return outputs, states


class PythonRecord:
    """What the python loop keeps for BPTT: each step's cell cache and flat states after it."""

    def __init__(self):
        self.caches = []
        self.states = []

    def stacked_states(self):
        """Flat list of (T, B, size): the states after every step."""
        return [np.stack(leaf) for leaf in zip(*self.states)]

    def gates(self, cell):
        """``{name: (T, B, U)}`` for ``cell.gate_names`` (a list of such dicts for stacked cells)."""
        return _stacked_gates(cell, self.caches)


def _stacked_gates(cell, caches):
    inner_cells = getattr(cell, "cells", None)
    if inner_cells is not None:  # StackedRNNCells: each step's cache is a list, one per cell
        return [_stacked_gates(inner, [c[k] for c in caches]) for k, inner in enumerate(inner_cells)]
    return {name: np.stack([c[name] for c in caches]) for name in cell.gate_names}
