"""LSTMCell: its step Jacobians, written out from the equations in ``cell.py``.

See `rnnlab.analysis.jacobians` for what a rule returns and for the
helpers; the tests check every formula against central finite differences.
"""

import numpy as np

from ...analysis.jacobians import StepJacobians, diag, product_weights, scaled_blocks
from ...analysis.states import join_states, split_state


def step_jacobians(cell, x, s, weights):
    """Joint state s = [h, c].  With a = x K + h R + b split into a_i, a_f, a_c, a_o:

    ```text
        c' = f c + i g        h' = o act(c')        (i, f, o = rec_act, g = act)
    ```

    The derivatives with respect to the four blocks of a are diagonal:

    ```text
        dc'/da_i = g rec_act'(a_i)   dc'/da_f = c rec_act'(a_f)   dc'/da_c = i act'(a_c)   dc'/da_o = 0
        dh'/da_* = o act'(c') dc'/da_*  for i, f, c;   dh'/da_o = act(c') rec_act'(a_o)
    ```

    a sees h through R, and c enters directly: dc'/dc = diag(f), dh'/dc = diag(o act'(c') f):

    ```text
        J = [ G_h R^T   diag(o act'(c') f) ]      rows h', c'; columns h, c
            [ G_c R^T   diag(f)            ]
    ```
    """
    h, c = split_state(cell, s)
    K, R = cell.kernel, cell.recurrent_kernel
    a = x @ K + h @ R  # (B, 4U)
    if cell.use_bias:
        a = a + cell.bias
    sig, act = cell.recurrent_activation, cell.activation
    a_i, a_f, a_c, a_o = np.split(a, 4, axis=1)
    i, f, g, o = sig(a_i), sig(a_f), act(a_c), sig(a_o)
    c_new = f * c + i * g
    act_c = act(c_new)
    h_new = o * act_c
    dh_dc = o * act.grad(c_new, act_c)  # dh'/dc' (B, U)

    dc_da = [g * sig.grad(a_i, i), c * sig.grad(a_f, f), i * act.grad(a_c, g), np.zeros_like(c)]
    dh_da = [dh_dc * d for d in dc_da[:3]] + [act_c * sig.grad(a_o, o)]
    J = np.concatenate([
        np.concatenate([scaled_blocks(dh_da, R), diag(dh_dc * f)], axis=2),  # rows h' (B, U, 2U)
        np.concatenate([scaled_blocks(dc_da, R), diag(f)], axis=2),  # rows c'
    ], axis=1)  # (B, 2U, 2U)
    Jx = np.concatenate([scaled_blocks(dh_da, K), scaled_blocks(dc_da, K)], axis=1)  # (B, 2U, F)
    w = None
    if weights:
        G = np.concatenate([np.concatenate([diag(d) for d in rows], axis=2) for rows in (dh_da, dc_da)], axis=1)
        w = product_weights([x, h], G, cell.use_bias)  # G = d[h'; c']/da (B, 2U, 4U)
    return StepJacobians(join_states([h_new, c_new]), J, Jx, w)
