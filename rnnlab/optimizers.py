"""Gradient-descent optimizers, gradient clipping and learning-rate schedules.

Everything is plain NumPy and follows the Keras 3 update equations, so a run
here can be compared step by step with a Keras run.  Notation in the
docstrings: ``w`` a parameter, ``g`` its gradient, ``lr`` the learning rate at
this step, ``t = iterations + 1`` the 1-based step number.

Usage:

```text
    opt = rl.optimizers.Adam(learning_rate=1e-3, clipnorm=1.0)
    new_weights = opt.apply(layer.get_weights(), grads.weights)
    layer.set_weights(new_weights)
    opt.last_grad_norm, opt.last_clipped      # for the training history
```

``apply`` returns new arrays and never writes into the ones it is given, so a
model can swap all its weights at once, and a call that fails validation
changes nothing (not the parameters, the slots or the step counter).
"""

import math

import numpy as np

from . import validation

# ----------------------------------------------------------------------------
# Gradient clipping
# ----------------------------------------------------------------------------


def global_norm(grads):
    """The L2 norm of all gradients taken together: ``sqrt(sum_i ||g_i||^2)``.

    Summed in float64 so float32 gradients with large entries do not overflow.
    """
    return math.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for g in _gradient_list(grads)))


def _gradient_list(grads):
    """``grads`` as a list of real arrays (what the clipping helpers take)."""
    if not isinstance(grads, (list, tuple)):
        raise TypeError(f"grads must be a list of arrays, got {type(grads).__name__}")
    arrays = [validation.rectangular(g, f"grads[{i}]", "a float array") for i, g in enumerate(grads)]
    for i, array in enumerate(arrays):
        if array.dtype.kind not in "biuf":
            raise TypeError(f"grads[{i}] must be a real-valued array, got dtype {array.dtype}")
    return arrays


def clip_by_global_norm(grads, max_norm):
    """Rescale all gradients together so their global norm is at most ``max_norm``.

    With ``G = global_norm(grads)``:

    ```text
        g_i <- g_i * max_norm / max(G, max_norm)
    ```

    The factor is 1 when ``G <= max_norm``; otherwise every gradient shrinks by
    the same factor, so the direction of the full gradient is unchanged (this
    is Keras' ``global_clipnorm`` and ``tf.clip_by_global_norm``).

    Returns:
        ``(clipped_grads, global_norm, was_clipped)``: a new list of new arrays
        (same shapes and dtypes), the norm before clipping, and whether it
        exceeded ``max_norm``.
    """
    max_norm = _positive(max_norm, "max_norm")
    grads = _gradient_list(grads)
    norm = global_norm(grads)
    scale = max_norm / max(norm, max_norm)
    return [(g * scale).astype(g.dtype, copy=False) for g in grads], norm, norm > max_norm


def clip_by_value(grads, clip_value):
    """Clip every gradient entry to ``[-clip_value, clip_value]``.

    Unlike global-norm clipping this can change the gradient's direction.

    Returns:
        ``(clipped_grads, was_clipped)``: a new list of new arrays, and whether
        any entry was outside the interval.
    """
    clip_value = _positive(clip_value, "clip_value")
    grads = _gradient_list(grads)
    clipped = [np.clip(g, -clip_value, clip_value) for g in grads]
    return clipped, any(bool(np.any(np.abs(g) > clip_value)) for g in grads)


# ----------------------------------------------------------------------------
# Learning-rate schedules: callables from the step number (0, 1, 2, ...) to a rate
# ----------------------------------------------------------------------------


class LearningRateSchedule:
    """Base class: ``schedule(step) -> learning rate``, with ``get_config`` and a readable repr.

    An optimizer calls its schedule with ``iterations``, the number of updates
    already applied, so the first update uses ``schedule(0)`` (as in Keras).
    """

    def __call__(self, step):
        return self.rate(validation.count(step, "step", minimum=0))

    def rate(self, step):
        raise NotImplementedError

    def get_config(self):
        return dict(vars(self))

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{key}={value!r}" for key, value in self.get_config().items())
        return f"{type(self).__name__}({args})"


class StepDecay(LearningRateSchedule):
    """Multiply the rate by ``factor`` every ``drop_every`` steps:

    ```text
        lr(step) = initial * factor ** floor(step / drop_every)
    ```
    """

    def __init__(self, initial, drop_every, factor):
        self.initial = _positive(initial, "initial")
        self.drop_every = validation.count(drop_every, "drop_every")
        self.factor = _positive(factor, "factor")

    def rate(self, step):
        return self.initial * self.factor ** (step // self.drop_every)


class CosineDecay(LearningRateSchedule):
    """Half a cosine from ``initial`` down to ``alpha * initial`` over ``decay_steps`` (Keras' formula):

    ```text
        s = min(step, decay_steps)
        lr(step) = initial * ((1 - alpha) * 0.5 * (1 + cos(pi * s / decay_steps)) + alpha)
    ```

    After ``decay_steps`` the rate stays at ``alpha * initial``.
    """

    def __init__(self, initial, decay_steps, alpha=0.0):
        self.initial = _positive(initial, "initial")
        self.decay_steps = validation.count(decay_steps, "decay_steps")
        alpha = float(alpha)
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        self.alpha = alpha

    def rate(self, step):
        s = min(step, self.decay_steps)
        cosine = 0.5 * (1.0 + math.cos(math.pi * s / self.decay_steps))
        return self.initial * ((1.0 - self.alpha) * cosine + self.alpha)


class ExponentialDecay(LearningRateSchedule):
    """Smooth (or, with ``staircase``, stepwise) exponential decay, as in Keras:

    ```text
        lr(step) = initial * decay_rate ** (step / decay_steps)
        lr(step) = initial * decay_rate ** floor(step / decay_steps)    (staircase=True)
    ```
    """

    def __init__(self, initial, decay_steps, decay_rate, staircase=False):
        self.initial = _positive(initial, "initial")
        self.decay_steps = validation.count(decay_steps, "decay_steps")
        self.decay_rate = _positive(decay_rate, "decay_rate")
        self.staircase = bool(staircase)

    def rate(self, step):
        exponent = step // self.decay_steps if self.staircase else step / self.decay_steps
        return self.initial * self.decay_rate ** exponent


SCHEDULES = {cls.__name__: cls for cls in (StepDecay, CosineDecay, ExponentialDecay)}


# ----------------------------------------------------------------------------
# Optimizers
# ----------------------------------------------------------------------------


class Optimizer:
    """Shared machinery: validation, clipping, the learning rate, slots and the step counter.

    A subclass lists its hyperparameters in ``_config_keys``, creates its
    per-parameter state in ``_new_slots(param)`` and writes one update in
    ``_update(param, grad, slots, lr)``, which returns the new parameter and
    stores new slot arrays in the ``slots`` dict.

    Constructor arguments shared by every optimizer:
        learning_rate: a float > 0, or a callable ``step -> rate`` such as a
            `LearningRateSchedule`, called with ``iterations``.
        clipnorm: if set, gradients are rescaled together so their *global*
            norm is at most this (Keras calls that ``global_clipnorm``; Keras'
            own ``clipnorm`` clips each tensor separately).
        clipvalue: if set, every gradient entry is clipped to ``[-clipvalue, clipvalue]``.
            At most one of ``clipnorm`` and ``clipvalue`` may be set.

    Attributes:
        iterations: number of updates applied so far.
        slots: one dict of state arrays per parameter (e.g. ``{"m": ..., "v": ...}``
            for Adam), created on the first ``apply``.
        last_grad_norm: global norm of the last gradients, before clipping.
        last_clipped: whether the last ``apply`` changed the gradients by clipping.
    """

    name = None
    _config_keys = ()

    def __init__(self, learning_rate, clipnorm=None, clipvalue=None):
        if not callable(learning_rate):
            learning_rate = _positive(learning_rate, "learning_rate")
        if clipnorm is not None and clipvalue is not None:
            raise ValueError("set at most one of clipnorm and clipvalue, not both")
        self.learning_rate = learning_rate
        self.clipnorm = None if clipnorm is None else _positive(clipnorm, "clipnorm")
        self.clipvalue = None if clipvalue is None else _positive(clipvalue, "clipvalue")
        self.iterations = 0
        self.slots = None
        self._shapes = None  # fixed by the first apply; slots only fit these
        self.last_grad_norm = None
        self.last_clipped = False

    @property
    def current_learning_rate(self):
        """The learning rate the next ``apply`` will use, as a float."""
        if not callable(self.learning_rate):
            return self.learning_rate
        lr = float(self.learning_rate(self.iterations))
        if not (math.isfinite(lr) and lr >= 0):
            raise ValueError(
                f"learning-rate schedule returned {lr} at step {self.iterations}; expected a finite rate >= 0"
            )
        return lr

    def apply(self, params, grads):
        """One update step.

        Args:
            params: list of float arrays (e.g. ``layer.get_weights()``).
            grads: list of finite arrays aligned with ``params``, same shapes.

        Returns:
            A list of new arrays, the updated parameters, in the parameters' dtypes.
            The input arrays are left untouched.
        """
        params, grads = self._check(params, grads)
        lr = self.current_learning_rate
        norm = global_norm(grads)
        clipped = False
        if self.clipnorm is not None:
            grads, norm, clipped = clip_by_global_norm(grads, self.clipnorm)
        elif self.clipvalue is not None:
            grads, clipped = clip_by_value(grads, self.clipvalue)
        if self.slots is None:
            self.slots = [self._new_slots(p) for p in params]
            self._shapes = [p.shape for p in params]
        new_params = [self._update(p, g, s, lr) for p, g, s in zip(params, grads, self.slots)]
        self.iterations += 1
        self.last_grad_norm, self.last_clipped = norm, clipped
        return new_params

    def _check(self, params, grads):
        """Validate before anything changes; return params and grads as arrays (grads in the params' dtypes)."""
        for name, items in (("params", params), ("grads", grads)):
            if not isinstance(items, (list, tuple)):
                raise TypeError(f"{name} must be a list of arrays, got {type(items).__name__}")
        if len(params) != len(grads):
            raise ValueError(f"got {len(params)} params but {len(grads)} grads; expected one gradient per parameter")
        params = [np.asarray(p) for p in params]
        checked = []
        for i, (p, g) in enumerate(zip(params, grads)):
            if p.dtype.kind != "f":
                raise TypeError(f"params[{i}] must be a floating-point array, got dtype {p.dtype}")
            g = np.asarray(g)
            if g.dtype.kind not in "iuf":
                raise TypeError(f"grads[{i}] must be a real-valued array, got dtype {g.dtype}")
            if g.shape != p.shape:
                raise ValueError(f"expected grads[{i}] of shape {p.shape}, the shape of params[{i}], got {g.shape}")
            if not np.isfinite(g).all():
                raise ValueError(f"grads[{i}] contains NaN or inf; expected finite gradients")
            checked.append(g.astype(p.dtype, copy=False))
        shapes = [p.shape for p in params]
        if self._shapes is not None and shapes != self._shapes:
            raise ValueError(
                f"this optimizer holds state for params of shapes {self._shapes}, got shapes {shapes}; "
                "use a new optimizer for a new set of parameters"
            )
        return params, checked

    def _new_slots(self, param):
        raise NotImplementedError

    def _update(self, param, grad, slots, lr):
        raise NotImplementedError

    def get_config(self):
        """The constructor arguments, plus ``name``.

        A built-in schedule appears as ``{"class_name": ..., "config": ...}`` so
        the config stays plain data; any other callable learning rate is kept as is.
        """
        lr = self.learning_rate
        if isinstance(lr, LearningRateSchedule):
            lr = {"class_name": type(lr).__name__, "config": lr.get_config()}
        config = {"name": self.name, "learning_rate": lr}
        config.update({key: getattr(self, key) for key in self._config_keys})
        config.update(clipnorm=self.clipnorm, clipvalue=self.clipvalue)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config.pop("name", None)
        lr = config["learning_rate"]
        if isinstance(lr, dict):
            config["learning_rate"] = SCHEDULES[lr["class_name"]].from_config(lr["config"])
        return cls(**config)

    def __repr__(self):
        config = self.get_config()
        config.pop("name")
        config["learning_rate"] = self.learning_rate  # the schedule's own repr reads better
        args = ", ".join(f"{key}={value!r}" for key, value in config.items() if value is not None)
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with (Nesterov) momentum.

    Plain (``momentum == 0``):

    ```text
        w <- w - lr * g
    ```

    With momentum ``mu`` and velocity ``v`` (starts at 0):

    ```text
        v <- mu * v - lr * g
        w <- w + v                         (nesterov=False)
        w <- w + mu * v - lr * g           (nesterov=True: step from the look-ahead point)
    ```
    """

    name = "sgd"
    _config_keys = ("momentum", "nesterov")

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, clipnorm=None, clipvalue=None):
        super().__init__(learning_rate, clipnorm, clipvalue)
        self.momentum = _fraction(momentum, "momentum")
        self.nesterov = bool(nesterov)

    def _new_slots(self, param):
        return {"velocity": np.zeros_like(param)} if self.momentum > 0 else {}

    def _update(self, param, grad, slots, lr):
        if self.momentum == 0:
            return param - lr * grad
        velocity = self.momentum * slots["velocity"] - lr * grad
        slots["velocity"] = velocity
        if self.nesterov:
            return param + self.momentum * velocity - lr * grad
        return param + velocity


class Adam(Optimizer):
    """Adam (Kingma & Ba 2014) in the Keras form, with ``epsilon`` outside the square root.

    First and second moment estimates ``m`` and ``v`` start at 0; at step ``t``:

    ```text
        m <- m + (1 - beta_1) * (g - m)          (= beta_1 m + (1 - beta_1) g)
        v <- v + (1 - beta_2) * (g^2 - v)
        alpha = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)     (bias correction)
        w <- w - alpha * m / (sqrt(v) + epsilon)
    ```
    """

    name = "adam"
    _config_keys = ("beta_1", "beta_2", "epsilon")

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, clipnorm=None, clipvalue=None):
        super().__init__(learning_rate, clipnorm, clipvalue)
        self.beta_1 = _fraction(beta_1, "beta_1")
        self.beta_2 = _fraction(beta_2, "beta_2")
        self.epsilon = _positive(epsilon, "epsilon")

    def _new_slots(self, param):
        return {"m": np.zeros_like(param), "v": np.zeros_like(param)}

    def _update(self, param, grad, slots, lr):
        t = self.iterations + 1
        m = slots["m"] + (1 - self.beta_1) * (grad - slots["m"])
        v = slots["v"] + (1 - self.beta_2) * (grad * grad - slots["v"])
        slots["m"], slots["v"] = m, v
        alpha = lr * math.sqrt(1 - self.beta_2**t) / (1 - self.beta_1**t)
        return param - alpha * m / (np.sqrt(v) + self.epsilon)


class RMSprop(Optimizer):
    """RMSprop (Hinton 2012) in the Keras form, with ``epsilon`` inside the square root.

    The mean square ``s`` starts at 0, the momentum buffer ``b`` too:

    ```text
        s <- rho * s + (1 - rho) * g^2
        step = lr * g / sqrt(s + epsilon)
        w <- w - step                            (momentum == 0)
        b <- momentum * b + step;  w <- w - b    (momentum > 0)
    ```
    """

    name = "rmsprop"
    _config_keys = ("rho", "momentum", "epsilon")

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, clipnorm=None, clipvalue=None):
        super().__init__(learning_rate, clipnorm, clipvalue)
        self.rho = _fraction(rho, "rho")
        self.momentum = _fraction(momentum, "momentum")
        self.epsilon = _positive(epsilon, "epsilon")

    def _new_slots(self, param):
        slots = {"mean_square": np.zeros_like(param)}
        if self.momentum > 0:
            slots["momentum"] = np.zeros_like(param)
        return slots

    def _update(self, param, grad, slots, lr):
        mean_square = self.rho * slots["mean_square"] + (1 - self.rho) * grad * grad
        slots["mean_square"] = mean_square
        step = lr * grad / np.sqrt(mean_square + self.epsilon)
        if self.momentum == 0:
            return param - step
        slots["momentum"] = self.momentum * slots["momentum"] + step
        return param - slots["momentum"]


class Adagrad(Optimizer):
    """Adagrad (Duchi et al. 2011) in the Keras form.

    The accumulator ``a`` starts at ``initial_accumulator_value``:

    ```text
        a <- a + g^2
        w <- w - lr * g / sqrt(a + epsilon)
    ```

    Each entry's step shrinks as its squared gradients pile up.
    """

    name = "adagrad"
    _config_keys = ("initial_accumulator_value", "epsilon")

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7, clipnorm=None,
                 clipvalue=None):
        super().__init__(learning_rate, clipnorm, clipvalue)
        value = _number(initial_accumulator_value, "initial_accumulator_value")
        if value < 0:
            raise ValueError(f"initial_accumulator_value must be >= 0, got {initial_accumulator_value!r}")
        self.initial_accumulator_value = value
        self.epsilon = _positive(epsilon, "epsilon")

    def _new_slots(self, param):
        return {"accumulator": np.full_like(param, self.initial_accumulator_value)}

    def _update(self, param, grad, slots, lr):
        accumulator = slots["accumulator"] + grad * grad
        slots["accumulator"] = accumulator
        return param - lr * grad / np.sqrt(accumulator + self.epsilon)


OPTIMIZERS = {cls.name: cls for cls in (SGD, Adam, RMSprop, Adagrad)}


def get(identifier, **kwargs):
    """An optimizer from a name (``"sgd"``, ``"adam"``, ``"rmsprop"``, ``"adagrad"``; any case) and
    constructor arguments, or an `Optimizer` instance returned as it is."""
    if isinstance(identifier, Optimizer):
        if kwargs:
            raise ValueError(f"got an optimizer instance and extra arguments {sorted(kwargs)}; pass one or the other")
        return identifier
    if isinstance(identifier, str):
        key = identifier.lower()
        if key not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {identifier!r}; expected one of {sorted(OPTIMIZERS)} or an Optimizer")
        return OPTIMIZERS[key](**kwargs)
    raise TypeError(f"optimizer must be a name or an Optimizer instance, got {type(identifier).__name__}")


# ----------------------------------------------------------------------------
# Argument checks
# ----------------------------------------------------------------------------


def _number(value, name):
    """A finite float."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return number


def _positive(value, name):
    """A finite float > 0."""
    number = _number(value, name)
    if number <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return number


def _fraction(value, name):
    """A float in [0, 1), as needed for momentum and decay rates."""
    number = _number(value, name)
    if not 0.0 <= number < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")
    return number
