"""Old spelling of `rnnlab.backends.numba.fastmath`."""

import sys

from ..backends.numba import fastmath

sys.modules[__name__] = fastmath
