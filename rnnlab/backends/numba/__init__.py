"""``backend="numba"``: the CPU kernels' host and their shared building blocks.

* `.host`: the NumPy glue around every cell room's ``@njit`` loops
  (``cells/<room>/cpu.py``): big GEMMs before and after, threads, reused memory;
* `.custom_scan`: a fused time loop around a custom cell's own ``@njit`` step
  (not to be confused with `rnnlab.parallel`, parallel-in-time scans);
* `.jit`: the ``@jit`` decorator (``cache=True``, ``nogil=True``,
  ``error_model="numpy"``, the fast-math flags), used by every ``@njit`` kernel;
* `.common`: activations per dtype and the masking steps every loop shares;
* `.fastmath`: ``tanh``/``sigmoid`` that vectorize in ``@njit`` loops;
* `.blas`: ``gemm(trans_a, trans_b, alpha, A, B, beta, C)``, BLAS
  sgemm/dgemm callable from ``@njit`` code that writes into ``C`` in place.

This package's ``__init__`` imports nothing heavy.  numba (about 0.2 s) and
scipy's BLAS are imported when a submodule is first touched, either through
an explicit import or through attribute access (``rnnlab.backends.numba.fastmath``).
Nothing is ever compiled at import.
"""

import importlib

__all__ = ["jit", "fastmath", "blas", "common", "host", "custom_scan"]


def __getattr__(name):
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
