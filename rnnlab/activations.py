"""Activation functions with their derivatives.

Each built-in activation knows its derivative, because the hand-written BPTT
needs it.  ``get("tanh")`` returns the `Activation`; a plain callable is
wrapped too, but has no derivative, so backward through it raises a clear error.

===================  ==============================  ==================================
name                 f(x)                            f'(x), written with y = f(x)
===================  ==============================  ==================================
tanh                 tanh(x)                         1 - y^2
sigmoid              1 / (1 + exp(-x))               y (1 - y)
relu                 max(x, 0)                       1 if x > 0 else 0
hard_sigmoid         clip(0.2 x + 1/2, 0, 1)         1/5 if 0 < y < 1 else 0
hard_sigmoid_keras3  clip(x / 6 + 1/2, 0, 1)         1/6 if 0 < y < 1 else 0
linear               x                               1
g                    x + 1/2 if x >= 0 else σ(x)     1 if y >= 1/2 else y (1 - y)
===================  ==============================  ==================================

``hard_sigmoid`` is tf.keras 2's definition, with which old Keras 2 GRU and
LSTM weights were trained as the recurrent activation; Keras 3 changed it to
``relu6(x + 3) / 6``, here ``hard_sigmoid_keras3``.  (Before rnnlab 0.2,
``"hard_sigmoid"`` meant the Keras 3 function.)  Their derivatives are read
off the output, as the kernels do: ``0 < y < 1`` is the linear stretch.

``g`` is the positive candidate activation of minGRU and minLSTM (Feng et al.
2024, "Were RNNs All We Needed?"): it is continuous at 0 (both halves give
1/2), always positive, and grows linearly instead of saturating.  y >= 1/2
exactly where x >= 0, so its derivative too is read off the output.
"""

import numpy as np


class Activation:
    """An elementwise function ``fn(x)`` and its derivative ``grad(x, y)``.

    ``grad`` receives both the pre-activation ``x`` and the output ``y = fn(x)``
    so each derivative can use whichever is cheaper.
    """

    def __init__(self, name, fn, grad=None):
        self.name = name
        self.fn = fn
        self._grad = grad

    def __call__(self, x):
        return self.fn(x)

    def grad(self, x, y):
        if self._grad is None:
            raise NotImplementedError(
                f"activation {self.name!r} is a plain callable with no derivative, so BPTT cannot "
                "differentiate through it; use a built-in activation name "
                f"({', '.join(sorted(_BUILTINS))}) or wrap it as "
                "rnnlab.activations.Activation(name, fn, grad)"
            )
        return self._grad(x, y)

    def __reduce__(self):
        # A built-in activation is one shared object, and code compares it by
        # identity (``cell.activation is activations.tanh``): copies, deep copies
        # and pickles of it must be that same object again.
        if _BUILTINS.get(self.name) is self:
            return (get, (self.name,))
        return (Activation, (self.name, self.fn, self._grad))

    def __repr__(self):
        return f"Activation({self.name!r})"


def _sigmoid(x):
    # Split by sign so exp never overflows: both branches use exp(-|x|).
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


def _hard_sigmoid(x):
    return np.clip(x * x.dtype.type(0.2) + x.dtype.type(0.5), 0, 1).astype(x.dtype, copy=False)


def _hard_sigmoid_keras3(x):
    return np.clip(x / 6 + 0.5, 0, 1).astype(x.dtype, copy=False)


def _g(x):
    # The linear half for x >= 0, the sigmoid below: both are 1/2 at 0.
    return np.where(x >= 0, x + x.dtype.type(0.5), _sigmoid(x)).astype(x.dtype, copy=False)


def _g_grad(x, y):
    return np.where(y >= 0.5, 1, y * (1 - y)).astype(x.dtype, copy=False)


def _linear_stretch(slope):
    """The derivative of a hard sigmoid: ``slope`` where the output is strictly inside (0, 1)."""
    return lambda x, y: np.where((y > 0) & (y < 1), slope, 0).astype(x.dtype)


_BUILTINS = {
    "tanh": Activation("tanh", np.tanh, lambda x, y: 1 - y * y),
    "sigmoid": Activation("sigmoid", _sigmoid, lambda x, y: y * (1 - y)),
    "relu": Activation(
        "relu", lambda x: np.maximum(x, 0), lambda x, y: (x > 0).astype(x.dtype)
    ),
    "hard_sigmoid": Activation("hard_sigmoid", _hard_sigmoid, _linear_stretch(0.2)),
    "hard_sigmoid_keras3": Activation("hard_sigmoid_keras3", _hard_sigmoid_keras3, _linear_stretch(1 / 6)),
    "linear": Activation("linear", lambda x: x, lambda x, y: np.ones_like(x)),
    "g": Activation("g", _g, _g_grad),
}

tanh = _BUILTINS["tanh"]
sigmoid = _BUILTINS["sigmoid"]
relu = _BUILTINS["relu"]
hard_sigmoid = _BUILTINS["hard_sigmoid"]
hard_sigmoid_keras3 = _BUILTINS["hard_sigmoid_keras3"]
linear = _BUILTINS["linear"]
g = _BUILTINS["g"]

#: The recurrent activations the LSTM and GRU kernels implement (numba and CUDA).
GATE_ACTIVATIONS = ("sigmoid", "hard_sigmoid", "hard_sigmoid_keras3")

#: The candidate activations the minGRU and minLSTM kernels implement (numba and CUDA).
CANDIDATE_ACTIVATIONS = ("linear", "g", "tanh")


def get(identifier):
    """Return the `Activation` for a name, an ``Activation``, a callable or ``None`` (linear)."""
    if identifier is None:
        return linear
    if isinstance(identifier, Activation):
        return identifier
    if isinstance(identifier, str):
        if identifier not in _BUILTINS:
            raise ValueError(
                f"unknown activation {identifier!r}; expected one of {sorted(_BUILTINS)} or a callable"
            )
        return _BUILTINS[identifier]
    if callable(identifier):
        return Activation(getattr(identifier, "__name__", "custom"), identifier)
    raise TypeError(
        f"activation must be a name, a callable or None, got {type(identifier).__name__}"
    )


def serialize(activation):
    """The config form of an activation: its name when built in, else the object itself."""
    return activation.name if activation.name in _BUILTINS and activation is _BUILTINS[activation.name] else activation
