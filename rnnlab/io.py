"""Save and load cells and layers: one ``.npz`` file of weights plus a JSON config.

Files are read with ``allow_pickle=False``, so loading a file from someone
else cannot run code: only arrays and a JSON string come out of it, and the
classes it names must already be defined (built-in, or imported by you).
"""

import json
import zipfile

import numpy as np

from .contract import deserialize, serialize

FORMAT = "rnnlab"
VERSION = 1


def save(obj, path):
    """Write ``obj`` (a cell, ``RNN``, ``Bidirectional``, ``Dense`` or model) to ``path`` (.npz).

    The object must be built: its weights are saved along with its config.
    """
    if not getattr(obj, "built", True) or getattr(obj, "input_size", None) is None:
        raise ValueError(f"{type(obj).__name__} is not built yet; call it once (or build it) before saving")
    header = {"format": FORMAT, "version": VERSION, "object": serialize(obj), "input_size": obj.input_size}
    try:
        header_json = json.dumps(header)
    except TypeError as error:
        raise ValueError(
            f"cannot save {type(obj).__name__}: its config holds something JSON cannot store ({error}); "
            "custom activations or initializers must be given by name to be saved"
        ) from None
    arrays = {f"weight_{i}": w for i, w in enumerate(obj.get_weights())}
    with open(path, "wb") as f:
        np.savez(f, __header__=np.array(header_json), **arrays)


def load(path, custom_objects=None):
    """Read an object written by :func:`save`.

    custom_objects: ``{"ClassName": cls}`` for classes defined outside rnnlab
    (subclasses of ``AbstractRNNCell`` defined in your session are found by name).
    """
    try:
        with np.load(path, allow_pickle=False) as data:
            header = json.loads(str(data["__header__"]))
            weights = [data[f"weight_{i}"] for i in range(len(data.files) - 1)]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as error:
        raise ValueError(
            f"{path} is not an rnnlab file (expected an .npz written by rnnlab.save; reading it failed "
            f"with {type(error).__name__})"
        ) from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ValueError(f"{path} is not an rnnlab file: its header has no 'format': 'rnnlab' entry")
    if header.get("version") != VERSION:
        raise ValueError(f"{path} has rnnlab file version {header.get('version')!r}; this rnnlab reads version {VERSION}")
    obj = deserialize(header["object"], custom_objects)
    obj.ensure_built((None, int(header["input_size"])))
    obj.set_weights(weights)
    return obj
