"""What every CPU cell kernel shares: activations per dtype, and masking.

Activations, as scalar functions for ``@njit`` loops:

* float32: `rnnlab.backends.numba.fastmath`'s rational ``tanh``/``sigmoid``
  (a few ulp, and the gate loops vectorize);
* float64: ``math.tanh`` and the same split ``exp`` sigmoid as
  `rnnlab.activations`.  float64 is the dtype of gradient checks and of
  the tests that compare whole training curves between backends, so it stays
  within an ulp of the python backend (about 1e-16 per step) instead of
  trading accuracy for speed.

``SimpleRNNCell`` may use any built-in activation; its kernels receive the
activation as an integer code (`ACTIVATION_CODES`).

Recurrent dropout: a kernel gets the call's recurrent mask M (B, U), or an
empty (0, U) array for none (`rnnlab.backends.numba.host.kernel_mask`).
The recurrent products see ``h * M`` (`recurrent_input`), and the
gradient that flows back through them to h is multiplied by M
(`mask_recurrent_gradient`, `add_recurrent_gradient`).  Without a
mask these helpers do nothing, so the loops run as before.

Masking: at a masked step every state carries over, and the output repeats
the previous output (`REPEAT`), is zero (`ZERO`, for
``zero_output_for_mask``) or is the cell's own output (`RAW`: a cell
that feeds the next cell of a ``StackedRNNCells`` passes its output on
unmasked, exactly as the stacked python step does; the stack's mask then
applies to the last cell).
"""

import math

import numpy as np

from numba import njit, types
from numba.extending import overload

from ... import activations
from . import fastmath
from .jit import SCALAR_OPTIONS

__all__ = ["tanh", "sigmoid", "ACTIVATION_CODES", "GATE_ACTIVATIONS", "activate", "activation_grad", "output_grad", "gate", "gate_grad", "REPEAT", "ZERO", "RAW",
           "copy_rows", "carry_masked_states", "mask_outputs", "emit_step", "backward_buffers", "output_gradient",
           "step_state_gradient", "recurrent_input", "mask_recurrent_gradient", "add_recurrent_gradient"]

#: What a masked step outputs (see the module docstring).
REPEAT, ZERO, RAW = 0, 1, 2

#: The activations the kernels implement, by code: SimpleRNN's activation any of them,
#: the LSTM's and GRU's recurrent activation one of `GATE_ACTIVATIONS`, and the
#: candidate activation of minGRU and minLSTM one of ``activations.CANDIDATE_ACTIVATIONS``.
ACTIVATION_CODES = {"tanh": 0, "sigmoid": 1, "relu": 2, "hard_sigmoid": 3, "linear": 4, "hard_sigmoid_keras3": 5,
                    "g": 6}
GATE_ACTIVATIONS = activations.GATE_ACTIVATIONS


def tanh(x):
    """tanh for @njit code: fast in float32, exact (``math.tanh``) in float64."""
    return fastmath.tanh(x)


def sigmoid(x):
    """1 / (1 + exp(-x)) for @njit code: fast in float32, exact in float64."""
    return fastmath.sigmoid(x)


def _exact_sigmoid(x):
    # As rnnlab.activations: exp(-|x|) never overflows.
    e = math.exp(-abs(x))
    return 1.0 / (1.0 + e) if x >= 0 else e / (1.0 + e)


@overload(tanh, jit_options=SCALAR_OPTIONS)
def _overload_tanh(x):
    if x == types.float32:
        return lambda x: fastmath.tanh(x)
    if x == types.float64:
        return lambda x: math.tanh(x)
    return None


@overload(sigmoid, jit_options=SCALAR_OPTIONS)
def _overload_sigmoid(x):
    if x == types.float32:
        return lambda x: fastmath.sigmoid(x)
    if x == types.float64:
        return _exact_sigmoid
    return None


@njit(inline="always")
def activate(code, x):
    """The activation with ``code`` (see `ACTIVATION_CODES`) at x, in x's dtype."""
    zero, one = type(x)(0), type(x)(1)  # constants in x's dtype keep float32 math in float32
    if code == 0:
        return tanh(x)
    if code == 1:
        return sigmoid(x)
    if code == 2:
        return max(x, zero)
    if code == 3:  # tf.keras 2's hard sigmoid
        return min(max(x * type(x)(0.2) + type(x)(0.5), zero), one)
    if code == 5:  # Keras 3's
        return min(max(x / type(x)(6) + type(x)(0.5), zero), one)
    if code == 6:  # minGRU's and minLSTM's positive g
        return x + type(x)(0.5) if x >= zero else sigmoid(x)
    return x


@njit(inline="always")
def activation_grad(code, x, y):
    """d act / dx at pre-activation x with output y = act(x), as rnnlab.activations writes it."""
    zero, one = type(x)(0), type(x)(1)
    if code == 0:
        return one - y * y
    if code == 1:
        return y * (one - y)
    if code == 2:
        return one if x > zero else zero
    return output_grad(code, y)


@njit(inline="always")
def gate(code, x):
    """A gate's activation (code 1, 3 or 5 of `ACTIVATION_CODES`) at x, without branches.

    Every candidate is computed and one is selected, so the gate loops of the
    LSTM and GRU kernels stay straight-line code that vectorizes (a branch on
    ``code`` in the loop made them 30% slower).
    """
    zero, one, half = type(x)(0), type(x)(1), type(x)(0.5)
    smooth = sigmoid(x)
    linear = x * type(x)(0.2) if code == 3 else x / type(x)(6)  # tf.keras 2's slope, or Keras 3's
    hard = min(max(linear + half, zero), one)
    return smooth if code == 1 else hard


@njit(inline="always")
def gate_grad(code, s):
    """d gate / dx written with the gate's output s, without branches (see `gate`)."""
    zero, one = type(s)(0), type(s)(1)
    slope = type(s)(0.2) if code == 3 else type(s)(1 / 6)
    inside = slope if zero < s < one else zero
    return s * (one - s) if code == 1 else inside


@njit(inline="always")
def output_grad(code, y):
    """d act / dx written with the output y alone: every activation but relu (a gate's derivative)."""
    zero, one = type(y)(0), type(y)(1)
    if code == 0:
        return one - y * y
    if code == 1:
        return y * (one - y)
    if code == 3:
        return type(y)(0.2) if zero < y < one else zero
    if code == 5:
        return type(y)(1 / 6) if zero < y < one else zero
    if code == 6:  # y >= 1/2 exactly where x >= 0
        return one if y >= type(y)(0.5) else y * (one - y)
    return one


# The helpers below run once per step.  They are inlined into each kernel (a call per
# step is measurable when a step takes 0.2 us), and written as explicit loops: slice
# assignments such as S[t + 1, b, :] = S[t, b, :] take seconds longer to compile.
# Each works on the samples b0 <= b < b1: the kernels run blocks of samples in threads.


@njit(inline="always")
def copy_rows(src, dst, b0, b1):
    """dst[b0:b1] = src[b0:b1] for two (B, U) arrays."""
    for b in range(b0, b1):
        for j in range(src.shape[1]):
            dst[b, j] = src[b, j]


@njit(inline="always")
def carry_masked_states(t, mask, S, b0, b1):
    """States after step t of masked samples are the states before it: S[t+1, b] = S[t, b].

    mask: (T, B) bool; S: (T+1, B, U) with S[0] the initial state.
    """
    for b in range(b0, b1):
        if not mask[t, b]:
            for j in range(S.shape[2]):
                S[t + 1, b, j] = S[t, b, j]


@njit(inline="always")
def mask_outputs(t, mask, mode, outputs, b0, b1):
    """Masked samples' outputs at step t: the previous output (REPEAT), zeros (ZERO) or kept (RAW).

    outputs: (T, B, O), already holding the cell's raw outputs of step t.
    """
    if mode == RAW:
        return
    zero = outputs.dtype.type(0)
    for b in range(b0, b1):
        if not mask[t, b]:
            repeat = mode == REPEAT and t > 0
            for j in range(outputs.shape[2]):
                outputs[t, b, j] = outputs[t - 1, b, j] if repeat else zero


@njit(inline="always")
def emit_step(t, mask, output_mode, H, outputs, b0, b1):
    """The end of forward step t for a cell whose output is its state h: outputs[t] = h, then the masking.

    H: (T+1, B, U) states, H[t + 1] just written by the step; outputs: (T, B, U).
    """
    copy_rows(H[t + 1], outputs[t], b0, b1)
    carry_masked_states(t, mask, H, b0, b1)
    mask_outputs(t, mask, output_mode, outputs, b0, b1)


@njit(inline="always")
def backward_buffers(d_h):
    """(d_carry, d_cell_out, d_h_prev), each zeros like d_h (B, U): the scratch of every backward loop.

    d_carry: gradient on an output that later masked steps repeated; d_cell_out:
    gradient on the cell's own output at this step; d_h_prev: gradient on the
    state entering this step, before the masking.
    """
    return np.zeros_like(d_h), np.zeros_like(d_h), np.zeros_like(d_h)


@njit(inline="always")
def output_gradient(t, mask, carry_output, d_outputs, d_carry, d_cell_out, b0, b1):
    """The gradient reaching the cell's output at step t, backwards through the masking.

    d_outputs: (T, B, O) gradients on the emitted outputs.  d_carry (B, O):
    gradient on an output that later masked steps repeated; updated in place.
    d_cell_out (B, O) receives the gradient on the cell's own output: zero for
    masked samples, whose emitted output was not the cell's.
    """
    zero = d_carry.dtype.type(0)
    for b in range(b0, b1):
        keep = mask[t, b]
        for j in range(d_carry.shape[1]):
            d = d_outputs[t, b, j] + d_carry[b, j]
            d_cell_out[b, j] = d if keep else zero
            d_carry[b, j] = zero if keep or not carry_output else d


@njit(inline="always")
def step_state_gradient(t, mask, d_prev, d_state, b0, b1):
    """d_state <- d_prev, the gradient on the state entering step t; masked samples add their own.

    A masked sample's state passed through step t unchanged, so its gradient
    passes straight through too (its cell gradient d_prev is zero).  Both (B, S).
    """
    for b in range(b0, b1):
        keep = mask[t, b]
        for j in range(d_state.shape[1]):
            d_state[b, j] = d_prev[b, j] if keep else d_prev[b, j] + d_state[b, j]


@njit(inline="always")
def recurrent_input(h, M, HM, b0, b1):
    """What a recurrent product multiplies: h (B, U) itself, or ``h * M`` written into HM (B, U).

    M: the recurrent dropout mask (B, U), or (0, U) for none (then HM is (0, U) too).
    """
    if M.shape[0] == 0:
        return h
    for b in range(b0, b1):
        for j in range(h.shape[1]):
            HM[b, j] = h[b, j] * M[b, j]
    return HM


@njit(inline="always")
def mask_recurrent_gradient(d, M, b0, b1):
    """d (B, U), the gradient on h * M, becomes the gradient on h: d *= M in place (nothing without a mask)."""
    if M.shape[0] == 0:
        return
    for b in range(b0, b1):
        for j in range(d.shape[1]):
            d[b, j] *= M[b, j]


@njit(inline="always")
def add_recurrent_gradient(d_h_in, M, d_h, b0, b1):
    """d_h += d_h_in * M: the gradient on h * M (B, U) added to h's (B, U); d_h += d_h_in without a mask."""
    for b in range(b0, b1):
        if M.shape[0] == 0:
            for j in range(d_h.shape[1]):
                d_h[b, j] += d_h_in[b, j]
        else:
            for j in range(d_h.shape[1]):
                d_h[b, j] += d_h_in[b, j] * M[b, j]
