"""The GPU itself: is one there, the tunables, and the `Device` that does memory, copies, launches and GEMMs.

Importing this module is cheap: ``numba.cuda`` is imported when a
`Device` is first made (`get_device`) or when
`availability_problem` first looks for a GPU.

* `availability_problem`, `simulator_active`, `gpu_available`.
* `CONFIG` and `options`: the tunables of the CUDA backend.
* `Device` and `get_device`: device arrays from CuPy's memory
  pool (numba's device arrays without CuPy), host <-> device copies, kernel
  launches, and the GEMMs (cuBLAS through CuPy, else a tiled numba kernel).
"""

import contextlib
import functools
import importlib.util
import math
import os
import warnings

import numpy as np

#: Tunables.  Change with `options` (a context manager) or by assignment.
CONFIG = {
    # "auto": persistent kernel for units <= persistent_max_units, else tiled;
    # "persistent" or "tiled" force one (a cell with only a persistent schedule,
    # such as the reset_before GRU, always runs persistent).
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
    """Temporarily change `CONFIG`, e.g. ``with options(path="tiled"): ...``."""
    unknown = set(changes) - set(CONFIG)
    if unknown:
        raise ValueError(f"unknown CUDA backend options {sorted(unknown)}; known: {sorted(CONFIG)}")
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


# -- the device ----------------------------------------------------------------------------


class Device:
    """Allocation, transfers, launches and GEMMs on device arrays.

    Replaceable: ``benchmarks/gpu/compile_check.py`` puts a NumPy stand-in in
    its place whose ``launch`` compiles instead of running.
    """

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
        from .primitives import fill_kernel

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
            raise RuntimeError("rnnlab.backends.cuda.device.CONFIG asks for 'cupy' but cupy cannot be imported or used")
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
        from .primitives import gemm_kernel

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
        from .primitives import batched_gemm_tn_kernel

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
        from .primitives import colsum_kernel

        threads = 64
        self.launch(colsum_kernel(out.dtype.name), (math.ceil(a.shape[1] / threads),), (threads,), 0,
                    a, out, int(accumulate))


_device = None


def get_device():
    """The process-wide `Device` (created on first use)."""
    global _device
    if _device is None:
        problem = availability_problem()
        if problem is not None:
            raise RuntimeError(problem)
        _device = Device()
        if simulator_active():
            CONFIG.update(SIMULATOR_CONFIG)
    return _device
