"""Where the step loop runs: one module decides, so adding a backend is a contained change.

* ``"python"`` (`.python`) loops over the readable ``cell.forward``/``cell.call``:
  the specification, and the fallback for any cell.
* ``"numba"`` (`.numba.host`) and ``"cuda"`` (`.cuda.host`) run the
  kernels that a cell's room declares (see `rnnlab.cells.registry`).
* ``"auto"`` picks the fastest available backend for the cell.

A backend module provides:

* ``unsupported(cell) -> str | None``: why this cell's configuration cannot
  run there (for example an activation its kernels do not implement), or None;
* ``scan(layer, sequence_run, record) -> (outputs, final_states[, record])``,
  with a `rnnlab.types.Record`;
* ``backward(tape, d_outputs, d_final, truncate, per_step) -> rnnlab.types.Gradients``
  with ``inputs`` as (T, B, F) in processing order.

Backend modules are imported only when first used, so ``import rnnlab`` never
imports numba or compiles anything.
"""

import importlib

from ..cells import registry
from . import python

BACKENDS = ("auto", "python", "numba", "cuda")


def check_name(backend):
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    return backend


def module_for(backend, cell):
    """The backend module that runs ``cell`` on ``backend`` (imported on first use)."""
    if backend == "python":
        return python
    return importlib.import_module(registry.backend_module(backend, cell))


def why_unavailable(backend, cell):
    """None when ``backend`` can run ``cell``, else the reason."""
    if backend == "python":
        return None
    if registry.backend_module(backend, cell) is None:
        return f"backend {backend!r} has no kernel for {type(cell).__name__}"
    return module_for(backend, cell).unsupported(cell)


def resolve(backend, cell, constants=False):
    """The concrete backend for ``cell``: ``"auto"`` prefers numba, then python.

    ``constants``: the call passes constants to the cell, which only the python loop does.
    (Dropout masks need no say here: every backend takes both.)
    """
    if constants:
        if backend not in ("auto", "python"):
            raise ValueError(f"backend {backend!r} runs no cell with constants; use backend='python' "
                             "(or 'auto', which picks it)")
        return "python"
    if backend == "auto":
        return "numba" if why_unavailable("numba", cell) is None else "python"
    reason = why_unavailable(backend, cell)
    if reason is not None:
        kinds = ["python"] + [name for name in ("numba", "cuda") if why_unavailable(name, cell) is None]
        raise ValueError(f"{reason}; available for this cell: {kinds}")
    return backend


def run(layer, sequence_run, record=False):
    """Run ``layer.cell`` over a prepared `SequenceRun`.

    Returns ``(outputs, final_states)``: outputs (T, B, O) in processing
    order, final_states the flat list of (B, size) (or (B, *dims)) arrays.  With ``record`` a
    third item is returned: the backend's `Record`, which
    its ``backward`` needs.
    """
    backend = sequence_run.backend or resolve(layer.backend, layer.cell, sequence_run.constants is not None)
    return module_for(backend, layer.cell).scan(layer, sequence_run, record)


def backward(tape, d_outputs, d_final, truncate=None, per_step=False):
    """BPTT on the backend that recorded ``tape``: `Gradients`, inputs (T, B, F)."""
    return module_for(tape.backend, tape.cell).backward(tape, d_outputs, d_final, truncate, per_step)
