"""SimpleRNNCell on the CPU: the time loops of ``cell.py``'s equation as ``@njit`` kernels.

The host (`rnnlab.backends.numba.host`, through `adapter` below) computes
``A = X K + b`` for every timestep before `forward`, and the weight
gradients (one GEMM) and input gradients (another) after `backward`.  Each step here adds
``h R`` into A with BLAS gemm (no allocation) and applies the activation in a
loop that vectorizes.  The activation arrives as an integer code
(`rnnlab.backends.numba.common.ACTIVATION_CODES`).

Samples never interact, so each kernel runs the samples ``b0 <= b < b1``
only: the host runs blocks of samples in threads (the kernels release the GIL).

Layouts: T steps, B samples, U units.
"""

import numpy as np

from ... import activations
from ...backends.numba import common, host
from ...backends.numba.blas import gemm
from ...backends.numba.common import (ACTIVATION_CODES, activate, activation_grad, backward_buffers, emit_step,
                                      mask_recurrent_gradient, output_gradient, recurrent_input, step_state_gradient)
from ...backends.numba.jit import jit


@jit(depends=[common])
def forward(A, R, M, H, outputs, mask, output_mode, activation, b0, b1):
    """Run T steps of ``h' = act(x K + (h * M) R + b)`` for samples b0..b1-1.

    A: (T, B, U) holds x_t K + b on entry and the pre-activations on exit.
    R: (U, U).  M: (B, U) recurrent dropout mask, or (0, U) for none.
    H: (T+1, B, U); H[0] holds the initial state, H[t+1]
    receives the state after step t.  outputs: (T, B, U); mask: (T, B) bool.
    """
    T, _, U = A.shape
    HM = np.empty_like(M)  # h * M of one step
    for t in range(T):
        h = recurrent_input(H[t], M, HM, b0, b1)
        gemm(False, False, 1.0, h[b0:b1], R, 1.0, A[t, b0:b1])  # a += h_{t-1} R, in place
        for b in range(b0, b1):
            a, h_new = A[t, b], H[t + 1, b]  # 1-D views: loops over views vectorize
            for j in range(U):
                h_new[j] = activate(activation, a[j])
        emit_step(t, mask, output_mode, H, outputs, b0, b1)


@jit(depends=[common])
def backward(A, H, R, M, d_outputs, mask, carry_output, first, last, d_h, dA, state_grad_h, add_output,
             activation, b0, b1):
    """Walk steps ``last`` down to ``first`` for samples b0..b1-1, as ``SimpleRNNCell.backward`` does one step.

    A: (T, B, U) pre-activations.  H: (T+1, B, U) states.  R: (U, U).  M: as in `forward`.
    d_outputs: (T, B, U).  d_h: (B, U), the gradient on the state after step
    ``last`` on entry and on the state entering step ``first`` on exit.
    dA: (T, B, U) receives the pre-activation gradients of steps first..last.
    state_grad_h: (T, B, U) accumulates dL/dh_t (with the output's gradient if ``add_output``).
    """
    U = d_h.shape[1]
    zero = d_h.dtype.type(0)
    d_carry, d_cell_out, d_h_prev = backward_buffers(d_h)
    for t in range(last, first - 1, -1):
        output_gradient(t, mask, carry_output, d_outputs, d_carry, d_cell_out, b0, b1)
        for b in range(b0, b1):
            keep = mask[t, b]
            a, h_new, da = A[t, b], H[t + 1, b], dA[t, b]
            dh_b, d_out, sg_h = d_h[b], d_cell_out[b], state_grad_h[t, b]
            for j in range(U):
                sg_h[j] += (dh_b[j] + d_out[j]) if add_output else dh_b[j]
                # a masked sample's h_new is the carried state, but its gradient here is zero
                g = d_out[j] + (dh_b[j] if keep else zero)
                da[j] = g * activation_grad(activation, a[j], h_new[j])
        gemm(False, True, 1.0, dA[t, b0:b1], R, 0.0, d_h_prev[b0:b1])  # dh = da R^T
        mask_recurrent_gradient(d_h_prev, M, b0, b1)
        step_state_gradient(t, mask, d_h_prev, d_h, b0, b1)


class SimpleRNNAdapter(host.ProductCellAdapter):
    """Pre-activations in A (T, B, U); any activation in ACTIVATION_CODES; the default weight gradients."""

    def unsupported(self, cell):
        name = cell.activation.name
        if name not in ACTIVATION_CODES or cell.activation is not activations.get(name):
            return f"the SimpleRNN kernel implements the activations {sorted(ACTIVATION_CODES)}, got {name!r}"
        return None

    def forward(self, cell, x, states, mask, mode, recurrent_mask):
        T, B, _ = x.shape
        A = host.project(x, cell.kernel, cell.bias if cell.use_bias else None)  # (T, B, U)
        H = host.state_sequence(states[0], T)
        outputs = host.MEMORY.empty(H[1:].shape, H.dtype)
        R, M, code = host.writable(cell.recurrent_kernel), recurrent_mask, ACTIVATION_CODES[cell.activation.name]
        host.over_samples(lambda b0, b1: forward(A, R, M, H, outputs, mask, mode, code, b0, b1), B, T, R)
        return host.CellRun(x, mask, outputs, [H], A, recurrent_mask=M)

    def sweep(self, cell, run, d_outputs, d_states, first, last, d_pre, state_grads, add_output, carry):
        R, code = host.writable(cell.recurrent_kernel), ACTIVATION_CODES[cell.activation.name]
        host.over_samples(lambda b0, b1: backward(
            run.gates, run.states[0], R, run.recurrent_mask, d_outputs, run.mask, carry, first, last, d_states[0], d_pre[0],
            state_grads[0], add_output, code, b0, b1), run.x.shape[1], last - first + 1, R)


adapter = SimpleRNNAdapter()
