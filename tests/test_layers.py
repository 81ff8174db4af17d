"""The RNN driver, Bidirectional and Dense follow Keras semantics, checked against naive.py."""

import numpy as np
import pytest

import naive
import rnnlab as rl
from conftest import CELL_KINDS, DTYPES, TOLERANCE, make_cell, naive_step_for


def random_states(cell, batch, rng):
    return [rng.normal(size=(batch, size)) * 0.5 for size in rl.nest.flatten(cell.state_size)]


def random_mask(batch, time, rng):
    mask = rng.random((batch, time)) < 0.6
    mask[0, -1] = False  # the last step masked somewhere, so carry-over shows in the last output
    return mask


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", CELL_KINDS)
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("zero_output_for_mask", [False, True])
def test_rnn_sequences_match_naive_keras_semantics(kind, dtype, go_backwards, masked, zero_output_for_mask, rng):
    batch, time, features = 3, 6, 2
    cell = make_cell(kind, 3, dtype)
    layer = rl.RNN(cell, return_sequences=True, return_state=True, go_backwards=go_backwards,
                   zero_output_for_mask=zero_output_for_mask, backend="python")
    x = rng.normal(size=(batch, time, features))
    mask = random_mask(batch, time, rng) if masked else None
    initial = random_states(cell, batch, rng)
    y, *final = layer(x, initial_state=initial, mask=mask)
    want_y, want_final = naive.run_sequence(naive_step_for(cell), x, initial, mask, go_backwards,
                                            zero_output_for_mask)
    np.testing.assert_allclose(y, want_y, **TOLERANCE[dtype])
    for got, want in zip(rl.nest.flatten(final), want_final, strict=True):
        np.testing.assert_allclose(got, want, **TOLERANCE[dtype])
    # Without return_sequences the layer returns the last processed output.
    last = rl.RNN(cell, go_backwards=go_backwards, zero_output_for_mask=zero_output_for_mask)(
        x, initial_state=initial, mask=mask)
    np.testing.assert_allclose(last, want_y[:, -1], **TOLERANCE[dtype])


def test_masked_step_repeats_previous_output_and_keeps_state(rng):
    cell = make_cell("lstm", 2)
    x = rng.normal(size=(1, 4, 3))
    mask = np.array([[True, False, False, True]])
    y, h, c = rl.RNN(cell, return_sequences=True, return_state=True)(x, mask=mask)
    np.testing.assert_array_equal(y[0, 1], y[0, 0])
    np.testing.assert_array_equal(y[0, 2], y[0, 0])
    y0, h0, c0 = rl.RNN(cell, return_sequences=True, return_state=True)(x[:, [0, 3]])
    np.testing.assert_allclose(h, h0, rtol=1e-12)  # masked steps are skipped entirely
    zeros = rl.RNN(cell, return_sequences=True, zero_output_for_mask=True)(x, mask=mask)
    assert not zeros[0, 1].any() and not zeros[0, 2].any()


def test_fully_masked_first_steps_output_zeros(rng):
    cell = make_cell("gru", 2)
    y = rl.RNN(cell, return_sequences=True)(rng.normal(size=(1, 3, 2)), mask=[[0, 0, 1]])
    assert not y[0, :2].any() and y[0, 2].any()


@pytest.mark.parametrize("kind", ["lstm", "stacked"])
def test_time_major_is_a_transpose(kind, rng):
    cell = make_cell(kind, 3)
    x = rng.normal(size=(2, 5, 4))
    batch_major = rl.RNN(cell, return_sequences=True)(x)
    time_major = rl.RNN(cell, return_sequences=True, time_major=True)(x.transpose(1, 0, 2))
    assert time_major.shape == (5, 2, cell.output_size)
    np.testing.assert_array_equal(time_major, batch_major.transpose(1, 0, 2))


def test_return_state_nests_a_stacks_states_per_cell_as_tf_keras_2(rng):
    cell = make_cell("stacked", 2)  # state_size ([2, 2], 3)
    y, lstm_states, simple_state = rl.RNN(cell, return_state=True)(rng.normal(size=(4, 3, 1)))
    assert y.shape == (4, 3) and simple_state.shape == (4, 3)
    assert isinstance(lstm_states, list) and [a.shape for a in lstm_states] == [(4, 2), (4, 2)]


def test_initial_state_accepts_nested_or_flat(rng):
    cell = make_cell("stacked", 2)
    x = rng.normal(size=(2, 3, 1))
    flat = random_states(cell, 2, rng)
    nested = [[flat[0], flat[1]], flat[2]]
    layer = rl.RNN(cell)
    np.testing.assert_array_equal(layer(x, initial_state=flat), layer(x, initial_state=nested))
    assert not np.allclose(layer(x, initial_state=flat), layer(x))


@pytest.mark.parametrize("kind", ["simple", "lstm", "stacked"])
def test_stateful_calls_continue_one_long_sequence(kind, rng):
    cell = make_cell(kind, 3)
    x = rng.normal(size=(2, 9, 2))
    whole, *whole_states = rl.RNN(cell, return_sequences=True, return_state=True)(x)
    layer = rl.RNN(cell, return_sequences=True, stateful=True)
    parts = [layer(x[:, :4]), layer(x[:, 4:7]), layer(x[:, 7:])]
    np.testing.assert_allclose(np.concatenate(parts, axis=1), whole, rtol=1e-12)
    for got, want in zip(layer.states, rl.nest.flatten(whole_states), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12)
    layer.reset_states()
    np.testing.assert_allclose(layer(x[:, :4]), whole[:, :4], rtol=1e-12)


def test_stateful_reset_states_with_values(rng):
    cell = make_cell("simple", 2)
    layer = rl.RNN(cell, stateful=True)
    h0 = rng.normal(size=(3, 2))
    layer.reset_states([h0])
    x = rng.normal(size=(3, 4, 1))
    np.testing.assert_allclose(layer(x), rl.RNN(cell)(x, initial_state=[h0]), rtol=1e-12)


def naive_bidirectional(layer, x, initial, mask, return_sequences):
    """Forward and backward naive runs, backward flipped back into input order.

    Keras's Bidirectional forces zero_output_for_mask = return_sequences on both directions.
    """
    forward_cell, backward_cell = layer.forward_layer.cell, layer.backward_layer.cell
    n = len(rl.nest.flatten(forward_cell.state_size))
    y_f, s_f = naive.run_sequence(naive_step_for(forward_cell), x, initial[:n], mask,
                                  zero_output_for_mask=return_sequences)
    y_b, s_b = naive.run_sequence(naive_step_for(backward_cell), x, initial[n:], mask, go_backwards=True,
                                  zero_output_for_mask=return_sequences)
    return y_f, y_b[:, ::-1], s_f + s_b


MERGES = {
    "concat": lambda f, b: np.concatenate([f, b], axis=-1),
    "sum": lambda f, b: f + b,
    "mul": lambda f, b: f * b,
    "ave": lambda f, b: (f + b) / 2,
}


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave", None])
@pytest.mark.parametrize("return_sequences", [True, False])
@pytest.mark.parametrize("kind", ["gru", "lstm"])
def test_bidirectional_every_merge_mode(kind, merge_mode, return_sequences, rng):
    cell = make_cell(kind, 3)
    layer = rl.Bidirectional(rl.RNN(cell, return_sequences=return_sequences, return_state=True), merge_mode)
    x = rng.normal(size=(2, 5, 2))
    mask = random_mask(2, 5, rng)
    initial = random_states(cell, 2, rng) * 2
    result = layer(x, initial_state=initial, mask=mask)
    y_f, y_b, states = naive_bidirectional(layer, x, initial, mask, return_sequences)
    if not return_sequences:
        y_f, y_b = y_f[:, -1], y_b[:, 0]  # backward's last processed output is at input time 0
    if merge_mode is None:
        np.testing.assert_allclose(result[0], y_f, rtol=1e-12)
        np.testing.assert_allclose(result[1], y_b, rtol=1e-12)
        got_states = result[2:]
    else:
        np.testing.assert_allclose(result[0], MERGES[merge_mode](y_f, y_b), rtol=1e-12)
        got_states = result[1:]
    for got, want in zip(got_states, states, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_bidirectional_backward_copy_has_its_own_deterministic_weights():
    make = lambda: rl.Bidirectional(rl.RNN(rl.LSTMCell(3, seed=5)))
    a, b = make(), make()
    a(np.ones((1, 2, 2))), b(np.ones((1, 2, 2)))
    forward, backward = a.get_weights()[:3], a.get_weights()[3:]
    assert not np.array_equal(forward[0], backward[0])
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)


def test_bidirectional_zeros_masked_steps_of_sequences_like_keras(rng):
    layer = rl.Bidirectional(rl.RNN(make_cell("simple", 2), return_sequences=True), merge_mode=None)
    y_forward, y_backward = layer(rng.normal(size=(1, 4, 2)), mask=[[1, 1, 0, 0]])
    assert not y_forward[0, 2:].any() and not y_backward[0, 2:].any()
    last_only = rl.Bidirectional(rl.RNN(make_cell("simple", 2), zero_output_for_mask=True))
    assert last_only.forward_layer.zero_output_for_mask is False  # Keras never zeroes the last output


@pytest.mark.parametrize("option", ["return_sequences", "return_state", "stateful", "time_major"])
def test_bidirectional_refuses_a_mismatched_backward_layer(option):
    forward = rl.RNN(make_cell("gru", 2), **{option: True})
    backward = rl.RNN(make_cell("gru", 2), go_backwards=True)
    with pytest.raises(ValueError, match=f"same {option}"):
        rl.Bidirectional(forward, backward_layer=backward)


def test_bidirectional_accepts_a_generator_seed():
    layer = rl.Bidirectional(rl.RNN([rl.LSTMCell(2, seed=np.random.default_rng(3)), rl.GRUCell(2, seed=4)]))
    assert layer(np.ones((1, 3, 2))).shape == (1, 4)


def test_initial_state_dtype_follows_float_inputs_like_keras():
    states = rl.LSTMCell(2).get_initial_state(inputs=np.zeros((3, 1), "float64"))
    assert all(s.dtype == np.float64 for s in states)
    assert rl.LSTMCell(2).get_initial_state(inputs=np.zeros((3, 1), int))[0].dtype == np.float32


def test_custom_cell_runs_in_rnn_stacked_and_bidirectional(rng):
    class CounterCell(rl.AbstractRNNCell):
        """Written exactly like the contract's example: adds its inputs to a nested state."""

        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units = units

        @property
        def state_size(self):
            return (self.units, (self.units,))

        def build(self, input_shape):
            self.kernel = self.add_weight("kernel", (input_shape[-1], self.units), "ones")
            self.built = True

        def call(self, inputs, states):
            total, (count,) = states
            total = total + inputs @ self.kernel
            count = count + 1
            return total, [total, (count,)]

    x = rng.normal(size=(2, 4, 3))
    y, total, (count,) = rl.RNN(CounterCell(2), return_state=True, backend="auto")(x)  # nested as state_size
    np.testing.assert_allclose(total, np.repeat(x.sum(axis=(1, 2))[:, None], 2, axis=1), rtol=1e-6)
    np.testing.assert_array_equal(count, np.full((2, 2), 4.0))
    stacked = rl.RNN([CounterCell(2), rl.SimpleRNNCell(3, seed=0)])(x)
    assert stacked.shape == (2, 3)
    both = rl.Bidirectional(rl.RNN(CounterCell(1), return_sequences=True), merge_mode="sum")(x)
    # At input time t the forward total covers steps 0..t and the backward total steps t..T-1.
    per_step = x.sum(axis=2)
    want = np.cumsum(per_step, axis=1) + np.cumsum(per_step[:, ::-1], axis=1)[:, ::-1]
    np.testing.assert_allclose(both[..., 0], want, rtol=1e-5)


def test_backend_auto_falls_back_to_python_and_unknown_backend_is_refused():
    class Plain(rl.MinimalRNNCell):
        pass

    layer = rl.RNN(Plain(2), backend="auto")
    assert rl.backends.resolve("auto", layer.cell) == "python"
    with pytest.raises(ValueError, match="backend must be one of"):
        rl.RNN(Plain(2), backend="fortran")
    with pytest.raises(ValueError, match="has no kernel for Plain"):
        rl.RNN(Plain(2), backend="cuda")(np.ones((1, 2, 1)))


@pytest.mark.parametrize("activation,reference", [(None, lambda a: a), ("relu", lambda a: np.maximum(a, 0))])
def test_dense_readout(activation, reference, rng):
    dense = rl.Dense(3, activation=activation, bias_initializer="normal", seed=0, dtype="float64")
    x = rng.normal(size=(2, 5, 4))
    y = dense(x)
    K, b = dense.get_weights()
    assert K.shape == (4, 3) and b.shape == (3,)
    want = np.array([[[reference(sum(x[i, t, k] * K[k, j] for k in range(4)) + b[j]) for j in range(3)]
                      for t in range(5)] for i in range(2)])
    np.testing.assert_allclose(y, want, rtol=1e-12)


def test_reprs_are_helpful():
    layer = rl.RNN(rl.GRUCell(4), return_sequences=True, stateful=True)
    assert "GRUCell" in repr(layer) and "return_sequences=True" in repr(layer) and "stateful=True" in repr(layer)
    assert "merge_mode='sum'" in repr(rl.Bidirectional(layer, merge_mode="sum"))
    assert "Dense(units=2" in repr(rl.Dense(2))
