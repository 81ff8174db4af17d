"""The grid of a sweep: its points, and the key that names each point in a store.

A point is a dict of parameters, ``{"gain": 0.9, "seed": 3}``: one call
``fn(**point)``.  Its key is the SHA-256 of a canonical JSON text of the
function's qualified name, the point and the rnnlab version, so the same task
gets the same key in every process and on every machine.
"""

import hashlib
import itertools
import json

import numpy as np

GRID_HELP = "expected a dict of lists, such as {'gain': [0.5, 1.0], 'seed': [0, 1]}, or a list of dicts"


def points(grid):
    """The points of ``grid``, as a list of dicts.

    grid: a dict of lists, whose product is the grid (the last name varies
    fastest, as in ``itertools.product``), or a list of dicts, which are the
    points themselves, in that order.
    """
    if isinstance(grid, dict):
        if not grid:
            raise ValueError(f"the grid is empty: {GRID_HELP}")
        columns = []
        for name, values in grid.items():
            is_list = isinstance(values, (list, tuple, range)) or isinstance(values, np.ndarray) and values.ndim == 1
            if not is_list:
                raise TypeError(f"grid[{name!r}] must be a list of values, got {type(values).__name__}: {GRID_HELP}")
            if len(values) == 0:
                raise ValueError(f"grid[{name!r}] is an empty list, so the grid has no points")
            columns.append(list(values))
        found = [dict(zip(grid, values)) for values in itertools.product(*columns)]
    elif isinstance(grid, (list, tuple)):
        if not grid:
            raise ValueError(f"the grid is empty: {GRID_HELP}")
        for i, point in enumerate(grid):
            if not isinstance(point, dict):
                raise TypeError(f"grid[{i}] must be a dict of parameters, got {type(point).__name__}: {GRID_HELP}")
        found = [dict(point) for point in grid]
    else:
        raise TypeError(f"grid must be a dict or a list, got {type(grid).__name__}: {GRID_HELP}")
    for point in found:
        for name in point:
            if not isinstance(name, str):
                raise TypeError(f"parameter names must be strings (fn is called as fn(**params)), got {name!r}")
    return found


def plain(value, where):
    """``value`` as plain JSON data: numpy scalars become Python numbers, tuples become lists.

    Raises TypeError for anything else, naming ``where`` (the parameter).
    """
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [plain(item, where) for item in value]
    raise TypeError(f"{where} is of type {type(value).__name__}, which cannot be hashed into a task key: a grid value "
                    "must be None, a bool, a number, a string, or a list of them")


def function_name(fn):
    """The qualified name of ``fn`` (``"module.name"``), which goes into every task key."""
    if not callable(fn):
        raise TypeError(f"fn must be a function fn(**params) -> dict, got {type(fn).__name__}")
    qualname = getattr(fn, "__qualname__", None)
    if qualname is None:
        # a partial or a callable object carries state that the key would not see
        raise TypeError(f"fn must be a function defined with def (its qualified name is part of every task key), "
                        f"got a {type(fn).__name__}; wrap it in a def")
    return f"{fn.__module__}.{qualname}"


def key(name, params):
    """The task key of ``fn`` called ``name`` at ``params`` (plain JSON data): a 64-digit hex string."""
    from .. import __version__  # here: rnnlab/__init__.py sets it after its imports

    text = json.dumps({"fn": name, "params": params, "rnnlab": __version__}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()
