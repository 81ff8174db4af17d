"""GRUCell on the CPU: the time loops of ``cell.py``'s equations as ``@njit`` kernels.

The host (`rnnlab.backends.numba.host`, through `adapter` below) computes
``A = X K + b_in`` for every timestep before the forward kernel, and the
weight gradients (`host.weight_products`) and input gradients after the backward kernel.  Each
step here does its recurrent product with BLAS gemm into memory allocated
before the loop, and one fused gate loop that vectorizes.

Two variants, as in Keras:

* ``reset_after=True``: ``hh = tanh(x_h + r * (h R_h + b_rec_h))``, one gemm
  per step for all three blocks;
* ``reset_after=False``: ``hh = tanh(x_h + (r * h) R_h)``, so the step needs
  r before its second gemm: two gemms and two gate loops.

With recurrent dropout (a mask M (B, U); (0, U) for none) every recurrent
product takes ``h * M``, while the blend ``z h + (1 - z) hh`` keeps h, as in
``cell.py``.

Samples never interact, so each kernel runs the samples ``b0 <= b < b1``
only: the host runs blocks of samples in threads (the kernels release the GIL).

Layouts: T steps, B samples, U units.  Gate order z, r, h; ``A[t, b, k*U + j]``
is block k of unit j.
"""

import numpy as np

from ...backends.numba import common, host
from ...backends.numba.blas import gemm
from ...backends.numba.common import (ACTIVATION_CODES, GATE_ACTIVATIONS, add_recurrent_gradient, gate, gate_grad,
                                      backward_buffers, emit_step, output_gradient, recurrent_input,
                                      step_state_gradient, tanh)
from ...backends.numba.jit import jit


@jit(depends=[common])
def forward_reset_after(A, R, b_rec, M, H, MHh, outputs, mask, output_mode, gate_code, b0, b1):
    """Run T steps of the reset-after GRU for samples b0..b1-1.

    A: (T, B, 3U) holds x_t K + b_in on entry and the gates z, r, hh on exit.
    R: (U, 3U); b_rec: (3U,) recurrent bias.  M: (B, U) recurrent dropout mask, or (0, U) for none.
    H: (T+1, B, U); H[0] holds the initial state, H[t+1] receives the state after step t.
    MHh: (T, B, U) receives mh_h = (h R + b_rec)_h, which the backward needs.
    outputs: (T, B, U); mask: (T, B) bool.  gate_code: the recurrent activation's code (ACTIVATION_CODES).
    """
    T, B = A.shape[0], A.shape[1]
    U = H.shape[2]
    one = A.dtype.type(1)
    mh = np.empty((B, 3 * U), A.dtype)  # h R of one step
    HM = np.empty_like(M)  # h * M of one step
    b_z, b_r, b_h = b_rec[:U], b_rec[U : 2 * U], b_rec[2 * U :]
    for t in range(T):
        h = recurrent_input(H[t], M, HM, b0, b1)
        gemm(False, False, 1.0, h[b0:b1], R, 0.0, mh[b0:b1])  # mh = h_{t-1} R
        for b in range(b0, b1):
            # 1-D views (loops over views vectorize); the gates overwrite the pre-activations
            a_z, a_r, a_h = A[t, b, :U], A[t, b, U : 2 * U], A[t, b, 2 * U :]
            mh_z, mh_r, mh_h = mh[b, :U], mh[b, U : 2 * U], mh[b, 2 * U :]
            h_prev, h_new, mhh_out = H[t, b], H[t + 1, b], MHh[t, b]
            for j in range(U):
                z = gate(gate_code, a_z[j] + (mh_z[j] + b_z[j]))
                r = gate(gate_code, a_r[j] + (mh_r[j] + b_r[j]))
                mhh = mh_h[j] + b_h[j]
                hh = tanh(a_h[j] + r * mhh)
                a_z[j], a_r[j], a_h[j] = z, r, hh
                mhh_out[j] = mhh
                h_new[j] = z * h_prev[j] + (one - z) * hh
        emit_step(t, mask, output_mode, H, outputs, b0, b1)


@jit(depends=[common])
def backward_reset_after(G, H, MHh, R, M, d_outputs, mask, carry_output, first, last, d_h, dMX, dMH,
                         state_grad_h, add_output, gate_code, b0, b1):
    """Walk steps ``last`` down to ``first`` of the reset-after GRU for samples b0..b1-1 (``GRUCell.backward``).

    G: (T, B, 3U) gates z, r, hh.  H: (T+1, B, U).  MHh: (T, B, U).  R: (U, 3U).  M: as in the forward.
    d_outputs: (T, B, U).  d_h: (B, U), the gradient on the state after step
    ``last`` on entry and on the state entering step ``first`` on exit.
    dMX, dMH: (T, B, 3U) receive the gradients of the input and recurrent
    pre-activations x K + b_in and h R + b_rec (they differ in the h block).
    state_grad_h: (T, B, U) accumulates dL/dh_t; see ``lstm/cpu.py`` for the rest.
    """
    U = d_h.shape[1]
    zero, one = d_h.dtype.type(0), d_h.dtype.type(1)
    d_carry, d_cell_out, d_h_prev = backward_buffers(d_h)
    d_h_in = np.zeros_like(d_h)  # gradient on h * M, what the recurrent product saw
    for t in range(last, first - 1, -1):
        output_gradient(t, mask, carry_output, d_outputs, d_carry, d_cell_out, b0, b1)
        for b in range(b0, b1):
            keep = mask[t, b]
            z_, r_, hh_ = G[t, b, :U], G[t, b, U : 2 * U], G[t, b, 2 * U :]
            dmx_z, dmx_r, dmx_h = dMX[t, b, :U], dMX[t, b, U : 2 * U], dMX[t, b, 2 * U :]
            dmh_z, dmh_r, dmh_h = dMH[t, b, :U], dMH[t, b, U : 2 * U], dMH[t, b, 2 * U :]
            h_prev, mhh, dh_b, d_out, dh_prev = H[t, b], MHh[t, b], d_h[b], d_cell_out[b], d_h_prev[b]
            sg_h = state_grad_h[t, b]
            for j in range(U):
                sg_h[j] += (dh_b[j] + d_out[j]) if add_output else dh_b[j]
                z, r, hh = z_[j], r_[j], hh_[j]
                g = d_out[j] + (dh_b[j] if keep else zero)
                d_z = g * (h_prev[j] - hh)
                d_pre_hh = g * (one - z) * (one - hh * hh)
                d_r = d_pre_hh * mhh[j]
                d_pre_z = d_z * gate_grad(gate_code, z)
                d_pre_r = d_r * gate_grad(gate_code, r)
                dmx_z[j], dmx_r[j], dmx_h[j] = d_pre_z, d_pre_r, d_pre_hh
                dmh_z[j], dmh_r[j], dmh_h[j] = d_pre_z, d_pre_r, d_pre_hh * r
                dh_prev[j] = g * z
        gemm(False, True, 1.0, dMH[t, b0:b1], R, 0.0, d_h_in[b0:b1])  # d(h M) = dmh R^T
        add_recurrent_gradient(d_h_in, M, d_h_prev, b0, b1)  # dh = g z + d(h M) M
        step_state_gradient(t, mask, d_h_prev, d_h, b0, b1)


@jit(depends=[common])
def forward_reset_before(A, R, M, H, RH, outputs, mask, output_mode, gate_code, b0, b1):
    """Run T steps of the reset-before GRU (``reset_after=False``, no recurrent bias) for samples b0..b1-1.

    A: (T, B, 3U) holds x_t K + b on entry and the gates z, r, hh on exit.
    R: (U, 3U).  M, H: as in `forward_reset_after`.
    RH: (T, B, U) receives r * (h_{t-1} M), the input of the candidate's gemm.
    """
    T = A.shape[0]
    U = H.shape[2]
    one = A.dtype.type(1)
    R_zr, R_h = R[:, : 2 * U], R[:, 2 * U :]
    HM = np.empty_like(M)  # h * M of one step
    for t in range(T):
        h = recurrent_input(H[t], M, HM, b0, b1)
        gemm(False, False, 1.0, h[b0:b1], R_zr, 1.0, A[t, b0:b1, : 2 * U])  # z and r see h directly
        for b in range(b0, b1):
            a_z, a_r, h_in, rh = A[t, b, :U], A[t, b, U : 2 * U], h[b], RH[t, b]
            for j in range(U):
                z = gate(gate_code, a_z[j])
                r = gate(gate_code, a_r[j])
                a_z[j], a_r[j] = z, r
                rh[j] = r * h_in[j]
        gemm(False, False, 1.0, RH[t, b0:b1], R_h, 1.0, A[t, b0:b1, 2 * U :])  # the candidate sees r * h
        for b in range(b0, b1):
            z_, a_h, h_prev, h_new = A[t, b, :U], A[t, b, 2 * U :], H[t, b], H[t + 1, b]
            for j in range(U):
                z = z_[j]
                hh = tanh(a_h[j])
                a_h[j] = hh
                h_new[j] = z * h_prev[j] + (one - z) * hh
        emit_step(t, mask, output_mode, H, outputs, b0, b1)


@jit(depends=[common])
def backward_reset_before(G, H, R, M, d_outputs, mask, carry_output, first, last, d_h, dMX,
                          state_grad_h, add_output, gate_code, b0, b1):
    """Walk steps ``last`` down to ``first`` of the reset-before GRU for samples b0..b1-1.

    As `backward_reset_after`, with one pre-activation gradient dMX
    (T, B, 3U): the recurrent product of the h block is (r h) R_h, whose
    gradient the host forms from RH.  M: as in the forward.
    """
    U = d_h.shape[1]
    zero, one = d_h.dtype.type(0), d_h.dtype.type(1)
    R_zr, R_h = R[:, : 2 * U], R[:, 2 * U :]
    d_carry, d_cell_out, d_h_prev = backward_buffers(d_h)
    d_rh = np.zeros_like(d_h)
    d_h_in = np.zeros_like(d_h)  # gradient on h * M, what the recurrent products saw
    HM = np.empty_like(M)
    for t in range(last, first - 1, -1):
        output_gradient(t, mask, carry_output, d_outputs, d_carry, d_cell_out, b0, b1)
        for b in range(b0, b1):
            keep = mask[t, b]
            z_, hh_ = G[t, b, :U], G[t, b, 2 * U :]
            dmx_z, dmx_h = dMX[t, b, :U], dMX[t, b, 2 * U :]
            h_prev, dh_b, d_out, dh_prev = H[t, b], d_h[b], d_cell_out[b], d_h_prev[b]
            sg_h = state_grad_h[t, b]
            for j in range(U):
                sg_h[j] += (dh_b[j] + d_out[j]) if add_output else dh_b[j]
                z, hh = z_[j], hh_[j]
                g = d_out[j] + (dh_b[j] if keep else zero)
                dmx_z[j] = g * (h_prev[j] - hh)  # d_z for now; d_pre_z below
                dmx_h[j] = g * (one - z) * (one - hh * hh)
                dh_prev[j] = g * z
        gemm(False, True, 1.0, dMX[t, b0:b1, 2 * U :], R_h, 0.0, d_rh[b0:b1])  # d(r h) = d_pre_hh R_h^T
        h = recurrent_input(H[t], M, HM, b0, b1)
        for b in range(b0, b1):
            z_, r_ = G[t, b, :U], G[t, b, U : 2 * U]
            dmx_z, dmx_r = dMX[t, b, :U], dMX[t, b, U : 2 * U]
            h_in, drh, dh_in = h[b], d_rh[b], d_h_in[b]
            for j in range(U):
                z, r = z_[j], r_[j]
                dh_in[j] = drh[j] * r
                dmx_z[j] = dmx_z[j] * gate_grad(gate_code, z)
                dmx_r[j] = drh[j] * h_in[j] * gate_grad(gate_code, r)
        gemm(False, True, 1.0, dMX[t, b0:b1, : 2 * U], R_zr, 1.0, d_h_in[b0:b1])  # d(h M) += d_zr R_zr^T
        add_recurrent_gradient(d_h_in, M, d_h_prev, b0, b1)  # dh = g z + d(h M) M
        step_state_gradient(t, mask, d_h_prev, d_h, b0, b1)


class GRUAdapter(host.ProductCellAdapter):
    """Gates z, r, hh in A (T, B, 3U); either reset variant."""

    required_activations = {"activation": "tanh", "recurrent_activation": GATE_ACTIVATIONS}

    def forward(self, cell, x, states, mask, mode, recurrent_mask):
        T, B, _ = x.shape
        b_in, b_rec = cell.input_and_recurrent_bias()
        A = host.project(x, cell.kernel, b_in if cell.use_bias else None)  # (T, B, 3U)
        H = host.state_sequence(states[0], T)
        outputs = host.MEMORY.empty(H[1:].shape, H.dtype)
        extra = host.MEMORY.empty(H[1:].shape, H.dtype)  # mh_h (reset after) or r * h (reset before)
        R, b_rec, M = host.writable(cell.recurrent_kernel), host.writable(b_rec), recurrent_mask
        gate_code = ACTIVATION_CODES[cell.recurrent_activation.name]
        if cell.reset_after:
            block = lambda b0, b1: forward_reset_after(A, R, b_rec, M, H, extra, outputs, mask, mode, gate_code, b0, b1)
        else:
            block = lambda b0, b1: forward_reset_before(A, R, M, H, extra, outputs, mask, mode, gate_code, b0, b1)
        host.over_samples(block, B, T, R)
        return host.CellRun(x, mask, outputs, [H], A, extra, M)

    def new_d_pre(self, cell, run):
        """dMX (gradient of x K + b_in), and for reset_after also dMH (of h R + b_rec)."""
        return [host.zeros_like(run.gates) for _ in range(2 if cell.reset_after else 1)]

    def sweep(self, cell, run, d_outputs, d_states, first, last, d_pre, state_grads, add_output, carry):
        R, H, M = host.writable(cell.recurrent_kernel), run.states[0], run.recurrent_mask
        gate_code = ACTIVATION_CODES[cell.recurrent_activation.name]
        if cell.reset_after:
            block = lambda b0, b1: backward_reset_after(
                run.gates, H, run.extra, R, M, d_outputs, run.mask, carry, first, last, d_states[0], d_pre[0],
                d_pre[1], state_grads[0], add_output, gate_code, b0, b1)
        else:
            block = lambda b0, b1: backward_reset_before(
                run.gates, H, R, M, d_outputs, run.mask, carry, first, last, d_states[0], d_pre[0], state_grads[0],
                add_output, gate_code, b0, b1)
        host.over_samples(block, run.x.shape[1], last - first + 1, R)

    def weight_grads(self, cell, run, d_pre, per_step=False):
        dMX, h_prev = d_pre[0], host.recurrent_inputs(run)  # h_prev as the recurrent products saw it
        kernel_grads = host.weight_products([run.x], dMX, cell.use_bias, per_step)  # dK (, db_in)
        if cell.reset_after:
            recurrent_grads = host.weight_products([h_prev], d_pre[1], cell.use_bias, per_step)  # dR (, db_rec)
            grads = [kernel_grads[0], recurrent_grads[0]]
            if cell.use_bias:
                grads.append(np.stack([kernel_grads[1], recurrent_grads[1]], axis=-2))
            return grads
        U = cell.units  # z and r multiply h; the candidate block multiplies r * h (RH)
        dR = np.concatenate([host.products(h_prev, dMX[..., : 2 * U], per_step),
                             host.products(run.extra, dMX[..., 2 * U :], per_step)], axis=-1)
        return [kernel_grads[0], dR] + kernel_grads[1:]


adapter = GRUAdapter()
