"""MinGRUCell: the minimal GRU of Feng et al. 2024, whose gate and candidate see only the input."""

import numpy as np

from ... import activations
from ..projection import ProjectionCell


class MinGRUCell(ProjectionCell):
    """minGRU from Feng, Tung, Ahmed, Bengio and Hajimirsadeghi, "Were RNNs All We Needed?" (2024).

    The GRU without its reset gate, and with an update gate and a candidate
    that depend on the input alone:

    ```text
        a  = x @ K + b                     (B, 2U), split into a_z, a_h
        z  = sigmoid(a_z)                  the update gate
        hh = act(a_h)                      the candidate h~ (act: "linear" by default)
        h' = (1 - z) * h + z * hh          output = h'
    ```

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

    gate_names = ("z", "hh")  # hh is the candidate h~

    def forward(self, inputs, states):
        """inputs (B, in), states [h (B, U)] -> h', [h'], cache with the gates z and hh."""
        u = self.units
        h = states[0]
        a = self.projection(inputs)  # (B, 2U)
        z = activations.sigmoid(a[:, :u])
        hh = self.activation(a[:, u:])
        h_new = (1 - z) * h + z * hh
        return h_new, [h_new], {"inputs": inputs, "h": h, "a": a, "z": z, "hh": hh}

    def backward(self, cache, d_output, d_new_states):
        """Gradients of one step.

        With g = d_output + d_h' (output and new state are both h'):

        ```text
            dz  = g * (hh - h)             dhh = g * z              dh = g * (1 - z)
            da  = [dz * z (1 - z), dhh * act'(a_h)]                 (B, 2U)
            dx  = da K^T     dK = x^T da     db = sum_batch da
        ```

        Returns ``(d_inputs, [d_h], [dK, db])``.
        """
        u = self.units
        h, z, hh = cache["h"], cache["z"], cache["hh"]
        g = d_output + d_new_states[0]  # (B, U)
        d_a = np.concatenate([g * (hh - h) * z * (1 - z),
                              g * z * self.activation.grad(cache["a"][:, u:], hh)], axis=1)  # (B, 2U)
        return d_a @ self.kernel.T, [g * (1 - z)], self.weight_grads(cache["inputs"], d_a)
