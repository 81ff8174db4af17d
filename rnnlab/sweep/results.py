"""What a sweep returns: a table of the finished points, their arrays on demand, and the errors."""

from dataclasses import dataclass


@dataclass
class TaskError:
    """A grid point whose task raised.

    params: the point (dict); message: ``"ValueError: ..."``; traceback: the
    traceback's text, as printed on the worker.
    """

    params: dict
    message: str
    traceback: str


class SweepResult:
    """The results of `rnnlab.sweep`.

    Attributes:
        table: pandas DataFrame, one row per finished grid point in grid order
            (index 0, 1, ...): the parameters, then the scalar results.  A
            point whose task raised has no row.
        errors: list of `TaskError`, in grid order; empty when every task finished.
    """

    def __init__(self, table, keys, array_names, errors, store=None, arrays=None):
        """keys, array_names: one per row of ``table``; arrays: ``{row: {name: array}}`` when there is no store."""
        self.table = table
        self.errors = errors
        self._keys = keys
        self._array_names = array_names
        self._store = store
        self._arrays = arrays

    def array(self, row, name):
        """The array result ``name`` of ``row`` (a label of ``table.index``), read from the store on demand."""
        if row not in self.table.index:
            raise ValueError(f"row {row!r} is not a label of res.table.index ({len(self.table)} rows)")
        if name not in self._array_names[row]:
            raise ValueError(f"row {row} has no array result {name!r}; its arrays are {sorted(self._array_names[row])}")
        if self._store is None:
            return self._arrays[row][name].copy()  # a copy, as from the store: changing it changes no result
        return self._store.array(self._keys[row], name)

    def __repr__(self):
        return f"SweepResult({len(self.table)} rows, {len(self.errors)} errors)"
