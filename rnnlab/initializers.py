"""Weight initializers, Keras definitions, seeded through a NumPy ``Generator``.

Every initializer is called as ``init(shape, rng, dtype)`` where ``rng`` is a
``numpy.random.Generator``.  There is no global random state: a cell built with
``seed=0`` gets the same weights on every machine and in every process.

==================  ==========================================================
name                definition
==================  ==========================================================
glorot_uniform      U(-l, l), l = sqrt(6 / (fan_in + fan_out))
orthogonal          Q of the QR decomposition of a normal matrix, sign-fixed
zeros, ones         constants
uniform             U(minval, maxval), default U(-0.05, 0.05)
normal              N(mean, stddev^2), default N(0, 0.05^2)
==================  ==========================================================
"""

import numpy as np

from . import validation
from .configurable import Configurable, class_and_config


def _fans(shape):
    """Keras fan-in / fan-out: a (in, out) matrix has fan_in=in, fan_out=out."""
    if len(shape) < 1:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    return shape[-2] * receptive, shape[-1] * receptive


class Initializer(Configurable):
    """Base class: subclasses implement ``__call__(shape, rng, dtype)``."""

    name = "initializer"


class Zeros(Initializer):
    name = "zeros"

    def __call__(self, shape, rng, dtype):
        return np.zeros(shape, dtype=dtype)


class Ones(Initializer):
    name = "ones"

    def __call__(self, shape, rng, dtype):
        return np.ones(shape, dtype=dtype)


class Uniform(Initializer):
    name = "uniform"

    def __init__(self, minval=-0.05, maxval=0.05):
        self.minval, self.maxval = validation.real(minval, "minval"), validation.real(maxval, "maxval")

    def __call__(self, shape, rng, dtype):
        return rng.uniform(self.minval, self.maxval, size=shape).astype(dtype)

    def get_config(self):
        return {"minval": self.minval, "maxval": self.maxval}


class Normal(Initializer):
    name = "normal"

    def __init__(self, mean=0.0, stddev=0.05):
        self.mean, self.stddev = validation.real(mean, "mean"), validation.real(stddev, "stddev")

    def __call__(self, shape, rng, dtype):
        return rng.normal(self.mean, self.stddev, size=shape).astype(dtype)

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev}


class GlorotUniform(Initializer):
    name = "glorot_uniform"

    def __call__(self, shape, rng, dtype):
        fan_in, fan_out = _fans(shape)
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, size=shape).astype(dtype)


class Orthogonal(Initializer):
    """Keras ``Orthogonal``: rows (or columns, whichever are fewer) are orthonormal, times ``gain``."""

    name = "orthogonal"

    def __init__(self, gain=1.0):
        self.gain = validation.real(gain, "gain")

    def __call__(self, shape, rng, dtype):
        rows, cols = int(np.prod(shape[:-1])), shape[-1]
        a = rng.normal(0.0, 1.0, size=(max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        q *= np.sign(np.diag(r))  # makes the distribution uniform over orthogonal matrices
        if rows < cols:
            q = q.T
        return (self.gain * q).reshape(shape).astype(dtype)

    def get_config(self):
        return {"gain": self.gain}


_BUILTINS = {cls.name: cls for cls in (Zeros, Ones, Uniform, Normal, GlorotUniform, Orthogonal)}


def get(identifier):
    """Return an initializer for a name, a ``{"class_name", "config"}`` dict, or a callable."""
    if isinstance(identifier, str):
        if identifier not in _BUILTINS:
            raise ValueError(
                f"unknown initializer {identifier!r}; expected one of {sorted(_BUILTINS)} or a callable"
            )
        return _BUILTINS[identifier]()
    if isinstance(identifier, dict) and identifier.get("class_name") in _BUILTINS:
        cls, config = class_and_config(identifier, _BUILTINS, "initializer")
        if not set(config) <= set(cls().get_config()):
            raise TypeError(f"initializer {identifier['class_name']!r} takes the settings "
                            f"{sorted(cls().get_config())}, got {sorted(config)}")
        return cls(**config)
    if callable(identifier):
        return identifier
    raise TypeError(
        f"initializer must be a name or a callable(shape, rng, dtype), got {type(identifier).__name__}"
    )


def serialize(initializer):
    """The config form: a name for a default built-in, a dict for a configured one."""
    if isinstance(initializer, Initializer) and type(initializer) is _BUILTINS.get(initializer.name):
        config = initializer.get_config()
        if config == type(initializer)().get_config():
            return initializer.name
        return {"class_name": initializer.name, "config": config}
    return initializer
