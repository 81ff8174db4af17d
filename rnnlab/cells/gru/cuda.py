"""GRUCell on the GPU: the equations of ``cell.py`` as ``numba.cuda`` device code.

Gate order z, r, h (Keras).  Only the default activations (tanh, recurrent
sigmoid) have kernels.  :mod:`rnnlab.kernels.cuda_backend` does the host side.

``reset_after=True`` (the default) fits the generic schedules of
:mod:`rnnlab.kernels.cuda_scan`: one product ``h R`` per step.  With
``ax = x K + b_in`` and ``ah = h R + b_rec``::

    z  = sigmoid(ax_z + ah_z)      r = sigmoid(ax_r + ah_r)
    hh = tanh(ax_h + r * ah_h)     h' = z * h + (1 - z) * hh       extra = ah_h

Backward, with gh = dL/dh'::

    dz = gh (h - hh)    dph = gh (1 - z)(1 - hh^2)    dr = dph * ah_h
    dax = [dz z(1-z), dr r(1-r), dph]      dah = [dz z(1-z), dr r(1-r), dph * r]
    dh = gh * z + dah R^T

``reset_after=False`` needs the reset gate *before* the product with R_h, so a
step has two dependent products and its own persistent kernels here::

    z = sigmoid(ax_z + (h R_z))    r = sigmoid(ax_r + (h R_r))
    hh = tanh(ax_h + (r * h) R_h)  h' = z * h + (1 - z) * hh       extra = r * h

    dph = gh (1 - z)(1 - hh^2)     d(rh) = dph R_h^T
    dr = d(rh) * h                 dh = gh * z + d(rh) * r + [dz', dr'] R_zr^T
"""

import functools

from numba import cuda

import numpy as np

from ...kernels import cuda_scan
from ...kernels.cuda_device import numba_dtype, scalar_math, store

G = 3  # gate blocks z, r, h
L = 1  # state leaves: [h]
GATE_NAMES = ("z", "r", "hh")
MAXR = cuda_scan.MAXR


@functools.lru_cache(maxsize=None)
def units(dtype_name):
    """(forward_unit, backward_unit) of the reset_after=True GRU for ``dtype_name``."""
    sigmoid, tanh, one, zero = scalar_math(dtype_name)

    @cuda.jit(device=True)
    def forward_unit(ax, ah, h_prev, c_prev, gv):
        z = sigmoid(ax[0] + ah[0])
        r = sigmoid(ax[1] + ah[1])
        hh = tanh(ax[2] + r * ah[2])
        gv[0] = z
        gv[1] = r
        gv[2] = hh
        return z * h_prev + (one - z) * hh, c_prev, ah[2]

    @cuda.jit(device=True)
    def backward_unit(gh, gc, h_prev, c_prev, h_new, c_new, gv, extra, dax, dah):
        z = gv[0]
        r = gv[1]
        hh = gv[2]
        dz = gh * (h_prev - hh)
        dph = gh * (one - z) * (one - hh * hh)
        dr = dph * extra
        dpz = dz * z * (one - z)
        dpr = dr * r * (one - r)
        dax[0] = dpz
        dax[1] = dpr
        dax[2] = dph
        dah[0] = dpz
        dah[1] = dpr
        dah[2] = dph * r
        return gh * z, zero

    return forward_unit, backward_unit


def kernels(dtype_name, tiles):
    """Kernels of the reset_after=True GRU: persistent forward/backward and tiled steps."""
    fwd, bwd = units(dtype_name)
    return {
        "persistent_forward": lambda r_in_shared: cuda_scan.persistent_forward(fwd, G, L, dtype_name, r_in_shared),
        "persistent_backward": cuda_scan.persistent_backward(bwd, G, L, dtype_name, True),
        "tiled_forward": cuda_scan.tiled_forward_step(fwd, G, L, dtype_name, *tiles),
        "tiled_backward": cuda_scan.tiled_backward_step(bwd, G, L, dtype_name, True, *tiles),
    }


# -- reset_after=False: two dependent products per step -------------------------------------


def v1_forward_shared(rows, U, itemsize):
    """Bytes of dynamic shared memory :func:`v1_forward` needs: h, r*h and (rows, 3U) products."""
    return (2 * rows * U + rows * 3 * U) * itemsize


def v1_backward_shared(rows, U, itemsize):
    """Bytes of dynamic shared memory :func:`v1_backward` needs."""
    return (5 * rows * U + rows * 3 * U) * itemsize


@functools.lru_cache(maxsize=None)
def v1_forward(dtype_name):
    """Persistent forward of the reset_after=False GRU; arguments as ``cuda_scan.persistent_forward``."""
    sigmoid, tanh, one, zero = scalar_math(dtype_name)
    nb = numba_dtype(dtype_name)

    @cuda.jit
    def kernel(xp, R, b_rec, s0, mask, has_mask, zero_output, record, rows, out, seq, final, gates, extra):
        T = xp.shape[0]
        B = xp.shape[1]
        GU = xp.shape[2]
        U = GU // 3
        tid = cuda.threadIdx.x
        nt = cuda.blockDim.x
        b0 = cuda.blockIdx.x * rows
        nr = min(rows, B - b0)
        n = rows * U
        sh = cuda.shared.array(0, nb)
        sh_h = sh[0:n]
        sh_rh = sh[n : 2 * n]  # r * h
        sh_m = sh[2 * n : 2 * n + rows * GU]  # z, r (after stage 1) and (r h) R_h (stage 2)
        acc = cuda.local.array(MAXR, nb)
        for idx in range(tid, nr * U, nt):
            r = idx // U
            sh_h[idx] = s0[0, b0 + r, idx - r * U]
        cuda.syncthreads()
        for t in range(T):
            # stage 1: h R_zr
            for j in range(tid, 2 * U, nt):
                for r in range(nr):
                    acc[r] = zero
                for k in range(U):
                    w = R[k, j]
                    for r in range(nr):
                        acc[r] += sh_h[r * U + k] * w
                for r in range(nr):
                    sh_m[r * GU + j] = acc[r]
            cuda.syncthreads()
            for idx in range(tid, nr * U, nt):
                r = idx // U
                u = idx - r * U
                b = b0 + r
                zg = sigmoid(xp[t, b, u] + sh_m[r * GU + u])
                rg = sigmoid(xp[t, b, U + u] + sh_m[r * GU + U + u])
                sh_m[r * GU + u] = zg
                sh_m[r * GU + U + u] = rg
                sh_rh[idx] = rg * sh_h[idx]
            cuda.syncthreads()
            # stage 2: (r h) R_h
            for j in range(tid, U, nt):
                for r in range(nr):
                    acc[r] = zero
                for k in range(U):
                    w = R[k, 2 * U + j]
                    for r in range(nr):
                        acc[r] += sh_rh[r * U + k] * w
                for r in range(nr):
                    sh_m[r * GU + 2 * U + j] = acc[r]
            cuda.syncthreads()
            for idx in range(tid, nr * U, nt):
                r = idx // U
                u = idx - r * U
                b = b0 + r
                zg = sh_m[r * GU + u]
                hh = tanh(xp[t, b, 2 * U + u] + sh_m[r * GU + 2 * U + u])
                h_prev = sh_h[idx]
                h_new = zg * h_prev + (one - zg) * hh
                if record:
                    gates[t, b, u] = zg
                    gates[t, b, U + u] = sh_m[r * GU + U + u]
                    gates[t, b, 2 * U + u] = hh
                    extra[t, b, u] = sh_rh[idx]
                keep = True
                if has_mask:
                    keep = mask[t, b] != 0
                if keep:
                    o = h_new
                else:
                    h_new = h_prev
                    o = zero
                    if not zero_output and t > 0:
                        o = out[t - 1, b, u]
                out[t, b, u] = o
                sh_h[idx] = h_new
                if record:
                    seq[0, t, b, u] = h_new
            cuda.syncthreads()
        for idx in range(tid, nr * U, nt):
            r = idx // U
            final[0, b0 + r, idx - r * U] = sh_h[idx]

    return kernel


@functools.lru_cache(maxsize=None)
def v1_backward(dtype_name):
    """Persistent backward of the reset_after=False GRU; arguments as ``cuda_scan.persistent_backward``.

    Writes dAX (T, B, 3U) = [dz', dr', dph] (dK, the bias and dx follow from it;
    dR_zr = h^T dAX[:, :2U] and dR_h = (r h)^T dAX[:, 2U:]).  dAH is unused.
    """
    sigmoid, tanh, one, zero = scalar_math(dtype_name)
    nb = numba_dtype(dtype_name)

    @cuda.jit
    def kernel(RT, s0, seq, gates, extra, mask, has_mask, carries_output, d_out, d_final,
               truncate, mode, rows, dAX, dAH, d_init, state_grads):
        T = seq.shape[1]
        B = seq.shape[2]
        U = seq.shape[3]
        GU = 3 * U
        tid = cuda.threadIdx.x
        nt = cuda.blockDim.x
        b0 = cuda.blockIdx.x * rows
        nr = min(rows, B - b0)
        n = rows * U
        sh = cuda.shared.array(0, nb)
        sh_dh = sh[0:n]
        sh_carry = sh[n : 2 * n]
        sh_direct = sh[2 * n : 3 * n]
        sh_gh = sh[3 * n : 4 * n]  # dL/dh' at this step (0 where masked)
        sh_drh = sh[4 * n : 5 * n]  # d(r h)
        sh_da = sh[5 * n : 5 * n + rows * GU]  # [dz', dr', dph]
        acc = cuda.local.array(MAXR, nb)
        full = truncate >= T
        n_sweeps = 1 if full else T
        for sweep in range(cuda.blockIdx.y, n_sweeps, cuda.gridDim.y):
            last = T - 1 if full else T - 1 - sweep
            first = 0 if full else max(0, last - truncate + 1)
            for idx in range(tid, nr * U, nt):
                r = idx // U
                sh_dh[idx] = d_final[0, b0 + r, idx - r * U] if last == T - 1 else zero
                sh_carry[idx] = zero
            cuda.syncthreads()
            for t in range(last, first - 1, -1):
                for idx in range(tid, nr * U, nt):
                    r = idx // U
                    u = idx - r * U
                    b = b0 + r
                    d_o = sh_carry[idx]
                    if full or t == last:
                        d_o += d_out[t, b, u]
                    keep = True
                    if has_mask:
                        keep = mask[t, b] != 0
                    dh = sh_dh[idx]
                    if keep:
                        d_cell = d_o
                        sh_carry[idx] = zero
                        gh = d_cell + dh
                    else:
                        d_cell = zero
                        sh_carry[idx] = d_o if carries_output else zero
                        gh = zero
                    store(state_grads, (0, t, b, u), dh + d_cell, mode)
                    h_prev = seq[0, t - 1, b, u] if t > 0 else s0[0, b, u]
                    zg = gates[t, b, u]
                    hh = gates[t, b, 2 * U + u]
                    dph = gh * (one - zg) * (one - hh * hh)
                    dpz = gh * (h_prev - hh) * zg * (one - zg)
                    store(dAX, (t, b, u), dpz, mode)
                    store(dAX, (t, b, 2 * U + u), dph, mode)
                    sh_da[r * GU + u] = dpz
                    sh_da[r * GU + 2 * U + u] = dph
                    sh_gh[idx] = gh
                    sh_direct[idx] = gh * zg if keep else dh
                cuda.syncthreads()
                # d(r h) = dph R_h^T
                for idx in range(tid, nr * U, nt):
                    r = idx // U
                    k = idx - r * U
                    s = zero
                    for j in range(U):
                        s += sh_da[r * GU + 2 * U + j] * RT[2 * U + j, k]
                    sh_drh[idx] = s
                cuda.syncthreads()
                for idx in range(tid, nr * U, nt):
                    r = idx // U
                    u = idx - r * U
                    b = b0 + r
                    h_prev = seq[0, t - 1, b, u] if t > 0 else s0[0, b, u]
                    rg = gates[t, b, U + u]
                    drh = sh_drh[idx]
                    dpr = drh * h_prev * rg * (one - rg)
                    store(dAX, (t, b, U + u), dpr, mode)
                    sh_da[r * GU + U + u] = dpr
                    sh_direct[idx] += drh * rg
                cuda.syncthreads()
                # dh_prev = direct + [dz', dr'] R_zr^T
                for w in range(tid, U, nt):
                    for r in range(nr):
                        acc[r] = zero
                    for j in range(2 * U):
                        wv = RT[j, w]
                        for r in range(nr):
                            acc[r] += sh_da[r * GU + j] * wv
                    for r in range(nr):
                        sh_dh[r * U + w] = sh_direct[r * U + w] + acc[r]
                cuda.syncthreads()
            if first == 0:  # a sweep that stops later ends at a constant state, not the initial one
                for idx in range(tid, nr * U, nt):
                    r = idx // U
                    store(d_init, (0, b0 + r, idx - r * U), sh_dh[idx], mode)
            cuda.syncthreads()

    return kernel
