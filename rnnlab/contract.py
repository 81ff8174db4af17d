"""The cell contract: ``AbstractRNNCell``, as in tf.keras 2.x.

A cell is one step of a recurrent network.  Subclasses provide

* ``state_size``: as in tf.keras 2, "an Integer, a TensorShape or a tuple of
  Integers or TensorShapes": an int, a `TensorShape`, or a
  list or nested tuple of them.  An int leaf ``n`` means state arrays
  (batch, n), a ``TensorShape([2, 3])`` leaf state arrays (batch, 2, 3);
* ``output_size``: an int (outputs (batch, n)) or a TensorShape (outputs (batch, *dims));
* ``build(input_shape)``: creates weights with `AbstractRNNCell.add_weight`;
* ``call(inputs, states) -> (output, new_states)``: ``inputs`` is
  ``(batch, features)`` and ``states`` always arrives as a list that mirrors
  ``state_size`` (``[h]`` for ``state_size == units``).

The contract's own example, the Keras docs' ``MinimalRNNCell``, is
`rnnlab.MinimalRNNCell` (``rnnlab/cells/minimal/cell.py``): it runs
unchanged inside `rnnlab.RNN`, `rnnlab.StackedRNNCells` and
`rnnlab.Bidirectional`, and it is the template to copy.

To take part in the hand-written BPTT a cell also implements the *backward
protocol* (see `rnnlab.bptt`): ``forward(inputs, states)`` returns
``(output, new_states, cache)`` and ``backward(cache, d_output, d_new_states)``
returns ``(d_inputs, d_states, d_weights)``.
"""

import copy
import functools
import inspect
import re

import numpy as np

from . import initializers, nest, validation
from .types import DropoutMasks

_CELL_CLASSES = {}

BACKWARD_PROTOCOL_HINT = (
    "implement forward(inputs, states) -> (output, new_states, cache) and "
    "backward(cache, d_output, d_new_states) -> (d_inputs, d_states, d_weights); "
    "see the 'custom cell with its backward' section of docs/custom_cells.md"
)


def register(cls):
    """Make ``cls`` findable by name for ``from_config`` and ``load`` (cells register themselves)."""
    _CELL_CLASSES[cls.__name__] = cls
    return cls


def registered_class(class_name, custom_objects=None):
    """Look up a cell or layer class by name, for ``from_config`` and ``load``."""
    custom_objects = custom_objects or {}
    if class_name in custom_objects:
        return custom_objects[class_name]
    if class_name in _CELL_CLASSES:
        return _CELL_CLASSES[class_name]
    raise ValueError(
        f"unknown class {class_name!r}; define or import it first, or pass custom_objects={{{class_name!r}: cls}}"
    )


def serialize(obj):
    """``{"class_name": ..., "config": ...}`` for a cell or layer."""
    return {"class_name": type(obj).__name__, "config": obj.get_config()}


def deserialize(spec, custom_objects=None):
    """Rebuild a cell or layer from `serialize`'s output.

    ``spec`` must be a dict with a ``class_name`` string and a ``config`` dict.  If
    ``from_config`` fails on a missing key, an unexpected key or a value of the
    wrong type (KeyError, TypeError, AttributeError, IndexError), that is a ValueError naming
    the class.  Nested specs (an RNN's cell) are rebuilt by nested calls, whose
    ValueErrors pass through unchanged, so a message names the innermost class.
    """
    if not isinstance(spec, dict) or not isinstance(spec.get("class_name"), str) or "config" not in spec:
        got = f"a dict with keys {sorted(map(str, spec))}" if isinstance(spec, dict) else f"a {type(spec).__name__}"
        raise ValueError(f"expected a {{'class_name': str, 'config': dict}} dict, got {got}")
    class_name, config = spec["class_name"], spec["config"]
    if not isinstance(config, dict):
        raise ValueError(f"the config of {class_name} must be a dict, got a {type(config).__name__}")
    cls = registered_class(class_name, custom_objects)
    try:
        return cls.from_config(dict(config), custom_objects=custom_objects)
    except KeyError as error:
        raise ValueError(f"cannot rebuild {class_name} from its config: it has no key {error}") from error
    except (TypeError, AttributeError, IndexError) as error:
        raise ValueError(f"cannot rebuild {class_name} from its config: {error}") from error



def _recording_build(build):
    """Wrap a subclass's ``build`` so every build records ``input_size`` and sets ``built``.

    Keras does the same, which is why a custom ``build`` may forget ``self.built = True``.
    """

    @functools.wraps(build)
    def wrapper(self, input_shape):
        build(self, input_shape)
        self.input_size = int(input_shape[-1])
        self.built = True

    return wrapper


def derived_seed(seed, index):
    """A different, deterministic seed for the ``index``-th copy or part of something seeded by ``seed``.

    None stays None (fresh entropy); a ``Generator`` spawns a child; an int or a
    list of ints gets ``index`` appended (``default_rng([seed, index])`` is its own stream).
    """
    if seed is None:
        return None
    if isinstance(seed, np.random.Generator):
        return seed.spawn(1)[0]
    return list(nest.flatten(seed)) + [index]


class Weighted:
    """Owns named weights: ``add_weight``, ``get_weights``/``set_weights``, ``trainable``.

    Shared by cells and layers such as `rnnlab.Dense`.  Subclasses whose
    weights live in children (stacked cells, wrappers) override ``weights``.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        register(cls)  # so from_config/load find custom classes by name
        if "build" in cls.__dict__:
            cls.build = _recording_build(cls.__dict__["build"])

    def __init__(self, name=None, dtype="float32", trainable=True, seed=None):
        self.name = name or _snake_case(type(self).__name__)
        self.dtype = validation.check_dtype_name(dtype)
        self.trainable = trainable
        self.seed = seed
        self._rng = validation.generator(seed)
        self._weight_names = []
        self._weight_rules = {}  # weight name -> (regularizer, constraint), either None
        self.built = False
        self.input_size = None

    def add_weight(self, name, shape, initializer="glorot_uniform", dtype=None):
        """Create, store as ``self.<name>`` and return a weight array drawn from ``initializer``.

        Inside ``rnnlab.load`` a weight bigger than what the file holds is refused
        (ValueError) before anything is allocated; elsewhere there is no limit.
        """
        from .io import reserve_weight  # imported here: rnnlab.io imports this module

        dtype = validation.check_dtype_name(dtype or self.dtype)
        shape = tuple(int(s) for s in shape)
        reserve_weight(name, shape)
        value = np.asarray(initializers.get(initializer)(shape, self._rng, dtype), dtype=dtype)
        if value.shape != shape:
            raise ValueError(f"initializer for {name!r} returned shape {value.shape}, expected {shape}")
        setattr(self, name, value)
        if name not in self._weight_names:
            self._weight_names.append(name)
        return value

    @property
    def weights(self):
        """The weight arrays themselves (not copies), in ``get_weights`` order."""
        return [getattr(self, name) for name in self._weight_names]

    # -- regularizers and constraints (rnnlab.regularizers, rnnlab.constraints) --------

    def set_weight_rules(self, name, regularizer=None, constraint=None):
        """Give the weight ``name`` a regularizer (a penalty on the loss) and a constraint (after each update)."""
        self._weight_rules = {**self._weight_rules, name: (regularizer, constraint)}  # a new dict: copies share none

    def weight_rules(self):
        """``(regularizer, constraint)`` for each of `weights`, in order; None where there is none."""
        return [self._weight_rules.get(name, (None, None)) for name in self._weight_names]

    @property
    def losses(self):
        """The current penalty of each regularized weight, as in Keras: a list of floats."""
        return [rule[0].penalty(w) for w, rule in zip(self.weights, self.weight_rules()) if rule[0] is not None]

    def regularization_gradients(self):
        """d(sum of `losses`)/d(weight) for each of `weights` (zeros where unregularized)."""
        return [np.zeros_like(w) if rule[0] is None else rule[0].gradient(w)
                for w, rule in zip(self.weights, self.weight_rules())]

    def constrained(self, weights):
        """``weights`` (a list aligned with `weights`) with each weight's constraint applied."""
        return [w if rule[1] is None else np.asarray(rule[1](w), dtype=w.dtype)
                for w, rule in zip(weights, self.weight_rules())]

    @property
    def weight_names(self):
        """The names of `weights`, in the same order (``["kernel", "recurrent_kernel", "bias"]``)."""
        return list(self._weight_names)

    def _assign_weights(self, values):
        """Store already-checked arrays, in the order of ``weights``."""
        for name, value in zip(self._weight_names, values):
            setattr(self, name, value)

    def get_weights(self):
        """Copies of the weights, in Keras order (see each class's docstring)."""
        return [w.copy() for w in self.weights]

    def set_weights(self, weights):
        """Replace the weights; counts and shapes must match ``get_weights()`` exactly.

        Everything is checked before anything is assigned, so a failed call changes nothing.
        """
        if not self.built:
            raise ValueError(f"{self.name} is not built yet; call build(input_shape) before set_weights")
        current = self.weights
        if not isinstance(weights, (list, tuple)):
            raise TypeError(f"set_weights expects a list of {len(current)} arrays, got {type(weights).__name__}")
        if len(weights) != len(current):
            raise ValueError(
                f"{self.name} expects {len(current)} weight arrays with shapes "
                f"{[w.shape for w in current]}, got {len(weights)}"
            )
        checked = validation.arrays_of_shapes(weights, [w.shape for w in current], "weights", self.dtype,
                                              lambda weight, shape, got: f"{weight} must have shape {shape}, got {got}")
        self._assign_weights([w.copy() for w in checked])

    def ensure_built(self, input_shape):
        """Build for ``input_shape`` unless already built (``__call__`` does this on first use)."""
        if not self.built:
            self.build(tuple(input_shape))

    def fresh_copy(self, seed=None):
        """An unbuilt copy with the same settings and a new ``seed``: new weights on first build.

        Works for any subclass, even one without ``get_config``.
        """
        clone = copy.copy(self)
        for name in self._weight_names:
            clone.__dict__.pop(name, None)
        clone._weight_names, clone._weight_rules = [], {}
        clone.seed, clone._rng = seed, np.random.default_rng(seed)
        clone.built, clone.input_size = False, None
        return clone

    def astype(self, dtype):
        """A copy that computes in ``dtype``, with the weights cast to it (used by gradient checks)."""
        clone = copy.copy(self)
        clone.dtype = validation.check_dtype_name(dtype)
        clone._weight_names = list(self._weight_names)
        clone._rng = copy.deepcopy(self._rng)
        for name in self._weight_names:
            setattr(clone, name, getattr(self, name).astype(clone.dtype))
        return clone

    def count_params(self):
        return int(sum(w.size for w in self.weights))

    def _base_config(self):
        return {"name": self.name, "dtype": self.dtype, "trainable": self.trainable, "seed": self.seed}

    def get_config(self):
        return self._base_config()

    @classmethod
    def from_config(cls, config, custom_objects=None):
        return cls(**config)


class AbstractRNNCell(Weighted):
    """Base class of every cell.  See the module docstring for the contract."""

    #: Which flat state leaf the output equals (h for the built-in cells), or None.
    #: BPTT uses it to report the total gradient dL/dh_t in ``grads.state_grads``.
    output_state_index = None

    #: Names of the cache entries that `rnnlab.bptt` shows as gates on the tape.
    gate_names = ()

    #: Whether ``call`` and ``forward`` take ``dropout=`` masks (`rnnlab.types.DropoutMasks`).
    #: Cells that do have the rates ``dropout`` and ``recurrent_dropout``, as in tf.keras 2.
    takes_dropout = False
    dropout = 0.0
    recurrent_dropout = 0.0

    def dropout_masks(self, batch_size, features, training, inputs=None, recurrent=None):
        """The `DropoutMasks` of one layer call, or None for no dropout.

        As tf.keras 2: only with ``training=True``, one input mask (B, F) when
        ``dropout > 0`` and one recurrent mask (B, U) when ``recurrent_dropout > 0``,
        each entry 0 with probability ``rate`` and 1 / (1 - rate) otherwise, drawn from
        the cell's seeded generator.  ``inputs`` and ``recurrent``: explicit masks
        (checked arrays, for tests and golden files) used instead of drawn ones.
        """
        if training is not True:
            if inputs is not None or recurrent is not None:
                raise ValueError("explicit dropout masks are applied only with training=True, as dropout is")
            return None
        if (inputs is not None or recurrent is not None) and not self.takes_dropout:
            raise ValueError(f"{type(self).__name__} takes no dropout masks")

        def draw(rate, size):
            keep = self._rng.random((batch_size, size)) >= rate
            return (keep / (1.0 - rate)).astype(self.dtype)

        if inputs is None and self.dropout > 0:
            inputs = draw(self.dropout, features)
        if recurrent is None and self.recurrent_dropout > 0:
            recurrent = draw(self.recurrent_dropout, nest.flatten(self.state_size)[0])
        if inputs is None and recurrent is None:
            return None
        return DropoutMasks(inputs, recurrent)

    @property
    def state_size(self):
        raise NotImplementedError(f"{type(self).__name__} must define state_size")

    @property
    def output_size(self):
        """Defaults to the size of the first state, as for most cells."""
        return nest.flatten(self.state_size)[0]

    def build(self, input_shape):
        """Create the weights for inputs of shape ``(batch, features)``. Subclasses override."""
        self.built = True

    def call(self, inputs, states):
        raise NotImplementedError(f"{type(self).__name__} must define call(inputs, states)")

    def forward(self, inputs, states, **constants):
        """``call`` plus a cache for `backward`.  Cells with a backward override this.

        ``constants=[...]`` is passed on for a cell that `takes_constants`.
        """
        output, new_states = self.checked_call(inputs, states, **constants)
        return output, new_states, None

    def backward(self, cache, d_output, d_new_states):
        raise NotImplementedError(
            f"{type(self).__name__} has no backward, so BPTT cannot run through it; {BACKWARD_PROTOCOL_HINT}"
        )

    @property
    def has_backward(self):
        return type(self).backward is not AbstractRNNCell.backward

    @property
    def takes_constants(self):
        """Whether ``call`` has a ``constants`` argument, as in tf.keras 2 (attention-style cells).

        Such a cell gets ``call(inputs, states, constants=[c, ...])`` at every
        step, with the layer call's ``constants``; its ``forward`` takes them too,
        and its ``backward`` returns a fourth result, ``d_constants``.
        """
        return _call_takes_constants(type(self).call)

    def get_initial_state(self, inputs=None, batch_size=None, dtype=None):
        """Zero states in the structure of ``state_size``, as a list: (batch, *dims) for each leaf.

        The batch size comes from ``inputs`` (its first axis) when given, and so
        does the dtype when ``dtype`` is None and ``inputs`` are floating point (as in Keras).
        """
        if inputs is not None:
            shape = np.shape(validation.rectangular(inputs, "inputs", "an array of shape (batch, ...)"))
            if len(shape) == 0:
                raise ValueError(f"get_initial_state takes the batch size from inputs of shape (batch, ...), "
                                 f"got a scalar {inputs!r}")
            batch_size = shape[0]
            input_dtype = getattr(inputs, "dtype", None)
            if dtype is None and input_dtype is not None and np.dtype(input_dtype).name in validation.FLOAT_DTYPES:
                dtype = input_dtype
        if batch_size is None:
            raise ValueError("get_initial_state needs inputs or batch_size")
        batch_size = validation.count(batch_size, "batch_size")
        dtype = validation.check_dtype_name(dtype or self.dtype)
        sizes = validation.state_size(self)
        zeros = nest.map_structure(lambda size: np.zeros((batch_size, *nest.leaf_shape(size)), dtype=dtype), sizes)
        return nest.state_list(zeros)

    def __call__(self, inputs, states=None, constants=None):
        """Run one step: check the arguments, build on first use, then ``call``.

        inputs: (batch, features).  states: a list mirroring ``state_size``
        (defaults to zeros).  constants: for a cell that `takes_constants`.
        Returns ``(output, new_states)`` with output (batch, output_size) (or (batch, *dims)) and
        new_states a list like ``states``.
        """
        inputs = validation.step_inputs(inputs, self.dtype, self.input_size if self.built else None)
        constants = validation.constants(constants, self, inputs.shape[0], self.dtype)
        if states is None:
            flat = nest.flatten(self.get_initial_state(inputs))
        else:
            flat = validation.flat_states(states, self.state_size, inputs.shape[0], self.dtype)
        self.ensure_built((None, inputs.shape[1]))
        return self.checked_call(inputs, self.pack_states(flat), **({} if constants is None else
                                                                     {"constants": constants}))

    def pack_states(self, flat_states):
        """Turn a flat list of state arrays into the nested list ``call`` expects."""
        return nest.state_list(nest.pack_sequence_as(self.state_size, flat_states))

    def checked_call(self, inputs, states, **constants):
        """``call`` with its result normalised: new states always come back as a list.

        Keras allows ``return output, output`` for a single-state cell; we accept it too.
        ``constants=[...]`` is passed on, for a cell that `takes_constants`.
        """
        output, new_states = self.call(inputs, states, **constants)
        if not nest.is_nested(new_states):
            new_states = [new_states]
        return output, list(new_states)

    def __repr__(self):
        built = f", input_size={self.input_size}" if self.built else ", unbuilt"
        return f"{type(self).__name__}(state_size={self.state_size!r}, dtype={self.dtype!r}{built})"


@functools.lru_cache(maxsize=None)
def _call_takes_constants(call):
    # cached per call function: inspect.signature costs tens of microseconds, and every layer call asks
    return "constants" in inspect.signature(call).parameters


def _snake_case(name):
    """``SimpleRNNCell`` -> ``simple_rnn_cell``: split before each capitalised word and each acronym."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()

