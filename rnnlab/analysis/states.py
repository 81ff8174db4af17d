"""The joint state vector, one step of a cell on it, and whole trajectories.

Every analysis treats a cell as a map on one flat vector, the *joint state*
``s``: the cell's state leaves concatenated in ``nest.flatten`` order.  For
SimpleRNN, GRU and MinimalRNN ``s = h``; for LSTM ``s = [h, c]`` (size 2U),
because c carries memory too and a fixed point or a Lyapunov exponent that
ignored it would be wrong.  For ``StackedRNNCells`` ``s`` is every cell's
state, in order.  A ``TensorShape`` leaf is flattened in C order: the
(B, 2, 3) state of ``TensorShape([2, 3])`` is 6 coordinates of ``s``.

    s' = F(x, s)            x (B, F), s and s' (B, S)
"""

import numpy as np

from .. import bptt, nest, validation
from ..layers import RNN


def joint_size(cell):
    """S, the length of the joint state: how many numbers ``cell.state_size``'s leaves hold."""
    return int(sum(nest.leaf_size(size) for size in nest.flatten(cell.state_size)))


def split_state(cell, s):
    """Joint state (..., S) -> the flat list of state leaves [(..., size) or (..., *dims), ...] (views, no copy)."""
    sizes = nest.flatten(cell.state_size)
    widths = [nest.leaf_size(size) for size in sizes]
    s = validation.shaped(s, "the joint state", ("...", sum(widths)), dtype=cell.dtype)
    return [part.reshape(part.shape[:-1] + nest.leaf_shape(size))
            for part, size in zip(np.split(s, np.cumsum(widths)[:-1], axis=-1), sizes)]


def join_states(leaves, cell=None):
    """The flat list of state leaves [(..., size), ...] -> the joint state (..., S).

    With ``cell``, each leaf may have the (..., *dims) of a TensorShape leaf of
    ``cell.state_size``, and is flattened first: the inverse of `split_state`.
    """
    if not nest.is_nested(leaves) or not leaves:
        raise TypeError(f"join_states takes a non-empty list of state arrays, got {type(leaves).__name__}")
    if cell is not None:
        sizes = nest.flatten(cell.state_size)
        if len(leaves) != len(sizes):
            raise ValueError(f"{type(cell).__name__} has {len(sizes)} state leaves, got {len(leaves)} arrays")
        leaves = [_flattened(leaf, size) for leaf, size in zip(leaves, sizes)]
    dtype = "float32" if all(getattr(leaf, "dtype", None) == np.float32 for leaf in leaves) else "float64"
    arrays = [validation.shaped(leaf, f"leaves[{i}]", ("...", "size"), dtype=dtype) for i, leaf in enumerate(leaves)]
    if len({a.shape[:-1] for a in arrays}) != 1:
        raise ValueError(f"state leaves must share their leading axes (..., size), got shapes "
                         f"{[a.shape for a in arrays]}")
    return np.concatenate(arrays, axis=-1)


def _flattened(leaf, size):
    """A state leaf (..., *dims) of a TensorShape leaf as (..., its number of values); an int leaf as it is."""
    dims = nest.leaf_shape(size)
    if len(dims) == 1 or not isinstance(leaf, np.ndarray) or leaf.shape[leaf.ndim - len(dims):] != dims:
        return leaf  # join_states checks what it gets
    return leaf.reshape(leaf.shape[:leaf.ndim - len(dims)] + (-1,))


def output_rows(cell):
    """The slice of the joint state that is the cell's output (h for the built-in cells)."""
    index = cell.output_state_index
    if index is None:
        raise TypeError(f"{type(cell).__name__} does not say which state is its output (output_state_index)")
    widths = [nest.leaf_size(size) for size in nest.flatten(cell.state_size)]
    start = int(sum(widths[:index]))
    return slice(start, start + widths[index])


def step(cell, x, s):
    """One step on joint states: x (B, F), s (B, S) -> s' (B, S)."""
    x = validation.shaped(x, "x", ("batch", cell.input_size), dtype=cell.dtype)
    s = validation.shaped(s, "s", (len(x), joint_size(cell)), dtype=cell.dtype)
    _, new_states = cell.checked_call(x, cell.pack_states(split_state(cell, s)))
    return join_states(nest.flatten(new_states), cell)


def as_float64(cell):
    """The cell itself if it computes in float64, else a float64 copy (analyses need the precision)."""
    return cell if cell.dtype == "float64" else cell.astype("float64")


def trajectory(cell, x, initial_state=None, backend="auto"):
    """Run ``cell`` over inputs and return the joint state after every step.

    x: (B, T, F) or (T, F).  initial_state: joint (B, S) or (S,), default zeros.
    Returns (B, T, S) (or (T, S) for unbatched x): row t is s_t, the state
    *after* step t.  The loop runs in an `rnnlab.RNN` layer with
    ``backend`` (``"auto"`` uses the numba kernels when they exist).
    """
    features = cell.input_size if cell.built else "features"
    x = validation.shaped(x, "x", ("batch", "time", features), ("time", features), dtype=cell.dtype)
    single = x.ndim == 2
    if single:
        x = x[None]
    initial = None
    if initial_state is not None:
        S = joint_size(cell)
        s0 = validation.shaped(initial_state, "initial_state", (x.shape[0], S), (S,), dtype=cell.dtype)
        initial = split_state(cell, np.broadcast_to(s0, (x.shape[0], S)))
    layer = RNN(cell, return_sequences=True, backend=backend)
    _, tape = bptt.forward(layer, x.astype(cell.dtype, copy=False), initial_state=initial)
    states = join_states(tape.states, cell).transpose(1, 0, 2)  # (T, B, S) -> (B, T, S)
    return states[0] if single else states
