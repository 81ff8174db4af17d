"""The GPU half of `rnnlab.ensemble`: one thread block per network, one launch for all.

Block n keeps R_n in shared memory (rows padded to H + 1, so that both the
row walk of the forward pass and the column walk of the backward pass hit
distinct banks) and h in a double buffer; thread j owns unit j.  Per step:
``a_j = b_j + x_t K[:, j] + h R[:, j]``, ``h'_j = tanh(a_j)``, one barrier.
The backward pass runs in the same launch from the stored trajectory:
``da_j = dh_j (1 - h_j^2)`` is written to ``dA`` (N, T, H), and
``dh_k = R[k, :] . da``.  The weight gradients are then one batched GEMM each
(``dR_n = H_prev^T dA_n``, ``dK_n = X^T dA_n``; see `ensemble_device`),
the DESIGN's "one GEMM for dW and dR after the backward loop" applied to N
networks at once.  Summaries (mean |h|, loss, |dL/dh0|) are reduced in shared
memory at the end.

`run` is what `rnnlab.ensemble.simulate` calls (host arrays in
and out); `ensemble_device` works on device arrays.  Memory, copies,
launches and GEMMs go through the CUDA backend's
`Device`.
"""

import functools
import math

import numpy as np
from numba import cuda

from ..backends.cuda.device import CONFIG, get_device
from ..backends.cuda.primitives import numba_dtype

MAXH = 64  # units per network on the GPU path (one thread each)


def shared_bytes(H, itemsize):
    """Dynamic shared memory of `ensemble_kernel`: R (H, H+1), h (2, H), da, reduction."""
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


# -- host side -------------------------------------------------------------------------------


def run(ensemble, x, h0, trajectories, gradients, loss, return_grads, dev=None):
    """GPU path of `rnnlab.ensemble.simulate`: copy in, `ensemble_device`, copy out (a dict of host arrays)."""
    dev = dev or get_device()
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

    One launch of `ensemble_kernel` (N blocks) runs every network
    forward and, with ``gradients``, backward, writing the per-step
    pre-activation gradients dA (N, T, H); then dR = H_prev^T dA and
    dK = X^T dA are one batched GEMM each, and a last launch reduces the
    norms.  Returns a dict of device arrays (None where not computed).
    """
    dev = dev or get_device()
    dtype = np.dtype(R.dtype)
    N, H = h0.shape
    F = K.shape[1]
    T = x.shape[1]
    if H > MAXH:
        raise ValueError(f"the GPU ensemble runs networks of up to {MAXH} units, got {H}; use backend='numba'")
    shared = shared_bytes(H, dtype.itemsize)
    if shared > CONFIG["shared_limit"]:
        raise ValueError(f"{H} units in {dtype.name} need {shared} bytes of shared memory per network, more than "
                         f"{CONFIG['shared_limit']}; use float32, fewer units or backend='numba'")
    keep = trajectories or gradients
    traj = dev.empty((N, T, H) if keep else (1, 1, 1), dtype)
    dA = dev.empty((N, T, H) if gradients else (1, 1, 1), dtype)
    final, mean_abs, loss_d = dev.empty((N, H), dtype), dev.empty((N,), dtype), dev.empty((N,), dtype)
    db = dev.empty((N, H) if gradients else (1, 1), dtype)
    dh0 = dev.empty((N, H) if gradients else (1, 1), dtype)
    grad_h0_norm = dev.empty((N,), dtype)
    dev.launch(ensemble_kernel(dtype.name), (N,), (threads_for(H),), shared,
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
        dev.launch(norms_kernel(dtype.name), (N,), (64,), 0, dK, dR, db, grad_norm)
        out.update(grad_norm=grad_norm, grad_h0_norm=grad_h0_norm, d_kernel=dK, d_recurrent_kernel=dR, d_bias=db,
                   d_h0=dh0)
    return out
