"""MinLSTMCell: its step Jacobians, written out from the equations in ``cell.py``.

See `rnnlab.analysis.jacobians` for what a rule returns and for the
helpers; the tests check every formula against central finite differences.
"""

import numpy as np

from ... import activations
from ...analysis.jacobians import StepJacobians, diag, outer, scaled_blocks


def step_jacobians(cell, x, h, weights):
    """h' = f' h + i' hh with f' = f / (f + i), i' = i / (f + i), hh = act(a_h), a = x K + b.

    The gates see only x, so the state Jacobian is diagonal: the recurrence is
    linear in h.  With G = dh'/da = [diag(d_f) | diag(d_i) | diag(d_h)]:

    ```text
        d_f = (h - hh) f' i' (1 - f)     d_i = -(h - hh) f' i' (1 - i)     d_h = i' act'(a_h)
        J = diag(f')     Jx = G K^T     dh'/dK_ij = x_i G_kj     dh'/db = G
    ```
    """
    u = cell.units
    a = x @ cell.kernel  # (B, 3U)
    if cell.use_bias:
        a = a + cell.bias
    f, i = activations.sigmoid(a[:, :u]), activations.sigmoid(a[:, u : 2 * u])
    hh = cell.activation(a[:, 2 * u :])
    f_norm, i_norm = f / (f + i), i / (f + i)
    h_new = f_norm * h + i_norm * hh
    split = (h - hh) * f_norm * i_norm
    d = [split * (1 - f), -split * (1 - i), i_norm * cell.activation.grad(a[:, 2 * u :], hh)]
    w = None
    if weights:
        G = np.concatenate([diag(d_k) for d_k in d], axis=2)  # (B, U, 3U)
        w = [outer(x, G)] + ([G] if cell.use_bias else [])
    return StepJacobians(h_new, diag(f_norm), scaled_blocks(d, cell.kernel), w)
