"""SimpleRNNCell on the GPU: the equations of ``cell.py`` as ``numba.cuda`` device functions.

One unit u of one batch row per call; :mod:`rnnlab.kernels.cuda_scan` runs
them in its persistent and tiled schedules, and
:mod:`rnnlab.kernels.cuda_backend` does the host side.  Only the default
``activation="tanh"`` has a kernel.

Forward::

    a  = (x K + b)[u] + (h R)[u]          ax[0] + ah[0]
    h' = tanh(a)                          output = h'

Backward, with gh = dL/dh' (output and state gradients added)::

    da = gh * (1 - h'^2)                  dax[0] = dah[0] = da
    dh = da R^T                           (done by the schedule, through R)
"""

import functools

from numba import cuda

from ...kernels import cuda_scan
from ...kernels.cuda_device import scalar_math

G = 1  # gate blocks in K and R
L = 1  # state leaves: [h]
GATE_NAMES = ()


@functools.lru_cache(maxsize=None)
def units(dtype_name):
    """(forward_unit, backward_unit) for ``dtype_name``."""
    _sigmoid, tanh, one, zero = scalar_math(dtype_name)

    @cuda.jit(device=True)
    def forward_unit(ax, ah, h_prev, c_prev, gv):
        h_new = tanh(ax[0] + ah[0])
        return h_new, c_prev, zero

    @cuda.jit(device=True)
    def backward_unit(gh, gc, h_prev, c_prev, h_new, c_new, gv, extra, dax, dah):
        da = gh * (one - h_new * h_new)
        dax[0] = da
        dah[0] = da
        return zero, zero

    return forward_unit, backward_unit


def kernels(dtype_name, tiles):
    """The four kernels for this cell: persistent forward/backward (R in shared memory or not) and tiled steps."""
    fwd, bwd = units(dtype_name)
    return {
        "persistent_forward": lambda r_in_shared: cuda_scan.persistent_forward(fwd, G, L, dtype_name, r_in_shared),
        "persistent_backward": cuda_scan.persistent_backward(bwd, G, L, dtype_name, False),
        "tiled_forward": cuda_scan.tiled_forward_step(fwd, G, L, dtype_name, *tiles),
        "tiled_backward": cuda_scan.tiled_backward_step(bwd, G, L, dtype_name, False, *tiles),
    }
