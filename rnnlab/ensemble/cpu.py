"""The CPU half of `rnnlab.ensemble` (``backend="numba"``): one numba ``prange`` over the networks.

Each network runs its own time loop (forward, then backward when gradients are
asked for) in one thread, in preallocated per-network buffers.  Imported, and
compiled (cached on disk), on the first CPU ``ensemble.simulate``.
"""

import math

import numba
import numpy as np

from ..backends.numba.jit import jit

LOSS_CODES = {"final": 0, "mean": 1}


# fastmath off: the sums keep their written order, so results do not depend on vectorization
@jit(parallel=True, fastmath=False)
def _ensemble(K, R, b, x, x_per_network, h0, loss_kind, want_grads, keep_traj,
              traj, final, mean_abs, loss, dK, dR, db, dh0, grad_norm, grad_h0_norm):
    N, H = h0.shape
    F = K.shape[1]
    T = x.shape[1]  # x is (N or 1, T, F)
    store_all = keep_traj or want_grads
    rows = T + 1 if store_all else 2
    for n in numba.prange(N):
        # hs[t + 1] is h after step t and hs[0] = h0 (only two rows, used in turn, without gradients)
        hs = np.empty((rows, H), dtype=h0.dtype)
        a = np.empty(H, dtype=h0.dtype)
        for j in range(H):
            hs[0, j] = h0[n, j]
        abs_sum = 0.0
        sq_sum = 0.0
        prev = 0
        for t in range(T):
            cur = t + 1 if store_all else (t + 1) % 2
            for j in range(H):
                a[j] = b[n, j]
            for f in range(F):
                xv = x[n, t, f] if x_per_network else x[0, t, f]
                for j in range(H):
                    a[j] += xv * K[n, f, j]
            for k in range(H):
                hk = hs[prev, k]
                for j in range(H):
                    a[j] += hk * R[n, k, j]
            for j in range(H):
                h = math.tanh(a[j])
                hs[cur, j] = h
                abs_sum += abs(h)
                sq_sum += h * h
            prev = cur
        final_sq = 0.0
        for j in range(H):
            final[n, j] = hs[prev, j]
            final_sq += hs[prev, j] * hs[prev, j]
        mean_abs[n] = abs_sum / (T * H)
        loss[n] = 0.5 * final_sq if loss_kind == 0 else 0.5 * sq_sum / T
        if keep_traj:
            for t in range(T):
                for j in range(H):
                    traj[n, t, j] = hs[t + 1, j]
        if not want_grads:
            continue
        dh = np.zeros(H, dtype=h0.dtype)
        da = np.empty(H, dtype=h0.dtype)
        if loss_kind == 0:
            for j in range(H):
                dh[j] = hs[T, j]
        for t in range(T - 1, -1, -1):
            for j in range(H):
                h = hs[t + 1, j]
                g = dh[j] + (h / T if loss_kind == 1 else 0.0)
                da[j] = g * (1.0 - h * h)
                db[n, j] += da[j]
            for f in range(F):
                xv = x[n, t, f] if x_per_network else x[0, t, f]
                for j in range(H):
                    dK[n, f, j] += xv * da[j]
            for k in range(H):
                hk = hs[t, k]
                s = 0.0
                for j in range(H):
                    dR[n, k, j] += hk * da[j]
                    s += R[n, k, j] * da[j]
                dh[k] = s
        total = 0.0
        h0_sq = 0.0
        for j in range(H):
            dh0[n, j] = dh[j]
            h0_sq += dh[j] * dh[j]
            total += db[n, j] * db[n, j]
            for k in range(H):
                total += dR[n, k, j] * dR[n, k, j]
            for f in range(F):
                total += dK[n, f, j] * dK[n, f, j]
        grad_norm[n] = math.sqrt(total)
        grad_h0_norm[n] = math.sqrt(h0_sq)


def run(ensemble, x, h0, trajectories, gradients, loss, return_grads):
    """Host wrapper: allocate, run `_ensemble`, package the results as a dict."""
    dtype = np.dtype(ensemble.dtype)
    N, H, F = ensemble.n, ensemble.units, ensemble.features
    per_network = x.ndim == 3
    xs = x if per_network else x[None]
    T = xs.shape[1]
    traj = np.empty((N, T, H) if trajectories else (1, 1, 1), dtype)
    final = np.empty((N, H), dtype)
    mean_abs = np.empty(N, dtype)
    loss_values = np.empty(N, dtype)
    grad_shapes = gradients
    dK = np.zeros((N, F, H) if grad_shapes else (1, max(F, 1), 1), dtype)
    dR = np.zeros((N, H, H) if grad_shapes else (1, 1, 1), dtype)
    db = np.zeros((N, H) if grad_shapes else (1, 1), dtype)
    dh0 = np.zeros((N, H) if grad_shapes else (1, 1), dtype)
    grad_norm = np.zeros(N, dtype)
    grad_h0_norm = np.zeros(N, dtype)
    _ensemble(ensemble.kernel, ensemble.recurrent_kernel, ensemble.bias, xs, per_network, h0,
              LOSS_CODES[loss], gradients, trajectories, traj, final, mean_abs, loss_values, dK, dR, db, dh0,
              grad_norm, grad_h0_norm)
    grads = None
    if return_grads:
        grads = {"kernel": dK, "recurrent_kernel": dR, "bias": db, "h0": dh0}
    return dict(final_state=final, trajectories=traj if trajectories else None, mean_abs=mean_abs,
                loss=loss_values, grad_norm=grad_norm if gradients else None,
                grad_h0_norm=grad_h0_norm if gradients else None, grads=grads)
