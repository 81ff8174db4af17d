"""Losses that return their own gradient.

Every loss returns ``(value, d_predictions)``: the scalar loss as a Python
float, and dL/d(predictions), an array of the predictions' shape and dtype.
That gradient is what `rnnlab.bptt.backward` takes as ``dy``.

Two shapes of prediction are supported:

* the last output only, ``(batch, features)``, from ``RNN(return_sequences=False)``;
* every timestep, ``(batch, time, features)``, from ``RNN(return_sequences=True)``.

A *position* is one row of features: one sample for the first shape, one
(sample, timestep) pair for the second, so positions have the shape
``predictions.shape[:-1]``.  An optional ``mask`` of that shape (``(batch,
time)`` for sequences) drops positions from the mean: a masked position adds
nothing to the loss and gets a zero gradient.  Masked positions are typically
padding, so their targets are never checked.
"""

import numpy as np

from .validation import booleans, rectangular

_POSITIONS = {2: "(batch,)", 3: "(batch, time)"}
_FEATURE_LAYOUT = {2: "(batch, features)", 3: "(batch, time, features)"}


def mse(predictions, targets, mask=None):
    """Mean squared error and its gradient.

    With predictions ``p`` and targets ``y`` of shape ``(batch, features)`` or
    ``(batch, time, features)``, ``F`` features and ``N`` unmasked positions:

    ```text
        L = 1/(N F) * sum_{unmasked n} sum_f (p[n, f] - y[n, f])^2
    ```

    Without a mask this is the plain mean over all elements.  Each element
    appears in one squared term, so:

    ```text
        dL/dp[n, f] = 2 (p[n, f] - y[n, f]) / (N F)    if n is unmasked
                    = 0                                 if n is masked
    ```

    Args:
        predictions: float array ``(batch, features)`` or ``(batch, time, features)``.
        targets: real array of the same shape (no broadcasting, so a
            ``(batch,)`` vs ``(batch, 1)`` slip is an error, not a silent outer difference).
        mask: optional booleans or 0/1 of shape ``predictions.shape[:-1]``.

    Returns:
        ``(loss, d_predictions)``: a float and an array shaped like ``predictions``.
    """
    p = _predictions(predictions, "predictions", "features")
    y = rectangular(targets, "targets", "an array of targets")
    if y.dtype.kind not in "biuf":
        raise TypeError(f"targets must be a real-valued array, got dtype {y.dtype}")
    if y.shape != p.shape:
        raise ValueError(
            f"expected targets of shape {_FEATURE_LAYOUT[p.ndim]} = {p.shape}, "
            f"the shape of the predictions, got {y.shape}"
        )
    y = y.astype(p.dtype)
    if not np.isfinite(y).all():
        raise ValueError("targets contain NaN or inf; expected finite values")
    weights, count = _position_weights(mask, p)
    features = p.shape[-1]

    diff = (p - y) * weights[..., None]  # masked positions contribute zero
    loss = float(np.sum(diff * diff)) / (count * features)
    d_predictions = (2.0 / (count * features)) * diff
    return loss, d_predictions.astype(p.dtype, copy=False)


def softmax(logits):
    """Softmax over the last axis: ``softmax(z)_k = exp(z_k) / sum_j exp(z_j)``.

    The row maximum is subtracted first; that does not change the result but
    keeps ``exp`` from overflowing.  Works for any number of leading axes.
    """
    z = rectangular(logits, "logits", "a float array")
    if z.dtype.kind not in "iuf":
        raise TypeError(f"softmax takes real-valued logits, got dtype {z.dtype}")
    if z.ndim == 0 or z.shape[-1] == 0:
        raise ValueError(f"softmax takes logits of shape (..., classes) with classes >= 1, got {z.shape}")
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def softmax_cross_entropy(logits, targets, mask=None):
    """Softmax cross-entropy with integer class targets, and its gradient.

    For one position with logits ``z`` (``C`` classes) and target class ``y``:

    ```text
        L_n = -log softmax(z)_y = logsumexp(z) - z_y
        logsumexp(z) = m + log sum_j exp(z_j - m),   m = max_j z_j   (stable)
    ```

    The loss is the mean of ``L_n`` over the ``N`` unmasked positions.  Since
    d logsumexp(z)/dz_k = softmax(z)_k and dz_y/dz_k = [k == y]:

    ```text
        dL/dz[n, k] = (softmax(z[n])_k - [k == y_n]) / N    if n is unmasked
                    = 0                                      if n is masked
    ```

    Args:
        logits: float array ``(batch, classes)`` or ``(batch, time, classes)``.
        targets: integer class ids in ``[0, classes)``, shape ``(batch,)`` or
            ``(batch, time)``.  Ids at masked positions are not checked, so
            padding such as -1 is fine there.
        mask: optional booleans or 0/1 of shape ``logits.shape[:-1]``.

    Returns:
        ``(loss, d_logits)``: a float and an array shaped like ``logits``.
    """
    z = _predictions(logits, "logits", "classes")
    weights, count = _position_weights(mask, z)
    ids = _class_ids(targets, z, weights)

    shifted = z - z.max(axis=-1, keepdims=True)  # (..., C); every row's max is now 0
    log_sum = np.log(np.exp(shifted).sum(axis=-1))  # (...,)
    picked = np.take_along_axis(shifted, ids[..., None], axis=-1)[..., 0]  # (...,) z_y - m
    loss = float(np.sum((log_sum - picked) * weights)) / count

    one_hot = np.arange(z.shape[-1]) == ids[..., None]  # (..., C)
    d_logits = (softmax(z) - one_hot) * (weights / count)[..., None]
    return loss, d_logits.astype(z.dtype, copy=False)


def accuracy(logits, targets, mask=None):
    """Fraction of (unmasked) positions whose largest logit is the target class.

    Shapes as in `softmax_cross_entropy`.  Returns a float in ``[0, 1]``.
    """
    z = _predictions(logits, "logits", "classes")
    weights, count = _position_weights(mask, z)
    ids = _class_ids(targets, z, weights)
    correct = np.argmax(z, axis=-1) == ids
    return float(np.sum(correct * weights)) / count


_BUILTINS = {
    "mse": mse,
    "cross_entropy": softmax_cross_entropy,
    "softmax_cross_entropy": softmax_cross_entropy,
}


def get(identifier):
    """Return a loss function by name (``"mse"``, ``"cross_entropy"``, ``"softmax_cross_entropy"``).

    A callable is returned unchanged, so a custom loss with the same
    ``(predictions, targets, mask=None) -> (value, d_predictions)`` signature works too.
    """
    if isinstance(identifier, str):
        if identifier not in _BUILTINS:
            raise ValueError(f"unknown loss {identifier!r}; expected one of {sorted(_BUILTINS)} or a callable")
        return _BUILTINS[identifier]
    if callable(identifier):
        return identifier
    raise TypeError(f"loss must be a name or a callable, got {type(identifier).__name__}")


def _predictions(value, name, last_axis):
    """Check a finite float array of shape ``(batch, last_axis)`` or ``(batch, time, last_axis)``."""
    array = rectangular(value, name, "a float array")
    if array.dtype.kind != "f":
        raise TypeError(f"{name} must be a floating-point array, got dtype {array.dtype}")
    if array.ndim not in (2, 3):
        raise ValueError(
            f"expected {name} of shape (batch, {last_axis}) or (batch, time, {last_axis}), "
            f"got an array of shape {array.shape}"
        )
    if array.size == 0:
        raise ValueError(f"{name} are empty (shape {array.shape}); expected at least one position")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contain NaN or inf; expected finite values")
    return array


def _class_ids(targets, logits, weights):
    """Check integer class ids of shape ``logits.shape[:-1]``; return them with masked ids set to 0.

    Only unmasked ids (``weights > 0``) must lie in ``[0, classes)``.  Masked ones
    become 0 so they can still index an array; their weight keeps them out of the result.
    """
    ids = rectangular(targets, "targets", "an array of class ids")
    if ids.dtype.kind not in "iu":
        raise TypeError(
            f"targets must be integer class ids, got dtype {ids.dtype}; "
            "for one-hot targets pass targets.argmax(axis=-1)"
        )
    if ids.shape != logits.shape[:-1]:
        raise ValueError(
            f"expected targets of shape {_POSITIONS[logits.ndim]} = {logits.shape[:-1]} "
            f"(one class id per position of logits {logits.shape}), got {ids.shape}"
        )
    classes = logits.shape[-1]
    ids = np.where(weights > 0, ids, 0)
    if ids.min() < 0 or ids.max() >= classes:
        bad = ids[(ids < 0) | (ids >= classes)][0]
        raise ValueError(f"targets hold class id {bad}, outside [0, {classes}) for logits with {classes} classes")
    return ids


def _position_weights(mask, predictions):
    """Return 1.0/0.0 weights of shape ``predictions.shape[:-1]`` and the number of 1s."""
    positions = predictions.shape[:-1]
    if mask is None:
        weights = np.ones(positions, dtype=predictions.dtype)
    else:
        array = rectangular(mask, "mask", "an array of booleans")
        if array.shape != positions:
            raise ValueError(
                f"expected a mask of shape {_POSITIONS[predictions.ndim]} = {positions}, got {array.shape}"
            )
        weights = booleans(array, "mask").astype(predictions.dtype)
    count = int(weights.sum())
    if count == 0:
        raise ValueError("the mask selects no positions (it is all zeros); the mean loss would be 0/0")
    return weights, count
