"""Shared building blocks for rnnlab's Numba CPU kernels.

* :mod:`rnnlab.kernels.jit`: the ``@kernel`` decorator (``cache=True``,
  ``nogil=True``, ``error_model="numpy"``, the fast-math flags), used by every
  ``@njit`` kernel.
* :mod:`rnnlab.kernels.fastmath`: ``tanh``/``sigmoid`` that vectorize in
  ``@njit`` loops, with their derivatives written through the output.
* :mod:`rnnlab.kernels.blas`: ``gemm(trans_a, trans_b, alpha, A, B, beta, C)``,
  BLAS sgemm/dgemm callable from ``@njit`` code that writes into ``C`` in place.

This package's ``__init__`` imports nothing heavy.  numba (about 0.2 s) and
scipy's BLAS are imported when a submodule is first touched.  That happens
either through an explicit ``from rnnlab.kernels import blas`` or through
attribute access (``rnnlab.kernels.fastmath``).  Nothing is ever compiled at
import.
"""

import importlib

__all__ = ["jit", "fastmath", "blas"]


def __getattr__(name):
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
