"""Hand-written BPTT equals finite differences for every cell and layer option."""

import numpy as np
import pytest

import rnnlab as rl
from conftest import CELL_KINDS, make_cell
from finite_differences import numeric_gradient, probe_loss, relative_error

TOL = 1e-6

OPTIONS = {
    "plain": dict(layer=dict(return_sequences=True)),
    "last_output_only": dict(layer=dict()),
    "go_backwards": dict(layer=dict(return_sequences=True, go_backwards=True)),
    "return_state": dict(layer=dict(return_sequences=True, return_state=True)),
    "last_output_return_state": dict(layer=dict(return_state=True)),
    "time_major": dict(layer=dict(return_sequences=True, time_major=True)),
    "initial_state": dict(layer=dict(return_sequences=True, return_state=True), initial_state=True),
    "mask": dict(layer=dict(return_sequences=True, return_state=True), mask=True, initial_state=True),
    "mask_zero_output": dict(layer=dict(return_sequences=True, zero_output_for_mask=True), mask=True),
    "mask_go_backwards_last": dict(layer=dict(go_backwards=True), mask=True),
}


def random_problem(layer_or_cell_sizes, rng, time_major=False, with_mask=False, with_state=False):
    batch, time, features = rng.integers(1, 4), rng.integers(1, 6), rng.integers(1, 4)
    x = rng.normal(size=(time, batch, features) if time_major else (batch, time, features))
    mask = None
    if with_mask:
        mask = rng.random((batch, time)) < 0.6
        mask[0, -1] = False
        if time_major:
            mask = mask.T  # the mask has the layout of x, as in tf.keras 2
    states = [rng.normal(size=(batch, s)) * 0.5 for s in layer_or_cell_sizes] if with_state else None
    return x, mask, states


def assert_gradients_match(layer, x, mask, states, rng, grads_of=rl.bptt):
    y, tape = rl.bptt.forward(layer, x, initial_state=states, mask=mask)
    probes = [rng.normal(size=np.shape(part)) for part in (rl.nest.flatten(y) if isinstance(y, list) else [y])]
    grads = rl.bptt.backward(tape, rl.nest.pack_sequence_as(y, probes) if isinstance(y, list) else probes[0])
    loss = lambda: probe_loss(probes, layer(x, initial_state=states, mask=mask))
    for k, w in enumerate(layer.weights):
        assert relative_error(grads.weights[k], numeric_gradient(loss, w)) < TOL, f"weight {k}"
    assert relative_error(grads.inputs, numeric_gradient(loss, x)) < TOL, "inputs"
    if states is not None:
        for k, s in enumerate(states):
            assert relative_error(grads.initial_state[k], numeric_gradient(loss, s)) < TOL, f"state {k}"
    return grads


@pytest.mark.parametrize("option", sorted(OPTIONS))
@pytest.mark.parametrize("kind", CELL_KINDS)
def test_bptt_matches_finite_differences(kind, option, rng):
    spec = OPTIONS[option]
    cell = make_cell(kind, int(rng.integers(1, 4)), "float64", seed=int(rng.integers(100)))
    layer = rl.RNN(cell, backend="python", **spec["layer"])
    sizes = rl.nest.flatten(cell.state_size)
    x, mask, states = random_problem(sizes, rng, spec["layer"].get("time_major", False),
                                     spec.get("mask", False), spec.get("initial_state", False))
    assert_gradients_match(layer, x, mask, states, rng)


@pytest.mark.parametrize("batch,time", [(1, 1), (1, 4), (3, 1)])
@pytest.mark.parametrize("kind", CELL_KINDS)
def test_bptt_with_one_step_or_one_sample(kind, batch, time, rng):
    cell = make_cell(kind, 2, "float64")
    layer = rl.RNN(cell, return_sequences=True, return_state=True, backend="python")
    x = rng.normal(size=(batch, time, 3))
    states = [rng.normal(size=(batch, s)) for s in rl.nest.flatten(cell.state_size)]
    assert_gradients_match(layer, x, None, states, rng)


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave", None])
@pytest.mark.parametrize("return_sequences,return_state", [(True, False), (False, True), (True, True)])
def test_bidirectional_bptt_matches_finite_differences(merge_mode, return_sequences, return_state, rng):
    cell = make_cell("lstm", 2, "float64")
    layer = rl.Bidirectional(rl.RNN(cell, return_sequences=return_sequences, return_state=return_state,
                                    backend="python"), merge_mode)
    x, mask, states = random_problem([2, 2, 2, 2], rng, with_mask=True, with_state=True)
    assert_gradients_match(layer, x, mask, states, rng)


def test_stateful_gradients_stop_at_the_batch_boundary(rng):
    cell = make_cell("gru", 3, "float64")
    layer = rl.RNN(cell, return_sequences=True, stateful=True, backend="python")
    first, second = rng.normal(size=(2, 4, 2)), rng.normal(size=(2, 3, 2))
    layer(first)
    carried = [s.copy() for s in layer.states]
    y, tape = rl.bptt.forward(layer, second)
    np.testing.assert_allclose(tape.initial_states[0], carried[0])
    probe = rng.normal(size=y.shape)
    grads = rl.bptt.backward(tape, probe)
    # The reference: the second batch alone, starting from the carried state held constant.
    plain = rl.RNN(cell, return_sequences=True, backend="python")
    loss = lambda: probe_loss([probe], plain(second, initial_state=carried))
    for k, w in enumerate(cell.weights):
        assert relative_error(grads.weights[k], numeric_gradient(loss, w)) < TOL
    assert relative_error(grads.initial_state[0], numeric_gradient(loss, carried[0])) < TOL


@pytest.mark.parametrize("kind", ["simple", "lstm", "stacked"])
def test_truncate_at_least_T_equals_full_bptt(kind, rng):
    layer = rl.RNN(make_cell(kind, 3, "float64"), return_sequences=True, return_state=True, backend="python")
    x = rng.normal(size=(2, 5, 2))
    y, tape = rl.bptt.forward(layer, x)
    dy = rl.nest.map_structure(lambda a: rng.normal(size=a.shape), y)
    full = rl.bptt.backward(tape, dy)
    for k in (5, 9):
        truncated = rl.bptt.backward(tape, dy, truncate=k)
        for a, b in zip(full.weights + [full.inputs] + full.initial_state,
                        truncated.weights + [truncated.inputs] + truncated.initial_state):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("kind", ["simple", "gru", "lstm"])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_truncate_k_stops_each_outputs_gradient_after_k_steps(kind, k, rng):
    """Reference: for each output t, the state entering step t-k+1 is a constant (computed unperturbed)."""
    cell = make_cell(kind, 2, "float64")
    layer = rl.RNN(cell, return_sequences=True, backend="python")
    x = rng.normal(size=(2, 6, 2))
    probe = rng.normal(size=(2, 6, 2))
    _, tape = rl.bptt.forward(layer, x)
    grads = rl.bptt.backward(tape, probe, truncate=k)

    stepper = rl.RNN(cell, return_sequences=True, return_state=True, backend="python")
    zeros = [np.zeros((2, 2)) for _ in rl.nest.flatten(cell.state_size)]
    states_before = [zeros]  # states_before[t]: the states entering step t, unperturbed
    for t in range(6):
        _, *after = stepper(x[:, t : t + 1], initial_state=states_before[-1])
        states_before.append(after)

    def windowed_loss():
        total = 0.0
        for t in range(6):
            start = max(0, t - k + 1)
            y, *_ = stepper(x[:, start : t + 1], initial_state=states_before[start])
            total += float(np.sum(probe[:, t] * y[:, -1]))
        return total

    for w_index, w in enumerate(cell.weights):
        np.testing.assert_allclose(grads.weights[w_index], numeric_gradient(windowed_loss, w), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(grads.inputs, numeric_gradient(windowed_loss, x), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("k1,k2", [(2, 2), (2, 3), (3, 5), (1, 4)])
def test_truncated_stream_matches_explicit_chunks(k1, k2, rng):
    cell = make_cell("lstm", 2, "float64")
    layer = rl.RNN(cell, backend="python")
    T = 7
    x = rng.normal(size=(2, T, 3))
    target = rng.normal(size=(2, T, 2))
    loss_grad = lambda outputs, start, stop: 2 * (outputs - target[:, start:stop])  # d/dy of sum (y - target)^2
    chunks = list(rl.bptt.truncated_stream(layer, x, k1, k2, loss_grad))
    assert [(c.start, c.stop) for c in chunks] == [(s, min(s + k1, T)) for s in range(0, T, k1)]

    stepper = rl.RNN(cell, return_sequences=True, return_state=True, backend="python")
    full, *_ = stepper(x)
    states_before = [[np.zeros((2, 2))] * 2]
    for t in range(T):
        states_before.append(stepper(x[:, t : t + 1], initial_state=states_before[-1])[1:])
    for chunk in chunks:
        np.testing.assert_allclose(chunk.outputs, full[:, chunk.start : chunk.stop], rtol=1e-12)
        window_start = max(0, chunk.stop - k2)

        def chunk_loss():
            y, *_ = stepper(x[:, window_start : chunk.stop], initial_state=states_before[window_start])
            new = y[:, chunk.start - window_start :]
            return float(np.sum((new - target[:, chunk.start : chunk.stop]) ** 2))

        for w_index, w in enumerate(cell.weights):
            assert relative_error(chunk.grads.weights[w_index], numeric_gradient(chunk_loss, w)) < TOL


def test_truncated_stream_with_a_mask_matches_the_full_forward(rng):
    cell = make_cell("gru", 2, "float64")
    x, mask = rng.normal(size=(2, 6, 2)), rng.random((2, 6)) < 0.6
    full = rl.RNN(cell, return_sequences=True, zero_output_for_mask=True)(x, mask=mask)
    layer = rl.RNN(cell, zero_output_for_mask=True)
    chunks = rl.bptt.truncated_stream(layer, x, 2, 3, lambda y, start, stop: np.ones_like(y), mask=mask)
    np.testing.assert_allclose(np.concatenate([c.outputs for c in chunks], axis=1), full, rtol=1e-12)
    with pytest.raises(ValueError, match="zero_output_for_mask=True"):
        next(rl.bptt.truncated_stream(rl.RNN(cell), x, 2, 3, lambda y, start, stop: y, mask=mask))


def test_tape_gates_rebuild_the_states(rng):
    lstm = make_cell("lstm", 3, "float64")
    x = rng.normal(size=(2, 5, 2))
    _, tape = rl.bptt.forward(rl.RNN(lstm, return_sequences=True), x)
    g, (h, c) = tape.gates, tape.states
    assert set(g) == {"i", "f", "g", "o"} and g["i"].shape == (5, 2, 3)
    c_prev = np.vstack([np.zeros((1, 2, 3)), c[:-1]])
    np.testing.assert_allclose(c, g["f"] * c_prev + g["i"] * g["g"], rtol=1e-12)
    np.testing.assert_allclose(h, g["o"] * np.tanh(c), rtol=1e-12)
    np.testing.assert_allclose(h, tape.outputs, rtol=1e-12)

    gru = make_cell("gru", 3, "float64")
    _, tape = rl.bptt.forward(rl.RNN(gru, return_sequences=True), x)
    g, (h,) = tape.gates, tape.states
    h_prev = np.vstack([np.zeros((1, 2, 3)), h[:-1]])
    np.testing.assert_allclose(h, g["z"] * h_prev + (1 - g["z"]) * g["hh"], rtol=1e-12)
    assert ((0 < g["r"]) & (g["r"] < 1)).all()


def test_stacked_tape_has_gates_per_cell(rng):
    _, tape = rl.bptt.forward(rl.RNN(make_cell("stacked", 2)), rng.normal(size=(1, 3, 2)))
    assert set(tape.gates[0]) == {"i", "f", "g", "o"} and set(tape.gates[1]) == {"z", "r", "hh"}


@pytest.mark.parametrize("kind", ["simple", "gru_reset_before", "lstm", "stacked"])
def test_per_step_weight_contributions_sum_to_the_full_gradient(kind, rng):
    layer = rl.RNN(make_cell(kind, 3, "float64"), return_sequences=True)
    x = rng.normal(size=(2, 6, 2))
    mask = rng.random((2, 6)) < 0.7
    y, tape = rl.bptt.forward(layer, x, mask=mask)
    grads = rl.bptt.backward(tape, rng.normal(size=y.shape), per_step=True)
    for total, steps in zip(grads.weights, grads.weights_per_step):
        assert steps.shape == (6,) + total.shape
        np.testing.assert_allclose(steps.sum(axis=0), total, rtol=1e-10, atol=1e-12)
    truncated = rl.bptt.backward(tape, rng.normal(size=y.shape), truncate=2, per_step=True)
    for total, steps in zip(truncated.weights, truncated.weights_per_step):
        np.testing.assert_allclose(steps.sum(axis=0), total, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind,leaf", [("simple", 0), ("lstm", 0), ("lstm", 1)])
def test_state_grads_are_dL_dstate_at_every_step(kind, leaf, rng):
    cell = make_cell(kind, 2, "float64")
    layer = rl.RNN(cell, return_sequences=True)
    x = rng.normal(size=(1, 5, 2))
    y, tape = rl.bptt.forward(layer, x)
    probe = rng.normal(size=y.shape)
    grads = rl.bptt.backward(tape, probe)
    stepper = rl.RNN(cell, return_sequences=True, return_state=True)
    for t in range(5):
        state_t = [s[t].copy() for s in tape.states]  # the states after step t

        def loss_from_state():
            # y_t is h_t itself; later outputs depend on the state through the recurrence.
            total = float(np.sum(probe[:, t] * state_t[0]))
            if t < 4:
                rest, *_ = stepper(x[:, t + 1 :], initial_state=state_t)
                total += float(np.sum(probe[:, t + 1 :] * rest))
            return total

        numeric = numeric_gradient(loss_from_state, state_t[leaf])
        np.testing.assert_allclose(grads.state_grads[leaf][t], numeric, rtol=1e-6, atol=1e-9)


def test_python_backward_calls_cell_backward_once_per_step(rng):
    class Counting(rl.SimpleRNNCell):
        calls = 0

        def backward(self, cache, d_output, d_new_states):
            Counting.calls += 1
            return super().backward(cache, d_output, d_new_states)

    layer = rl.RNN(Counting(3, seed=0), return_sequences=True, backend="python")
    y, tape = rl.bptt.forward(layer, rng.normal(size=(2, 7, 2)), mask=rng.random((2, 7)) < 0.5)
    rl.bptt.backward(tape, np.ones_like(y))
    assert Counting.calls == 7


def test_a_cell_without_backward_points_to_the_protocol(rng):
    class NoBackward(rl.AbstractRNNCell):
        state_size = 2

        def call(self, inputs, states):
            return states[0] + inputs.sum(axis=1, keepdims=True), [states[0]]

    with pytest.raises(NotImplementedError, match="implement forward.*backward.*custom_cells.md"):
        rl.bptt.forward(rl.RNN(NoBackward()), rng.normal(size=(1, 2, 1)))
    with pytest.raises(NotImplementedError, match="custom_cells.md"):
        rl.bptt.check_gradients(NoBackward())


def test_bad_dy_is_refused_clearly(rng):
    layer = rl.RNN(make_cell("lstm", 2), return_sequences=True, return_state=True)
    y, tape = rl.bptt.forward(layer, rng.normal(size=(2, 3, 1)))
    with pytest.raises(ValueError, match=r"dy must be a list of 3 arrays"):
        rl.bptt.backward(tape, np.ones_like(y[0]))
    with pytest.raises(ValueError, match=r"expected dy of shape \(2, 3, 2\)"):
        rl.bptt.backward(tape, [np.ones((3, 2, 2)), None, None])
    with pytest.raises(ValueError, match="truncate must be a positive int"):
        rl.bptt.backward(tape, [np.ones_like(y[0]), None, None], truncate=0)
    with pytest.raises(ValueError, match="NaN"):
        rl.bptt.backward(tape, [np.full_like(y[0], np.nan), None, None])


@pytest.mark.parametrize("kind", CELL_KINDS)
def test_check_gradients_reports_small_errors_for_every_builtin(kind):
    report = rl.bptt.check_gradients(make_cell(kind, 3, "float32"))  # copied to float64 inside
    assert report.ok(1e-6), str(report)
    assert "inputs" in report.errors and "initial_state[0]" in report.errors
    assert "max rel. error" in str(report)


def test_check_gradients_catches_a_wrong_backward():
    class Wrong(rl.SimpleRNNCell):
        def backward(self, cache, d_output, d_new_states):
            d_inputs, d_states, d_weights = super().backward(cache, d_output, d_new_states)
            return d_inputs, d_states, [d_weights[0] * 1.01, *d_weights[1:]]

    report = rl.bptt.check_gradients(Wrong(3, seed=0))
    assert not report.ok() and report.errors["kernel"] > 1e-3 and report.errors["recurrent_kernel"] < 1e-6


@pytest.mark.parametrize("wrap", [lambda layer: layer, rl.Bidirectional])
def test_check_gradients_refuses_stateful_layers_before_running(wrap):
    layer = wrap(rl.RNN(rl.GRUCell(2, seed=0), stateful=True))
    with pytest.raises(ValueError, match="not stateful"):
        rl.bptt.check_gradients(layer)


def test_check_gradients_leaves_the_original_untouched():
    cell = rl.LSTMCell(2, seed=0)
    cell.build((None, 3))
    before = cell.get_weights()
    rl.bptt.check_gradients(rl.Bidirectional(rl.RNN(cell, return_sequences=True)))
    assert cell.dtype == "float32"
    for a, b in zip(before, cell.get_weights()):
        np.testing.assert_array_equal(a, b)
