"""GRUCell: its step Jacobians, written out from the equations in ``cell.py``.

See `rnnlab.analysis.jacobians` for what a rule returns and for the
helpers; the tests check every formula against central finite differences.
"""

import numpy as np

from ...analysis.jacobians import StepJacobians, diag, outer, scaled_blocks


def step_jacobians(cell, x, h, weights):
    """h' = z h + (1 - z) hh.  Common to both variants, with d_hh = (1 - z) act'(pre_hh):

    ```text
        dh'/dpre_z = d_z = (h - hh) rec_act'(pre_z)     dh'/dpre_hh = d_hh     direct: dh'/dh = diag(z)
    ```

    reset_after=True: mx = x K + b_in and mh = h R + b_rec, with pre_hh = mx_h
    + r mh_h, so dh'/dpre_r = d_r = d_hh mh_h rec_act'(pre_r).  Everything is
    diagonal: dh'/dmx = [d_z, d_r, d_hh] and dh'/dmh = [d_z, d_r, d_hh r]:

    ```text
        J = diag(z) + [d_z, d_r, d_hh r] R^T      Jx = [d_z, d_r, d_hh] K^T
    ```

    reset_after=False: pre_hh = mx_h + v R_h with v = r h.  Then dh'/dv =
    diag(d_hh) R_h^T is a full matrix, G_r = dh'/dpre_r = dh'/dv diag(h rec_act'(pre_r)), and:

    ```text
        J  = diag(z) + diag(d_z) R_z^T + G_r R_r^T + dh'/dv diag(r)
        Jx = diag(d_z) K_z^T + G_r K_r^T + diag(d_hh) K_h^T
    ```
    """
    u = cell.units
    K, R = cell.kernel, cell.recurrent_kernel
    b_in, b_rec = cell.input_and_recurrent_bias()
    sig, act = cell.recurrent_activation, cell.activation
    mx = x @ K + b_in  # (B, 3U)
    K_z, K_r, K_h = np.split(K, 3, axis=1)
    R_z, R_r, R_h = np.split(R, 3, axis=1)
    if cell.reset_after:
        mh = h @ R + b_rec  # (B, 3U)
        pre_z, pre_r = mx[:, :u] + mh[:, :u], mx[:, u : 2 * u] + mh[:, u : 2 * u]
    else:
        pre_z, pre_r = mx[:, :u] + h @ R_z, mx[:, u : 2 * u] + h @ R_r
    z, r = sig(pre_z), sig(pre_r)
    pre_hh = mx[:, 2 * u :] + (r * mh[:, 2 * u :] if cell.reset_after else (r * h) @ R_h)
    hh = act(pre_hh)
    h_new = z * h + (1 - z) * hh

    d_hh = (1 - z) * act.grad(pre_hh, hh)  # (B, U)
    d_z = (h - hh) * sig.grad(pre_z, z)
    w = None
    if cell.reset_after:
        d_r = d_hh * mh[:, 2 * u :] * sig.grad(pre_r, r)
        J = diag(z) + scaled_blocks([d_z, d_r, d_hh * r], R)
        Jx = scaled_blocks([d_z, d_r, d_hh], K)
        if weights:
            G_x = np.concatenate([diag(d_z), diag(d_r), diag(d_hh)], axis=2)  # dh'/dmx (B, U, 3U)
            G_h = np.concatenate([diag(d_z), diag(d_r), diag(d_hh * r)], axis=2)  # dh'/dmh
            w = [outer(x, G_x), outer(h, G_h)] + ([np.stack([G_x, G_h], axis=2)] if cell.use_bias else [])
    else:
        dh_dv = d_hh[:, :, None] * R_h.T  # (B, U, U): dh'_k/dv_i = d_hh_k R_h[i, k]
        G_r = dh_dv * (h * sig.grad(pre_r, r))[:, None, :]
        J = diag(z) + scaled_blocks([d_z], R_z) + G_r @ R_r.T + dh_dv * r[:, None, :]
        Jx = scaled_blocks([d_z], K_z) + G_r @ K_r.T + scaled_blocks([d_hh], K_h)
        if weights:
            G_x = np.concatenate([diag(d_z), G_r, diag(d_hh)], axis=2)  # dh'/dmx (B, U, 3U)
            # R's z and r columns multiply h, its candidate columns multiply v = r h
            d_R = np.concatenate([outer(h, G_x[:, :, : 2 * u]), outer(r * h, diag(d_hh))], axis=3)
            w = [outer(x, G_x), d_R] + ([G_x] if cell.use_bias else [])
    return StepJacobians(h_new, J, Jx, w)
