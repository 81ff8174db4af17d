"""Layers: the ``RNN`` sequence driver, ``Bidirectional`` and a ``Dense`` readout.

``RNN`` turns a cell into a layer that eats whole sequences, with the Keras
options: ``return_sequences``, ``return_state``, ``go_backwards``,
``stateful``, ``time_major``, ``zero_output_for_mask`` and masking.  The step
loop itself runs in a *backend* (see `rnnlab.backends`); every backend
returns the same numbers.
"""

import numpy as np

from . import activations, backends, initializers, nest, validation
from .contract import AbstractRNNCell, Weighted, derived_seed, deserialize, register, serialize
from .types import SequenceRun

MERGE_MODES = ("concat", "sum", "mul", "ave", None)


@register
class RNN:
    """Run a cell over sequences.

    Args:
        cell: an `AbstractRNNCell` (or a list of cells, stacked).
        return_sequences: return the output at every step (B, T, O) instead of
            the last one (B, O).
        return_state: also return the final states: ``[y, *states]``, the states in
            the structure of ``cell.state_size`` (``[y, [h1, c1], h2]`` for stacked cells, as in tf.keras 2).
        go_backwards: process the sequence from the end; the returned sequence
            is in processing order (reversed), as in Keras.
        stateful: keep the final states of one call as the initial states of the
            next (same batch size); `reset_states` zeros them.
        time_major: inputs and sequence outputs are (T, B, ...) instead of (B, T, ...).
        zero_output_for_mask: at masked steps output zeros instead of repeating
            the previous output.
        backend: ``"python"``, ``"numba"``, ``"cuda"`` or ``"auto"``.

        unroll: accepted for tf.keras 2 compatibility; it changes nothing here
            (every backend runs its own loop).

    Call: ``layer(x, initial_state=None, mask=None)`` with x (B, T, F), an
    optional list of initial states (flat or nested like ``cell.state_size``)
    and an optional (B, T) mask of booleans ((T, B) when ``time_major``, like x).
    """

    def __init__(self, cell, return_sequences=False, return_state=False, go_backwards=False,
                 stateful=False, time_major=False, zero_output_for_mask=False, backend="auto", name=None,
                 unroll=False):
        if isinstance(cell, (list, tuple)):
            from .cells.stacked import StackedRNNCells

            cell = StackedRNNCells(list(cell))
        if not isinstance(cell, AbstractRNNCell):
            raise TypeError(f"RNN needs an AbstractRNNCell, got {type(cell).__name__}")
        validation.state_size(cell)
        self.cell = cell
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.stateful = bool(stateful)
        self.time_major = bool(time_major)
        self.zero_output_for_mask = bool(zero_output_for_mask)
        self.unroll = bool(unroll)
        self.backend = backends.check_name(backend)
        self.name = name or f"rnn_{cell.name}"
        self.states = None  # the carried states of a stateful layer: flat list of (B, size) or (B, *dims)

    # -- weights ---------------------------------------------------------------

    @property
    def built(self):
        return self.cell.built

    @property
    def dtype(self):
        return self.cell.dtype

    @property
    def weights(self):
        return self.cell.weights

    def get_weights(self):
        return self.cell.get_weights()

    def set_weights(self, weights):
        self.cell.set_weights(weights)

    @property
    def losses(self):
        """The cell's regularization penalties, a list of floats (see `rnnlab.regularizers`)."""
        return self.cell.losses

    def regularization_gradients(self):
        """The penalties' gradients, a list aligned with `get_weights`."""
        return self.cell.regularization_gradients()

    def constrained(self, weights):
        """``weights`` (aligned with `get_weights`) with the cell's constraints applied."""
        return self.cell.constrained(weights)

    @property
    def input_size(self):
        return self.cell.input_size

    def build(self, input_shape):
        """input_shape: (B, T, F) (or (T, B, F) when time_major); builds the cell for F features."""
        self.cell.ensure_built((None, input_shape[-1]))

    ensure_built = build

    # -- running ---------------------------------------------------------------

    def __call__(self, inputs, initial_state=None, mask=None, training=None, constants=None,
                 dropout_mask=None, recurrent_dropout_mask=None):
        """Run the layer.  Returns y, or ``[y, *final_states]`` with ``return_state``
        (the states nested per cell for stacked cells, see `nested_states`).

        y is (B, T, O) with ``return_sequences`` ((T, B, O) if ``time_major``), else (B, O).
        training: with True, a cell's ``dropout`` and ``recurrent_dropout`` act (one
        mask each per call, see `rnnlab.types.DropoutMasks`); otherwise they do nothing.
        constants: a list of (B, ...) arrays passed to the cell at every step, for a
        cell whose ``call`` takes ``constants`` (as in tf.keras 2; the python loop runs it).
        dropout_mask (B, F), recurrent_dropout_mask (B, U): explicit masks used instead
        of drawn ones, with ``training=True`` (for tests and golden files).
        """
        run = self.prepare(inputs, initial_state, mask, constants, training, dropout_mask, recurrent_dropout_mask)
        outputs, final_states = backends.run(self, run)
        return self.finish(run, outputs, final_states)

    def prepare(self, inputs, initial_state=None, mask=None, constants=None, training=None,
                dropout_mask=None, recurrent_dropout_mask=None):
        """`check_call`, then build the cell for the inputs' features.

        Returns a `SequenceRun` with the inputs in processing order.
        """
        run = self.check_call(inputs, initial_state, mask, constants, training, dropout_mask, recurrent_dropout_mask)
        self.cell.ensure_built((None, run.inputs.shape[-1]))
        return run

    def check_call(self, inputs, initial_state=None, mask=None, constants=None, training=None,
                   dropout_mask=None, recurrent_dropout_mask=None):
        """Check every argument of a call, and that the backend can run the cell; change nothing
        but the cell's random generator, which draws the dropout masks last.

        Returns a `SequenceRun` with the inputs in processing order.
        """
        x = validation.sequence(inputs, self.dtype, self.cell.input_size if self.built else None,
                                self.time_major)  # (B, T, F)
        batch, time, features = x.shape
        constants = validation.constants(constants, self.cell, batch, self.dtype)
        if training is not None and not isinstance(training, (bool, np.bool_)):
            raise TypeError(f"training must be True, False or None, got {training!r}")
        training = None if training is None else bool(training)
        if dropout_mask is not None:
            dropout_mask = validation.dropout_mask(dropout_mask, "dropout_mask", "(batch, features)", (batch, features),
                                                  self.dtype)
        if recurrent_dropout_mask is not None:
            units = nest.flatten(self.cell.state_size)[0]
            recurrent_dropout_mask = validation.dropout_mask(recurrent_dropout_mask, "recurrent_dropout_mask",
                                                             "(batch, units)", (batch, units), self.dtype)
        # refuse an impossible backend before building anything
        backend = backends.resolve(self.backend, self.cell, constants is not None)
        mask = validation.mask(mask, batch, time, self.time_major)  # (B, T)
        if initial_state is not None:
            states = validation.flat_states(initial_state, self.cell.state_size, batch, self.dtype,
                                            name="initial_state")
        elif self.stateful and self.states is not None:
            if self.states[0].shape[0] != batch:
                raise ValueError(
                    f"this stateful layer carries states for batch size {self.states[0].shape[0]}, "
                    f"got a batch of {batch}; call reset_states() to start over with a new batch size"
                )
            states = self.states
        else:
            states = nest.flatten(self.cell.get_initial_state(batch_size=batch, dtype=self.dtype))
        x_steps = x.transpose(1, 0, 2)  # (T, B, F): time first, the order the loop walks
        mask_steps = None if mask is None else mask.T  # (T, B)
        if self.go_backwards:
            x_steps = x_steps[::-1]
            mask_steps = None if mask_steps is None else mask_steps[::-1]
        dropout = self.cell.dropout_masks(batch, features, training, dropout_mask, recurrent_dropout_mask)
        return SequenceRun(x_steps, [s.copy() for s in states], mask_steps, constants, backend, dropout)

    def finish(self, run, outputs, final_states):
        """Shape the outputs (T, B, O) (or (T, B, *dims)) as the options ask and update stateful states."""
        if self.stateful:
            self.states = [s.copy() for s in final_states]
        if self.return_sequences:
            y = outputs if self.time_major else outputs.swapaxes(0, 1)  # (B, T, O), or (B, T, *dims)
        else:
            y = outputs[-1]
        if self.return_state:
            return [y, *self.nested_states(final_states)]
        return y

    def nested_states(self, flat_states):
        """The flat list of states in the structure of ``cell.state_size``, as ``return_state`` gives them.

        ``[h]`` for SimpleRNN, ``[h, c]`` for LSTM, ``[[h1, c1], h2]`` for a stack
        of an LSTM and a SimpleRNN (tf.keras 2 nests them per cell, too).
        """
        return nest.state_list(nest.pack_sequence_as(self.cell.state_size, list(flat_states)))

    def reset_states(self, states=None):
        """Forget the carried states (the next call starts from zeros), or set them."""
        if not self.stateful:
            raise ValueError("reset_states() is only for layers created with stateful=True")
        if states is None:
            self.states = None
            return
        leaves = nest.flatten(states) if nest.is_nested(states) else [states]
        shapes = [np.shape(validation.rectangular(leaf, "states", "a list of (batch, size) arrays")) for leaf in leaves]
        if not shapes or len(shapes[0]) < 2 or shapes[0][0] == 0:  # the batch size comes from the first state
            sizes = nest.flatten(self.cell.state_size)
            raise ValueError(f"reset_states expects a list of {len(sizes)} state arrays of shapes "
                             f"{', '.join(nest.describe_leaf(size) for size in sizes)}, "
                             f"got {nest.describe_shapes(states)}")
        checked = validation.flat_states(states, self.cell.state_size, shapes[0][0], self.dtype)
        self.states = [s.copy() for s in checked]

    # -- config ----------------------------------------------------------------

    def get_config(self):
        return {
            "cell": serialize(self.cell),
            "return_sequences": self.return_sequences,
            "return_state": self.return_state,
            "go_backwards": self.go_backwards,
            "stateful": self.stateful,
            "time_major": self.time_major,
            "zero_output_for_mask": self.zero_output_for_mask,
            "backend": self.backend,
            "name": self.name,
            "unroll": self.unroll,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        cell = deserialize(config.pop("cell"), custom_objects)
        return cls(cell, **config)

    def __repr__(self):
        options = [name for name in ("return_sequences", "return_state", "go_backwards", "stateful",
                                     "time_major", "zero_output_for_mask") if getattr(self, name)]
        extra = "".join(f", {name}=True" for name in options)
        return f"RNN({self.cell!r}{extra}, backend={self.backend!r})"


@register
class Bidirectional:
    """Run a layer forwards and a copy of it backwards, and merge the outputs.

    The backward copy gets a fresh cell from the same config (its own weights,
    seeded from the forward cell's seed) unless ``backward_layer`` is given.

    merge_mode: ``"concat"`` (last axis), ``"sum"``, ``"mul"``, ``"ave"`` or
    ``None`` (return ``[y_forward, y_backward]``).  With ``return_sequences``
    the backward outputs are flipped back into input order before merging.
    ``initial_state`` is a list whose first half goes to the forward layer and
    second half to the backward layer.  As in Keras, both layers get
    ``zero_output_for_mask = return_sequences`` (the wrapped layer is changed).  ``get_weights()`` is the forward
    layer's weights followed by the backward layer's.
    """

    def __init__(self, layer, merge_mode="concat", backward_layer=None):
        if not isinstance(layer, RNN):
            raise TypeError(f"Bidirectional wraps an RNN layer, got {type(layer).__name__}")
        if merge_mode not in MERGE_MODES:
            raise ValueError(f"merge_mode must be one of {MERGE_MODES}, got {merge_mode!r}")
        if backward_layer is None:
            config = layer.get_config()
            del config["cell"]
            config.update(go_backwards=not layer.go_backwards, name=f"backward_{layer.name}")
            backward_layer = RNN(layer.cell.fresh_copy(derived_seed(layer.cell.seed, 1)), **config)
        elif not isinstance(backward_layer, RNN):
            raise TypeError(f"backward_layer must be an RNN layer, got {type(backward_layer).__name__}")
        if backward_layer.go_backwards == layer.go_backwards:
            raise ValueError("backward_layer must have the opposite go_backwards of the forward layer")
        for option in ("return_sequences", "return_state", "stateful", "time_major"):
            if getattr(backward_layer, option) != getattr(layer, option):
                raise ValueError(f"backward_layer must have the same {option} as the forward layer "
                                 f"({getattr(layer, option)}), got {getattr(backward_layer, option)}")
        # As in Keras: masked steps of the merged sequence are zeros, and the last output is never zeroed.
        for inner in (layer, backward_layer):
            inner.zero_output_for_mask = inner.return_sequences
        self.forward_layer = layer
        self.backward_layer = backward_layer
        self.merge_mode = merge_mode

    @property
    def return_sequences(self):
        return self.forward_layer.return_sequences

    @property
    def return_state(self):
        return self.forward_layer.return_state

    @property
    def time_major(self):
        return self.forward_layer.time_major

    @property
    def dtype(self):
        return self.forward_layer.dtype

    @property
    def built(self):
        return self.forward_layer.built and self.backward_layer.built

    @property
    def input_size(self):
        return self.forward_layer.input_size

    def ensure_built(self, input_shape):
        self.forward_layer.build(input_shape)
        self.backward_layer.build(input_shape)

    @property
    def weights(self):
        return self.forward_layer.weights + self.backward_layer.weights

    def get_weights(self):
        return self.forward_layer.get_weights() + self.backward_layer.get_weights()

    @property
    def losses(self):
        return self.forward_layer.losses + self.backward_layer.losses

    def regularization_gradients(self):
        return self.forward_layer.regularization_gradients() + self.backward_layer.regularization_gradients()

    def constrained(self, weights):
        count = len(self.forward_layer.weights)
        return self.forward_layer.constrained(weights[:count]) + self.backward_layer.constrained(weights[count:])

    def set_weights(self, weights):
        count = len(self.forward_layer.weights)
        if not isinstance(weights, (list, tuple)) or len(weights) != count + len(self.backward_layer.weights):
            raise ValueError(
                f"Bidirectional expects {count + len(self.backward_layer.weights)} weight arrays "
                f"(forward then backward), got {len(weights) if isinstance(weights, (list, tuple)) else weights!r}"
            )
        # If the backward half is refused, put the forward half back, so a failure changes nothing.
        forward_old = self.forward_layer.get_weights()
        self.forward_layer.set_weights(list(weights[:count]))
        try:
            self.backward_layer.set_weights(list(weights[count:]))
        except (ValueError, TypeError):
            self.forward_layer.set_weights(forward_old)
            raise

    def split_initial_state(self, initial_state):
        """Split a flat list of initial states into (forward half, backward half)."""
        if initial_state is None:
            return None, None
        flat = nest.flatten(initial_state) if nest.is_nested(initial_state) else [initial_state]
        n_forward = len(nest.flatten(self.forward_layer.cell.state_size))
        n_backward = len(nest.flatten(self.backward_layer.cell.state_size))
        if len(flat) != n_forward + n_backward:
            raise ValueError(
                f"Bidirectional expects {n_forward + n_backward} initial state arrays "
                f"({n_forward} forward, then {n_backward} backward), got {len(flat)}"
            )
        return flat[:n_forward], flat[n_forward:]

    @property
    def layers(self):
        """``(forward_layer, backward_layer)``."""
        return self.forward_layer, self.backward_layer

    def prepare(self, inputs, initial_state=None, mask=None, constants=None, training=None):
        """Check both directions' arguments, then build both: ``(forward run, backward run)``.

        Nothing is built unless both halves pass, so a failed call changes nothing.
        Both directions get the same ``constants``, as in tf.keras 2, and each draws
        its own dropout masks with ``training=True``.
        """
        forward_state, backward_state = self.split_initial_state(initial_state)
        runs = (self.forward_layer.check_call(inputs, forward_state, mask, constants, training),
                self.backward_layer.check_call(inputs, backward_state, mask, constants, training))
        for inner, run in zip(self.layers, runs):
            inner.cell.ensure_built((None, run.inputs.shape[-1]))
        return runs

    def __call__(self, inputs, initial_state=None, mask=None, training=None, constants=None):
        runs = self.prepare(inputs, initial_state, mask, constants, training)
        scans = [backends.run(inner, run) for inner, run in zip(self.layers, runs)]
        # Only now that both directions have run may a stateful layer advance its states.
        results = [inner.finish(run, *scan) for inner, run, scan in zip(self.layers, runs, scans)]
        return self.merge(*results)

    def merge(self, forward, backward):
        """Merge the two layers' results (each y or [y, *states]) as Keras does."""
        if self.return_state:
            y_forward, forward_states = forward[0], forward[1:]
            y_backward, backward_states = backward[0], backward[1:]
        else:
            y_forward, y_backward, forward_states, backward_states = forward, backward, [], []
        if self.return_sequences:
            time_axis = 0 if self.time_major else 1
            y_backward = np.flip(y_backward, axis=time_axis)
        if self.merge_mode is None:
            merged = [y_forward, y_backward]
        elif self.merge_mode == "concat":
            merged = [np.concatenate([y_forward, y_backward], axis=-1)]
        elif self.merge_mode == "sum":
            merged = [y_forward + y_backward]
        elif self.merge_mode == "mul":
            merged = [y_forward * y_backward]
        else:
            merged = [(y_forward + y_backward) / 2]
        if self.return_state:
            return merged + list(forward_states) + list(backward_states)
        return merged[0] if len(merged) == 1 else merged

    def merge_backward(self, forward, backward, dy):
        """Undo `merge` for gradients: dL/d(merged result) -> (dL/d forward, dL/d backward).

        ``forward`` and ``backward`` are the two layers' results as `merge`
        received them; ``dy`` has the structure and shapes of the merged result
        (no broadcasting; ``None`` is zero for a state's entry).  Each returned
        gradient has the structure of its layer's result.
        """
        y_forward, forward_states = (forward[0], forward[1:]) if self.return_state else (forward, [])
        y_backward, backward_states = (backward[0], backward[1:]) if self.return_state else (backward, [])
        time_axis = 0 if self.time_major else 1
        if self.return_sequences:
            y_backward = np.flip(y_backward, axis=time_axis)  # as merge saw it
        d_merged, d_states = self._checked_merged_gradients(dy, y_forward, y_backward,
                                                            [*forward_states, *backward_states])
        n_forward = len(forward_states)  # top-level entries: a stacked cell's are lists
        if self.merge_mode is None:
            d_forward, d_backward = d_merged
        elif self.merge_mode == "concat":
            width = y_forward.shape[-1]
            d_forward, d_backward = d_merged[0][..., :width], d_merged[0][..., width:]
        elif self.merge_mode == "sum":
            d_forward, d_backward = d_merged[0], d_merged[0]
        elif self.merge_mode == "mul":
            d_forward, d_backward = d_merged[0] * y_backward, d_merged[0] * y_forward
        else:  # ave
            d_forward, d_backward = d_merged[0] / 2, d_merged[0] / 2
        if self.return_sequences:
            d_backward = np.flip(d_backward, axis=time_axis)
        if self.return_state:
            return [d_forward, *d_states[:n_forward]], [d_backward, *d_states[n_forward:]]
        return d_forward, d_backward

    def _checked_merged_gradients(self, dy, y_forward, y_backward, states):
        """dy checked against the merged result: (merged outputs' gradients, states' gradients or None)."""
        if self.merge_mode is None:
            output_shapes = [y_forward.shape, y_backward.shape]
        elif self.merge_mode == "concat":
            output_shapes = [y_forward.shape[:-1] + (y_forward.shape[-1] + y_backward.shape[-1],)]
        else:
            output_shapes = [y_forward.shape]
        n_parts = len(output_shapes) + len(states)
        if n_parts == 1:  # the result is one array, so dy is one array
            if isinstance(dy, (list, tuple)):
                raise TypeError(f"this Bidirectional layer returns one array of shape {output_shapes[0]}, "
                                f"so dy must be one array of that shape, got a {type(dy).__name__}")
            parts = [dy]
        elif not isinstance(dy, (list, tuple)) or len(dy) != n_parts:
            got = f"{len(dy)} entries" if isinstance(dy, (list, tuple)) else f"a {type(dy).__name__}"
            structure = [str(tuple(shape)) for shape in output_shapes] + [nest.describe_shapes(s) for s in states]
            raise ValueError(f"dy must have the structure of the Bidirectional output: a list of "
                             f"{n_parts} entries, {', '.join(structure)}, got {got}")
        else:
            parts = list(dy)
        names = ["dy"] if n_parts == 1 else [f"dy[{i}]" for i in range(n_parts)]
        n_outputs = len(output_shapes)
        if any(d is None for d in parts[:n_outputs]):
            raise TypeError("dy for the merged outputs must be arrays (None is allowed only for states)")
        outputs = [validation.gradient(d, name, shape, y_forward.dtype)
                   for d, name, shape in zip(parts, names, output_shapes)]
        # Each state entry is checked whole (a nest for a stacked cell) and handed on as it came.
        for d, name, like in zip(parts[n_outputs:], names[n_outputs:], states):
            validation.gradients_like(d, like, name, y_forward.dtype)
        return outputs, parts[n_outputs:]

    def get_config(self):
        return {"layer": serialize(self.forward_layer), "merge_mode": self.merge_mode,
                "backward_layer": serialize(self.backward_layer)}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        return cls(RNN.from_config(config["layer"]["config"], custom_objects), config["merge_mode"],
                   RNN.from_config(config["backward_layer"]["config"], custom_objects))

    def __repr__(self):
        return f"Bidirectional({self.forward_layer!r}, merge_mode={self.merge_mode!r})"



class Dense(Weighted):
    """A fully connected readout: ``y = act(x @ kernel + bias)``.

    x is (..., in) (for example an RNN's (B, T, H) sequence or (B, H) last
    output); y is (..., units).  Weights: ``kernel`` (in, units) and ``bias``
    (units,) when ``use_bias``, as in Keras.
    """

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        self.units = validation.units(units)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)

    def build(self, input_shape):
        self.add_weight("kernel", (input_shape[-1], self.units), self.kernel_initializer)
        if self.use_bias:
            self.add_weight("bias", (self.units,), self.bias_initializer)

    def _check(self, inputs):
        x = validation.float_array(inputs, "inputs", self.dtype)
        if x.ndim < 1 or x.shape[-1] == 0:
            raise ValueError(f"expected inputs of shape (..., features), got {x.shape}")
        if self.built and x.shape[-1] != self.input_size:
            raise ValueError(f"expected inputs with {self.input_size} features (..., {self.input_size}), got {x.shape}")
        return x

    def __call__(self, inputs):
        return self.forward(inputs)[0]

    def forward(self, inputs):
        """Returns ``(y, cache)``; ``cache`` feeds `backward`."""
        x = self._check(inputs)
        self.ensure_built(x.shape)
        pre = x @ self.kernel
        if self.use_bias:
            pre = pre + self.bias
        y = self.activation(pre)
        return y, (x, pre, y)

    def backward(self, cache, d_y):
        """da = dy * act'(a); dx = da K^T; dK = sum over leading axes of x^T da; db = sum da.

        Returns ``(d_inputs, [d_kernel, d_bias])``.
        """
        x, pre, y = cache
        d_y = validation.gradient(d_y, "d_y", y.shape, y.dtype)
        d_pre = d_y * self.activation.grad(pre, y)
        x2d, d2d = x.reshape(-1, x.shape[-1]), d_pre.reshape(-1, self.units)
        d_weights = [x2d.T @ d2d]
        if self.use_bias:
            d_weights.append(d2d.sum(axis=0))
        return d_pre @ self.kernel.T, d_weights

    def get_config(self):
        return {"units": self.units, "activation": activations.serialize(self.activation),
                "use_bias": self.use_bias,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                **self._base_config()}

    def __repr__(self):
        return f"Dense(units={self.units}, activation={self.activation.name!r}, dtype={self.dtype!r})"
