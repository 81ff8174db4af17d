"""Principal component analysis of hidden-state trajectories.

Hidden states of a trained network often move on a low-dimensional surface:
PCA finds the directions of largest variance so a (B, T, S) cloud of states
can be drawn in 2-D or 3-D.
"""

import numpy as np

from .. import validation


class PCA:
    """Principal components of a cloud of states.

    Attributes:
        mean: (S,) the mean state.
        components: (k, S) orthonormal directions, largest variance first.
        explained_variance: (k,) variance along each component.
        explained_variance_ratio: (k,) the fraction of the total variance.
    """

    def __init__(self, mean, components, explained_variance, total_variance):
        self.mean = mean
        self.components = components
        self.explained_variance = explained_variance
        self.explained_variance_ratio = explained_variance / max(total_variance, np.finfo(float).tiny)

    @property
    def n_components(self):
        return self.components.shape[0]

    def transform(self, states):
        """(..., S) -> (..., k): coordinates along the components."""
        states = validation.shaped(states, "states", ("...", len(self.mean)))
        return (states - self.mean) @ self.components.T

    def inverse_transform(self, coords):
        """(..., k) -> (..., S): back to state space (exact only within the components' span)."""
        coords = validation.shaped(coords, "coords", ("...", self.n_components))
        return coords @ self.components + self.mean

    def __repr__(self):
        ratios = ", ".join(f"{r:.0%}" for r in self.explained_variance_ratio)
        return f"PCA({self.n_components} components, explained variance {ratios})"


def pca(states, n_components=3):
    """Fit PCA to states of shape (..., S) (for example (B, T, S) trajectories).

    The components are the right singular vectors of the centred data matrix.
    Each is signed so that its largest entry is positive, which makes the
    result reproducible.  Returns `PCA`.
    """
    states = validation.shaped(states, "states", ("...", "N", "S"))
    n_components = validation.count(n_components, "n_components")
    data = states.reshape(-1, states.shape[-1])  # (N, S)
    if data.shape[0] < 1:
        raise ValueError(f"expected states of shape (..., S) with at least one state, got {states.shape}")
    k = min(int(n_components), *data.shape)  # at most one component per state and per dimension
    mean = data.mean(axis=0)
    _, singular, vt = np.linalg.svd(data - mean, full_matrices=False)
    components = vt[:k]
    largest = np.argmax(np.abs(components), axis=1)
    components = components * np.sign(components[np.arange(k), largest])[:, None]
    variance = singular**2 / max(data.shape[0] - 1, 1)
    return PCA(mean, components, variance[:k], variance.sum())
