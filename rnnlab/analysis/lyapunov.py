"""Lyapunov spectrum by the QR (Benettin) method, and the Kaplan-Yorke dimension.

A small perturbation ds of the state grows like ``ds_T = J_T ... J_1 ds_0``.
The Lyapunov exponents are the average exponential growth rates of such
perturbations, largest first:

```text
    lambda_i = lim (1/n) log(sigma_i(J_n ... J_1))
```

Multiplying the Jacobians directly would overflow and lose all but the top
direction, so the Benettin method re-orthonormalises every step:

```text
    Q_0 = random orthonormal (S, k)
    J_t Q_{t-1} = Q_t R_t        (QR decomposition)
    lambda_i = (1/n) sum_t log|R_t[i, i]|
```

Convention: natural log, per step of the map (a discrete-time rate; no dt).
The first ``discard`` steps are a transient: the state settles on its
attractor and Q aligns with the growing directions, and neither is counted.
A positive largest exponent means chaos; all negative means the trajectory
falls onto a stable fixed point or cycle.
"""

import numpy as np

from .. import validation

from .jacobians import step_jacobians
from .states import as_float64, joint_size


def lyapunov_spectrum(cell, inputs, initial_state=None, discard=100, n_exponents=None, seed=0):
    """The k largest Lyapunov exponents along the trajectory driven by ``inputs``.

    cell: a built-in cell (computed in float64).  inputs: (T, F) or (B, T, F),
    for example ``np.zeros((T, F))`` for the autonomous network.  The
    trajectory starts at ``initial_state`` (joint (S,) or (B, S); default a
    small random state, so a network at rest at 0 still moves).  ``discard``:
    transient steps not counted (must be < T).  ``n_exponents``: k (default S).

    Returns exponents (k,) or (B, k) for batched inputs, largest first, in
    nats per step.
    """
    cell = as_float64(cell)
    F = cell.input_size if cell.built else "features"
    x = validation.shaped(inputs, "inputs", ("time", F), ("batch", "time", F))
    single = x.ndim == 2
    if single:
        x = x[None]
    B, T, _ = x.shape
    discard = validation.count(discard, "discard", minimum=0)
    if not 0 <= discard < T:
        raise ValueError(f"discard must be in [0, T) = [0, {T}), got {discard}")
    S = joint_size(cell)
    k = S if n_exponents is None else validation.count(n_exponents, "n_exponents")
    if not 1 <= k <= S:
        raise ValueError(f"n_exponents must be between 1 and the state size {S}, got {n_exponents}")
    rng = np.random.default_rng(seed)
    if initial_state is None:
        s = 0.1 * rng.standard_normal((B, S))
    else:
        s = np.broadcast_to(validation.shaped(initial_state, "initial_state", (S,), (B, S)), (B, S))
    Q = np.linalg.qr(rng.standard_normal((B, S, k)))[0]  # (B, S, k) orthonormal columns
    log_growth = np.zeros((B, k))
    with np.errstate(divide="ignore"):  # a zero Jacobian direction is a rate of -inf, honestly
        for t in range(T):
            jac = step_jacobians(cell, x[:, t], s)
            s = jac.new_state
            Q, R = np.linalg.qr(jac.state @ Q)
            if t >= discard:
                log_growth += np.log(np.abs(np.diagonal(R, axis1=1, axis2=2)))
    exponents = -np.sort(-log_growth / (T - discard), axis=1)  # descending
    return exponents[0] if single else exponents


def kaplan_yorke_dimension(exponents):
    """The Kaplan-Yorke (Lyapunov) dimension of an attractor from its exponents.

    With the exponents sorted descending and j the largest index for which
    lambda_1 + ... + lambda_j >= 0:

    ```text
        D = j + (lambda_1 + ... + lambda_j) / |lambda_{j+1}|
    ```

    D = 0 when lambda_1 < 0 (a stable fixed point), and D = k when every
    partial sum is non-negative.  exponents: (k,) or (B, k); returns a float or (B,).
    """
    exponents = validation.shaped(exponents, "exponents", ("k",), ("batch", "k"))
    if exponents.shape[-1] == 0:
        raise ValueError("exponents is empty; expected at least one Lyapunov exponent")
    single = exponents.ndim == 1
    rows = np.atleast_2d(-np.sort(-exponents, axis=-1))
    dims = np.zeros(len(rows))
    for b, lam in enumerate(rows):
        partial = np.cumsum(lam)
        j = int(np.sum(partial >= 0))  # sorted descending: the sums rise, then fall, so these form a prefix
        if j == len(lam):
            dims[b] = j
        elif j > 0:
            dims[b] = j + partial[j - 1] / abs(lam[j])
    return float(dims[0]) if single else dims
