"""rnnlab.analysis against known answers: finite differences, linear algebra, BPTT, analytic fixed points."""

import pathlib
import re

import numpy as np
import pytest
from scipy.optimize import brentq

import rnnlab as rl
import rnnlab.analysis as an
from conftest import CELL_KINDS, make_cell


def numeric_jacobian(fn, array, eps=1e-6):
    """Central differences of the vector function fn() w.r.t. ``array`` (perturbed in place, restored).

    Returns d fn() / d array with shape fn().shape + array.shape.
    """
    columns = []
    for index in np.ndindex(array.shape):
        saved = array[index]
        array[index] = saved + eps
        plus = fn()
        array[index] = saved - eps
        minus = fn()
        array[index] = saved
        columns.append((plus - minus) / (2 * eps))
    return np.stack(columns, axis=-1).reshape(plus.shape + array.shape)


def per_sample(jacobian, batch):
    """(B, S, B, ...) -> (B, S, ...): sample b's outputs depend only on sample b's inputs."""
    return np.stack([jacobian[b, :, b] for b in range(batch)])


def built(kind, units=3, features=2, **kwargs):
    cell = make_cell(kind, units, **kwargs) if kind != "linear" else \
        rl.SimpleRNNCell(units, activation="linear", dtype="float64", seed=0, bias_initializer="normal")
    cell.build((None, features))
    return cell


# -- step Jacobians ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", CELL_KINDS + ["linear"])
def test_step_jacobians_match_central_differences(kind, rng):
    cell = built(kind)
    B, S = 2, an.joint_size(cell)
    x, s = rng.normal(size=(B, 2)), 0.7 * rng.normal(size=(B, S))
    jac = an.step_jacobians(cell, x, s, weights=True)

    def new_state():  # the cell's own call, independent of the Jacobian code
        _, new = cell(x, an.split_state(cell, s))
        return np.concatenate(rl.nest.flatten(new), axis=1)

    np.testing.assert_allclose(jac.new_state, new_state(), rtol=1e-13)
    np.testing.assert_allclose(jac.state, per_sample(numeric_jacobian(new_state, s), B), atol=1e-8)
    np.testing.assert_allclose(jac.input, per_sample(numeric_jacobian(new_state, x), B), atol=1e-8)
    assert len(jac.weights) == len(cell.weights)
    for w, analytic in zip(cell.weights, jac.weights):
        np.testing.assert_allclose(analytic, numeric_jacobian(new_state, w), atol=1e-8)


def test_lstm_joint_state_is_h_then_c(rng):
    cell = built("lstm", units=4)
    s = rng.normal(size=8)
    jac = an.step_jacobians(cell, rng.normal(size=2), s)  # unbatched in, unbatched out
    assert jac.state.shape == (8, 8) and jac.input.shape == (8, 2)
    # c' = f c + i g does not see c through any matrix: dc'/dc is diagonal (the forget gate)
    dc_dc = jac.state[4:, 4:]
    np.testing.assert_allclose(dc_dc, np.diag(np.diag(dc_dc)))


def test_jacobians_reject_bad_shapes_and_unknown_cells():
    cell = built("gru")
    with pytest.raises(ValueError, match=r"joint state of shape \(batch, 3\)"):
        an.step_jacobians(cell, np.zeros((1, 2)), np.zeros((1, 4)))
    with pytest.raises(ValueError, match=r"inputs of shape \(batch, 2\)"):
        an.step_jacobians(cell, np.zeros((1, 5)), np.zeros((1, 3)))

    class Custom(rl.MinimalRNNCell):
        backward = rl.AbstractRNNCell.backward  # no backward to derive a Jacobian from

    custom = Custom(2)
    custom.build((None, 1))
    with pytest.raises(TypeError, match="no hand-written Jacobian for Custom"):
        an.state_jacobian(custom, np.zeros(1), np.zeros(2))


# -- trajectories, Jacobian products, eigenvalues ------------------------------------------


@pytest.mark.parametrize("kind", ["lstm", "stacked"])
def test_trajectory_jacobians_follow_the_layer(kind, rng):
    cell = built(kind)
    x = rng.normal(size=(2, 5, 2))
    s0 = 0.5 * rng.normal(size=(2, an.joint_size(cell)))
    states, jacobians = an.trajectory_jacobians(cell, x, s0)
    np.testing.assert_allclose(states, an.trajectory(cell, x, s0), rtol=1e-12)
    assert jacobians.shape == (2, 5, an.joint_size(cell), an.joint_size(cell))


def test_jacobian_products_of_a_linear_cell_are_matrix_powers(rng):
    cell = built("minimal", units=4)
    R = cell.recurrent_kernel * 20  # U(-1, 1): some directions grow, some shrink
    cell.set_weights([cell.kernel, R])
    T = 6
    _, jacobians = an.trajectory_jacobians(cell, rng.normal(size=(1, T, 2)))
    products = an.jacobian_products(jacobians)
    assert products.lags.tolist() == list(range(T + 1))
    for k in range(T + 1):
        expected = np.linalg.svd(np.linalg.matrix_power(R.T, k), compute_uv=False)
        np.testing.assert_allclose(products.singular_values[0, k], expected, rtol=1e-10, atol=1e-12 * expected[0])
    np.testing.assert_allclose(products.norms, products.singular_values[..., 0])


def test_recurrent_eigenvalues_per_gate_block():
    gru, lstm = built("gru", units=4), built("lstm", units=4)
    eig = an.recurrent_eigenvalues(gru)
    assert list(eig) == ["z", "r", "h"]
    np.testing.assert_allclose(np.sort_complex(eig["r"]), np.sort_complex(np.linalg.eigvals(gru.recurrent_kernel[:, 4:8])))
    assert list(an.recurrent_eigenvalues(lstm)) == ["i", "f", "c", "o"]
    assert list(an.recurrent_eigenvalues(built("stacked")))[:5] == ["cells[0].i", "cells[0].f", "cells[0].c",
                                                                    "cells[0].o", "cells[1].z"]


# -- gradient flow --------------------------------------------------------------------------


def test_gradient_norms_of_a_linear_cell_follow_powers_of_R(rng):
    cell = built("minimal", units=3)
    T, B = 8, 4
    layer = rl.RNN(cell, backend="python")  # loss on the last output only
    y, tape = rl.bptt.forward(layer, rng.normal(size=(B, T, 2)))
    dy = rng.normal(size=y.shape)
    grads = rl.bptt.backward(tape, dy)
    R = cell.recurrent_kernel
    # h_{t+1} = x K + h_t R, so dL/dh_t = dy (R^T)^(T-1-t)
    expected = np.stack([dy @ np.linalg.matrix_power(R.T, T - 1 - t) for t in range(T)])  # (T, B, U)
    np.testing.assert_allclose(an.gradient_norms(grads), np.sqrt((expected**2).sum(2).mean(1)), rtol=1e-10)
    np.testing.assert_allclose(an.gradient_map(grads), np.sqrt((expected**2).mean(1)), rtol=1e-10)


# -- Lyapunov spectrum -------------------------------------------------------------------


def test_lyapunov_exponents_of_linear_maps_are_log_eigenvalue_moduli(rng):
    # MinimalRNNCell with R built from chosen real eigenvalues
    eigenvalues = np.array([0.97, -0.8, 0.5, 0.3, -0.1])
    V = rng.normal(size=(5, 5))
    minimal = built("minimal", units=5)
    minimal.set_weights([minimal.kernel, V @ np.diag(eigenvalues) @ np.linalg.inv(V)])
    exponents = an.lyapunov_spectrum(minimal, rng.normal(size=(1500, 2)), discard=100)
    np.testing.assert_allclose(exponents, np.sort(np.log(np.abs(eigenvalues)))[::-1], atol=2e-3)

    # a linear SimpleRNN with a random R (complex pairs included); J = R^T
    linear = built("linear", units=6)
    R = rng.normal(size=(6, 6)) / np.sqrt(6)
    linear.set_weights([linear.kernel, R, linear.bias])
    exponents = an.lyapunov_spectrum(linear, np.zeros((3000, 2)), discard=200)
    np.testing.assert_allclose(exponents, np.sort(np.log(np.abs(np.linalg.eigvals(R.T))))[::-1], atol=2e-3)


def rate_network(g, n=120, seed=3):
    """h' = tanh(g J h), J ~ N(0, 1/N): SimpleRNNCell without bias and with R = g J^T (h R = g J h)."""
    J = np.random.default_rng(seed).normal(scale=1 / np.sqrt(n), size=(n, n))
    cell = rl.SimpleRNNCell(n, use_bias=False, dtype="float64", seed=0)
    cell.build((None, 1))
    cell.set_weights([np.zeros((1, n)), g * J.T])
    return cell


@pytest.mark.parametrize("g, sign", [(0.7, -1), (1.8, +1)])
def test_largest_exponent_of_the_random_rate_network_changes_sign_near_g_1(g, sign):
    exponents = an.lyapunov_spectrum(rate_network(g), np.zeros((800, 1)), discard=200, n_exponents=3)
    assert exponents[0] >= exponents[1] >= exponents[2]
    assert sign * exponents[0] > 0.03  # clear of zero: a margin, not a coin flip


def test_kaplan_yorke_dimension_by_hand():
    assert an.kaplan_yorke_dimension([0.5, -0.2, -1.0]) == pytest.approx(2 + 0.3 / 1.0)  # sums 0.5, 0.3, -0.7
    assert an.kaplan_yorke_dimension([-0.1, -0.5]) == 0.0
    assert an.kaplan_yorke_dimension([0.2, 0.1]) == 2.0
    np.testing.assert_allclose(an.kaplan_yorke_dimension([[0.5, -0.2, -1.0], [0.1, -0.4, -0.5]]),
                               [2.3, 1 + 0.1 / 0.4])


# -- fixed points -----------------------------------------------------------------------


def test_fixed_point_of_a_linear_cell_is_the_linear_solve(rng):
    cell = built("linear", units=5, features=3)
    R = rng.normal(size=(5, 5)) / np.sqrt(5) * 0.8
    cell.set_weights([cell.kernel, R, cell.bias])
    u = np.array([0.3, -1.0, 0.5])
    # h = u K + h R + b  <=>  h (I - R) = u K + b
    expected = np.linalg.solve((np.eye(5) - R).T, u @ cell.kernel + cell.bias)
    fps = an.find_fixed_points(cell, rng.normal(size=(50, 5)), constant_input=u, n_starts=20, noise=0.5)
    assert len(fps) == 1 and fps.counts[0] == 20
    np.testing.assert_allclose(fps.points[0], expected, atol=1e-9)
    assert fps.stable[0] == (np.abs(np.linalg.eigvals(R)).max() < 1)

    unstable = R * 3  # now some eigenvalues leave the unit circle
    cell.set_weights([cell.kernel, unstable, cell.bias])
    fps = an.find_fixed_points(cell, rng.normal(size=(50, 5)), constant_input=u, n_starts=10)
    np.testing.assert_allclose(fps.points[0], np.linalg.solve((np.eye(5) - unstable).T, u @ cell.kernel + cell.bias),
                               atol=1e-9)
    assert fps.n_unstable[0] == np.sum(np.abs(np.linalg.eigvals(unstable)) > 1) > 0
    assert fps.unstable_modes(0).shape == (fps.n_unstable[0], 5)


def test_fixed_points_of_two_bistable_units():
    """h' = tanh(2 h) in each of 2 independent units: 3 x 3 = 9 fixed points.

    Each unit has 0 (unstable, slope 2) and +-a with a = tanh(2a) (stable,
    slope 2 (1 - a^2) < 1): 4 stable points, 4 saddles and 1 source.
    """
    a = brentq(lambda h: np.tanh(2 * h) - h, 0.5, 1.0)
    cell = rl.SimpleRNNCell(2, use_bias=False, dtype="float64", seed=0)
    cell.build((None, 1))
    cell.set_weights([np.zeros((1, 2)), 2 * np.eye(2)])
    grid = np.stack(np.meshgrid(*[np.linspace(-1.2, 1.2, 13)] * 2), axis=-1).reshape(-1, 2)
    fps = an.find_fixed_points(cell, grid, n_starts=169, noise=0.01)
    assert len(fps) == 9 and fps.n_discarded == 0
    expected = np.array([(p, q) for p in (-a, 0.0, a) for q in (-a, 0.0, a)])
    distances = np.linalg.norm(fps.points[:, None] - expected[None], axis=2)  # (found, expected)
    assert distances.min(axis=0).max() < 1e-9  # each of the 9 expected points was found
    n_zero = np.sum(np.abs(fps.points) < 1e-6, axis=1)  # coordinates sitting at the unstable 0
    np.testing.assert_array_equal(fps.n_unstable, n_zero)
    assert fps.stable.sum() == 4
    for i in np.flatnonzero(n_zero == 1):  # a saddle's unstable mode points along its zero coordinate
        (mode,) = fps.unstable_modes(i)
        np.testing.assert_allclose(np.abs(mode), (np.abs(fps.points[i]) < 1e-6).astype(float), atol=1e-9)


@pytest.mark.parametrize("kind", CELL_KINDS)
def test_fixed_point_search_runs_for_every_cell(kind, rng):
    cell = built(kind, units=4)
    states = an.trajectory(cell, rng.normal(size=(4, 30, 2)))
    fps = an.find_fixed_points(cell, states, n_starts=16, noise=0.1)
    assert len(fps) >= 1
    new = an.step(cell, np.zeros((len(fps), 2)), fps.points)  # every point really is fixed
    np.testing.assert_allclose(new, fps.points, atol=1e-6)
    np.testing.assert_array_equal(fps.stable, np.abs(fps.eigenvalues).max(axis=1) < 1)


# -- the trained 3-bit flip-flop ----------------------------------------------------------


@pytest.fixture(scope="module")
def flip_flop_network():
    """A SimpleRNN(24) trained on the 3-bit flip-flop with hand-written BPTT and Adam (~5 s)."""
    cell = rl.SimpleRNNCell(24, seed=0)
    layer = rl.RNN(cell, return_sequences=True, backend="python")
    readout = rl.Dense(3, seed=1)
    steps = 1500
    optimizer = rl.optimizers.Adam(learning_rate=rl.optimizers.CosineDecay(0.01, steps, alpha=0.05), clipnorm=1.0)
    for step in range(steps):
        data = rl.tasks.flip_flop(64, 64, n_bits=3, p_flip=0.05, seed=step)
        h, tape = rl.bptt.forward(layer, data.x)
        prediction, cache = readout.forward(h)
        _, d_prediction = rl.losses.mse(prediction, data.y)
        d_h, d_readout = readout.backward(cache, d_prediction)
        grads = rl.bptt.backward(tape, d_h)
        new = optimizer.apply(cell.get_weights() + readout.get_weights(), grads.weights + d_readout)
        n = len(cell.weights)
        cell.set_weights(new[:n])
        readout.set_weights(new[n:])
    return layer, readout


def test_trained_flip_flop_has_eight_stable_fixed_points(flip_flop_network):
    layer, readout = flip_flop_network
    test = rl.tasks.flip_flop(128, 200, n_bits=3, p_flip=0.05, seed=123_456)
    loss, _ = rl.losses.mse(readout(layer(test.x)), test.y)
    assert loss < 0.05 * test.baseline  # the network really solves the task

    states = an.trajectory(layer.cell, test.x)
    fps = an.find_fixed_points(layer.cell, states, n_starts=256, noise=0.05)
    assert fps.stable.sum() == 8
    # the 8 attractors are the 8 memories: the readout there gives every sign pattern once
    outputs = readout(fps.points[fps.stable].astype("float32"))
    assert np.all(np.abs(outputs) > 0.5)
    assert len({tuple(row) for row in np.sign(outputs)}) == 8
    assert np.all(fps.n_unstable[~fps.stable] >= 1)


# -- RTRL ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", CELL_KINDS + ["linear"])
def test_rtrl_equals_full_bptt(kind, rng):
    cell = built(kind)
    B, T = 2, 7
    x = rng.normal(size=(B, T, 2))
    s0 = 0.5 * rng.normal(size=(B, an.joint_size(cell)))
    y, tape = rl.bptt.forward(rl.RNN(cell, return_sequences=True, backend="python"), x,
                              initial_state=an.split_state(cell, s0))
    dy = rng.normal(size=y.shape)
    bptt = rl.bptt.backward(tape, dy).weights
    for forward_mode, reverse_mode in zip(an.rtrl(cell, x, dy, s0), bptt):
        scale = np.abs(reverse_mode).max()
        np.testing.assert_allclose(forward_mode, reverse_mode, atol=1e-8 * scale, rtol=0)


def test_truncated_bptt_approximates_rtrl(rng):
    cell = built("gru", units=4)
    x = rng.normal(size=(2, 12, 2))
    y, tape = rl.bptt.forward(rl.RNN(cell, return_sequences=True, backend="python"), x)
    dy = rng.normal(size=y.shape)
    exact = np.concatenate([g.ravel() for g in an.rtrl(cell, x, dy)])
    errors = []
    for k in (1, 3, 12):
        truncated = np.concatenate([g.ravel() for g in rl.bptt.backward(tape, dy, truncate=k).weights])
        errors.append(np.linalg.norm(truncated - exact) / np.linalg.norm(exact))
    assert errors[0] > errors[1] > 1e-3 and errors[2] < 1e-12


# -- PCA ---------------------------------------------------------------------------------------


def test_pca_finds_the_plane_the_states_move_in(rng):
    basis = np.linalg.qr(rng.normal(size=(6, 2)))[0]  # an orthonormal 2-D plane in 6-D
    coords = rng.normal(size=(3, 100, 2)) * [3.0, 1.0]
    states = coords @ basis.T + 0.5 + 1e-6 * rng.normal(size=(3, 100, 6))
    fit = an.pca(states, n_components=3)
    assert fit.components.shape == (3, 6)
    np.testing.assert_allclose(fit.components @ fit.components.T, np.eye(3), atol=1e-12)
    projector = basis @ basis.T
    np.testing.assert_allclose(projector @ fit.components[:2].T, fit.components[:2].T, atol=1e-5)
    covariance = np.cov(states.reshape(-1, 6).T)
    np.testing.assert_allclose(fit.explained_variance, np.sort(np.linalg.eigvalsh(covariance))[::-1][:3],
                               rtol=1e-6, atol=1e-9)
    assert fit.explained_variance_ratio[:2].sum() > 0.999999
    np.testing.assert_allclose(fit.inverse_transform(fit.transform(states)), states, atol=1e-5)


# -- the guide's examples run ----------------------------------------------------------------------


def test_analysis_guide_examples_run():
    text = (pathlib.Path(__file__).resolve().parents[1] / "docs" / "analysis.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks
    namespace = {}
    for block in blocks:
        exec(compile(block, "analysis.md", "exec"), namespace)
