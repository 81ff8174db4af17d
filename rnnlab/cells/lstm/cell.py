"""LSTMCell: long short-term memory, Keras gate order i, f, c, o."""

import numpy as np

from ..base import KerasCell, masked
from ... import activations


class LSTMCell(KerasCell):
    """Long short-term memory cell with Keras ``LSTMCell`` numerics and layout.

    State is ``[h, c]``, both (batch, units); output is h'.  Gate order in every
    weight is i (input), f (forget), c (candidate), o (output):

    ```text
        a  = x @ K + h @ R + b             (B, 4U), split into a_i, a_f, a_c, a_o
        i  = rec_act(a_i)    f = rec_act(a_f)    o = rec_act(a_o)
        g  = act(a_c)                      the candidate, often written c~
        c' = f * c + i * g
        h' = o * act(c')
    ```

    Weights, in ``get_weights()`` order:

    * ``kernel`` K: (in, 4 units)
    * ``recurrent_kernel`` R: (units, 4 units)
    * ``bias`` b: (4 units,), only when ``use_bias``.  With ``unit_forget_bias``
      (the default) the f block starts at 1 and the rest from ``bias_initializer``.

    With dropout masks m_x (batch, in) and m_h (batch, units), drawn once per
    layer call (see `KerasCell`), tf.keras 2 computes
    ``a = (x * m_x) @ K + (h * m_h) @ R + b``, and so does this cell; c is never masked.
    """

    _extra_config = ("recurrent_activation", "unit_forget_bias")

    gate_names = ("i", "f", "g", "o")  # g is the candidate c~

    def __init__(self, units, recurrent_activation="sigmoid", unit_forget_bias=True, **kwargs):
        super().__init__(units, **kwargs)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.unit_forget_bias = bool(unit_forget_bias)

    @property
    def state_size(self):
        return [self.units, self.units]

    def build(self, input_shape):
        u = self.units
        self.add_weight("kernel", (input_shape[-1], 4 * u), self.kernel_initializer)
        self.add_weight("recurrent_kernel", (u, 4 * u), self.recurrent_initializer)
        if self.use_bias:
            bias_init = self.bias_initializer
            if self.unit_forget_bias:
                def bias_init(shape, rng, dtype, base=self.bias_initializer):
                    return np.concatenate([base((u,), rng, dtype), np.ones(u, dtype=dtype),
                                           base((2 * u,), rng, dtype)])
            self.add_weight("bias", (4 * u,), bias_init)

    def forward(self, inputs, states, dropout=None):
        """inputs (B, in), states [h, c] -> h', [h', c'], cache with the gates i, f, g, o.

        dropout: the call's `DropoutMasks`, or None.
        """
        u = self.units
        m_x, m_h = (None, None) if dropout is None else (dropout.inputs, dropout.recurrent)
        x, h, c = masked(inputs, m_x), masked(states[0], m_h), states[1]  # where tf.keras 2 applies the masks
        a = x @ self.kernel + h @ self.recurrent_kernel  # (B, 4U)
        if self.use_bias:
            a = a + self.bias
        i = self.recurrent_activation(a[:, :u])
        f = self.recurrent_activation(a[:, u : 2 * u])
        g = self.activation(a[:, 2 * u : 3 * u])
        o = self.recurrent_activation(a[:, 3 * u :])
        c_new = f * c + i * g
        act_c = self.activation(c_new)
        h_new = o * act_c
        cache = {"inputs": x, "h": h, "m_x": m_x, "m_h": m_h, "c": c, "a": a, "i": i, "f": f, "g": g, "o": o,
                 "c_new": c_new, "act_c": act_c}
        return h_new, [h_new, c_new], cache

    def backward(self, cache, d_output, d_new_states):
        """Gradients of one step.

        With dh' = d_output + d_h' and dc' = d_c' + dh' * o * act'(c'):

        ```text
            do = dh' * act(c')     di = dc' * g     dg = dc' * i     df = dc' * c
            dc = dc' * f
            da = [di rec_act'(a_i), df rec_act'(a_f), dg act'(a_c), do rec_act'(a_o)]
            dx = da K^T    dh = da R^T    dK = x^T da    dR = h^T da    db = sum_batch da
        ```

        With dropout, x and h above are the masked ones, and dx and dh are
        multiplied by their masks.

        Returns ``(d_inputs, [d_h, d_c], [dK, dR, db])``.
        """
        u = self.units
        a, i, f, g, o = cache["a"], cache["i"], cache["f"], cache["g"], cache["o"]
        d_h_new = d_output + d_new_states[0]
        d_c_new = d_new_states[1] + d_h_new * o * self.activation.grad(cache["c_new"], cache["act_c"])
        rec_grad = self.recurrent_activation.grad
        d_a = np.concatenate(
            [
                d_c_new * g * rec_grad(a[:, :u], i),
                d_c_new * cache["c"] * rec_grad(a[:, u : 2 * u], f),
                d_c_new * i * self.activation.grad(a[:, 2 * u : 3 * u], g),
                d_h_new * cache["act_c"] * rec_grad(a[:, 3 * u :], o),
            ],
            axis=1,
        )  # (B, 4U)
        d_inputs = masked(d_a @ self.kernel.T, cache["m_x"])
        d_h = masked(d_a @ self.recurrent_kernel.T, cache["m_h"])
        d_c = d_c_new * f
        d_weights = [cache["inputs"].T @ d_a, cache["h"].T @ d_a]
        if self.use_bias:
            d_weights.append(d_a.sum(axis=0))
        return d_inputs, [d_h, d_c], d_weights
