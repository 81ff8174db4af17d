"""SimpleRNNCell on the GPU: the equations of ``cell.py`` as ``numba.cuda`` device functions.

One unit u of one batch row per call; `rnnlab.backends.cuda.schedules` runs
them in its persistent and tiled schedules.  `adapter_for` tells the
host (`rnnlab.backends.cuda.host`) the rest; every default of
`CellAdapter` fits this cell.  Only the
default ``activation="tanh"`` has a kernel.

Forward:

```text
    a  = (x K + b)[u] + (h R)[u]          ax[0] + ah[0]
    h' = tanh(a)                          output = h'
```

Backward, with gh = dL/dh' (output and state gradients added):

```text
    da = gh * (1 - h'^2)                  dax[0] = dah[0] = da
    dh = da R^T                           (done by the schedule, through R)
```
"""

from numba import cuda

from ...backends.cuda.adapter import CellAdapter


class SimpleRNNAdapter(CellAdapter):
    """One gate block, state [h], kernel, recurrent kernel and bias as the defaults expect."""

    name = "SimpleRNNCell"
    G = 1  # gate blocks in K and R
    L = 1  # state leaves: [h]
    required_activations = {"activation": "tanh"}

    @staticmethod
    def unit_functions(_gate, _gate_grad, tanh, one, zero):
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


_ADAPTER = SimpleRNNAdapter()


def adapter_for(cell):
    """The CUDA adapter of a SimpleRNNCell."""
    return _ADAPTER
