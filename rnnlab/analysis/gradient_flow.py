"""How far gradients travel back in time, read off a BPTT tape.

``rl.bptt.backward`` records dL/ds_t for the state after every step t in
``grads.state_grads`` (a flat list of (T, B, size) arrays; leaf 0 is h, and
for LSTM leaf 1 is c; a TensorShape leaf's (T, B, *dims) counts as (T, B,
size) here).  Vanishing gradients show up as norms that fall off
exponentially as t moves away from the loss; exploding ones as norms that grow.
"""

import numpy as np


def _state_grad(grads, leaf):
    state_grads = getattr(grads, "state_grads", None)
    if state_grads is None:
        raise TypeError(f"expected the Gradients returned by rl.bptt.backward, got {type(grads).__name__}")
    if not isinstance(state_grads[0], np.ndarray):
        raise ValueError("this Gradients comes from a Bidirectional layer; pass one direction's gradients, "
                         "e.g. rl.bptt.backward(tape.forward, dy_forward)")
    if isinstance(leaf, (bool, np.bool_)) or not isinstance(leaf, (int, np.integer)) \
            or not 0 <= leaf < len(state_grads):
        raise ValueError(f"leaf must be an int in [0, {len(state_grads)}) (this cell has {len(state_grads)} "
                         f"state leaves), got {leaf!r}")
    g = state_grads[leaf]
    return g.reshape(g.shape[:2] + (-1,))  # (T, B, U); a TensorShape leaf's dims flattened


def gradient_norms(grads, leaf=0):
    """||dL/dh_t|| for every step t: (T,).

    The norm is taken over units and averaged (root mean square) over the
    batch: ``sqrt(mean_b sum_u g[t, b, u]^2)``.  ``leaf`` picks the state
    (0 = h; 1 = c for LSTM).  Steps are in processing order.
    """
    g = _state_grad(grads, leaf)
    return np.sqrt(np.mean(np.sum(g * g, axis=2), axis=1))


def gradient_map(grads, leaf=0):
    """|dL/dh_t| for every step and unit: (T, U), root mean square over the batch."""
    g = _state_grad(grads, leaf)
    return np.sqrt(np.mean(g * g, axis=1))
