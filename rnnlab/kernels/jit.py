"""Old spelling of `rnnlab.backends.numba.jit`, where the decorator ``kernel`` is now ``jit``."""

from ..backends.numba.jit import *  # noqa: F403
from ..backends.numba.jit import jit as kernel  # noqa: F401
