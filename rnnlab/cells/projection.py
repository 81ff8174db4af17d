"""ProjectionCell: what every cell whose gates see only the input shares (minGRU, minLSTM)."""

from .base import UnitsCell


class ProjectionCell(UnitsCell):
    """A cell whose pre-activations are one input projection ``a = x @ K + b``, with no recurrent weight.

    The state h enters each step only elementwise, so every step's gates can be
    computed before the loop (and, later, in parallel over time).  A subclass
    names its blocks of K in ``gate_names`` (one block of ``units`` columns per
    name, in order) and writes ``forward`` and ``backward``.

    Weights, in ``get_weights()`` order:

    * ``kernel`` K: (in, len(gate_names) * units)
    * ``bias`` b: (len(gate_names) * units,), only when ``use_bias``

    Args:
        units: size of the state h.
        activation: the candidate's activation, default ``"linear"``.
        use_bias: whether the projection has the bias b.
        kernel_initializer, bias_initializer: Keras-style initializers, default
            ``"glorot_uniform"`` and ``"zeros"``.
        seed: int or ``numpy.random.Generator`` for the initializers.
        dtype: ``"float32"`` (default) or ``"float64"``.
    """

    def __init__(self, units, activation="linear", use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", **kwargs):
        super().__init__(units, activation, use_bias, kernel_initializer, bias_initializer, **kwargs)

    def build(self, input_shape):
        columns = len(self.gate_names) * self.units
        self.add_weight("kernel", (input_shape[-1], columns), self.kernel_initializer)
        if self.use_bias:
            self.add_weight("bias", (columns,), self.bias_initializer)

    def call(self, inputs, states):
        output, new_states, _ = self.forward(inputs, states)
        return output, new_states

    def projection(self, inputs):
        """``x @ K (+ b)``: (B, in) -> (B, len(gate_names) * units)."""
        a = inputs @ self.kernel
        return a + self.bias if self.use_bias else a

    def weight_grads(self, inputs, d_a):
        """``[dK, db]`` (``[dK]`` without a bias) from the projection's gradient d_a (B, G)."""
        return [inputs.T @ d_a] + ([d_a.sum(axis=0)] if self.use_bias else [])
