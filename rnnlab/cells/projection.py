"""ProjectionCell: what every cell whose gates see only the input shares (minGRU, minLSTM)."""

from .. import activations, initializers, validation
from ..contract import AbstractRNNCell


class ProjectionCell(AbstractRNNCell):
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

    output_state_index = 0  # the output is the state h

    def __init__(self, units, activation="linear", use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        self.units = validation.units(units)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)

    @property
    def state_size(self):
        return self.units

    @property
    def output_size(self):
        return self.units

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

    def get_config(self):
        return {
            "units": self.units,
            "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            **self._base_config(),
        }

    def __repr__(self):
        built = f"input_size={self.input_size}" if self.built else "unbuilt"
        return (f"{type(self).__name__}(units={self.units}, activation={self.activation.name!r}, "
                f"dtype={self.dtype!r}, {built})")
