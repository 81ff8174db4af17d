"""Input checks shared by cells, layers and backends.

Every public entry point runs its arguments through these before touching any
weight or stored state, so bad input fails early with a message that names
what was expected, and a failed call changes nothing.
"""

import numpy as np

from . import nest

FLOAT_DTYPES = ("float32", "float64")


def units(value):
    """A layer's or cell's ``units``: a positive int (see `count`)."""
    return count(value, "units")


def state_size(cell):
    """Check that ``cell.state_size`` is a positive int, a TensorShape or a nest of them (a custom cell may
    get it wrong), and that ``cell.output_size`` is a positive int or a TensorShape."""
    size = cell.state_size
    leaves = nest.flatten(size)
    if not leaves or not all(_is_size(leaf) for leaf in leaves):
        raise ValueError(f"{type(cell).__name__}.state_size must be a positive int, a TensorShape or a nest "
                         f"of them, got {size!r}")
    if not _is_size(cell.output_size):
        raise ValueError(f"{type(cell).__name__}.output_size must be a positive int or a TensorShape, "
                         f"got {cell.output_size!r}")
    return size


def _is_size(value):
    """A positive int (not a bool) or a TensorShape: one leaf of a state_size, or an output_size."""
    if isinstance(value, nest.TensorShape):
        return True
    return not isinstance(value, (bool, np.bool_)) and isinstance(value, (int, np.integer)) and value >= 1


def count(value, name, minimum=1):
    """An int >= ``minimum`` (a NumPy integer is fine, a bool is not), else a ValueError."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < minimum:
        wanted = "a positive int" if minimum == 1 else f"an int >= {minimum}"
        raise ValueError(f"{name} must be {wanted}, got {value!r}")
    return int(value)


def generator(seed):
    """``np.random.default_rng(seed)`` for a seed that is None, a non-negative int, a list of them or a Generator."""
    try:
        return np.random.default_rng(seed)
    except (TypeError, ValueError):  # NumPy's message speaks of SeedSequence entropy
        raise TypeError(f"seed must be None, a non-negative int, a list of them or a numpy Generator, "
                        f"got {seed!r}") from None


def real(value, name):
    """``value`` as a finite float; a TypeError unless it is a real number (not a bool or a string)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return float(value)


def check_dtype_name(dtype):
    """Normalise a dtype argument to ``"float32"`` or ``"float64"``."""
    try:
        name = np.dtype(dtype).name
    except TypeError:
        raise TypeError(f"dtype must be 'float32' or 'float64', got {dtype!r}") from None
    if name not in FLOAT_DTYPES:
        raise TypeError(f"dtype must be 'float32' or 'float64', got {name!r}")
    return name


def float_array(value, name, dtype):
    """Return ``value`` as a finite array of ``dtype``.

    Floating-point input of another precision is cast (as Keras does); integer,
    boolean, complex and object input is a ``TypeError``; NaN or inf a ``ValueError``.
    """
    array = rectangular(value, name, "a float array")
    if array.dtype.kind != "f":
        raise TypeError(
            f"{name} must be a floating-point array (float32 or float64), got dtype {array.dtype}"
        )
    array = np.asarray(array, dtype=dtype)
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or inf; expected finite values")
    return array


def rectangular(value, name, expected):
    """``value`` as an ndarray; nested lists of uneven lengths are a TypeError naming ``expected``."""
    if isinstance(value, np.ndarray):
        return value
    try:
        return np.asarray(value)
    except (ValueError, TypeError):  # NumPy's message talks about "an inhomogeneous shape"
        raise TypeError(
            f"{name} must be {expected}; got a {type(value).__name__} that is not rectangular "
            "(nested lists of different lengths?)"
        ) from None


def sequence(x, dtype, features=None, time_major=False):
    """Check a sequence batch; return it as a ``(batch, time, features)`` array of ``dtype``."""
    layout = "(time, batch, features)" if time_major else "(batch, time, features)"
    x = float_array(x, "inputs", dtype)
    if x.ndim != 3:
        raise ValueError(f"expected inputs of shape {layout}, got an array of shape {x.shape}")
    if time_major:
        x = x.transpose(1, 0, 2)
    batch, time, got_features = x.shape
    if time == 0:
        raise ValueError(f"inputs have no timesteps (shape {layout} = {x.shape}); expected time >= 1")
    if batch == 0:
        raise ValueError(f"inputs have an empty batch (shape {layout} = {x.shape}); expected batch >= 1")
    if got_features == 0:
        raise ValueError(f"inputs have no features (shape {layout} = {x.shape}); expected features >= 1")
    if features is not None and got_features != features:
        raise ValueError(
            f"expected inputs with {features} features (the size the cell was built for), got {got_features}"
        )
    return x


def step_inputs(x, dtype, features=None):
    """Check one timestep's inputs; return a ``(batch, features)`` array."""
    x = float_array(x, "inputs", dtype)
    if x.ndim != 2:
        raise ValueError(f"expected inputs of shape (batch, features), got an array of shape {x.shape}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"inputs of shape (batch, features) = {x.shape} are empty (an empty batch or no features); "
                         "expected batch, features >= 1")
    if features is not None and x.shape[1] != features:
        raise ValueError(
            f"expected inputs with {features} features (the size the cell was built for), got {x.shape[1]}"
        )
    return x


def flat_states(states, state_size, batch, dtype, name="states"):
    """Check states against ``state_size``; return the flat list of ``(batch, *dims)`` arrays.

    Each leaf is (batch, size) for an int leaf and (batch, *dims) for a TensorShape leaf.

    ``states`` may be nested like ``state_size`` or already flat; a single array is
    accepted for a cell with one state.
    """
    sizes = nest.flatten(state_size)
    if isinstance(states, np.ndarray) and len(sizes) == 1:
        states = [states]
    if not nest.is_nested(states):
        raise TypeError(
            f"{name} must be a list of arrays (one per state: sizes {sizes}), got {type(states).__name__}"
        )
    leaves = nest.flatten(states)
    if len(leaves) != len(sizes):
        raise ValueError(
            f"expected {len(sizes)} state arrays for state_size {state_size!r}, "
            f"got {len(leaves)} with shapes {nest.describe_shapes(states)}"
        )
    return arrays_of_shapes(leaves, [(batch, *nest.leaf_shape(size)) for size in sizes], name, dtype,
                            lambda leaf, shape, got: f"expected {leaf} of shape "
                                                     f"{nest.describe_leaf(nest.TensorShape(shape[1:]))} = {shape}, "
                                                     f"got {got}")


def arrays_of_shapes(values, shapes, name, dtype, message):
    """``values`` as float arrays of ``dtype``, each of its shape in ``shapes``.

    Otherwise a ValueError with ``message(f"{name}[i]", expected shape, actual shape)``.
    """
    checked = []
    for i, (value, shape) in enumerate(zip(values, shapes)):
        array = float_array(value, f"{name}[{i}]", dtype)
        if array.shape != shape:
            raise ValueError(message(f"{name}[{i}]", shape, array.shape))
        checked.append(array)
    return checked


def shaped(value, name, *layouts, dtype="float64"):
    """``value`` as a finite float array of ``dtype`` whose shape fits one of ``layouts``.

    A layout is a tuple of ints (that exact size) and names (any size, e.g.
    ``"batch"``); a leading ``"..."`` allows any number of leading axes.  So
    ``shaped(s, "s", ("batch", 4), (4,))`` takes (B, 4) or (4,) states.
    Otherwise a ValueError that spells the layouts out.  Integers are cast: an
    analysis point such as ``[0, 0]`` is a point in state space like any other.
    """
    array = rectangular(value, name, "a float array")
    if array.dtype.kind in "iu":
        array = array.astype(dtype)
    array = float_array(array, name, dtype)
    for layout in layouts:
        fixed = layout[1:] if layout and layout[0] == "..." else layout
        if layout and layout[0] == "...":
            fits = array.ndim >= len(fixed)
        else:
            fits = array.ndim == len(fixed)
        tail = array.shape[array.ndim - len(fixed):]
        if fits and all(got == want if isinstance(want, int) else got >= 1 for got, want in zip(tail, fixed)):
            return array  # a named axis (any size) must not be empty
    expected = " or ".join("(" + ", ".join(str(axis) for axis in layout) + (",)" if len(layout) == 1 else ")")
                           for layout in layouts)
    raise ValueError(f"expected {name} of shape {expected}, got an array of shape {array.shape}")


def constants(values, cell, batch, dtype):
    """The ``constants`` of a layer call: a list of (batch, ...) float arrays, for a cell that takes them."""
    if values is None and not cell.takes_constants:
        return None
    if values is None:
        raise ValueError(f"{type(cell).__name__} takes constants (its call has a 'constants' argument); "
                         "pass constants=[c, ...], each of shape (batch, ...)")
    if not cell.takes_constants:
        raise TypeError(f"{type(cell).__name__} takes no constants (its call has no 'constants' argument, as "
                        "in tf.keras 2); define call(self, inputs, states, constants) to use them")
    values = list(values) if isinstance(values, (list, tuple)) else [values]
    if not values:
        raise ValueError(f"{type(cell).__name__} takes constants, but constants=[] holds none; "
                         "pass constants=[c, ...], each of shape (batch, ...)")
    checked = [float_array(value, f"constants[{i}]", dtype) for i, value in enumerate(values)]
    for i, array in enumerate(checked):
        if array.ndim < 1 or array.shape[0] != batch:
            raise ValueError(f"expected constants[{i}] of shape (batch, ...) with batch = {batch}, "
                             f"got an array of shape {array.shape}")
    return checked


def gradient(value, name, shape, dtype):
    """A gradient ``dL/d(result)``: a float array of exactly the result's ``shape`` (no broadcasting)."""
    array = float_array(value, name, dtype)
    if array.shape != tuple(shape):
        raise ValueError(f"expected {name} of shape {tuple(shape)} (the shape of the matching output), "
                         f"got {array.shape}")
    return array


def gradients_like(value, like, name, dtype):
    """dL/d(structure) for a nest ``like`` of arrays: the flat list of checked arrays, zeros for None.

    ``value`` mirrors ``like`` (lists inside lists, as ``return_state`` nests a
    stacked cell's states); ``None`` anywhere stands for zeros of that whole part.
    """
    if value is None:
        return [np.zeros(leaf.shape, dtype) for leaf in nest.flatten(like)]
    if not nest.is_nested(like):
        return [gradient(value, name, like.shape, dtype)]
    if not nest.is_nested(value) or len(value) != len(like):
        raise ValueError(f"expected {name} with the structure {nest.describe_shapes(like)} (None for zeros), "
                         f"got {nest.describe_shapes(value)}")
    flat = []
    for i, (part, part_like) in enumerate(zip(value, like)):
        flat.extend(gradients_like(part, part_like, f"{name}[{i}]", dtype))
    return flat


def mask(mask_value, batch, time, time_major=False):
    """Check a mask of booleans or 0/1 numbers; return it as a (batch, time) bool array.

    The mask has the layout of the inputs, as in tf.keras 2: (batch, time), or
    (time, batch) when ``time_major``.
    """
    if mask_value is None:
        return None
    layout, shape = ("(time, batch)", (time, batch)) if time_major else ("(batch, time)", (batch, time))
    array = rectangular(mask_value, "mask", f"a {layout} = {shape} array of booleans")
    if array.shape != shape:
        hint = " (with time_major=True the mask is time-major too, as in tf.keras 2)" if time_major else ""
        raise ValueError(f"expected a mask of shape {layout} = {shape}, got {array.shape}{hint}")
    array = booleans(array, "mask")
    return array.T if time_major else array


def booleans(array, name):
    """An array of booleans or 0/1 numbers, as bool."""
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold booleans or 0/1 numbers, got dtype {array.dtype}")
    if array.dtype.kind != "b" and not np.isin(array, (0, 1)).all():
        raise ValueError(f"{name} must hold only 0/1 (or True/False) values")
    return array.astype(bool)


def rate(value, name):
    """A dropout rate: a real number in [0, 1), else a ValueError (tf.keras 2 clips; rnnlab refuses)."""
    value = real(value, name)
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be a rate in [0, 1), got {value!r}")
    return value


def dropout_mask(value, name, layout, shape, dtype):
    """An explicit dropout mask: a finite float array of exactly ``shape``, whose axes ``layout`` names."""
    array = float_array(value, name, dtype)
    if array.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {layout} = {tuple(shape)}, got {array.shape}")
    return array
