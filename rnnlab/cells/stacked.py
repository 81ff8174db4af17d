"""StackedRNNCells: several cells run as one, each feeding the next."""

from .. import nest
from ..contract import AbstractRNNCell, derived_seed, deserialize, serialize


class StackedRNNCells(AbstractRNNCell):
    """Wrap a list of cells so that cell k's output is cell k+1's input.

    ``state_size`` is the tuple of the cells' state sizes, nested as in Keras:
    ``StackedRNNCells([LSTMCell(8), SimpleRNNCell(4)]).state_size == ([8, 8], 4)``
    and ``states`` is ``[[h1, c1], h2]``.  ``output_size`` is the last cell's.

    ``get_weights()`` is the concatenation of each cell's weights, in order.
    """

    def __init__(self, cells, **kwargs):
        if not isinstance(cells, (list, tuple)) or not cells:
            raise ValueError("StackedRNNCells needs a non-empty list of cells")
        for cell in cells:
            if not isinstance(cell, AbstractRNNCell):
                raise TypeError(f"every cell must be an AbstractRNNCell, got {type(cell).__name__}")
            if cell.dropout > 0 or cell.recurrent_dropout > 0:
                # each cell would need masks of its own input size; stacked RNN layers have them
                raise ValueError(f"dropout inside StackedRNNCells is not supported: {cell.name} has dropout="
                                 f"{cell.dropout}, recurrent_dropout={cell.recurrent_dropout}; stack RNN layers "
                                 "instead (rl.Sequential([rl.RNN(c1, return_sequences=True), rl.RNN(c2), ...]))")
        dtypes = {cell.dtype for cell in cells}
        if len(dtypes) > 1:
            raise ValueError(f"all stacked cells must share one dtype, got {sorted(dtypes)}")
        kwargs.setdefault("dtype", cells[0].dtype)
        super().__init__(**kwargs)
        self.cells = list(cells)

    @property
    def state_size(self):
        return tuple(cell.state_size for cell in self.cells)

    @property
    def output_state_index(self):
        """The output is the last cell's output: find its leaf among the flat states."""
        last = self.cells[-1]
        if last.output_state_index is None:
            return None
        offset = len(nest.flatten(self.state_size)) - len(nest.flatten(last.state_size))
        return offset + last.output_state_index

    @property
    def output_size(self):
        return self.cells[-1].output_size

    def build(self, input_shape):
        features = input_shape[-1]
        for cell in self.cells:
            cell.ensure_built((input_shape[0], features))
            features = cell.output_size

    @property
    def weights(self):
        return [w for cell in self.cells for w in cell.weights]

    def weight_rules(self):
        return [rule for cell in self.cells for rule in cell.weight_rules()]

    @property
    def weight_names(self):
        """``"cells[k].<name>"`` for each inner cell's weights, in `weights` order."""
        return [f"cells[{k}].{name}" for k, cell in enumerate(self.cells) for name in cell.weight_names]

    def _assign_weights(self, values):
        start = 0
        for cell in self.cells:
            count = len(cell.weights)
            cell._assign_weights(values[start : start + count])
            start += count

    def _cell_states(self, states):
        """Each cell's states as the list its ``call`` expects."""
        return [nest.state_list(s) if nest.is_nested(cell.state_size) else [s]
                for cell, s in zip(self.cells, states)]

    def _repack(self, cell, new_states):
        return new_states if nest.is_nested(cell.state_size) else new_states[0]

    def call(self, inputs, states):
        new_states = []
        for cell, cell_states in zip(self.cells, self._cell_states(states)):
            inputs, cell_new = cell.checked_call(inputs, cell_states)
            new_states.append(self._repack(cell, cell_new))
        return inputs, new_states

    def forward(self, inputs, states):
        new_states, caches = [], []
        for cell, cell_states in zip(self.cells, self._cell_states(states)):
            inputs, cell_new, cache = cell.forward(inputs, cell_states)
            new_states.append(self._repack(cell, cell_new))
            caches.append(cache)
        return inputs, new_states, caches

    def backward(self, caches, d_output, d_new_states):
        """Run each cell's backward from the top: cell k's d_inputs is cell k-1's d_output."""
        d_states, d_weights = [None] * len(self.cells), [None] * len(self.cells)
        d_new_cell_states = self._cell_states(d_new_states)
        for k in reversed(range(len(self.cells))):
            cell = self.cells[k]
            d_output, d_cell_states, d_weights[k] = cell.backward(caches[k], d_output, d_new_cell_states[k])
            d_states[k] = self._repack(cell, d_cell_states)
        return d_output, d_states, [w for cell_weights in d_weights for w in cell_weights]

    def fresh_copy(self, seed=None):
        clone = super().fresh_copy(seed)
        clone.cells = [cell.fresh_copy(derived_seed(seed, i)) for i, cell in enumerate(self.cells)]
        return clone

    def astype(self, dtype):
        clone = super().astype(dtype)
        clone.cells = [cell.astype(dtype) for cell in self.cells]
        return clone

    @property
    def has_backward(self):
        return all(cell.has_backward for cell in self.cells)

    def get_config(self):
        return {"cells": [serialize(cell) for cell in self.cells], **self._base_config()}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        cells = [deserialize(spec, custom_objects) for spec in config.pop("cells")]
        return cls(cells, **config)

    def __repr__(self):
        inner = ", ".join(repr(cell) for cell in self.cells)
        return f"StackedRNNCells([{inner}])"
