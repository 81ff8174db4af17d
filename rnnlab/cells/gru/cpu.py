"""GRUCell on the CPU: the time loops of ``cell.py``'s equations as ``@njit`` kernels.

The host side (:mod:`rnnlab.kernels.numba_backend`) computes
``A = X K + b_in`` for every timestep before the forward kernel, and the
weight and input gradients (one GEMM each) after the backward kernel.  Each
step here does its recurrent product with BLAS gemm into memory allocated
before the loop, and one fused gate loop that vectorizes.

Two variants, as in Keras:

* ``reset_after=True``: ``hh = tanh(x_h + r * (h R_h + b_rec_h))``, one gemm
  per step for all three blocks;
* ``reset_after=False``: ``hh = tanh(x_h + (r * h) R_h)``, so the step needs
  r before its second gemm: two gemms and two gate loops.

Layouts: T steps, B samples, U units.  Gate order z, r, h; ``A[t, b, k*U + j]``
is block k of unit j.
"""

import numpy as np

from ...kernels import common
from ...kernels.blas import gemm
from ...kernels.common import carry_masked_states, mask_outputs, output_gradient, sigmoid, tanh
from ...kernels.jit import kernel


@kernel(depends=[common])
def forward_reset_after(A, R, b_rec, H, MHh, outputs, mask, output_mode):
    """Run T steps of the reset-after GRU.

    A: (T, B, 3U) holds x_t K + b_in on entry and the gates z, r, hh on exit.
    R: (U, 3U); b_rec: (3U,) recurrent bias.
    H: (T+1, B, U); H[0] holds the initial state, H[t+1] receives the state after step t.
    MHh: (T, B, U) receives mh_h = (h R + b_rec)_h, which the backward needs.
    outputs: (T, B, U); mask: (T, B) bool.
    """
    T, B = A.shape[0], A.shape[1]
    U = H.shape[2]
    one = A.dtype.type(1)
    mh = np.empty((B, 3 * U), A.dtype)  # h R of one step
    for t in range(T):
        a = A[t]  # (B, 3U)
        gemm(False, False, 1.0, H[t], R, 0.0, mh)  # mh = h_{t-1} R
        h_prev, h_new, out, mhh_t = H[t], H[t + 1], outputs[t], MHh[t]
        for b in range(B):
            for j in range(U):
                z = sigmoid(a[b, j] + (mh[b, j] + b_rec[j]))
                r = sigmoid(a[b, U + j] + (mh[b, U + j] + b_rec[U + j]))
                mhh = mh[b, 2 * U + j] + b_rec[2 * U + j]
                hh = tanh(a[b, 2 * U + j] + r * mhh)
                a[b, j], a[b, U + j], a[b, 2 * U + j] = z, r, hh
                mhh_t[b, j] = mhh
                h = z * h_prev[b, j] + (one - z) * hh
                h_new[b, j] = h
                out[b, j] = h
        carry_masked_states(t, mask, H)
        mask_outputs(t, mask, output_mode, outputs)


@kernel(depends=[common])
def backward_reset_after(G, H, MHh, R, d_outputs, mask, carry_output, first, last, d_h, dMX, dMH,
                         state_grad_h, add_output):
    """Walk steps ``last`` down to ``first`` of the reset-after GRU (``GRUCell.backward``).

    G: (T, B, 3U) gates z, r, hh.  H: (T+1, B, U).  MHh: (T, B, U).  R: (U, 3U).
    d_outputs: (T, B, U).  d_h: (B, U), the gradient on the state after step
    ``last`` on entry and on the state entering step ``first`` on exit.
    dMX, dMH: (T, B, 3U) receive the gradients of the input and recurrent
    pre-activations x K + b_in and h R + b_rec (they differ in the h block).
    state_grad_h: (T, B, U) accumulates dL/dh_t; see ``lstm/cpu.py`` for the rest.
    """
    B, U = d_h.shape
    zero, one = d_h.dtype.type(0), d_h.dtype.type(1)
    d_carry = np.zeros_like(d_h)
    d_cell_out = np.zeros_like(d_h)
    d_h_prev = np.zeros_like(d_h)
    for t in range(last, first - 1, -1):
        output_gradient(t, mask, carry_output, d_outputs, d_carry, d_cell_out)
        g_t, h_prev, mhh_t, dmx, dmh = G[t], H[t], MHh[t], dMX[t], dMH[t]
        for b in range(B):
            keep = mask[t, b]
            for j in range(U):
                d_new = d_h[b, j] if keep else zero
                state_grad_h[t, b, j] += d_h[b, j]
                if add_output:
                    state_grad_h[t, b, j] += d_cell_out[b, j]
                z, r, hh = g_t[b, j], g_t[b, U + j], g_t[b, 2 * U + j]
                g = d_cell_out[b, j] + d_new
                d_z = g * (h_prev[b, j] - hh)
                d_pre_hh = g * (one - z) * (one - hh * hh)
                d_r = d_pre_hh * mhh_t[b, j]
                d_pre_z = d_z * (z * (one - z))
                d_pre_r = d_r * (r * (one - r))
                dmx[b, j], dmx[b, U + j], dmx[b, 2 * U + j] = d_pre_z, d_pre_r, d_pre_hh
                dmh[b, j], dmh[b, U + j], dmh[b, 2 * U + j] = d_pre_z, d_pre_r, d_pre_hh * r
                # dh = g z (+ the state gradient of a masked sample, passed straight through)
                d_h_prev[b, j] = g * z + (zero if keep else d_h[b, j])
        gemm(False, True, 1.0, dmh, R, 1.0, d_h_prev)  # dh += dmh R^T
        d_h[:, :] = d_h_prev


@kernel(depends=[common])
def forward_reset_before(A, R, H, RH, outputs, mask, output_mode):
    """Run T steps of the reset-before GRU (``reset_after=False``, no recurrent bias).

    A: (T, B, 3U) holds x_t K + b on entry and the gates z, r, hh on exit.
    R: (U, 3U).  H: (T+1, B, U) as in :func:`forward_reset_after`.
    RH: (T, B, U) receives r * h_{t-1}, the input of the candidate's gemm.
    """
    T, B = A.shape[0], A.shape[1]
    U = H.shape[2]
    one = A.dtype.type(1)
    R_zr, R_h = R[:, : 2 * U], R[:, 2 * U :]
    for t in range(T):
        a, h_prev, h_new, out, rh = A[t], H[t], H[t + 1], outputs[t], RH[t]
        gemm(False, False, 1.0, h_prev, R_zr, 1.0, a[:, : 2 * U])  # z and r see h directly
        for b in range(B):
            for j in range(U):
                z = sigmoid(a[b, j])
                r = sigmoid(a[b, U + j])
                a[b, j], a[b, U + j] = z, r
                rh[b, j] = r * h_prev[b, j]
        gemm(False, False, 1.0, rh, R_h, 1.0, a[:, 2 * U :])  # the candidate sees r * h
        for b in range(B):
            for j in range(U):
                z = a[b, j]
                hh = tanh(a[b, 2 * U + j])
                a[b, 2 * U + j] = hh
                h = z * h_prev[b, j] + (one - z) * hh
                h_new[b, j] = h
                out[b, j] = h
        carry_masked_states(t, mask, H)
        mask_outputs(t, mask, output_mode, outputs)


@kernel(depends=[common])
def backward_reset_before(G, H, R, d_outputs, mask, carry_output, first, last, d_h, dMX,
                          state_grad_h, add_output):
    """Walk steps ``last`` down to ``first`` of the reset-before GRU.

    As :func:`backward_reset_after`, with one pre-activation gradient dMX
    (T, B, 3U): the recurrent product of the h block is (r h) R_h, whose
    gradient the host forms from RH.
    """
    B, U = d_h.shape
    zero, one = d_h.dtype.type(0), d_h.dtype.type(1)
    R_zr, R_h = R[:, : 2 * U], R[:, 2 * U :]
    d_carry = np.zeros_like(d_h)
    d_cell_out = np.zeros_like(d_h)
    d_h_prev = np.zeros_like(d_h)
    d_rh = np.zeros_like(d_h)
    for t in range(last, first - 1, -1):
        output_gradient(t, mask, carry_output, d_outputs, d_carry, d_cell_out)
        g_t, h_prev, dmx = G[t], H[t], dMX[t]
        for b in range(B):
            keep = mask[t, b]
            for j in range(U):
                d_new = d_h[b, j] if keep else zero
                state_grad_h[t, b, j] += d_h[b, j]
                if add_output:
                    state_grad_h[t, b, j] += d_cell_out[b, j]
                z, hh = g_t[b, j], g_t[b, 2 * U + j]
                g = d_cell_out[b, j] + d_new
                dmx[b, j] = g * (h_prev[b, j] - hh)  # d_z for now; d_pre_z below
                dmx[b, 2 * U + j] = g * (one - z) * (one - hh * hh)
                d_h_prev[b, j] = g * z
        gemm(False, True, 1.0, dmx[:, 2 * U :], R_h, 0.0, d_rh)  # d(r h) = d_pre_hh R_h^T
        for b in range(B):
            for j in range(U):
                z, r = g_t[b, j], g_t[b, U + j]
                d_r = d_rh[b, j] * h_prev[b, j]
                d_h_prev[b, j] += d_rh[b, j] * r
                dmx[b, j] = dmx[b, j] * (z * (one - z))
                dmx[b, U + j] = d_r * (r * (one - r))
        gemm(False, True, 1.0, dmx[:, : 2 * U], R_zr, 1.0, d_h_prev)  # dh += d_zr R_zr^T
        for b in range(B):
            if not mask[t, b]:  # masked samples pass their state gradient straight through
                d_h_prev[b, :] += d_h[b, :]
        d_h[:, :] = d_h_prev
