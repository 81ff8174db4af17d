"""Real-time recurrent learning: the exact gradient, carried forward in time.

BPTT stores the whole trajectory and walks it backwards.  RTRL instead carries
the *influence matrix* M_t = ds_t/dtheta (how the current state depends on
every weight) forward, one step at a time:

```text
    M_t = J_t M_{t-1} + I_t        J_t = ds_t/ds_{t-1},  I_t = the step's own ds_t/dtheta
    dL/dtheta = sum_t (dL/dy_t) (dy_t/ds_t) M_t        (y_t is the output part of s_t)
```

No history is stored, so the gradient is available online at every step.  The
price is memory S x P and time S^2 P per step (S state size, P number of
weights), which is why it is used only for small cells.  The result equals
full BPTT to rounding error; truncated BPTT (``rl.bptt.backward(...,
truncate=k)``) approximates it by cutting the sum over paths.
"""

import numpy as np

from .. import nest, validation

from .jacobians import step_jacobians
from .states import as_float64, joint_size, output_rows


def rtrl(cell, x, dy, initial_state=None):
    """The gradient of a loss with respect to the cell's weights by forward-mode RTRL.

    cell: a built-in cell (computed in float64).  x: (B, T, F) inputs.
    dy: (B, T, O) = dL/dy_t, the loss gradient on the output at every step
    (zeros where the loss does not look; ``return_sequences=True`` layout).
    initial_state: joint (B, S), default zeros.

    Returns a list aligned with ``cell.get_weights()``: the same numbers as
    ``rl.bptt.backward(tape, dy).weights`` for ``RNN(cell, return_sequences=True)``.
    """
    cell = as_float64(cell)
    x = validation.shaped(x, "x", ("batch", "time", cell.input_size if cell.built else "features"))
    B, T, _ = x.shape
    dy = validation.gradient(dy, "dy (dL/dy at every step)", (B, T, *nest.leaf_shape(cell.output_size)), "float64")
    dy = dy.reshape(B, T, -1)  # a TensorShape output flattened, as its state is in the joint state
    S = joint_size(cell)
    s = np.zeros((B, S)) if initial_state is None else validation.shaped(initial_state, "initial_state", (B, S))
    shapes = [w.shape for w in cell.weights]
    sizes = [int(np.prod(shape)) for shape in shapes]
    out = output_rows(cell)
    M = np.zeros((B, S, sum(sizes)))  # the influence matrix ds_t/dtheta, weights flattened
    grad = np.zeros(sum(sizes))
    for t in range(T):
        jac = step_jacobians(cell, x[:, t], s, weights=True)
        immediate = np.concatenate([w.reshape(B, S, -1) for w in jac.weights], axis=2)  # (B, S, P)
        M = jac.state @ M + immediate
        s = jac.new_state
        grad += np.einsum("bo,bop->p", dy[:, t], M[:, out])
    return [part.reshape(shape) for part, shape in zip(np.split(grad, np.cumsum(sizes)[:-1]), shapes)]
