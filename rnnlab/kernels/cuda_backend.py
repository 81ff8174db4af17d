"""Host side of ``backend="cuda"``: the one module through which rnnlab reaches the GPU.

``rnnlab.backends`` imports this module only when a layer asks for
``backend="cuda"``, and :mod:`rnnlab.ensemble` only for its GPU path.
Importing it is cheap: ``numba.cuda`` is imported on first real use, and every
kernel is compiled by numba at its first launch.  A later CUDA target (another
kernel language, CuPy RawKernels...) is a change to this module and to the
``cuda.py`` files in the cell rooms, nothing else.

The kernel-module interface of :func:`rnnlab.backends.register_kernel`:

* :func:`unsupported` -- why a cell cannot run here: numba-cuda missing, no GPU
  (and no simulator), or a non-default activation.  ``backend="auto"`` never
  picks this backend.
* :func:`scan` -- forward over a prepared run; the record keeps the tape on the
  device for :func:`backward` and copies states/gates to the host on request.
* :func:`backward` -- full or truncated BPTT, with masks, ``state_grads`` and
  optional per-step weight contributions (computed on the host from the
  per-step pre-activation gradients).

Below them sits a device-level API that keeps arrays on the GPU (used by the
benchmark): :func:`device_weights`, :func:`forward_device`,
:func:`backward_device`; and the ensemble's :func:`ensemble_device`.

How work is split (see ``docs/gpu.md``): the input projection of every
timestep is one GEMM; the recurrence runs in a persistent kernel (one launch)
for ``units <= CONFIG["persistent_max_units"]``, else in tiled kernels (one
launch per step); weight gradients are GEMMs over all timesteps afterwards.
GEMMs use CuPy (cuBLAS) when it is importable, else a tiled numba kernel.
"""

import contextlib
import functools
import importlib
import importlib.util
import math
import os
import warnings

import numpy as np

#: Tunables.  Change with :func:`options` (a context manager) or by assignment.
CONFIG = {
    # "auto": persistent kernel for units <= persistent_max_units, else tiled;
    # "persistent" or "tiled" force one (the reset_after=False GRU is always persistent).
    "path": "auto",
    "persistent_max_units": 256,
    # threads per persistent block: these kernels use up to ~110 registers per
    # thread (ptxas, sm_90), so 512 x 128 registers is the most an SM's 64K allow
    "max_threads": 512,
    # batch rows per persistent block (None: 1 up to B = 32, then up to MAXR)
    "rows_per_block": None,
    # largest dynamic shared memory a block may ask for without opting in
    "shared_limit": 48 * 1024,
    # tiled kernels: (batch rows, units, reduction) per tile; numba GEMM tile
    "tiles": (4, 32, 32),
    "gemm_tile": 16,
    # "auto": CuPy when importable (not in the simulator), else numba
    "gemm": "auto",
    # "auto": CuPy's memory pool when CuPy is importable (numba's own device
    # arrays call cudaMalloc/cudaFree every time), else numba
    "allocator": "auto",
    # truncated BPTT on the persistent path: blocks along the sweep axis
    "sweep_blocks": 64,
}

# RNNLAB_CUDA_PATH, RNNLAB_CUDA_GEMM and RNNLAB_CUDA_ALLOCATOR override the string settings,
# e.g. RNNLAB_CUDA_GEMM=numba to leave CuPy out of a run.
for _key in ("path", "gemm", "allocator"):
    CONFIG[_key] = os.environ.get(f"RNNLAB_CUDA_{_key.upper()}", CONFIG[_key])

#: Smaller tiles in the simulator: fewer Python threads per block, and several
#: tiles per matrix even at the tiny test shapes.
SIMULATOR_CONFIG = {"tiles": (2, 4, 4), "gemm_tile": 4}


@contextlib.contextmanager
def options(**changes):
    """Temporarily change :data:`CONFIG`, e.g. ``with options(path="tiled"): ...``."""
    unknown = set(changes) - set(CONFIG)
    if unknown:
        raise ValueError(f"unknown cuda_backend options {sorted(unknown)}; known: {sorted(CONFIG)}")
    saved = dict(CONFIG)
    CONFIG.update(changes)
    try:
        yield CONFIG
    finally:
        CONFIG.clear()
        CONFIG.update(saved)


# -- availability --------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def availability_problem():
    """None when CUDA kernels can run (a GPU, or the simulator), else the reason."""
    if importlib.util.find_spec("numba_cuda") is None:
        return ("numba-cuda is not installed (pip install 'rnnlab[cuda]', which provides numba.cuda); "
                "backend='cuda' needs it")
    try:
        from numba import cuda
    except Exception as error:  # a broken CUDA install must not break rnnlab
        return f"numba.cuda could not be imported: {error}"
    try:
        if cuda.is_available():
            return None
    except Exception as error:
        return f"numba.cuda could not check for a GPU: {error}"
    return ("no CUDA GPU is available (numba.cuda.is_available() is False); to run the CUDA kernels "
            "on the CPU, set NUMBA_ENABLE_CUDASIM=1 before numba is imported (slow: tests only)")


def simulator_active():
    """True when numba.cuda runs in its simulator."""
    if availability_problem() is not None:
        return False
    from numba import config

    return bool(config.ENABLE_CUDASIM)


def gpu_available():
    """True only for a real GPU (not the simulator)."""
    return availability_problem() is None and not simulator_active()


# -- cells ---------------------------------------------------------------------------------


class CellSpec:
    """What the kernels need to know about a built-in cell."""

    def __init__(self, kind, module, G, L, gate_names):
        self.kind, self.module, self.G, self.L, self.gate_names = kind, module, G, L, gate_names

    def load(self):
        return importlib.import_module(self.module)


_SPECS = {
    "simple": CellSpec("simple", "rnnlab.cells.simple_rnn.cuda", 1, 1, ()),
    "gru": CellSpec("gru", "rnnlab.cells.gru.cuda", 3, 1, ("z", "r", "hh")),
    "gru_v1": CellSpec("gru_v1", "rnnlab.cells.gru.cuda", 3, 1, ("z", "r", "hh")),
    "lstm": CellSpec("lstm", "rnnlab.cells.lstm.cuda", 4, 2, ("i", "f", "g", "o")),
}


def cell_kind(cell):
    """'simple', 'gru', 'gru_v1' (reset_after=False), 'lstm', or None."""
    from ..cells import GRUCell, LSTMCell, SimpleRNNCell

    kind = type(cell)
    if kind is SimpleRNNCell:
        return "simple"
    if kind is GRUCell:
        return "gru" if cell.reset_after else "gru_v1"
    if kind is LSTMCell:
        return "lstm"
    return None


def unsupported(cell):
    """Why ``cell`` has no CUDA kernel here, or None."""
    from .. import activations

    problem = availability_problem()
    if problem is not None:
        return problem
    kind = cell_kind(cell)
    if kind is None:
        return f"backend 'cuda' has no kernel for {type(cell).__name__}"
    if cell.activation is not activations.tanh:
        return f"backend 'cuda' implements activation='tanh' only, got {cell.activation.name!r}"
    recurrent = getattr(cell, "recurrent_activation", None)
    if recurrent is not None and recurrent is not activations.sigmoid:
        return f"backend 'cuda' implements recurrent_activation='sigmoid' only, got {recurrent.name!r}"
    if kind == "gru_v1":
        gru = _SPECS[kind].load()
        itemsize = np.dtype(cell.dtype).itemsize
        if gru.v1_backward_shared(1, cell.units, itemsize) > CONFIG["shared_limit"]:
            return (f"backend 'cuda' runs GRUCell(reset_after=False) in one persistent kernel, which holds "
                    f"{cell.units} units only up to {CONFIG['shared_limit']} bytes of shared memory; "
                    "use reset_after=True or fewer units")
    return None


# -- device plumbing -----------------------------------------------------------------------


class Device:
    """Allocation, transfers, launches and GEMMs.  Replaceable (see benchmarks/gpu/compile_check.py)."""

    def __init__(self):
        from numba import cuda

        self.cuda = cuda
        self._cupy = None
        self._cupy_checked = False

    # memory
    def to_device(self, array):
        array = np.ascontiguousarray(array)
        if self._pool() is None:
            return self.cuda.to_device(array)
        device_array = self.empty(array.shape, array.dtype)
        device_array.copy_to_device(array)
        return device_array

    def empty(self, shape, dtype):
        cp = self._pool()
        if cp is not None:
            try:
                return self._wrap(cp.empty(shape, dtype=np.dtype(dtype)))
            except Exception as error:
                self._cupy_failed(error)
        return self.cuda.device_array(shape, dtype=np.dtype(dtype))

    def _pool(self):
        """The cupy module when allocations should come from its memory pool, else None."""
        if CONFIG["allocator"] == "numba":
            return None
        return self.cupy(CONFIG["allocator"])

    def _wrap(self, cupy_array):
        """A numba view of a CuPy array (which it keeps alive), without a stream synchronisation."""
        try:
            return self.cuda.as_cuda_array(cupy_array, sync=False)
        except TypeError:  # older numba-cuda without the sync argument
            return self.cuda.as_cuda_array(cupy_array)

    def zeros(self, shape, dtype):
        array = self.empty(shape, dtype)
        self.fill(array, 0)
        return array

    def fill(self, array, value):
        from .cuda_device import fill_kernel

        flat = array.reshape(array.size)
        threads = 128
        self.launch(fill_kernel(array.dtype.name), (max(1, math.ceil(array.size / threads)),), (threads,), 0,
                    flat, array.dtype.type(value))

    def to_host(self, array):
        return array.copy_to_host()

    def launch(self, kernel, grid, block, shared_bytes, *args):
        kernel[grid, block, 0, shared_bytes](*args)

    def synchronize(self):
        self.cuda.synchronize()

    # linear algebra
    def cupy(self, setting=None):
        """The cupy module when ``setting`` (default ``CONFIG["gemm"]``) asks for CuPy and it is usable, else None."""
        setting = CONFIG["gemm"] if setting is None else setting
        if setting == "numba" or simulator_active():
            return None
        if not self._cupy_checked:
            self._cupy_checked = True
            try:
                import cupy

                cupy.cuda.runtime.getDeviceCount()
                self._cupy = cupy
            except Exception:
                self._cupy = None
        if setting == "cupy" and self._cupy is None:
            raise RuntimeError("cuda_backend.CONFIG asks for 'cupy' but cupy cannot be imported or used")
        return self._cupy

    def _cupy_failed(self, error):
        """CuPy is importable but fails at work (say, a cuBLAS built for another CUDA): use numba from now on."""
        if CONFIG["gemm"] == "cupy" or CONFIG["allocator"] == "cupy":
            raise error
        warnings.warn(f"rnnlab's CUDA backend stops using CuPy after an error ({type(error).__name__}: {error}); "
                      "GEMMs and allocations use numba from now on", RuntimeWarning, stacklevel=3)
        self._cupy = None

    def gemm(self, a, b, out, trans_a=False, trans_b=False, accumulate=False, bias=None):
        """``out (+)= op(a) @ op(b) (+ bias)`` on the device; out is (M, N)."""
        cp = self.cupy()
        if cp is not None:
            try:
                ca, cb, cc = cp.asarray(a), cp.asarray(b), cp.asarray(out)
                ca = ca.T if trans_a else ca
                cb = cb.T if trans_b else cb
                if accumulate:
                    cc += ca @ cb
                else:
                    cp.matmul(ca, cb, out=cc)
                if bias is not None:
                    cc += cp.asarray(bias)
                return
            except Exception as error:
                self._cupy_failed(error)
        from .cuda_device import gemm_kernel

        tile = CONFIG["gemm_tile"]
        M, N = out.shape
        has_bias = bias is not None
        bias = bias if has_bias else out[0]  # a dummy of the right type, never read
        self.launch(gemm_kernel(out.dtype.name, tile), (math.ceil(N / tile), math.ceil(M / tile)), (tile, tile), 0,
                    a, b, out, int(trans_a), int(trans_b), int(accumulate), bias, int(has_bias))

    def batched_gemm_tn(self, a, b, out, accumulate=False):
        """``out[n] (+)= a[n]^T @ b[n]`` with a (N or 1, K, M), b (N, K, Nc), out (N, M, Nc)."""
        cp = self.cupy()
        if cp is not None:
            try:
                co = cp.asarray(out)
                product = cp.matmul(cp.swapaxes(cp.asarray(a), 1, 2), cp.asarray(b))
                if accumulate:
                    co += product
                else:
                    co[...] = product
                return
            except Exception as error:
                self._cupy_failed(error)
        from .cuda_device import batched_gemm_tn_kernel

        tile = CONFIG["gemm_tile"]
        n, M, N = out.shape
        self.launch(batched_gemm_tn_kernel(out.dtype.name, tile), (math.ceil(N / tile), math.ceil(M / tile), n),
                    (tile, tile), 0, a, b, out, int(accumulate))

    def colsum(self, a, out, accumulate=False):
        """``out (+)= a.sum(axis=0)`` for a 2-D device array."""
        cp = self.cupy()
        if cp is not None:
            try:
                co = cp.asarray(out)
                total = cp.asarray(a).sum(axis=0)
                if accumulate:
                    co += total
                else:
                    co[...] = total
                return
            except Exception as error:
                self._cupy_failed(error)
        from .cuda_device import colsum_kernel

        threads = 64
        self.launch(colsum_kernel(out.dtype.name), (math.ceil(a.shape[1] / threads),), (threads,), 0,
                    a, out, int(accumulate))


_device = None


def device():
    """The process-wide :class:`Device` (created on first use)."""
    global _device
    if _device is None:
        problem = availability_problem()
        if problem is not None:
            raise RuntimeError(problem)
        _device = Device()
        if simulator_active():
            CONFIG.update(SIMULATOR_CONFIG)
    return _device


# -- weights -------------------------------------------------------------------------------


class DeviceWeights:
    """A cell's weights on the device, in the kernels' layout.

    K (F, GU), R (U, GU) and RT = R^T (GU, U), contiguous; b_in and b_rec (GU,):
    the GRU's two bias rows when ``reset_after``, otherwise the bias and zeros.
    """

    def __init__(self, kind, units, features, dtype, K, R, RT, b_in, b_rec, use_bias):
        self.kind, self.units, self.features, self.dtype = kind, units, features, np.dtype(dtype)
        self.K, self.R, self.RT, self.b_in, self.b_rec = K, R, RT, b_in, b_rec
        self.use_bias = use_bias

    @property
    def spec(self):
        return _SPECS[self.kind]


def host_weights(cell):
    """(kind, K, R, b_in, b_rec) as host arrays in the kernels' layout."""
    kind = cell_kind(cell)
    K, R = cell.kernel, cell.recurrent_kernel
    GU = R.shape[1]
    zeros = np.zeros(GU, dtype=K.dtype)
    b_in, b_rec = zeros, zeros
    if cell.use_bias:
        if kind == "gru":
            b_in, b_rec = cell.bias[0], cell.bias[1]
        else:
            b_in = cell.bias
    return kind, K, R, b_in, b_rec


def device_weights(cell, dev=None):
    """Copy ``cell``'s weights to the device (a :class:`DeviceWeights`)."""
    dev = dev or device()
    kind, K, R, b_in, b_rec = host_weights(cell)
    return DeviceWeights(kind, cell.units, K.shape[0], K.dtype, dev.to_device(K), dev.to_device(R),
                         dev.to_device(np.ascontiguousarray(R.T)), dev.to_device(b_in), dev.to_device(b_rec),
                         cell.use_bias)


# -- planning ------------------------------------------------------------------------------


def _round_threads(n):
    return int(min(CONFIG["max_threads"], max(32, 32 * math.ceil(n / 32))))


class Plan:
    """Which schedule runs a (kind, B, U, dtype) problem, with its launch geometry."""

    def __init__(self, kind, batch, units, dtype):
        from . import cuda_scan

        spec = _SPECS[kind]
        self.kind, self.G, self.L = kind, spec.G, spec.L
        self.dtype = np.dtype(dtype)
        itemsize = self.dtype.itemsize
        U, GU, limit = units, spec.G * units, CONFIG["shared_limit"]
        path = CONFIG["path"]
        if kind == "gru_v1":
            path = "persistent"
        elif path == "auto":
            path = "persistent" if units <= CONFIG["persistent_max_units"] else "tiled"
        rows = CONFIG["rows_per_block"]
        if rows is None:
            rows = 1 if batch <= 32 else min(cuda_scan.MAXR, math.ceil(batch / 32))
        rows = max(1, min(int(rows), cuda_scan.MAXR, batch))
        self.r_in_shared = False
        if path == "persistent":
            if kind == "gru_v1":
                gru = spec.load()
                need = lambda r: max(gru.v1_forward_shared(r, U, itemsize), gru.v1_backward_shared(r, U, itemsize))
            else:
                need = lambda r: max(cuda_scan.persistent_forward_shared(r, U, spec.G, itemsize, False),
                                     cuda_scan.persistent_backward_shared(r, U, spec.G, itemsize))
            while rows > 1 and need(rows) > limit:
                rows -= 1
            if need(rows) > limit:
                if kind == "gru_v1":
                    raise ValueError(f"GRUCell(reset_after=False) with {units} units needs more shared memory "
                                     f"than {limit} bytes on backend 'cuda'")
                path = "tiled"
            elif kind != "gru_v1":
                self.r_in_shared = cuda_scan.persistent_forward_shared(rows, U, spec.G, itemsize, True) <= limit
        self.path, self.rows = path, rows
        self.blocks = math.ceil(batch / rows)
        self.threads_forward = _round_threads(max(GU, rows * U) if kind != "gru_v1" else max(2 * U, rows * U))
        self.threads_backward = _round_threads(max(GU, rows * U))
        if kind == "gru_v1":
            gru = spec.load()
            self.shared_forward = gru.v1_forward_shared(rows, U, itemsize)
            self.shared_backward = gru.v1_backward_shared(rows, U, itemsize)
        else:
            self.shared_forward = cuda_scan.persistent_forward_shared(rows, U, spec.G, itemsize, self.r_in_shared)
            self.shared_backward = cuda_scan.persistent_backward_shared(rows, U, spec.G, itemsize)
        tb, tu, _ = CONFIG["tiles"]
        self.tile_grid = (math.ceil(U / tu), math.ceil(batch / tb))
        self.tile_block = (tu, tb)

    def kernels(self):
        spec = _SPECS[self.kind]
        module = spec.load()
        name = self.dtype.name
        if self.kind == "gru_v1":
            return {"persistent_forward": lambda r_in_shared: module.v1_forward(name),
                    "persistent_backward": module.v1_backward(name)}
        return module.kernels(name, tuple(CONFIG["tiles"]))

    def __repr__(self):
        return (f"Plan({self.kind}, path={self.path}, rows={self.rows}, blocks={self.blocks}, "
                f"R in shared={self.r_in_shared})")


# -- forward -------------------------------------------------------------------------------


class DeviceForward:
    """The result of :func:`forward_device`: device arrays, and the inputs they came from."""

    def __init__(self, **arrays):
        self.__dict__.update(arrays)


def forward_device(W, x, s0, mask=None, zero_output=False, record=False, dev=None):
    """Run the recurrence on device arrays.

    W: :class:`DeviceWeights`; x (T, B, F) in processing order; s0 (L, B, U);
    mask (T, B) uint8 or None.  Returns a :class:`DeviceForward` with ``out``
    (T, B, U), ``final`` (L, B, U) and, with ``record``, the tape: ``seq``
    (L, T, B, U), ``gates`` (T, B, GU), ``extra`` (T, B, U).
    """
    dev = dev or device()
    T, B, F = x.shape
    U, dtype = W.units, W.dtype
    plan = Plan(W.kind, B, U, dtype)
    G, L, GU = plan.G, plan.L, plan.G * U
    xp = dev.empty((T, B, GU), dtype)  # (T, B, GU): x K + b_in for every step, one GEMM
    dev.gemm(x.reshape(T * B, F), W.K, xp.reshape(T * B, GU), bias=W.b_in)
    out = dev.empty((T, B, U), dtype)
    seq = dev.empty((L, T, B, U) if record else (L, 1, 1, 1), dtype)
    gates = dev.empty((T, B, GU) if record else (1, 1, G), dtype)
    extra = dev.empty((T, B, U) if record else (1, 1, 1), dtype)
    has_mask = mask is not None
    mask_d = mask if has_mask else dev.empty((1, 1), np.uint8)
    kernels = plan.kernels()
    if plan.path == "persistent":
        final = dev.empty((L, B, U), dtype)
        kernel = kernels["persistent_forward"](plan.r_in_shared)
        dev.launch(kernel, (plan.blocks,), (plan.threads_forward,), plan.shared_forward,
                   xp, W.R, W.b_rec, s0, mask_d, int(has_mask), int(zero_output), int(record), plan.rows,
                   out, seq, final, gates, extra)
    else:
        buffers = [dev.empty((L, B, U), dtype), dev.empty((L, B, U), dtype)]
        kernel = kernels["tiled_forward"]
        for t in range(T):
            s_in = s0 if t == 0 else buffers[(t - 1) % 2]
            dev.launch(kernel, plan.tile_grid, plan.tile_block, 0,
                       t, xp, W.R, W.b_rec, s_in, buffers[t % 2], mask_d, int(has_mask), int(zero_output),
                       int(record), out, seq, gates, extra)
        final = buffers[(T - 1) % 2]
    return DeviceForward(W=W, x=x, s0=s0, mask=mask, zero_output=zero_output, plan=plan, xp=xp, out=out,
                         final=final, seq=seq if record else None, gates=gates if record else None,
                         extra=extra if record else None)


# -- backward ------------------------------------------------------------------------------


class DeviceGradients:
    """The result of :func:`backward_device` (device arrays).

    dK (F, GU), dR (U, GU) (for the reset_after=False GRU: dR_zr (U, 2U) and
    dR_h (U, U)), db_in and db_rec (GU,), dx (T, B, F), d_init (L, B, U),
    state_grads (L, T, B, U), and the per-step pre-activation gradients dAX,
    dAH (T, B, GU) (dAH is dAX except for the reset_after=True GRU).
    """

    def __init__(self, **arrays):
        self.__dict__.update(arrays)


def backward_device(fw, d_out, d_final, truncate=None, carries_output=True, dev=None):
    """BPTT on the device for a recorded :class:`DeviceForward`.

    d_out (T, B, U): dL/d(outputs) in processing order; d_final (L, B, U):
    dL/d(final states).  ``truncate=k`` lets each output's gradient reach k
    steps back (as :func:`rnnlab.bptt.backward`).  ``carries_output``: masked
    steps repeat the previous output (False with ``zero_output_for_mask``).
    """
    from .cuda_device import ADD, ATOMIC_ADD, STORE

    dev = dev or device()
    W, plan = fw.W, fw.plan
    if fw.seq is None:
        raise ValueError("backward_device needs a forward run with record=True")
    T, B, F = fw.x.shape
    U, dtype, G, L = W.units, W.dtype, plan.G, plan.L
    GU = G * U
    full = truncate is None or truncate >= T
    truncate = T if full else int(truncate)
    separate = W.kind == "gru"
    alloc = dev.empty if full else dev.zeros  # truncated sweeps add into their outputs
    dAX = alloc((T, B, GU), dtype)
    dAH = alloc((T, B, GU), dtype) if separate else dAX
    d_init = alloc((L, B, U), dtype)
    state_grads = alloc((L, T, B, U), dtype)
    has_mask = fw.mask is not None
    mask_d = fw.mask if has_mask else dev.empty((1, 1), np.uint8)
    kernels = plan.kernels()
    if plan.path == "persistent":
        mode = STORE if full else ATOMIC_ADD
        sweeps = 1 if full else max(1, min(T, CONFIG["sweep_blocks"] // plan.blocks or 1))
        dev.launch(kernels["persistent_backward"], (plan.blocks, sweeps), (plan.threads_backward,),
                   plan.shared_backward, W.RT, fw.s0, fw.seq, fw.gates, fw.extra, mask_d, int(has_mask),
                   int(carries_output), d_out, d_final, truncate, mode, plan.rows, dAX, dAH, d_init, state_grads)
    else:
        mode = STORE if full else ADD
        kernel = kernels["tiled_backward"]
        da = [dev.empty((B, GU), dtype), dev.empty((B, GU), dtype)]
        direct, dcs, carry = dev.empty((B, U), dtype), dev.empty((B, U), dtype), dev.empty((B, U), dtype)
        origins = [T - 1] if full else range(T - 1, -1, -1)
        for last in origins:
            first = 0 if full else max(0, last - truncate + 1)
            stop = -2 if first == 0 else first - 1  # t = -1 adds the sweep's carried gradient to d_init
            for t in range(last, stop, -1):
                dev.launch(kernel, plan.tile_grid, plan.tile_block, 0,
                           t, last, first, int(full), W.RT, fw.s0, fw.seq, fw.gates, fw.extra, mask_d,
                           int(has_mask), int(carries_output), d_out, d_final, mode, da[(t + 1) % 2], da[t % 2],
                           direct, dcs, carry, dAX, dAH, d_init, state_grads)
    # weight and input gradients: GEMMs over all timesteps
    x2 = fw.x.reshape(T * B, F)
    dAX2 = dAX.reshape(T * B, GU)
    dx = dev.empty((T, B, F), dtype)
    dev.gemm(dAX2, W.K, dx.reshape(T * B, F), trans_b=True)  # (TB, GU) @ (GU, F)
    dK = dev.empty((F, GU), dtype)
    dev.gemm(x2, dAX2, dK, trans_a=True)  # (F, TB) @ (TB, GU)
    h_seq = fw.seq[0]  # (T, B, U): h after each step; h entering step t is h_seq[t-1] (s0 at t = 0)
    db_in = dev.empty((GU,), dtype)
    dev.colsum(dAX2, db_in)
    db_rec = None
    if W.kind == "gru_v1":
        dR_zr, dR_h = dev.empty((U, 2 * U), dtype), dev.empty((U, U), dtype)
        _recurrent_gemm(dev, fw.s0[0], h_seq, dAX, dR_zr, 0, 2 * U)
        dev.gemm(fw.extra.reshape(T * B, U), dAX2[:, 2 * U :], dR_h, trans_a=True)  # (r h)^T dph
        dR = (dR_zr, dR_h)
    else:
        dR = dev.empty((U, GU), dtype)
        _recurrent_gemm(dev, fw.s0[0], h_seq, dAH, dR, 0, GU)
        if separate:
            db_rec = dev.empty((GU,), dtype)
            dev.colsum(dAH.reshape(T * B, GU), db_rec)
    return DeviceGradients(dK=dK, dR=dR, db_in=db_in, db_rec=db_rec, dx=dx, d_init=d_init,
                           state_grads=state_grads, dAX=dAX, dAH=dAH)


def _recurrent_gemm(dev, h0, h_seq, dA, out, col0, col1):
    """out = sum_t h_{t-1}^T dA_t[:, col0:col1], with h_{-1} = h0."""
    T, B, GU = dA.shape
    U = h0.shape[1]
    cols = slice(col0, col1)
    whole = col0 == 0 and col1 == GU
    first = dA[0] if whole else dA[0][:, cols]
    dev.gemm(h0, first, out, trans_a=True)
    if T > 1:
        rest = dA[1:].reshape((T - 1) * B, GU)
        dev.gemm(h_seq[: T - 1].reshape((T - 1) * B, U), rest if whole else rest[:, cols], out,
                 trans_a=True, accumulate=True)


# -- the backend interface -----------------------------------------------------------------


class CudaRecord:
    """The tape of one ``scan``: device arrays for :func:`backward`, host copies on request."""

    def __init__(self, forward, spec):
        self.forward = forward
        self.spec = spec
        self._states = None
        self._gates = None

    def stacked_states(self):
        """Flat list of (T, B, size): the states after every step (host arrays)."""
        if self._states is None:
            seq = device().to_host(self.forward.seq)
            self._states = [seq[leaf] for leaf in range(seq.shape[0])]
        return self._states

    def gates(self, cell):
        """``{name: (T, B, U)}`` for the cell's gates (host arrays); {} for SimpleRNN."""
        if self._gates is None:
            gates = device().to_host(self.forward.gates)
            U = self.forward.W.units
            self._gates = {name: gates[:, :, g * U : (g + 1) * U] for g, name in enumerate(self.spec.gate_names)}
        return self._gates


def scan(layer, sequence_run, record=False):
    """Forward over a prepared run: ``(outputs (T, B, U), final_states[, record])``, host arrays."""
    dev = device()
    cell = layer.cell
    x = np.ascontiguousarray(sequence_run.inputs)
    dtype = np.dtype(cell.dtype)
    W = device_weights(cell, dev)
    s0 = dev.to_device(np.stack([np.asarray(s, dtype=dtype) for s in sequence_run.initial_states]))
    mask = None if sequence_run.mask is None else dev.to_device(np.asarray(sequence_run.mask, dtype=np.uint8))
    fw = forward_device(W, dev.to_device(x.astype(dtype, copy=False)), s0, mask, layer.zero_output_for_mask,
                        record, dev)
    outputs = dev.to_host(fw.out)
    final = dev.to_host(fw.final)
    final_states = [final[leaf] for leaf in range(final.shape[0])]
    if record:
        return outputs, final_states, CudaRecord(fw, W.spec)
    return outputs, final_states


def backward(tape, d_outputs, d_final, truncate, per_step):
    """BPTT for a tape recorded by :func:`scan`; returns :class:`rnnlab.bptt.Gradients`."""
    from ..bptt import Gradients

    dev = device()
    fw = tape.record.forward
    W = fw.W
    dtype = W.dtype
    d_out = dev.to_device(np.asarray(d_outputs, dtype=dtype))
    d_fin = dev.to_device(np.stack([np.asarray(d, dtype=dtype) for d in d_final]))
    g = backward_device(fw, d_out, d_fin, truncate, not tape.layer.zero_output_for_mask, dev)
    U = W.units
    dK = dev.to_host(g.dK)
    if W.kind == "gru_v1":
        dR = np.concatenate([dev.to_host(g.dR[0]), dev.to_host(g.dR[1])], axis=1)
    else:
        dR = dev.to_host(g.dR)
    weights = [dK, dR]
    if W.use_bias:
        db_in = dev.to_host(g.db_in)
        weights.append(np.stack([db_in, dev.to_host(g.db_rec)]) if W.kind == "gru" else db_in)
    d_init = dev.to_host(g.d_init)
    state_grads = dev.to_host(g.state_grads)
    per = None
    if per_step:
        per = _per_step(tape, fw, dev.to_host(g.dAX), dev.to_host(g.dAH) if W.kind == "gru" else None, U)
    return Gradients(weights, dev.to_host(g.dx), [d_init[k] for k in range(d_init.shape[0])],
                     [state_grads[k] for k in range(state_grads.shape[0])], per)


def _per_step(tape, fw, dAX, dAH, U):
    """Each step's contribution to each weight gradient, (T, *shape), from the per-step dA."""
    x = np.asarray(tape.inputs, dtype=dAX.dtype)  # (T, B, F)
    h_seq = tape.record.stacked_states()[0]
    h_prev = np.concatenate([np.asarray(tape.initial_states[0], dtype=dAX.dtype)[None], h_seq[:-1]])  # (T, B, U)
    kind = fw.W.kind
    per = [np.einsum("tbf,tbg->tfg", x, dAX)]
    if kind == "gru_v1":
        rh = device().to_host(fw.extra)
        per.append(np.concatenate([np.einsum("tbu,tbg->tug", h_prev, dAX[:, :, : 2 * U]),
                                   np.einsum("tbu,tbg->tug", rh, dAX[:, :, 2 * U :])], axis=2))
    else:
        per.append(np.einsum("tbu,tbg->tug", h_prev, dAH if dAH is not None else dAX))
    if fw.W.use_bias:
        db = dAX.sum(axis=1)
        per.append(np.stack([db, dAH.sum(axis=1)], axis=1) if kind == "gru" else db)
    return per


# -- the ensemble engine ---------------------------------------------------------------------


def ensemble_run(ensemble, x, h0, trajectories, gradients, loss, return_grads, dev=None):
    """GPU path of :func:`rnnlab.ensemble.simulate`: copy in, :func:`ensemble_device`, copy out (a dict of host arrays)."""
    dev = dev or device()
    dtype = np.dtype(ensemble.dtype)
    N, H, F = ensemble.n, ensemble.units, ensemble.features
    xs = x if x.ndim == 3 else x[None]  # (N or 1, T, F)
    T = xs.shape[1]
    # F = 0 runs with one zero input feature, which adds nothing
    x_d = dev.to_device(xs if F > 0 else np.zeros((xs.shape[0], T, 1), dtype))
    K_d = dev.to_device(ensemble.kernel if F > 0 else np.zeros((N, 1, H), dtype))
    out = ensemble_device(K_d, dev.to_device(ensemble.recurrent_kernel), dev.to_device(ensemble.bias), x_d,
                          dev.to_device(h0), trajectories, gradients, loss, dev)
    host = lambda name: None if out[name] is None else dev.to_host(out[name])
    result = dict(final_state=host("final_state"), mean_abs=host("mean_abs"), loss=host("loss"),
                  trajectories=host("trajectories") if trajectories else None, grad_norm=host("grad_norm"),
                  grad_h0_norm=host("grad_h0_norm"), grads=None)
    if return_grads:
        result["grads"] = {"kernel": host("d_kernel") if F > 0 else np.zeros((N, 0, H), dtype),
                           "recurrent_kernel": host("d_recurrent_kernel"), "bias": host("d_bias"),
                           "h0": host("d_h0")}
    return result


def ensemble_device(K, R, b, x, h0, trajectories=False, gradients=False, loss="final", dev=None):
    """The ensemble on device arrays: K (N, F, H) (F >= 1), R (N, H, H), b (N, H), x (N or 1, T, F), h0 (N, H).

    One launch of :func:`rnnlab.ensemble_cuda.ensemble_kernel` (N blocks) runs
    every network forward and, with ``gradients``, backward, writing the
    per-step pre-activation gradients dA (N, T, H); then dR = H_prev^T dA and
    dK = X^T dA are one batched GEMM each, and a last launch reduces the
    norms.  Returns a dict of device arrays (None where not computed).
    """
    from .. import ensemble_cuda

    dev = dev or device()
    dtype = np.dtype(R.dtype)
    N, H = h0.shape
    F = K.shape[1]
    T = x.shape[1]
    if H > ensemble_cuda.MAXH:
        raise ValueError(f"the GPU ensemble runs networks of up to {ensemble_cuda.MAXH} units, got {H}; "
                         "use backend='cpu'")
    shared = ensemble_cuda.shared_bytes(H, dtype.itemsize)
    if shared > CONFIG["shared_limit"]:
        raise ValueError(f"{H} units in {dtype.name} need {shared} bytes of shared memory per network, more than "
                         f"{CONFIG['shared_limit']}; use float32, fewer units or backend='cpu'")
    keep = trajectories or gradients
    traj = dev.empty((N, T, H) if keep else (1, 1, 1), dtype)
    dA = dev.empty((N, T, H) if gradients else (1, 1, 1), dtype)
    final, mean_abs, loss_d = dev.empty((N, H), dtype), dev.empty((N,), dtype), dev.empty((N,), dtype)
    db = dev.empty((N, H) if gradients else (1, 1), dtype)
    dh0 = dev.empty((N, H) if gradients else (1, 1), dtype)
    grad_h0_norm = dev.empty((N,), dtype)
    dev.launch(ensemble_cuda.ensemble_kernel(dtype.name), (N,), (ensemble_cuda.threads_for(H),), shared,
               K, R, b, x, int(x.shape[0] > 1), h0, 0 if loss == "final" else 1, dtype.type(1.0 / T),
               dtype.type(1.0 / (T * H)), int(gradients), int(keep), traj, final, mean_abs, loss_d, dA, db, dh0,
               grad_h0_norm)
    out = dict(final_state=final, mean_abs=mean_abs, loss=loss_d, trajectories=traj if keep else None,
               grad_norm=None, grad_h0_norm=None, d_kernel=None, d_recurrent_kernel=None, d_bias=None, d_h0=None)
    if gradients:
        dR = dev.empty((N, H, H), dtype)
        dev.batched_gemm_tn(h0.reshape(N, 1, H), dA[:, 0:1, :], dR)  # h0^T dA_0
        if T > 1:
            dev.batched_gemm_tn(traj[:, : T - 1, :], dA[:, 1:, :], dR, accumulate=True)
        dK = dev.empty((N, F, H), dtype)
        dev.batched_gemm_tn(x, dA, dK)
        grad_norm = dev.empty((N,), dtype)
        dev.launch(ensemble_cuda.norms_kernel(dtype.name), (N,), (64,), 0, dK, dR, db, grad_norm)
        out.update(grad_norm=grad_norm, grad_h0_norm=grad_h0_norm, d_kernel=dK, d_recurrent_kernel=dR, d_bias=db,
                   d_h0=dh0)
    return out
