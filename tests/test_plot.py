"""Every rnnlab.plot function renders to PNG with Agg and draws the artists it promises."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from matplotlib.collections import LineCollection, PathCollection, PolyCollection
from matplotlib.contour import ContourSet
from matplotlib.figure import Figure
from matplotlib.quiver import Quiver

import rnnlab as rl
import rnnlab.analysis as an
import rnnlab.plot as rp


def render(fig, tmp_path, name="figure.png"):
    """Draw the figure to a PNG file and check a real image came out."""
    assert isinstance(fig, Figure)
    path = tmp_path / name
    fig.savefig(path, dpi=40)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def of_type(ax, kind):
    return [c for c in ax.collections if isinstance(c, kind)]


@pytest.fixture(scope="module")
def bistable():
    """2 independent units h' = tanh(2 h): 4 stable points, 4 saddles and a source."""
    cell = rl.SimpleRNNCell(2, use_bias=False, dtype="float64", seed=0)
    cell.build((None, 1))
    cell.set_weights([np.ones((1, 2)), 2 * np.eye(2)])
    grid = np.stack(np.meshgrid(*[np.linspace(-1.2, 1.2, 9)] * 2), axis=-1).reshape(-1, 2)
    return cell, an.find_fixed_points(cell, grid, n_starts=81, noise=0.01)


@pytest.fixture(scope="module")
def gru_run():
    cell = rl.GRUCell(6, seed=0, dtype="float64")
    x = np.random.default_rng(0).normal(size=(3, 20, 2))
    y, tape = rl.bptt.forward(rl.RNN(cell, return_sequences=True, backend="python"), x)
    grads = rl.bptt.backward(tape, np.ones_like(y))
    return cell, x, tape, grads


def test_state_trajectories_still_work(tmp_path):
    fig = rp.state_trajectories(np.random.default_rng(0).normal(size=(2, 15, 3)))
    render(fig, tmp_path)
    assert len(fig.axes[0].lines) == 3


@pytest.mark.parametrize("dims", [2, 3])
def test_pca_trajectories(dims, gru_run, tmp_path):
    cell, x, _, _ = gru_run
    states = an.trajectory(cell, x)
    fig = rp.pca_trajectories(states, dims=dims)
    render(fig, tmp_path)
    ax = fig.axes[0]
    assert len(ax.lines) == 3  # one line per trajectory
    assert len(of_type(ax, PathCollection)) == 1  # the start markers
    assert ax.get_xlabel().startswith("PC1")
    assert (ax.name == "3d") == (dims == 3)


def test_pca_trajectories_draws_into_a_given_axes(gru_run, tmp_path):
    cell, x, _, _ = gru_run
    fig = Figure()
    ax = fig.add_subplot(1, 2, 2)
    assert rp.pca_trajectories(an.trajectory(cell, x)[0], ax=ax) is fig
    render(fig, tmp_path)
    assert len(ax.lines) == 1


@pytest.mark.parametrize("stream", [False, True])
def test_phase_portrait(stream, bistable, tmp_path):
    cell, fps = bistable
    path = an.trajectory(cell, np.zeros((1, 10, 1)), initial_state=[0.1, -0.05])
    fig = rp.phase_portrait(cell, stream=stream, trajectories=path, fixed_points=fps)
    render(fig, tmp_path)
    ax = fig.axes[0]
    if stream:
        assert len(of_type(ax, LineCollection)) >= 1  # the stream lines
    else:
        assert len(of_type(ax, Quiver)) == 1
    assert len(of_type(ax, ContourSet)) == 2  # a nullcline for each coordinate
    assert len(of_type(ax, PathCollection)) == 2  # stable and unstable points
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert "nullcline of s[0]" in labels and "stable (4)" in labels and "unstable (5)" in labels


def test_phase_portrait_needs_a_two_number_state(gru_run):
    with pytest.raises(ValueError, match="joint state of size 2"):
        rp.phase_portrait(gru_run[0])


def test_gate_activations(gru_run, tmp_path):
    _, _, tape, _ = gru_run
    fig = rp.gate_activations(tape)
    render(fig, tmp_path)
    ax = fig.axes[0]
    assert len(ax.lines) == 3  # z, r and the candidate
    assert len(of_type(ax, PolyCollection)) == 3  # the shaded ranges over units
    assert {t.get_text() for t in ax.get_legend().get_texts()} == {"update gate z", "reset gate r", "candidate h~"}


def test_gradient_heatmap(gru_run, tmp_path):
    _, _, _, grads = gru_run
    fig = rp.gradient_heatmap(grads)
    render(fig, tmp_path)
    ax = fig.axes[0]
    (image,) = ax.images
    assert image.get_array().shape == (6, 20)  # units x time
    assert image.colorbar is not None and len(fig.axes) == 2


def test_gradient_norm_vs_lag(gru_run, tmp_path):
    cell, x, _, grads = gru_run
    fig = rp.gradient_norm_vs_lag(grads, label="BPTT")
    _, jacobians = an.trajectory_jacobians(cell, x)
    rp.gradient_norm_vs_lag(an.jacobian_products(jacobians), ax=fig.axes[0], label="Jacobian products")
    render(fig, tmp_path)
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    assert [len(line.get_xdata()) for line in ax.lines] == [20, 21]


def test_eigenvalues(tmp_path):
    cell = rl.LSTMCell(5, seed=0)
    cell.build((None, 2))
    fig = rp.eigenvalues(cell)
    render(fig, tmp_path)
    ax = fig.axes[0]
    (circle,) = [line for line in ax.lines if line.get_label() == "unit circle"]
    np.testing.assert_allclose(np.hypot(circle.get_xdata(), circle.get_ydata()), 1.0)
    assert len(of_type(ax, PathCollection)) == 4  # one colour per gate block
    assert sum(len(c.get_offsets()) for c in of_type(ax, PathCollection)) == 20


@pytest.mark.parametrize("dims", [2, 3])
def test_fixed_points(dims, bistable, tmp_path):
    cell, fps = bistable
    states = an.trajectory(cell, np.zeros((4, 15, 1)), initial_state=0.2 * np.random.default_rng(0).normal(size=(4, 2)))
    if dims == 3:  # a 2-number state has only 2 components, so embed the points in 3-D with a wider cell
        cell = rl.SimpleRNNCell(3, use_bias=False, dtype="float64", seed=0)
        cell.build((None, 1))
        cell.set_weights([np.zeros((1, 3)), 2 * np.eye(3)])
        grid = np.random.default_rng(1).uniform(-1.2, 1.2, size=(300, 3))
        fps = an.find_fixed_points(cell, grid, n_starts=300, noise=0.01)
        states = an.trajectory(cell, np.zeros((4, 15, 1)), initial_state=np.random.default_rng(0).normal(size=(4, 3)))
    fig = rp.fixed_points(fps, states=states, dims=dims)
    render(fig, tmp_path)
    ax = fig.axes[0]
    assert len(of_type(ax, PathCollection)) == 2  # stable and unstable
    n_modes = int(fps.n_unstable.sum())
    assert n_modes > 0
    assert len(ax.lines) == 4 + n_modes + 1  # trajectories, one line per unstable mode, the legend entry
    assert int(fps.stable.sum()) == 2**dims


def test_lyapunov_spectrum(tmp_path):
    exponents = np.array([[0.12, 0.0, -0.4, -1.3], [0.1, -0.01, -0.5, -1.2]])
    fig = rp.lyapunov_spectrum(exponents)
    render(fig, tmp_path)
    ax = fig.axes[0]
    assert len(ax.lines) == 3  # two spectra and the zero line
    assert "Kaplan-Yorke" in ax.get_title()
