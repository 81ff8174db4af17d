"""Fixed and slow points of a cell with its input held constant (Sussillo & Barak 2013).

With the input held at u*, the cell is a map s -> F(s) = F(u*, s) on the
joint state.  A fixed point satisfies F(s) = s; a slow point almost does.
Both are minima of the speed:

```text
    q(s) = 1/2 ||F(s) - s||^2          grad q = (J - I)^T (F(s) - s),  J = dF/ds
```

We minimise q from many starts at once.  The starts are states the network
actually visits (sampled from trajectories), plus noise.  Each start takes
Levenberg-Marquardt steps.  With the residual r = F(s) - s and A = J - I:

```text
    step = -(A^T A + mu I)^{-1} A^T r
```

This is Gauss-Newton when the damping mu is small, and fast near a root.  It is
short gradient descent when mu is large, which keeps it safe far from one.  A
start whose step lowers q accepts it and lowers mu; otherwise it keeps its
point and raises mu.  All starts run together as one batch of small linear
solves.

Stability of a discrete-time map: a fixed point is stable iff every
eigenvalue of J there has |lambda| < 1.  The eigenvectors with |lambda| > 1
are its unstable modes, the directions along which the state leaves it.
"""

import numpy as np

from .. import validation

from .jacobians import step_jacobians
from .states import as_float64, joint_size


class FixedPoints:
    """The fixed (or slow) points found by `find_fixed_points`, one row each.

    Attributes:
        points: (K, S) joint states, sorted by q (fastest convergence first).
        q: (K,) the speed q(s) = 1/2 ||F(s) - s||^2 at each point.
        counts: (K,) how many starts ended at each point.
        jacobians: (K, S, S) dF/ds at each point.
        eigenvalues: (K, S) complex, sorted by |lambda|, largest first.
        eigenvectors: (K, S, S) complex; column i goes with eigenvalues[:, i].
        stable: (K,) bool, all |lambda| < 1.
        n_unstable: (K,) the number of eigenvalues with |lambda| > 1.
        constant_input: (F,) the input u* held during the search.
        n_starts: how many starts were run.
        n_discarded: how many starts ended with q above the threshold.
    """

    def __init__(self, points, q, counts, jacobians, constant_input, n_starts, n_discarded):
        self.points, self.q, self.counts, self.jacobians = points, q, counts, jacobians
        self.constant_input, self.n_starts, self.n_discarded = constant_input, n_starts, n_discarded
        eigenvalues, eigenvectors = np.linalg.eig(jacobians)
        eigenvalues, eigenvectors = eigenvalues.astype(complex), eigenvectors.astype(complex)  # eig drops .imag if all 0
        order = np.argsort(-np.abs(eigenvalues), axis=1)
        self.eigenvalues = np.take_along_axis(eigenvalues, order, axis=1)
        self.eigenvectors = np.take_along_axis(eigenvectors, order[:, None, :], axis=2)
        self.n_unstable = np.sum(np.abs(self.eigenvalues) > 1, axis=1)
        self.stable = self.n_unstable == 0

    def __len__(self):
        return len(self.points)

    def unstable_modes(self, i):
        """Point i's unstable directions: (n_unstable, S) real unit vectors.

        Each is the real part of an eigenvector with |lambda| > 1 (a complex pair
        spans a plane; its real part is one direction in it).
        """
        vectors = self.eigenvectors[i][:, np.abs(self.eigenvalues[i]) > 1].real.T
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    def __repr__(self):
        n_stable = int(self.stable.sum())
        return (f"FixedPoints({n_stable} stable, {len(self) - n_stable} unstable; {self.n_starts} starts, "
                f"{self.n_discarded} discarded with q above the threshold)")


def sample_starts(states, n_starts, noise=0.0, seed=0):
    """Pick ``n_starts`` rows of ``states`` (..., S) at random and add Gaussian noise of std ``noise``."""
    pool = validation.shaped(states, "states", ("...", "S"))
    pool = pool.reshape(-1, pool.shape[-1])
    n_starts = validation.count(n_starts, "n_starts")
    if len(pool) == 0:
        raise ValueError(f"states holds no states (shape {np.shape(states)}); expected at least one to start from")
    noise = validation.shaped(noise, "noise", ())
    rng = validation.generator(seed)
    picks = rng.choice(len(pool), size=n_starts, replace=n_starts > len(pool))
    return pool[picks] + noise * rng.standard_normal((n_starts, pool.shape[1]))


def minimize_speed(cell, starts, constant_input, max_iters=200, q_converged=1e-24):
    """Levenberg-Marquardt on q(s) from every start at once.

    starts: (N, S); constant_input: (F,).  Returns ``(points (N, S), q (N,))``.
    A start stops when q < ``q_converged`` or when its damping has grown so
    large that no step helps any more (a slow point or a minimum with q > 0).
    """
    cell = as_float64(cell)
    if not cell.built:
        raise ValueError(f"{cell.name} is not built yet; run it or build it first")
    s = validation.shaped(starts, "starts", ("N", joint_size(cell))).copy()  # a copy: it is updated in place
    u = validation.shaped(constant_input, "constant_input", (cell.input_size,))
    u = np.broadcast_to(u, (len(s), cell.input_size))
    eye = np.eye(s.shape[1])

    def residual(u, s):
        jac = step_jacobians(cell, u, s)
        r = jac.new_state - s  # (N, S)
        return r, jac.state - eye, 0.5 * np.sum(r * r, axis=1)

    r, A, q = residual(u, s)
    damping = np.full(len(s), 1e-3)
    for _ in range(max_iters):
        active = np.flatnonzero((q > q_converged) & (damping < 1e10))
        if active.size == 0:
            break
        At = A[active].transpose(0, 2, 1)  # (n, S, S)
        rhs = (At @ r[active][:, :, None])[:, :, 0]  # A^T r = grad q
        step = -np.linalg.solve(At @ A[active] + damping[active, None, None] * eye, rhs[:, :, None])[:, :, 0]
        r_new, A_new, q_new = residual(u[active], s[active] + step)
        better = q_new < q[active]
        done = active[better]
        s[done] += step[better]
        r[done], A[done], q[done] = r_new[better], A_new[better], q_new[better]
        damping[done] *= 0.3
        damping[active[~better]] *= 10.0
    return s, q


def find_fixed_points(cell, states, constant_input=None, n_starts=128, noise=0.0, q_threshold=1e-10,
                      unique_tol=1e-3, max_iters=200, seed=0):
    """Find the fixed points (q < ``q_threshold``) of ``cell`` with its input held at a constant.

    cell: a built built-in cell (the search runs in float64).
    states: (..., S) joint states the network visits, e.g. from
    `rnnlab.analysis.trajectory`; the starts are drawn from them.
    constant_input: (F,), default zeros.  noise: std of the Gaussian noise
    added to each start.  q_threshold: raise it (e.g. to 1e-4) to keep slow
    points as well.  unique_tol: points closer than this (Euclidean) are one.

    Returns `FixedPoints`.
    """
    cell = as_float64(cell)
    if not cell.built:
        raise ValueError(f"{cell.name} is not built yet; run it or build it first")
    S, F = joint_size(cell), cell.input_size
    states = validation.shaped(states, "states (joint states)", ("...", S))
    u = np.zeros(F) if constant_input is None else validation.shaped(constant_input, "constant_input", (F,))

    points, q = minimize_speed(cell, sample_starts(states, n_starts, noise, seed), u, max_iters)
    keep = q < q_threshold
    points, q = points[keep], q[keep]
    order = np.argsort(q)
    unique, unique_q, counts = [], [], []
    for p, p_q in zip(points[order], q[order]):  # best first: each cluster keeps its most exact member
        if unique:
            distances = np.linalg.norm(np.asarray(unique) - p, axis=1)
            nearest = int(np.argmin(distances))
            if distances[nearest] < unique_tol:
                counts[nearest] += 1
                continue
        unique.append(p)
        unique_q.append(p_q)
        counts.append(1)
    unique = np.asarray(unique).reshape(-1, S)
    if len(unique):
        jacobians = step_jacobians(cell, np.broadcast_to(u, (len(unique), F)), unique).state
    else:  # no start converged
        jacobians = np.zeros((0, S, S))
    return FixedPoints(unique, np.asarray(unique_q), np.asarray(counts, dtype=int), jacobians, u, n_starts,
                       int(np.sum(~keep)))
