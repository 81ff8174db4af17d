"""Old spelling of `rnnlab.backends.numba.custom_scan` (the custom-cell scan)."""

import sys

from ..backends.numba import custom_scan

sys.modules[__name__] = custom_scan  # the same module, so register() and LOOPS are shared
