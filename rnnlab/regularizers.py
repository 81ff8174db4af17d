"""Weight penalties, as tf.keras 2 defines them: ``L1``, ``L2`` and ``L1L2``.

A regularizer maps a weight array w to a scalar penalty that training adds to
the loss, and gives that penalty's gradient, which training adds to the
weight's gradient:

```text
    L1(l1=0.01):              l1 * sum |w|           gradient l1 * sign(w)
    L2(l2=0.01):              l2 * sum w^2           gradient 2 * l2 * w
    L1L2(l1=0.0, l2=0.0):     both terms             both gradients
```

By name, as in tf.keras 2: ``"l1"`` is ``L1()``, ``"l2"`` is ``L2()`` and
``"l1_l2"`` is ``L1L2(l1=0.01, l2=0.01)``.  A cell takes them as
``kernel_regularizer``, ``recurrent_regularizer`` and ``bias_regularizer``;
``layer.losses`` lists the current penalties.
"""

import numpy as np

from . import validation
from .configurable import Configurable, class_and_config


class Regularizer(Configurable):
    """Base class: ``penalty(w) -> float`` and ``gradient(w) -> array like w``."""

    def __call__(self, w):
        return self.penalty(w)


class L1L2(Regularizer):
    """``l1 * sum |w| + l2 * sum w^2`` (tf.keras 2's defaults here are 0 and 0)."""

    def __init__(self, l1=0.0, l2=0.0):
        self.l1 = validation.real(l1, "l1")
        self.l2 = validation.real(l2, "l2")
        if self.l1 < 0 or self.l2 < 0:
            raise ValueError(f"regularization factors must be >= 0, got l1={l1!r}, l2={l2!r}")

    def penalty(self, w):
        return float(self.l1 * np.sum(np.abs(w)) + self.l2 * np.sum(np.square(w)))

    def gradient(self, w):
        return (self.l1 * np.sign(w) + 2 * self.l2 * w).astype(w.dtype)  # sign(0) = 0, as tf's abs gradient

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}


class L1(L1L2):
    """``l1 * sum |w|``, default l1 = 0.01 as in tf.keras 2."""

    def __init__(self, l1=0.01):
        super().__init__(l1=l1)

    def get_config(self):
        return {"l1": self.l1}


class L2(L1L2):
    """``l2 * sum w^2``, default l2 = 0.01 as in tf.keras 2."""

    def __init__(self, l2=0.01):
        super().__init__(l2=l2)

    def get_config(self):
        return {"l2": self.l2}


_CLASSES = {"L1": L1, "L2": L2, "L1L2": L1L2}
_NAMES = {"l1": L1, "l2": L2, "l1_l2": lambda: L1L2(l1=0.01, l2=0.01)}


def get(identifier):
    """A regularizer from None, a name, a ``{"class_name", "config"}`` dict or a `Regularizer`."""
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, str):
        if identifier not in _NAMES:
            raise ValueError(f"unknown regularizer {identifier!r}; expected one of {sorted(_NAMES)}, "
                             f"an rl.regularizers.L1, L2 or L1L2, or None")
        return _NAMES[identifier]()
    if isinstance(identifier, dict) and identifier.get("class_name") in _CLASSES:
        cls, config = class_and_config(identifier, _CLASSES, "regularizer")
        return cls(**config)
    raise ValueError(f"unknown regularizer {identifier!r}; expected one of {sorted(_NAMES)}, "
                     f"an rl.regularizers.L1, L2 or L1L2, or None")


def serialize(regularizer):
    """The config form: None, or ``{"class_name": "L2", "config": {"l2": 0.01}}``."""
    if regularizer is None:
        return None
    return {"class_name": type(regularizer).__name__, "config": regularizer.get_config()}
