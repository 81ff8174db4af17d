"""Save and load cells and layers: one ``.npz`` file of weights plus a JSON config.

`load` does not trust the file it reads.  It opens the archive with
``zipfile`` and reads each member with ``np.lib.format`` itself, never with
pickles allowed, so a file from someone else cannot run code: only float
arrays and one JSON string come out of it, and the classes it names must
already be defined (built-in, or imported by you).  Every size the file
declares is checked against what the file holds *before* memory is allocated
for it, and every problem is a ``ValueError`` that says what was expected.

A `TensorShape` in a config (a cell's state shape, say) is
written to the JSON header as ``{"__tensor_shape__": [2, 3]}`` and read back
as a TensorShape.
"""

import contextlib
import contextvars
import json
import math
import os
import tokenize
import zipfile
import zlib

import numpy as np

from .contract import deserialize, serialize
from .nest import TensorShape

FORMAT = "rnnlab"
VERSION = 1

HEADER_MEMBER = "__header__.npy"

#: The JSON key that marks a TensorShape in the header: ``{"__tensor_shape__": [2, 3]}``.
TENSOR_SHAPE_KEY = "__tensor_shape__"

# The limits below are far above anything ``save`` writes; they only stop a
# corrupt or hostile file from making ``load`` allocate memory it does not hold.

#: Largest ``__header__`` member read, in bytes.  The header is a short JSON
#: config (a few KB even for a deep model), stored as UTF-32: 4 bytes a character.
MAX_HEADER_BYTES = 2**20

#: Largest total, in bytes, that the deflated (compressed) members of one file may
#: inflate to.  ``save`` writes stored members, whose size the file's own size
#: bounds; a deflated member (``np.savez_compressed``) could claim any size.
MAX_INFLATED_BYTES = 2**30

#: ``input_size`` and every ``units`` in the config may not exceed the number of
#: weight values in the file (a built-in layer holds at least ``units`` values, and
#: the first layer's kernel has ``input_size`` rows), except that sizes up to this
#: are always allowed, for custom cells without weights.
ALWAYS_ALLOWED_SIZE = 1024

#: The dtypes a weight array may have (those of ``rnnlab`` cells and layers).
WEIGHT_DTYPES = ("float32", "float64")

# What zipfile and zlib raise for a damaged archive or member (OSError: a seek to a bad offset).
_DAMAGED = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, OSError)
# What np.lib.format raises for a header that is not a .npy header.
_NOT_NPY = (ValueError, SyntaxError, tokenize.TokenError)

# Inside ``load``: the weight values still allowed, checked by ``Weighted.add_weight``.
_weight_budget = contextvars.ContextVar("rnnlab_weight_budget", default=None)


def save(obj, path):
    """Write ``obj`` (a cell, ``RNN``, ``Bidirectional``, ``Dense`` or model) to ``path`` (.npz).

    The object must be built: its weights are saved along with its config.
    """
    if not getattr(obj, "built", True) or getattr(obj, "input_size", None) is None:
        raise ValueError(f"{type(obj).__name__} is not built yet; call it once (or build it) before saving")
    header = {"format": FORMAT, "version": VERSION, "object": serialize(obj), "input_size": obj.input_size}
    try:
        header_json = json.dumps(header, default=_encoded)
    except TypeError as error:
        raise ValueError(
            f"cannot save {type(obj).__name__}: its config holds something JSON cannot store ({error}); "
            "custom activations or initializers must be given by name to be saved"
        ) from None
    arrays = {f"weight_{i}": w for i, w in enumerate(obj.get_weights())}
    with open(path, "wb") as f:
        np.savez(f, __header__=np.array(header_json), **arrays)


def _encoded(value):
    """``json.dumps``'s fallback: a TensorShape as ``{"__tensor_shape__": dims}``; anything else is refused."""
    if isinstance(value, TensorShape):
        return {TENSOR_SHAPE_KEY: value.as_list()}
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


class _BadTensorShape(ValueError):
    """A ``{"__tensor_shape__": ...}`` entry in a header whose dims are not a TensorShape's."""


def _decoded(entry):
    """``json.loads``'s object hook: ``{"__tensor_shape__": [2, 3]}`` back into ``TensorShape([2, 3])``."""
    if set(entry) != {TENSOR_SHAPE_KEY}:
        return entry
    try:
        return TensorShape(entry[TENSOR_SHAPE_KEY])
    except (TypeError, ValueError) as error:
        raise _BadTensorShape(f"its config holds a bad TensorShape: {error}") from None


def load(path, custom_objects=None):
    """Read an object written by `save`.

    custom_objects: ``{"ClassName": cls}`` for classes defined outside rnnlab
    (subclasses of ``AbstractRNNCell`` defined in your session are found by name).

    Refused with a ``ValueError``:

    * a path that cannot be read, or anything but a zip archive whose members are exactly ``__header__.npy`` and
      ``weight_0.npy``, ``weight_1.npy``, ... (stored or deflated, not encrypted);
    * stored members that claim more bytes than the file has, deflated members that
      inflate to more than `MAX_INFLATED_BYTES`, a header over `MAX_HEADER_BYTES`;
    * a member that is not a .npy array (version 1.0 or 2.0) whose declared shape
      fills it exactly, a weight that is not float32/float64 (object arrays are never
      unpickled), a header that is not a JSON string;
    * a header that is not a dict with ``format`` "rnnlab", ``version`` 1, an
      ``object`` and a positive int ``input_size``, or that holds a TensorShape
      entry whose dims are not positive ints;
    * an ``input_size`` or a ``units`` larger than the number of weight values in the
      file (and than `ALWAYS_ALLOWED_SIZE`);
    * a config its class cannot be rebuilt from (see `rnnlab.contract.deserialize`);
    * a config whose weights, while it is built, would need more values than the file
      holds (refused before they are allocated), or whose weights do not match the file's.
    """
    header, weights = _read_archive(path)
    n_values = sum(w.size for w in weights)
    obj, input_size = _rebuild(path, header, n_values, custom_objects)
    try:
        with weight_budget(n_values):
            obj.ensure_built((None, input_size))
    except MemoryError:
        raise ValueError(f"{path}: building the object its config describes needs more memory than there is; "
                         f"the file holds only {n_values} weight values") from None
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
    try:
        obj.set_weights(weights)
    except ValueError as error:
        raise ValueError(f"{path}: its weights do not match its config: {error}") from None
    return obj


# -- reading the archive ---------------------------------------------------------


def _not_rnnlab(path, reason):
    return ValueError(f"{path} is not an rnnlab file: {reason} (expected an .npz written by rnnlab.save)")


def _read_archive(path):
    """``(header, weights)``: the decoded JSON header and the weight arrays, all checked."""
    try:
        archive_size = os.path.getsize(path)
        archive = zipfile.ZipFile(path)
    except _DAMAGED as error:  # OSError includes a missing file
        raise _not_rnnlab(path, f"it is not a readable zip archive ({error})") from None
    with archive:
        infos = _checked_members(path, archive, archive_size)
        header = _read_header(path, archive, infos.pop(HEADER_MEMBER))
        weights = [_read_weight(path, archive, infos[f"weight_{i}.npy"]) for i in range(len(infos))]
    return header, weights


def _checked_members(path, archive, archive_size):
    """``{name: ZipInfo}`` once the names, compression and declared sizes are acceptable."""
    infos = archive.infolist()
    names = [info.filename for info in infos]
    if len(set(names)) != len(names):
        raise _not_rnnlab(path, "it has two members with the same name")
    if HEADER_MEMBER not in names:
        raise _not_rnnlab(path, f"it has no {HEADER_MEMBER} member")
    allowed = {HEADER_MEMBER} | {f"weight_{i}.npy" for i in range(len(names) - 1)}
    unexpected = [name for name in names if name not in allowed]
    if unexpected:
        raise _not_rnnlab(path, f"unexpected member {unexpected[0]!r}; expected only {HEADER_MEMBER} "
                                "and weight_0.npy, weight_1.npy, ... numbered from 0")
    stored = inflated = 0
    for info in infos:
        if not 0 <= info.header_offset < archive_size:
            raise _not_rnnlab(path, f"member {info.filename!r} starts outside the file")
        if info.flag_bits & 0x1:
            raise _not_rnnlab(path, f"member {info.filename!r} is encrypted")
        if info.compress_type == zipfile.ZIP_STORED:
            stored += info.file_size
        elif info.compress_type == zipfile.ZIP_DEFLATED:
            inflated += info.file_size
        else:
            raise _not_rnnlab(path, f"member {info.filename!r} uses zip compression method {info.compress_type}; "
                                    "expected stored or deflated")
    if stored > archive_size:
        raise _not_rnnlab(path, f"its stored members claim {stored} bytes, but the file has only {archive_size}")
    if inflated > MAX_INFLATED_BYTES:
        raise _not_rnnlab(path, f"its compressed members claim to inflate to {inflated} bytes, "
                                f"more than the {MAX_INFLATED_BYTES} allowed")
    return {info.filename: info for info in infos}


def _read_npy(path, archive, info, accept, expected):
    """``(shape, fortran_order, dtype, data)`` of one .npy member.

    Its header is read and checked first: ``accept(dtype, shape)`` must hold, and
    the declared shape must fill the member exactly; only then is the data read.
    """
    name = info.filename
    try:
        f = archive.open(info)
    except _DAMAGED as error:
        raise _not_rnnlab(path, f"member {name!r} is damaged ({error})") from None
    with f:
        try:
            shape, fortran_order, dtype = _npy_header(f)
        except _DAMAGED as error:  # zipfile reads ahead, so even the CRC may be checked here
            raise _not_rnnlab(path, f"member {name!r} is damaged ({error})") from None
        except _NOT_NPY as error:
            raise _not_rnnlab(path, f"member {name!r} is not a .npy array ({error})") from None
        if not accept(dtype, shape):
            raise _not_rnnlab(path, f"member {name!r} holds an array of dtype {dtype} and shape {shape}; "
                                    f"expected {expected}")
        if any(size < 0 for size in shape):
            raise _not_rnnlab(path, f"member {name!r} declares the negative shape {shape}")
        n_bytes = math.prod(shape) * dtype.itemsize
        room = info.file_size - f.tell()
        if n_bytes != room:
            raise _not_rnnlab(path, f"member {name!r} declares shape {shape} of {dtype} ({n_bytes} bytes), "
                                    f"but holds {room} bytes of data")
        try:
            data = f.read()  # the rest of the member: exactly n_bytes; reading to its end checks the CRC
        except _DAMAGED as error:
            raise _not_rnnlab(path, f"member {name!r} is damaged ({error})") from None
    if len(data) != n_bytes:
        raise _not_rnnlab(path, f"member {name!r} is cut short: {len(data)} of {n_bytes} bytes")
    return shape, fortran_order, dtype, data


def _npy_header(f):
    """``(shape, fortran_order, dtype)`` from a .npy header; a ValueError if it is not one."""
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(f)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(f)
    raise ValueError(f".npy format version {version}; expected 1.0 or 2.0")


def _read_weight(path, archive, info):
    """One weight array: float32 or float64, of any shape."""
    shape, fortran_order, dtype, data = _read_npy(
        path, archive, info, lambda dtype, shape: dtype.name in WEIGHT_DTYPES, "a float32 or float64 array")
    return np.ndarray(shape, dtype=dtype, buffer=data, order="F" if fortran_order else "C")


def _read_header(path, archive, info):
    """The header: a JSON string, stored as a 0-d unicode array (UTF-32), decoded."""
    if info.file_size > MAX_HEADER_BYTES:
        raise _not_rnnlab(path, f"its header member is {info.file_size} bytes, more than the "
                                f"{MAX_HEADER_BYTES} allowed")
    _, _, dtype, data = _read_npy(path, archive, info, lambda dtype, shape: dtype.kind == "U" and shape == (),
                                  "a JSON string (a 0-d unicode array)")
    try:
        text = data.decode("utf-32-be" if dtype.str[0] == ">" else "utf-32-le").rstrip("\0")
        return json.loads(text, object_hook=_decoded)
    except _BadTensorShape as error:
        raise ValueError(f"{path}: {error}") from None
    except (ValueError, RecursionError) as error:  # bad UTF-32, bad JSON, nesting deeper than Python allows
        raise _not_rnnlab(path, f"its header is not valid JSON ({error})") from None


# -- rebuilding the object -------------------------------------------------------


def _rebuild(path, header, n_values, custom_objects):
    """``(obj, input_size)``: the unbuilt object the header describes, once the header is acceptable."""
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise _not_rnnlab(path, "its header is not a dict with a 'format': 'rnnlab' entry")
    version = header.get("version")
    if isinstance(version, bool) or version != VERSION:
        raise ValueError(f"{path} has rnnlab file version {version!r}; this rnnlab reads version {VERSION}")
    for key in ("object", "input_size"):
        if key not in header:
            raise ValueError(f"{path}: its header has no {key!r} entry; expected one, as rnnlab.save writes")
    input_size = _checked_size(path, "input_size", header["input_size"], n_values)
    for units in _all_units(header["object"]):
        _checked_size(path, "units", units, n_values)
    try:
        obj = deserialize(header["object"], custom_objects)
    except RecursionError:
        raise ValueError(f"{path}: its config is nested too deeply to rebuild") from None
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
    if not callable(getattr(obj, "ensure_built", None)) or not callable(getattr(obj, "set_weights", None)):
        raise ValueError(f"{path} describes a {type(obj).__name__}, which has no weights to load")
    return obj, input_size


def _checked_size(path, name, value, n_values):
    """``value`` if it is a positive int the file's ``n_values`` weight values can justify."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        shown = repr(value)
        shown = shown if len(shown) < 80 else f"a long {type(value).__name__}"
        raise ValueError(f"{path}: {name} must be a positive int, got {shown}")
    limit = max(n_values, ALWAYS_ALLOWED_SIZE)
    if value > limit:
        raise ValueError(f"{path}: its config asks for {name}={value}, but the file holds only {n_values} weight "
                         f"values and a layer with {name}={value} holds at least {value}; refusing it")
    return value


def _all_units(config):
    """Every int given as ``units`` anywhere in a nested config (walked without recursion)."""
    found, todo = [], [config]
    while todo:
        item = todo.pop()
        if isinstance(item, dict):
            units = item.get("units")
            if isinstance(units, int) and not isinstance(units, bool):
                found.append(units)
            todo.extend(item.values())
        elif isinstance(item, list):
            todo.extend(item)
    return found


# -- the weight budget -----------------------------------------------------------


@contextlib.contextmanager
def weight_budget(n_values):
    """Within this block `Weighted.add_weight` creates at most ``n_values`` weight values in all.

    ``load`` builds the object it read inside one, so that a config cannot make
    it allocate weights the file does not hold.  Outside, there is no limit.
    """
    token = _weight_budget.set({"total": n_values, "left": n_values})
    try:
        yield
    finally:
        _weight_budget.reset(token)


def reserve_weight(name, shape):
    """Take a weight of ``shape`` from the current `weight_budget`; a ValueError if it is too big.

    Called by ``Weighted.add_weight`` before it allocates anything.
    """
    budget = _weight_budget.get()
    if budget is None:
        return
    size = math.prod(shape)
    if size > budget["left"]:
        raise ValueError(f"the file holds {budget['total']} weight values, but the config asks for a weight "
                         f"{name!r} of shape {shape} ({size} values, {budget['left']} left); refusing to allocate it")
    budget["left"] -= size
