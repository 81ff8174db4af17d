"""LSTMCell on the CPU: the time loops of ``cell.py``'s equations as ``@njit`` kernels.

The host side (:mod:`rnnlab.kernels.numba_backend`) does the big matrix
products with NumPy: ``A = X K + b`` for every timestep at once before
:func:`forward`, and ``dK = X^T dA``, ``dR = H^T dA``, ``db``, ``dX = dA K^T``
after :func:`backward`.  What is left is sequential, and runs here:

* one BLAS gemm per step, ``a += h R``, written into memory allocated
  before the loop (nothing is allocated inside it);
* one fused loop over the gates that vectorizes (rational tanh/sigmoid in
  float32, see :mod:`rnnlab.kernels.common`).

Layouts: T steps, B samples, U units.  Gate order i, f, g (= c~), o, as in
Keras; ``A[t, b, k*U + j]`` is gate k of unit j.
"""

import numpy as np

from ...kernels import common
from ...kernels.blas import gemm
from ...kernels.common import carry_masked_states, mask_outputs, output_gradient, sigmoid, tanh
from ...kernels.jit import kernel


@kernel(depends=[common])
def forward(A, R, H, C, outputs, mask, output_mode):
    """Run T steps: the gates overwrite A, states and outputs fill H, C and outputs.

    A: (T, B, 4U) holds x_t K + b on entry and the gates i, f, g, o on exit.
    R: (U, 4U) recurrent kernel.
    H, C: (T+1, B, U); entry [0] holds the initial h and c, entry t+1 receives the states after step t.
    outputs: (T, B, U) receives the outputs (masked as ``output_mode`` says).
    mask: (T, B) bool, True where the step is real.
    """
    T, B = A.shape[0], A.shape[1]
    U = H.shape[2]
    for t in range(T):
        a = A[t]  # (B, 4U)
        gemm(False, False, 1.0, H[t], R, 1.0, a)  # a += h_{t-1} R, in place
        c_prev, c_new, h_new, out = C[t], C[t + 1], H[t + 1], outputs[t]
        for b in range(B):
            for j in range(U):
                i = sigmoid(a[b, j])
                f = sigmoid(a[b, U + j])
                g = tanh(a[b, 2 * U + j])
                o = sigmoid(a[b, 3 * U + j])
                a[b, j], a[b, U + j], a[b, 2 * U + j], a[b, 3 * U + j] = i, f, g, o
                c = f * c_prev[b, j] + i * g
                h = o * tanh(c)
                c_new[b, j] = c
                h_new[b, j] = h
                out[b, j] = h
        carry_masked_states(t, mask, H)
        carry_masked_states(t, mask, C)
        mask_outputs(t, mask, output_mode, outputs)


@kernel(depends=[common])
def backward(G, C, R, d_outputs, mask, carry_output, first, last, d_h, d_c, dA,
             state_grad_h, state_grad_c, add_output):
    """Walk steps ``last`` down to ``first``, as ``LSTMCell.backward`` does one step.

    G: (T, B, 4U) the gates from :func:`forward`.  C: (T+1, B, U) cell states.
    R: (U, 4U).  d_outputs: (T, B, U) gradients on the emitted outputs.
    carry_output: masked steps repeated the previous output (REPEAT mode).
    d_h, d_c: (B, U) gradients on the states after step ``last`` on entry,
    on the states entering step ``first`` on exit.
    dA: (T, B, 4U) receives the pre-activation gradients of steps first..last.
    state_grad_h, state_grad_c: (T, B, U) accumulate dL/dh_t and dL/dc_t;
    ``add_output`` adds the output's gradient to dL/dh_t (the output is h).
    """
    B, U = d_h.shape
    zero = d_h.dtype.type(0)
    one = d_h.dtype.type(1)
    d_carry = np.zeros_like(d_h)  # (B, U) gradient on an output that later masked steps repeated
    d_cell_out = np.zeros_like(d_h)  # (B, U) gradient on the cell's own output
    d_h_prev = np.zeros_like(d_h)
    for t in range(last, first - 1, -1):
        output_gradient(t, mask, carry_output, d_outputs, d_carry, d_cell_out)
        g_t, da, c_prev, c_new = G[t], dA[t], C[t], C[t + 1]
        for b in range(B):
            keep = mask[t, b]
            for j in range(U):
                d_new_h = d_h[b, j] if keep else zero
                d_new_c = d_c[b, j] if keep else zero
                state_grad_h[t, b, j] += d_h[b, j]
                state_grad_c[t, b, j] += d_c[b, j]
                if add_output:
                    state_grad_h[t, b, j] += d_cell_out[b, j]
                i, f, g, o = g_t[b, j], g_t[b, U + j], g_t[b, 2 * U + j], g_t[b, 3 * U + j]
                act_c = tanh(c_new[b, j])
                dh = d_cell_out[b, j] + d_new_h
                dc = d_new_c + dh * o * (one - act_c * act_c)
                da[b, j] = dc * g * (i * (one - i))
                da[b, U + j] = dc * c_prev[b, j] * (f * (one - f))
                da[b, 2 * U + j] = dc * i * (one - g * g)
                da[b, 3 * U + j] = dh * act_c * (o * (one - o))
                # masked samples pass their state gradient straight through
                d_c[b, j] = dc * f + (zero if keep else d_c[b, j])
        gemm(False, True, 1.0, da, R, 0.0, d_h_prev)  # dh = da R^T
        for b in range(B):
            if not mask[t, b]:
                d_h_prev[b, :] += d_h[b, :]
        d_h[:, :] = d_h_prev
