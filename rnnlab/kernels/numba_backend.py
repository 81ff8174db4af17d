"""Host side of ``backend="numba"``: NumPy glue around the ``@njit`` time loops.

:mod:`rnnlab.backends` imports this module the first time a layer runs on
``"numba"`` (or ``"auto"``); it imports numba and the kernels, but compiles
nothing: each kernel compiles at its first call, or loads from the on-disk
cache (``cache=True``).

How one cell runs (the kernels sit beside each readable cell, in ``cpu.py``):

1. **Before the loop**, one GEMM projects the inputs of every step:
   ``A = X K + b``, (T*B, F) @ (F, G).
2. **The loop** (``cpu.forward``) adds ``h R`` into ``A[t]`` with BLAS gemm and
   runs one fused gate loop per step, writing the states of every step into
   (T+1, B, U) arrays whose entry 0 is the initial state.
3. **BPTT** (``cpu.backward``) walks back and writes each step's
   pre-activation gradients ``dA[t]``.  Then one GEMM each gives
   ``dK = X^T dA``, ``dR = H_prev^T dA`` and ``dX = dA K^T``, and a sum gives db.

A ``StackedRNNCells`` runs layer by layer through the same kernels: cell k
runs over the whole sequence, and its outputs are cell k+1's inputs.  That is
exactly the stacked python step, because the mask acts on every cell's states
alike, and a cell below the top passes on its own (unmasked) outputs (the
``RAW`` output mode), as the stacked step does.  Backwards, the cell above
hands each cell below the gradient of its inputs.  A ``Bidirectional`` layer
is two RNN layers, so it needs nothing here.

Truncated BPTT (``truncate=k``) is, as in :mod:`rnnlab.bptt`, one short sweep
per output step: for the output at step s, the kernels walk steps s down to
s-k+1 (through every cell of a stack).

Two measured details: threads (see :data:`THREADS`) and reused memory (see
:class:`Memory`).
"""

import contextlib
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .. import activations, nest
from ..bptt import Gradients
from ..cells import GRUCell, LSTMCell, SimpleRNNCell, StackedRNNCells
from ..cells.gru import cpu as gru_cpu
from ..cells.lstm import cpu as lstm_cpu
from ..cells.simple_rnn import cpu as simple_rnn_cpu
from .blas import blas_threads, gemm
from .common import ACTIVATION_CODES, RAW, REPEAT, ZERO


#: Threads, two ways; each call of the backend picks one, for all its work.
#:
#: * Blocks of samples: samples never interact, so the time loops split the
#:   batch into blocks and each thread runs the whole loop for its block, with
#:   no synchronization per step (the kernels release the GIL).  The GEMMs
#:   before and after the loops are split into blocks of rows the same way, and
#:   BLAS runs one thread.
#: * BLAS threads: when a recurrent kernel R has at least BLAS_THREADS_MIN_BYTES,
#:   one thread per block would stream all of R from memory at every step; BLAS
#:   instead splits each product's columns between its threads, so each reads
#:   half of R.  The loops then run as one block.
#:
#: Mixing the two within one call costs more than either: BLAS's idle worker
#: threads spin for a while after each call, and on a 2-core machine that takes
#: the core a block needs.
THREADS = os.cpu_count() or 1
BLAS_THREADS_MIN_BYTES = 1 << 19

#: Work is split into blocks only when it has at least this many FLOPs: handing a
#: block to a thread costs tens of microseconds.
BLOCK_MIN_FLOPS = 2e7


def unsupported(cell):
    """Why ``cell`` has no numba kernel, or None when it has one."""
    if isinstance(cell, StackedRNNCells):
        for inner in cell.cells:
            reason = _unsupported_single(inner)
            if reason is not None:
                return f"{type(inner).__name__} inside StackedRNNCells: {reason}"
        return None
    return _unsupported_single(cell)


def _unsupported_single(cell):
    plan = PLANS.get(type(cell))  # exact type: a subclass may change the equations
    if plan is None:
        return f"the numba backend has no kernel for {type(cell).__name__}"
    return plan.unsupported(cell)


def _is_builtin(activation, name):
    return activation is activations.get(name)


def _cells(cell):
    return cell.cells if isinstance(cell, StackedRNNCells) else [cell]


def _writable(array):
    """C-contiguous and writeable (numba compiles read-only arrays as another type)."""
    return np.require(array, requirements=["C", "W"])


_POOL = []
_SAMPLE_BLOCKS = threading.local()  # .on: this thread's current call splits work into blocks


def _in_blocks(run_block, n, flops):
    """``[run_block(lo, hi), ...]`` over blocks of range(n), in threads when ``flops`` is large enough."""
    on = getattr(_SAMPLE_BLOCKS, "on", False)
    blocks = min(THREADS, n) if on and flops >= BLOCK_MIN_FLOPS else 1
    edges = [k * n // blocks for k in range(blocks + 1)]
    if blocks == 1:
        return [run_block(0, n)]
    if not _POOL:
        _POOL.append(ThreadPoolExecutor(THREADS, thread_name_prefix="rnnlab"))
    return list(_POOL[0].map(run_block, edges[:-1], edges[1:]))  # list() re-raises a block's error


def _over_samples(run_block, cell, batch, steps):
    """Run a time loop of ``steps`` steps as ``run_block(b0, b1)`` over blocks of samples."""
    _in_blocks(run_block, batch, steps * 2 * batch * cell.recurrent_kernel.size)


@contextlib.contextmanager
def _threads_for(cells):
    """Pick the way this call uses threads (see THREADS) from its cells' recurrent kernels."""
    blas = any(cell.recurrent_kernel.nbytes >= BLAS_THREADS_MIN_BYTES for cell in cells)
    previous = None if blas else blas_threads(1)
    _SAMPLE_BLOCKS.on = not blas
    try:
        yield
    finally:
        _SAMPLE_BLOCKS.on = False
        if previous is not None:
            blas_threads(previous)


class Memory:
    """Big arrays for the kernels, reused once nothing else refers to them.

    A fresh array costs a page fault per 4 KiB page on first touch: the kernel
    maps and zeroes each page, and the faults of parallel threads queue on one
    lock.  For an LSTM with T=1000, B=16, H=64 that was half of a forward +
    backward.  So arrays of at least MIN_BYTES are kept in a pool and handed
    out again (same shape and dtype) when the pool holds the only reference:
    no tape, gradient or view of it is alive any more.  The pool holds at most
    MAX_BYTES; :meth:`clear` empties it.
    """

    MIN_BYTES = 1 << 18
    MAX_BYTES = 1 << 29

    def __init__(self):
        self._arrays = []
        self._lock = threading.Lock()

    def empty(self, shape, dtype):
        shape, dtype = tuple(shape), np.dtype(dtype)
        if int(np.prod(shape)) * dtype.itemsize < self.MIN_BYTES:
            return np.empty(shape, dtype)
        with self._lock:
            for array in self._arrays:
                if array.shape == shape and array.dtype == dtype and _references(array) == _UNUSED:
                    return array
            array = np.empty(shape, dtype)
            if sum(a.nbytes for a in self._arrays) + array.nbytes > self.MAX_BYTES:
                self._arrays = [a for a in self._arrays if _references(a) != _UNUSED]  # drop the unused
            if sum(a.nbytes for a in self._arrays) + array.nbytes <= self.MAX_BYTES:
                self._arrays.append(array)
            return array

    def zeros(self, shape, dtype):
        array = self.empty(shape, dtype)
        array.fill(0)
        return array

    def clear(self):
        with self._lock:
            self._arrays = []


def _references(array):
    return sys.getrefcount(array)


def _unused_count():
    """What :func:`_references` says, inside a loop over a list, of an array only that list holds.

    Measured rather than assumed: the count differs between Python versions.
    """
    for array in [np.empty(0)]:
        return _references(array)


_UNUSED = _unused_count()
MEMORY = Memory()


def _zeros(like):
    return MEMORY.zeros(like.shape, like.dtype)


def _state_sequence(initial, T):
    """(T+1, B, U) with entry 0 the initial state; the kernels fill entries 1..T."""
    S = MEMORY.empty((T + 1,) + initial.shape, initial.dtype)
    S[0] = initial
    return S


def _project(x, kernel, bias):
    """x (T, B, F) @ kernel (F, G) + bias: the input projection of every step as one GEMM, (T, B, G)."""
    T, B, F = x.shape
    X, K = x.reshape(T * B, F), _writable(kernel)
    A = MEMORY.empty((T * B, K.shape[1]), x.dtype)
    _in_blocks(lambda lo, hi: gemm(False, False, 1.0, X[lo:hi], K, 0.0, A[lo:hi]), T * B, 2 * A.size * F)
    if bias is not None:
        A += bias
    return A.reshape(T, B, -1)


def _products(X, Y, per_step):
    """sum over steps t and samples b of outer(X[t, b], Y[t, b]): X^T Y, one GEMM.

    X: (T, B, F), Y: (T, B, G) -> (F, G); with ``per_step``, (T, F, G): one product per step.
    In threads, each block of rows gives a partial product, and the parts are added.
    """
    if per_step:
        return np.matmul(X.transpose(0, 2, 1), Y)
    T, B, F = X.shape
    X2, Y2 = X.reshape(T * B, F), Y.reshape(T * B, -1)

    def part(lo, hi):
        out = np.empty((F, Y2.shape[1]), X.dtype)
        gemm(True, False, 1.0, X2[lo:hi], Y2[lo:hi], 0.0, out)
        return out

    parts = _in_blocks(part, T * B, 2 * X2.size * Y2.shape[1])
    return parts[0] if len(parts) == 1 else sum(parts[1:], parts[0])


def _column_sums(Y, per_step):
    """The bias gradient: Y (T, B, G) summed over samples (and over steps unless ``per_step``)."""
    return Y.sum(axis=1) if per_step else Y.sum(axis=(0, 1))


class CellRun:
    """One cell's forward pass over a sequence: what its backward and the tape need.

    Attributes:
        x: (T, B, F) inputs, C-contiguous.  mask: (T, B) bool.
        outputs: (T, B, U).  states: list of (T+1, B, U), entry 0 the initial state.
        gates: (T, B, G) the gate activations (pre-activations for SimpleRNN).
        extra: (T, B, U) what the GRU's backward needs besides the gates, or None.
    """

    def __init__(self, x, mask, outputs, states, gates, extra=None):
        self.x, self.mask, self.outputs = x, mask, outputs
        self.states, self.gates, self.extra = states, gates, extra


# -- one plan per cell type: which kernels to call, and the gradient GEMMs ------------------


class LSTMPlan:
    """``LSTMCell``: gates i, f, g, o in A (T, B, 4U); states [h, c]."""

    def unsupported(self, cell):
        if not (_is_builtin(cell.activation, "tanh") and _is_builtin(cell.recurrent_activation, "sigmoid")):
            return ("the LSTM kernel implements activation='tanh' with recurrent_activation='sigmoid', "
                    f"got {cell.activation.name!r} and {cell.recurrent_activation.name!r}")
        return None

    def forward(self, cell, x, states, mask, mode):
        T, B, _ = x.shape
        A = _project(x, cell.kernel, cell.bias if cell.use_bias else None)  # (T, B, 4U)
        H, C = _state_sequence(states[0], T), _state_sequence(states[1], T)
        outputs = MEMORY.empty(H[1:].shape, H.dtype)
        R = _writable(cell.recurrent_kernel)
        _over_samples(lambda b0, b1: lstm_cpu.forward(A, R, H, C, outputs, mask, mode, b0, b1), cell, B, T)
        return CellRun(x, mask, outputs, [H, C], A)

    def new_d_pre(self, cell, run):
        return [_zeros(run.gates)]

    def sweep(self, cell, run, d_outputs, d_states, first, last, d_pre, state_grads, add_output, carry):
        R = _writable(cell.recurrent_kernel)
        _over_samples(lambda b0, b1: lstm_cpu.backward(
            run.gates, run.states[1], R, d_outputs, run.mask, carry, first, last, d_states[0], d_states[1],
            d_pre[0], state_grads[0], state_grads[1], add_output, b0, b1), cell, run.x.shape[1], last - first + 1)

    def weight_grads(self, cell, run, d_pre, per_step=False):
        dA = d_pre[0]
        grads = [_products(run.x, dA, per_step), _products(run.states[0][:-1], dA, per_step)]
        if cell.use_bias:
            grads.append(_column_sums(dA, per_step))
        return grads


class GRUPlan:
    """``GRUCell``: gates z, r, hh in A (T, B, 3U); either reset variant."""

    def unsupported(self, cell):
        if not (_is_builtin(cell.activation, "tanh") and _is_builtin(cell.recurrent_activation, "sigmoid")):
            return ("the GRU kernel implements activation='tanh' with recurrent_activation='sigmoid', "
                    f"got {cell.activation.name!r} and {cell.recurrent_activation.name!r}")
        return None

    def forward(self, cell, x, states, mask, mode):
        T, B, _ = x.shape
        b_in, b_rec = cell._biases()
        A = _project(x, cell.kernel, b_in if cell.use_bias else None)  # (T, B, 3U)
        H = _state_sequence(states[0], T)
        outputs = MEMORY.empty(H[1:].shape, H.dtype)
        extra = MEMORY.empty(H[1:].shape, H.dtype)  # mh_h (reset after) or r * h (reset before)
        R, b_rec = _writable(cell.recurrent_kernel), _writable(b_rec)
        if cell.reset_after:
            block = lambda b0, b1: gru_cpu.forward_reset_after(A, R, b_rec, H, extra, outputs, mask, mode, b0, b1)
        else:
            block = lambda b0, b1: gru_cpu.forward_reset_before(A, R, H, extra, outputs, mask, mode, b0, b1)
        _over_samples(block, cell, B, T)
        return CellRun(x, mask, outputs, [H], A, extra)

    def new_d_pre(self, cell, run):
        """dMX (gradient of x K + b_in), and for reset_after also dMH (of h R + b_rec)."""
        return [_zeros(run.gates) for _ in range(2 if cell.reset_after else 1)]

    def sweep(self, cell, run, d_outputs, d_states, first, last, d_pre, state_grads, add_output, carry):
        R, H = _writable(cell.recurrent_kernel), run.states[0]
        if cell.reset_after:
            block = lambda b0, b1: gru_cpu.backward_reset_after(
                run.gates, H, run.extra, R, d_outputs, run.mask, carry, first, last, d_states[0], d_pre[0],
                d_pre[1], state_grads[0], add_output, b0, b1)
        else:
            block = lambda b0, b1: gru_cpu.backward_reset_before(
                run.gates, H, R, d_outputs, run.mask, carry, first, last, d_states[0], d_pre[0], state_grads[0],
                add_output, b0, b1)
        _over_samples(block, cell, run.x.shape[1], last - first + 1)

    def weight_grads(self, cell, run, d_pre, per_step=False):
        dMX, h_prev = d_pre[0], run.states[0][:-1]
        grads = [_products(run.x, dMX, per_step)]
        if cell.reset_after:
            grads.append(_products(h_prev, d_pre[1], per_step))
        else:  # z and r multiply h; the candidate block multiplies r * h
            U = cell.units
            grads.append(np.concatenate([_products(h_prev, dMX[..., : 2 * U], per_step),
                                         _products(run.extra, dMX[..., 2 * U :], per_step)], axis=-1))
        if cell.use_bias:
            sums = _column_sums(dMX, per_step)
            if cell.reset_after:
                sums = np.stack([sums, _column_sums(d_pre[1], per_step)], axis=-2)
            grads.append(sums)
        return grads


class SimpleRNNPlan:
    """``SimpleRNNCell``: pre-activations in A (T, B, U); any built-in activation."""

    def unsupported(self, cell):
        name = cell.activation.name
        if name not in ACTIVATION_CODES or not _is_builtin(cell.activation, name):
            return (f"the SimpleRNN kernel implements the activations {sorted(ACTIVATION_CODES)}, "
                    f"got {name!r}")
        return None

    def forward(self, cell, x, states, mask, mode):
        T, B, _ = x.shape
        A = _project(x, cell.kernel, cell.bias if cell.use_bias else None)  # (T, B, U)
        H = _state_sequence(states[0], T)
        outputs = MEMORY.empty(H[1:].shape, H.dtype)
        R, code = _writable(cell.recurrent_kernel), ACTIVATION_CODES[cell.activation.name]
        _over_samples(lambda b0, b1: simple_rnn_cpu.forward(A, R, H, outputs, mask, mode, code, b0, b1), cell, B, T)
        return CellRun(x, mask, outputs, [H], A)

    def new_d_pre(self, cell, run):
        return [_zeros(run.gates)]

    def sweep(self, cell, run, d_outputs, d_states, first, last, d_pre, state_grads, add_output, carry):
        R, code = _writable(cell.recurrent_kernel), ACTIVATION_CODES[cell.activation.name]
        _over_samples(lambda b0, b1: simple_rnn_cpu.backward(
            run.gates, run.states[0], R, d_outputs, run.mask, carry, first, last, d_states[0], d_pre[0],
            state_grads[0], add_output, code, b0, b1), cell, run.x.shape[1], last - first + 1)

    weight_grads = LSTMPlan.weight_grads


PLANS = {LSTMCell: LSTMPlan(), GRUCell: GRUPlan(), SimpleRNNCell: SimpleRNNPlan()}


# -- the kernel module interface of rnnlab.backends --------------------------------------------


class NumbaRecord:
    """What ``scan(..., record=True)`` keeps for BPTT: one :class:`CellRun` per cell."""

    def __init__(self, runs):
        self.runs = runs

    def stacked_states(self):
        """Flat list of (T, B, size): the states after every step."""
        return [S[1:].copy() for run in self.runs for S in run.states]

    def gates(self, cell):
        """``{name: (T, B, U)}`` for ``cell.gate_names`` (a list of such dicts for stacked cells)."""
        if isinstance(cell, StackedRNNCells):
            return [self._gates(inner, run) for inner, run in zip(cell.cells, self.runs)]
        return self._gates(cell, self.runs[0])

    @staticmethod
    def _gates(cell, run):
        U = run.outputs.shape[2]
        return {name: run.gates[..., k * U : (k + 1) * U].copy() for k, name in enumerate(cell.gate_names)}


def scan(layer, sequence_run, record=False):
    """Run ``layer`` over a prepared run: ``(outputs (T, B, O), final_states[, record])``."""
    with _threads_for(_cells(layer.cell)):
        return _scan(layer, sequence_run, record)


def backward(tape, d_outputs, d_final, truncate, per_step):
    """BPTT through the kernels; the same :class:`~rnnlab.bptt.Gradients` as the python backend."""
    with _threads_for(_cells(tape.cell)):
        return _backward(tape, d_outputs, d_final, truncate, per_step)


def _scan(layer, sequence_run, record):
    x = sequence_run.inputs  # (T, B, F), maybe a strided view
    T, B, _ = x.shape
    mask = np.ones((T, B), bool) if sequence_run.mask is None else np.array(sequence_run.mask, bool, order="C")
    top_mode = ZERO if layer.zero_output_for_mask else REPEAT
    cells = _cells(layer.cell)
    states = list(sequence_run.initial_states)
    inputs, runs = MEMORY.empty(x.shape, x.dtype), []
    inputs[...] = x
    for k, cell in enumerate(cells):
        count = len(nest.flatten(cell.state_size))
        cell_states, states = [_writable(s) for s in states[:count]], states[count:]
        run = PLANS[type(cell)].forward(cell, inputs, cell_states, mask, top_mode if k == len(cells) - 1 else RAW)
        runs.append(run)
        inputs = run.outputs
    final_states = [S[-1].copy() for run in runs for S in run.states]
    if record:
        return inputs, final_states, NumbaRecord(runs)
    return inputs, final_states


def _backward(tape, d_outputs, d_final, truncate, per_step):
    cells, runs = _cells(tape.cell), tape.record.runs
    plans = [PLANS[type(cell)] for cell in cells]
    top = len(cells) - 1
    T = tape.time_steps
    carry = not tape.layer.zero_output_for_mask
    add_output = tape.cell.output_state_index is not None
    dtype = d_outputs.dtype
    counts = [len(run.states) for run in runs]
    d_final_cells, position = [], 0  # the flat d_final split per cell
    for count in counts:
        d_final_cells.append(d_final[position : position + count])
        position += count
    d_pre = [plan.new_d_pre(cell, run) for plan, cell, run in zip(plans, cells, runs)]
    state_grads = [[_zeros(S[1:]) for S in run.states] for run in runs]
    d_initial = [[np.zeros_like(S[0]) for S in run.states] for run in runs]

    d_below = [MEMORY.zeros(run.outputs.shape, dtype) for run in runs[:-1]]  # output gradients of lower cells

    def sweep(d_top, last, first, with_final, d_pre_out):
        """One backward walk over steps last..first through every cell, top down."""
        d_out = d_top
        for k in range(top, -1, -1):
            run = runs[k]
            d_states = [np.array(d, dtype, order="C") if with_final else np.zeros_like(S[0])
                        for d, S in zip(d_final_cells[k], run.states)]
            plans[k].sweep(cells[k], run, d_out, d_states, first, last, d_pre_out[k], state_grads[k],
                           add_output and k == top, carry and k == top)
            if first == 0:
                for total, d in zip(d_initial[k], d_states):
                    total += d
            if k > 0:  # the cell below gets the gradient of this cell's inputs as its output gradient
                d_out = d_below[k - 1]  # only rows first..last are read
                d_out[first : last + 1] = _input_grads(cells[k], d_pre_out[k][0][first : last + 1])

    if truncate is None or truncate >= T:
        sweep(d_outputs, T - 1, 0, True, d_pre)
    else:
        scratch = [plan.new_d_pre(cell, run) for plan, cell, run in zip(plans, cells, runs)]
        only_origin = _zeros(d_outputs)
        for origin in range(T):
            first = max(0, origin - truncate + 1)
            only_origin[origin] = d_outputs[origin]
            sweep(only_origin, origin, first, origin == T - 1, scratch)
            only_origin[origin] = 0
            for totals, parts in zip(d_pre, scratch):
                for total, part in zip(totals, parts):
                    total[first : origin + 1] += part[first : origin + 1]

    weights = [g for plan, cell, run, d in zip(plans, cells, runs, d_pre) for g in plan.weight_grads(cell, run, d)]
    per_step_weights = None
    if per_step:
        per_step_weights = [g for plan, cell, run, d in zip(plans, cells, runs, d_pre)
                            for g in plan.weight_grads(cell, run, d, per_step=True)]
    return Gradients(weights, _input_grads(cells[0], d_pre[0][0]), [d for ds in d_initial for d in ds],
                     [g for gs in state_grads for g in gs], per_step_weights)


def _input_grads(cell, dMX):
    """dX = dMX K^T for (T', B, G) pre-activation gradients of the input projection: (T', B, F)."""
    T, B, G = dMX.shape
    D, K = dMX.reshape(T * B, G), _writable(cell.kernel)
    dX = MEMORY.empty((T * B, K.shape[0]), dMX.dtype)
    _in_blocks(lambda lo, hi: gemm(False, True, 1.0, D[lo:hi], K, 0.0, dX[lo:hi]), T * B, 2 * D.size * K.shape[0])
    return dX.reshape(T, B, -1)
