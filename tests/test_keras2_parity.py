"""Conventions that follow tf.keras 2, the system rnnlab's contract comes from (issue 13).

Numbers against tf.keras 2 itself are in the golden-file tests; these are the
conventions of the API.
"""

import numpy as np
import pytest

import rnnlab as rl
from golden_cases import ConstantsCell  # h' = tanh(x K + h R + c C), the fixtures' constants cell

RNG = np.random.default_rng(3)
X = RNG.normal(size=(2, 5, 3))  # (B, T, F)
MASK = np.array([[1, 1, 0, 1, 1], [0, 1, 1, 1, 0]], bool)  # (B, T)


@pytest.mark.parametrize("backend", ["python", "numba"])
def test_a_time_major_layer_takes_its_mask_time_major(backend):
    def layer(time_major):
        return rl.RNN(rl.LSTMCell(4, seed=0, dtype="float64"), return_sequences=True, return_state=True,
                      time_major=time_major, backend=backend)

    batch_major = layer(False)(X, mask=MASK)
    time_major = layer(True)(X.transpose(1, 0, 2), mask=MASK.T)
    np.testing.assert_allclose(time_major[0], batch_major[0].transpose(1, 0, 2), rtol=1e-12)
    for a, b in zip(time_major[1:], batch_major[1:], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_a_batch_major_mask_on_a_time_major_layer_names_the_convention():
    layer = rl.RNN(rl.GRUCell(2), time_major=True)
    with pytest.raises(ValueError, match=r"\(time, batch\) = \(5, 2\).*time-major too, as in tf.keras 2"):
        layer(X.transpose(1, 0, 2), mask=MASK)


def test_a_square_time_major_mask_is_read_time_major():
    """With T == B a transposed mask cannot be detected, so the layout must be right."""
    x = RNG.normal(size=(3, 3, 2))  # (T, B, F) with T == B
    mask = np.array([[1, 1, 1], [0, 1, 1], [0, 0, 1]], bool)  # (T, B): sample 0 sees only step 0
    cell = rl.SimpleRNNCell(2, seed=0, dtype="float64")
    y = rl.RNN(cell, time_major=True, backend="python")(x, mask=mask)
    only_first_step = rl.RNN(cell, backend="python")(x[:1].transpose(1, 0, 2))  # every sample, step 0 only
    np.testing.assert_allclose(y[0], only_first_step[0], rtol=1e-12)


def test_unroll_is_accepted_and_changes_nothing():
    cell = rl.GRUCell(3, seed=0)
    unrolled = rl.RNN(cell, unroll=True)
    np.testing.assert_array_equal(unrolled(X), rl.RNN(cell)(X))
    assert rl.RNN.from_config(unrolled.get_config()).unroll is True


def stack():
    return rl.StackedRNNCells([rl.LSTMCell(3, seed=0, dtype="float64"), rl.SimpleRNNCell(2, seed=1, dtype="float64")])


@pytest.mark.parametrize("backend", ["python", "numba"])
def test_return_state_nests_a_stacks_states_per_cell(backend):
    """tf.keras 2 returns [y, [h1, c1], h2] for StackedRNNCells([LSTMCell, SimpleRNNCell])."""
    y, (h1, c1), h2 = rl.RNN(stack(), return_state=True, backend=backend)(X)
    assert y.shape == (2, 2) and h1.shape == c1.shape == (2, 3) and h2.shape == (2, 2)
    np.testing.assert_array_equal(y, h2)  # the stack's output is its last cell's state
    merged, forward_lstm, forward_simple, backward_lstm, backward_simple = rl.Bidirectional(
        rl.RNN(stack(), return_state=True, backend=backend))(X)
    assert merged.shape == (2, 4) and [a.shape for a in forward_lstm + backward_lstm] == [(2, 3)] * 4


def test_bptt_takes_dy_nested_like_the_states_and_none_for_a_whole_cell():
    layer = rl.RNN(stack(), return_sequences=True, return_state=True, backend="python")
    y, tape = rl.bptt.forward(layer, X)
    d_h2 = np.ones((2, 2))
    nested = rl.bptt.backward(tape, [np.zeros((2, 5, 2)), None, d_h2])  # None: no gradient for [h1, c1]
    spelled_out = rl.bptt.backward(tape, [np.zeros((2, 5, 2)), [np.zeros((2, 3)), np.zeros((2, 3))], d_h2])
    for a, b in zip(nested.weights, spelled_out.weights, strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="nested like the states"):
        rl.bptt.backward(tape, [np.zeros((2, 5, 2)), None, None, d_h2])  # the flat form is refused


def test_constants_reach_a_cell_that_takes_them_at_every_step():
    cell = ConstantsCell(3, 2, seed=0, dtype="float64")
    c = RNG.normal(size=(2, 2))
    y = rl.RNN(cell, return_sequences=True)(X, constants=[c])
    h = np.zeros((2, 3))
    for t in range(X.shape[1]):  # the equation, step by step
        h = np.tanh(X[:, t] @ cell.kernel + h @ cell.recurrent_kernel + c @ cell.constant_kernel)
        np.testing.assert_allclose(y[:, t], h, rtol=1e-12)


@pytest.mark.parametrize("make", [
    lambda cell: rl.RNN(cell, return_sequences=True, return_state=True, go_backwards=True),
    lambda cell: rl.Bidirectional(rl.RNN(cell, return_sequences=True), merge_mode="sum"),
], ids=["RNN", "Bidirectional"])
def test_bptt_gives_the_constants_gradient(make):
    report = rl.bptt.check_gradients(make(ConstantsCell(3, 2, seed=0)), x=X, mask=MASK,
                                     constants=[RNG.normal(size=(2, 2))])
    assert "constants[0]" in report.errors and report.ok(1e-7), str(report)


def test_constants_run_on_python_only_and_builtin_cells_refuse_them():
    c = [np.zeros((2, 2))]
    auto = rl.RNN(ConstantsCell(3, 2, seed=0))
    y, tape = rl.bptt.forward(auto, X, constants=c)
    assert tape.backend == "python"
    for backend in ("numba", "cuda"):
        layer = rl.RNN(ConstantsCell(3, 2, seed=0), backend=backend)
        with pytest.raises(ValueError, match=f"backend '{backend}' runs no cell with constants"):
            layer(X, constants=c)
        assert not layer.built
    with pytest.raises(TypeError, match="GRUCell takes no constants"):
        rl.RNN(rl.GRUCell(2))(X, constants=c)
    with pytest.raises(ValueError, match=r"constants\[0\] of shape \(batch, ...\) with batch = 2"):
        auto(X, constants=[np.zeros((3, 2))])
