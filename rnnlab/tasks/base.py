"""What every task returns, and the small helpers the generators share."""

from dataclasses import dataclass, field

import numpy as np

from ..validation import generator, shaped
from ..validation import real as check_real


@dataclass
class TaskData:
    """One batch of a synthetic task, with the reference line for its learning curve.

    Attributes
    ----------
    name : str
        The task's name in the registry (``rnnlab.tasks.get(name)``).
    x : ndarray, shape (batch, time, features), float
        Inputs, batch-major as ``rnnlab.RNN`` eats them.
    y : ndarray
        Targets. Regression (``loss == "mse"``): floats of shape
        ``(batch, time, out)`` when ``return_sequences`` else ``(batch, out)``.
        Classification (``loss == "cross_entropy"``): integer class ids of shape
        ``(batch, time)`` or ``(batch,)``.
    loss : str
        ``"mse"`` or ``"cross_entropy"`` (softmax over ``n_classes``, natural log).
    baseline : float
        The loss, averaged over the counted targets, of the chance-level
        predictor named in ``baseline_name``: the reference line a model must beat.
    baseline_name : str
        Which predictor gives ``baseline``.
    return_sequences : bool
        True when there is a target at every step, False for one per sequence.
    n_classes : int or None
        Number of output classes (classification only).
    chance_accuracy : float or None
        Accuracy of the same chance-level predictor (classification only).
    mask : ndarray, shape (batch, time), bool, or None
        A loss mask: True where a per-step target counts. Masked steps are either
        real inputs whose target is undefined (the first steps of ``delayed_xor``)
        or padding after the end of a sequence (``embedded_reber``), so the RNN
        layer itself can read ``x`` without a mask.
    info : dict
        Task-specific extras (documented by each generator).
    """

    name: str
    x: np.ndarray
    y: np.ndarray
    loss: str
    baseline: float
    baseline_name: str
    return_sequences: bool
    n_classes: int | None = None
    chance_accuracy: float | None = None
    mask: np.ndarray | None = None
    info: dict = field(default_factory=dict)


def make_rng(seed):
    """A NumPy Generator from an int, a Generator or None; never the global state."""
    return generator(seed)




def check_count(value, name, minimum=1):
    """Return ``value`` as an int, raising a clear error unless it is an integer >= minimum."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return int(value)


def check_probability(value, name, low_open=False):
    """Return ``value`` as a float in [0, 1] (or (0, 1] with ``low_open``)."""
    value = check_real(value, name)
    if not (0.0 < value <= 1.0 if low_open else 0.0 <= value <= 1.0):
        interval = "(0, 1]" if low_open else "[0, 1]"
        raise ValueError(f"{name} must be a probability in {interval}, got {value}")
    return value


def one_hot(ids, n, dtype):
    """One-hot encode integer ids of any shape: returns shape ``ids.shape + (n,)``."""
    return np.eye(n, dtype=dtype)[ids]


def uniform_variance(low, high):
    """Variance of U[low, high]: (high - low)^2 / 12."""
    return (high - low) ** 2 / 12.0


def entropy(probs):
    """Entropy in nats, -sum p log p, of a discrete distribution (0 log 0 = 0).

    It is the cross-entropy of the best constant predictor for targets drawn
    from ``probs``, hence the chance-level cross-entropy of a classification task.
    """
    probs = shaped(probs, "probs", ("...",))
    if (probs < 0).any():
        raise ValueError("probs must be probabilities, >= 0")
    nonzero = probs[probs > 0]
    return float(-(nonzero * np.log(nonzero)).sum())


def uniform_chance(n_classes):
    """(accuracy, cross-entropy) of guessing among ``n_classes`` equally likely classes."""
    n_classes = check_count(n_classes, "n_classes")
    return 1.0 / n_classes, entropy(np.full(n_classes, 1.0 / n_classes))
