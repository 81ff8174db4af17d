"""LSTMCell on the GPU: the equations of ``cell.py`` as ``numba.cuda`` device functions.

One unit u of one batch row per call; `rnnlab.backends.cuda.schedules` runs
them in its persistent and tiled schedules, and `adapter_for` tells the
host (`rnnlab.backends.cuda.host`) the rest.  The activation is tanh; the
recurrent activation sigma is sigmoid or a hard sigmoid (``GATE_ACTIVATIONS``,
sigma' written with its output).  Gate order i, f, c, o
(Keras); the bias is folded into the input projection, so ``ah`` is ``h R``.

Forward, with a_g = ax[g] + ah[g]:

```text
    i = sigma(a_i)     f = sigma(a_f)     g = tanh(a_c)   o = sigma(a_o)
    c' = f * c + i * g
    h' = o * tanh(c')                     output = h'; state [h', c']
```

Backward, with gh = dL/dh' and gc = dL/dc' from later steps:

```text
    dc' = gc + gh * o * (1 - tanh(c')^2)
    da_i = dc' * g * sigma'(i)     da_f = dc' * c * sigma'(f)      (sigma'(s) = s (1 - s) for sigmoid)
    da_c = dc' * i * (1 - g^2)     da_o = gh * tanh(c') * sigma'(o)
    dc = dc' * f                   dh = da R^T (done by the schedule)
```
"""

from numba import cuda

from ...backends.cuda.adapter import CellAdapter, per_gate
from ...backends.cuda.primitives import GATE_ACTIVATIONS


class LSTMAdapter(CellAdapter):
    """Four gate blocks, state [h, c]; the weights are as the defaults expect."""

    name = "LSTMCell"
    G = 4  # gate blocks i, f, c, o
    L = 2  # state leaves: [h, c]
    gate_names = ("i", "f", "g", "o")
    required_activations = {"activation": "tanh", "recurrent_activation": GATE_ACTIVATIONS}

    @staticmethod
    def unit_functions(gate, gate_grad, tanh, one, zero):
        @cuda.jit(device=True)
        def forward_unit(ax, ah, h_prev, c_prev, gv):
            i = gate(ax[0] + ah[0])
            f = gate(ax[1] + ah[1])
            g = tanh(ax[2] + ah[2])
            o = gate(ax[3] + ah[3])
            c_new = f * c_prev + i * g
            h_new = o * tanh(c_new)
            gv[0] = i
            gv[1] = f
            gv[2] = g
            gv[3] = o
            return h_new, c_new, zero

        @cuda.jit(device=True)
        def backward_unit(gh, gc, h_prev, c_prev, h_new, c_new, gv, extra, dax, dah):
            i = gv[0]
            f = gv[1]
            g = gv[2]
            o = gv[3]
            tc = tanh(c_new)
            dc_new = gc + gh * o * (one - tc * tc)
            dax[0] = dc_new * g * gate_grad(i)
            dax[1] = dc_new * c_prev * gate_grad(f)
            dax[2] = dc_new * i * (one - g * g)
            dax[3] = gh * tc * gate_grad(o)
            for k in range(4):
                dah[k] = dax[k]
            return zero, dc_new * f

        return forward_unit, backward_unit


#: The CUDA adapter of an LSTMCell, one per recurrent activation.
adapter_for = per_gate(LSTMAdapter)
