"""The store of a sweep: one file per finished task, written so that nothing is lost or half-written.

A store is a folder.  Each finished task is one file, ``PATH/<key>.npz``: a
zip archive in numpy's .npz layout, holding

    entry.json      the function's name, the parameters, the scalar results and the names of the arrays
    <name>.npy      one member per array result

``<key>`` is the task's key (`rnnlab.sweep.grid.key`).  Nothing in a
store is a pickle (arrays are read back with ``allow_pickle=False``), so
reading a store cannot run code.

A file is written under a temporary name, ``PATH/.tmp-<key>-<random>.npz``,
and then renamed to ``PATH/<key>.npz``.  A rename is atomic, so an entry is
there whole or not at all, even if its writer is killed halfway; when two
sweeps store the same task at once, one whole file replaces the other, and
both hold a valid result.  Every member of a zip archive carries a CRC-32
checksum of its bytes.  `Store.load` reads every member and checks it,
so an entry damaged afterwards (by a disk, a sync tool, a person) raises
`CorruptEntry`, and the sweep recomputes it.  Files whose names start
with ``.tmp-`` are never read; a killed sweep may leave some behind, and they
may be deleted when no sweep is writing.
"""

import json
import os
import uuid
import zipfile
from pathlib import Path

import numpy as np


class CorruptEntry(ValueError):
    """A store entry that cannot be read, does not match its checksums, or belongs to another key."""


class Store:
    """A folder of finished tasks.

    path: a folder, created if missing (with its parents).
    """

    def __init__(self, path):
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"store must be a folder path (str or pathlib.Path) or None, got {type(path).__name__}")
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise ValueError(f"store={str(path)!r} is a file; expected a folder (it is created if missing)")
        self.path.mkdir(parents=True, exist_ok=True)

    def file(self, key):
        """The file of the entry of ``key``."""
        return self.path / f"{key}.npz"

    def load(self, key):
        """The entry of ``key`` (the dict written by `save`, without the arrays), or None if there is none.

        Raises CorruptEntry when the entry cannot be read, does not match its checksums or is another key's.
        """
        if not self.file(key).exists():
            return None
        try:
            with zipfile.ZipFile(self.file(key)) as archive:
                damaged = archive.testzip()  # reads every member and checks its CRC-32
                entry = None if damaged else json.loads(archive.read("entry.json"))
        except Exception as error:  # truncated, garbled, not a zip at all: whatever cannot be read is corrupt
            raise CorruptEntry(f"it cannot be read: {type(error).__name__}: {error}") from None
        if damaged:
            raise CorruptEntry(f"its member {damaged} does not match its checksum")
        if not isinstance(entry, dict) or entry.get("key") != key:  # a file copied or renamed by hand
            raise CorruptEntry("it is not the entry of this key")
        return entry

    def save(self, key, entry, arrays):
        """Store one finished task.

        entry: a JSON-able dict (the key is added to it); arrays: ``{name: numpy array}``.
        """
        temporary = self.path / f".tmp-{key}-{uuid.uuid4().hex}.npz"
        with zipfile.ZipFile(temporary, "w") as archive:
            # not sort_keys: the scalars keep fn's order, which is the order of the table's columns
            archive.writestr("entry.json", json.dumps({**entry, "key": key}, indent=1))
            # what np.savez does, by hand: np.savez(f, **arrays) would refuse an array named "file"
            for name, array in arrays.items():
                with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, array, allow_pickle=False)
        os.replace(temporary, self.file(key))  # atomic: the entry appears whole

    def discard(self, key):
        """Remove the entry of ``key`` (a corrupt one)."""
        self.file(key).unlink(missing_ok=True)

    def array(self, key, name):
        """The array ``name`` of the entry of ``key``, read from disk."""
        with np.load(self.file(key), allow_pickle=False) as data:
            return data[f"{name}.npy"]  # by its member name, which no other member can have
