"""MinGRUCell on the GPU: the equations of ``cell.py`` as ``numba.cuda`` device functions.

One unit u of one batch row per call; `rnnlab.backends.cuda.schedules` runs
them in its persistent and tiled schedules with no recurrent product (the cell
has no recurrent kernel), and `adapter_for` tells the host
(`rnnlab.backends.cuda.host`) the rest.  The candidate's activation act is
one of ``CANDIDATE_ACTIVATIONS`` (linear, g, tanh), act' written with its output.

Forward, with ax = x K + b (blocks z, h~):

```text
    z  = sigmoid(ax[0])     hh = act(ax[1])
    h' = (1 - z) * h + z * hh             output = h'; state [h']
```

Backward, with gh = dL/dh':

```text
    dax[0] = gh * (hh - h) * z (1 - z)    dax[1] = gh * z * act'(hh)
    dh = gh * (1 - z)                     (the only path back to h)
```
"""

from numba import cuda

from ...backends.cuda.adapter import ProjectionCellAdapter, per_candidate


class MinGRUAdapter(ProjectionCellAdapter):
    """Two blocks z, h~ from the input projection; state [h]; kernel and bias only."""

    name = "MinGRUCell"
    G = 2  # blocks z, h~
    L = 1  # state leaves: [h]
    gate_names = ("z", "hh")

    @staticmethod
    def unit_functions(sigmoid, act, act_grad, one, zero):
        @cuda.jit(device=True)
        def forward_unit(ax, ah, h_prev, c_prev, gv):
            z = sigmoid(ax[0])
            hh = act(ax[1])
            gv[0] = z
            gv[1] = hh
            return (one - z) * h_prev + z * hh, c_prev, zero

        @cuda.jit(device=True)
        def backward_unit(gh, gc, h_prev, c_prev, h_new, c_new, gv, extra, dax, dah):
            z = gv[0]
            hh = gv[1]
            dax[0] = gh * (hh - h_prev) * z * (one - z)
            dax[1] = gh * z * act_grad(hh)
            return gh * (one - z), zero

        return forward_unit, backward_unit


#: The CUDA adapter of a MinGRUCell, one per candidate activation.
adapter_for = per_candidate(MinGRUAdapter)
