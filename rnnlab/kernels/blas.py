"""Old spelling of `rnnlab.backends.numba.blas`."""

import sys

from ..backends.numba import blas

sys.modules[__name__] = blas
