"""MinLSTMCell: the minimal LSTM of Feng et al. 2024, with input-only gates that sum to one."""

import numpy as np

from ... import activations, initializers, validation
from ...contract import AbstractRNNCell


class MinLSTMCell(AbstractRNNCell):
    """minLSTM from Feng, Tung, Ahmed, Bengio and Hajimirsadeghi, "Were RNNs All We Needed?" (2024).

    The LSTM without its output gate and cell state, with a forget and an
    input gate that depend on the input alone and are normalised to sum to one::

        a  = x @ K + b                     (B, 3U), split into a_f, a_i, a_h
        f  = sigmoid(a_f)    i = sigmoid(a_i)
        f' = f / (f + i)     i' = i / (f + i)          so f' + i' = 1
        hh = act(a_h)                      the candidate h~ (act: "linear" by default)
        h' = f' * h + i' * hh              output = h'

    There is no ``recurrent_kernel``: h enters only through the last line, so
    the recurrence is linear in h (h' = a_t h + b_t with a_t = f', b_t = i' hh)
    and can run in parallel over time.  The normalisation keeps the scale of h
    independent of time, as the paper's minLSTM does.  The tape records the raw
    gates f and i (``gate_names``); f' and i' follow from them.

    Weights, in ``get_weights()`` order:

    * ``kernel`` K: (in, 3 units), blocks [f, i, h~]
    * ``bias`` b: (3 units,), only when ``use_bias``

    Args:
        units: size of the state h.
        activation: the candidate's activation, default ``"linear"`` (the paper's);
            ``"g"`` is the paper's positive g(x) = x + 1/2 for x >= 0, sigmoid(x)
            otherwise, which its log-space form needs.  The gates are always sigmoid.
        use_bias: whether the projection has the bias b.
        kernel_initializer, bias_initializer: Keras-style initializers, default
            ``"glorot_uniform"`` and ``"zeros"``.
        seed: int or ``numpy.random.Generator`` for the initializers.
        dtype: ``"float32"`` (default) or ``"float64"``.
    """

    output_state_index = 0  # the output is the state h
    gate_names = ("f", "i", "hh")  # the raw gates, before normalising; hh is the candidate h~

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
        self.add_weight("kernel", (input_shape[-1], 3 * self.units), self.kernel_initializer)
        if self.use_bias:
            self.add_weight("bias", (3 * self.units,), self.bias_initializer)

    def call(self, inputs, states):
        output, new_states, _ = self.forward(inputs, states)
        return output, new_states

    def forward(self, inputs, states):
        """inputs (B, in), states [h (B, U)] -> h', [h'], cache with the gates f, i and hh."""
        u = self.units
        h = states[0]
        a = inputs @ self.kernel  # (B, 3U)
        if self.use_bias:
            a = a + self.bias
        f = activations.sigmoid(a[:, :u])
        i = activations.sigmoid(a[:, u : 2 * u])
        hh = self.activation(a[:, 2 * u :])
        f_norm, i_norm = f / (f + i), i / (f + i)
        h_new = f_norm * h + i_norm * hh
        cache = {"inputs": inputs, "h": h, "a": a, "f": f, "i": i, "hh": hh, "f_norm": f_norm, "i_norm": i_norm}
        return h_new, [h_new], cache

    def backward(self, cache, d_output, d_new_states):
        """Gradients of one step.

        With g = d_output + d_h', and h' = hh + f' (h - hh) since i' = 1 - f'::

            df' = g * (h - hh)             dhh = g * i'             dh = g * f'
            f' = f / (f + i) gives df'/df = i / (f + i)^2 = f' i' / f and df'/di = -f' i' / i, so
            da_f = df' * f' i' (1 - f)     da_i = -df' * f' i' (1 - i)    (with sigmoid' = s (1 - s))
            da_h = dhh * act'(a_h)
            dx = da K^T     dK = x^T da     db = sum_batch da

        Returns ``(d_inputs, [d_h], [dK, db])``.
        """
        u = self.units
        h, f, i, hh = cache["h"], cache["f"], cache["i"], cache["hh"]
        f_norm, i_norm = cache["f_norm"], cache["i_norm"]
        g = d_output + d_new_states[0]  # (B, U)
        d_split = g * (h - hh) * f_norm * i_norm  # the gradient of the split f' : i', shared by both gates
        d_a = np.concatenate([d_split * (1 - f), -d_split * (1 - i),
                              g * i_norm * self.activation.grad(cache["a"][:, 2 * u :], hh)], axis=1)  # (B, 3U)
        d_weights = [cache["inputs"].T @ d_a]
        if self.use_bias:
            d_weights.append(d_a.sum(axis=0))
        return d_a @ self.kernel.T, [g * f_norm], d_weights

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
