"""Every cell computes the equations of DESIGN.md, in float32 and float64."""

import numpy as np
import pytest

import rnnlab as rl
import naive
from conftest import CELL_KINDS, DTYPES, TOLERANCE, make_cell, naive_step_for


def naive_batch_step(cell, x, states):
    step = naive_step_for(cell)
    results = [step(x[b], [s[b] for s in states]) for b in range(x.shape[0])]
    output = np.array([r[0] for r in results])
    new_states = [np.array([r[1][k] for r in results]) for k in range(len(states))]
    return output, new_states


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", CELL_KINDS)
@pytest.mark.parametrize("batch,features,units", [(1, 1, 1), (3, 5, 4), (2, 7, 3)])
def test_cell_step_matches_naive_reference(kind, dtype, batch, features, units, rng):
    cell = make_cell(kind, units, dtype)
    x = rng.normal(size=(batch, features))
    cell.build((None, features))
    states = [rng.normal(size=(batch, size)) * 0.5 for size in rl.nest.flatten(cell.state_size)]
    output, new_states = cell(x, cell.pack_states(states))
    expected_output, expected_states = naive_batch_step(cell, x, states)
    assert output.dtype == np.dtype(dtype)
    np.testing.assert_allclose(output, expected_output, **TOLERANCE[dtype])
    for got, want in zip(rl.nest.flatten(new_states), expected_states):
        assert got.dtype == np.dtype(dtype)
        np.testing.assert_allclose(got, want, **TOLERANCE[dtype])


@pytest.mark.parametrize("activation", ["relu", "hard_sigmoid", "hard_sigmoid_keras3", "linear", "sigmoid"])
@pytest.mark.parametrize("kind", ["simple", "gru", "gru_reset_before", "lstm"])
def test_other_activations_match_naive_reference(kind, activation, rng):
    kwargs = {"activation": activation}
    if kind != "simple":
        kwargs["recurrent_activation"] = "hard_sigmoid" if activation != "hard_sigmoid" else "sigmoid"
    cell = make_cell(kind, 3, **kwargs)
    x = rng.normal(size=(4, 2)) * 3  # large enough to reach hard_sigmoid's flat parts
    states = [rng.normal(size=(4, 3)) for _ in rl.nest.flatten(cell.state_size)]
    cell.build((None, 2))
    output, _ = cell(x, cell.pack_states(states))
    np.testing.assert_allclose(output, naive_batch_step(cell, x, states)[0], rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("kind", ["simple", "gru", "gru_reset_before", "lstm"])
def test_use_bias_false_drops_the_bias(kind, rng):
    cell = make_cell(kind, 3, use_bias=False)
    cell.build((None, 2))
    assert len(cell.get_weights()) == 2
    x, states = rng.normal(size=(2, 2)), [rng.normal(size=(2, 3)) for _ in rl.nest.flatten(cell.state_size)]
    np.testing.assert_allclose(cell(x, cell.pack_states(states))[0], naive_batch_step(cell, x, states)[0],
                               rtol=1e-12, atol=1e-13)


KERAS_SHAPES = naive.KERAS_WEIGHT_SHAPES  # Keras layouts: kernel (in, gates*u), recurrent_kernel (u, gates*u), bias


@pytest.mark.parametrize("kind", sorted(KERAS_SHAPES))
def test_get_weights_shapes_and_order_are_keras(kind):
    cell = make_cell(kind, 4)
    cell.build((None, 5))
    assert [w.shape for w in cell.get_weights()] == KERAS_SHAPES[kind]


@pytest.mark.parametrize("kind", sorted(KERAS_SHAPES))
def test_weight_shapes_are_documented_in_docstring(kind):
    doc = type(make_cell(kind, 4)).__doc__
    for name in ("kernel", "recurrent_kernel"):
        assert name in doc


def test_unit_forget_bias_starts_forget_block_at_one():
    cell = rl.LSTMCell(3, bias_initializer="normal", seed=0)
    cell.build((None, 2))
    b = cell.get_weights()[2]
    np.testing.assert_array_equal(b[3:6], np.ones(3, dtype="float32"))
    assert not np.allclose(b[:3], 1) and not np.allclose(b[6:], 1)
    plain = rl.LSTMCell(3, unit_forget_bias=False, seed=0)
    plain.build((None, 2))
    np.testing.assert_array_equal(plain.get_weights()[2], np.zeros(12))


def test_default_initializers_are_keras():
    cell = rl.LSTMCell(4, seed=0)
    cell.build((None, 3))
    K, R, b = cell.get_weights()
    limit = np.sqrt(6 / (3 + 16))  # glorot_uniform on (3, 16)
    assert np.abs(K).max() <= limit and np.abs(K).max() > 0.5 * limit
    np.testing.assert_allclose(R @ R.T, np.eye(4), atol=1e-5)  # orthogonal rows (4 < 16)
    np.testing.assert_array_equal(b, np.r_[np.zeros(4), np.ones(4), np.zeros(8)])


def test_same_seed_same_weights_and_no_global_random_state():
    np.random.seed(0)
    a = rl.GRUCell(5, seed=42)
    a.build((None, 3))
    np.random.seed(99)
    b = rl.GRUCell(5, seed=42)
    b.build((None, 3))
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    c = rl.GRUCell(5, seed=43)
    c.build((None, 3))
    assert not np.array_equal(a.get_weights()[0], c.get_weights()[0])


def test_state_and_output_sizes_follow_keras():
    assert rl.SimpleRNNCell(8).state_size == 8
    assert rl.LSTMCell(8).state_size == [8, 8] and rl.LSTMCell(8).output_size == 8
    stacked = rl.StackedRNNCells([rl.LSTMCell(8), rl.SimpleRNNCell(4)])
    assert stacked.state_size == ([8, 8], 4) and stacked.output_size == 4


def test_get_initial_state_structure_and_batch_from_inputs():
    stacked = rl.StackedRNNCells([rl.LSTMCell(3), rl.SimpleRNNCell(2)])
    states = stacked.get_initial_state(inputs=np.zeros((5, 7)))
    assert isinstance(states, list)
    assert [s.shape for s in states[0]] == [(5, 3), (5, 3)] and states[1].shape == (5, 2)
    lstm_states = rl.LSTMCell(3).get_initial_state(batch_size=2, dtype="float64")
    assert [s.dtype for s in lstm_states] == [np.float64] * 2 and not np.any(lstm_states[0])
    assert rl.SimpleRNNCell(3).get_initial_state(batch_size=4)[0].shape == (4, 3)


def test_call_builds_on_first_use_and_records_input_size():
    cell = rl.GRUCell(3)
    assert not cell.built
    cell(np.ones((2, 6), dtype="float32"))
    assert cell.built and cell.input_size == 6 and cell.get_weights()[0].shape == (6, 9)


def test_float64_cell_keeps_float64_everywhere():
    cell = rl.LSTMCell(3, dtype="float64")
    out, states = cell(np.ones((1, 2), dtype="float32"))
    assert out.dtype == np.float64 and all(w.dtype == np.float64 for w in cell.get_weights())


@pytest.mark.parametrize("kind", CELL_KINDS)
def test_config_round_trip_rebuilds_an_equal_cell(kind, rng):
    cell = make_cell(kind, 3)
    clone = type(cell).from_config(cell.get_config())
    assert clone.get_config() == cell.get_config()
    x = rng.normal(size=(2, 4))
    np.testing.assert_array_equal(cell(x)[0], clone(x)[0])  # same seed, same weights


def test_set_weights_replaces_weights_and_copies():
    cell = rl.SimpleRNNCell(2, dtype="float64")
    cell.build((None, 3))
    new = [np.full((3, 2), 0.5), np.eye(2), np.array([1.0, -1.0])]
    cell.set_weights(new)
    new[0][:] = 9  # the cell keeps its own copy
    out, _ = cell(np.ones((1, 3)))
    np.testing.assert_allclose(out, np.tanh([[2.5, 0.5]]))


def test_trainable_flag_and_repr():
    cell = rl.LSTMCell(4, trainable=False)
    assert cell.trainable is False
    assert "LSTMCell" in repr(cell) and "units=4" in repr(cell)
