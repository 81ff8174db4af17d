"""MinGRUCell: its step Jacobians, written out from the equations in ``cell.py``.

See `rnnlab.analysis.jacobians` for what a rule returns and for the
helpers; the tests check every formula against central finite differences.
"""

import numpy as np

from ... import activations
from ...analysis.jacobians import StepJacobians, diag, outer, scaled_blocks


def step_jacobians(cell, x, h, weights):
    """h' = (1 - z) h + z hh with z = sigmoid(a_z), hh = act(a_h), a = x K + b.

    The gates see only x, so the state Jacobian is diagonal: the recurrence is
    linear in h.  With G = dh'/da = [diag(d_z) | diag(d_h)]:

    ```text
        d_z = (hh - h) z (1 - z)       d_h = z act'(a_h)
        J = diag(1 - z)     Jx = G K^T     dh'/dK_ij = x_i G_kj     dh'/db = G
    ```
    """
    u = cell.units
    a = x @ cell.kernel  # (B, 2U)
    if cell.use_bias:
        a = a + cell.bias
    z, hh = activations.sigmoid(a[:, :u]), cell.activation(a[:, u:])
    h_new = (1 - z) * h + z * hh
    d = [(hh - h) * z * (1 - z), z * cell.activation.grad(a[:, u:], hh)]
    w = None
    if weights:
        G = np.concatenate([diag(d_k) for d_k in d], axis=2)  # (B, U, 2U)
        w = [outer(x, G)] + ([G] if cell.use_bias else [])
    return StepJacobians(h_new, diag(1 - z), scaled_blocks(d, cell.kernel), w)
