"""Central finite differences, independent of rnnlab.bptt."""

import numpy as np

import rnnlab as rl


def numeric_gradient(loss, array, eps=1e-6):
    """d loss() / d array, perturbing ``array`` in place one element at a time (restored after)."""
    grad = np.zeros_like(array, dtype=np.float64)
    for index in np.ndindex(array.shape):
        saved = array[index]
        array[index] = saved + eps
        plus = loss()
        array[index] = saved - eps
        minus = loss()
        array[index] = saved
        grad[index] = (plus - minus) / (2 * eps)
    return grad


def relative_error(analytic, numeric):
    scale = max(np.abs(analytic).max(), np.abs(numeric).max(), 1e-12)
    return float(np.abs(analytic - numeric).max() / scale)


def probe_loss(probes, result):
    """A fixed random linear function of every output array: sum_k <probe_k, result_k>."""
    parts = rl.nest.flatten(result) if isinstance(result, list) else [result]  # a stack's states come nested
    return sum(float(np.sum(p * r)) for p, r in zip(probes, parts))
