"""The ready-made population studies (rl.sweep.edge_of_chaos, rl.sweep.trained_population) and their plots.

The studies run on a real Dask LocalCluster of two worker processes.  Their
numbers are checked against the known picture and against the single-network
analysis functions of rnnlab.analysis, run here by hand.
"""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from distributed import Client, LocalCluster
from matplotlib.collections import PathCollection, PolyCollection
from matplotlib.figure import Figure

import rnnlab as rl
import rnnlab.analysis as an
import rnnlab.plot as rp
from rnnlab.sweep import studies


@pytest.fixture(scope="module")
def client():
    """Two worker processes of one thread each, shared by the tests of this module."""
    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1",
                      dashboard_address="127.0.0.1:0") as cluster, Client(cluster) as client:
        yield client


# -- the edge of chaos --------------------------------------------------------------------------------


def test_edge_of_chaos_reproduces_the_known_picture(client):
    """Order below g = 1, chaos above, at N = 100 (8 seeds, 300 steps, 4 tasks of 8 networks).

    Measured here: every network has a negative exponent at g <= 0.8 (about
    -0.64 at 0.5, -0.17 at 0.8) and a positive one at g = 2 (0.08 to 0.16).
    At g = 1.5 the seed mean is positive (+0.013) but 3 of the 8 networks are
    not chaotic: for this discrete-time map the mean-field exponent there is
    only +0.065, and at N = 100 finite-size networks often settle on a cycle.
    """
    res = rl.sweep.edge_of_chaos([0.5, 0.8, 1.5, 2.0], [100], range(8), chunk_size=8, client=client, progress=False)
    assert res.errors == [] and len(res.sweep.table) == 4  # 4 Dask tasks, one chunk of 8 networks each
    table = res.table
    assert list(table.columns) == ["gain", "units", "seed", "exponent", "activity", "reach"]
    assert list(table["gain"]) == [0.5] * 8 + [0.8] * 8 + [1.5] * 8 + [2.0] * 8
    ordered, chaotic = table[table["gain"] <= 0.8], table[table["gain"] == 2.0]
    assert (ordered["exponent"] < 0).all() and (chaotic["exponent"] > 0).all()
    assert (table.groupby("gain")["exponent"].mean().loc[[1.5, 2.0]] > 0).all()
    # ordered: the activity dies out and the gradient fades within tens of steps; chaotic: it never fades
    assert (ordered["activity"] < 1e-6).all() and (chaotic["activity"] > 0.3).all()
    assert (ordered["reach"] < 100).all() and (chaotic["reach"] == 300).all()


def by_hand(gain, units, seed, steps, discard):
    """Exponent, activity and gradient reach of one network, from rnnlab.analysis and rl.bptt."""
    rng = np.random.default_rng([seed, 0])  # the recipe of the studies module's docstring
    J = rng.standard_normal((units, units)) / np.sqrt(units)
    h0 = rng.standard_normal(units)
    cell = rl.SimpleRNNCell(units, use_bias=False, dtype="float64")
    cell.build((None, 1))
    cell.set_weights([np.zeros((1, units)), gain * J])
    x = np.zeros((steps, 1))
    exponent = an.lyapunov_spectrum(cell, x, initial_state=h0, discard=discard, n_exponents=1, seed=[seed, 1])[0]
    activity = np.abs(an.trajectory(cell, x, initial_state=h0)[discard:]).mean()
    y, tape = rl.bptt.forward(rl.RNN(cell, return_sequences=True, backend="python"), x[None], initial_state=[h0[None]])
    dy = np.zeros_like(y)
    dy[:, -1] = y[:, -1]  # L = 1/2 |h_T|^2
    ratio = an.gradient_norms(rl.bptt.backward(tape, dy))[::-1]  # lag 0, 1, ...
    ratio = ratio / ratio[0]
    reach = int(np.argmax(ratio < 1e-3)) if (ratio < 1e-3).any() else steps
    return exponent, activity, reach


def test_edge_of_chaos_equals_the_single_network_analyses(client):
    """Every network's numbers equal rnnlab.analysis run on it alone, whatever chunk it ran in.

    60 steps: the ensemble and the cell sum h @ R in different orders, and chaos
    would amplify that last-digit difference to 1e-4 over 300 steps.
    """
    gains, units, seeds = [0.5, 0.8, 1.5, 2.0], [30, 100], [0, 3]
    res = rl.sweep.edge_of_chaos(gains, units, seeds, steps=60, discard=20, chunk_size=3, client=client,
                                 progress=False)
    assert len(res.table) == 16 and len(res.sweep.table) == 6  # chunks of 3 mix gains and seeds
    for row in res.table.itertuples():
        exponent, activity, reach = by_hand(row.gain, row.units, row.seed, 60, 20)
        np.testing.assert_allclose([row.exponent, row.activity], [exponent, activity], rtol=1e-9, atol=1e-14)
        assert row.reach == reach


# -- a population of trained networks -------------------------------------------------------------------


def test_trained_grus_find_the_eight_memories_of_the_flip_flop(client):
    """GRU(16), 600 steps, seeds 0-3: measured 4 of 4 with 8 stable points, the 8 memories; we require >= 3 of 4.

    Each network is trained on the cluster; its table row must agree with its
    own stored readouts, and a network that solved the task has saddles too.
    """
    res = rl.sweep.trained_population(["GRU"], [0, 1, 2, 3], ["flip_flop_3bit"], client=client, progress=False)
    table = res.table
    assert res.errors == [] and list(table["seed"]) == [0, 1, 2, 3]
    solved = table[(table["n_stable"] == 8) & (table["n_memories"] == 8)]
    assert len(solved) >= 3
    assert (solved["loss_ratio"] < 0.1).all() and (solved["n_unstable"] >= 1).all()
    assert (solved["memories"] == " ".join(studies.memory_patterns(3))).all()
    for row in table.index:
        readouts = res.sweep.array(row, "stable_readouts")
        assert readouts.shape == (table.loc[row, "n_stable"], 3)
        signs = {"".join("+" if v > 0 else "-" for v in r) for r in readouts[np.all(np.abs(readouts) > 0.5, axis=1)]}
        assert len(signs) == table.loc[row, "n_memories"]
    np.testing.assert_allclose(table["baseline"], rl.tasks.flip_flop_baseline_mse(200, 0.05))


def test_memory_patterns_are_every_sign_pattern_once():
    assert studies.memory_patterns(2) == ["--", "-+", "+-", "++"]
    assert len(set(studies.memory_patterns(4))) == 16


# -- bad input -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, error, words", [
    (dict(gains=[], units=[10], seeds=[0]), ValueError, "gains is empty"),
    (dict(gains=0.5, units=[10], seeds=[0]), TypeError, "gains must be a list"),
    (dict(gains=[-1.0], units=[10], seeds=[0]), ValueError, "gains must be > 0"),
    (dict(gains=[1.0], units=[0], seeds=[0]), ValueError, "units must be a positive int"),
    (dict(gains=[1.0, 1.0], units=[10], seeds=[0]), ValueError, "has a value twice"),
    (dict(gains=[1.0], units=[10], seeds=[0], steps=50, discard=50), ValueError, "discard must be smaller"),
])
def test_edge_of_chaos_refuses_bad_input(kwargs, error, words):
    with pytest.raises(error, match=words):
        rl.sweep.edge_of_chaos(**kwargs, progress=False)


@pytest.mark.parametrize("kwargs, words", [
    (dict(cells=["NoSuchCell"], seeds=[0]), "unknown cell"),
    (dict(cells=["GRU"], seeds=[0], tasks=["adding_problem"]), "unknown task"),
    (dict(cells=["GRU"], seeds=[-1]), "seeds must be an int >= 0"),
])
def test_trained_population_refuses_bad_input(kwargs, words):
    with pytest.raises(ValueError, match=words):
        rl.sweep.trained_population(**kwargs, progress=False)


# -- plots -----------------------------------------------------------------------------------------------


def render(fig, tmp_path):
    assert isinstance(fig, Figure)
    fig.savefig(tmp_path / "figure.png", dpi=40)
    assert (tmp_path / "figure.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def of_type(ax, kind):
    return [c for c in ax.collections if isinstance(c, kind)]


def test_exponent_vs_gain_draws_a_mean_and_a_band_per_size(tmp_path):
    table = pd.DataFrame([{"gain": g, "units": n, "seed": s, "exponent": np.log(g) + 0.01 * s}
                          for g in (0.5, 1.0, 2.0) for n in (50, 100) for s in range(3)])
    fig = rp.exponent_vs_gain(table)
    render(fig, tmp_path)
    ax = fig.axes[0]
    assert len(ax.lines) == 3  # the mean of each size, and the zero line
    np.testing.assert_allclose(ax.lines[1].get_ydata(), np.log([0.5, 1.0, 2.0]) + 0.01)  # the mean over seeds
    assert len(of_type(ax, PolyCollection)) == 2 and len(of_type(ax, PathCollection)) == 2
    assert sum(len(c.get_offsets()) for c in of_type(ax, PathCollection)) == len(table)  # a dot per network


def population_table():
    return pd.DataFrame([
        {"cell": "GRU", "seed": 0, "task": "flip_flop_2bit", "n_stable": 4, "n_unstable": 5, "n_memories": 4,
         "n_patterns": 4, "memories": "-- -+ +- ++"},
        {"cell": "GRU", "seed": 1, "task": "flip_flop_2bit", "n_stable": 3, "n_unstable": 2, "n_memories": 3,
         "n_patterns": 4, "memories": "-- -+ ++"},
        {"cell": "LSTM", "seed": 0, "task": "flip_flop_1bit", "n_stable": 2, "n_unstable": 1, "n_memories": 2,
         "n_patterns": 2, "memories": "- +"},
    ])


def test_fixed_point_counts_draws_two_bars_per_cell_type(tmp_path):
    fig = rp.fixed_point_counts(population_table())
    render(fig, tmp_path)
    ax = fig.axes[0]
    assert len(ax.containers) == 2 and all(len(bars) == 2 for bars in ax.containers)  # stable, unstable x GRU, LSTM
    assert [bar.get_height() for bar in ax.containers[0]] == [3.5, 2.0]  # the mean stable count of GRU, LSTM
    assert [t.get_text() for t in ax.get_xticklabels()] == ["GRU", "LSTM"]
    assert sum(len(c.get_offsets()) for c in of_type(ax, PathCollection)) == 6  # two dots per network
    assert len(ax.lines) == 0  # the tasks differ, so no line for "the" number of memories


def test_memory_topologies_draws_networks_by_patterns(tmp_path):
    fig = rp.memory_topologies(population_table())
    render(fig, tmp_path)
    ax = fig.axes[0]
    (image,) = ax.images
    grid = image.get_array()
    assert grid.shape == (3, 6)  # columns: "-", "+", then "--", "-+", "+-", "++"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["-", "+", "--", "-+", "+-", "++"]
    np.testing.assert_array_equal(grid.filled(-1), [[-1, -1, 1, 1, 1, 1], [-1, -1, 1, 1, 0, 1], [1, 1, -1, -1, -1, -1]])
    assert len(ax.get_yticklabels()) == 3 and "3 memories, 3 stable, 2 unstable" in ax.get_yticklabels()[1].get_text()


def test_plots_refuse_a_table_of_the_wrong_study():
    with pytest.raises(ValueError, match="lacks the columns"):
        rp.fixed_point_counts(pd.DataFrame({"gain": [1.0]}))
    with pytest.raises(TypeError, match="pandas DataFrame"):
        rp.exponent_vs_gain([1, 2, 3])
