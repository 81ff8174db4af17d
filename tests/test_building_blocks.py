"""Activations, initializers and nested-structure helpers do what their docstrings say."""

import math

import numpy as np
import pytest

import rnnlab as rl
from rnnlab import activations, initializers, nest

POINTS = np.linspace(-8, 8, 161)


@pytest.mark.parametrize("name,scalar", [
    ("tanh", math.tanh),
    ("sigmoid", lambda v: 1 / (1 + math.exp(-v))),
    ("relu", lambda v: max(v, 0.0)),
    ("hard_sigmoid", lambda v: min(max(0.2 * v + 0.5, 0.0), 1.0)),  # tf.keras 2
    ("hard_sigmoid_keras3", lambda v: min(max((v + 3) / 6, 0.0), 1.0)),  # Keras 3: relu6(x + 3) / 6
    ("linear", lambda v: v),
])
def test_activation_values_and_derivatives(name, scalar):
    act = activations.get(name)
    np.testing.assert_allclose(act(POINTS), [scalar(v) for v in POINTS], rtol=1e-12, atol=1e-15)
    # Derivative against central differences, away from the kinks of relu and hard_sigmoid.
    smooth = POINTS[(np.abs(POINTS) > 0.05) & (np.abs(np.abs(POINTS) - 3) > 0.05) & (np.abs(np.abs(POINTS) - 2.5) > 0.05)]
    eps = 1e-6
    numeric = [(scalar(v + eps) - scalar(v - eps)) / (2 * eps) for v in smooth]
    np.testing.assert_allclose(act.grad(smooth, act(smooth)), numeric, rtol=1e-6, atol=1e-9)


def test_sigmoid_does_not_overflow_and_keeps_dtype():
    x = np.array([-1000.0, 1000.0], dtype="float32")
    with np.errstate(over="raise"):
        y = activations.sigmoid(x)
    assert y.dtype == np.float32 and y[0] == 0 and y[1] == 1


def test_callable_activation_works_forward_but_has_no_derivative():
    act = activations.get(np.sin)
    np.testing.assert_allclose(act(POINTS), np.sin(POINTS))
    with pytest.raises(NotImplementedError, match="no derivative"):
        act.grad(POINTS, act(POINTS))


def test_glorot_uniform_bounds_and_spread():
    w = initializers.get("glorot_uniform")((300, 200), np.random.default_rng(0), "float64")
    limit = math.sqrt(6 / 500)
    assert np.abs(w).max() <= limit
    np.testing.assert_allclose(w.var(), limit**2 / 3, rtol=0.05)  # variance of U(-l, l)


@pytest.mark.parametrize("shape", [(4, 4), (3, 12), (12, 3)])
def test_orthogonal_is_orthogonal(shape):
    w = initializers.get("orthogonal")(shape, np.random.default_rng(0), "float64")
    small = min(shape)
    gram = w @ w.T if shape[0] <= shape[1] else w.T @ w
    np.testing.assert_allclose(gram, np.eye(small), atol=1e-12)


def test_uniform_normal_constants():
    rng = np.random.default_rng(0)
    u = initializers.get("uniform")((10000,), rng, "float64")
    assert -0.05 <= u.min() and u.max() <= 0.05
    n = initializers.get("normal")((10000,), rng, "float64")
    np.testing.assert_allclose(n.std(), 0.05, rtol=0.05)
    assert not initializers.get("zeros")((2, 2), rng, "float32").any()
    assert (initializers.get("ones")((2,), rng, "float32") == 1).all()
    custom = initializers.Uniform(2, 3)((100,), rng, "float32")
    assert custom.dtype == np.float32 and custom.min() >= 2


def test_nest_flatten_pack_round_trip():
    structure = ([8, 8], 4, (2, (3,)))
    flat = nest.flatten(structure)
    assert flat == [8, 8, 4, 2, 3]
    assert nest.pack_sequence_as(structure, list("abcde")) == (["a", "b"], "c", ("d", ("e",)))
    assert nest.map_structure(lambda v: v * 2, structure) == ([16, 16], 8, (4, (6,)))
    with pytest.raises(ValueError, match="expected 5 leaves"):
        nest.pack_sequence_as(structure, [1, 2])


def test_public_names_of_the_design_contract():
    for name in ("LSTMCell", "GRUCell", "SimpleRNNCell", "MinimalRNNCell", "StackedRNNCells", "RNN",
                 "Bidirectional", "Dense", "AbstractRNNCell", "save", "load"):
        assert hasattr(rl, name), name
