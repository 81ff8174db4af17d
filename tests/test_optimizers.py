"""Optimizers against hand-written scalar updates, clipping against its definition, schedules against formulas."""

import math

import numpy as np
import pytest

from rnnlab import optimizers as opt

# The quadratic f(w) = sum_i c_i (w_i - b_i)^2 has gradient 2 c_i (w_i - b_i) and its minimum at w = b.
C = [1.0, 3.0]
B = [0.5, -2.0]
W0 = [2.0, 1.0]


def quadratic_grad(w):
    return [2 * c * (wi - b) for wi, c, b in zip(w, C, B)]


def run(optimizer, steps, w0=W0):
    """Apply ``steps`` updates on the quadratic; return the list of parameter vectors after each step."""
    params = [np.array(w0)]
    history = []
    for _ in range(steps):
        params = optimizer.apply(params, [np.array(quadratic_grad(params[0]))])
        history.append(params[0].tolist())
    return history


# ----------------------------------------------------------------------------
# Hand-computed updates: plain Python floats, one scalar at a time, straight from
# the Keras 3 equations written out in each function.
# ----------------------------------------------------------------------------


def sgd_by_hand(steps, lr, momentum=0.0, nesterov=False):
    w, v, out = list(W0), [0.0, 0.0], []
    for _ in range(steps):
        g = quadratic_grad(w)
        for i in range(2):
            if momentum == 0:
                w[i] = w[i] - lr * g[i]
            else:
                v[i] = momentum * v[i] - lr * g[i]
                w[i] = w[i] + (momentum * v[i] - lr * g[i] if nesterov else v[i])
        out.append(list(w))
    return out


def adam_by_hand(steps, lr, beta_1, beta_2, eps):
    w, m, v, out = list(W0), [0.0, 0.0], [0.0, 0.0], []
    for t in range(1, steps + 1):
        g = quadratic_grad(w)
        for i in range(2):
            m[i] = beta_1 * m[i] + (1 - beta_1) * g[i]
            v[i] = beta_2 * v[i] + (1 - beta_2) * g[i] ** 2
            alpha = lr * math.sqrt(1 - beta_2**t) / (1 - beta_1**t)
            w[i] = w[i] - alpha * m[i] / (math.sqrt(v[i]) + eps)
        out.append(list(w))
    return out


def rmsprop_by_hand(steps, lr, rho, momentum, eps):
    w, s, b, out = list(W0), [0.0, 0.0], [0.0, 0.0], []
    for _ in range(steps):
        g = quadratic_grad(w)
        for i in range(2):
            s[i] = rho * s[i] + (1 - rho) * g[i] ** 2
            step = lr * g[i] / math.sqrt(s[i] + eps)
            if momentum == 0:
                w[i] = w[i] - step
            else:
                b[i] = momentum * b[i] + step
                w[i] = w[i] - b[i]
        out.append(list(w))
    return out


def adagrad_by_hand(steps, lr, initial, eps):
    w, a, out = list(W0), [initial, initial], []
    for _ in range(steps):
        g = quadratic_grad(w)
        for i in range(2):
            a[i] = a[i] + g[i] ** 2
            w[i] = w[i] - lr * g[i] / math.sqrt(a[i] + eps)
        out.append(list(w))
    return out


HAND_CASES = [
    (lambda: opt.SGD(0.1), lambda: sgd_by_hand(3, 0.1)),
    (lambda: opt.SGD(0.05, momentum=0.9), lambda: sgd_by_hand(3, 0.05, 0.9)),
    (lambda: opt.SGD(0.05, momentum=0.9, nesterov=True), lambda: sgd_by_hand(3, 0.05, 0.9, True)),
    (lambda: opt.Adam(0.1), lambda: adam_by_hand(3, 0.1, 0.9, 0.999, 1e-7)),
    (lambda: opt.Adam(0.02, beta_1=0.5, beta_2=0.8, epsilon=0.3), lambda: adam_by_hand(3, 0.02, 0.5, 0.8, 0.3)),
    (lambda: opt.RMSprop(0.01), lambda: rmsprop_by_hand(3, 0.01, 0.9, 0.0, 1e-7)),
    (lambda: opt.RMSprop(0.01, rho=0.5, momentum=0.7, epsilon=0.2), lambda: rmsprop_by_hand(3, 0.01, 0.5, 0.7, 0.2)),
    (lambda: opt.Adagrad(0.1), lambda: adagrad_by_hand(3, 0.1, 0.1, 1e-7)),
    (lambda: opt.Adagrad(0.3, initial_accumulator_value=2.0, epsilon=0.5), lambda: adagrad_by_hand(3, 0.3, 2.0, 0.5)),
]


@pytest.mark.parametrize("make, by_hand", HAND_CASES)
def test_three_steps_match_the_hand_computed_update(make, by_hand):
    np.testing.assert_allclose(run(make(), 3), by_hand(), rtol=1e-13, atol=1e-15)


def test_sgd_momentum_first_two_steps_in_numbers():
    # f(w) = w^2 / 2, so g = w.  lr 0.1, momentum 0.9, w0 = 1:
    # v1 = -0.1 * 1 = -0.1, w1 = 0.9;  v2 = 0.9 * -0.1 - 0.1 * 0.9 = -0.18, w2 = 0.72
    optimizer = opt.SGD(0.1, momentum=0.9)
    w1 = optimizer.apply([np.array([1.0])], [np.array([1.0])])
    w2 = optimizer.apply(w1, [w1[0].copy()])
    assert w1[0][0] == pytest.approx(0.9, abs=1e-15)
    assert w2[0][0] == pytest.approx(0.72, abs=1e-15)


def test_rmsprop_first_step_in_numbers():
    # f(w) = w^2 / 2 at w = 10, g = 10, lr 0.1: s = 0.1 * 100 = 10, step = 0.1 * 10 / sqrt(10 + 1e-7)
    # = 0.3162277..., so w = 9.683772 (the number in Keras' RMSprop docstring).
    w = opt.RMSprop(0.1).apply([np.array(10.0)], [np.array(10.0)])
    assert float(w[0]) == pytest.approx(9.683772, abs=1e-6)


def test_adam_first_step_is_about_lr_times_sign():
    # t = 1: m = 0.1 g, v = 0.001 g^2, alpha = lr sqrt(0.001) / 0.1, so
    # w1 = w0 - lr g / (|g| + eps / sqrt(0.001)): a step of lr against the gradient's sign.
    w = opt.Adam(0.01).apply([np.array([1.0, -1.0])], [np.array([4.0, -0.5])])
    expected = [1.0 - 0.01 * 4.0 / (4.0 + 1e-7 / math.sqrt(0.001)), -1.0 + 0.01 * 0.5 / (0.5 + 1e-7 / math.sqrt(0.001))]
    np.testing.assert_allclose(w[0], expected, rtol=1e-13)


@pytest.mark.parametrize(
    "make, steps",
    [
        (lambda: opt.SGD(0.1), 200),
        (lambda: opt.SGD(0.05, momentum=0.9, nesterov=True), 300),
        (lambda: opt.Adam(0.05), 1000),
        (lambda: opt.RMSprop(0.01), 1000),
        (lambda: opt.Adagrad(0.5), 1000),
    ],
)
def test_converges_to_the_minimum_of_the_quadratic(make, steps):
    np.testing.assert_allclose(run(make(), steps)[-1], B, atol=1e-2)


def test_several_parameters_keep_separate_slots():
    # Two parameters updated together must match each updated alone.
    together = opt.Adam(0.1)
    params, grads = [np.array([1.0, 2.0]), np.array([[3.0]])], [np.array([0.5, -1.0]), np.array([[2.0]])]
    both = together.apply(params, grads)
    both = together.apply(both, grads)
    for i in range(2):
        alone = opt.Adam(0.1)
        single = alone.apply([params[i]], [grads[i]])
        single = alone.apply(single, [grads[i]])
        np.testing.assert_array_equal(both[i], single[0])


# ----------------------------------------------------------------------------
# apply: no mutation, dtypes, validation, counters
# ----------------------------------------------------------------------------


ALL = [
    lambda: opt.SGD(0.1),
    lambda: opt.SGD(0.1, momentum=0.5),
    lambda: opt.Adam(),
    lambda: opt.RMSprop(momentum=0.5),
    lambda: opt.Adagrad(),
]


@pytest.mark.parametrize("make", ALL)
def test_apply_returns_new_arrays_and_leaves_inputs_alone(make):
    optimizer = make()
    params = [np.ones((2, 3)), np.zeros(4)]
    grads = [np.full((2, 3), 0.5), np.ones(4)]
    params_before, grads_before = [p.copy() for p in params], [g.copy() for g in grads]
    for _ in range(2):
        new = optimizer.apply(params, grads)
    for p, before in zip(params + grads, params_before + grads_before):
        np.testing.assert_array_equal(p, before)
    assert all(n is not p for n, p in zip(new, params))
    assert not np.array_equal(new[0], params[0])
    assert optimizer.iterations == 2


@pytest.mark.parametrize("make", ALL)
def test_float32_stays_float32(make):
    new = make().apply([np.ones(3, np.float32)], [np.ones(3, np.float32)])
    assert new[0].dtype == np.float32


@pytest.mark.parametrize(
    "params, grads, error, fragment",
    [
        ([np.ones(2)], [np.ones(2), np.ones(2)], ValueError, "1 params but 2 grads"),
        ([np.ones(2), np.ones(3)], [np.ones(2), np.ones((3, 1))], ValueError, "grads[1] of shape (3,)"),
        ([np.ones(2), np.ones(3)], [np.ones(2), np.array([1.0, np.nan, 0.0])], ValueError, "grads[1] contains NaN"),
        ([np.ones(2)], [np.array([np.inf, 0.0])], ValueError, "grads[0]"),
        (np.ones(2), [np.ones(2)], TypeError, "params must be a list"),
        ([np.ones(2, int)], [np.ones(2)], TypeError, "params[0]"),
    ],
)
def test_bad_apply_raises_and_changes_nothing(params, grads, error, fragment):
    optimizer = opt.Adam()
    good = [np.ones(2)]
    optimizer.apply(good, [np.ones(2)])
    slots_before = {k: v.copy() for k, v in optimizer.slots[0].items()}
    with pytest.raises(error) as info:
        optimizer.apply(params, grads)
    assert fragment in str(info.value)
    assert optimizer.iterations == 1
    for key, value in slots_before.items():
        np.testing.assert_array_equal(optimizer.slots[0][key], value)


def test_changing_parameter_shapes_is_an_error():
    optimizer = opt.SGD(0.1)
    optimizer.apply([np.ones(2)], [np.ones(2)])
    with pytest.raises(ValueError, match=r"shapes \[\(2,\)\], got shapes \[\(3,\)\]"):
        optimizer.apply([np.ones(3)], [np.ones(3)])


@pytest.mark.parametrize(
    "make, fragment",
    [
        (lambda: opt.SGD(-0.1), "learning_rate"),
        (lambda: opt.SGD(0.1, momentum=1.5), "momentum"),
        (lambda: opt.Adam(beta_1=1.0), "beta_1"),
        (lambda: opt.RMSprop(rho=-0.1), "rho"),
        (lambda: opt.Adagrad(initial_accumulator_value=-1), "initial_accumulator_value"),
        (lambda: opt.Adam(epsilon=0), "epsilon"),
        (lambda: opt.SGD(clipnorm=1.0, clipvalue=1.0), "at most one"),
        (lambda: opt.SGD(clipnorm=0), "clipnorm"),
        (lambda: opt.StepDecay(0.1, 0, 0.5), "drop_every"),
        (lambda: opt.CosineDecay(0.1, 10, alpha=2), "alpha"),
    ],
)
def test_bad_hyperparameters(make, fragment):
    with pytest.raises((ValueError, TypeError), match=fragment):
        make()


# ----------------------------------------------------------------------------
# Clipping, against its definition
# ----------------------------------------------------------------------------


def test_clip_by_global_norm_rescales_all_gradients_together():
    grads = [np.array([3.0, 4.0]), np.array([[12.0]])]
    norm = math.sqrt(3.0**2 + 4.0**2 + 12.0**2)  # 13
    clipped, got_norm, was_clipped = opt.clip_by_global_norm(grads, 6.5)
    assert got_norm == pytest.approx(norm)
    assert was_clipped
    new_norm = math.sqrt(sum(float(np.sum(g**2)) for g in clipped))
    assert new_norm == pytest.approx(6.5)
    # Same direction: each entry shrank by the same factor 6.5 / 13.
    for g, c in zip(grads, clipped):
        np.testing.assert_allclose(c, g * 0.5)
        assert c.shape == g.shape


def test_clip_by_global_norm_leaves_small_gradients_unchanged():
    grads = [np.array([3.0, 4.0], np.float32)]
    for max_norm in (5.0, 10.0):  # at and above the norm
        clipped, norm, was_clipped = opt.clip_by_global_norm(grads, max_norm)
        assert norm == pytest.approx(5.0) and not was_clipped
        np.testing.assert_array_equal(clipped[0], grads[0])
        assert clipped[0].dtype == np.float32
    clipped, norm, was_clipped = opt.clip_by_global_norm([np.zeros(3)], 1.0)
    assert norm == 0.0 and not was_clipped
    np.testing.assert_array_equal(clipped[0], np.zeros(3))


def test_clip_by_value_clips_each_entry():
    grads = [np.array([-3.0, 0.2, 1.5]), np.array([[0.9]])]
    clipped, was_clipped = opt.clip_by_value(grads, 1.0)
    assert was_clipped
    np.testing.assert_array_equal(clipped[0], [-1.0, 0.2, 1.0])
    np.testing.assert_array_equal(clipped[1], [[0.9]])
    _, was_clipped = opt.clip_by_value([np.array([0.5, -1.0])], 1.0)
    assert not was_clipped


def test_optimizer_clipnorm_records_the_norm_and_the_event():
    optimizer = opt.SGD(1.0, clipnorm=6.5)
    params = [np.zeros(2), np.zeros((1, 1))]
    new = optimizer.apply(params, [np.array([3.0, 4.0]), np.array([[12.0]])])
    # w = 0 - 1.0 * g * 6.5 / 13
    np.testing.assert_allclose(new[0], [-1.5, -2.0])
    np.testing.assert_allclose(new[1], [[-6.0]])
    assert optimizer.last_clipped and optimizer.last_grad_norm == pytest.approx(13.0)
    optimizer.apply(new, [np.array([0.3, 0.4]), np.array([[0.0]])])
    assert not optimizer.last_clipped and optimizer.last_grad_norm == pytest.approx(0.5)


def test_optimizer_clipvalue():
    optimizer = opt.SGD(1.0, clipvalue=0.5)
    new = optimizer.apply([np.zeros(3)], [np.array([2.0, -0.1, -7.0])])
    np.testing.assert_allclose(new[0], [-0.5, 0.1, 0.5])
    assert optimizer.last_clipped
    assert optimizer.last_grad_norm == pytest.approx(math.sqrt(4 + 0.01 + 49))


def test_without_clipping_the_norm_is_still_recorded():
    optimizer = opt.Adam()
    optimizer.apply([np.zeros(2)], [np.array([6.0, 8.0])])
    assert optimizer.last_grad_norm == pytest.approx(10.0) and not optimizer.last_clipped


# ----------------------------------------------------------------------------
# Schedules, against their formulas
# ----------------------------------------------------------------------------


def test_step_decay():
    schedule = opt.StepDecay(0.1, drop_every=10, factor=0.5)
    for step, expected in [(0, 0.1), (9, 0.1), (10, 0.05), (19, 0.05), (25, 0.025)]:
        assert schedule(step) == pytest.approx(expected, rel=1e-15)


def test_cosine_decay():
    schedule = opt.CosineDecay(2.0, decay_steps=100, alpha=0.1)
    # 2 * (0.9 * 0.5 * (1 + cos(pi * s / 100)) + 0.1)
    assert schedule(0) == pytest.approx(2.0)
    assert schedule(25) == pytest.approx(2 * (0.45 * (1 + math.sqrt(0.5)) + 0.1))
    assert schedule(50) == pytest.approx(2 * (0.45 + 0.1))
    assert schedule(100) == pytest.approx(0.2)
    assert schedule(1000) == pytest.approx(0.2)  # stays at alpha * initial


def test_exponential_decay():
    smooth = opt.ExponentialDecay(1.0, decay_steps=10, decay_rate=0.5)
    stairs = opt.ExponentialDecay(1.0, decay_steps=10, decay_rate=0.5, staircase=True)
    assert smooth(5) == pytest.approx(math.sqrt(0.5))
    assert stairs(5) == 1.0
    assert smooth(20) == pytest.approx(0.25) and stairs(29) == pytest.approx(0.25)


def test_negative_step_is_an_error():
    with pytest.raises(ValueError, match="step"):
        opt.StepDecay(0.1, 10, 0.5)(-1)


def test_optimizer_uses_schedule_at_its_iteration_count():
    # SGD on g = 1 moves w by -lr(t) at step t; lr(0) = lr(1) = 1, lr(2) = lr(3) = 0.5
    optimizer = opt.SGD(opt.StepDecay(1.0, drop_every=2, factor=0.5))
    params = [np.zeros(1)]
    seen = []
    for _ in range(4):
        seen.append(optimizer.current_learning_rate)
        params = optimizer.apply(params, [np.ones(1)])
    assert seen == [1.0, 1.0, 0.5, 0.5]
    assert params[0][0] == pytest.approx(-3.0)


def test_plain_callable_learning_rate():
    optimizer = opt.SGD(lambda step: 0.1 / (step + 1))
    params = optimizer.apply([np.zeros(1)], [np.ones(1)])
    params = optimizer.apply(params, [np.ones(1)])
    assert params[0][0] == pytest.approx(-(0.1 + 0.05))


def test_schedule_returning_nan_is_an_error_and_changes_nothing():
    optimizer = opt.SGD(lambda step: float("nan"))
    with pytest.raises(ValueError, match="schedule returned nan"):
        optimizer.apply([np.zeros(1)], [np.ones(1)])
    assert optimizer.iterations == 0 and optimizer.slots is None


# ----------------------------------------------------------------------------
# Lookup, config, repr
# ----------------------------------------------------------------------------


def test_get():
    adam = opt.get("adam", learning_rate=0.01)
    assert isinstance(adam, opt.Adam) and adam.learning_rate == 0.01
    assert isinstance(opt.get("RMSprop"), opt.RMSprop)
    assert opt.get(adam) is adam
    with pytest.raises(ValueError, match="unknown optimizer 'adamw'"):
        opt.get("adamw")
    with pytest.raises(ValueError, match="extra arguments"):
        opt.get(adam, learning_rate=0.1)
    with pytest.raises(TypeError):
        opt.get(3)


@pytest.mark.parametrize(
    "optimizer",
    [
        opt.SGD(0.1, momentum=0.9, nesterov=True, clipnorm=1.0),
        opt.Adam(opt.CosineDecay(0.01, 100, alpha=0.1), clipvalue=0.5),
        opt.RMSprop(rho=0.8, momentum=0.2),
        opt.Adagrad(opt.StepDecay(0.1, 5, 0.5), initial_accumulator_value=0.3),
    ],
)
def test_config_round_trip_and_repr(optimizer):
    config = optimizer.get_config()
    rebuilt = type(optimizer).from_config(config)
    assert rebuilt.get_config() == config
    # Same config, same updates.
    np.testing.assert_array_equal(run(rebuilt, 3), run(optimizer, 3))
    assert repr(optimizer).startswith(type(optimizer).__name__ + "(")
    assert "learning_rate=" in repr(optimizer)
