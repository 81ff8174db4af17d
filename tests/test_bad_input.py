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


# -- defects found by the outside fuzzing (issue 12), one test per kind ----------------

NUMPY_PHRASES = ("inhomogeneous", "setting an array element", "broadcast", "out of bounds", "index")


def assert_clear(error_info, fragment):
    message = str(error_info.value)
    assert fragment in message
    assert not any(phrase in message for phrase in NUMPY_PHRASES), message


@pytest.mark.parametrize("merge_mode", ["mul", "concat", "sum", "ave", None])
@pytest.mark.parametrize("dy_shape", [(), (3,), (3, 1, 1), (1, 6, 3), (3, 6), (3, 6, 3, 1)])
def test_bidirectional_backward_checks_dy_like_the_plain_layer(merge_mode, dy_shape):
    """No broadcasting: a dy that only broadcasts to y would give wrong gradients silently."""
    x = np.random.default_rng(1).normal(size=(3, 6, 2))
    layer = rl.Bidirectional(rl.RNN(rl.GRUCell(3, seed=0), return_sequences=True), merge_mode=merge_mode)
    y, tape = rl.bptt.forward(layer, x)
    dy = np.ones(dy_shape)
    with pytest.raises((ValueError, TypeError)) as info:
        rl.bptt.backward(tape, dy if merge_mode is not None else [dy, dy])
    assert_clear(info, "shape")


def test_bidirectional_backward_checks_the_structure_of_dy_with_states():
    x = np.random.default_rng(1).normal(size=(3, 6, 2))
    layer = rl.Bidirectional(rl.RNN(rl.LSTMCell(3, seed=0), return_state=True))
    y, tape = rl.bptt.forward(layer, x)  # [merged, h_f, c_f, h_b, c_b]
    with pytest.raises(ValueError) as info:
        rl.bptt.backward(tape, [np.ones((3, 6))] + [None] * 3)
    assert_clear(info, "a list of 5 entries")
    with pytest.raises(ValueError) as info:
        rl.bptt.backward(tape, [np.ones((3, 6)), np.ones((3, 3)), np.ones((3, 3)), np.ones((1, 3)), None])
    assert_clear(info, "dy[3] of shape (3, 3)")
    grads = rl.bptt.backward(tape, [np.ones((3, 6))] + [None] * 4)  # None: zero gradient for a state
    assert grads.inputs.shape == x.shape


class Refusing(rl.SimpleRNNCell):
    """Refuses to step while ``refuse`` is set: a failure that only running can find."""

    refuse = False

    def call(self, inputs, states):
        if self.refuse:
            raise ValueError("refused while running")
        return super().call(inputs, states)

    def forward(self, inputs, states):
        if self.refuse:
            raise ValueError("refused while running")
        return super().forward(inputs, states)


def test_a_bidirectional_call_that_fails_in_its_backward_half_advances_no_state():
    forward = rl.RNN(rl.SimpleRNNCell(2, seed=0), stateful=True, backend="python")
    backward = rl.RNN(Refusing(2, seed=1), stateful=True, go_backwards=True, backend="python")
    layer = rl.Bidirectional(forward, backward_layer=backward)
    layer(GOOD)
    states = [s.copy() for s in forward.states + backward.states]
    backward.cell.refuse = True
    for call in (lambda: layer(GOOD), lambda: rl.bptt.forward(layer, GOOD)):
        with pytest.raises(ValueError, match="refused while running"):
            call()
        for before, after in zip(states, forward.states + backward.states, strict=True):
            np.testing.assert_array_equal(before, after)


@pytest.mark.parametrize("run", [lambda layer, x, s: layer(x, initial_state=s),
                                 lambda layer, x, s: rl.bptt.forward(layer, x, s)], ids=["call", "bptt.forward"])
def test_a_failed_call_builds_nothing(run):
    bidirectional = rl.Bidirectional(rl.RNN(rl.LSTMCell(2, seed=0)))
    malformed_backward_half = [np.zeros((2, 2)), np.zeros((2, 2)), np.zeros((2, 2)), np.zeros((2, 7))]
    with pytest.raises(ValueError, match="initial_state"):
        run(bidirectional, GOOD, malformed_backward_half)
    assert not bidirectional.forward_layer.built and not bidirectional.backward_layer.built
    no_kernel = rl.RNN(rl.MinimalRNNCell(2), backend="numba")
    with pytest.raises(ValueError, match="no kernel for MinimalRNNCell"):
        run(no_kernel, GOOD, None)
    assert not no_kernel.built and no_kernel.cell.weights == []


@pytest.mark.parametrize("states", [0.0, [], "zeros", [[0.0, 0.0], [0.0, 0.0]], [np.zeros((2, 4))]],
                         ids=["scalar", "empty list", "string", "list of lists", "one state for two"])
def test_reset_states_refuses_malformed_states_and_keeps_the_old_ones(states):
    layer = stateful_lstm()
    before = [s.copy() for s in layer.states]
    with pytest.raises(ValueError) as info:
        layer.reset_states(states)
    assert_clear(info, "state arrays")
    for old, kept in zip(before, layer.states, strict=True):
        np.testing.assert_array_equal(old, kept)


@pytest.mark.parametrize("steps", [None, 3])
def test_fit_on_zero_samples_is_a_clear_error(steps):
    model = rl.models.Sequential([rl.RNN(rl.GRUCell(3, seed=0)), rl.Dense(2)])
    with pytest.raises(ValueError) as info:
        model.fit(np.zeros((0, 4, 2)), np.zeros((0, 2)), steps=steps, verbose=False)
    assert_clear(info, "no samples")
    assert not model.built


RAGGED = [[1.0, 1.0, 1.0, 1.0, 1.0], [1.0, 1.0]]
RAGGED_CALLS = {
    "RNN mask": lambda: rl.RNN(rl.GRUCell(2))(GOOD, mask=RAGGED),
    "bptt.forward mask": lambda: rl.bptt.forward(rl.RNN(rl.GRUCell(2)), GOOD, mask=RAGGED),
    "Sequential x": lambda: rl.models.Sequential([rl.RNN(rl.GRUCell(2)), rl.Dense(1)]).fit(
        [[[1.0, 2.0, 3.0]], [[1.0]]], np.zeros((2, 1)), verbose=False),
    "Sequential y": lambda: rl.models.Sequential([rl.RNN(rl.GRUCell(2)), rl.Dense(2)]).fit(
        GOOD, [[1.0, 2.0], [1.0]], verbose=False),
    "Sequential mask": lambda: rl.models.Sequential([rl.RNN(rl.GRUCell(2), return_sequences=True),
                                                     rl.Dense(1)]).fit(GOOD, np.zeros((2, 5, 1)), mask=RAGGED,
                                                                       verbose=False),
}


@pytest.mark.parametrize("case", sorted(RAGGED_CALLS))
def test_ragged_lists_are_refused_in_our_words(case):
    with pytest.raises(TypeError) as info:
        RAGGED_CALLS[case]()
    assert_clear(info, "not rectangular")


@pytest.mark.parametrize("kwargs,fragment", [
    ({"inputs": 3.0}, "inputs of shape (batch, ...)"),
    ({"batch_size": -1}, "batch_size must be a positive int"),
    ({"batch_size": [2]}, "batch_size must be a positive int"),
    ({"batch_size": 2.0}, "batch_size must be a positive int"),
    ({"batch_size": True}, "batch_size must be a positive int"),
])
def test_get_initial_state_checks_where_the_batch_size_comes_from(kwargs, fragment):
    with pytest.raises(ValueError) as info:
        rl.GRUCell(2).get_initial_state(**kwargs)
    assert_clear(info, fragment)


@pytest.mark.parametrize("units", [None, "4", 1.5, [4], -1, 0, True])
def test_minimal_rnn_cell_checks_units_when_constructed(units):
    with pytest.raises(ValueError, match="units must be a positive int"):
        rl.MinimalRNNCell(units)


class SizelessCell(rl.AbstractRNNCell):
    """A custom cell that gets its state_size wrong."""

    state_size = "4"

    def call(self, inputs, states):
        return inputs, states


def test_a_custom_cell_with_a_malformed_state_size_is_refused_by_the_layer():
    with pytest.raises(ValueError, match="state_size must be a positive int"):
        rl.RNN(SizelessCell())


@pytest.mark.parametrize("backend", ["python", "numba"])
def test_a_deep_copy_behaves_exactly_like_the_original(backend, tmp_path):
    import copy
    import pickle

    model = rl.models.Sequential([rl.RNN(rl.LSTMCell(3, seed=0), backend=backend, return_sequences=True),
                                  rl.RNN(rl.GRUCell(2, seed=1), backend=backend), rl.Dense(2)])
    model.predict(GOOD)
    for twin in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        np.testing.assert_array_equal(twin.predict(GOOD), model.predict(GOOD))
        y, tape = rl.bptt.forward(twin.recurrent_layers[0], GOOD)
        y_original, tape_original = rl.bptt.forward(model.recurrent_layers[0], GOOD)
        np.testing.assert_array_equal(rl.bptt.backward(tape, np.ones_like(y)).weights[0],
                                      rl.bptt.backward(tape_original, np.ones_like(y)).weights[0])
        rl.save(twin, tmp_path / "twin.npz")
        np.testing.assert_array_equal(rl.load(tmp_path / "twin.npz").predict(GOOD), model.predict(GOOD))
