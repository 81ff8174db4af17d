"""Host side of ``backend="numba"``: NumPy glue around the ``@njit`` time loops.

`rnnlab.backends` imports this module the first time a layer runs on
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
   pre-activation gradients ``dA[t]``.  Then one GEMM of ``[X | H_prev | 1]^T dA``
   gives ``dK``, ``dR`` and db together (`weight_products`), and one more gives ``dX = dA K^T``.

A ``StackedRNNCells`` runs layer by layer through the same kernels: cell k
runs over the whole sequence, and its outputs are cell k+1's inputs.  That is
exactly the stacked python step, because the mask acts on every cell's states
alike, and a cell below the top passes on its own (unmasked) outputs (the
``RAW`` output mode), as the stacked step does.  Backwards, the cell above
hands each cell below the gradient of its inputs.  A ``Bidirectional`` layer
is two RNN layers, so it needs nothing here.

Dropout: the host multiplies the inputs by the input mask before the
projection (the cells see x only through x K).  The recurrent mask M (B, U)
goes to the loops, whose recurrent products take ``h * M`` (see
`rnnlab.backends.numba.common`), and dR is the product of the masked
states (`recurrent_inputs`).  A stack has no dropout
(``StackedRNNCells`` refuses it).

Truncated BPTT (``truncate=k``) is, as in `rnnlab.bptt`, one short sweep
per output step: for the output at step s, the kernels walk steps s down to
s-k+1 (through every cell of a stack).

Two measured details: threads (see `THREADS`) and reused memory (see
`Memory`).
"""

import contextlib
import math
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ... import activations, nest
from ...cells import registry
from ...cells.stacked import StackedRNNCells
from ...types import Gradients, input_dropout, truncated_sweeps
from .blas import gemm, one_blas_thread
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
    declaration = registry.declaration_for(cell)  # exact type: a subclass may change the equations
    if declaration is None or declaration.room is None or "numba" not in declaration.backends:
        return f"the numba backend has no kernel for {type(cell).__name__}"
    return adapter_for(cell).unsupported(cell)


def adapter_for(cell):
    """The `CpuAdapter` of ``cell``'s room (its ``cpu.py``)."""
    adapter = _ADAPTERS.get(type(cell))
    if adapter is None:  # first use of this cell class: ask the registry (the host asks on every call)
        adapter = _ADAPTERS[type(cell)] = registry.room_module(cell, "cpu").adapter
    return adapter


_ADAPTERS = {}


def _cells(cell):
    return cell.cells if isinstance(cell, StackedRNNCells) else [cell]


def writable(array):
    """C-contiguous and writeable (numba compiles read-only arrays as another type)."""
    if isinstance(array, np.ndarray) and array.flags.c_contiguous and array.flags.writeable:
        return array  # the usual case, without np.require's cost on every call
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


def over_samples(run_block, batch, steps, R):
    """Run a time loop of ``steps`` steps as ``run_block(b0, b1)`` over blocks of samples.

    R is the matrix each step multiplies every sample's state with: its size
    gives the loop's FLOPs, which decide whether blocks in threads pay.  R is
    None for a cell without one, whose elementwise steps are too cheap to share out.
    """
    _in_blocks(run_block, batch, 0 if R is None else steps * 2 * batch * R.size)


@contextlib.contextmanager
def _threads_for(cells):
    """Pick the way this call uses threads (see THREADS) from the bytes each cell's step streams."""
    blas = any(adapter_for(cell).streamed_bytes(cell) >= BLAS_THREADS_MIN_BYTES for cell in cells)
    with one_blas_thread(not blas):  # agreed with other threads: the count is process-wide
        _SAMPLE_BLOCKS.on = not blas
        try:
            yield
        finally:
            _SAMPLE_BLOCKS.on = False


class Memory:
    """Big arrays for the kernels, reused once nothing else refers to them.

    A fresh array costs a page fault per 4 KiB page on first touch: the kernel
    maps and zeroes each page, and the faults of parallel threads queue on one
    lock.  For an LSTM with T=1000, B=16, H=64 that was half of a forward +
    backward.  So arrays of at least MIN_BYTES are kept in a pool and handed
    out again (same shape and dtype) when the pool holds the only reference:
    no tape, gradient or view of it is alive any more.  The pool holds at most
    MAX_BYTES; `clear` empties it.
    """

    MIN_BYTES = 1 << 18
    MAX_BYTES = 1 << 29

    def __init__(self):
        self._arrays = []
        self._lock = threading.Lock()

    def empty(self, shape, dtype):
        shape, dtype = tuple(shape), np.dtype(dtype)
        if math.prod(shape) * dtype.itemsize < self.MIN_BYTES:  # math.prod: np.prod costs microseconds
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
    """What `_references` says, inside a loop over a list, of an array only that list holds.

    Measured rather than assumed: the count differs between Python versions.
    """
    for array in [np.empty(0)]:
        return _references(array)


_UNUSED = _unused_count()
MEMORY = Memory()


def zeros_like(like):
    return MEMORY.zeros(like.shape, like.dtype)


def state_sequence(initial, T):
    """(T+1, B, U) with entry 0 the initial state; the kernels fill entries 1..T."""
    S = MEMORY.empty((T + 1,) + initial.shape, initial.dtype)
    S[0] = initial
    return S


def kernel_mask(dropout, like):
    """The recurrent dropout mask as the loops take it: (B, U) in ``like``'s dtype, or (0, U) for none.

    dropout: the call's `DropoutMasks`, or None.  like: a (B, U) state.
    """
    if dropout is None or dropout.recurrent is None:
        return np.empty((0, like.shape[1]), like.dtype)
    return writable(np.asarray(dropout.recurrent, like.dtype))


def recurrent_inputs(run):
    """What the recurrent products multiplied at every step: H_prev (T, B, U), times the mask if any."""
    h_prev = run.states[0][:-1]
    return h_prev if run.recurrent_mask.shape[0] == 0 else h_prev * run.recurrent_mask


def project(x, K, bias):
    """x (T, B, F) @ K (F, G) + bias: the input projection of every step as one GEMM, (T, B, G)."""
    T, B, F = x.shape
    X, K = x.reshape(T * B, F), writable(K)
    A = MEMORY.empty((T * B, K.shape[1]), x.dtype)

    def block(lo, hi):
        gemm(False, False, 1.0, X[lo:hi], K, 0.0, A[lo:hi])
        if bias is not None:  # in the block's thread, while its rows are still in cache
            A[lo:hi] += bias

    _in_blocks(block, T * B, 2 * A.size * F)
    return A.reshape(T, B, -1)


def products(X, Y, per_step):
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


def weight_products(Xs, Y, with_bias, per_step):
    """The gradients of the weights that multiply each X in ``Xs`` into one pre-activation, and of its bias.

    Xs: a list of (T, B, F_i) arrays; Y: (T, B, G), the pre-activation's gradient.
    Returns ``[X_1^T Y, X_2^T Y, ...]``, each (F_i, G), followed by the bias
    gradient ``sum Y`` (G,) when ``with_bias``; with ``per_step``, one of each per step
    ((T, F_i, G) and (T, G)).

    They come from one GEMM, ``[X_1 | X_2 | ... | 1]^T Y``: a product with few
    rows, such as dK = X^T dA for 32 inputs, runs far below the machine's
    peak, and one taller product runs near it.  On an LSTM at
    (T, B, I, H) = (128, 32, 32, 128), dK, dR and db took 4.0-4.5 ms as two
    GEMMs and a sum, and 3.2-3.4 ms as one, copying included (2026-12-02,
    2 cores; ``docs/benchmarks.md``).
    """
    T, B, G = Y.shape
    widths = [X.shape[2] for X in Xs] + ([1] if with_bias else [])
    stacked = MEMORY.empty((T, B, sum(widths)), Y.dtype)
    offset = 0
    for X in Xs:
        stacked[..., offset : offset + X.shape[2]] = X
        offset += X.shape[2]
    if with_bias:
        stacked[..., -1] = 1
    P = products(stacked, Y, per_step)  # (F_1 + F_2 + ... [+ 1], G), or that per step
    edges = np.cumsum([0] + widths)
    grads = [np.ascontiguousarray(P[..., lo:hi, :]) for lo, hi in zip(edges[:-1], edges[1:])]
    if with_bias:
        grads[-1] = grads[-1][..., 0, :]  # (..., 1, G) -> (..., G)
    return grads


class CellRun:
    """One cell's forward pass over a sequence: what its backward and the tape need.

    Attributes:
        x: (T, B, F) inputs, C-contiguous.  mask: (T, B) bool.
        outputs: (T, B, U).  states: list of (T+1, B, U), entry 0 the initial state.
        gates: (T, B, G) the gate activations (pre-activations for SimpleRNN).
        extra: (T, B, U) what the GRU's backward needs besides the gates, or None.
        recurrent_mask: the recurrent dropout mask as the loops took it (`kernel_mask`);
            None for a cell without recurrent products.
    """

    def __init__(self, x, mask, outputs, states, gates, extra=None, recurrent_mask=None):
        self.x, self.mask, self.outputs = x, mask, outputs
        self.states, self.gates, self.extra = states, gates, extra
        self.recurrent_mask = recurrent_mask


# -- what a cell room's cpu.py provides ---------------------------------------------------


class CpuAdapter:
    """What the host needs from a cell room's ``cpu.py`` (one instance, ``adapter``, per room).

    The pre-activation gradients ``d_pre`` are a list of (T, B, G) arrays; the
    first is always the gradient of the input projection, which gives the
    input gradients.
    """

    #: ``{attribute: activation name or tuple of names}`` that the loops implement,
    #: e.g. ``{"activation": "tanh", "recurrent_activation": GATE_ACTIVATIONS}``.
    required_activations = {}

    def unsupported(self, cell):
        """Why this configuration of the cell has no kernel (an activation, say), or None."""
        wanted = {attribute: (names,) if isinstance(names, str) else names
                  for attribute, names in self.required_activations.items()}
        if all(any(getattr(cell, attribute) is activations.get(name) for name in names)
               for attribute, names in wanted.items()):
            return None
        return (f"the {type(cell).__name__} kernel implements "
                + " with ".join(f"{attribute} in {names}" if len(names) > 1 else f"{attribute}={names[0]!r}"
                                for attribute, names in wanted.items())
                + ", got " + " and ".join(repr(getattr(cell, attribute).name) for attribute in wanted))

    def streamed_bytes(self, cell):
        """Bytes of weights every step reads (decides how the call uses threads)."""
        raise NotImplementedError

    def forward(self, cell, x, states, mask, mode, recurrent_mask):
        """Run the loop over x (T, B, F) from ``states`` (flat list of (B, size)): a `CellRun`.

        recurrent_mask: (B, U) recurrent dropout mask, or (0, U) for none (`kernel_mask`);
        a cell without ``takes_dropout`` always gets (0, U).
        """
        raise NotImplementedError

    def new_d_pre(self, cell, run):
        """Zeroed pre-activation gradients for `sweep` to fill."""
        raise NotImplementedError

    def sweep(self, cell, run, d_outputs, d_states, first, last, d_pre, state_grads, add_output, carry):
        """Walk steps ``last`` down to ``first``, writing ``d_pre`` there and updating ``d_states`` in place."""
        raise NotImplementedError

    def weight_grads(self, cell, run, d_pre, per_step=False):
        """The gradients of ``cell.weights`` (each (T, *shape) with ``per_step``)."""
        raise NotImplementedError

    def input_grads(self, cell, d_input_pre):
        """dL/dx (T', B, F) from the input projection's gradient (T', B, G)."""
        raise NotImplementedError


class ProjectionCellAdapter(CpuAdapter):
    """A cell whose pre-activations are ``x K (+ b)`` alone, with no recurrent weight (minGRU, minLSTM).

    The host computes every step's pre-activations before the loop, so the
    loop is elementwise and streams no weights; the weight gradients are
    ``X^T dA`` and ``sum dA``, for ``cell.weights`` = [kernel] plus a bias when ``cell.use_bias``.
    """

    def streamed_bytes(self, cell):
        return 0

    def new_d_pre(self, cell, run):
        return [zeros_like(run.gates)]

    def weight_grads(self, cell, run, d_pre, per_step=False):
        return weight_products(self.weight_inputs(run), d_pre[0], cell.use_bias, per_step)

    def weight_inputs(self, run):
        """What each weight before the bias multiplies, in ``cell.weights`` order: the inputs x here."""
        return [run.x]

    def input_grads(self, cell, d_input_pre):
        return project_back(d_input_pre, cell.kernel)


class CandidateLoopsAdapter(ProjectionCellAdapter):
    """A projection cell with one state h, run by a room's two ``@jit`` loops (minGRU, minLSTM).

    ``CandidateLoopsAdapter(forward, backward)`` takes the loops
    ``forward(A, H, outputs, mask, output_mode, code, b0, b1)`` and
    ``backward(G, H, d_outputs, mask, carry_output, first, last, d_h, dA, state_grad_h, add_output, code, b0, b1)``,
    where A (T, B, G) holds the projection and ``code`` is the candidate activation's
    (`rnnlab.backends.numba.common.ACTIVATION_CODES`).
    """

    required_activations = {"activation": activations.CANDIDATE_ACTIVATIONS}

    def __init__(self, forward_loop, backward_loop):
        self.forward_loop, self.backward_loop = forward_loop, backward_loop

    def forward(self, cell, x, states, mask, mode, recurrent_mask):
        T, B, _ = x.shape
        A = project(x, cell.kernel, cell.bias if cell.use_bias else None)  # (T, B, G)
        H = state_sequence(states[0], T)
        outputs = MEMORY.empty(H[1:].shape, H.dtype)
        code = ACTIVATION_CODES[cell.activation.name]
        over_samples(lambda b0, b1: self.forward_loop(A, H, outputs, mask, mode, code, b0, b1), B, T, None)
        return CellRun(x, mask, outputs, [H], A)

    def sweep(self, cell, run, d_outputs, d_states, first, last, d_pre, state_grads, add_output, carry):
        code = ACTIVATION_CODES[cell.activation.name]
        over_samples(lambda b0, b1: self.backward_loop(
            run.gates, run.states[0], d_outputs, run.mask, carry, first, last, d_states[0], d_pre[0],
            state_grads[0], add_output, code, b0, b1), run.x.shape[1], last - first + 1, None)


class ProductCellAdapter(ProjectionCellAdapter):
    """A cell whose pre-activations are ``x K + h R (+ b)``: K ``cell.kernel``, R ``cell.recurrent_kernel``.

    As a projection cell, plus R: its bytes stream every step, and it
    multiplies H_prev (masked under recurrent dropout), so its gradient
    ``H_prev^T dA`` comes from the same GEMM as the kernel's and the bias's.
    """

    def streamed_bytes(self, cell):
        return cell.recurrent_kernel.nbytes

    def weight_inputs(self, run):
        return [run.x, recurrent_inputs(run)]


# -- the backend module interface (see rnnlab.backends) --------------------------------------------


class NumbaRecord:
    """What ``scan(..., record=True)`` keeps for BPTT: one `CellRun` per cell."""

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
    """BPTT through the kernels; the same `Gradients` as the python backend."""
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
    inputs[...] = input_dropout(x, sequence_run.dropout)
    for k, cell in enumerate(cells):
        count = len(nest.flatten(cell.state_size))
        cell_states, states = [writable(s) for s in states[:count]], states[count:]
        recurrent_mask = kernel_mask(sequence_run.dropout, cell_states[0])  # a stack has no dropout
        run = adapter_for(cell).forward(cell, inputs, cell_states, mask, top_mode if k == len(cells) - 1 else RAW,
                                        recurrent_mask)
        runs.append(run)
        inputs = run.outputs
    final_states = [S[-1].copy() for run in runs for S in run.states]
    if record:
        return inputs, final_states, NumbaRecord(runs)
    return inputs, final_states


def _backward(tape, d_outputs, d_final, truncate, per_step):
    cells, runs = _cells(tape.cell), tape.record.runs
    adapters = [adapter_for(cell) for cell in cells]
    top = len(cells) - 1
    carry = not tape.layer.zero_output_for_mask
    add_output = tape.cell.output_state_index is not None
    dtype = d_outputs.dtype
    d_final_cells, position = [], 0  # the flat d_final split per cell
    for run in runs:
        d_final_cells.append(d_final[position : position + len(run.states)])
        position += len(run.states)
    d_pre = [adapter.new_d_pre(cell, run) for adapter, cell, run in zip(adapters, cells, runs)]
    full = truncate is None or truncate >= tape.time_steps
    # a truncated sweep writes its steps into scratch, which is then added to the totals
    scratch = d_pre if full else [adapter.new_d_pre(cell, run) for adapter, cell, run in zip(adapters, cells, runs)]
    state_grads = [[zeros_like(S[1:]) for S in run.states] for run in runs]
    d_initial = [[np.zeros_like(S[0]) for S in run.states] for run in runs]
    d_below = [MEMORY.zeros(run.outputs.shape, dtype) for run in runs[:-1]]  # output gradients of lower cells

    def sweep(d_top, last, first, with_final):
        """One backward walk over steps last..first through every cell, top down."""
        d_out = d_top
        for k in range(top, -1, -1):
            run = runs[k]
            d_states = [np.array(d, dtype, order="C") if with_final else np.zeros_like(S[0])
                        for d, S in zip(d_final_cells[k], run.states)]
            adapters[k].sweep(cells[k], run, d_out, d_states, first, last, scratch[k], state_grads[k],
                              add_output and k == top, carry and k == top)
            if first == 0:
                for total, d in zip(d_initial[k], d_states):
                    total += d
            if k > 0:  # the cell below gets the gradient of this cell's inputs as its output gradient
                d_out = d_below[k - 1]  # only rows first..last are read
                d_out[first : last + 1] = adapters[k].input_grads(cells[k], scratch[k][0][first : last + 1])
        if not full:
            for totals, parts in zip(d_pre, scratch):
                for total, part in zip(totals, parts):
                    total[first : last + 1] += part[first : last + 1]

    truncated_sweeps(d_outputs, truncate, sweep, zeros_like)
    weights = [g for adapter, cell, run, d in zip(adapters, cells, runs, d_pre)
               for g in adapter.weight_grads(cell, run, d)]
    per_step_weights = None
    if per_step:
        per_step_weights = [g for adapter, cell, run, d in zip(adapters, cells, runs, d_pre)
                            for g in adapter.weight_grads(cell, run, d, per_step=True)]
    d_inputs = adapters[0].input_grads(cells[0], d_pre[0][0])  # (T, B, F): of the masked inputs
    return Gradients(weights, input_dropout(d_inputs, tape.dropout), [d for ds in d_initial for d in ds],
                     [g for gs in state_grads for g in gs], per_step_weights)


def project_back(d_pre, K):
    """dX = d_pre K^T: the input gradients of an input projection x K, (T', B, G) -> (T', B, F)."""
    T, B, G = d_pre.shape
    D, K = d_pre.reshape(T * B, G), writable(K)
    dX = MEMORY.empty((T * B, K.shape[0]), d_pre.dtype)
    _in_blocks(lambda lo, hi: gemm(False, True, 1.0, D[lo:hi], K, 0.0, dX[lo:hi]), T * B, 2 * D.size * K.shape[0])
    return dX.reshape(T, B, -1)
