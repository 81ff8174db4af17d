"""Schedules for the CUDA step loop: a persistent kernel and a tiled one.

A cell room (``rnnlab/cells/<room>/cuda.py``) writes its equations once, as
two scalar device functions for one unit ``u`` of one batch row:

```text
    forward_unit(ax, ah, h_prev, c_prev, gv) -> (h_new, c_new, extra)
    backward_unit(gh, gc, h_prev, c_prev, h_new, c_new, gv, extra, dax, dah) -> (dh_direct, dc_prev)
```

``ax[g]`` is gate g's input part ``(x K + b_in)[g*U + u]`` and ``ah[g]`` its
recurrent part ``(h R + b_rec)[g*U + u]``; ``gv`` receives (forward) or holds
(backward) the gate activations that the tape records; ``extra`` is one more
recorded value per unit (the GRU keeps ``(h R_h + b_rec_h)`` there).  Backward
gets ``gh = dL/dh_new`` and ``gc = dL/dc_new`` and fills ``dax`` (gradients of
the input parts: they give dK, db_in and dx) and ``dah`` (of the recurrent
parts: they give dR, db_rec and, through R^T, dL/dh_prev).  It returns the part
of dL/dh_prev that does not go through R, and dL/dc_prev.  State leaf 1 (c) is
used only by cells with two state leaves (L = 2, the LSTM).

A cell with no recurrent weight (``recurrent=False``: minGRU, minLSTM, whose
pre-activations all come from ``x K + b``) runs in the same schedules with the
products left out: ``ah`` is ``b_rec`` (zeros), R is never read, and dL/dh_prev
is the unit's direct part alone.

This module turns such a pair into two kinds of kernels; `kernels`
picks the pair for a launch geometry, and every kernel takes Keras masking
from `rnnlab.backends.cuda.masking`.

**Persistent** (`persistent_forward`, `persistent_backward`): one
launch runs every timestep.  Each block owns ``rows`` batch rows (at most
`MAXR`) and keeps their state in shared memory; threads loop over the
gate columns for ``h @ R`` (reading R from shared memory when it fits, else
from global memory through L1/L2), synchronise, update the state, synchronise,
and go on to the next step.  Batch rows never talk to each other, so no grid
synchronisation is needed (the Persistent RNN idea, Diamos et al. 2016, with
the weights in shared memory or cache instead of registers).  Truncated BPTT
spreads its per-output sweeps over ``gridDim.y`` and adds with atomics.

**Tiled** (`tiled_forward_step`, `tiled_backward_step`): one launch
per timestep for large H.  A block owns a tile of ``tile_rows`` batch rows x
``tile_units`` units and every gate column of those units, accumulates
``h @ R`` over shared-memory tiles of ``tile_k``, then runs the same unit
functions as the epilogue, so each step is one fused launch.

Tape layout (device arrays; ``L`` state leaves, ``G`` gates, ``U`` units):
``xp`` (T, B, GU) input projections; ``seq`` (L, T, B, U) states after each
step; ``gates`` (T, B, GU); ``extra`` (T, B, U); ``out`` (T, B, U); the mask
is (T, B) uint8.  Unused tape arrays are passed as small dummies with
``record = 0``.

Recurrent dropout: ``rmask`` (B, U) with ``has_rmask = 1`` (else a small
dummy and 0).  The products with R take ``h * rmask``, and the gradient that
comes back through R^T to h is multiplied by rmask; ``h_prev`` of the unit
functions stays unmasked (the GRU's blend uses h itself), and c is never masked.
"""

import functools

import numpy as np
from numba import cuda

from .masking import masked_backward, masked_forward, masked_passthrough, step_is_real
from .primitives import numba_dtype, store

MAXR = 4  # batch rows per block in the persistent kernels
MAXG = 4  # gates per unit (LSTM)
MAXP = 4  # split-K partitions of the backward R^T product


def _dtype_consts(dtype_name):
    t = np.dtype(dtype_name).type
    return numba_dtype(dtype_name), t(0)


# -- persistent ------------------------------------------------------------------------


def persistent_forward_shared(rows, U, G, itemsize, r_in_shared):
    """Bytes of dynamic shared memory `persistent_forward` needs."""
    count = 2 * rows * U + 2 * rows * G * U + (U * G * U if r_in_shared else 0)
    return count * itemsize


@functools.lru_cache(maxsize=None)
def persistent_forward(forward_unit, G, L, dtype_name, r_in_shared, recurrent=True):
    """One launch for the whole sequence; grid = ceil(B / rows) blocks."""
    nb, zero = _dtype_consts(dtype_name)

    @cuda.jit
    def kernel(xp, R, b_rec, rmask, has_rmask, s0, mask, has_mask, zero_output, record, rows,
               out, seq, final, gates, extra):
        T = xp.shape[0]
        B = xp.shape[1]
        GU = xp.shape[2]
        U = GU // G
        tid = cuda.threadIdx.x
        nt = cuda.blockDim.x
        b0 = cuda.blockIdx.x * rows
        nr = min(rows, B - b0)
        sh = cuda.shared.array(0, nb)
        sh_h = sh[0 : rows * U]  # (rows, U) state h
        sh_c = sh[rows * U : 2 * rows * U]  # (rows, U) state c (LSTM)
        sh_m = sh[2 * rows * U : 2 * rows * U + rows * GU]  # (rows, GU): h @ R + b_rec
        sh_x = sh[2 * rows * U + rows * GU : 2 * rows * U + 2 * rows * GU]  # (rows, GU): xp[t]
        sh_R = sh[2 * rows * U + 2 * rows * GU : 2 * rows * U + 2 * rows * GU + U * GU]  # R, when it fits
        acc = cuda.local.array(MAXR, nb)
        xv = cuda.local.array(MAXR, nb)
        ax = cuda.local.array(MAXG, nb)
        ah = cuda.local.array(MAXG, nb)
        gv = cuda.local.array(MAXG, nb)
        for idx in range(tid, nr * U, nt):
            r = idx // U
            u = idx - r * U
            sh_h[idx] = s0[0, b0 + r, u]
            sh_c[idx] = s0[L - 1, b0 + r, u]
        if r_in_shared and recurrent:
            for idx in range(tid, U * GU, nt):
                k = idx // GU
                sh_R[idx] = R[k, idx - k * GU]
        cuda.syncthreads()
        for t in range(T):
            # phase 1: recurrent products for every gate column j; xp[t] is loaded
            # first so that its latency hides behind the product
            for j in range(tid, GU, nt):
                for r in range(nr):
                    xv[r] = xp[t, b0 + r, j]
                    acc[r] = zero
                if recurrent:
                    for k in range(U):
                        w = sh_R[k * GU + j] if r_in_shared else R[k, j]
                        for r in range(nr):
                            hv = sh_h[r * U + k]
                            if has_rmask:
                                hv *= rmask[b0 + r, k]
                            acc[r] += hv * w
                for r in range(nr):
                    sh_m[r * GU + j] = acc[r] + b_rec[j]
                    sh_x[r * GU + j] = xv[r]
            cuda.syncthreads()
            # phase 2: the cell's equations, one (row, unit) per thread
            for idx in range(tid, nr * U, nt):
                r = idx // U
                u = idx - r * U
                b = b0 + r
                for g in range(G):
                    ax[g] = sh_x[r * GU + g * U + u]
                    ah[g] = sh_m[r * GU + g * U + u]
                h_prev = sh_h[idx]
                c_prev = sh_c[idx]
                h_new, c_new, ex = forward_unit(ax, ah, h_prev, c_prev, gv)
                if record:
                    for g in range(G):
                        gates[t, b, g * U + u] = gv[g]
                    extra[t, b, u] = ex
                h_new, c_new = masked_forward(mask, has_mask, zero_output, out, t, b, u, h_prev, c_prev, h_new,
                                              c_new, zero)
                sh_h[idx] = h_new
                sh_c[idx] = c_new
                if record:
                    seq[0, t, b, u] = h_new
                    if L == 2:
                        seq[1, t, b, u] = c_new
            cuda.syncthreads()
        for idx in range(tid, nr * U, nt):
            r = idx // U
            u = idx - r * U
            final[0, b0 + r, u] = sh_h[idx]
            if L == 2:
                final[1, b0 + r, u] = sh_c[idx]

    return kernel


def persistent_backward_shared(rows, U, G, itemsize):
    """Bytes of dynamic shared memory `persistent_backward` needs."""
    return (4 * rows * U + rows * G * U + MAXP * rows * U) * itemsize


@functools.lru_cache(maxsize=None)
def persistent_backward(backward_unit, G, L, dtype_name, separate_dah, recurrent=True):
    """One launch for a full sweep, or for all truncated sweeps (spread over gridDim.y).

    ``truncate >= T`` is full BPTT: one sweep from T-1 to 0 that picks up every
    output's gradient.  Otherwise the sweep of origin ``o`` takes only output
    o's gradient (and ``d_final`` when o = T-1) back to ``max(0, o - truncate + 1)``
    and, when that is step 0, adds its carried gradient to ``d_init``: the
    windows of `rnnlab.types.truncation_windows`.  ``mode`` is STORE for
    one full sweep and ATOMIC_ADD otherwise.
    """
    nb, zero = _dtype_consts(dtype_name)

    @cuda.jit
    def kernel(RT, rmask, has_rmask, s0, seq, gates, extra, mask, has_mask, carries_output, d_out, d_final,
               truncate, mode, rows, dAX, dAH, d_init, state_grads):
        T = seq.shape[1]
        B = seq.shape[2]
        U = seq.shape[3]
        GU = G * U
        tid = cuda.threadIdx.x
        nt = cuda.blockDim.x
        b0 = cuda.blockIdx.x * rows
        nr = min(rows, B - b0)
        n = rows * U
        sh = cuda.shared.array(0, nb)
        sh_dh = sh[0:n]  # dL/dh entering the current step from later steps
        sh_dc = sh[n : 2 * n]
        sh_carry = sh[2 * n : 3 * n]  # output gradient that masked steps repeat
        sh_direct = sh[3 * n : 4 * n]  # dL/dh_prev not through R
        sh_da = sh[4 * n : 4 * n + rows * GU]  # (rows, GU): dah of this step
        sh_part = sh[4 * n + rows * GU : 4 * n + rows * GU + MAXP * n]  # split-K partials
        acc = cuda.local.array(MAXR, nb)
        gv = cuda.local.array(MAXG, nb)
        dax = cuda.local.array(MAXG, nb)
        dah = cuda.local.array(MAXG, nb)
        P = max(1, min(MAXP, nt // U))
        full = truncate >= T
        n_sweeps = 1 if full else T
        for sweep in range(cuda.blockIdx.y, n_sweeps, cuda.gridDim.y):
            last = T - 1 if full else T - 1 - sweep
            first = 0 if full else max(0, last - truncate + 1)  # rnnlab.types.truncation_windows, on the device
            for idx in range(tid, nr * U, nt):
                r = idx // U
                u = idx - r * U
                sh_dh[idx] = d_final[0, b0 + r, u] if last == T - 1 else zero
                sh_dc[idx] = d_final[L - 1, b0 + r, u] if (L == 2 and last == T - 1) else zero
                sh_carry[idx] = zero
            cuda.syncthreads()
            for t in range(last, first - 1, -1):
                # phase A: the cell's backward equations, one (row, unit) per thread
                for idx in range(tid, nr * U, nt):
                    r = idx // U
                    u = idx - r * U
                    b = b0 + r
                    d_o = sh_carry[idx]
                    if full or t == last:
                        d_o += d_out[t, b, u]
                    keep = step_is_real(mask, has_mask, t, b)
                    dh = sh_dh[idx]
                    dc = sh_dc[idx]
                    gh, gc, d_state, sh_carry[idx] = masked_backward(keep, carries_output, d_o, dh, dc, zero)
                    store(state_grads, (0, t, b, u), d_state, mode)
                    if L == 2:
                        store(state_grads, (1, t, b, u), dc, mode)
                    if t > 0:
                        h_prev = seq[0, t - 1, b, u]
                        c_prev = seq[L - 1, t - 1, b, u]
                    else:
                        h_prev = s0[0, b, u]
                        c_prev = s0[L - 1, b, u]
                    for g in range(G):
                        gv[g] = gates[t, b, g * U + u]
                    dh_direct, dc_prev = backward_unit(gh, gc, h_prev, c_prev, seq[0, t, b, u],
                                                       seq[L - 1, t, b, u], gv, extra[t, b, u], dax, dah)
                    for g in range(G):
                        store(dAX, (t, b, g * U + u), dax[g], mode)
                        if separate_dah:
                            store(dAH, (t, b, g * U + u), dah[g], mode)
                        sh_da[r * GU + g * U + u] = dah[g]
                    sh_direct[idx], sh_dc[idx] = masked_passthrough(keep, dh_direct, dc_prev, dh, dc)
                cuda.syncthreads()
                # phase B: dL/dh_prev = direct + dah @ R^T, split over P slices of the gate columns
                if recurrent:
                    for w in range(tid, P * U, nt):
                        p = w // U
                        k = w - p * U
                        for r in range(nr):
                            acc[r] = zero
                        for j in range(p * GU // P, (p + 1) * GU // P):
                            wv = RT[j, k]
                            for r in range(nr):
                                acc[r] += sh_da[r * GU + j] * wv
                        for r in range(nr):
                            sh_part[(p * rows + r) * U + k] = acc[r]
                cuda.syncthreads()
                for idx in range(tid, nr * U, nt):
                    r = idx // U
                    k = idx - r * U
                    s = zero
                    if recurrent:
                        for p in range(P):
                            s += sh_part[(p * rows + r) * U + k]
                        if has_rmask:  # the product saw h * rmask
                            s *= rmask[b0 + r, k]
                    sh_dh[idx] = sh_direct[idx] + s
                cuda.syncthreads()
            if first == 0:  # a sweep that stops later ends at a constant state, not the initial one
                for idx in range(tid, nr * U, nt):
                    r = idx // U
                    u = idx - r * U
                    store(d_init, (0, b0 + r, u), sh_dh[idx], mode)
                    if L == 2:
                        store(d_init, (1, b0 + r, u), sh_dc[idx], mode)
            cuda.syncthreads()

    return kernel


# -- tiled: one fused launch per step ----------------------------------------------------


@functools.lru_cache(maxsize=None)
def tiled_forward_step(forward_unit, G, L, dtype_name, tile_rows, tile_units, tile_k, recurrent=True):
    """Step ``t``: ``s_out = cell(xp[t], s_in)``.  grid = (ceil(U/TU), ceil(B/TB)), block = (TU, TB)."""
    nb, zero = _dtype_consts(dtype_name)
    TB, TU, KT = tile_rows, tile_units, tile_k
    SH_H, SH_R = TB * KT, KT * MAXG * TU  # shared array sizes must be compile-time constants

    @cuda.jit
    def kernel(t, xp, R, b_rec, rmask, has_rmask, s_in, s_out, mask, has_mask, zero_output, record, out, seq, gates,
               extra):
        B = xp.shape[1]
        GU = xp.shape[2]
        U = GU // G
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        tid = ty * TU + tx
        nthreads = TU * TB
        u0 = cuda.blockIdx.x * TU
        b0 = cuda.blockIdx.y * TB
        u = u0 + tx
        b = b0 + ty
        sh_h = cuda.shared.array(SH_H, nb)  # (TB, KT) tile of h
        sh_R = cuda.shared.array(SH_R, nb)  # (KT, G, TU) tile of R
        m = cuda.local.array(MAXG, nb)
        ax = cuda.local.array(MAXG, nb)
        gv = cuda.local.array(MAXG, nb)
        for g in range(G):
            m[g] = zero
        for k0 in range(0, U if recurrent else 0, KT):  # no product without a recurrent weight
            for e in range(tid, TB * KT, nthreads):
                rr = e // KT
                k = k0 + e - rr * KT
                sh_h[e] = s_in[0, b0 + rr, k] if (b0 + rr < B and k < U) else zero
                if has_rmask and b0 + rr < B and k < U:
                    sh_h[e] *= rmask[b0 + rr, k]
            for e in range(tid, KT * G * TU, nthreads):
                kk = e // (G * TU)
                rest = e - kk * G * TU
                g = rest // TU
                uu = rest - g * TU
                k = k0 + kk
                sh_R[e] = R[k, g * U + u0 + uu] if (k < U and u0 + uu < U) else zero
            cuda.syncthreads()
            for kk in range(KT):
                hv = sh_h[ty * KT + kk]
                for g in range(G):
                    m[g] += hv * sh_R[(kk * G + g) * TU + tx]
            cuda.syncthreads()
        if b < B and u < U:
            for g in range(G):
                ax[g] = xp[t, b, g * U + u]
                m[g] += b_rec[g * U + u]
            h_prev = s_in[0, b, u]
            c_prev = s_in[L - 1, b, u]
            h_new, c_new, ex = forward_unit(ax, m, h_prev, c_prev, gv)
            if record:
                for g in range(G):
                    gates[t, b, g * U + u] = gv[g]
                extra[t, b, u] = ex
            h_new, c_new = masked_forward(mask, has_mask, zero_output, out, t, b, u, h_prev, c_prev, h_new, c_new,
                                          zero)
            s_out[0, b, u] = h_new
            if L == 2:
                s_out[1, b, u] = c_new
            if record:
                seq[0, t, b, u] = h_new
                if L == 2:
                    seq[1, t, b, u] = c_new

    return kernel


@functools.lru_cache(maxsize=None)
def tiled_backward_step(backward_unit, G, L, dtype_name, separate_dah, tile_rows, tile_units, tile_k,
                        recurrent=True):
    """Backward step ``t`` of the sweep ``last -> first``; grid and block as the forward step.

    The launch for step t first finishes dL/dh_t = direct + da_in @ R^T (da_in
    is the dah of step t+1, from the previous launch; at t = last it starts
    from ``d_final`` or zero), then runs step t's backward equations into
    ``da_out``.  The launch with ``t = -1`` (only for sweeps that reach step
    0) only finishes the product and adds it to ``d_init``.  ``mode`` says how
    the per-step results are written (STORE for full BPTT, ADD for sweeps).
    """
    nb, zero = _dtype_consts(dtype_name)
    TB, TU, KT = tile_rows, tile_units, tile_k
    SH_D, SH_RT = TB * KT, KT * TU

    @cuda.jit
    def kernel(t, last, first, full, RT, rmask, has_rmask, s0, seq, gates, extra, mask, has_mask, carries_output,
               d_out, d_final, mode, da_in, da_out, direct, dcs, carry, dAX, dAH, d_init, state_grads):
        T = seq.shape[1]
        B = seq.shape[2]
        U = seq.shape[3]
        GU = G * U
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        tid = ty * TU + tx
        nthreads = TU * TB
        k0u = cuda.blockIdx.x * TU
        b0 = cuda.blockIdx.y * TB
        u = k0u + tx
        b = b0 + ty
        sh_d = cuda.shared.array(SH_D, nb)  # (TB, KT) tile of da_in
        sh_RT = cuda.shared.array(SH_RT, nb)  # (KT, TU) tile of R^T
        gv = cuda.local.array(MAXG, nb)
        dax = cuda.local.array(MAXG, nb)
        dah = cuda.local.array(MAXG, nb)
        s = zero
        if recurrent and t < last:  # uniform over the block
            for j0 in range(0, GU, KT):
                for e in range(tid, TB * KT, nthreads):
                    rr = e // KT
                    j = j0 + e - rr * KT
                    sh_d[e] = da_in[b0 + rr, j] if (b0 + rr < B and j < GU) else zero
                for e in range(tid, KT * TU, nthreads):
                    jj = e // TU
                    uu = e - jj * TU
                    j = j0 + jj
                    sh_RT[e] = RT[j, k0u + uu] if (j < GU and k0u + uu < U) else zero
                cuda.syncthreads()
                for jj in range(KT):
                    s += sh_d[ty * KT + jj] * sh_RT[jj * TU + tx]
                cuda.syncthreads()
        if b >= B or u >= U:
            return
        if t == last:
            dh = d_final[0, b, u] if last == T - 1 else zero
            dc = d_final[L - 1, b, u] if (L == 2 and last == T - 1) else zero
            d_o = zero
        else:
            if has_rmask:  # the product saw h * rmask
                s *= rmask[b, u]
            dh = direct[b, u] + s
            dc = dcs[b, u]
            d_o = carry[b, u]
        if t < first:
            store(d_init, (0, b, u), dh, mode)
            if L == 2:
                store(d_init, (1, b, u), dc, mode)
            return
        if full or t == last:
            d_o += d_out[t, b, u]
        keep = step_is_real(mask, has_mask, t, b)
        gh, gc, d_state, carry[b, u] = masked_backward(keep, carries_output, d_o, dh, dc, zero)
        store(state_grads, (0, t, b, u), d_state, mode)
        if L == 2:
            store(state_grads, (1, t, b, u), dc, mode)
        if t > 0:
            h_prev = seq[0, t - 1, b, u]
            c_prev = seq[L - 1, t - 1, b, u]
        else:
            h_prev = s0[0, b, u]
            c_prev = s0[L - 1, b, u]
        for g in range(G):
            gv[g] = gates[t, b, g * U + u]
        dh_direct, dc_prev = backward_unit(gh, gc, h_prev, c_prev, seq[0, t, b, u], seq[L - 1, t, b, u],
                                           gv, extra[t, b, u], dax, dah)
        for g in range(G):
            store(dAX, (t, b, g * U + u), dax[g], mode)
            if separate_dah:
                store(dAH, (t, b, g * U + u), dah[g], mode)
            da_out[b, g * U + u] = dah[g]
        direct[b, u], dcs[b, u] = masked_passthrough(keep, dh_direct, dc_prev, dh, dc)

    return kernel


# -- one cell's kernels ------------------------------------------------------------------


def kernels(forward_unit, backward_unit, G, L, separate_dah, dtype_name, geometry, recurrent=True):
    """(forward kernel, backward kernel) of a cell's unit functions, for ``geometry.path``.

    ``geometry`` is a `LaunchGeometry`; its
    ``r_in_shared`` picks the persistent forward and its ``tiles`` size the tiled ones.
    ``recurrent=False`` leaves out the products with R (a cell without a recurrent weight).
    """
    if geometry.path == "persistent":
        return (persistent_forward(forward_unit, G, L, dtype_name, geometry.r_in_shared, recurrent),
                persistent_backward(backward_unit, G, L, dtype_name, separate_dah, recurrent))
    return (tiled_forward_step(forward_unit, G, L, dtype_name, *geometry.tiles, recurrent),
            tiled_backward_step(backward_unit, G, L, dtype_name, separate_dah, *geometry.tiles, recurrent))
