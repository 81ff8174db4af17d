"""The figures gallery: every picture in ``figures/``, each made by one seeded function.

``make figures`` (``python -m rnnlab figures``) calls `make_all`, so
the gallery is regenerated deterministically from the code.  Each function
returns a ``matplotlib.figure.Figure``; `FIGURES` lists them by file name.
"""

import pathlib

import numpy as np

import rnnlab as rl
from rnnlab import analysis, plot
from rnnlab.plot._util import new_figure


def _two_sines(steps, batch=1):
    t = np.arange(steps)
    x = np.stack([np.sin(2 * np.pi * t / 50), np.cos(2 * np.pi * t / 37)], axis=-1)
    return np.repeat(x[None], batch, axis=0).astype("float64")


def lstm_states():
    """An LSTM's hidden units driven by two sines: the first picture of the tour."""
    cell = rl.LSTMCell(8, seed=0, dtype="float64")
    h = rl.RNN(cell, return_sequences=True)(_two_sines(300))
    return plot.state_trajectories(h, title="LSTM hidden state driven by two sines")


def _planar_cell(recurrent):
    """A 2-unit tanh SimpleRNN with the given 2x2 recurrent matrix and no input."""
    cell = rl.SimpleRNNCell(2, dtype="float64", seed=0)
    cell.build((None, 1))
    cell.set_weights([np.zeros((1, 2)), np.asarray(recurrent, dtype=float), np.zeros(2)])
    return cell


def phase_portraits():
    """Three 2-unit cells: a contraction, a rotation that settles into a cycle, and two attractors.

    Each panel marks its attractors: the fixed points (stable filled, unstable open) found by
    `rnnlab.analysis.find_fixed_points`, and for the rotation the closed curve it settles on.
    """
    angle = np.pi / 6
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    cases = [
        ("contraction: R = 0.5 I", 0.5 * np.eye(2)),
        ("rotation: R = 1.3 rot(30 deg)", 1.3 * rotation),
        ("two attractors: R = diag(1.8, 0.5)", np.diag([1.8, 0.5])),
    ]
    fig = new_figure((13, 4.2))
    axes = fig.subplots(1, 3)
    for ax, (title, recurrent) in zip(axes, cases):
        cell = _planar_cell(recurrent)
        starts = np.array([[1.2, 1.0], [-1.0, 0.4], [0.2, -1.2], [0.05, 0.05]])
        paths = analysis.trajectory(cell, np.zeros((4, 40, 1)), initial_state=starts)
        paths = np.concatenate([starts[:, None], paths], axis=1)
        fixed = analysis.find_fixed_points(cell, paths, n_starts=64, noise=0.3, seed=0)
        plot.phase_portrait(cell, ax=ax, trajectories=paths, fixed_points=fixed, title=title)
        if not fixed.stable.any():  # no stable point: the attractor is the curve a long run settles on
            settled = analysis.trajectory(cell, np.zeros((1, 400, 1)), initial_state=starts[:1])[0, -100:]
            ax.plot(*settled.T, ".", color="black", markersize=3, label="attracting cycle")
            ax.legend(loc="upper right", fontsize="small")
    return fig


def gradient_flow():
    """||dL/dh_t|| for a loss on the last output only: SimpleRNN forgets fastest."""
    fig = new_figure((6.5, 4))
    ax = fig.add_subplot()
    x = np.random.default_rng(0).normal(size=(8, 100, 4))
    for name, cell in gradient_flow_cells().items():
        norms = last_output_gradient_norms(cell, x)
        plot.gradient_norm_vs_lag(norms[::-1], ax=ax, label=name, title="Gradient reaching step T - lag")
    ax.set_xlabel("lag (steps back from the loss)")
    return fig


def gradient_flow_cells():
    """The three built-in cells the gradient-flow comparison uses, seeded alike."""
    return {
        "SimpleRNN": rl.SimpleRNNCell(32, seed=0, dtype="float64"),
        "GRU": rl.GRUCell(32, seed=0, dtype="float64"),
        "LSTM": rl.LSTMCell(32, seed=0, dtype="float64"),
    }


def last_output_gradient_norms(cell, x):
    """||dL/dh_t|| over t for L = sum of the last output (T,), from the BPTT tape."""
    y, tape = rl.bptt.forward(rl.RNN(cell), x)
    grads = rl.bptt.backward(tape, np.ones_like(y))
    return analysis.gradient_norms(grads)


def gradient_heatmap():
    """|dL/dh_t| per unit and step for an LSTM, loss on the last output."""
    cell = rl.LSTMCell(24, seed=0, dtype="float64")
    x = np.random.default_rng(0).normal(size=(4, 60, 3))
    y, tape = rl.bptt.forward(rl.RNN(cell), x)
    return plot.gradient_heatmap(rl.bptt.backward(tape, np.ones_like(y)), title="LSTM gradient flow |dL/dh_t|")


def lstm_gates():
    """LSTM gate activations over time, from the BPTT tape."""
    cell = rl.LSTMCell(8, seed=0, dtype="float64")
    _, tape = rl.bptt.forward(rl.RNN(cell, return_sequences=True), _two_sines(150))
    return plot.gate_activations(tape.gates, title="LSTM gates driven by two sines")


def eigenvalues():
    """Eigenvalues of a random recurrent matrix g J, J ~ N(0, 1/N), for g = 1.5: outside the unit circle."""
    n, g = 100, 1.5
    coupling = np.random.default_rng(0).normal(0, 1 / np.sqrt(n), size=(n, n))
    cell = rate_network(g * coupling)
    return plot.eigenvalues({"eigenvalues of g J": analysis.recurrent_eigenvalues(cell)["h"]},
                            title="Eigenvalues of g J, g = 1.5")


def rate_network(recurrent):
    """h' = tanh(h R): a SimpleRNN with no input weights used and no bias."""
    n = recurrent.shape[0]
    cell = rl.SimpleRNNCell(n, use_bias=False, dtype="float64", seed=0)
    cell.build((None, 1))
    cell.set_weights([np.zeros((1, n)), recurrent])
    return cell


def edge_of_chaos(gains=np.linspace(0.5, 2.0, 13), n=100, steps=400, seed=0):
    """Largest Lyapunov exponent of h' = tanh(g J h) against the gain g.

    It is negative below g = 1, stays near 0 up to g = 1.25 (the network keeps oscillating, without
    chaos: this J's largest |eigenvalue| is 1.036, not 1) and turns positive, chaos, from g ≈ 1.4.
    """
    coupling = np.random.default_rng(seed).normal(0, 1 / np.sqrt(n), size=(n, n))
    largest = [analysis.lyapunov_spectrum(rate_network(g * coupling.T), np.zeros((steps, 1)), discard=100,
                                          n_exponents=1, seed=seed)[0] for g in gains]
    fig = new_figure((6, 4))
    ax = fig.add_subplot()
    ax.plot(gains, largest, "o-")
    ax.axhline(0, color="gray", linewidth=0.8)
    ax.axvline(1, color="gray", linestyle=":", linewidth=0.8)
    ax.set(xlabel="gain g", ylabel="largest exponent (nats per step)",
           title="Edge of chaos: h' = tanh(g J h), N = 100")
    return fig


def copy_task():
    """SimpleRNN, GRU and LSTM on the copy task (delay 10), against the memoryless baseline."""
    return rl.experiments.compare_on_copy_task(delay=10, steps=2000, units=32, seed=0, verbose=False).figure


#: file name -> function making the figure, in gallery order.
FIGURES = {
    "lstm_states.png": lstm_states,
    "phase_portraits.png": phase_portraits,
    "gradient_flow.png": gradient_flow,
    "gradient_heatmap.png": gradient_heatmap,
    "lstm_gates.png": lstm_gates,
    "eigenvalues.png": eigenvalues,
    "edge_of_chaos.png": edge_of_chaos,
    "copy_task.png": copy_task,
}


def save(fig, path):
    """Write a PNG with no varying metadata, so regenerating gives the same bytes."""
    fig.savefig(path, dpi=110, metadata={"Software": None})


def make_all(out_dir="figures", names=None, log=print):
    """Regenerate the gallery into ``out_dir``; returns the written paths."""
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in names or FIGURES:
        path = out_dir / name
        save(FIGURES[name](), path)
        log(f"wrote {path}")
        paths.append(path)
    return paths
