"""The GPU kernels of :mod:`rnnlab.ensemble`: one thread block per network, one launch for all.

Block n keeps R_n in shared memory (rows padded to H + 1, so that both the
row walk of the forward pass and the column walk of the backward pass hit
distinct banks) and h in a double buffer; thread j owns unit j.  Per step:
``a_j = b_j + x_t K[:, j] + h R[:, j]``, ``h'_j = tanh(a_j)``, one barrier.
The backward pass runs in the same launch from the stored trajectory:
``da_j = dh_j (1 - h_j^2)`` is written to ``dA`` (N, T, H), and
``dh_k = R[k, :] . da``.  The weight gradients are then one batched GEMM each
(``dR_n = H_prev^T dA_n``, ``dK_n = X^T dA_n``; see
:func:`rnnlab.kernels.cuda_backend.ensemble_run`), the DESIGN's "one GEMM for
dW and dR after the backward loop" applied to N networks at once.  Summaries
(mean |h|, loss, |dL/dh0|) are reduced in shared memory at the end.
"""

import functools
import math

import numpy as np
from numba import cuda

from .kernels.cuda_device import numba_dtype

MAXH = 64  # units per network on the GPU path (one thread each)


def shared_bytes(H, itemsize):
    """Dynamic shared memory of :func:`ensemble_kernel`: R (H, H+1), h (2, H), da, reduction."""
    return (H * (H + 1) + 3 * H + 2 * MAXH) * itemsize


@functools.lru_cache(maxsize=None)
def ensemble_kernel(dtype_name):
    """grid = N blocks, block = H rounded up to a multiple of 32 threads."""
    nb = numba_dtype(dtype_name)
    zero = np.dtype(dtype_name).type(0)
    one = np.dtype(dtype_name).type(1)
    half = np.dtype(dtype_name).type(0.5)

    @cuda.jit
    def kernel(K, R, b, x, x_per_network, h0, loss_kind, inv_T, inv_TH, want_grads, keep_traj,
               traj, final, mean_abs, loss, dA, db, dh0, grad_h0_norm):
        n = cuda.blockIdx.x
        j = cuda.threadIdx.x
        H = h0.shape[1]
        F = K.shape[1]
        T = x.shape[1]
        xn = n if x_per_network else 0
        S = H + 1
        sh = cuda.shared.array(0, nb)
        sh_R = sh[0 : H * S]
        sh_h = sh[H * S : H * S + 2 * H]
        sh_da = sh[H * S + 2 * H : H * S + 3 * H]
        sh_red = sh[H * S + 3 * H : H * S + 3 * H + 2 * MAXH]
        active = j < H
        for e in range(j, H * H, cuda.blockDim.x):
            k = e // H
            sh_R[k * S + e - k * H] = R[n, k, e - k * H]
        bj = zero
        if active:
            sh_h[j] = h0[n, j]
            bj = b[n, j]
        cuda.syncthreads()
        abs_sum = zero
        sq_sum = zero
        h = zero
        for t in range(T):
            src = (t % 2) * H
            dst = H - src
            if active:
                a = bj
                for f in range(F):
                    a += x[xn, t, f] * K[n, f, j]
                for k in range(H):
                    a += sh_h[src + k] * sh_R[k * S + j]
                h = math.tanh(a)
                sh_h[dst + j] = h
                abs_sum += abs(h)
                sq_sum += h * h
                if keep_traj:
                    traj[n, t, j] = h
            cuda.syncthreads()
        # reductions: mean |h| and the loss
        if active:
            final[n, j] = h
            sh_red[j] = abs_sum
            sh_red[MAXH + j] = sq_sum if loss_kind == 1 else h * h
        cuda.syncthreads()
        if j == 0:
            s_abs = zero
            s_sq = zero
            for k in range(H):
                s_abs += sh_red[k]
                s_sq += sh_red[MAXH + k]
            mean_abs[n] = s_abs * inv_TH
            loss[n] = half * s_sq * (inv_T if loss_kind == 1 else one)
        cuda.syncthreads()
        if not want_grads:
            return
        # backward, from the stored trajectory
        dh = h if loss_kind == 0 else zero
        dbj = zero
        for t in range(T - 1, -1, -1):
            if active:
                ht = traj[n, t, j]
                g = dh + (ht * inv_T if loss_kind == 1 else zero)
                da = g * (one - ht * ht)
                sh_da[j] = da
                dA[n, t, j] = da
                dbj += da
            cuda.syncthreads()
            if active:
                s = zero
                for i in range(H):
                    s += sh_R[j * S + i] * sh_da[i]
                dh = s
            cuda.syncthreads()
        if active:
            db[n, j] = dbj
            dh0[n, j] = dh
            sh_red[j] = dh * dh
        cuda.syncthreads()
        if j == 0:
            s_h = zero
            for k in range(H):
                s_h += sh_red[k]
            grad_h0_norm[n] = math.sqrt(s_h)

    return kernel


def threads_for(H):
    return int(32 * math.ceil(H / 32))


@functools.lru_cache(maxsize=None)
def norms_kernel(dtype_name):
    """grad_norm[n] = sqrt(|dK[n]|^2 + |dR[n]|^2 + |db[n]|^2); one block of 64 threads per network."""
    nb = numba_dtype(dtype_name)
    zero = np.dtype(dtype_name).type(0)

    @cuda.jit
    def kernel(dK, dR, db, grad_norm):
        n = cuda.blockIdx.x
        j = cuda.threadIdx.x
        red = cuda.shared.array(64, nb)
        H = dR.shape[1]
        F = dK.shape[1]
        s = zero
        for e in range(j, H * H, 64):
            k = e // H
            v = dR[n, k, e - k * H]
            s += v * v
        for e in range(j, F * H, 64):
            f = e // H
            v = dK[n, f, e - f * H]
            s += v * v
        for e in range(j, H, 64):
            s += db[n, e] * db[n, e]
        red[j] = s
        cuda.syncthreads()
        if j == 0:
            total = zero
            for k in range(64):
                total += red[k]
            grad_norm[n] = math.sqrt(total)

    return kernel
