"""Keras masking on the GPU, as device functions that every schedule calls.

The rule (as the python backend, `rnnlab.backends.python.scan`): at a
masked step (``mask[t, b] == 0``) the states carry over unchanged and the
output repeats the previous output (zeros before the first step), or is zeros
with ``zero_output_for_mask``.  Its backward: a masked step passes its state
gradient straight through, the cell step there sees no gradient, and the
output gradient of a repeated output flows back to the step that produced it
(the ``carry``; nothing flows with ``zero_output_for_mask``).

Each function works on one unit ``u`` of one batch row ``b``.  ``zero`` is
the kernel's dtype-exact zero (see `scalar_math`),
passed in so that a float32 kernel stays float32.
"""

from numba import cuda


@cuda.jit(device=True)
def step_is_real(mask, has_mask, t, b):
    """True unless a mask is given and ``mask[t, b] == 0``."""
    if has_mask:
        return mask[t, b] != 0
    return True


@cuda.jit(device=True)
def masked_forward(mask, has_mask, zero_output, out, t, b, u, h_prev, c_prev, h_new, c_new, zero):
    """Write ``out[t, b, u]`` and return the states after step t, ``(h, c)``.

    A real step outputs h_new and keeps the cell's new states; a masked one
    keeps h_prev, c_prev and repeats ``out[t - 1, b, u]`` (zeros at t = 0, or
    always with ``zero_output``).
    """
    # the test written out, not step_is_real(): ptxas then gives the LSTM kernel 54 registers, not 64
    keep = True
    if has_mask:
        keep = mask[t, b] != 0
    if keep:
        o = h_new
    else:
        h_new = h_prev
        c_new = c_prev
        o = zero
        if not zero_output and t > 0:
            o = out[t - 1, b, u]
    out[t, b, u] = o
    return h_new, c_new


@cuda.jit(device=True)
def masked_backward(keep, carries_output, d_o, dh, dc, zero):
    """What the cell's backward sees at step t: ``(gh, gc, d_state, carry)``.

    d_o: dL/d(output t), including what later masked steps carried back;
    dh, dc: dL/dh_t and dL/dc_t from later steps.  Returns gh = dL/dh_new and
    gc = dL/dc_new for the cell step (zero at a masked step), d_state =
    dL/dh_t with every path (for ``state_grads``), and the output gradient to
    carry to step t - 1.
    """
    if keep:
        gh = d_o + dh
        return gh, dc, gh, zero
    return zero, zero, dh, d_o if carries_output else zero


@cuda.jit(device=True)
def masked_passthrough(keep, dh_direct, dc_prev, dh, dc):
    """The cell backward's ``(dh_direct, dc_prev)``, plus the state gradient that a masked step passes through."""
    if keep:
        return dh_direct, dc_prev
    return dh_direct + dh, dc_prev + dc
