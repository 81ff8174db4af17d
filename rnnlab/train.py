"""The training loop: minibatches, a progress bar, a `History` and callbacks.

Two ways to feed a `rnnlab.Sequential` model:

* `fit` walks fixed arrays in shuffled minibatches, epoch after epoch;
* `fit_generator` asks ``make_batch(step)`` for a fresh batch at every
  step, the natural way to train on synthetic tasks (infinite data):

  ```text
      make_batch = lambda step: rl.tasks.adding_problem(64, 50, seed=step)
      history = model.fit_generator(make_batch, steps=2000)
  ```

Every step is one `train_step`.  The history keeps
each step's loss, global gradient norm and whether it was clipped, and each
epoch's mean training loss and validation loss.  Results are deterministic:
the shuffling uses its own ``numpy.random.Generator`` seeded by ``seed``, and
nothing reads the global random state.
"""

import copy
import math
import os
import sys

import numpy as np

from . import validation


class History:
    """What happened during training.

    Per step (lists of length ``steps``):
        loss: the minibatch loss before the update.
        grad_norm: the global gradient norm ``sqrt(sum_i ||g_i||^2)`` before clipping.
        clipped: whether the optimizer clipped the gradient at that step.

    Per epoch (lists of length ``epochs``):
        epoch_loss: the mean of the epoch's step losses.
        epoch_end_step: how many steps had run when the epoch ended (x axis for plots).
        val_loss, val_accuracy: on the validation data, when given
            (``val_accuracy`` for classifiers only).

    stop_reason: why training stopped early (a callback's message), or None.
    """

    def __init__(self):
        self.loss, self.grad_norm, self.clipped = [], [], []
        self.epoch_loss, self.epoch_end_step = [], []
        self.val_loss, self.val_accuracy = [], []
        self.stop_reason = None

    @property
    def steps(self):
        return len(self.loss)

    @property
    def epochs(self):
        return len(self.epoch_loss)

    @property
    def clip_steps(self):
        """The steps (0-based) at which the gradient was clipped."""
        return [step for step, clipped in enumerate(self.clipped) if clipped]

    def record_step(self, logs):
        self.loss.append(float(logs["loss"]))
        self.grad_norm.append(float(logs["grad_norm"]))
        self.clipped.append(bool(logs["clipped"]))

    def record_epoch(self, logs):
        self.epoch_loss.append(logs["loss"])
        self.epoch_end_step.append(self.steps)
        if "val_loss" in logs:
            self.val_loss.append(logs["val_loss"])
        if "val_accuracy" in logs:
            self.val_accuracy.append(logs["val_accuracy"])

    def __repr__(self):
        parts = [f"steps={self.steps}", f"epochs={self.epochs}"]
        if self.epochs:
            parts.append(f"loss={self.epoch_loss[-1]:.4g}")
        if self.val_loss:
            parts.append(f"val_loss={self.val_loss[-1]:.4g}")
        parts.append(f"clipped at {len(self.clip_steps)} steps")
        if self.stop_reason:
            parts.append(f"stopped: {self.stop_reason}")
        return f"History({', '.join(parts)})"


# -- callbacks -----------------------------------------------------------------------


class Callback:
    """Hooks the loop calls.  A hook that returns a string stops training; the string says why.

    ``logs`` of a step: ``{"loss", "grad_norm", "clipped"}``.  ``logs`` of an
    epoch: ``{"loss"}`` (the epoch's mean step loss), plus ``"val_loss"`` (and
    ``"val_accuracy"`` for a classifier) when there is validation data.
    """

    #: True for a callback that reads ``val_loss``: fit refuses it without validation data, before training.
    needs_validation = False

    def on_train_begin(self, model):
        pass

    def on_step_end(self, step, logs):
        return None

    def on_epoch_end(self, epoch, logs):
        return None


class EarlyStopping(Callback):
    """Stop when the monitored value reaches ``target``, or stops improving for ``patience`` epochs.

    Args:
        target: stop as soon as ``logs[monitor] <= target`` at the end of an epoch.
        monitor: ``"loss"`` (the epoch's mean training loss) or ``"val_loss"``.
        patience: stop after this many epochs in a row without an improvement
            of more than ``min_delta`` over the best value so far.

    Give ``target``, ``patience`` or both.
    """

    def __init__(self, target=None, monitor="loss", patience=None, min_delta=0.0):
        if monitor not in ("loss", "val_loss"):
            raise ValueError(f"monitor must be 'loss' or 'val_loss', got {monitor!r}")
        if target is None and patience is None:
            raise ValueError("EarlyStopping needs a target, a patience or both")
        patience = None if patience is None else validation.count(patience, "patience (epochs)")
        target = None if target is None else validation.real(target, "target")
        self.target, self.monitor, self.patience = target, monitor, patience
        self.min_delta = validation.real(min_delta, "min_delta")
        self.best, self.wait = math.inf, 0

    @property
    def needs_validation(self):
        return self.monitor == "val_loss"

    def on_train_begin(self, model):
        self.best, self.wait = math.inf, 0

    def on_epoch_end(self, epoch, logs):
        if self.monitor not in logs:
            raise ValueError(f"EarlyStopping monitors {self.monitor!r}, which needs validation_data")
        value = logs[self.monitor]
        if self.target is not None and value <= self.target:
            return f"{self.monitor} {value:.4g} reached the target {self.target:.4g} at epoch {epoch}"
        if value < self.best - self.min_delta:
            self.best, self.wait = value, 0
        else:
            self.wait += 1
        if self.patience is not None and self.wait >= self.patience:
            return f"{self.monitor} did not improve on {self.best:.4g} for {self.patience} epochs"
        return None

    def __repr__(self):
        return f"EarlyStopping(target={self.target!r}, monitor={self.monitor!r}, patience={self.patience!r})"


# -- the loops -------------------------------------------------------------------------


def fit(model, x, y, epochs=None, batch_size=32, validation_data=None, callbacks=(), seed=None, shuffle=True,
        mask=None, steps=None, verbose=None):
    """Train ``model`` on arrays x (N, T, F) and y, in minibatches of ``batch_size``.

    Each epoch walks the N samples once, in a fresh order drawn from a
    ``numpy.random.Generator`` seeded with ``seed`` (so the same seed gives the
    same run).  ``steps`` caps the number of updates; training runs ``epochs``
    epochs or ``steps`` steps, whichever ends first (one epoch if neither is given).

    Args:
        mask: an optional loss mask, (N, T) or (N,), sliced along with y.
        validation_data: ``(x, y)``, ``(x, y, mask)`` or a task's ``TaskData``;
            evaluated at the end of every epoch.
        callbacks: `Callback` objects, e.g. `EarlyStopping`.
        verbose: True/False forces the progress bar on/off; None shows it only
            on a terminal (or in Jupyter) and never when the ``CI`` environment
            variable is set.

    Returns the `History` (also kept as ``model.history``).
    """
    x, y, mask = model.check_data(x, y, mask)
    batch_size = validation.count(batch_size, "batch_size")
    per_epoch = math.ceil(len(x) / batch_size)  # batches in one epoch
    if epochs is None:
        epochs = 1 if steps is None else math.ceil(validation.count(steps, "steps") / per_epoch)
    epochs = validation.count(epochs, "epochs")
    budget = epochs * per_epoch if steps is None else min(validation.count(steps, "steps"), epochs * per_epoch)
    rng = np.random.default_rng(seed)

    schedule = []  # one list of sample-index arrays per epoch; the last may be cut short by the budget
    for epoch in range(math.ceil(budget / per_epoch)):
        order = rng.permutation(len(x)) if shuffle else np.arange(len(x))
        batches = [order[start : start + batch_size] for start in range(0, len(x), batch_size)]
        schedule.append(batches[: budget - epoch * per_epoch])
    if mask is not None:  # refuse before training, not at the first empty minibatch
        for epoch in schedule:
            for index in epoch:
                if not np.any(mask[index]):
                    raise ValueError(f"a minibatch of samples {sorted(index.tolist())} has a loss mask that selects "
                                     "no positions, so its loss is 0/0; use a larger batch_size or a mask that "
                                     "selects something in every sample")

    def get_batch(index):
        return x[index], y[index], None if mask is None else mask[index]

    return _train(model, schedule, get_batch, validation_data, callbacks, verbose)


def fit_generator(model, make_batch, steps, steps_per_epoch=None, validation_data=None, callbacks=(), verbose=None):
    """Train ``model`` for ``steps`` steps on fresh batches ``make_batch(step)``, step = 0, 1, 2, ...

    ``make_batch(step)`` returns ``(x, y)``, ``(x, y, mask)`` or a task's
    ``TaskData``.  Seed the batch from the step (``seed=step``, or
    ``seed=(my_seed, step)``) and the whole run is repeatable.

    With infinite data an "epoch" is just a reporting period of
    ``steps_per_epoch`` steps (default ``steps // 10``, so ten epochs): the
    epoch loss is the mean step loss over the period, validation runs and
    callbacks such as `EarlyStopping` check at its end.  The other
    arguments are as in `fit`.
    """
    steps = validation.count(steps, "steps")
    per_epoch = validation.count(steps_per_epoch or max(1, steps // 10), "steps_per_epoch")
    schedule = [range(start, min(start + per_epoch, steps)) for start in range(0, steps, per_epoch)]

    def get_batch(step):
        return _unpack(make_batch(step), "make_batch(step)")

    return _train(model, schedule, get_batch, validation_data, callbacks, verbose)


def _train(model, schedule, get_batch, validation_data, callbacks, verbose):
    """The loop both fits share: ``schedule`` is a list of epochs, each a list of batch keys for ``get_batch``."""
    validation = None if validation_data is None else _unpack(validation_data, "validation_data")
    if validation is not None:
        model.check_data(*validation)  # fail now rather than after the first epoch
    for callback in callbacks:
        if not isinstance(callback, Callback):
            raise TypeError(f"callbacks must be rnnlab.train.Callback objects, got {type(callback).__name__}")
        if callback.needs_validation and validation is None:
            raise ValueError(f"{callback!r} monitors val_loss, which needs validation_data")
    for callback in callbacks:
        callback.on_train_begin(model)
    previous_history, history = model.history, History()
    model.history = history
    total = sum(len(keys) for keys in schedule)
    from tqdm import tqdm  # here, not at the top: it costs import rnnlab a tenth of a second

    saved = _saved_state(model)  # a batch refused part-way (fit_generator's come one by one) changes nothing
    try:
        with tqdm(total=total, unit="step", disable=not progress_enabled(verbose), file=sys.stdout) as bar:
            for epoch, keys in enumerate(schedule):
                first_step, reason = history.steps, None
                for key in keys:
                    logs = model.train_step(*get_batch(key))
                    history.record_step(logs)
                    bar.update()
                    bar.set_postfix(loss=f"{logs['loss']:.4g}", refresh=False)
                    reason = _first_reason(callback.on_step_end(history.steps - 1, logs) for callback in callbacks)
                    if reason:
                        break
                logs = {"loss": float(np.mean(history.loss[first_step:]))}
                if validation is not None:
                    logs.update({f"val_{name}": value for name, value in model.evaluate(*validation).items()})
                history.record_epoch(logs)
                bar.set_postfix({name: f"{value:.4g}" for name, value in logs.items()})
                reason = reason or _first_reason(callback.on_epoch_end(epoch, logs) for callback in callbacks)
                if reason:
                    history.stop_reason = reason
                    break
    except (ValueError, TypeError):
        _restore_state(saved)
        model.history = previous_history
        raise
    return history


def _state_objects(model):
    """The objects whose attributes a training run changes: the optimizer, and every cell and readout."""
    objects = [model.optimizer]
    for layer in model.layers:
        for inner in getattr(layer, "layers", (layer,)):  # a Bidirectional's two directions
            cell = getattr(inner, "cell", inner)
            objects += [cell, *getattr(cell, "cells", ())]
    return objects


def _saved_state(model):
    return [(obj, copy.deepcopy(vars(obj))) for obj in _state_objects(model)]


def _restore_state(saved):
    """Put every object back as it was, in place (weights, ``built``, random state, optimizer moments)."""
    for obj, attributes in saved:
        vars(obj).clear()
        vars(obj).update(attributes)


def _first_reason(reasons):
    """The first stop reason a callback gave (callbacks run in order until one says stop)."""
    return next((reason for reason in reasons if reason), None)


def progress_enabled(verbose=None):
    """Whether to draw the progress bar.

    ``verbose`` True or False decides.  With None: never when the ``CI``
    environment variable is set (to anything but "", "0" or "false"), else only
    when stdout is a terminal or a Jupyter kernel's output stream, so logs and
    pipes stay free of bar redraws.
    """
    if verbose is not None:
        return bool(verbose)
    if os.environ.get("CI", "").strip().lower() not in ("", "0", "false"):
        return False
    in_jupyter = type(sys.stdout).__module__.startswith("ipykernel")
    return in_jupyter or bool(getattr(sys.stdout, "isatty", lambda: False)())


def _unpack(data, name):
    """``(x, y)``, ``(x, y, mask)`` or an object with ``x``, ``y`` and ``mask`` (a TaskData) -> (x, y, mask)."""
    if hasattr(data, "x") and hasattr(data, "y"):
        return data.x, data.y, getattr(data, "mask", None)
    if isinstance(data, (tuple, list)) and len(data) in (2, 3):
        return data[0], data[1], data[2] if len(data) == 3 else None
    raise TypeError(f"{name} must be (x, y), (x, y, mask) or a TaskData, got {type(data).__name__}")
