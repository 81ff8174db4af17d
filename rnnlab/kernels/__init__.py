"""Old spellings of the numba building blocks, kept for code written before 0.2.

``from rnnlab.kernels import scan`` still gives the custom-cell scan (now
:mod:`rnnlab.backends.numba.custom_scan`), and ``jit``, ``fastmath`` and
``blas`` the modules of :mod:`rnnlab.backends.numba`.  New code imports those.
Nothing here imports numba until an attribute is used.
"""

import importlib

_MOVED = {
    "scan": "rnnlab.backends.numba.custom_scan",
    "jit": "rnnlab.backends.numba.jit",
    "fastmath": "rnnlab.backends.numba.fastmath",
    "blas": "rnnlab.backends.numba.blas",
}


def __getattr__(name):
    if name in _MOVED:
        return importlib.import_module(_MOVED[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
