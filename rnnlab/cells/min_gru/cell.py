"""MinGRUCell: the minimal GRU of Feng et al. 2024, whose gate and candidate see only the input."""

import numpy as np

from ... import activations, initializers, validation
from ...contract import AbstractRNNCell


class MinGRUCell(AbstractRNNCell):
    """minGRU from Feng, Tung, Ahmed, Bengio and Hajimirsadeghi, "Were RNNs All We Needed?" (2024).

    The GRU without its reset gate, and with an update gate and a candidate
    that depend on the input alone::

        a  = x @ K + b                     (B, 2U), split into a_z, a_h
        z  = sigmoid(a_z)                  the update gate
        hh = act(a_h)                      the candidate h~ (act: "linear" by default)
        h' = (1 - z) * h + z * hh          output = h'

    There is no ``recurrent_kernel``: h enters only through the last line, so
    the recurrence is linear in h (h' = a_t h + b_t with a_t = 1 - z, b_t = z hh),
    and every step's gates can be computed before the loop.  That is what lets
    the paper train it in parallel over time.  Note the paper's convention: z
    is the weight of the *new* candidate, where Keras's GRU gives z to the old h.

    Weights, in ``get_weights()`` order:

    * ``kernel`` K: (in, 2 units), blocks [z, h~]
    * ``bias`` b: (2 units,), only when ``use_bias``

    Args:
        units: size of the state h.
        activation: the candidate's activation, default ``"linear"`` (the paper's);
            ``"g"`` is the paper's positive g(x) = x + 1/2 for x >= 0, sigmoid(x)
            otherwise, which its log-space form needs.  The gate is always sigmoid.
        use_bias: whether the projection has the bias b.
        kernel_initializer, bias_initializer: Keras-style initializers, default
            ``"glorot_uniform"`` and ``"zeros"``.
        seed: int or ``numpy.random.Generator`` for the initializers.
        dtype: ``"float32"`` (default) or ``"float64"``.
    """

    output_state_index = 0  # the output is the state h
    gate_names = ("z", "hh")  # hh is the candidate h~

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
        self.add_weight("kernel", (input_shape[-1], 2 * self.units), self.kernel_initializer)
        if self.use_bias:
            self.add_weight("bias", (2 * self.units,), self.bias_initializer)

    def call(self, inputs, states):
        output, new_states, _ = self.forward(inputs, states)
        return output, new_states

    def forward(self, inputs, states):
        """inputs (B, in), states [h (B, U)] -> h', [h'], cache with the gates z and hh."""
        u = self.units
        h = states[0]
        a = inputs @ self.kernel  # (B, 2U)
        if self.use_bias:
            a = a + self.bias
        z = activations.sigmoid(a[:, :u])
        hh = self.activation(a[:, u:])
        h_new = (1 - z) * h + z * hh
        return h_new, [h_new], {"inputs": inputs, "h": h, "a": a, "z": z, "hh": hh}

    def backward(self, cache, d_output, d_new_states):
        """Gradients of one step.

        With g = d_output + d_h' (output and new state are both h')::

            dz  = g * (hh - h)             dhh = g * z              dh = g * (1 - z)
            da  = [dz * z (1 - z), dhh * act'(a_h)]                 (B, 2U)
            dx  = da K^T     dK = x^T da     db = sum_batch da

        Returns ``(d_inputs, [d_h], [dK, db])``.
        """
        u = self.units
        h, z, hh = cache["h"], cache["z"], cache["hh"]
        g = d_output + d_new_states[0]  # (B, U)
        d_a = np.concatenate([g * (hh - h) * z * (1 - z),
                              g * z * self.activation.grad(cache["a"][:, u:], hh)], axis=1)  # (B, 2U)
        d_weights = [cache["inputs"].T @ d_a]
        if self.use_bias:
            d_weights.append(d_a.sum(axis=0))
        return d_a @ self.kernel.T, [g * (1 - z)], d_weights

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
        return f"{type(self).__name__}(units={self.units}, activation={self.activation.name!r}, dtype={self.dtype!r}, {built})"
