"""Where the step loop runs: one module decides, so adding a backend is a contained change.

* ``"python"`` loops over the readable ``cell.forward``/``cell.call``: the
  specification, and the fallback for any cell.
* ``"numba"`` and ``"cuda"`` run fused kernels for the built-in cells when
  those are available (see :data:`KERNELS`).
* ``"auto"`` picks the fastest available backend for the cell.
"""

import numpy as np

from . import nest

BACKENDS = ("auto", "python", "numba", "cuda")

#: (backend name, cell class) -> kernel module with ``scan(layer, run, record)``.
#: Kernel modules register themselves lazily through :func:`register_kernel`.
KERNELS = {}


def check_name(backend):
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    return backend


def register_kernel(backend, cell_class, loader):
    """``loader()`` returns the kernel module; it is called only when first used."""
    KERNELS[(backend, cell_class)] = loader


def available(backend, cell):
    return backend == "python" or (backend, type(cell)) in KERNELS


def resolve(backend, cell):
    """The concrete backend for ``cell``: ``"auto"`` prefers numba, then python."""
    if backend == "auto":
        return "numba" if available("numba", cell) else "python"
    if not available(backend, cell):
        kinds = sorted({name for name, cls in KERNELS if cls is type(cell)} | {"python"})
        raise ValueError(
            f"backend {backend!r} has no kernel for {type(cell).__name__}; available for this cell: {kinds}"
        )
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


def kernel_for(backend, cell):
    """The kernel module of ``backend`` for ``cell`` (imported on first use)."""
    return KERNELS[(backend, type(cell))]()


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
