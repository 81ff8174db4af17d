"""Device-side building blocks shared by rnnlab's ``numba.cuda`` kernels.

Only kernel modules (the schedules, the cell rooms' ``cuda.py``, the
ensemble's GPU half) and the `Device`
import this file, on first use of ``backend="cuda"`` (or the ensemble's GPU
path).  Importing it imports ``numba.cuda`` but compiles nothing: every kernel
here is built by a small cached factory, per dtype, and compiled by numba at
its first launch.

* `scalar_math` -- ``sigmoid``/``tanh`` device functions and the constants
  ``one``/``zero`` *of the kernel's dtype*.  A bare ``1.0`` literal would make
  numba promote float32 arithmetic to float64, so every constant in a float32
  kernel comes from here.
* `gate_math` -- a recurrent activation (sigmoid or a hard sigmoid) and
  its derivative written with its output, for the LSTM's and GRU's gates.
* `candidate_math` -- a candidate activation (linear, g or tanh) and its
  derivative written with its output, for minGRU's and minLSTM's candidates.
* `gemm_kernel` -- a shared-memory tiled ``C (+)= op(A) @ op(B) (+ bias)``
  used for the input projection of all timesteps and for the weight gradients
  when CuPy (cuBLAS) is not installed.
* `colsum_kernel`, `fill_kernel` -- bias gradients and zeroing.
* `masked_inputs_kernel` -- the states entering each step times the recurrent
  dropout mask, for dR.
* `store` -- write, atomically add or add, chosen by a mode flag.
"""

import functools
import math

import numba
import numpy as np
from numba import cuda

from ... import activations

#: modes of `store`
STORE, ATOMIC_ADD, ADD = 0, 1, 2


def numba_dtype(dtype_name):
    return numba.from_dtype(np.dtype(dtype_name))


@functools.lru_cache(maxsize=None)
def scalar_math(dtype_name):
    """(sigmoid, tanh, one, zero) for ``dtype_name``; the functions keep that dtype."""
    one = np.dtype(dtype_name).type(1)
    zero = np.dtype(dtype_name).type(0)

    @cuda.jit(device=True)
    def sigmoid(x):
        # As rnnlab.activations: split by sign so exp never overflows.
        e = math.exp(-abs(x))
        if x >= zero:
            return one / (one + e)
        return e / (one + e)

    @cuda.jit(device=True)
    def tanh(x):
        return math.tanh(x)

    return sigmoid, tanh, one, zero


GATE_ACTIVATIONS = activations.GATE_ACTIVATIONS  # what the LSTM and GRU kernels implement


@functools.lru_cache(maxsize=None)
def gate_math(dtype_name, name):
    """(gate, gate_grad) device functions: the recurrent activation ``name`` and d gate/dx from its output s.

    As `rnnlab.activations`: ``hard_sigmoid`` is tf.keras 2's clip(0.2 x + 1/2, 0, 1),
    ``hard_sigmoid_keras3`` clip(x / 6 + 1/2, 0, 1); their slope counts where 0 < s < 1.
    """
    sigmoid, _, one, zero = scalar_math(dtype_name)
    if name == "sigmoid":
        @cuda.jit(device=True)
        def sigmoid_grad(s):
            return s * (one - s)

        return sigmoid, sigmoid_grad
    real = np.dtype(dtype_name).type
    half, fifth, six, slope = real(0.5), real(0.2), real(6), real(0.2 if name == "hard_sigmoid" else 1 / 6)
    if name == "hard_sigmoid":
        @cuda.jit(device=True)
        def gate(x):
            return min(max(x * fifth + half, zero), one)
    else:
        @cuda.jit(device=True)
        def gate(x):
            return min(max(x / six + half, zero), one)

    @cuda.jit(device=True)
    def gate_grad(s):
        return slope if zero < s < one else zero

    return gate, gate_grad


CANDIDATE_ACTIVATIONS = activations.CANDIDATE_ACTIVATIONS  # what the minGRU and minLSTM kernels implement


@functools.lru_cache(maxsize=None)
def candidate_math(dtype_name, name):
    """(act, act_grad) device functions: the candidate activation ``name`` and d act/dx from its output y.

    As `rnnlab.activations`: ``g`` is x + 1/2 for x >= 0 and sigmoid(x) below,
    so y >= 1/2 exactly where x >= 0.
    """
    sigmoid, tanh, one, zero = scalar_math(dtype_name)
    half = np.dtype(dtype_name).type(0.5)
    if name == "tanh":
        @cuda.jit(device=True)
        def tanh_grad(y):
            return one - y * y

        return tanh, tanh_grad
    if name == "g":
        @cuda.jit(device=True)
        def g(x):
            return x + half if x >= zero else sigmoid(x)

        @cuda.jit(device=True)
        def g_grad(y):
            return one if y >= half else y * (one - y)

        return g, g_grad

    @cuda.jit(device=True)
    def linear(x):
        return x

    @cuda.jit(device=True)
    def linear_grad(y):
        return one

    return linear, linear_grad


@cuda.jit(device=True)
def store(array, index, value, mode):
    """``array[index] = value`` (mode STORE), ``+=`` atomically (ATOMIC_ADD) or plainly (ADD)."""
    if mode == STORE:
        array[index] = value
    elif mode == ATOMIC_ADD:
        cuda.atomic.add(array, index, value)
    else:
        array[index] += value


@functools.lru_cache(maxsize=None)
def gemm_kernel(dtype_name, tile):
    """``c = op(a) @ op(b) [+ c] [+ bias]`` with ``tile x tile`` thread blocks.

    Launch with ``grid = (ceil(N / tile), ceil(M / tile))`` and
    ``block = (tile, tile)`` for ``c`` of shape (M, N).  ``op`` transposes when
    ``trans_a``/``trans_b`` is nonzero; tiles are loaded so that consecutive
    threads read consecutive addresses either way.
    """
    nb = numba_dtype(dtype_name)
    zero = np.dtype(dtype_name).type(0)
    TS = tile

    @cuda.jit
    def gemm(a, b, c, trans_a, trans_b, accumulate, bias, has_bias):
        sa = cuda.shared.array((TS, TS), nb)  # sa[i, k]: op(a) tile
        sb = cuda.shared.array((TS, TS), nb)  # sb[k, j]: op(b) tile
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        i0 = cuda.blockIdx.y * TS
        j0 = cuda.blockIdx.x * TS
        M = c.shape[0]
        N = c.shape[1]
        K = a.shape[0] if trans_a else a.shape[1]
        acc = zero
        for k0 in range(0, K, TS):
            if trans_a:  # a is (K, M)
                k = k0 + ty
                i = i0 + tx
                sa[tx, ty] = a[k, i] if (k < K and i < M) else zero
            else:
                k = k0 + tx
                i = i0 + ty
                sa[ty, tx] = a[i, k] if (k < K and i < M) else zero
            if trans_b:  # b is (N, K)
                k = k0 + tx
                j = j0 + ty
                sb[tx, ty] = b[j, k] if (k < K and j < N) else zero
            else:
                k = k0 + ty
                j = j0 + tx
                sb[ty, tx] = b[k, j] if (k < K and j < N) else zero
            cuda.syncthreads()
            for kk in range(TS):
                acc += sa[ty, kk] * sb[kk, tx]
            cuda.syncthreads()
        i = i0 + ty
        j = j0 + tx
        if i < M and j < N:
            if has_bias:
                acc += bias[j]
            if accumulate:
                acc += c[i, j]
            c[i, j] = acc

    return gemm


@functools.lru_cache(maxsize=None)
def colsum_kernel(dtype_name):
    """``out[j] (+)= sum_i a[i, j]``; one thread per column."""
    zero = np.dtype(dtype_name).type(0)

    @cuda.jit
    def colsum(a, out, accumulate):
        j = cuda.grid(1)
        if j < a.shape[1]:
            s = zero
            for i in range(a.shape[0]):
                s += a[i, j]
            if accumulate:
                s += out[j]
            out[j] = s

    return colsum


@functools.lru_cache(maxsize=None)
def fill_kernel(dtype_name):
    """``flat[:] = value`` for a 1-D (flattened) device array."""

    @cuda.jit
    def fill(flat, value):
        i = cuda.grid(1)
        if i < flat.shape[0]:
            flat[i] = value

    return fill


@functools.lru_cache(maxsize=None)
def masked_inputs_kernel(dtype_name):
    """``out[t] = h_{t-1} * M`` with h_{-1} = h0 (B, U), h_t = h_seq[t] (T, B, U), M (B, U); one thread per value."""

    @cuda.jit
    def masked_inputs(h0, h_seq, M, out):
        i = cuda.grid(1)
        B, U = M.shape
        if i < out.shape[0] * B * U:
            t = i // (B * U)
            b = (i - t * B * U) // U
            u = i - t * B * U - b * U
            out[t, b, u] = (h0[b, u] if t == 0 else h_seq[t - 1, b, u]) * M[b, u]

    return masked_inputs


@functools.lru_cache(maxsize=None)
def batched_gemm_tn_kernel(dtype_name, tile):
    """``c[n] (+)= a[n]^T @ b[n]`` for a (nA, K, M), b (nb, K, N), c (nb, M, N); nA is nb or 1 (broadcast).

    Launch with ``grid = (ceil(N / tile), ceil(M / tile), nb)`` and ``block = (tile, tile)``.
    """
    nb_type = numba_dtype(dtype_name)
    zero = np.dtype(dtype_name).type(0)
    TS = tile

    @cuda.jit
    def gemm(a, b, c, accumulate):
        sa = cuda.shared.array((TS, TS), nb_type)  # sa[i, k] = a[n, k, i]
        sb = cuda.shared.array((TS, TS), nb_type)  # sb[k, j] = b[n, k, j]
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        n = cuda.blockIdx.z
        na = n if a.shape[0] > 1 else 0
        i0 = cuda.blockIdx.y * TS
        j0 = cuda.blockIdx.x * TS
        K = a.shape[1]
        M = c.shape[1]
        N = c.shape[2]
        acc = zero
        for k0 in range(0, K, TS):
            k = k0 + ty
            i = i0 + tx
            sa[tx, ty] = a[na, k, i] if (k < K and i < M) else zero
            j = j0 + tx
            sb[ty, tx] = b[n, k, j] if (k < K and j < N) else zero
            cuda.syncthreads()
            for kk in range(TS):
                acc += sa[ty, kk] * sb[kk, tx]
            cuda.syncthreads()
        i = i0 + ty
        j = j0 + tx
        if i < M and j < N:
            if accumulate:
                acc += c[n, i, j]
            c[n, i, j] = acc

    return gemm
