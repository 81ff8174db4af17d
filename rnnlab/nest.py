"""Helpers for nested state structures.

A cell's ``state_size`` is an ``int`` (one state vector), or a list or tuple
whose leaves are ints, nested as deep as needed.  ``StackedRNNCells`` for
example has ``state_size == ([8, 8], 4)``: an LSTM's ``[h, c]`` followed by a
SimpleRNN's ``h``.  States follow the same structure with arrays as leaves.

The RNN driver works on the *flat* list of leaves; cells see the nested form.
"""

import numpy as np


def is_nested(structure):
    """True for a list or tuple (the only containers a state structure uses)."""
    return isinstance(structure, (list, tuple))


def flatten(structure):
    """Return the leaves of ``structure`` as a flat list, depth first.

    >>> flatten(([8, 8], 4))
    [8, 8, 4]
    """
    if not is_nested(structure):
        return [structure]
    leaves = []
    for item in structure:
        leaves.extend(flatten(item))
    return leaves


def pack_sequence_as(structure, flat):
    """Inverse of :func:`flatten`: put the leaves ``flat`` into ``structure``'s shape.

    >>> pack_sequence_as(([8, 8], 4), ["h1", "c1", "h2"])
    (['h1', 'c1'], 'h2')
    """
    flat = list(flat)
    if len(flat) != len(flatten(structure)):
        raise ValueError(
            f"expected {len(flatten(structure))} leaves for structure {structure!r}, got {len(flat)}"
        )
    packed, _ = _pack(structure, flat, 0)
    return packed


def _pack(structure, flat, position):
    if not is_nested(structure):
        return flat[position], position + 1
    items = []
    for item in structure:
        packed, position = _pack(item, flat, position)
        items.append(packed)
    return type(structure)(items), position


def map_structure(fn, structure):
    """Apply ``fn`` to every leaf, keeping the nesting."""
    return pack_sequence_as(structure, [fn(leaf) for leaf in flatten(structure)])


def state_list(state_size):
    """The top-level list form of a state structure, as ``call`` receives it.

    An int ``state_size`` becomes ``[state_size]``: states always arrive as a list.
    """
    return list(state_size) if is_nested(state_size) else [state_size]


def describe_shapes(structure):
    """A readable summary of array shapes in a structure, for error messages."""
    if is_nested(structure):
        return "[" + ", ".join(describe_shapes(item) for item in structure) + "]"
    shape = getattr(structure, "shape", None)
    return str(tuple(shape)) if shape is not None else type(structure).__name__

