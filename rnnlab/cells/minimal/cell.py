"""MinimalRNNCell: the cell contract's own example, and the template to copy."""

from ... import validation
from ...contract import AbstractRNNCell


class MinimalRNNCell(AbstractRNNCell):
    """The example from the Keras ``AbstractRNNCell`` docs: a linear recurrence.

    ```text
        h' = x @ K + h @ R         output = h'
    ```

    Weights: ``kernel`` (in, units) and ``recurrent_kernel`` (units, units),
    both from ``uniform`` (U(-0.05, 0.05)).  No bias and no nonlinearity, so
    the state grows or decays with the eigenvalues of R.

    Copy this class to write your own cell: ``state_size``, ``build`` and
    ``call`` are all the contract asks for.  ``forward`` and ``backward`` are
    the optional extras that let `rnnlab.bptt` train it.
    """

    output_state_index = 0  # the output is the state h

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = validation.units(units)  # check early: a bad size would fail later, less clearly

    @property
    def state_size(self):
        return self.units

    def build(self, input_shape):
        self.add_weight("kernel", (input_shape[-1], self.units), "uniform")
        self.add_weight("recurrent_kernel", (self.units, self.units), "uniform")
        self.built = True

    def call(self, inputs, states):
        prev_output = states[0]
        output = inputs @ self.kernel + prev_output @ self.recurrent_kernel
        return output, output

    # -- the optional backward protocol, used by rnnlab.bptt --------------------

    def forward(self, inputs, states):
        output, new_states = self.checked_call(inputs, states)
        return output, new_states, {"inputs": inputs, "h": states[0]}

    def backward(self, cache, d_output, d_new_states):
        """h' = x K + h R, and h' is both output and state, so g = d_output + d_h':

        ```text
            dx = g K^T    dh = g R^T    dK = x^T g    dR = h^T g
        ```
        """
        g = d_output + d_new_states[0]
        d_weights = [cache["inputs"].T @ g, cache["h"].T @ g]
        return g @ self.kernel.T, [g @ self.recurrent_kernel.T], d_weights

    def get_config(self):
        return {"units": self.units, **self._base_config()}
