"""MinLSTMCell: the minimal LSTM of Feng et al. 2024, with input-only gates that sum to one."""

import numpy as np

from ... import activations
from ..projection import ProjectionCell


class MinLSTMCell(ProjectionCell):
    """minLSTM from Feng, Tung, Ahmed, Bengio and Hajimirsadeghi, "Were RNNs All We Needed?" (2024).

    The LSTM without its output gate and cell state, with a forget and an
    input gate that depend on the input alone and are normalised to sum to one:

    ```text
        a  = x @ K + b                     (B, 3U), split into a_f, a_i, a_h
        f  = sigmoid(a_f)    i = sigmoid(a_i)
        f' = f / (f + i)     i' = i / (f + i)          so f' + i' = 1
        hh = act(a_h)                      the candidate h~ (act: "linear" by default)
        h' = f' * h + i' * hh              output = h'
    ```

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

    gate_names = ("f", "i", "hh")  # the raw gates, before normalising; hh is the candidate h~

    def forward(self, inputs, states):
        """inputs (B, in), states [h (B, U)] -> h', [h'], cache with the gates f, i and hh."""
        u = self.units
        h = states[0]
        a = self.projection(inputs)  # (B, 3U)
        f = activations.sigmoid(a[:, :u])
        i = activations.sigmoid(a[:, u : 2 * u])
        hh = self.activation(a[:, 2 * u :])
        f_norm, i_norm = f / (f + i), i / (f + i)
        h_new = f_norm * h + i_norm * hh
        cache = {"inputs": inputs, "h": h, "a": a, "f": f, "i": i, "hh": hh, "f_norm": f_norm, "i_norm": i_norm}
        return h_new, [h_new], cache

    def backward(self, cache, d_output, d_new_states):
        """Gradients of one step.

        With g = d_output + d_h', and h' = hh + f' (h - hh) since i' = 1 - f':

        ```text
            df' = g * (h - hh)             dhh = g * i'             dh = g * f'
            f' = f / (f + i) gives df'/df = i / (f + i)^2 = f' i' / f and df'/di = -f' i' / i, so
            da_f = df' * f' i' (1 - f)     da_i = -df' * f' i' (1 - i)    (with sigmoid' = s (1 - s))
            da_h = dhh * act'(a_h)
            dx = da K^T     dK = x^T da     db = sum_batch da
        ```

        Returns ``(d_inputs, [d_h], [dK, db])``.
        """
        u = self.units
        h, f, i, hh = cache["h"], cache["f"], cache["i"], cache["hh"]
        f_norm, i_norm = cache["f_norm"], cache["i_norm"]
        g = d_output + d_new_states[0]  # (B, U)
        d_split = g * (h - hh) * f_norm * i_norm  # the gradient of the split f' : i', shared by both gates
        d_a = np.concatenate([d_split * (1 - f), -d_split * (1 - i),
                              g * i_norm * self.activation.grad(cache["a"][:, 2 * u :], hh)], axis=1)  # (B, 3U)
        return d_a @ self.kernel.T, [g * f_norm], self.weight_grads(cache["inputs"], d_a)
