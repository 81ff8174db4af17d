"""Weight constraints, as tf.keras 2 defines them, applied after each optimizer step.

With ``norms`` the Euclidean norms of w along ``axis`` (kept as an axis, so
they broadcast back) and eps = 1e-7 (tf.keras 2's ``backend.epsilon()``):

```text
    MaxNorm(max_value=2, axis=0):      w * clip(norms, 0, max_value) / (eps + norms)
    NonNeg():                          w * (w >= 0)
    UnitNorm(axis=0):                  w / (eps + norms)
    MinMaxNorm(min_value=0.0, max_value=1.0, rate=1.0, axis=0):
        w * (rate * clip(norms, min_value, max_value) + (1 - rate) * norms) / (eps + norms)
```

``axis=0`` (the default) takes the norm over the rows of a (in, out) kernel:
each unit's incoming weights, as in tf.keras 2.  By name: ``"max_norm"``,
``"non_neg"``, ``"unit_norm"``, ``"min_max_norm"``, with default settings.
"""

import numpy as np

from . import validation
from .configurable import Configurable, class_and_config

EPSILON = 1e-7  # tf.keras 2's backend.epsilon()


class Constraint(Configurable):
    """Base class: ``constraint(w)`` returns the constrained copy of w."""


def _axis(axis):
    if isinstance(axis, (list, tuple)):
        return tuple(validation.count(a, "axis", minimum=0) for a in axis)
    return validation.count(axis, "axis", minimum=0)


def _norms(w, axis):
    if any(a >= w.ndim for a in np.atleast_1d(axis)):
        raise ValueError(f"a norm constraint with axis={axis} needs a weight with more dimensions, got shape {w.shape}")
    return np.sqrt(np.sum(np.square(w), axis=axis, keepdims=True))


class MaxNorm(Constraint):
    """Scale each weight vector along ``axis`` down to norm at most ``max_value``."""

    def __init__(self, max_value=2, axis=0):
        self.max_value, self.axis = validation.real(max_value, "max_value"), _axis(axis)

    def __call__(self, w):
        norms = _norms(w, self.axis)
        return w * (np.clip(norms, 0, self.max_value) / (EPSILON + norms))

    def get_config(self):
        return {"max_value": self.max_value, "axis": self.axis}


class NonNeg(Constraint):
    """Set the negative weights to zero."""

    def __call__(self, w):
        return w * (w >= 0)


class UnitNorm(Constraint):
    """Scale each weight vector along ``axis`` to norm 1."""

    def __init__(self, axis=0):
        self.axis = _axis(axis)

    def __call__(self, w):
        return w / (EPSILON + _norms(w, self.axis))

    def get_config(self):
        return {"axis": self.axis}


class MinMaxNorm(Constraint):
    """Move each weight vector's norm along ``axis`` towards [min_value, max_value] by ``rate``."""

    def __init__(self, min_value=0.0, max_value=1.0, rate=1.0, axis=0):
        self.min_value = validation.real(min_value, "min_value")
        self.max_value = validation.real(max_value, "max_value")
        self.rate, self.axis = validation.real(rate, "rate"), _axis(axis)

    def __call__(self, w):
        norms = _norms(w, self.axis)
        desired = self.rate * np.clip(norms, self.min_value, self.max_value) + (1 - self.rate) * norms
        return w * (desired / (EPSILON + norms))

    def get_config(self):
        return {"min_value": self.min_value, "max_value": self.max_value, "rate": self.rate, "axis": self.axis}


_CLASSES = {"MaxNorm": MaxNorm, "NonNeg": NonNeg, "UnitNorm": UnitNorm, "MinMaxNorm": MinMaxNorm}
_NAMES = {"max_norm": MaxNorm, "non_neg": NonNeg, "unit_norm": UnitNorm, "min_max_norm": MinMaxNorm}


def get(identifier):
    """A constraint from None, a name, a ``{"class_name", "config"}`` dict or a `Constraint`."""
    if identifier is None or isinstance(identifier, Constraint):
        return identifier
    if isinstance(identifier, str) and identifier in _NAMES:
        return _NAMES[identifier]()
    if isinstance(identifier, dict) and identifier.get("class_name") in _CLASSES:
        cls, config = class_and_config(identifier, _CLASSES, "constraint")
        return cls(**config)
    raise ValueError(f"unknown constraint {identifier!r}; expected one of {sorted(_NAMES)}, "
                     f"an rl.constraints.{', '.join(_CLASSES)} object, or None")


def serialize(constraint):
    """The config form: None, or ``{"class_name": "MaxNorm", "config": {...}}`` (axis tuples as lists)."""
    if constraint is None:
        return None
    config = {k: list(v) if isinstance(v, tuple) else v for k, v in constraint.get_config().items()}
    return {"class_name": type(constraint).__name__, "config": config}
