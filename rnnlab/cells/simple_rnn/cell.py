"""SimpleRNNCell: the Elman network, ``h' = act(x K + h R + b)``."""

from ..base import KerasCell, masked


class SimpleRNNCell(KerasCell):
    """Fully connected recurrent cell, Keras ``SimpleRNNCell`` numerics.

    Equations, for inputs x (batch, in) and state h (batch, units):

    ```text
        h' = act(x @ K + h @ R + b)        output = h'
    ```

    Weights, in ``get_weights()`` order (Keras layout):

    * ``kernel`` K: (in, units)
    * ``recurrent_kernel`` R: (units, units)
    * ``bias`` b: (units,), only when ``use_bias``

    With dropout masks m_x (batch, in) and m_h (batch, units), drawn once per
    layer call (see `KerasCell`), tf.keras 2 computes
    ``h' = act((x * m_x) @ K + (h * m_h) @ R + b)``, and so does this cell.

    Args:
        units: size of the state h.
        activation: name or callable, default ``"tanh"``.
        seed: int or ``numpy.random.Generator`` for the initializers and the dropout masks.
        dtype: ``"float32"`` (default) or ``"float64"``.
        dropout, recurrent_dropout, regularizers, constraints: as in tf.keras 2 (`KerasCell`).
    """

    def build(self, input_shape):
        self.add_weight("kernel", (input_shape[-1], self.units), self.kernel_initializer)
        self.add_weight("recurrent_kernel", (self.units, self.units), self.recurrent_initializer)
        if self.use_bias:
            self.add_weight("bias", (self.units,), self.bias_initializer)

    def forward(self, inputs, states, dropout=None):
        """One step, plus the cache that `backward` needs.

        inputs (batch, in), states [h (batch, units)] -> h', [h'], cache.
        dropout: the call's `DropoutMasks`, or None.
        """
        m_x, m_h = (None, None) if dropout is None else (dropout.inputs, dropout.recurrent)
        x, h = masked(inputs, m_x), masked(states[0], m_h)  # where tf.keras 2 applies the masks
        pre = x @ self.kernel + h @ self.recurrent_kernel  # (B, U)
        if self.use_bias:
            pre = pre + self.bias
        h_new = self.activation(pre)
        return h_new, [h_new], {"inputs": x, "h": h, "m_x": m_x, "m_h": m_h, "pre": pre, "h_new": h_new}

    def backward(self, cache, d_output, d_new_states):
        """Gradients of one step.

        With a = x K + h R + b and h' = act(a), the output and the new state are
        the same array, so their gradients add: g = d_output + d_h'.  Then:

        ```text
            da = g * act'(a)
            dx = da K^T,   dh = da R^T
            dK = x^T da,   dR = h^T da,   db = sum_batch da
        ```

        With dropout, x and h above are the masked ones, and dx and dh are
        multiplied by their masks.

        Returns ``(d_inputs, [d_h], [dK, dR, db])``.
        """
        d_h_new = d_output + d_new_states[0]
        d_pre = d_h_new * self.activation.grad(cache["pre"], cache["h_new"])  # (B, U)
        d_inputs = masked(d_pre @ self.kernel.T, cache["m_x"])
        d_h = masked(d_pre @ self.recurrent_kernel.T, cache["m_h"])
        d_weights = [cache["inputs"].T @ d_pre, cache["h"].T @ d_pre]
        if self.use_bias:
            d_weights.append(d_pre.sum(axis=0))
        return d_inputs, [d_h], d_weights
