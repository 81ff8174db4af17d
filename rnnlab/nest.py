"""Helpers for nested state structures, and `TensorShape`.

A cell's ``state_size`` is a *leaf* or a list or tuple of leaves, nested as
deep as needed.  A leaf is an ``int`` (one state vector: arrays (batch, size))
or a `TensorShape` (a state with more dimensions: arrays (batch, *dims),
e.g. (batch, 2, 3) for ``TensorShape([2, 3])``).  ``StackedRNNCells`` for
example has ``state_size == ([8, 8], 4)``: an LSTM's ``[h, c]`` followed by a
SimpleRNN's ``h``.  States follow the same structure with arrays as leaves.

The RNN driver works on the *flat* list of leaves; cells see the nested form.
A TensorShape is not a list or tuple, so it is always a leaf here.
"""

import math

import numpy as np


class TensorShape:
    """The shape of one sample's state or output when it has more than one dimension.

    ``TensorShape([2, 3])`` as a ``state_size`` leaf means state arrays of
    shape (batch, 2, 3); as an ``output_size``, outputs (batch, 2, 3).  Like
    tf.keras 2's ``TensorShape`` it has `as_list`, compares equal to
    another TensorShape (or a list or tuple) with the same dims, and iterates
    over its dims.  Every dim must be a positive int.
    """

    def __init__(self, dims):
        if isinstance(dims, TensorShape):
            dims = dims.as_list()
        if not isinstance(dims, (list, tuple)):
            raise TypeError(f"TensorShape takes a list of positive ints, such as [2, 3], got {dims!r}")
        if not dims:
            raise ValueError("TensorShape needs at least one dim, such as [2, 3]; got []")
        for dim in dims:
            if isinstance(dim, (bool, np.bool_)) or not isinstance(dim, (int, np.integer)):
                raise TypeError(f"TensorShape dims must be positive ints, got {dim!r} in {list(dims)!r}")
            if dim < 1:
                raise ValueError(f"TensorShape dims must be positive ints, got {dim!r} in {list(dims)!r}")
        self.dims = tuple(int(dim) for dim in dims)

    def as_list(self):
        """The dims as a list of ints: ``TensorShape([2, 3]).as_list() == [2, 3]``."""
        return list(self.dims)

    def __eq__(self, other):
        if isinstance(other, TensorShape):
            return self.dims == other.dims
        if isinstance(other, (list, tuple)):
            return list(self.dims) == list(other)
        return NotImplemented

    def __hash__(self):
        return hash(("TensorShape", self.dims))

    def __iter__(self):
        return iter(self.dims)

    def __len__(self):
        return len(self.dims)

    def __getitem__(self, index):
        return self.dims[index]

    def __repr__(self):
        return f"TensorShape({list(self.dims)})"


def leaf_shape(size):
    """One sample's shape for a ``state_size`` leaf: ``4 -> (4,)``, ``TensorShape([2, 3]) -> (2, 3)``.

    Every state array of that leaf is (batch, *leaf_shape(size)).
    """
    return size.dims if isinstance(size, TensorShape) else (int(size),)


def leaf_size(size):
    """How many numbers one sample's leaf holds: ``4 -> 4``, ``TensorShape([2, 3]) -> 6``."""
    return math.prod(leaf_shape(size))


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
    """Inverse of `flatten`: put the leaves ``flat`` into ``structure``'s shape.

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


def describe_leaf(size):
    """A leaf's state shape for messages: ``4 -> "(batch, 4)"``, ``TensorShape([2, 3]) -> "(batch, 2, 3)"``."""
    return "(" + ", ".join(["batch", *map(str, leaf_shape(size))]) + ")"


def describe_shapes(structure):
    """A readable summary of array shapes in a structure, for error messages."""
    if is_nested(structure):
        return "[" + ", ".join(describe_shapes(item) for item in structure) + "]"
    shape = getattr(structure, "shape", None)
    return str(tuple(shape)) if shape is not None else type(structure).__name__

