"""MinLSTMCell on the GPU: the equations of ``cell.py`` as ``numba.cuda`` device functions.

One unit u of one batch row per call; `rnnlab.backends.cuda.schedules` runs
them in its persistent and tiled schedules with no recurrent product (the cell
has no recurrent kernel), and `adapter_for` tells the host
(`rnnlab.backends.cuda.host`) the rest.  The candidate's activation act is
one of ``CANDIDATE_ACTIVATIONS`` (linear, g, tanh), act' written with its output.

Forward, with ax = x K + b (blocks f, i, h~):

```text
    f  = sigmoid(ax[0])     i = sigmoid(ax[1])     hh = act(ax[2])
    f' = f / (f + i)        i' = 1 - f'
    h' = f' * h + i' * hh                 output = h'; state [h']; the tape keeps f, i, hh
```

Backward, with gh = dL/dh' and split = gh * (h - hh) * f' i':

```text
    dax[0] = split * (1 - f)     dax[1] = -split * (1 - i)     dax[2] = gh * i' * act'(hh)
    dh = gh * f'                          (the only path back to h)
```
"""

from numba import cuda

from ...backends.cuda.adapter import ProjectionCellAdapter, per_candidate


class MinLSTMAdapter(ProjectionCellAdapter):
    """Three blocks f, i, h~ from the input projection; state [h]; kernel and bias only."""

    name = "MinLSTMCell"
    G = 3  # blocks f, i, h~
    L = 1  # state leaves: [h]
    gate_names = ("f", "i", "hh")

    @staticmethod
    def unit_functions(sigmoid, act, act_grad, one, zero):
        @cuda.jit(device=True)
        def forward_unit(ax, ah, h_prev, c_prev, gv):
            f = sigmoid(ax[0])
            i = sigmoid(ax[1])
            hh = act(ax[2])
            gv[0] = f
            gv[1] = i
            gv[2] = hh
            return (f * h_prev + i * hh) / (f + i), c_prev, zero

        @cuda.jit(device=True)
        def backward_unit(gh, gc, h_prev, c_prev, h_new, c_new, gv, extra, dax, dah):
            f = gv[0]
            i = gv[1]
            hh = gv[2]
            f_norm = f / (f + i)
            i_norm = one - f_norm
            split = gh * (h_prev - hh) * f_norm * i_norm
            dax[0] = split * (one - f)
            dax[1] = -split * (one - i)
            dax[2] = gh * i_norm * act_grad(hh)
            return gh * f_norm, zero

        return forward_unit, backward_unit


#: The CUDA adapter of a MinLSTMCell, one per candidate activation.
adapter_for = per_candidate(MinLSTMAdapter)
