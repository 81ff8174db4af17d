"""Regularizers and constraints against hand-computed tf.keras 2 formulas and tf.keras 2 itself, alone and inside fit."""

import json
import math
import pathlib

import numpy as np
import pytest

import rnnlab as rl


W = np.array([[0.5, -2.0, 0.0], [1.5, 0.25, -0.75]])  # (in=2, out=3)


#: tf.keras 2.21's constraints and regularizers on one kernel (tests/golden/make_constraints.py)
TF_KERAS = json.loads((pathlib.Path(__file__).parent / "golden" / "constraints.json").read_text())


@pytest.mark.parametrize("case", TF_KERAS["cases"], ids=lambda c: f"{c['name']}{sorted(c['args'].items())}")
def test_equal_to_tf_keras_2_on_the_same_weights(case):
    kernel = np.array(TF_KERAS["kernel"])
    if case["kind"] == "constraint":
        np.testing.assert_allclose(getattr(rl.constraints, case["name"])(**case["args"])(kernel), case["result"],
                                   rtol=1e-12, atol=1e-15)
    else:
        regularizer = getattr(rl.regularizers, case["name"])(**case["args"])
        assert regularizer.penalty(kernel) == pytest.approx(case["penalty"], rel=1e-12)
        np.testing.assert_allclose(regularizer.gradient(kernel), case["gradient"], rtol=1e-12, atol=1e-15)


def column_norm(w, j):
    return math.sqrt(sum(w[i, j] ** 2 for i in range(w.shape[0])))


def test_penalties_and_gradients_by_object_and_by_name():
    abs_sum, square_sum = 5.0, 0.25 + 4 + 2.25 + 0.0625 + 0.5625
    assert rl.regularizers.L1(0.1).penalty(W) == pytest.approx(0.1 * abs_sum)
    assert rl.regularizers.L2(0.1).penalty(W) == pytest.approx(0.1 * square_sum)
    assert rl.regularizers.L1L2(0.1, 0.2).penalty(W) == pytest.approx(0.1 * abs_sum + 0.2 * square_sum)
    np.testing.assert_allclose(rl.regularizers.L1(0.1).gradient(W), 0.1 * np.array([[1, -1, 0], [1, 1, -1]]))
    np.testing.assert_allclose(rl.regularizers.L2(0.1).gradient(W), 0.2 * W)
    # tf.keras 2's defaults: L1() and L2() 0.01; "l1_l2" 0.01 and 0.01; L1L2() 0 and 0
    assert rl.regularizers.get("l1").penalty(W) == pytest.approx(0.01 * abs_sum)
    assert rl.regularizers.get("l2").penalty(W) == pytest.approx(0.01 * square_sum)
    assert rl.regularizers.get("l1_l2").penalty(W) == pytest.approx(0.01 * (abs_sum + square_sum))
    assert rl.regularizers.L1L2().penalty(W) == 0.0


def test_constraints_equal_the_tf_keras_2_formulas():
    eps = 1e-7
    for max_value in (0.5, 10.0):
        expected = W.copy()
        for j in range(3):  # axis=0: each column, the incoming weights of one unit
            norm = column_norm(W, j)
            expected[:, j] = W[:, j] * min(norm, max_value) / (eps + norm)
        np.testing.assert_allclose(rl.constraints.MaxNorm(max_value)(W), expected, rtol=1e-12)
    np.testing.assert_array_equal(rl.constraints.NonNeg()(W), [[0.5, 0, 0], [1.5, 0.25, 0]])
    unit = np.array([[W[i, j] / (eps + column_norm(W, j)) for j in range(3)] for i in range(2)])
    np.testing.assert_allclose(rl.constraints.UnitNorm()(W), unit, rtol=1e-12)
    expected = W.copy()
    for j in range(3):
        norm = column_norm(W, j)
        desired = 0.5 * min(max(norm, 1.0), 1.2) + 0.5 * norm
        expected[:, j] = W[:, j] * desired / (eps + norm)
    np.testing.assert_allclose(rl.constraints.MinMaxNorm(1.0, 1.2, rate=0.5)(W), expected, rtol=1e-12)
    rows = np.array([[W[i, j] / (eps + math.sqrt(sum(W[i, k] ** 2 for k in range(3)))) for j in range(3)]
                     for i in range(2)])
    np.testing.assert_allclose(rl.constraints.UnitNorm(axis=1)(W), rows, rtol=1e-12)


def test_unknown_names_are_clear_errors():
    with pytest.raises(ValueError, match="unknown regularizer 'l3'"):
        rl.LSTMCell(3, kernel_regularizer="l3")
    with pytest.raises(ValueError, match="unknown constraint 'maxnorm9'"):
        rl.GRUCell(3, recurrent_constraint="maxnorm9")


def model(**cell_options):
    return rl.Sequential([rl.RNN(rl.SimpleRNNCell(4, seed=0, dtype="float64", **cell_options)),
                          rl.Dense(2, seed=1, dtype="float64")], loss="mse", optimizer=rl.optimizers.SGD(0.1))


def test_penalties_join_the_loss_and_the_gradients_in_training(rng):
    x, y = rng.normal(size=(6, 5, 3)), rng.normal(size=(6, 2))
    plain = model()
    regularized = model(kernel_regularizer=rl.regularizers.L2(0.1), recurrent_regularizer="l1",
                        bias_regularizer=rl.regularizers.L1L2(0.0, 0.3))
    base_loss, base_grads = plain.loss_and_gradients(x, y)
    loss, grads = regularized.loss_and_gradients(x, y)
    K, R, b = regularized.layers[0].get_weights()
    penalty = 0.1 * np.sum(K ** 2) + 0.01 * np.sum(np.abs(R)) + 0.3 * np.sum(b ** 2)
    assert regularized.layers[0].losses == pytest.approx([0.1 * np.sum(K ** 2), 0.01 * np.sum(np.abs(R)),
                                                          0.3 * np.sum(b ** 2)])
    assert loss == pytest.approx(base_loss + penalty)
    hand = [0.2 * K, 0.01 * np.sign(R), 0.6 * b, 0, 0]
    for g, g0, extra in zip(grads, base_grads, hand):
        np.testing.assert_allclose(g, g0 + extra, rtol=1e-12, atol=1e-14)
    before = regularized.get_weights()
    logs = regularized.train_step(x, y)
    assert logs["loss"] == pytest.approx(loss)
    for w, w0, g in zip(regularized.get_weights(), before, grads):
        np.testing.assert_allclose(w, w0 - 0.1 * g, rtol=1e-12, atol=1e-14)
    assert regularized.evaluate(x, y)["loss"] == pytest.approx(
        plain.loss_fn(regularized.predict(x), y, None)[0] + sum(regularized.losses))


def test_constraints_act_after_each_optimizer_step_in_fit(rng):
    x, y = rng.normal(size=(6, 5, 3)), 5 * rng.normal(size=(6, 2))
    constrained = model(kernel_constraint=rl.constraints.MaxNorm(0.3), recurrent_constraint="non_neg",
                        bias_constraint=rl.constraints.MinMaxNorm(0.0, 0.1))
    free = model()
    constrained.predict(x), free.predict(x)  # builds both; the same seeds give the same weights
    before = free.get_weights()
    free.train_step(x, y)
    constrained.train_step(x, y)
    stepped = free.get_weights()
    K, R, b = constrained.layers[0].get_weights()
    np.testing.assert_allclose(K, rl.constraints.MaxNorm(0.3)(stepped[0]), rtol=1e-12)
    np.testing.assert_array_equal(R, np.where(stepped[1] >= 0, stepped[1], 0))
    assert np.linalg.norm(b) <= 0.1 + 1e-9 and np.linalg.norm(stepped[2]) > 0.1
    assert not np.allclose(before[0], K)
    constrained.fit(x, y, epochs=2, batch_size=3)
    assert np.all(np.sqrt((constrained.layers[0].cell.kernel ** 2).sum(axis=0)) <= 0.3 + 1e-9)
    assert np.all(constrained.layers[0].cell.recurrent_kernel >= 0)


def test_config_and_save_load_round_trip(tmp_path, rng):
    cell = rl.LSTMCell(3, kernel_regularizer="l1_l2", recurrent_regularizer=rl.regularizers.L2(0.5),
                       kernel_constraint=rl.constraints.MaxNorm(1.5, axis=1), bias_constraint="non_neg", seed=0)
    layer = rl.RNN(cell)
    x = rng.normal(size=(2, 3, 4)).astype("float32")
    layer(x)
    rl.save(layer, tmp_path / "lstm.rnnlab")
    loaded = rl.load(tmp_path / "lstm.rnnlab").cell
    for c in (rl.LSTMCell.from_config(cell.get_config()), loaded):
        assert c.kernel_regularizer.get_config() == {"l1": 0.01, "l2": 0.01}
        assert c.recurrent_regularizer.get_config() == {"l2": 0.5}
        assert c.kernel_constraint.get_config() == {"max_value": 1.5, "axis": 1}
        assert isinstance(c.bias_constraint, rl.constraints.NonNeg) and c.bias_regularizer is None
    assert loaded.losses == pytest.approx(cell.losses)
