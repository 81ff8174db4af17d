"""SimpleRNNCell: the Elman network, ``h' = act(x K + h R + b)``."""

from ..base import BuiltinCell


class SimpleRNNCell(BuiltinCell):
    """Fully connected recurrent cell, Keras ``SimpleRNNCell`` numerics.

    Equations, for inputs x (batch, in) and state h (batch, units)::

        h' = act(x @ K + h @ R + b)        output = h'

    Weights, in ``get_weights()`` order (Keras layout):

    * ``kernel`` K: (in, units)
    * ``recurrent_kernel`` R: (units, units)
    * ``bias`` b: (units,), only when ``use_bias``

    Args:
        units: size of the state h.
        activation: name or callable, default ``"tanh"``.
        seed: int or ``numpy.random.Generator`` for the initializers.
        dtype: ``"float32"`` (default) or ``"float64"``.
    """

    def build(self, input_shape):
        self.add_weight("kernel", (input_shape[-1], self.units), self.kernel_initializer)
        self.add_weight("recurrent_kernel", (self.units, self.units), self.recurrent_initializer)
        if self.use_bias:
            self.add_weight("bias", (self.units,), self.bias_initializer)

    def call(self, inputs, states):
        output, new_states, _ = self.forward(inputs, states)
        return output, new_states

    def forward(self, inputs, states):
        """One step, plus the cache that :meth:`backward` needs.

        inputs (batch, in), states [h (batch, units)] -> h', [h'], cache.
        """
        h = states[0]
        pre = inputs @ self.kernel + h @ self.recurrent_kernel  # (B, U)
        if self.use_bias:
            pre = pre + self.bias
        h_new = self.activation(pre)
        return h_new, [h_new], {"inputs": inputs, "h": h, "pre": pre, "h_new": h_new}

    def backward(self, cache, d_output, d_new_states):
        """Gradients of one step.

        With a = x K + h R + b and h' = act(a), the output and the new state are
        the same array, so their gradients add: g = d_output + d_h'.  Then::

            da = g * act'(a)
            dx = da K^T,   dh = da R^T
            dK = x^T da,   dR = h^T da,   db = sum_batch da

        Returns ``(d_inputs, [d_h], [dK, dR, db])``.
        """
        d_h_new = d_output + d_new_states[0]
        d_pre = d_h_new * self.activation.grad(cache["pre"], cache["h_new"])  # (B, U)
        d_inputs = d_pre @ self.kernel.T
        d_h = d_pre @ self.recurrent_kernel.T
        d_weights = [cache["inputs"].T @ d_pre, cache["h"].T @ d_pre]
        if self.use_bias:
            d_weights.append(d_pre.sum(axis=0))
        return d_inputs, [d_h], d_weights
