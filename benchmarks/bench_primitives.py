"""Benchmarks of the kernel building blocks in rnnlab.backends.numba (not a test; prints a report).

    .venv/bin/python benchmarks/bench_primitives.py [--quick]

It reports:

1. import times of ``rnnlab``, ``rnnlab.backends.numba`` and its building blocks;
2. whether an elementwise loop over ``fastmath.tanh``/``sigmoid`` vectorizes
   (it counts packed SIMD instructions in the assembly), and its speed against
   ``np.tanh`` and a ``math.tanh`` loop;
3. the fast-math flag sets on an LSTM-like gate loop and a batch reduction;
4. ``blas.gemm`` with beta=1 into preallocated memory, against ``@``/``np.dot``
   inside ``@njit``, for RNN-step shapes (B, H) @ (H, 4H), and the NRT
   allocation counts of each.

All numbers are medians of repeated runs measured side by side in one process.
The machine is noisy, so compare ratios rather than absolute times.
"""

import argparse
import math
import os
import re
import statistics
import subprocess
import sys
import time

import numpy as np

QUICK = False


def median_time(fn, *args, repeat=15, number=1):
    fn(*args)  # warm-up / compile
    times = []
    for _ in range(repeat if not QUICK else max(3, repeat // 3)):
        start = time.perf_counter()
        for _ in range(number):
            fn(*args)
        times.append((time.perf_counter() - start) / number)
    return statistics.median(times)


def import_times():
    print("== import time (python -X importtime, cumulative, median of 5 fresh processes) ==")
    for module in ["rnnlab", "rnnlab.backends.numba", "rnnlab.backends.numba.jit", "rnnlab.backends.numba.fastmath",
                   "rnnlab.backends.numba.blas"]:
        samples = []
        for _ in range(5 if not QUICK else 2):
            err = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"],
                                 capture_output=True, text=True, check=True).stderr
            row = [line for line in err.splitlines() if line.rstrip().endswith(f"| {module}")][-1]
            samples.append(int(row.split("|")[1]) / 1e6)
        print(f"  import {module:<26s} {statistics.median(samples):6.3f} s")
    out = subprocess.run([sys.executable, "-c", "import sys, rnnlab, rnnlab.backends.numba; "
                          "print(sorted({m.split('.')[0] for m in sys.modules} & {'numba', 'scipy', 'llvmlite'}))"],
                         capture_output=True, text=True, check=True).stdout.strip()
    print(f"  heavy modules loaded by `import rnnlab, rnnlab.backends.numba`: {out}")


def vector_report(asm):
    """Packed SIMD evidence in x86 assembly: register widths and packed FP instruction counts."""
    widths = [w for w in ("zmm", "ymm", "xmm") if re.search(rf"\b%?{w}\d+", asm)]
    packed = len(re.findall(r"\bv(?:fn?m(?:add|sub)\d+|mul|add|sub|div|max|min|round|cmp)p[sd]\b", asm))
    scalar_calls = len(re.findall(r"\bcall[lq]?\s", asm))
    return f"widest register {widths[0] if widths else 'none'}, packed FP instructions {packed}, calls {scalar_calls}"


def activations():
    from rnnlab.backends.numba.fastmath import sigmoid, tanh
    from rnnlab.backends.numba.jit import jit

    # Uncached copies so that the assembly can be inspected (cached code cannot be).
    @jit(cache=False)
    def tanh_loop(x, out):
        for i in range(x.size):
            out[i] = tanh(x[i])

    @jit(cache=False)
    def sigmoid_loop(x, out):
        for i in range(x.size):
            out[i] = sigmoid(x[i])

    @jit(cache=False)
    def math_tanh_loop(x, out):
        for i in range(x.size):
            out[i] = math.tanh(x[i])

    @jit(cache=False)
    def math_sigmoid_loop(x, out):
        for i in range(x.size):
            out[i] = 1.0 / (1.0 + math.exp(-x[i]))

    print("\n== vectorization of `for i in range(n): out[i] = f(x[i])` (assembly) ==")
    x = np.linspace(-5, 5, 1024)
    for dtype in (np.float32, np.float64):
        xs = x.astype(dtype)
        out = np.empty_like(xs)
        for fn in (tanh_loop, sigmoid_loop, math_tanh_loop):
            fn(xs, out)
            asm = fn.inspect_asm(fn.signatures[-1])
            print(f"  {dtype.__name__:8s} {fn.__name__:16s} {vector_report(asm)}")

    print("\n== elementwise speed, n = %d, ns per element (median) ==" % (1 << 16))
    print(f"  {'dtype':8s} {'function':8s} {'fastmath':>9s} {'np':>9s} {'math loop':>10s}"
          f" {'np/fast':>8s} {'math/fast':>10s}")
    import scipy.special

    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        xs = (rng.standard_normal(1 << 16) * 3).astype(dtype)
        out = np.empty_like(xs)
        for name, fast, numpy_fn, math_loop in (
            ("tanh", tanh_loop, lambda a, o: np.tanh(a, out=o), math_tanh_loop),
            ("sigmoid", sigmoid_loop, lambda a, o: scipy.special.expit(a, out=o), math_sigmoid_loop),
        ):
            t_fast = median_time(fast, xs, out, repeat=31, number=20) / xs.size * 1e9
            t_np = median_time(numpy_fn, xs, out, repeat=31, number=20) / xs.size * 1e9
            t_math = median_time(math_loop, xs, out, repeat=11, number=5) / xs.size * 1e9
            print(f"  {dtype.__name__:8s} {name:8s} {t_fast:9.2f} {t_np:9.2f} {t_math:10.2f}"
                  f" {t_np / t_fast:8.2f} {t_math / t_fast:10.2f}")
    print("  (np = np.tanh / scipy.special.expit, NumPy's own SIMD loops; math loop = math.tanh or"
          " 1/(1+math.exp(-x)) in @njit)")


def fastmath_flags():
    """LSTM-like fused gate loop + a batch reduction, compiled with different flag sets."""
    import numba

    from rnnlab.backends.numba.fastmath import sigmoid, tanh

    def gates(z, c, h, db):  # z: (B, 4H); c, h: (B, H); db: (4H,)
        B, H = c.shape
        for b in range(B):
            for j in range(H):
                i_ = sigmoid(z[b, j])
                f_ = sigmoid(z[b, H + j])
                g_ = tanh(z[b, 2 * H + j])
                o_ = sigmoid(z[b, 3 * H + j])
                c[b, j] = f_ * c[b, j] + i_ * g_
                h[b, j] = o_ * tanh(c[b, j])
        for b in range(B):  # db += sum over the batch, as in a backward pass
            for j in range(4 * H):
                db[j] += z[b, j]
        return db

    def reduce_dot(a, b):  # a plain reduction: only vectorizes with reassoc
        s = a.dtype.type(0)
        for i in range(a.size):
            s += a[i] * b[i]
        return s

    flag_sets = {
        "none": False,
        "contract": {"contract"},
        "contract,reassoc": {"contract", "reassoc"},
        "FASTMATH": None,
        "+nsz,afn": {"contract", "reassoc", "arcp", "nsz", "afn"},
    }
    from rnnlab.backends.numba.jit import FASTMATH

    print(f"\n== fast-math flags (FASTMATH = {sorted(FASTMATH)}); LSTM gate loop B=64 H=256 float32,"
          " dot product n=65536 ==")
    rng = np.random.default_rng(0)
    B, H = 64, 256
    z = rng.standard_normal((B, 4 * H)).astype(np.float32)
    c = rng.standard_normal((B, H)).astype(np.float32)
    h = np.empty_like(c)
    db = np.zeros(4 * H, np.float32)
    a = rng.standard_normal(1 << 16).astype(np.float32)
    base = {}
    for label, flags in flag_sets.items():
        flags = set(FASTMATH) if flags is None else flags
        opts = dict(cache=False, nogil=True, error_model="numpy", fastmath=flags)
        g = numba.njit(**opts)(gates)
        r = numba.njit(**opts)(reduce_dot)
        t_g = median_time(g, z, c.copy(), h, db, repeat=21, number=20) * 1e6
        t_r = median_time(r, a, a, repeat=21, number=50) * 1e6
        base.setdefault("g", t_g)
        base.setdefault("r", t_r)
        print(f"  {label:18s} gates {t_g:8.1f} us ({base['g'] / t_g:4.2f}x vs none)   "
              f"dot {t_r:7.1f} us ({base['r'] / t_r:4.2f}x vs none)")


def gemms():
    from numba.core.runtime import _nrt_python, rtsys

    from rnnlab.backends.numba.blas import gemm
    from rnnlab.backends.numba.jit import jit

    @jit(cache=False)
    def loop_gemm(h, R, z, reps):  # z += h @ R, in place
        for _ in range(reps):
            gemm(False, False, 1.0, h, R, 1.0, z)

    @jit(cache=False)
    def loop_matmul_add(h, R, z, reps):  # z += h @ R with the allocating @
        for _ in range(reps):
            z += h @ R

    @jit(cache=False)
    def loop_dot_assign(h, R, z, reps):  # z[:] = np.dot(h, R): allocation + copy, no add
        for _ in range(reps):
            z[:] = np.dot(h, R)

    @jit(cache=False)
    def loop_gemm_tn(x, dz, dW, reps):  # dW += x.T @ dz
        for _ in range(reps):
            gemm(True, False, 1.0, x, dz, 1.0, dW)

    @jit(cache=False)
    def loop_matmul_tn(x, dz, dW, reps):
        for _ in range(reps):
            dW += x.T @ dz

    _nrt_python.memsys_enable_stats()

    def allocations(fn, *args):
        """NRT allocations made by 10 calls inside the loop (20 reps minus 10: the
        boundary's own bookkeeping for the arguments cancels)."""
        counts = []
        for reps in (10, 20):
            before = rtsys.get_allocation_stats().alloc
            fn(*args, reps)
            counts.append(rtsys.get_allocation_stats().alloc - before)
        return counts[1] - counts[0]

    peak = {}
    for dtype in (np.float32, np.float64):
        n = 2048
        a = np.random.default_rng(0).standard_normal((n, n)).astype(dtype)
        t = median_time(np.dot, a, a, repeat=5)
        peak[dtype] = 2 * n**3 / t / 1e9
    print(f"\n== gemm: numpy peak (2048^3 np.dot) float32 {peak[np.float32]:.0f} GFLOP/s,"
          f" float64 {peak[np.float64]:.0f} GFLOP/s ==")
    from rnnlab.backends.numba.blas import blas_threads

    default_threads = blas_threads()
    rng = np.random.default_rng(1)
    for threads in (default_threads, 1):
        blas_threads(threads)
        print(f"  scipy OpenBLAS threads = {threads}; per call, us (median); ratio = other / gemm;"
              " allocs = NRT allocations per 10 calls")
        print(f"  {'dtype':8s} {'B':>3s} {'H':>4s} {'gemm b=1':>9s} {'z+=h@R':>9s} {'z[:]=dot':>9s}"
              f" {'@/gemm':>7s} {'dot/gemm':>8s} {'GF/s':>6s} {'allocs gemm/@':>14s}")
        for dtype in (np.float32, np.float64):
            for H in (32, 128, 512):
                for B in (1, 16, 64):
                    h = rng.standard_normal((B, H)).astype(dtype)
                    R = rng.standard_normal((H, 4 * H)).astype(dtype) * 0.01
                    z = np.zeros((B, 4 * H), dtype)
                    reps = max(1, int(2e6 / (B * H * 4 * H + 2000)))
                    t_g = median_time(loop_gemm, h, R, z, reps) / reps * 1e6
                    t_m = median_time(loop_matmul_add, h, R, z, reps) / reps * 1e6
                    t_d = median_time(loop_dot_assign, h, R, z, reps) / reps * 1e6
                    al_g = allocations(loop_gemm, h, R, z)
                    al_m = allocations(loop_matmul_add, h, R, z)
                    gflops = 2 * B * H * 4 * H / (t_g * 1e-6) / 1e9
                    print(f"  {dtype.__name__:8s} {B:3d} {H:4d} {t_g:9.2f} {t_m:9.2f} {t_d:9.2f}"
                          f" {t_m / t_g:7.2f} {t_d / t_g:8.2f} {gflops:6.1f} {al_g:>6d}/{al_m:<6d}")
    blas_threads(default_threads)
    print("  backward-pass shape dW (H, 4H) += x.T (H, B) @ dz (B, 4H), float32, T stacked into the batch:")
    for H, rows in ((128, 128 * 32), (512, 64 * 64)):
        x = rng.standard_normal((rows, H)).astype(np.float32)
        dz = rng.standard_normal((rows, 4 * H)).astype(np.float32)
        dW = np.zeros((H, 4 * H), np.float32)
        t_g = median_time(loop_gemm_tn, x, dz, dW, 1, repeat=9)
        t_m = median_time(loop_matmul_tn, x, dz, dW, 1, repeat=9)
        print(f"  rows {rows:5d} H {H:4d}: gemm(T,N) {t_g * 1e3:7.2f} ms   dW += x.T @ dz {t_m * 1e3:7.2f} ms"
              f"   ratio {t_m / t_g:5.2f}   {2 * rows * H * 4 * H / t_g / 1e9:6.1f} GFLOP/s")


def main():
    global QUICK
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    QUICK = parser.parse_args().quick
    import numba

    print(f"numba {numba.__version__}, numpy {np.__version__}, {os.cpu_count()} CPUs, "
          f"SVML {'on' if numba.config.USING_SVML else 'off'}")
    import_times()
    activations()
    fastmath_flags()
    gemms()


if __name__ == "__main__":
    main()
