"""The custom-cell scan: a fused ``@njit`` time loop around a custom cell's own step function.

The built-in cells have hand-fused kernels (``cells/*/cpu.py``).  A custom
cell gets the same loop -- masking, ``go_backwards``, initial and final
states, BPTT with truncation -- by writing one step (and optionally its
backward) as a small ``@njit`` function on (batch, ...) arrays:

```text
    step(x, state, weights, params, new_state, output, cache)
    backward(x, state, weights, params, cache, d_output, d_new_state, d_x, d_state, d_weights)
```

* ``x`` (B, F) is the step's input and ``state`` (B, S) the state before the
  step: the cell's flat states side by side (an LSTM-like cell with states
  [h, c] of U units each sees S = 2U columns, h first).  A ``TensorShape``
  leaf takes as many columns as it holds numbers, in C order: the (B, 2, 3)
  state of ``TensorShape([2, 3])`` arrives reshaped to (B, 6).
* ``weights`` is the tuple of the cell's weight arrays (``cell.weights``
  order) and ``params`` the tuple ``cell.numba_params()`` (constants such as
  a leak rate; ``()`` by default).
* ``step`` writes ``new_state`` (B, S), ``output`` (B, O) and ``cache``
  (B, C): whatever its backward needs, C = ``cell.numba_cache_size()``
  columns (0 by default).  A ``TensorShape`` output is flat here too
  (O = the product of its dims); the layer returns it as (B, *dims).
* ``backward`` gets ``d_output`` (B, O) and ``d_new_state`` (B, S), the
  gradients of one step as in the cell's Python ``backward``.  It *writes*
  ``d_x`` (B, F) and ``d_state`` (B, S) and *adds* its weight gradients into
  ``d_weights``, a tuple of arrays shaped like ``weights``.

The cell names them ``numba_step`` and ``numba_backward`` (usually
``staticmethod``s) and is registered once:

```text
    rnnlab.backends.numba.custom_scan.register(MyCell)   # backend="numba" and "auto" now run it here
```

The readable ``call``/``forward``/``backward`` remain the specification (and
``bptt`` still requires the Python ``backward``).  Without ``numba_backward``,
BPTT replays the readable forward and backward in Python; ``tape.gates``
always comes from such a replay.  See ``docs/kernels.md`` for a worked cell.

Compilation: a jitted function passed as an argument makes numba's on-disk
cache useless (the cache key would be the function object of one process), so
the loop is instead built by a factory that closes over the step function.
Each loop is compiled once per process and step function and kept in
`LOOPS`; it is not cached on disk.  Decorate the step functions with
``@numba.njit(cache=True)``: their own machine code is then cached, and each
new process only compiles the small loop around them.
"""

import numpy as np

from ... import nest
from ...cells import registry
from ...types import Gradients, SequenceRun, Tape, truncated_sweeps
from .. import python
from .common import REPEAT, ZERO, carry_masked_states, mask_outputs, output_gradient, step_state_gradient
from .jit import jit

__all__ = ["register", "forward_loop", "backward_loop", "LOOPS", "unsupported", "scan", "backward"]

#: (direction, step function) -> the compiled fused loop, for this process.
LOOPS = {}


def register(cell_class):
    """Run ``cell_class`` (which defines ``numba_step``) through this scan on backend "numba"/"auto".

    Returns the class, so it also works as a class decorator.
    """
    registry.declare_backend(cell_class, "numba", __name__)
    return cell_class


def forward_loop(step):
    """The fused forward loop around ``step``, built once per step function.

    ``loop(X, S, weights, params, outputs, caches, mask, output_mode)`` with
    X (T, B, F), S (T+1, B, S) whose entry 0 is the initial state, outputs
    (T, B, O), caches (T, B, C), mask (T, B) bool and output_mode REPEAT or ZERO.
    """
    key = ("forward", step)
    if key not in LOOPS:

        @jit(cache=False)  # closes over `step`: not cacheable across processes
        def loop(X, S, weights, params, outputs, caches, mask, output_mode):
            for t in range(X.shape[0]):
                step(X[t], S[t], weights, params, S[t + 1], outputs[t], caches[t])
                carry_masked_states(t, mask, S, 0, S.shape[1])
                mask_outputs(t, mask, output_mode, outputs, 0, S.shape[1])

        LOOPS[key] = loop
    return LOOPS[key]


def backward_loop(step_backward):
    """The fused backward loop around ``step_backward``, built once per function.

    ``loop(X, S, weights, params, caches, d_outputs, mask, carry_output, first, last,
    d_state, d_carry, d_X, d_weights, state_grads, out_start, out_stop)`` walks
    steps ``last`` down to ``first``.  d_state (B, S): gradient on the state after
    step ``last`` on entry, on the state entering ``first`` on exit.  d_carry
    (B, O): gradient on an output that later masked steps repeated (in/out).
    d_X (T, B, F) receives the input gradients of the walked steps; d_weights
    accumulates.  state_grads (T, B, S) accumulates dL/ds_t; the output's
    gradient is added to columns out_start:out_stop (the state that is the output).
    """
    key = ("backward", step_backward)
    if key not in LOOPS:

        @jit(cache=False)
        def loop(X, S, weights, params, caches, d_outputs, mask, carry_output, first, last,
                 d_state, d_carry, d_X, d_weights, state_grads, out_start, out_stop):
            B, width = d_state.shape
            zero = d_state.dtype.type(0)
            d_cell_out = np.zeros_like(d_carry)
            d_new = np.zeros_like(d_state)
            d_prev = np.zeros_like(d_state)
            for t in range(last, first - 1, -1):
                output_gradient(t, mask, carry_output, d_outputs, d_carry, d_cell_out, 0, B)
                for b in range(B):
                    keep = mask[t, b]
                    for j in range(width):
                        state_grads[t, b, j] += d_state[b, j]
                        d_new[b, j] = d_state[b, j] if keep else zero
                    for j in range(out_stop - out_start):
                        state_grads[t, b, out_start + j] += d_cell_out[b, j]
                step_backward(X[t], S[t], weights, params, caches[t], d_cell_out, d_new, d_X[t], d_prev,
                              d_weights)
                step_state_gradient(t, mask, d_prev, d_state, 0, B)

        LOOPS[key] = loop
    return LOOPS[key]


# -- the kernel module interface of rnnlab.backends ----------------------------------------------


def unsupported(cell):
    if getattr(cell, "numba_step", None) is None:
        return (f"{type(cell).__name__} has no numba_step, so the custom-cell scan cannot run it "
                "(see rnnlab.backends.numba.custom_scan)")
    return None


def _weights(cell):
    return tuple(np.require(w, requirements=["C", "W"]) for w in cell.weights)


def _params(cell):
    return tuple(cell.numba_params()) if hasattr(cell, "numba_params") else ()


def _cache_size(cell):
    return int(cell.numba_cache_size()) if hasattr(cell, "numba_cache_size") else 0


def _widths(cell):
    """The columns of each flat state leaf side by side: an int leaf n is n wide, TensorShape([2, 3]) 6."""
    return [nest.leaf_size(size) for size in nest.flatten(cell.state_size)]


def _split(array, cell):
    """(..., S) -> the flat list of state leaves, (..., *dims) copies: the states side by side, separated."""
    edges = np.cumsum([0] + _widths(cell))
    return [array[..., a:b].copy().reshape(array.shape[:-1] + nest.leaf_shape(size))
            for a, b, size in zip(edges[:-1], edges[1:], nest.flatten(cell.state_size))]


def _joined(states):
    """The flat list of state leaves (B, *dims) -> (B, S), side by side: the inverse of `_split`."""
    return np.concatenate([s.reshape(s.shape[0], -1) for s in states], axis=1)


class ScanRecord:
    """What the custom-cell scan keeps for BPTT: inputs, states of every step and the step caches."""

    def __init__(self, layer, X, S, caches, mask):
        self.layer, self.X, self.S, self.caches, self.mask = layer, X, S, caches, mask

    def stacked_states(self):
        """Flat list of (T, B, size) (or (T, B, *dims)): the states after every step."""
        return _split(self.S[1:], self.layer.cell)

    def gates(self, cell):
        """``{name: (T, B, U)}``: for a custom cell, from a replay of its readable forward."""
        if not cell.gate_names:
            return {}
        run = SequenceRun(self.X, _split(self.S[0], cell), self.mask)
        return python.scan(self.layer, run, record=True)[2].gates(cell)


def scan(layer, sequence_run, record=False):
    """Run ``layer``'s custom cell through `forward_loop`."""
    cell = layer.cell
    X = np.ascontiguousarray(sequence_run.inputs)  # (T, B, F)
    T, B, _ = X.shape
    dtype = X.dtype
    S = np.empty((T + 1, B, sum(_widths(cell))), dtype)  # (T+1, B, S): states side by side
    S[0] = _joined(sequence_run.initial_states)
    mask = np.ones((T, B), bool) if sequence_run.mask is None else np.array(sequence_run.mask, bool, order="C")
    output_shape = nest.leaf_shape(cell.output_size)
    outputs = np.empty((T, B, nest.leaf_size(cell.output_size)), dtype)  # (T, B, O), a TensorShape output flat
    caches = np.zeros((T, B, _cache_size(cell)), dtype)
    mode = ZERO if layer.zero_output_for_mask else REPEAT
    forward_loop(cell.numba_step)(X, S, _weights(cell), _params(cell), outputs, caches, mask, mode)
    outputs = outputs.reshape((T, B) + output_shape)
    final_states = _split(S[-1], cell)
    if record:
        return outputs, final_states, ScanRecord(layer, X, S, caches, mask)
    return outputs, final_states


def backward(tape, d_outputs, d_final, truncate, per_step):
    """BPTT through `backward_loop`, or a Python replay when the cell has no ``numba_backward``."""
    cell, record = tape.cell, tape.record
    step_backward = getattr(cell, "numba_backward", None)
    if step_backward is None:
        return _replay_in_python(tape, d_outputs, d_final, truncate, per_step)
    loop = backward_loop(step_backward)
    X, S, mask = record.X, record.S, record.mask
    T, B, _ = X.shape
    widths = _widths(cell)
    weights, params = _weights(cell), _params(cell)
    d_outputs = np.ascontiguousarray(d_outputs.reshape(T, B, -1))  # (T, B, O): a TensorShape output flat
    out_start = out_stop = 0
    if cell.output_state_index is not None:
        out_start = sum(widths[: cell.output_state_index])
        out_stop = out_start + widths[cell.output_state_index]
    carry = not tape.layer.zero_output_for_mask
    d_X = np.zeros_like(X)
    d_X_part = np.zeros_like(X)
    state_grads = np.zeros_like(S[1:])
    d_initial = np.zeros_like(S[0])
    totals = [np.zeros_like(w) for w in weights]
    steps = [[np.zeros_like(w) for w in weights] for _ in range(T)] if per_step else None

    d_final_flat = _joined(d_final).astype(X.dtype)

    def sweep(d_out, last, first, with_final):
        """Steps last..first, one loop call (or one per step, for per-step weight gradients)."""
        d_state = d_final_flat.copy() if with_final else np.zeros_like(d_final_flat)
        d_carry = np.zeros((B, d_outputs.shape[2]), X.dtype)
        windows = [(t, t) for t in range(last, first - 1, -1)] if per_step else [(last, first)]
        for hi, lo in windows:
            part = tuple(np.zeros_like(w) for w in weights)
            loop(X, S, weights, params, record.caches, d_out, mask, carry, lo, hi, d_state, d_carry, d_X_part,
                 part, state_grads, out_start, out_stop)
            d_X[lo : hi + 1] += d_X_part[lo : hi + 1]
            for k, p in enumerate(part):
                totals[k] += p
                if per_step:
                    steps[lo][k] += p
        if first == 0:
            d_initial[...] += d_state

    truncated_sweeps(d_outputs, truncate, sweep)
    per_step_weights = None
    if per_step:
        per_step_weights = [np.stack([steps[t][k] for t in range(T)]) for k in range(len(weights))]
    return Gradients(totals, d_X, _split(d_initial, cell), _split(state_grads, cell), per_step_weights)


def _replay_in_python(tape, d_outputs, d_final, truncate, per_step):
    """BPTT of the readable cell: rerun its Python forward for the caches, then the python backend's backward."""
    run = SequenceRun(tape.inputs, tape.initial_states, tape.mask)
    outputs, final_states, record = python.scan(tape.layer, run, record=True)
    python_tape = Tape(tape.layer, run, outputs, final_states, record, "python")
    return python.backward(python_tape, d_outputs, d_final, truncate, per_step)
