"""rnnlab.backends.numba.blas.gemm against a float64 NumPy reference.

Covers every transpose combination, both dtypes, odd and degenerate shapes, all
memory layouts, alpha/beta, accumulation, calls from inside ``@njit``, no
allocation in a loop, and loading a gemm-calling kernel from the on-disk cache
in a fresh process.
"""

import itertools
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

numba = pytest.importorskip("numba")

from rnnlab.backends.numba.blas import blas_threads, gemm  # noqa: E402
from rnnlab.backends.numba.jit import jit  # noqa: E402

TOL = {np.float32: dict(rtol=2e-5, atol=2e-5), np.float64: dict(rtol=1e-12, atol=1e-12)}
DTYPES = [np.float32, np.float64]
TRANS = list(itertools.product([False, True], repeat=2))
# (M, N, K): 1x1, single rows/columns (the gemv paths), outer products, odd sizes.
SHAPES = [(1, 1, 1), (1, 7, 5), (1, 1, 9), (6, 1, 4), (5, 3, 1), (7, 9, 11), (16, 33, 17), (3, 130, 65)]


def operands(rng, M, N, K, ta, tb, dtype):
    A = rng.standard_normal((K, M) if ta else (M, K)).astype(dtype)
    B = rng.standard_normal((N, K) if tb else (K, N)).astype(dtype)
    C = rng.standard_normal((M, N)).astype(dtype)
    return A, B, C


def reference(ta, tb, alpha, A, B, beta, C):
    a = (A.T if ta else A).astype(np.float64)
    b = (B.T if tb else B).astype(np.float64)
    return alpha * (a @ b) + (0.0 if beta == 0 else beta * C.astype(np.float64))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ta,tb", TRANS)
@pytest.mark.parametrize("M,N,K", SHAPES)
def test_matches_numpy(dtype, ta, tb, M, N, K):
    rng = np.random.default_rng(M * 100 + N * 10 + K)
    A, B, C = operands(rng, M, N, K, ta, tb, dtype)
    for alpha, beta in [(1.0, 0.0), (1.0, 1.0), (-0.5, 2.0), (0.0, 3.0)]:
        out = C.copy()
        assert gemm(ta, tb, alpha, A, B, beta, out) is None
        assert out.dtype == dtype
        np.testing.assert_allclose(out, reference(ta, tb, alpha, A, B, beta, C), **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_beta_zero_ignores_old_contents(dtype):
    rng = np.random.default_rng(0)
    for M, N, K in [(4, 5, 3), (1, 5, 3), (4, 1, 3)]:  # gemm and both gemv paths
        A, B, _ = operands(rng, M, N, K, False, False, dtype)
        C = np.full((M, N), np.nan, dtype)
        gemm(False, False, 1.0, A, B, 0.0, C)
        np.testing.assert_allclose(C, reference(False, False, 1.0, A, B, 0.0, C), **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_empty_dimensions(dtype):
    C = np.full((3, 4), 2.0, dtype)
    gemm(False, False, 1.0, np.ones((3, 0), dtype), np.ones((0, 4), dtype), 0.5, C)  # K = 0: C = beta C
    assert np.all(C == 1.0)
    C1 = np.full((1, 4), np.nan, dtype)
    gemm(False, False, 1.0, np.ones((1, 0), dtype), np.ones((0, 4), dtype), 0.0, C1)
    assert np.all(C1 == 0.0)
    gemm(False, False, 1.0, np.ones((0, 3), dtype), np.ones((3, 4), dtype), 1.0, np.ones((0, 4), dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_layouts_and_views(dtype):
    """F-ordered operands, transposed views and column slices are read in place."""
    rng = np.random.default_rng(1)
    A = rng.standard_normal((5, 7)).astype(dtype)
    B = rng.standard_normal((7, 6)).astype(dtype)
    expected = A.astype(np.float64) @ B
    layouts = {
        "C": lambda x: np.ascontiguousarray(x),
        "F": lambda x: np.asfortranarray(x),
        "T-view": lambda x: np.ascontiguousarray(x.T).T,
        "slice": lambda x: np.pad(x, ((1, 2), (3, 4)))[1:-2, 3:-4],
        "row-step": lambda x: np.repeat(x, 2, axis=0)[::2],
    }
    # Each operand through every layout with the others C-ordered, then all alike.  (Every
    # combination of numba's C/F/A layout types would compile 27 specializations.)
    combos = [(name, "C", "C") for name in layouts] + [("C", name, "C") for name in layouts]
    combos += [("C", "C", name) for name in layouts] + [(name, name, name) for name in layouts]
    for la, lb, lc in combos:
        fa, fb, fc = layouts[la], layouts[lb], layouts[lc]
        C = fc(np.zeros((5, 6), dtype))
        gemm(False, False, 1.0, fa(A), fb(B), 0.0, C)
        np.testing.assert_allclose(C, expected, err_msg=f"A {la}, B {lb}, C {lc}", **TOL[dtype])
    # Writing into a block of a bigger buffer leaves the rest untouched.
    Z = np.full((5, 20), 7.0, dtype)
    gemm(False, False, 1.0, A, B, 0.0, Z[:, 4:10])
    np.testing.assert_allclose(Z[:, 4:10], expected, **TOL[dtype])
    assert np.all(Z[:, :4] == 7.0) and np.all(Z[:, 10:] == 7.0)


def test_bad_input():
    f32, f64 = np.ones((2, 2), np.float32), np.ones((2, 2))
    with pytest.raises(ValueError, match="shapes do not match"):
        gemm(False, False, 1.0, np.ones((2, 3)), np.ones((2, 3)), 0.0, np.ones((2, 3)))
    with pytest.raises(ValueError, match="shapes do not match"):
        gemm(False, True, 1.0, np.ones((2, 3)), np.ones((4, 3)), 0.0, np.ones((2, 5)))
    with pytest.raises(ValueError, match="unit stride"):
        gemm(False, False, 1.0, np.ones((4, 4))[::2, ::2], f64, 0.0, np.ones((2, 2)))
    with pytest.raises(numba.core.errors.TypingError, match="float32 or all float64"):
        gemm(False, False, 1.0, f32, f64, 0.0, f64)
    with pytest.raises(numba.core.errors.TypingError, match="float32 or all float64"):
        gemm(False, False, 1.0, np.ones((2, 2), np.int64), np.ones((2, 2), np.int64), 0.0,
             np.ones((2, 2), np.int64))


@jit(cache=False)
def _rnn_like(x, K, R, h0, reps):
    """z_t = x_t @ K + h_{t-1} @ R; dW += h.T @ z; dh = z @ R.T, over T steps; gemm inside loops."""
    T, B, _ = x.shape
    H4 = R.shape[1]
    h = h0.copy()
    z = np.empty((B, H4), x.dtype)
    dR = np.zeros_like(R)
    dh = np.empty_like(h0)
    for _ in range(reps):
        for t in range(T):
            gemm(False, False, 1.0, x[t], K, 0.0, z)
            gemm(False, False, 1.0, h, R, 1.0, z)
            gemm(True, False, 1.0, h, z, 1.0, dR)
            gemm(False, True, 1.0, z, R, 0.0, dh)
            for b in range(B):
                for j in range(h.shape[1]):
                    h[b, j] = np.tanh(z[b, j] * 0.1) + 0.01 * dh[b, j]
    return h, dR


def _rnn_like_reference(x, K, R, h0):
    h, dR = h0.astype(np.float64), np.zeros(R.shape)
    for t in range(x.shape[0]):
        z = x[t] @ K + h @ R
        dR += h.T @ z
        dh = z @ R.T
        h = np.tanh(z[:, : h.shape[1]] * 0.1) + 0.01 * dh
    return h, dR


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("B", [1, 3])
def test_inside_njit_loop_and_no_allocation(dtype, B):
    from numba.core.runtime import _nrt_python, rtsys

    rng = np.random.default_rng(2)
    T, F, H = 5, 3, 4
    x = rng.standard_normal((T, B, F)).astype(dtype)
    K = (0.5 * rng.standard_normal((F, 4 * H))).astype(dtype)
    R = (0.5 * rng.standard_normal((H, 4 * H))).astype(dtype)
    h0 = rng.standard_normal((B, H)).astype(dtype)
    h, dR = _rnn_like(x, K, R, h0, 1)
    h_ref, dR_ref = _rnn_like_reference(x, K, R, h0)
    np.testing.assert_allclose(h, h_ref, **TOL[dtype])
    np.testing.assert_allclose(dR, dR_ref, rtol=TOL[dtype]["rtol"] * 10, atol=TOL[dtype]["atol"] * 10)

    _nrt_python.memsys_enable_stats()

    def allocations(reps):
        before = rtsys.get_allocation_stats().alloc
        _rnn_like(x, K, R, h0, reps)
        return rtsys.get_allocation_stats().alloc - before

    # The function's own buffers are allocated once; the 4*T*reps gemm calls add nothing.
    assert allocations(1) == allocations(7)


def test_allocation_measure_can_fail():
    """The same measurement does see the per-call allocation of ``@`` inside njit."""
    from numba.core.runtime import _nrt_python, rtsys

    @jit(cache=False)
    def matmul_loop(h, R, z, reps):
        for _ in range(reps):
            z += h @ R

    h, R, z = np.ones((2, 3)), np.ones((3, 4)), np.zeros((2, 4))
    matmul_loop(h, R, z, 1)
    _nrt_python.memsys_enable_stats()
    counts = []
    for reps in (1, 7):
        before = rtsys.get_allocation_stats().alloc
        matmul_loop(h, R, z, reps)
        counts.append(rtsys.get_allocation_stats().alloc - before)
    assert counts[1] - counts[0] == 6


def test_blas_threads_roundtrip():
    previous = blas_threads()
    if previous is None:
        pytest.skip("scipy without a controllable scipy-openblas")
    try:
        assert blas_threads(1) == previous
        assert blas_threads() == 1
    finally:
        blas_threads(previous)
    with pytest.raises(ValueError):
        blas_threads(0)


def test_cached_across_processes(tmp_path):
    """A kernel that calls gemm is saved to the cache and loaded, not recompiled, by a new process.

    A ctypes function pointer would make numba refuse to cache it ("uses
    dynamic globals"); gemm calls BLAS by symbol name to avoid that.
    """
    (tmp_path / "gemm_user.py").write_text(textwrap.dedent("""
        import numpy as np
        from rnnlab.backends.numba.blas import gemm
        from rnnlab.backends.numba.fastmath import tanh
        from rnnlab.backends.numba.jit import jit

        @jit
        def step(h, R, z):
            gemm(False, False, 1.0, h, R, 1.0, z)
            for i in range(z.shape[0]):
                for j in range(z.shape[1]):
                    z[i, j] = tanh(z[i, j])
    """))
    script = textwrap.dedent("""
        import sys, warnings
        import numpy as np
        warnings.simplefilter("error")  # a NumbaWarning "cannot cache" fails the run
        import gemm_user
        for dtype in (np.float32, np.float64):
            h, R, z = np.ones((2, 3), dtype), np.full((3, 4), 0.1, dtype), np.zeros((2, 4), dtype)
            gemm_user.step(h, R, z)
            assert np.allclose(z, np.tanh(0.3)), z
        stats = gemm_user.step.stats
        print("hits", sum(stats.cache_hits.values()), "misses", sum(stats.cache_misses.values()))
    """)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
               NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    runs = [subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=300) for _ in range(2)]
    for run in runs:
        assert run.returncode == 0, run.stderr
    assert "hits 0 misses 2" in runs[0].stdout, runs[0].stdout
    assert "hits 2 misses 0" in runs[1].stdout, runs[1].stdout


def test_cache_invalidated_by_dependencies(tmp_path):
    """Editing a file a kernel inlines code from recompiles it (with ``depends=``).

    Plain numba checks only the kernel's own file; the second kernel shows the
    stale result that this guards against.
    """
    (tmp_path / "helper.py").write_text("import numba\n\n@numba.njit\ndef constant():\n    return 1.0\n")
    (tmp_path / "user.py").write_text(textwrap.dedent("""
        import helper
        from rnnlab.backends.numba.jit import jit

        @jit(depends=[helper])
        def tracked(x):
            return x + helper.constant()

        @jit
        def untracked(x):
            return x + helper.constant()
    """))
    script = ("import user; print(user.tracked(1.0), user.untracked(1.0), "
              "sum(user.tracked.stats.cache_hits.values()), sum(user.untracked.stats.cache_hits.values()))")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
               NUMBA_CACHE_DIR=str(tmp_path / "cache"))

    def run():
        out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True,
                             text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        return out.stdout.split()

    assert run() == ["2.0", "2.0", "0", "0"]  # compiled and saved
    assert run() == ["2.0", "2.0", "1", "1"]  # loaded from the cache
    (tmp_path / "helper.py").write_text("import numba\n\n@numba.njit\ndef constant():\n    return 10.0\n")
    assert run() == ["11.0", "2.0", "0", "1"]  # tracked recompiles; untracked is stale
