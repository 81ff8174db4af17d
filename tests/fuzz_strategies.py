"""Strategies and the one property checker behind tests/test_fuzz.py.

The property every fuzzed call must satisfy (see :func:`check_call`):

* it succeeds, and its outputs have the documented shapes (the test's
  ``on_success`` checks them), or
* it raises ``ValueError`` or ``TypeError`` whose message says what was expected
  and is not an error message of NumPy, Numba or the Python runtime, and the
  objects it was given (weights, a stateful layer's ``states``, ``built``
  flags, an optimizer's state) are bit-identical to what they were before.

Any other exception type (IndexError, KeyError, ZeroDivisionError, numba
errors...) propagates and fails the test.

Values are drawn as :class:`Arg` objects: the value itself plus a label (what
kind of value it is, for the falsifying example) and ``content_ok``, whether
its dtype and values are acceptable for a float array.  Whether its *shape*
is acceptable is for each test to decide, from the documented shapes.
"""

import os

import numpy as np
from hypothesis import strategies as st

import rnnlab as rl
from rnnlab.contract import Weighted

# -- what a clear error message must not look like ------------------------------------------------

#: Fragments of messages raised by NumPy, Numba or the Python runtime, not by rnnlab's own checks.
#: A ValueError/TypeError carrying one of them means bad input slipped past validation and broke
#: something inside a computation: the user is told what went wrong in the library's internals
#: (a broadcast, an index, a len() of a float) instead of what the call expected.
INTERNAL_FRAGMENTS = (
    "setting an array element with a sequence",  # np.asarray of a ragged list
    "inhomogeneous shape",                        # ... the same, NumPy >= 1.24 wording
    "could not broadcast",                        # assigning arrays of mismatched shapes
    "operands could not be broadcast",            # arithmetic on mismatched shapes
    "for axis", "concatenation axis", "axis remapping",  # "index 4 is out of bounds for axis 0", np.concatenate,
                                                  # np.broadcast_to (not "axis" alone: rnnlab may say argmax(axis=-1))
    "out of bounds",                              # indexing past the end of an array
    "index out of range",                         # ... of a list or tuple
    "object of type",                             # "object of type 'float' has no len()"
    "has no len",
    "unsupported operand",                        # arithmetic with None or a string
    "numba", "Typing", "No implementation of function",  # numba's errors (see message_problem for 'numba')
    "invalid literal for int",                    # int("x")
    "could not convert string to float",          # float("x"), np.asarray(["x"], float)
    "not subscriptable",                          # indexing None or a float
    "'NoneType'",                                 # anything done to a None ("'NoneType' object is not ...")
    "unpack",                                     # "not enough values to unpack"
    "is not iterable",                            # iterating over a scalar
    "cannot be interpreted as an integer",        # range(1.5), np.zeros((1.5, 2))
    "matmul", "core dimension",                   # np.matmul with mismatched inner sizes
    "cannot reshape",                             # reshape to an impossible shape
    "truth value of an array",                    # `if array:`
    "ufunc",                                      # a ufunc that has no loop for the dtype
    "only integer scalar arrays", "only length-1 arrays",  # int()/float() of an array
    "must be real number, not",                   # float(None) on older Pythons
    "argument must be a string or a",             # float(None), int([2])
    "not understood",                             # np.dtype("nonsense")
    "negative dimensions are not allowed",        # np.zeros((-1, 2))
    "a cannot be empty",                          # rng.choice of an empty pool
    "not supported between instances",            # comparing a str with a float
    "indices must be integers",                   # indexing a list with a str
    "can't multiply sequence", "can only concatenate",  # arithmetic on a str or a list
    "required positional argument", "unexpected keyword argument",  # a call with the wrong signature
    "zero-size array", "has no identity",         # max() of an empty array
)

#: A clear message says what was expected, or what about the argument is wrong; rnnlab's own messages
#: (checked against every ``raise`` in rnnlab/) use one of these words.  This is the weaker of the two
#: checks: the internal fragments above are checked first, so "cannot reshape" or "has no len" never
#: pass for clear because of "cannot" or "has no".
EXPECTATION_WORDS = (
    "expect", "must", "need", "only", "one of", "should", "not built", "available", "unknown",
    "not an rnnlab file", "no kernel", "positive", "at least", "at most", "between", "version", "takes",
    "got", "pass ", "call ", "asks for", "outside", "instead", "use ", "not in ", "missing", "cannot",
    "not a ", "disagree", "supported", "does not", "has no", "is empty", "no positions", "refus",
)


def message_problem(error):
    """None when ``error``'s message is clear, else what is wrong with it."""
    message = str(error)
    if len(message) < 10:
        return f"the message {message!r} is (almost) empty"
    # The backend's name as rnnlab's own messages use it ("backend 'numba' has no kernel for ...",
    # "numba.cuda.is_available() is False", "set NUMBA_ENABLE_CUDASIM=1 before numba is imported") is
    # not numba speaking; any other "numba" (numba.core.errors..., "Numba cannot ...") is.
    scanned = message
    for own in ("'numba'", '"numba"', "the numba backend", "numba.cuda.is_available()", "NUMBA_ENABLE_CUDASIM",
                "before numba is imported"):
        scanned = scanned.replace(own, "")
    for fragment in INTERNAL_FRAGMENTS:
        if fragment.lower() in scanned.lower():
            return f"the message contains {fragment!r}, an internal NumPy/Numba/Python message"
    if not any(word in message.lower() for word in EXPECTATION_WORDS):
        return "the message does not say what was expected"
    return None


# -- snapshots: what a failed call must leave bit-identical ------------------------------------------


def frozen_array(array):
    array = np.asarray(array)
    return ("array", array.dtype.str, array.shape, array.tobytes() if array.dtype.kind != "O" else repr(array))


def freeze_value(value):
    """A comparable, hashable copy of plain data with arrays (an optimizer's vars, a list of states)."""
    if isinstance(value, np.ndarray):
        return frozen_array(value)
    if isinstance(value, dict):
        return ("dict", tuple((key, freeze_value(item)) for key, item in sorted(value.items(), key=lambda kv: str(kv[0]))))
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, tuple(freeze_value(item) for item in value))
    if isinstance(value, (int, float, str, bool, type(None), np.generic)):
        return ("scalar", repr(value))
    return ("object", type(value).__name__)


def freeze(obj):
    """What a failed call must not change in ``obj``: built flags, weights, stored states, optimizer state.

    A nested dict, so :func:`describe_change` can say which part changed.
    """
    if isinstance(obj, rl.Sequential):
        return {f"layers[{k}]": freeze(layer) for k, layer in enumerate(obj.layers)} | {
            "optimizer": freeze_value(vars(obj.optimizer))}
    if isinstance(obj, rl.Bidirectional):
        return {"forward_layer": freeze(obj.forward_layer), "backward_layer": freeze(obj.backward_layer)}
    if isinstance(obj, rl.RNN):
        return {"cell": freeze(obj.cell), "states": freeze_value(obj.states)}
    if isinstance(obj, Weighted):
        snapshot = {"built": bool(obj.built), "input_size": obj.input_size,
                    "weights": tuple(frozen_array(w) for w in obj.weights) if obj.built else None}
        if isinstance(obj, rl.StackedRNNCells):
            snapshot.update({f"cells[{k}]": freeze(cell) for k, cell in enumerate(obj.cells)})
        return snapshot
    if isinstance(obj, rl.ensemble.Ensemble):
        return {name: frozen_array(getattr(obj, name)) for name in ("kernel", "recurrent_kernel", "bias")}
    return freeze_value(obj)


def describe_change(before, after, path="object"):
    """The first place where two snapshots differ, in words."""
    if isinstance(before, dict) and isinstance(after, dict):
        for key in before:
            if before[key] != after.get(key):
                if key == "built":
                    return f"{path}.built flipped from {before[key]} to {after[key]}"
                return describe_change(before[key], after.get(key), f"{path}.{key}")
    return f"{path} changed"


# -- the property -----------------------------------------------------------------------------------


class UnclearMessage(AssertionError):
    """A ValueError/TypeError whose message is internal or says nothing about what was expected."""


class ChangedOnFailure(AssertionError):
    """A failed call changed weights, stored states, a built flag or an optimizer's state."""


class ValidRefused(AssertionError):
    """Documented-valid arguments were refused."""


class InvalidAccepted(AssertionError):
    """Documented-invalid arguments were accepted."""


class NotDocumented(AssertionError):
    """A call succeeded, but its result does not have the documented shape (or holds NaN)."""


# One class per kind of violation, each raised on its own line: hypothesis reports each kind
# found in a test as a separate failure instead of only the first one.


class Outcome:
    def __init__(self, ok, value):
        self.ok, self.value = ok, value


#: With FUZZ_COLLECT=path, violations are appended to that file instead of failing (for exploration).
COLLECT = os.environ.get("FUZZ_COLLECT")


def report(problem, kind=AssertionError):
    problem = " ".join(problem.split())  # one line, whatever reprs went into it
    if COLLECT:
        with open(COLLECT, "a") as f:
            f.write(problem.replace("\n", " | ") + "\n")
        return
    if kind is UnclearMessage:
        raise UnclearMessage(problem)
    if kind is ChangedOnFailure:
        raise ChangedOnFailure(problem)
    if kind is ValidRefused:
        raise ValidRefused(problem)
    if kind is InvalidAccepted:
        raise InvalidAccepted(problem)
    if kind is NotDocumented:
        raise NotDocumented(problem)
    raise AssertionError(problem)


def both(*verdicts):
    """Three-valued AND of verdicts: False if any is False, else None if any is None, else True."""
    if any(v is not None and not v for v in verdicts):  # also numpy's False
        return False
    if any(v is None for v in verdicts):
        return None
    return True


def check_call(what, call, watch=(), expect=None, on_success=None, allowed=()):
    """Run ``call()`` and check the property (see the module docstring).

    what: a short description of the call, for the failure message.
    watch: objects a failed call must leave unchanged.
    expect: True when the arguments are valid (the call must succeed), False when
        they are documented as invalid (it must fail), None when either is fine.
    on_success: called with the result; it asserts the documented shapes.
    allowed: further exception types documented for this call (a missing file's FileNotFoundError).
    Returns an :class:`Outcome`.
    """
    before = [freeze(obj) for obj in watch]
    try:
        result = call()
    except (ValueError, TypeError) as error:
        problem = message_problem(error)
        if problem:
            report(f"{what}: {type(error).__name__}({str(error)[:300]!r}): {problem}", UnclearMessage)
        after = [freeze(obj) for obj in watch]
        for obj, b, a in zip(watch, before, after):
            if b != a:
                report(f"{what}: failed with {type(error).__name__}({str(error)[:200]!r}) but "
                       f"{describe_change(b, a, type(obj).__name__)}", ChangedOnFailure)
        if expect is True:
            report(f"{what}: valid arguments refused with {type(error).__name__}: {str(error)[:300]}", ValidRefused)
        return Outcome(False, error)
    except allowed as error:
        return Outcome(False, error)
    except Exception as error:  # noqa: BLE001 - any other type is the finding itself
        if COLLECT:
            report(f"{what}: raised {type(error).__name__}: {str(error)[:300]}")
            return Outcome(False, error)
        raise
    if expect is False:
        report(f"{what}: invalid arguments accepted (returned {type(result).__name__})", InvalidAccepted)
    if on_success is not None:
        try:
            on_success(result)
        except AssertionError as error:
            report(f"{what}: succeeded but {error}", NotDocumented)
    return Outcome(True, result)


def assert_shape(value, shape, name, dtype=None, finite=True):
    assert isinstance(value, np.ndarray), f"{name} is a {type(value).__name__}, expected an array of shape {shape}"
    assert value.shape == tuple(shape), f"{name} has shape {value.shape}, documented {tuple(shape)}"
    if dtype is not None:
        assert value.dtype == np.dtype(dtype), f"{name} has dtype {value.dtype}, expected {dtype}"
    if finite and value.dtype.kind in "fc":
        assert np.isfinite(value).all(), f"{name} holds NaN or inf"


def assert_structure(value, expected, name, dtype=None, top=True):
    """``expected``: a shape tuple, or a list of them (nested as deep as needed).

    The top level must be a list; a nested level may be a list or a tuple, since states come back
    "in the structure of cell.state_size", whose nested levels may be either.
    """
    if isinstance(expected, list):
        kinds = list if top else (list, tuple)
        assert isinstance(value, kinds), f"{name} is a {type(value).__name__}, expected a list of {len(expected)} arrays"
        assert len(value) == len(expected), f"{name} has {len(value)} entries, documented {len(expected)}"
        for i, (v, e) in enumerate(zip(value, expected)):
            assert_structure(v, e, f"{name}[{i}]", dtype, top=False)
    else:
        assert_shape(value, expected, name, dtype)


# -- values -----------------------------------------------------------------------------------------


class Arg:
    """A drawn argument: ``value``, a ``label`` for reports, and ``content_ok`` (dtype and values fine)."""

    def __init__(self, value, label, content_ok=True):
        self.value, self.label, self.content_ok = value, label, content_ok

    @property
    def shape(self):
        """np.shape(value), or None when the value is not rectangular."""
        try:
            return tuple(np.shape(self.value))
        except (ValueError, TypeError):
            return None

    def __repr__(self):
        return f"<{self.label}>"


GOOD_KINDS = ("float32", "float64", "float16", "fortran", "strided", "readonly", "list")
BAD_DTYPE_KINDS = ("int64", "bool", "complex", "object", "str")
NONFINITE_KINDS = ("nan", "inf")
ODD_KINDS = ("ragged", "scalar", "string", "dict")
ALL_KINDS = GOOD_KINDS + BAD_DTYPE_KINDS + NONFINITE_KINDS + ODD_KINDS

#: Drawn often: most calls should get past the first check.
KIND_WEIGHTS = {"float32": 6, "float64": 4, "float16": 1, "fortran": 1, "strided": 1, "readonly": 1, "list": 2}


def _weighted(kinds):
    out = []
    for kind in kinds:
        out += [kind] * KIND_WEIGHTS.get(kind, 1)
    return out


def build_array(kind, shape, seed, scale=1.0):
    """The value of ``kind`` with (nominal) ``shape``; returns an :class:`Arg`."""
    rng = np.random.default_rng(seed)
    shape = tuple(shape)
    base = (rng.normal(size=shape) * scale).astype(np.float64)
    label = f"{kind} {shape}"
    if kind in ("float32", "float64", "float16"):
        return Arg(base.astype(kind), label)
    if kind == "huge":  # finite, but far outside what a unit saturates at
        return Arg((base * 1e30).astype(np.float32), label)
    if kind == "fortran":
        return Arg(np.asfortranarray(base.astype(np.float32)), label)
    if kind == "strided":  # a non-contiguous view: every other element of a bigger array
        if not shape:
            return Arg(base, label + " (a 0-d array)")
        big = np.zeros(shape[:-1] + (2 * shape[-1],), dtype=np.float64)
        view = big[..., ::2]
        view[...] = base
        return Arg(view, label)
    if kind == "readonly":
        array = base.astype(np.float32)
        array.setflags(write=False)
        return Arg(array, label)
    if kind == "list":
        return Arg(base.tolist(), label)
    if kind == "int64":
        return Arg(np.round(base).astype(np.int64), label, False)
    if kind == "bool":
        return Arg(base > 0, label, False)
    if kind == "complex":
        return Arg(base + 1j * rng.normal(size=shape), label, False)
    if kind == "object":
        return Arg(base.astype(object), label, False)
    if kind == "str":
        return Arg(np.full(shape, "a"), label, False)
    if kind in ("nan", "inf"):
        array = base.astype(np.float32)
        if array.size == 0:
            return Arg(array, f"float32 {shape} (empty, so no {kind})")
        array.flat[rng.integers(array.size)] = np.nan if kind == "nan" else (np.inf if seed % 2 else -np.inf)
        return Arg(array, label, False)
    if kind == "ragged":  # rows of different lengths, whatever the shape
        nested = base.tolist()
        if len(shape) >= 2 and shape[0] >= 2 and shape[1] >= 1:
            nested[-1] = nested[-1][:-1]  # the last row is one shorter
        elif len(shape) >= 2 and shape[0] == 1:
            nested.append(nested[0][:-1] if shape[1] >= 1 else [0.5])  # a second, shorter (or longer) row
        elif len(shape) >= 2 and shape[0] >= 2:
            nested[-1] = [0.5]
        else:
            nested = [0.5, [0.5, 0.5]]
        return Arg(nested, f"ragged list around {shape}", False)
    if kind == "scalar":
        return Arg(0.5, "the float 0.5")
    if kind == "string":
        return Arg("zeros", "the string 'zeros'", False)
    if kind == "dict":
        return Arg({"x": base}, "a dict", False)
    raise AssertionError(kind)


@st.composite
def arrays(draw, shape, kinds=ALL_KINDS, scale=1.0):
    """An :class:`Arg` of one of ``kinds`` with nominal shape ``shape`` (a tuple or a strategy)."""
    if not isinstance(shape, tuple):
        shape = draw(shape)
    kind = draw(st.sampled_from(_weighted(kinds)))
    seed = draw(st.integers(0, 2**16))
    return build_array(kind, shape, seed, scale)


@st.composite
def shapes_near(draw, shape, zero_ok=True):
    """``shape`` most of the time, else a near miss: an axis dropped or added, a size changed or zero."""
    shape = tuple(shape)
    mode = draw(st.sampled_from(["same"] * 6 + ["drop", "add", "bigger", "smaller", "zero"]))
    if mode == "same":
        return shape
    if mode == "drop" and shape:
        axis = draw(st.integers(0, len(shape) - 1))
        return shape[:axis] + shape[axis + 1:]
    if mode == "add":
        axis = draw(st.integers(0, len(shape)))
        return shape[:axis] + (draw(st.integers(1, 2)),) + shape[axis:]
    if shape and mode in ("bigger", "smaller", "zero"):
        axis = draw(st.integers(0, len(shape) - 1))
        size = {"bigger": shape[axis] + 1, "smaller": max(shape[axis] - 1, 0), "zero": 0}[mode]
        if size == 0 and not zero_ok:
            size = shape[axis] + 1
        return shape[:axis] + (size,) + shape[axis + 1:]
    return shape


@st.composite
def masks(draw, shape):
    """An Arg for a (batch, time) mask: booleans, 0/1 ints or floats, lists (fine), or bad values."""
    shape = tuple(shape)
    kind = draw(st.sampled_from(["bool"] * 4 + ["int01", "float01", "list", "fortran", "strided", "all_false", "two",
                                                 "nan", "complex", "str", "ragged", "object"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    bits = rng.random(shape) < 0.7
    label = f"mask {kind} {shape}"
    if kind == "bool":
        return Arg(bits, label)
    if kind == "int01":
        return Arg(bits.astype(np.int64), label)
    if kind == "float01":
        return Arg(bits.astype(np.float32), label)
    if kind == "list":
        return Arg(bits.tolist(), label)
    if kind == "fortran":
        return Arg(np.asfortranarray(bits), label)
    if kind == "strided":  # a non-contiguous view
        if not shape:
            return Arg(bits, label)
        big = np.zeros(shape[:-1] + (2 * shape[-1],), bool)
        big[..., ::2] = bits
        return Arg(big[..., ::2], label)
    if kind == "all_false":
        return Arg(np.zeros(shape, bool), label)
    if kind == "two":
        return Arg(np.full(shape, 2), label, bits.size == 0)
    if kind == "nan":
        array = bits.astype(np.float64)
        if array.size:
            array.flat[0] = np.nan
        return Arg(array, label, array.size == 0)
    if kind == "complex":
        return Arg(bits + 0j, label, False)
    if kind == "str":
        return Arg(np.full(shape, "yes"), label, False)
    if kind == "object":
        return Arg(bits.astype(object), label, False)
    nested = bits.tolist()  # ragged: rows of different lengths, whatever the shape
    if len(shape) == 2 and shape[0] >= 2 and shape[1] >= 1:
        nested[-1] = nested[-1][:-1]
    elif len(shape) == 2 and shape[0] == 1:
        nested.append(nested[0][:-1] if shape[1] >= 1 else [True])
    else:
        nested = [[True, True], [True]]
    return Arg(nested, f"ragged mask around {shape}", False)


#: Arguments that should be positive ints, and whether each one is one.
POSITIVE_INT_CANDIDATES = [(1, True), (2, True), (3, True), (np.int64(2), True), (0, False), (-1, False),
                           (1.5, False), (2.0, False), ("2", False), (True, False), (None, False), ([2], False)]
