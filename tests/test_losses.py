"""Losses: values against slow loop references, gradients against central finite differences."""

import math

import numpy as np
import pytest

from rnnlab import losses

# ----------------------------------------------------------------------------
# Slow, obviously correct references: one position at a time, plain Python floats
# ----------------------------------------------------------------------------


def positions(shape):
    """All position indices of an array whose last axis is features/classes."""
    return list(np.ndindex(*shape[:-1]))


def mse_loop(p, y, mask=None):
    total, count = 0.0, 0
    for pos in positions(p.shape):
        if mask is not None and not mask[pos]:
            continue
        count += 1
        for f in range(p.shape[-1]):
            total += (float(p[pos][f]) - float(y[pos][f])) ** 2
    return total / (count * p.shape[-1])


def cross_entropy_loop(z, ids, mask=None):
    total, count = 0.0, 0
    for pos in positions(z.shape):
        if mask is not None and not mask[pos]:
            continue
        count += 1
        row = [float(v) for v in z[pos]]
        top = max(row)
        log_sum = top + math.log(sum(math.exp(v - top) for v in row))
        total += log_sum - row[ids[pos]]
    return total / count


def numerical_gradient(fn, x, h=1e-6):
    """Central differences: (f(x + h e_i) - f(x - h e_i)) / 2h for every entry i."""
    grad = np.zeros_like(x)
    for i in np.ndindex(*x.shape):
        plus, minus = x.copy(), x.copy()
        plus[i] += h
        minus[i] -= h
        grad[i] = (fn(plus) - fn(minus)) / (2 * h)
    return grad


def relative_error(a, b):
    return np.max(np.abs(a - b)) / max(np.max(np.abs(a)), np.max(np.abs(b)), 1e-300)


SHAPES = [(3, 4), (1, 1), (2, 5, 3), (1, 1, 2), (4, 1, 3)]


def random_mask(rng, shape):
    mask = rng.random(shape[:-1]) < 0.6
    mask.flat[0] = True  # never all zeros
    return mask


# ----------------------------------------------------------------------------
# MSE
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("masked", [False, True])
def test_mse_value_and_gradient(shape, masked):
    rng = np.random.default_rng(1)
    p, y = rng.normal(size=shape), rng.normal(size=shape)
    mask = random_mask(rng, shape) if masked else None

    value, grad = losses.mse(p, y, mask)
    assert grad.shape == p.shape
    np.testing.assert_allclose(value, mse_loop(p, y, mask), rtol=1e-12)
    numeric = numerical_gradient(lambda q: mse_loop(q, y, mask), p)
    assert relative_error(grad, numeric) < 1e-6


def test_mse_masked_positions_get_zero_gradient_and_do_not_count():
    p = np.array([[[1.0], [5.0]], [[2.0], [7.0]]])  # (batch=2, time=2, features=1)
    y = np.zeros_like(p)
    mask = np.array([[1, 0], [1, 0]])
    value, grad = losses.mse(p, y, mask)
    assert value == pytest.approx((1.0 + 4.0) / 2)  # mean of 1^2 and 2^2
    assert grad[0, 1, 0] == 0 and grad[1, 1, 0] == 0
    np.testing.assert_allclose(grad[:, 0, 0], [2 * 1.0 / 2, 2 * 2.0 / 2])


def test_mse_keeps_float32():
    p = np.ones((2, 3), np.float32)
    value, grad = losses.mse(p, np.zeros((2, 3), np.float32))
    assert isinstance(value, float) and value == 1.0
    assert grad.dtype == np.float32


# ----------------------------------------------------------------------------
# Softmax cross-entropy
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("masked", [False, True])
def test_cross_entropy_value_and_gradient(shape, masked):
    rng = np.random.default_rng(2)
    z = rng.normal(size=shape) * 3
    ids = rng.integers(0, shape[-1], size=shape[:-1])
    mask = random_mask(rng, shape) if masked else None

    value, grad = losses.softmax_cross_entropy(z, ids, mask)
    assert grad.shape == z.shape
    np.testing.assert_allclose(value, cross_entropy_loop(z, ids, mask), rtol=1e-12)
    numeric = numerical_gradient(lambda q: cross_entropy_loop(q, ids, mask), z)
    assert relative_error(grad, numeric) < 1e-6


def test_cross_entropy_is_stable_for_huge_logits():
    # -log softmax([1000, 0])_0 = log(1 + e^-1000) ~ 0;  for class 1 it is 1000 + log(1 + e^-1000) ~ 1000
    z = np.array([[1000.0, 0.0], [1000.0, 0.0]])
    value, grad = losses.softmax_cross_entropy(z, np.array([0, 1]))
    assert value == pytest.approx((0.0 + 1000.0) / 2)
    assert np.isfinite(grad).all()
    # softmax is [1, 0] in both rows: gradient (p - onehot) / 2
    np.testing.assert_allclose(grad, [[0.0, 0.0], [0.5, -0.5]], atol=1e-300)


def test_cross_entropy_uniform_logits_give_log_classes():
    value, _ = losses.softmax_cross_entropy(np.zeros((3, 4, 5)), np.zeros((3, 4), dtype=int))
    assert value == pytest.approx(math.log(5))


def test_cross_entropy_ignores_padding_ids_at_masked_positions():
    rng = np.random.default_rng(3)
    z = rng.normal(size=(2, 3, 4))
    ids = np.array([[1, 2, -1], [3, -1, 99]])
    mask = ids >= 0
    mask[1, 2] = False
    value, grad = losses.softmax_cross_entropy(z, ids, mask)
    np.testing.assert_allclose(value, cross_entropy_loop(z, ids, mask), rtol=1e-12)
    assert not grad[~mask].any()


def test_cross_entropy_keeps_float32():
    value, grad = losses.softmax_cross_entropy(np.zeros((2, 3), np.float32), np.array([0, 2]))
    assert isinstance(value, float)
    assert grad.dtype == np.float32


def test_softmax_matches_loop():
    rng = np.random.default_rng(4)
    z = rng.normal(size=(2, 3, 4)) * 5
    s = losses.softmax(z)
    for pos in positions(z.shape):
        exps = [math.exp(v) for v in z[pos]]
        np.testing.assert_allclose(s[pos], [e / sum(exps) for e in exps], rtol=1e-12)


def test_accuracy_counts_unmasked_argmax_hits():
    z = np.array([[[0.0, 1.0], [2.0, 0.0], [0.0, 3.0]]])  # argmax per step: 1, 0, 1
    ids = np.array([[1, 1, 1]])
    assert losses.accuracy(z, ids) == pytest.approx(2 / 3)
    assert losses.accuracy(z, ids, mask=np.array([[1, 0, 1]])) == 1.0
    assert losses.accuracy(z[:, 1], np.array([0])) == 1.0  # last-output shape


# ----------------------------------------------------------------------------
# Bad input and lookup
# ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, error, fragment",
    [
        (lambda: losses.mse(np.zeros((2, 3)), np.zeros((2,))), ValueError, "(batch, features) = (2, 3)"),
        (lambda: losses.mse(np.zeros((2, 4, 3)), np.zeros((2, 4, 1))), ValueError, "(batch, time, features)"),
        (lambda: losses.mse(np.zeros(3), np.zeros(3)), ValueError, "(batch, time, features)"),
        (lambda: losses.mse(np.zeros((2, 3), int), np.zeros((2, 3))), TypeError, "floating-point"),
        (lambda: losses.mse(np.full((1, 2), np.nan), np.zeros((1, 2))), ValueError, "NaN"),
        (lambda: losses.mse(np.zeros((2, 4, 3)), np.zeros((2, 4, 3)), mask=np.ones((2, 3))),
         ValueError, "(batch, time) = (2, 4)"),
        (lambda: losses.mse(np.zeros((2, 4, 3)), np.zeros((2, 4, 3)), mask=np.zeros((2, 4))),
         ValueError, "all zeros"),
        (lambda: losses.mse(np.zeros((2, 4, 3)), np.zeros((2, 4, 3)), mask=np.full((2, 4), 2)),
         ValueError, "0/1"),
        (lambda: losses.softmax_cross_entropy(np.zeros((2, 3)), np.array([0.0, 1.0])), TypeError, "integer"),
        (lambda: losses.softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 3])), ValueError, "[0, 3)"),
        (lambda: losses.softmax_cross_entropy(np.zeros((2, 3)), np.array([-1, 0])), ValueError, "-1"),
        (lambda: losses.softmax_cross_entropy(np.zeros((2, 5, 3)), np.zeros((2, 4), int)),
         ValueError, "(batch, time) = (2, 5)"),
        (lambda: losses.softmax_cross_entropy(np.zeros((2, 5, 3)), np.zeros((2, 5), int), mask=np.ones(2)),
         ValueError, "(batch, time) = (2, 5)"),
        (lambda: losses.softmax_cross_entropy(np.zeros((0, 3)), np.zeros(0, int)), ValueError, "empty"),
        (lambda: losses.accuracy(np.zeros((2, 3)), np.array([0, 1]), mask=[False, False]), ValueError, "all zeros"),
    ],
)
def test_bad_input_raises_clear_errors(call, error, fragment):
    with pytest.raises(error) as info:
        call()
    assert fragment in str(info.value)


def test_get():
    assert losses.get("mse") is losses.mse
    assert losses.get("cross_entropy") is losses.softmax_cross_entropy
    assert losses.get("softmax_cross_entropy") is losses.softmax_cross_entropy
    assert losses.get(losses.mse) is losses.mse
    with pytest.raises(ValueError, match="unknown loss 'hinge'"):
        losses.get("hinge")
    with pytest.raises(TypeError):
        losses.get(3)
