"""States with more than one dimension: ``state_size`` leaves that are ``rl.TensorShape``.

The cell under test is written here in the seed's style: ``GridCell`` keeps a
(B, C, N) state, C channels of N units, and each channel is its own small RNN.
Every result is compared with ``reference``, a plain loop over samples and
time steps, or with central finite differences of that loop.
"""

import numba
import numpy as np
import pytest

import rnnlab as rl
from rnnlab.backends.numba import custom_scan

from finite_differences import numeric_gradient, relative_error

C, N, F = 2, 3, 4  # channels, units per channel, input features


class GridCell(rl.AbstractRNNCell):
    """h'[c] = tanh(x K_c + h[c] R_c) for each channel c; state (B, C, N).

    kernel (F, C*N): channel c's block is columns c*N:(c+1)*N.  recurrent_kernel (C, N, N).
    The output is sum_c h'[c] (B, N), or h' itself (B, C, N) with ``summed_output=False``.
    """

    def __init__(self, shape=(C, N), summed_output=True, **kwargs):
        super().__init__(**kwargs)
        self.shape = rl.TensorShape(shape)
        self.summed_output = summed_output
        self.output_state_index = None if summed_output else 0

    @property
    def state_size(self):
        return self.shape

    @property
    def output_size(self):
        return self.shape[1] if self.summed_output else self.shape

    def build(self, input_shape):
        channels, units = self.shape
        self.add_weight("kernel", (input_shape[-1], channels * units), "glorot_uniform")
        self.add_weight("recurrent_kernel", (channels, units, units), "orthogonal")

    def call(self, inputs, states):
        output, new_states, _ = self.forward(inputs, states)
        return output, new_states

    def forward(self, inputs, states):
        h = states[0]  # (B, C, N)
        pre = (inputs @ self.kernel).reshape(h.shape) + np.einsum("bcn,cnm->bcm", h, self.recurrent_kernel)
        h_new = np.tanh(pre)
        output = h_new.sum(axis=1) if self.summed_output else h_new
        return output, [h_new], (inputs, h, h_new)

    def backward(self, cache, d_output, d_new_states):
        x, h, h_new = cache
        g = d_new_states[0] + (d_output[:, None, :] if self.summed_output else d_output)
        d_pre = g * (1 - h_new**2)  # (B, C, N)
        flat = d_pre.reshape(len(x), -1)
        d_weights = [x.T @ flat, np.einsum("bcn,bcm->cnm", h, d_pre)]
        return flat @ self.kernel.T, [np.einsum("bcm,cnm->bcn", d_pre, self.recurrent_kernel)], d_weights

    def get_config(self):
        return {"shape": self.shape, "summed_output": self.summed_output, **self._base_config()}


@numba.njit(cache=True)
def grid_step(x, state, weights, params, new_state, output, cache):
    """GridCell's step on flat states: state (B, C*N), the (C, N) leaf in C order; cache keeps h'."""
    K, R = weights
    channels, units, summed = params
    for b in range(x.shape[0]):
        for c in range(channels):
            for m in range(units):
                pre = state.dtype.type(0)
                for f in range(x.shape[1]):
                    pre += x[b, f] * K[f, c * units + m]
                for n in range(units):
                    pre += state[b, c * units + n] * R[c, n, m]
                new_state[b, c * units + m] = np.tanh(pre)
                cache[b, c * units + m] = new_state[b, c * units + m]
        for j in range(output.shape[1]):
            output[b, j] = 0
        for c in range(channels):
            for m in range(units):
                output[b, m if summed else c * units + m] += new_state[b, c * units + m]


@numba.njit(cache=True)
def grid_backward(x, state, weights, params, cache, d_output, d_new_state, d_x, d_state, d_weights):
    """GridCell.backward on flat states: writes d_x and d_state, adds into d_weights."""
    K, R = weights
    dK, dR = d_weights
    channels, units, summed = params
    d_x[:, :] = 0
    d_state[:, :] = 0
    for b in range(x.shape[0]):
        for c in range(channels):
            for m in range(units):
                j = c * units + m
                d_pre = (d_new_state[b, j] + d_output[b, m if summed else j]) * (1 - cache[b, j] ** 2)
                for f in range(x.shape[1]):
                    dK[f, j] += x[b, f] * d_pre
                    d_x[b, f] += d_pre * K[f, j]
                for n in range(units):
                    dR[c, n, m] += state[b, c * units + n] * d_pre
                    d_state[b, c * units + n] += d_pre * R[c, n, m]


@custom_scan.register
class FastGridCell(GridCell):
    numba_step = staticmethod(grid_step)
    numba_backward = staticmethod(grid_backward)

    def numba_params(self):
        return (self.shape[0], self.shape[1], int(self.summed_output))

    def numba_cache_size(self):
        return self.shape[0] * self.shape[1]


def reference(cell, x, h0=None, mask=None, go_backwards=False, zero_output=False):
    """Plain loops: (outputs (B, T, ...) in processing order, states (B, T, C, N) after each step)."""
    K, R = cell.get_weights()
    B, T, _ = x.shape
    channels, units = cell.shape
    h = np.zeros((B, channels, units)) if h0 is None else np.array(h0, float)
    steps = range(T - 1, -1, -1) if go_backwards else range(T)
    outputs, states = [], []
    previous = [np.zeros(N if cell.summed_output else (channels, units)) for _ in range(B)]
    for t in steps:
        out_t, h_t = [], []
        for b in range(B):
            if mask is not None and not mask[b, t]:
                out_t.append(0 * previous[b] if zero_output else previous[b])
                h_t.append(h[b])
                continue
            new = np.stack([np.tanh(x[b, t] @ K[:, c * units:(c + 1) * units] + h[b, c] @ R[c])
                            for c in range(channels)])
            out = new.sum(axis=0) if cell.summed_output else new
            out_t.append(out)
            previous[b] = out
            h_t.append(new)
        h = np.stack(h_t)
        outputs.append(np.stack(out_t))
        states.append(h)
    return np.stack(outputs, axis=1), np.stack(states, axis=1)


def built(cls=FastGridCell, seed=0, **kwargs):
    cell = cls(seed=seed, dtype="float64", **kwargs)
    cell.build((None, F))
    return cell


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 5, F))
    h0 = 0.5 * rng.normal(size=(3, C, N))
    mask = np.array([[1, 1, 0, 1, 1], [1, 0, 0, 1, 0], [0, 1, 1, 1, 1]], bool)
    return x, h0, mask


# -- TensorShape itself ------------------------------------------------------------------------------


def test_tensorshape_behaves_like_a_shape():
    shape = rl.TensorShape([2, 3])
    assert shape.as_list() == [2, 3] and list(shape) == [2, 3] and len(shape) == 2 and shape[1] == 3
    assert shape == rl.TensorShape((2, 3)) and shape == [2, 3] and shape == (2, 3) and shape != rl.TensorShape([3, 2])
    assert hash(shape) == hash(rl.TensorShape([2, 3])) and repr(shape) == "TensorShape([2, 3])"
    assert rl.TensorShape(np.array([2, 3])[0:1].tolist()) == [2] and rl.TensorShape([np.int64(4)]) == [4]
    assert not isinstance(shape, (list, tuple))  # so the nest helpers treat it as one leaf
    assert rl.nest.flatten(([4, shape], 5)) == [4, shape, 5]
    assert rl.nest.leaf_shape(shape) == (2, 3) and rl.nest.leaf_shape(4) == (4,)


@pytest.mark.parametrize("dims, error, words", [
    ([2, 0], ValueError, "positive ints, got 0"), ([-1], ValueError, "positive ints, got -1"),
    ([2.0, 3], TypeError, "positive ints, got 2.0"), ([True], TypeError, "positive ints, got True"),
    ([], ValueError, "at least one dim"), (6, TypeError, "a list of positive ints"),
])
def test_tensorshape_refuses_bad_dims(dims, error, words):
    with pytest.raises(error, match=words):
        rl.TensorShape(dims)


def test_initial_states_have_the_leaf_shapes():
    cell = GridCell()
    assert [s.shape for s in cell.get_initial_state(batch_size=4)] == [(4, 2, 3)]
    stacked = rl.StackedRNNCells([GridCell(), rl.SimpleRNNCell(5)])
    assert stacked.state_size == (rl.TensorShape([2, 3]), 5)
    assert [s.shape for s in stacked.get_initial_state(batch_size=4, dtype="float64")] == [(4, 2, 3), (4, 5)]


# -- the RNN layer -----------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["python", "numba"])
def test_every_layer_option_matches_the_reference(backend, data):
    x, h0, mask = data
    cell = built()
    options = [dict(), dict(mask=True), dict(go_backwards=True, mask=True), dict(zero_output_for_mask=True, mask=True),
               dict(initial_state=True, time_major=True, mask=True)]
    for option in options:
        use_mask, use_state = option.pop("mask", False), option.pop("initial_state", False)
        layer = rl.RNN(cell, return_sequences=True, return_state=True, backend=backend, **option)
        args = dict(mask=mask.T if layer.time_major else mask) if use_mask else {}
        y, h = layer(x.transpose(1, 0, 2) if layer.time_major else x, initial_state=[h0] if use_state else None,
                     **args)
        want_y, want_h = reference(cell, x, h0 if use_state else None, mask if use_mask else None,
                                   layer.go_backwards, layer.zero_output_for_mask)
        np.testing.assert_allclose(y.transpose(1, 0, 2) if layer.time_major else y, want_y, atol=1e-12)
        np.testing.assert_allclose(h, want_h[:, -1], atol=1e-12, err_msg=str(option))
    last = rl.RNN(cell, backend=backend)(x)
    np.testing.assert_allclose(last, reference(cell, x)[0][:, -1], atol=1e-12)


@pytest.mark.parametrize("backend", ["python", "numba"])
def test_a_tensorshape_output_and_stateful_layers(backend, data):
    x, h0, mask = data
    cell = built(summed_output=False)
    assert cell.output_size == rl.TensorShape([2, 3])
    layer = rl.RNN(cell, return_sequences=True, stateful=True, backend=backend)
    layer.reset_states([h0])
    first = layer(x[:, :2], mask=mask[:, :2])
    second = layer(x[:, 2:], mask=mask[:, 2:])  # a new call: its masked first step repeats zeros
    want_first, states = reference(cell, x[:, :2], h0, mask[:, :2])
    want_second, states = reference(cell, x[:, 2:], states[:, -1], mask[:, 2:])
    assert first.shape == (3, 2, 2, 3)
    np.testing.assert_allclose(first, want_first, atol=1e-12)
    np.testing.assert_allclose(second, want_second, atol=1e-12)
    np.testing.assert_allclose(layer.states[0], states[:, -1], atol=1e-12)
    layer.reset_states()
    np.testing.assert_allclose(layer(x), reference(cell, x)[0], atol=1e-12)


def test_stacked_with_an_int_cell(data):
    x, h0, mask = data
    grid, simple = built(GridCell), rl.SimpleRNNCell(4, dtype="float64", seed=1)
    layer = rl.RNN([grid, simple], return_sequences=True, return_state=True)  # "auto": the python loop
    h1 = np.random.default_rng(1).normal(size=(3, 4))
    y, grid_h, simple_h = layer(x, initial_state=[h0, h1], mask=mask)
    grid_y, grid_states = reference(grid, x, h0, mask)
    K, R, b = simple.get_weights()
    h, outputs, previous = h1, [], np.zeros((3, 4))
    for t in range(x.shape[1]):  # the SimpleRNN on the grid cell's outputs, masked as Keras does
        new = np.tanh(grid_y[:, t] @ K + h @ R + b)
        h = np.where(mask[:, t, None], new, h)
        previous = np.where(mask[:, t, None], new, previous)  # a masked step repeats the previous output
        outputs.append(previous)
    np.testing.assert_allclose(y, np.stack(outputs, axis=1), atol=1e-12)
    np.testing.assert_allclose(grid_h, grid_states[:, -1], atol=1e-12)
    np.testing.assert_allclose(simple_h, h, atol=1e-12)
    with pytest.raises(ValueError, match="no kernel"):  # the numba host runs built-in cells only
        rl.RNN([built(), rl.SimpleRNNCell(4, dtype="float64")], backend="numba")(x)


def test_bidirectional(data):
    x, h0, mask = data
    layer = rl.Bidirectional(rl.RNN(built(), return_sequences=True, return_state=True))
    h0_back = 0.1 * h0
    y, forward_h, backward_h = layer(x, initial_state=[h0, h0_back])
    forward_cell, backward_cell = (inner.cell for inner in layer.layers)
    want_forward, states_forward = reference(forward_cell, x, h0)
    want_backward, states_backward = reference(backward_cell, x, h0_back, go_backwards=True)
    np.testing.assert_allclose(y, np.concatenate([want_forward, want_backward[:, ::-1]], axis=-1), atol=1e-12)
    np.testing.assert_allclose(forward_h, states_forward[:, -1], atol=1e-12)
    np.testing.assert_allclose(backward_h, states_backward[:, -1], atol=1e-12)
    y, tape = rl.bptt.forward(layer, x, initial_state=[h0, h0_back])
    grads = rl.bptt.backward(tape, [np.ones_like(y[0]), None, np.ones((3, 2, 3))])
    assert [g.shape for g in grads.initial_state] == [(3, 2, 3), (3, 2, 3)]


def test_save_and_load_keep_the_tensorshape(tmp_path, data):
    x, _, _ = data
    layer = rl.RNN(built(GridCell, seed=3), return_sequences=True)
    expected = layer(x)
    rl.save(layer, tmp_path / "grid.npz")
    loaded = rl.load(tmp_path / "grid.npz")
    assert loaded.cell.state_size == rl.TensorShape([2, 3]) and isinstance(loaded.cell.shape, rl.TensorShape)
    np.testing.assert_allclose(loaded(x), expected, atol=1e-12)
    with np.load(tmp_path / "grid.npz") as archive:  # the same file with a bad TensorShape in its header
        header = str(archive["__header__"]).replace('{"__tensor_shape__": [2, 3]}', '{"__tensor_shape__": [2, -3]}')
        np.savez(tmp_path / "bad.npz", __header__=np.array(header), weight_0=archive["weight_0"],
                 weight_1=archive["weight_1"])
    with pytest.raises(ValueError, match=r"bad TensorShape: TensorShape dims must be positive ints, got -3"):
        rl.load(tmp_path / "bad.npz")


# -- BPTT ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["python", "numba"])
@pytest.mark.parametrize("summed_output", [True, False])
def test_gradients_match_finite_differences(backend, summed_output, data):
    x, h0, mask = data
    cell = built(summed_output=summed_output)
    layer = rl.RNN(cell, return_sequences=True, return_state=True, go_backwards=True, backend=backend)
    h0 = h0.copy()
    y, tape = rl.bptt.forward(layer, x, initial_state=[h0], mask=mask)
    assert tape.backend == backend and tape.states[0].shape == (5, 3, 2, 3)
    np.testing.assert_allclose(tape.states[0], reference(cell, x, h0, mask, True)[1].transpose(1, 0, 2, 3),
                               atol=1e-12)
    rng = np.random.default_rng(2)
    probe_y, probe_h = rng.normal(size=y[0].shape), rng.normal(size=y[1].shape)
    grads = rl.bptt.backward(tape, [probe_y, probe_h])

    def loss():
        outputs, states = reference(cell, x, h0, mask, go_backwards=True)
        return float(np.sum(probe_y * outputs) + np.sum(probe_h * states[:, -1]))

    for analytic, array in zip(grads.weights + [grads.inputs, grads.initial_state[0]], cell.weights + [x, h0]):
        assert relative_error(analytic, numeric_gradient(loss, array)) < 1e-7
    assert grads.state_grads[0].shape == (5, 3, 2, 3)
    norms = rl.analysis.gradient_norms(grads)
    assert norms.shape == (5,) and np.all(np.isfinite(norms))


def test_check_gradients_and_numba_state_grads(data):
    x, h0, mask = data
    report = rl.bptt.check_gradients(GridCell(summed_output=False, seed=0), mask=np.ones((2, 4), bool))
    assert "initial_state[0]" in report.errors and report.ok(1e-6), report
    cell = built(summed_output=False)
    per_backend = []
    for backend in ("python", "numba"):
        layer = rl.RNN(cell, return_sequences=True, backend=backend)
        y, tape = rl.bptt.forward(layer, x, initial_state=[h0], mask=mask)
        per_backend.append(rl.bptt.backward(tape, np.ones_like(y), truncate=2).state_grads[0])
    np.testing.assert_allclose(*per_backend, atol=1e-12)


# -- analyses ------------------------------------------------------------------------------------------


def test_jacobians_flatten_the_leaf(data):
    x, h0, _ = data
    cell = built(GridCell)
    s = h0.reshape(3, 6)  # the joint state: the (2, 3) leaf in C order
    jac = rl.analysis.step_jacobians(cell, x[:, 0], s, weights=True)
    assert jac.state.shape == (3, 6, 6) and jac.input.shape == (3, 6, F)
    assert [w.shape for w in jac.weights] == [(3, 6, F, 6), (3, 6, 2, 3, 3)]

    def step(x_b, s_b):  # one sample's new joint state, from the reference loop
        return reference(cell, x_b[None, None], s_b.reshape(1, 2, 3))[1][0, 0].ravel()

    for b in range(3):
        x_b, s_b = x[b, 0].copy(), s[b].copy()
        for k in range(6):
            np.testing.assert_allclose(jac.state[b, k], numeric_gradient(lambda: step(x_b, s_b)[k], s_b), atol=1e-8)
            np.testing.assert_allclose(jac.input[b, k], numeric_gradient(lambda: step(x_b, s_b)[k], x_b), atol=1e-8)
        np.testing.assert_allclose(jac.new_state[b], step(x_b, s_b), atol=1e-12)
    K = cell.kernel
    np.testing.assert_allclose(jac.weights[0][0, 4], numeric_gradient(lambda: step(x[0, 0], s[0])[4], K), atol=1e-8)


def test_trajectories(data):
    x, h0, _ = data
    cell = built()
    states = rl.analysis.trajectory(cell, x, initial_state=h0.reshape(3, 6))
    np.testing.assert_allclose(states, reference(cell, x, h0)[1].reshape(3, 5, 6), atol=1e-12)
    leaves = rl.analysis.split_state(cell, states)
    assert leaves[0].shape == (3, 5, 2, 3)
    np.testing.assert_allclose(rl.analysis.join_states(leaves, cell), states)
    _, jacobians = rl.analysis.trajectory_jacobians(cell, x)
    assert jacobians.shape == (3, 5, 6, 6)


# -- bad input -----------------------------------------------------------------------------------------


def test_wrong_shaped_states_name_the_expected_shape(data):
    x, h0, _ = data
    cell = built()
    layer = rl.RNN(cell, stateful=True)
    for wrong in (np.zeros((3, 6)), np.zeros((3, 3, 2)), np.zeros((3, 2, 3, 1))):
        with pytest.raises(ValueError, match=r"\(batch, 2, 3\) = \(3, 2, 3\)"):
            layer(x, initial_state=[wrong])
        with pytest.raises(ValueError, match=r"\(batch, 2, 3\)"):
            cell(x[:, 0], [wrong])
        with pytest.raises(ValueError, match=r"\(batch, 2, 3\)"):
            layer.reset_states([wrong])
    assert layer.states is None  # a refused call changed nothing
    with pytest.raises(ValueError, match=r"\(batch, 2, 3\)"):
        layer.reset_states([np.zeros(6)])

    class BadOutput(GridCell):
        output_size = 2.5

    with pytest.raises(ValueError, match="output_size must be a positive int or a TensorShape"):
        rl.RNN(BadOutput())
    with pytest.raises(ValueError, match="no kernel"):  # a cell without numba_step on numba
        rl.RNN(GridCell(), backend="numba")(x)
