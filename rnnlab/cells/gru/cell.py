"""GRUCell: gated recurrent unit, Keras gate order z, r, h."""

import numpy as np

from ..base import KerasCell, masked
from ... import activations


class GRUCell(KerasCell):
    """Gated recurrent unit with Keras ``GRUCell`` numerics and weight layout.

    Gate order in every weight is z (update), r (reset), h (candidate); each
    block has ``units`` columns.  With ``reset_after=True`` (the default, as in
    Keras and cuDNN):

    ```text
        mx = x @ K + b_in                  (B, 3U), split into mx_z, mx_r, mx_h
        mh = h @ R + b_rec                 (B, 3U), split into mh_z, mh_r, mh_h
        z  = rec_act(mx_z + mh_z)
        r  = rec_act(mx_r + mh_r)
        hh = act(mx_h + r * mh_h)          the reset gate acts *after* R
        h' = z * h + (1 - z) * hh          output = h'
    ```

    With ``reset_after=False`` the reset gate acts before the matrix product:

    ```text
        hh = act(mx_h + (r * h) @ R_h)     with no recurrent bias
    ```

    Weights, in ``get_weights()`` order:

    * ``kernel`` K: (in, 3 units)
    * ``recurrent_kernel`` R: (units, 3 units)
    * ``bias``: (2, 3 units) when ``reset_after`` (row 0 input bias, row 1
      recurrent bias), else (3 units,); only when ``use_bias``

    Dropout, with masks m_x (batch, in) and m_h (batch, units) drawn once per
    layer call (see `KerasCell`): as in tf.keras 2,
    ``mx = (x * m_x) @ K + b_in`` and every recurrent product takes ``h * m_h``
    (``mh = (h * m_h) @ R + b_rec``, or ``((r * (h * m_h)) @ R_h`` without
    reset_after), while the blend ``h' = z * h + (1 - z) * hh`` keeps the unmasked h.
    """

    _extra_config = ("recurrent_activation", "reset_after")

    gate_names = ("z", "r", "hh")  # hh is the candidate h~

    def __init__(self, units, recurrent_activation="sigmoid", reset_after=True, **kwargs):
        super().__init__(units, **kwargs)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.reset_after = bool(reset_after)

    def build(self, input_shape):
        u = self.units
        self.add_weight("kernel", (input_shape[-1], 3 * u), self.kernel_initializer)
        self.add_weight("recurrent_kernel", (u, 3 * u), self.recurrent_initializer)
        if self.use_bias:
            self.add_weight("bias", (2, 3 * u) if self.reset_after else (3 * u,), self.bias_initializer)

    def input_and_recurrent_bias(self):
        """(input bias, recurrent bias), each (3U,); zeros when absent."""
        zeros = np.zeros(3 * self.units, dtype=self.dtype)
        if not self.use_bias:
            return zeros, zeros
        if self.reset_after:
            return self.bias[0], self.bias[1]
        return self.bias, zeros

    def forward(self, inputs, states, dropout=None):
        """inputs (B, in), states [h (B, U)] -> h', [h'], cache with the gates z, r, hh.

        dropout: the call's `DropoutMasks`, or None.
        """
        u = self.units
        m_x, m_h = (None, None) if dropout is None else (dropout.inputs, dropout.recurrent)
        h = states[0]
        x, h_in = masked(inputs, m_x), masked(h, m_h)  # what the kernel and recurrent products see
        b_in, b_rec = self.input_and_recurrent_bias()
        mx = x @ self.kernel + b_in  # (B, 3U)
        R = self.recurrent_kernel
        if self.reset_after:
            mh = h_in @ R + b_rec  # (B, 3U)
            pre_z = mx[:, :u] + mh[:, :u]
            pre_r = mx[:, u : 2 * u] + mh[:, u : 2 * u]
        else:
            mh = h_in @ R[:, : 2 * u]  # (B, 2U): only z and r see h directly
            pre_z = mx[:, :u] + mh[:, :u]
            pre_r = mx[:, u : 2 * u] + mh[:, u:]
        z = self.recurrent_activation(pre_z)
        r = self.recurrent_activation(pre_r)
        if self.reset_after:
            pre_hh = mx[:, 2 * u :] + r * mh[:, 2 * u :]
        else:
            pre_hh = mx[:, 2 * u :] + (r * h_in) @ R[:, 2 * u :]
        hh = self.activation(pre_hh)
        h_new = z * h + (1 - z) * hh
        cache = {"inputs": x, "h": h, "h_in": h_in, "m_x": m_x, "m_h": m_h, "mh": mh, "pre_z": pre_z, "pre_r": pre_r,
                 "pre_hh": pre_hh, "z": z, "r": r, "hh": hh}
        return h_new, [h_new], cache

    def backward(self, cache, d_output, d_new_states):
        """Gradients of one step.

        With g = d_output + d_h' (output and new state are both h'):

        ```text
            dz  = g * (h - hh)             dhh = g * (1 - z)        dh = g * z
            da_h = dhh * act'(pre_hh)
            reset_after:   dr = da_h * mh_h      d(mh_h) = da_h * r
            otherwise:     d(r h) = da_h R_h^T,  dr = d(r h) * h,  dh += d(r h) * r
            da_z = dz * rec_act'(pre_z)          da_r = dr * rec_act'(pre_r)
        ```

        and the matrix products give dK = x^T [da_z da_r da_h], dx = [...] K^T,
        with dR and dh from the recurrent products in the same way.  With
        dropout, x is the masked input and the recurrent products see
        h_in = h * m_h: their gradient d(h_in) reaches h times m_h, while the
        blend's g * z reaches h directly; dx is multiplied by m_x.

        Returns ``(d_inputs, [d_h], [dK, dR, d_bias])``.
        """
        u = self.units
        x, h, z, r, hh = cache["inputs"], cache["h"], cache["z"], cache["r"], cache["hh"]
        h_in = cache["h_in"]  # h as the recurrent products see it (masked with recurrent dropout)
        R = self.recurrent_kernel
        g = d_output + d_new_states[0]  # (B, U)
        d_z = g * (h - hh)
        d_pre_hh = g * (1 - z) * self.activation.grad(cache["pre_hh"], hh)
        if self.reset_after:
            mh_h = cache["mh"][:, 2 * u :]
            d_r = d_pre_hh * mh_h
            d_mh_h = d_pre_hh * r
        else:
            d_rh = d_pre_hh @ R[:, 2 * u :].T
            d_r = d_rh * h_in
            d_h_in = d_rh * r
        d_pre_z = d_z * self.recurrent_activation.grad(cache["pre_z"], z)
        d_pre_r = d_r * self.recurrent_activation.grad(cache["pre_r"], r)

        d_mx = np.concatenate([d_pre_z, d_pre_r, d_pre_hh], axis=1)  # (B, 3U)
        d_inputs = masked(d_mx @ self.kernel.T, cache["m_x"])
        d_kernel = x.T @ d_mx
        if self.reset_after:
            d_mh = np.concatenate([d_pre_z, d_pre_r, d_mh_h], axis=1)  # (B, 3U)
            d_h_in = d_mh @ R.T
            d_recurrent = h_in.T @ d_mh
        else:
            d_zr = d_mx[:, : 2 * u]  # (B, 2U)
            d_h_in = d_h_in + d_zr @ R[:, : 2 * u].T
            d_recurrent = np.concatenate([h_in.T @ d_zr, (r * h_in).T @ d_pre_hh], axis=1)
        d_h = g * z + masked(d_h_in, cache["m_h"])  # the blend's path, plus the recurrent products'
        d_weights = [d_kernel, d_recurrent]
        if self.use_bias:
            d_weights.append(np.stack([d_mx.sum(axis=0), d_mh.sum(axis=0)]) if self.reset_after
                             else d_mx.sum(axis=0))
        return d_inputs, [d_h], d_weights
