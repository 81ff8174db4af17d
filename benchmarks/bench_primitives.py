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
   allocation counts of each;
5. the per-step products of an LSTM at the shapes the threads see: sgemm
   against a numba micro-kernel for d_h = dA R^T, and a thread's forward
   product when two threads split the samples or the units;
6. a prototype of an LSTM forward loop whose two threads split the units,
   with a spin barrier per step, against the kernels' loop.

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


def per_step_products():
    """The per-step recurrent products at the shapes the threads see, float32, one BLAS thread.

    * sgemm against a numba micro-kernel (4 x 4 dot products of rows, no packing)
      for the backward product d_h = dA R^T, at sample blocks of 1-64 rows;
    * the forward product a += h R of one thread, when two threads split the
      samples (M = B/2, all 4U columns: what the kernels do) or the units
      (M = B, half of the columns each, the "split the units" direction).
    """
    from rnnlab.backends.numba.blas import gemm, one_blas_thread
    from rnnlab.backends.numba.jit import jit

    @jit(cache=False)
    def dots_4x4(A, B, C, m, n, K):  # C[m:m+4, n:n+4] = A[m:m+4] @ B[n:n+4].T: 16 accumulators
        a0, a1, a2, a3 = A[m], A[m + 1], A[m + 2], A[m + 3]
        b0, b1, b2, b3 = B[n], B[n + 1], B[n + 2], B[n + 3]
        z = C.dtype.type(0)
        s00 = s01 = s02 = s03 = s10 = s11 = s12 = s13 = z
        s20 = s21 = s22 = s23 = s30 = s31 = s32 = s33 = z
        for k in range(K):
            x0, x1, x2, x3 = a0[k], a1[k], a2[k], a3[k]
            y0, y1, y2, y3 = b0[k], b1[k], b2[k], b3[k]
            s00 += x0 * y0; s01 += x0 * y1; s02 += x0 * y2; s03 += x0 * y3  # noqa: E702
            s10 += x1 * y0; s11 += x1 * y1; s12 += x1 * y2; s13 += x1 * y3  # noqa: E702
            s20 += x2 * y0; s21 += x2 * y1; s22 += x2 * y2; s23 += x2 * y3  # noqa: E702
            s30 += x3 * y0; s31 += x3 * y1; s32 += x3 * y2; s33 += x3 * y3  # noqa: E702
        C[m, n], C[m, n + 1], C[m, n + 2], C[m, n + 3] = s00, s01, s02, s03
        C[m + 1, n], C[m + 1, n + 1], C[m + 1, n + 2], C[m + 1, n + 3] = s10, s11, s12, s13
        C[m + 2, n], C[m + 2, n + 1], C[m + 2, n + 2], C[m + 2, n + 3] = s20, s21, s22, s23
        C[m + 3, n], C[m + 3, n + 1], C[m + 3, n + 2], C[m + 3, n + 3] = s30, s31, s32, s33

    @jit(cache=False)
    def micro_kernel_nt(A, B, C):  # C = A @ B.T, A (M, K), B (N, K); edges one dot product at a time
        M, K = A.shape
        N = B.shape[0]
        for m in range(0, M, 4):
            for n in range(0, N, 4):
                if m + 4 <= M and n + 4 <= N:
                    dots_4x4(A, B, C, m, n, K)
                else:
                    for r in range(m, min(m + 4, M)):
                        for c in range(n, min(n + 4, N)):
                            s = C.dtype.type(0)
                            for k in range(K):
                                s += A[r, k] * B[c, k]
                            C[r, c] = s

    @jit(cache=False)
    def steps_gemm_nt(D, R, out, reps):
        for _ in range(reps):
            gemm(False, True, 1.0, D, R, 0.0, out)

    @jit(cache=False)
    def steps_micro_nt(D, R, out, reps):
        for _ in range(reps):
            micro_kernel_nt(D, R, out)

    @jit(cache=False)
    def steps_gemm_nn(h, R, A, reps):
        for _ in range(reps):
            gemm(False, False, 1.0, h, R, 1.0, A)

    rng = np.random.default_rng(2)
    print("\n== per-step products, float32, one thread (us per step, median; GF/s) ==")
    print("  backward d_h (M, U) = dA (M, 4U) R^T: OpenBLAS sgemm against a numba micro-kernel")
    print(f"  {'M':>3s} {'U':>4s} {'sgemm':>9s} {'micro':>9s} {'sgemm/micro':>11s} {'GF/s sgemm':>10s} {'micro':>6s}")
    with one_blas_thread(True):
        for M, U in ((1, 32), (8, 64), (16, 64), (16, 128), (32, 128), (32, 256), (64, 256)):
            D = rng.standard_normal((M, 4 * U), dtype=np.float32)
            R = rng.standard_normal((U, 4 * U), dtype=np.float32)
            out = np.zeros((M, U), np.float32)
            reps = max(10, int(2e7 / (8 * M * U * U)))
            t_g = median_time(steps_gemm_nt, D, R, out, reps) / reps
            t_m = median_time(steps_micro_nt, D, R, out, reps) / reps
            flops = 8 * M * U * U
            print(f"  {M:3d} {U:4d} {t_g * 1e6:9.2f} {t_m * 1e6:9.2f} {t_g / t_m:11.2f} {flops / t_g / 1e9:10.1f}"
                  f" {flops / t_m / 1e9:6.1f}")
        print("  forward a += h R of one thread's share, timed alone: samples split (M = B/2, N = 4U) or units split"
              " (M = B, N = 2U)")
        print(f"  {'B':>3s} {'U':>4s} {'samples':>9s} {'units':>9s} {'samples/units':>13s}")
        for B, U in ((16, 64), (32, 128), (64, 256), (64, 512)):
            reps = max(10, int(2e7 / (4 * B * U * U)))
            times = []
            for M, N in ((B // 2, 4 * U), (B, 2 * U)):
                h = rng.standard_normal((M, U), dtype=np.float32)
                R = rng.standard_normal((U, N), dtype=np.float32)
                A = np.zeros((M, N), np.float32)
                times.append(median_time(steps_gemm_nn, h, R, A, reps) / reps)
            print(f"  {B:3d} {U:4d} {times[0] * 1e6:9.2f} {times[1] * 1e6:9.2f} {times[0] / times[1]:13.2f}")
    def orientations(M, U, G):
        """Print one row: the forward and backward products of M samples in the kernels' orientation and transposed."""
        reps = max(5, int(1e9 / (2 * M * U * G)))
        h = rng.standard_normal((M, U), dtype=np.float32)
        R = rng.standard_normal((U, G), dtype=np.float32)
        dA = rng.standard_normal((M, G), dtype=np.float32)
        t_rows = median_time(steps_gemm_nn, h, R, np.zeros((M, G), np.float32), reps) / reps
        t_cols = median_time(steps_gemm_nn, np.ascontiguousarray(R.T), np.ascontiguousarray(h.T),
                             np.zeros((G, M), np.float32), reps) / reps
        t_back_rows = median_time(steps_gemm_nt, dA, R, np.zeros((M, U), np.float32), reps) / reps
        t_back_cols = median_time(steps_gemm_nn, R, np.ascontiguousarray(dA.T), np.zeros((U, M), np.float32),
                                  reps) / reps
        print(f"  {M:3d} {U:4d} {G:5d} {t_rows * 1e6:9.2f} {t_cols * 1e6:9.2f} {t_rows / t_cols:6.2f}"
              f" {t_back_rows * 1e6:9.2f} {t_back_cols * 1e6:9.2f} {t_back_rows / t_back_cols:6.2f}")

    print("  the products of a block of M samples in the kernels' orientation, forward a (M, G) += h (M, U) R and")
    print("  backward d_h (M, U) = dA R^T, and transposed (a layout of units x samples, which the kernels do not use):")
    print("  a^T (G, M) += R^T h^T and d_h^T (U, M) = R dA^T; G = gates x U")
    header = (f"  {'M':>3s} {'U':>4s} {'G':>5s} {'h R':>9s} {'R^T h^T':>9s} {'ratio':>6s} {'dA R^T':>9s} {'R dA^T':>9s}"
              f" {'ratio':>6s}")
    print("  one BLAS thread (the kernels' mode when R has under 512 KiB), an LSTM's G = 4U:")
    print(header)
    with one_blas_thread(True):
        for M, U in ((8, 64), (16, 128), (32, 128), (32, 256)):
            orientations(M, U, 4 * U)
    print("  BLAS's own threads at 64 rows (the kernels' mode when R has at least 512 KiB):")
    print(header)
    for U, G in ((256, 256), (256, 768), (256, 1024), (512, 512), (512, 1536), (512, 2048)):
        orientations(64, U, G)

def unit_split():
    """A prototype of splitting the units between threads: an LSTM forward loop whose two threads split them.

    Each thread owns half the units: a packed copy of their columns of R (all
    four gates), its own product h R_part per step (one BLAS thread each), and
    their gate loop; a spin barrier on an atomic counter (an LLVM atomicrmw,
    which numba lacks on the CPU) ends every step, since the next product
    needs every unit's new h.  It is timed against the kernels' own forward
    loop (samples split between threads, or BLAS's threads for a large R).
    No masks or dropout: the loop the prototype needs to beat.
    """
    import threading

    import numba

    from numba import types
    from numba.extending import intrinsic

    from rnnlab.backends.numba import host
    from rnnlab.backends.numba.blas import gemm, one_blas_thread
    from rnnlab.backends.numba.common import gate, tanh
    from rnnlab.backends.numba.jit import jit
    from rnnlab.cells.lstm import cpu

    @intrinsic
    def atomic_add(typingctx, counter, value):  # counter[0] += value, returns the old value
        def codegen(context, builder, signature, args):
            array = context.make_array(signature.args[0])(context, builder, args[0])
            return builder.atomic_rmw("add", array.data, args[1], "seq_cst")
        return types.int64(counter, types.int64), codegen

    @intrinsic
    def atomic_load(typingctx, counter):
        def codegen(context, builder, signature, args):
            array = context.make_array(signature.args[0])(context, builder, args[0])
            return builder.load_atomic(array.data, "acquire", 8)
        return types.int64(counter), codegen

    @jit(cache=False)
    def barrier(counter, target):  # the counter only grows: barrier k of n threads waits for k * n arrivals
        atomic_add(counter, 1)
        while atomic_load(counter) < target:
            pass

    @jit(cache=False)
    def barriers(counter, threads, steps):
        for t in range(steps):
            barrier(counter, (t + 1) * threads)

    @jit(cache=False)
    def forward_units(A, R_part, Z, H, C, u0, u1, counter, threads):
        T, B, U, n = A.shape[0], A.shape[1], H.shape[2], u1 - u0
        for t in range(T):
            gemm(False, False, 1.0, H[t], R_part, 0.0, Z)  # Z (B, 4n): this thread's units, all samples
            for b in range(B):
                a_i, a_f = A[t, b, u0:u1], A[t, b, U + u0 : U + u1]
                a_g, a_o = A[t, b, 2 * U + u0 : 2 * U + u1], A[t, b, 3 * U + u0 : 3 * U + u1]
                z_i, z_f, z_g, z_o = Z[b, :n], Z[b, n : 2 * n], Z[b, 2 * n : 3 * n], Z[b, 3 * n :]
                c_prev, c_new, h_new = C[t, b, u0:u1], C[t + 1, b, u0:u1], H[t + 1, b, u0:u1]
                for j in range(n):
                    i = gate(1, a_i[j] + z_i[j])
                    f = gate(1, a_f[j] + z_f[j])
                    g = tanh(a_g[j] + z_g[j])
                    o = gate(1, a_o[j] + z_o[j])
                    a_i[j], a_f[j], a_g[j], a_o[j] = i, f, g, o
                    c = f * c_prev[j] + i * g
                    c_new[j] = c
                    h_new[j] = o * tanh(c)
            barrier(counter, (t + 1) * threads)

    def in_two_threads(function, args_of):
        other = threading.Thread(target=function, args=args_of(1))
        other.start()
        function(*args_of(0))
        other.join()

    @jit(parallel=True, cache=False)
    def parallel_regions(out, steps):  # one numba parallel region per step: its fork and join
        for _ in range(steps):
            for k in numba.prange(2):
                out[k] += 1.0

    def spin(steps):
        counter = np.zeros(1, np.int64)  # fresh: the counter only grows
        in_two_threads(barriers, lambda k: (counter, 2, steps))

    def os_barrier(steps):  # threading.Barrier: a lock and a condition variable (futex), with the GIL
        barrier_ = threading.Barrier(2)

        def wait_all():
            for _ in range(steps):
                barrier_.wait()

        other = threading.Thread(target=wait_all)
        other.start()
        wait_all()
        other.join()

    print("\n== units split between two threads, with a barrier per step (prototype; float32) ==")
    print("  one synchronisation of two threads, us (median):")
    for name, run, steps in (("spin on an atomic counter (LLVM atomicrmw)", spin, 20000),
                             ("threading.Barrier (OS futex, needs the GIL)", os_barrier, 2000),
                             ("a numba parallel region (prange, fork + join)", lambda n: parallel_regions(np.zeros(2), n),
                              20000)):
        print(f"    {name:48s} {median_time(run, steps, repeat=7) / steps * 1e6:8.2f}")
    print("  LSTM forward loop (ms): the kernels' threads against the units split, and their largest difference in h")
    print(f"  {'(T, B, U)':>16s} {'kernels':>8s} {'units split':>11s} {'max |diff|':>10s}")
    rng = np.random.default_rng(3)
    for T, B, U in ((1000, 16, 64), (128, 32, 128), (128, 64, 256), (64, 64, 512)):
        A0 = rng.standard_normal((T, B, 4 * U), dtype=np.float32)
        R = rng.standard_normal((U, 4 * U), dtype=np.float32) / np.float32(np.sqrt(U))
        no_mask, mask = np.empty((0, U), np.float32), np.ones((T, B), bool)
        runs = {}
        for name in ("kernels", "units"):
            A, H, C = A0.copy(), np.zeros((T + 1, B, U), np.float32), np.zeros((T + 1, B, U), np.float32)
            if name == "kernels":
                blocks = R.nbytes < host.BLAS_THREADS_MIN_BYTES

                def run():
                    A[...] = A0
                    with one_blas_thread(blocks):
                        host._SAMPLE_BLOCKS.on = blocks
                        try:
                            host.over_samples(lambda b0, b1: cpu.forward(A, R, no_mask, H, C, np.empty((T, B, U), np.float32),
                                                                         mask, 0, 1, b0, b1), B, T, R)
                        finally:
                            host._SAMPLE_BLOCKS.on = False
            else:
                edges = (0, U // 2, U)
                parts = [np.ascontiguousarray(np.concatenate([R[:, g * U + lo : g * U + hi] for g in range(4)], axis=1))
                         for lo, hi in zip(edges[:-1], edges[1:])]
                scratch = [np.empty((B, part.shape[1]), np.float32) for part in parts]

                def run():
                    A[...] = A0
                    counter = np.zeros(1, np.int64)
                    with one_blas_thread(True):
                        in_two_threads(forward_units, lambda k: (A, parts[k], scratch[k], H, C, edges[k], edges[k + 1],
                                                                 counter, 2))
            runs[name] = (median_time(run, repeat=9), H)
        difference = np.abs(runs["kernels"][1] - runs["units"][1]).max()
        print(f"  {str((T, B, U)):>16s} {runs['kernels'][0] * 1e3:8.2f} {runs['units'][0] * 1e3:11.2f}"
              f" {difference:10.1e}")


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
    per_step_products()
    unit_split()


if __name__ == "__main__":
    main()
