"""Bad input gets a clear ValueError or TypeError, and a failed call changes nothing."""

import numpy as np
import pytest

import rnnlab as rl

GOOD = np.random.default_rng(0).normal(size=(2, 5, 3)).astype("float32")


def stateful_lstm():
    """A built stateful layer that already carries states from one call."""
    layer = rl.RNN(rl.LSTMCell(4, seed=0), stateful=True, return_sequences=True)
    layer(GOOD)
    return layer


def with_nan():
    x = GOOD.copy()
    x[1, 2, 0] = np.nan
    return x


def with_inf():
    x = GOOD.copy()
    x[0, 0, 1] = -np.inf
    return x


LAYER_CALLS = {
    "rank 2 inputs": (lambda L: L(GOOD[0]), ValueError, "(batch, time, features)"),
    "rank 4 inputs": (lambda L: L(GOOD[None]), ValueError, "(batch, time, features)"),
    "wrong feature size": (lambda L: L(GOOD[:, :, :2]), ValueError, "expected inputs with 3 features"),
    "integer inputs": (lambda L: L(np.ones((2, 5, 3), dtype=int)), TypeError, "floating-point"),
    "boolean inputs": (lambda L: L(GOOD > 0), TypeError, "floating-point"),
    "object inputs": (lambda L: L(np.array([[[1.0, None, 2.0]]] * 2, dtype=object)), TypeError, "floating-point"),
    "string inputs": (lambda L: L([[["a", "b", "c"]]]), TypeError, "floating-point"),
    "complex inputs": (lambda L: L(GOOD + 1j), TypeError, "floating-point"),
    "ragged inputs": (lambda L: L([[[1.0, 2.0, 3.0]], [[1.0]]]), TypeError, "float array"),
    "NaN in inputs": (lambda L: L(with_nan()), ValueError, "NaN or inf"),
    "inf in inputs": (lambda L: L(with_inf()), ValueError, "NaN or inf"),
    "no timesteps": (lambda L: L(np.zeros((2, 0, 3), "float32")), ValueError, "no timesteps"),
    "empty batch": (lambda L: L(np.zeros((0, 5, 3), "float32")), ValueError, "empty batch"),
    "too few states": (lambda L: L(GOOD, initial_state=[np.zeros((2, 4))]), ValueError, "expected 2 state arrays"),
    "state of wrong shape": (lambda L: L(GOOD, initial_state=[np.zeros((2, 4)), np.zeros((2, 5))]), ValueError,
                             "of shape (batch, 4)"),
    "state batch mismatch": (lambda L: L(GOOD, initial_state=[np.zeros((3, 4))] * 2), ValueError, "(2, 4)"),
    "NaN in state": (lambda L: L(GOOD, initial_state=[np.full((2, 4), np.nan)] * 2), ValueError, "NaN"),
    "state not a list": (lambda L: L(GOOD, initial_state=3.0), TypeError, "list of arrays"),
    "mask of wrong shape": (lambda L: L(GOOD, mask=np.ones((5, 2), bool)), ValueError, "mask of shape (batch, time)"),
    "mask with non 0/1 values": (lambda L: L(GOOD, mask=np.full((2, 5), 2)), ValueError, "0/1"),
    "mask of strings": (lambda L: L(GOOD, mask=np.full((2, 5), "yes")), TypeError, "booleans or 0/1"),
    "stateful batch change": (lambda L: L(GOOD[:1]), ValueError, "reset_states()"),
    "set_weights wrong count": (lambda L: L.set_weights(L.get_weights()[:2]), ValueError, "expects 3 weight arrays"),
    "set_weights wrong shape": (lambda L: L.set_weights([np.zeros((3, 16)), np.zeros((4, 16)), np.zeros(15)]),
                                ValueError, "weights[2] must have shape (16,)"),
    "set_weights NaN": (lambda L: L.set_weights([np.zeros((3, 16)), np.zeros((4, 16)), np.full(16, np.nan)]),
                        ValueError, "NaN"),
    "set_weights integer": (lambda L: L.set_weights([np.zeros((3, 16), int), np.zeros((4, 16)), np.zeros(16)]),
                            TypeError, "floating-point"),
}


@pytest.mark.parametrize("case", sorted(LAYER_CALLS))
def test_malformed_layer_call_raises_clearly_and_changes_nothing(case):
    call, error, fragment = LAYER_CALLS[case]
    layer = stateful_lstm()
    weights_before = layer.get_weights()
    states_before = [s.copy() for s in layer.states]
    with pytest.raises(error) as info:
        call(layer)
    assert fragment in str(info.value)
    for before, after in zip(weights_before, layer.get_weights(), strict=True):
        np.testing.assert_array_equal(before, after)
    for before, after in zip(states_before, layer.states, strict=True):
        np.testing.assert_array_equal(before, after)


CELL_CALLS = {
    "cell inputs rank 3": (lambda c: c(GOOD), ValueError, "(batch, features)"),
    "cell wrong features": (lambda c: c(GOOD[:, 0, :2]), ValueError, "expected inputs with 3 features"),
    "cell state structure": (lambda c: c(GOOD[:, 0], [np.zeros((2, 4))]), ValueError, "expected 2 state arrays"),
    "cell integer inputs": (lambda c: c(np.ones((2, 3), int)), TypeError, "floating-point"),
}


@pytest.mark.parametrize("case", sorted(CELL_CALLS))
def test_malformed_cell_call_raises_clearly_and_changes_nothing(case):
    call, error, fragment = CELL_CALLS[case]
    cell = rl.LSTMCell(4, seed=0)
    cell.build((None, 3))
    before = cell.get_weights()
    with pytest.raises(error, match=None) as info:
        call(cell)
    assert fragment in str(info.value)
    for w_before, w_after in zip(before, cell.get_weights()):
        np.testing.assert_array_equal(w_before, w_after)


@pytest.mark.parametrize("make,error,fragment", [
    (lambda: rl.SimpleRNNCell(3, activation="swish"), ValueError, "unknown activation 'swish'"),
    (lambda: rl.LSTMCell(3, recurrent_activation=5), TypeError, "activation must be a name"),
    (lambda: rl.GRUCell(3, kernel_initializer="he_normal"), ValueError, "unknown initializer 'he_normal'"),
    (lambda: rl.GRUCell(3, dtype="int32"), TypeError, "'float32' or 'float64'"),
    (lambda: rl.LSTMCell(0), ValueError, "units must be a positive int"),
    (lambda: rl.RNN("lstm"), TypeError, "AbstractRNNCell"),
    (lambda: rl.Bidirectional(rl.RNN(rl.LSTMCell(2)), merge_mode="max"), ValueError, "merge_mode must be one of"),
    (lambda: rl.StackedRNNCells([]), ValueError, "non-empty list"),
    (lambda: rl.StackedRNNCells([rl.LSTMCell(2), rl.GRUCell(2, dtype="float64")]), ValueError, "one dtype"),
])
def test_bad_constructor_arguments(make, error, fragment):
    with pytest.raises(error) as info:
        make()
    assert fragment in str(info.value)


def test_unbuilt_set_weights_and_missing_batch_are_clear():
    with pytest.raises(ValueError, match="not built yet"):
        rl.GRUCell(2).set_weights([])
    with pytest.raises(ValueError, match="needs inputs or batch_size"):
        rl.GRUCell(2).get_initial_state()


def test_bidirectional_failed_call_changes_neither_direction():
    layer = rl.Bidirectional(rl.RNN(rl.GRUCell(2, seed=0), stateful=True))
    layer(GOOD)
    states = [s.copy() for s in layer.forward_layer.states + layer.backward_layer.states]
    with pytest.raises(ValueError, match="expects 2 initial state arrays"):
        layer(GOOD, initial_state=[np.zeros((2, 2))])
    bad_backward = layer.get_weights()
    bad_backward[-1] = np.zeros(7)
    before = layer.get_weights()
    with pytest.raises(ValueError, match="must have shape"):
        layer.set_weights(bad_backward)
    for a, b in zip(before, layer.get_weights()):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(states, layer.forward_layer.states + layer.backward_layer.states):
        np.testing.assert_array_equal(a, b)


def test_no_numpy_broadcasting_error_reaches_the_user():
    layer = rl.RNN(rl.SimpleRNNCell(3, seed=0))
    layer(GOOD)
    with pytest.raises(ValueError) as info:
        layer(GOOD, initial_state=[np.zeros((2, 2))])
    assert "broadcast" not in str(info.value)
