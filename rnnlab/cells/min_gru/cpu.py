"""MinGRUCell on the CPU: the time loop of ``cell.py``'s equations as ``@njit`` kernels.

The gate and the candidate see only the input, so the host (`rnnlab.backends.numba.host`,
through `adapter` below) computes all of them before the loop: ``A = X K + b``,
one GEMM.  What is left per step is elementwise, with no matrix product:
``h' = (1 - z) h + z hh``.  After `backward` the host forms
``dK = X^T dA`` and ``db = sum dA`` (one GEMM) and ``dX = dA K^T`` (another).

The candidate's activation arrives as an integer code
(`rnnlab.backends.numba.common.ACTIVATION_CODES`), one of
``activations.CANDIDATE_ACTIVATIONS``, whose derivatives are read off their outputs.

Layouts: T steps, B samples, U units.  Blocks z, h~; ``A[t, b, k*U + j]`` is block k of unit j.
"""

from ...backends.numba import common, host
from ...backends.numba.common import (activate, backward_buffers, emit_step, output_grad,
                                      output_gradient, sigmoid, step_state_gradient)
from ...backends.numba.jit import jit


@jit(depends=[common])
def forward(A, H, outputs, mask, output_mode, code, b0, b1):
    """Run T steps of ``h' = (1 - z) h + z hh`` for samples b0..b1-1.

    A: (T, B, 2U) holds x_t K + b on entry and the gates z, hh on exit.
    H: (T+1, B, U); H[0] holds the initial state, H[t+1] receives the state after step t.
    outputs: (T, B, U); mask: (T, B) bool.  code: the candidate's activation code.
    """
    T = A.shape[0]
    U = H.shape[2]
    one = A.dtype.type(1)
    for t in range(T):
        for b in range(b0, b1):
            # 1-D views (loops over views vectorize); the gates overwrite the pre-activations
            a_z, a_h, h_prev, h_new = A[t, b, :U], A[t, b, U:], H[t, b], H[t + 1, b]
            for j in range(U):
                z = sigmoid(a_z[j])
                hh = activate(code, a_h[j])
                a_z[j], a_h[j] = z, hh
                h_new[j] = (one - z) * h_prev[j] + z * hh
        emit_step(t, mask, output_mode, H, outputs, b0, b1)


@jit(depends=[common])
def backward(G, H, d_outputs, mask, carry_output, first, last, d_h, dA, state_grad_h, add_output, code, b0, b1):
    """Walk steps ``last`` down to ``first`` for samples b0..b1-1, as ``MinGRUCell.backward`` does one step.

    G: (T, B, 2U) the gates z, hh.  H: (T+1, B, U) states.  d_outputs: (T, B, U).
    d_h: (B, U), the gradient on the state after step ``last`` on entry and on
    the state entering step ``first`` on exit.
    dA: (T, B, 2U) receives the pre-activation gradients of steps first..last.
    state_grad_h: (T, B, U) accumulates dL/dh_t (with the output's gradient if ``add_output``).
    """
    U = d_h.shape[1]
    zero, one = d_h.dtype.type(0), d_h.dtype.type(1)
    d_carry, d_cell_out, d_h_prev = backward_buffers(d_h)
    for t in range(last, first - 1, -1):
        output_gradient(t, mask, carry_output, d_outputs, d_carry, d_cell_out, b0, b1)
        for b in range(b0, b1):
            keep = mask[t, b]
            z_, hh_, da_z, da_h = G[t, b, :U], G[t, b, U:], dA[t, b, :U], dA[t, b, U:]
            h_prev, dh_b, d_out, dh_prev, sg_h = H[t, b], d_h[b], d_cell_out[b], d_h_prev[b], state_grad_h[t, b]
            for j in range(U):
                sg_h[j] += (dh_b[j] + d_out[j]) if add_output else dh_b[j]
                z, hh = z_[j], hh_[j]
                g = d_out[j] + (dh_b[j] if keep else zero)
                da_z[j] = g * (hh - h_prev[j]) * z * (one - z)
                da_h[j] = g * z * output_grad(code, hh)
                dh_prev[j] = g * (one - z)  # the only path back to h: no recurrent kernel
        step_state_gradient(t, mask, d_h_prev, d_h, b0, b1)


adapter = host.CandidateLoopsAdapter(forward, backward)
