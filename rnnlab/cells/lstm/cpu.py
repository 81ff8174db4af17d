"""LSTMCell on the CPU: the time loops of ``cell.py``'s equations as ``@njit`` kernels.

The host (`rnnlab.backends.numba.host`, through `adapter` below) does the big matrix
products: ``A = X K + b`` for every timestep at once before `forward`,
and ``dK = X^T dA``, ``dR = H^T dA``, ``db``, ``dX = dA K^T`` after
`backward`.  What is left is sequential, and runs here:

* one BLAS gemm per step, ``a += h R``, written into memory allocated
  before the loop (nothing is allocated inside it);
* one fused loop over the gates that vectorizes (rational tanh/sigmoid in
  float32, see `rnnlab.backends.numba.common`).

Samples never interact, so each kernel runs the samples ``b0 <= b < b1``
only: the host runs blocks of samples in threads (the kernels release the GIL).

Layouts: T steps, B samples, U units.  Gate order i, f, g (= c~), o, as in
Keras; ``A[t, b, k*U + j]`` is gate k of unit j.
"""

import numpy as np

from ...backends.numba import common, host
from ...backends.numba.blas import gemm
from ...backends.numba.common import (ACTIVATION_CODES, GATE_ACTIVATIONS, gate, gate_grad, backward_buffers,
                                      carry_masked_states, emit_step, mask_recurrent_gradient, output_gradient,
                                      recurrent_input, step_state_gradient, tanh)
from ...backends.numba.jit import jit


@jit(depends=[common])
def forward(A, R, M, H, C, outputs, mask, output_mode, gate_code, b0, b1):
    """Run T steps for samples b0..b1-1: the gates overwrite A; states and outputs fill H, C, outputs.

    A: (T, B, 4U) holds x_t K + b on entry and the gates i, f, g, o on exit.
    R: (U, 4U) recurrent kernel.  M: (B, U) recurrent dropout mask, or (0, U) for none;
    the recurrent product takes h * M (c is never masked).
    H, C: (T+1, B, U); entry [0] holds the initial h and c, entry t+1 receives the states after step t.
    outputs: (T, B, U) receives the outputs (masked as ``output_mode`` says).
    mask: (T, B) bool, True where the step is real.
    gate_code: the code of the recurrent activation (`ACTIVATION_CODES`).
    """
    T = A.shape[0]
    U = H.shape[2]
    HM = np.empty_like(M)  # h * M of one step
    for t in range(T):
        h = recurrent_input(H[t], M, HM, b0, b1)
        gemm(False, False, 1.0, h[b0:b1], R, 1.0, A[t, b0:b1])  # a += h_{t-1} R, in place
        for b in range(b0, b1):
            # 1-D views of one sample's row: loops over views vectorize, index arithmetic
            # such as a[b, 2 * U + j] does not.  The gates overwrite the pre-activations.
            a_i, a_f, a_g, a_o = A[t, b, :U], A[t, b, U : 2 * U], A[t, b, 2 * U : 3 * U], A[t, b, 3 * U :]
            c_prev, c_new, h_new = C[t, b], C[t + 1, b], H[t + 1, b]
            for j in range(U):
                i = gate(gate_code, a_i[j])
                f = gate(gate_code, a_f[j])
                g = tanh(a_g[j])
                o = gate(gate_code, a_o[j])
                a_i[j], a_f[j], a_g[j], a_o[j] = i, f, g, o
                c = f * c_prev[j] + i * g
                c_new[j] = c
                h_new[j] = o * tanh(c)
        carry_masked_states(t, mask, C, b0, b1)
        emit_step(t, mask, output_mode, H, outputs, b0, b1)


@jit(depends=[common])
def backward(G, C, R, M, d_outputs, mask, carry_output, first, last, d_h, d_c, dA,
             state_grad_h, state_grad_c, add_output, gate_code, b0, b1):
    """Walk steps ``last`` down to ``first`` for samples b0..b1-1, as ``LSTMCell.backward`` does one step.

    G: (T, B, 4U) the gates from `forward`.  C: (T+1, B, U) cell states.
    R: (U, 4U).  M: as in `forward`.  d_outputs: (T, B, U) gradients on the emitted outputs.
    carry_output: masked steps repeated the previous output (REPEAT mode).
    d_h, d_c: (B, U) gradients on the states after step ``last`` on entry,
    on the states entering step ``first`` on exit.
    dA: (T, B, 4U) receives the pre-activation gradients of steps first..last.
    state_grad_h, state_grad_c: (T, B, U) accumulate dL/dh_t and dL/dc_t;
    ``add_output`` adds the output's gradient to dL/dh_t (the output is h).
    """
    U = d_h.shape[1]
    zero, one = d_h.dtype.type(0), d_h.dtype.type(1)
    d_carry, d_cell_out, d_h_prev = backward_buffers(d_h)
    for t in range(last, first - 1, -1):
        output_gradient(t, mask, carry_output, d_outputs, d_carry, d_cell_out, b0, b1)
        for b in range(b0, b1):
            keep = mask[t, b]
            i_, f_, g_, o_ = G[t, b, :U], G[t, b, U : 2 * U], G[t, b, 2 * U : 3 * U], G[t, b, 3 * U :]
            da_i, da_f, da_g, da_o = dA[t, b, :U], dA[t, b, U : 2 * U], dA[t, b, 2 * U : 3 * U], dA[t, b, 3 * U :]
            c_prev, c_new, dh_b, dc_b, d_out = C[t, b], C[t + 1, b], d_h[b], d_c[b], d_cell_out[b]
            sg_h, sg_c = state_grad_h[t, b], state_grad_c[t, b]
            for j in range(U):
                sg_h[j] += (dh_b[j] + d_out[j]) if add_output else dh_b[j]
                sg_c[j] += dc_b[j]
                i, f, g, o = i_[j], f_[j], g_[j], o_[j]
                act_c = tanh(c_new[j])
                dh = d_out[j] + (dh_b[j] if keep else zero)
                dc = (dc_b[j] if keep else zero) + dh * o * (one - act_c * act_c)
                da_i[j] = dc * g * gate_grad(gate_code, i)
                da_f[j] = dc * c_prev[j] * gate_grad(gate_code, f)
                da_g[j] = dc * i * (one - g * g)
                da_o[j] = dh * act_c * gate_grad(gate_code, o)
                # masked samples pass their state gradient straight through
                dc_b[j] = dc * f + (zero if keep else dc_b[j])
        gemm(False, True, 1.0, dA[t, b0:b1], R, 0.0, d_h_prev[b0:b1])  # dh = da R^T
        mask_recurrent_gradient(d_h_prev, M, b0, b1)
        step_state_gradient(t, mask, d_h_prev, d_h, b0, b1)


class LSTMAdapter(host.ProductCellAdapter):
    """Gates i, f, g, o in A (T, B, 4U); states [h, c]; the default weight gradients."""

    required_activations = {"activation": "tanh", "recurrent_activation": GATE_ACTIVATIONS}

    def forward(self, cell, x, states, mask, mode, recurrent_mask):
        T, B, _ = x.shape
        A = host.project(x, cell.kernel, cell.bias if cell.use_bias else None)  # (T, B, 4U)
        H, C = host.state_sequence(states[0], T), host.state_sequence(states[1], T)
        outputs = host.MEMORY.empty(H[1:].shape, H.dtype)
        R, M = host.writable(cell.recurrent_kernel), recurrent_mask
        gate_code = ACTIVATION_CODES[cell.recurrent_activation.name]
        host.over_samples(lambda b0, b1: forward(A, R, M, H, C, outputs, mask, mode, gate_code, b0, b1), B, T, R)
        return host.CellRun(x, mask, outputs, [H, C], A, recurrent_mask=M)

    def sweep(self, cell, run, d_outputs, d_states, first, last, d_pre, state_grads, add_output, carry):
        R, gate_code = host.writable(cell.recurrent_kernel), ACTIVATION_CODES[cell.recurrent_activation.name]
        host.over_samples(lambda b0, b1: backward(
            run.gates, run.states[1], R, run.recurrent_mask, d_outputs, run.mask, carry, first, last, d_states[0], d_states[1],
            d_pre[0], state_grads[0], state_grads[1], add_output, gate_code, b0, b1), run.x.shape[1], last - first + 1, R)


adapter = LSTMAdapter()
