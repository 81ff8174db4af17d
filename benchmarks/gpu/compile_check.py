"""Compile every rnnlab CUDA kernel to PTX without a GPU (a typing check the simulator cannot do).

The numba-cuda simulator runs kernels as Python, so it never type-checks them:
code that passes there can still fail to compile for a real GPU.  This script
drives the real host code of ``rnnlab.backends.cuda.host`` (forward and
backward, every cell, both schedules, both dtypes, masks, truncation) and the
ensemble, with a stand-in :class:`~rnnlab.backends.cuda.device.Device` whose
arrays are NumPy arrays and whose ``launch`` compiles the kernel for the
argument types instead of running it.

It needs NVVM, which numba-cuda's ``cu12``/``cu13`` extras install, but no
driver or GPU::

    python -m venv /tmp/ptx && /tmp/ptx/bin/pip install "numba-cuda[cu13]>=0.30,<0.31" numpy scipy tqdm
    PYTHONPATH=. /tmp/ptx/bin/python benchmarks/gpu/compile_check.py

Prints one line per compiled kernel and the count of float64 instructions in
float32 kernels (0 means no silent promotion).  With ``ptxas`` on the PATH or
in ``$PTXAS`` (``pip install "nvidia-cuda-nvcc==13.*"``), it also assembles
each kernel for sm_90 and prints its registers per thread and the largest
block that the 64K registers of an SM allow (persistent kernels are launched
with up to ``rnnlab.backends.cuda.device.CONFIG["max_threads"]`` threads, tiled ones with
tile_rows x tile_units).
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import types

os.environ.pop("NUMBA_ENABLE_CUDASIM", None)

import numba
import numpy as np
from numba import cuda

# Device functions are compiled for the "current device"; there is none here.
import numba.cuda.dispatcher as _dispatcher

_dispatcher.get_current_device = lambda: types.SimpleNamespace(compute_capability=(9, 0))

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))

import rnnlab as rl  # noqa: E402
from rnnlab import bptt  # noqa: E402
from rnnlab.backends.cuda import device as cuda_device  # noqa: E402
from rnnlab.backends.cuda import host as cuda_host  # noqa: E402
from rnnlab.types import Tape  # noqa: E402

COMPILED = {}


class CompileOnlyDevice(cuda_device.Device):
    """NumPy arrays stand in for device arrays; launches compile instead of running."""

    def __init__(self):
        self.cuda = cuda
        self._cupy = None
        self._cupy_checked = True

    def to_device(self, array):
        return np.ascontiguousarray(array).copy()

    def empty(self, shape, dtype):
        return np.zeros(shape, dtype=dtype)

    def to_host(self, array):
        return np.array(array)

    def synchronize(self):
        pass

    def cupy(self, setting=None):
        return None

    def launch(self, kernel, grid, block, shared_bytes, *args):
        sig = tuple(numba.typeof(a) for a in args)
        key = (kernel, sig)
        if key in COMPILED:
            return
        start = time.perf_counter()
        ptx, _ = cuda.compile_ptx(kernel.py_func, sig, cc=(9, 0))
        f64 = ptx.count(".f64")
        COMPILED[key] = f64
        dtypes = {a.dtype.name for a in args if isinstance(a, np.ndarray) and a.dtype.kind == "f"}
        warn = "  <-- float64 ops in a float32 kernel" if dtypes == {"float32"} and f64 else ""
        print(f"compiled {kernel.py_func.__qualname__:<40} {sorted(dtypes)} {time.perf_counter() - start:5.2f}s "
              f"f64 ops: {f64}{warn}{registers(ptx)}")


def _find_ptxas():
    found = os.environ.get("PTXAS") or shutil.which("ptxas")
    if found:
        return found
    try:
        import nvidia

        for root in nvidia.__path__:
            for dirpath, _, files in os.walk(root):
                if "ptxas" in files:
                    return os.path.join(dirpath, "ptxas")
    except ImportError:
        pass
    return None


PTXAS = _find_ptxas()


def registers(ptx):
    """'  regs N, smem S' from ptxas -v, or '' without ptxas."""
    if PTXAS is None:
        return ""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "k.ptx")
        with open(path, "w") as f:
            f.write(ptx)
        done = subprocess.run([PTXAS, "-arch=sm_90", "-v", path, "-o", os.path.join(tmp, "k.cubin")],
                              capture_output=True, text=True)
    text = done.stdout + done.stderr
    regs = re.findall(r"Used (\d+) registers", text)
    smem = re.findall(r"(\d+) bytes smem", text)
    if done.returncode:
        return "  ptxas FAILED: " + text[-300:]
    n = max(int(r) for r in regs) if regs else -1
    per_warp = 256 * -(-32 * n // 256)  # registers are allocated per warp in units of 256
    fits = 32 * (65536 // per_warp) if n > 0 else 1024
    warn = "  <-- below CONFIG['max_threads']" if fits < cuda_device.CONFIG["max_threads"] else ""
    return f"  regs {n} (blocks up to {min(fits, 1024)} threads){warn}, smem {max(map(int, smem)) if smem else 0}"


def main():
    cuda_device.availability_problem.cache_clear()
    cuda_device.availability_problem = lambda: None  # no GPU here, but compile anyway
    cuda_device._device = CompileOnlyDevice()
    rng = np.random.default_rng(0)
    cells = {
        "simple": lambda d: rl.SimpleRNNCell(3, dtype=d),
        "gru": lambda d: rl.GRUCell(3, dtype=d),
        "reset_before": lambda d: rl.GRUCell(3, reset_after=False, dtype=d),
        "lstm": lambda d: rl.LSTMCell(3, dtype=d),
    }
    for dtype in ("float32", "float64"):
        for name, make in cells.items():
            for path in ("persistent", "tiled"):
                for truncate, masked in ((None, False), (2, True)):
                    cell = make(dtype)
                    layer = rl.RNN(cell, return_sequences=True, return_state=True, backend="python")
                    x = rng.normal(size=(2, 4, 2)).astype(dtype)
                    mask = np.ones((2, 4), bool) if masked else None
                    with cuda_device.options(path=path, gemm="numba"):
                        run = layer.prepare(x, None, mask)
                        out, final, record = cuda_host.scan(layer, run, record=True)
                        tape = Tape(layer, run, out, final, record, "cuda")
                        d_out, d_final = bptt._output_gradients(tape, [np.ones_like(out.transpose(1, 0, 2))]
                                                                + [np.ones_like(f) for f in final])
                        cuda_host.backward(tape, d_out, d_final, truncate, True)
        if os.environ.get("SKIP_ENSEMBLE"):
            continue
        from rnnlab import ensemble

        nets = ensemble.random_networks(4, 3, 2, spectral_radius=np.linspace(0.5, 1.5, 4), seed=0, dtype=dtype)
        for loss in ("final", "mean"):
            ensemble.simulate(nets, x=rng.normal(size=(5, 2)), gradients=True, trajectories=True, loss=loss,
                              backend="cuda")
            ensemble.simulate(nets, x=rng.normal(size=(4, 5, 2)), gradients=False, loss=loss, backend="cuda")
    print(f"{len(COMPILED)} kernels compiled for sm_90")
    return 0


if __name__ == "__main__":
    sys.exit(main())
