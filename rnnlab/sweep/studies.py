"""Two ready-made population studies on `rnnlab.sweep`: the edge of chaos, and trained networks.

Both are sweeps like any other, so ``client=None`` runs them on every core of
this machine and ``client=distributed.Client(...)`` on a cluster, and
``store=PATH`` makes them resumable:

```text
    res = rl.sweep.edge_of_chaos(gains=[0.5, 1.0, 1.5, 2.0], units=[100], seeds=range(8))
    res.table          # one row per network: gain, units, seed, exponent, activity, reach

    res = rl.sweep.trained_population(cells=["GRU", "LSTM"], seeds=range(4), tasks=["flip_flop_3bit"])
    res.table          # one row per network: cell, seed, task, ..., n_stable, n_unstable, n_memories
```

**The edge of chaos.**  The random network of Sompolinsky, Crisanti & Sommers
(1988), in the row-vector convention of the ensemble engine:

```text
    h_t = tanh(h_{t-1} R),    R = g J,    J_ij ~ N(0, 1/N)
```

Below g = 1 every trajectory falls to h = 0 (the largest Lyapunov exponent is
negative); above it the network is chaotic (positive).  Network (gain, units,
seed) is drawn so that it depends on nothing else (not on the grid nor on its
chunk), and the same J serves every gain:

```text
    rng = np.random.default_rng([seed, 0])
    J = rng.standard_normal((units, units)) / np.sqrt(units);  h_0 = rng.standard_normal(units)
    v_0 = np.random.default_rng([seed, 1]).standard_normal(units)     # the first tangent vector
```

which is what ``rl.analysis.lyapunov_spectrum(cell, x, initial_state=h_0,
seed=[seed, 1], n_exponents=1)`` draws too, so the two give the same number.
Each Dask task runs a chunk of networks of one size together through
`rnnlab.ensemble.simulate`, not one network per task.

**A population of trained networks.**  Each network (cell, seed, task) is
``RNN(cell(units)) -> Dense(n_bits)`` trained on an n-bit flip-flop with Adam.
Then its fixed points with the input at zero are found from states the
network visits (`rnnlab.analysis.find_fixed_points`), and each stable
point is read out: a stable point whose readout has every |output| > 0.5 is a
*memory*, named by its signs (``"+-+"``).  A network that solved the task
has all 2^n_bits memories, with saddles (unstable points) between them
(Sussillo & Barak 2013).
"""

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import ensemble, optimizers, validation
from ..analysis import find_fixed_points, trajectory
from ..analysis.states import output_rows
from ..cells.registry import cell_class
from ..layers import RNN, Dense
from ..models import Sequential
from ..tasks import flip_flop
from .results import SweepResult
from .run import sweep

#: The tasks of `trained_population`: name -> the number of bits of its flip-flop.
POPULATION_TASKS = {f"flip_flop_{n}bit": n for n in (1, 2, 3, 4)}

#: A stable point is a memory when every output of the readout there is further than this from 0.
MEMORY_LEVEL = 0.5


@dataclass
class StudyResult:
    """What a population study returns.

    Attributes:
        table: pandas DataFrame, one row per network (columns: see the study).
        errors: the `TaskError` of the tasks that raised
            (for `edge_of_chaos` each task is a chunk of networks; they have no rows).
        sweep: the `SweepResult` underneath: one row per Dask task, and its arrays.
    """

    table: pd.DataFrame
    errors: list
    sweep: SweepResult


# -- the edge of chaos ----------------------------------------------------------------------------


def random_network(units, seed):
    """The J (units, units), h_0 (units,) and v_0 (units,) of network ``seed``; see the module docstring."""
    rng = np.random.default_rng([seed, 0])
    J = rng.standard_normal((units, units)) / np.sqrt(units)
    h0 = rng.standard_normal(units)
    v0 = np.random.default_rng([seed, 1]).standard_normal(units)
    return J, h0, v0


def edge_of_chaos_networks(units, gains, seeds, steps=300, discard=100, threshold=1e-3):
    """One task of `edge_of_chaos`: networks (gains[i], seeds[i]), all of ``units``, run as one ensemble.

    Returns a dict of (n,) arrays, n = len(gains):
        exponent: the largest Lyapunov exponent (nats per step), averaged over steps ``discard``..T.
        activity: the mean |h_t| over those steps and the units.
        reach: the gradient reach, the smallest lag l in 0..T-1 at which
            ||dL/dh_{T-l}|| / ||dL/dh_T|| < ``threshold``, for the ensemble's
            loss L = 1/2 |h_T|^2; ``steps`` (T) when it never falls that low.
    """
    gains, seeds = np.asarray(gains, dtype=float), np.asarray(seeds, dtype=int)
    n = len(gains)
    R = np.empty((n, units, units))
    h0 = np.empty((n, units))
    v = np.empty((n, units))
    for i, (gain, seed) in enumerate(zip(gains, seeds)):
        J, h0[i], v[i] = random_network(units, int(seed))
        R[i] = gain * J
    # numba: a chunk of small networks is CPU work, and each Dask worker is one core
    run = ensemble.simulate(ensemble.Ensemble(R), steps=steps, h0=h0, trajectories=True, backend="numba")
    h = run.trajectories  # (n, T, H): h[:, t] is the state after step t + 1

    # Largest exponent (Benettin with one vector): v <- J_t v, J_t = diag(1 - h_t^2) R^T, renormalised each step.
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    log_growth = np.zeros(n)
    for t in range(steps):
        v = (1 - h[:, t] ** 2) * np.einsum("nk,nkj->nj", v, R)  # row form of J_t v: (v R) * tanh'
        growth = np.linalg.norm(v, axis=1)
        if t >= discard:
            log_growth += np.log(growth)
        v /= growth[:, None]
    exponent = log_growth / (steps - discard)
    activity = np.abs(h[:, discard:]).mean(axis=(1, 2))

    # Gradient reach: BPTT of L = 1/2 |h_T|^2 by hand, dL/dh_{t-1} = (dL/dh_t * (1 - h_t^2)) R^T.
    norms = np.empty((n, steps))  # norms[:, t] = ||dL/dh[:, t]||
    g = h[:, -1].copy()
    norms[:, -1] = np.linalg.norm(g, axis=1)
    for t in range(steps - 1, 0, -1):
        g = np.einsum("nj,nkj->nk", g * (1 - h[:, t] ** 2), R)
        norms[:, t - 1] = np.linalg.norm(g, axis=1)
    below = norms[:, ::-1] / norms[:, -1:] < threshold  # (n, T), column l is lag l
    reach = np.where(below.any(axis=1), below.argmax(axis=1), steps)
    return {"exponent": exponent, "activity": activity, "reach": reach}


def edge_of_chaos(gains, units, seeds, steps=300, discard=100, threshold=1e-3, chunk_size=16, client=None,
                  store=None, progress=None):
    """The edge-of-chaos grid gain x units x seed of random tanh networks (module docstring), on `rnnlab.sweep`.

    Args:
        gains, units, seeds: lists of g (> 0), network sizes N and seeds; every
            combination is one network.
        steps: T, the steps each network runs from its random h_0.
        discard: the transient, steps not counted in ``exponent`` and ``activity`` (< T).
        threshold: the gradient ratio that ends the gradient ``reach``.
        chunk_size: how many networks (of one size) one Dask task runs together.
        client, store, progress: as for `rnnlab.sweep`.

    Returns:
        StudyResult whose ``table`` has one row per network, in the order of
        the grid (gain slowest, seed fastest), with the columns gain, units,
        seed, exponent (largest Lyapunov exponent, nats per step), activity
        (mean |h|), reach (steps; ``steps`` when the gradient never fell below
        ``threshold``).  Networks of a chunk that raised have no row.
    """
    gains = [_positive(g, "gains") for g in _values(gains, "gains")]
    units = [validation.count(n, "units") for n in _values(units, "units")]
    seeds = [validation.count(s, "seeds", minimum=0) for s in _values(seeds, "seeds")]
    steps = validation.count(steps, "steps")
    discard = validation.count(discard, "discard", minimum=0)
    if discard >= steps:
        raise ValueError(f"discard must be smaller than steps = {steps}, got {discard}")
    threshold = _positive(threshold, "threshold")
    chunk_size = validation.count(chunk_size, "chunk_size")

    pairs = [(g, s) for g in gains for s in seeds]
    points = [{"units": n, "gains": [g for g, _ in chunk], "seeds": [s for _, s in chunk], "steps": steps,
               "discard": discard, "threshold": threshold}
              for n in units for chunk in _chunks(pairs, chunk_size)]
    res = sweep(edge_of_chaos_networks, points, client=client, store=store, progress=progress)

    found = {}  # (gain, units, seed) -> the network's results
    for row, point in res.table.iterrows():
        values = {name: res.array(row, name) for name in ("exponent", "activity", "reach")}
        for i, (g, s) in enumerate(zip(point["gains"], point["seeds"])):
            found[(g, point["units"], s)] = {name: value[i].item() for name, value in values.items()}
    rows = [{"gain": g, "units": n, "seed": s, **found[(g, n, s)]}
            for g in gains for n in units for s in seeds if (g, n, s) in found]
    table = pd.DataFrame(rows, columns=["gain", "units", "seed", "exponent", "activity", "reach"])
    return StudyResult(table, res.errors, res)


# -- a population of trained networks --------------------------------------------------------------


def memory_patterns(n_bits):
    """The 2^n_bits sign patterns of an n-bit flip-flop's memories, in a fixed order: ``["--", "-+", "+-", "++"]``."""
    return ["".join(signs) for signs in itertools.product("-+", repeat=n_bits)]


def train_and_analyse(cell, seed, task, units=16, steps=600, batch_size=32, time=64, learning_rate=0.01,
                      n_starts=128):
    """One task of `trained_population`: train one network, find its fixed points, read out its memories.

    The model is ``RNN(cell(units, seed=seed)) -> Dense(n_bits, seed=seed + 1000)``, trained for
    ``steps`` steps of Adam (cosine-decayed from ``learning_rate``, gradients
    clipped to norm 1) on fresh flip-flop batches (batch_size, time) seeded
    (seed, step).  The test set, shared by every network, is 128 sequences of
    200 steps (seed 123456); the fixed points are searched from ``n_starts``
    of its states, with the input at zero.

    Returns a dict: the scalars of the table (see `trained_population`)
    and ``stable_readouts``, (n_stable, n_bits): the readout at each stable point.
    """
    n_bits = POPULATION_TASKS[task]
    model = Sequential([RNN(cell_class(cell)(units, seed=seed), return_sequences=True),
                        Dense(n_bits, seed=seed + 1000)], loss="mse",
                       optimizer=optimizers.Adam(learning_rate=optimizers.CosineDecay(learning_rate, steps, alpha=0.05),
                                                 clipnorm=1.0))
    model.fit_generator(lambda step: flip_flop(batch_size, time, n_bits=n_bits, seed=(seed, step)), steps,
                        verbose=False)
    test = flip_flop(128, 200, n_bits=n_bits, seed=123_456)
    rnn_cell, readout = model.layers[0].cell, model.layers[-1]

    fps = find_fixed_points(rnn_cell, trajectory(rnn_cell, test.x), n_starts=n_starts, noise=0.05, seed=seed)
    hidden = fps.points[fps.stable][:, output_rows(rnn_cell)]  # the h part of each stable joint state (LSTM: [h, c])
    readouts = readout(hidden.astype(rnn_cell.dtype)).astype(np.float64)  # (n_stable, n_bits)
    clean = np.all(np.abs(readouts) > MEMORY_LEVEL, axis=1)
    found = {"".join("+" if v > 0 else "-" for v in row) for row in readouts[clean]}
    memories = [pattern for pattern in memory_patterns(n_bits) if pattern in found]
    loss = model.evaluate(test.x, test.y)["loss"]
    return {
        "loss": loss, "baseline": test.baseline, "loss_ratio": loss / test.baseline,
        "n_stable": int(fps.stable.sum()), "n_unstable": int((~fps.stable).sum()),
        "n_memories": len(memories), "n_patterns": 2 ** n_bits,
        "spurious": int(fps.stable.sum()) - len(memories),  # stable points that are not one more memory
        "memories": " ".join(memories),
        "stable_readouts": readouts,
    }


def trained_population(cells, seeds, tasks=("flip_flop_3bit",), units=16, steps=600, batch_size=32, time=64,
                       learning_rate=0.01, n_starts=128, client=None, store=None, progress=None):
    """Train a network for every cell x seed x task and read its fixed-point topology, on `rnnlab.sweep`.

    Args:
        cells: short cell names (``"GRU"``, ``"LSTM"``, ``"SimpleRNN"``, ...; see ``rl.cells.registry``).
        seeds: seeds of the weights and of the training batches.
        tasks: names from `POPULATION_TASKS` (``"flip_flop_1bit"`` .. ``"flip_flop_4bit"``).
        units, steps, batch_size, time, learning_rate, n_starts: the same for every
            network; see `train_and_analyse`.
        client, store, progress: as for `rnnlab.sweep`.  One Dask task trains one network.

    Returns:
        StudyResult whose ``table`` has one row per network (cell slowest,
        task fastest) with the columns cell, seed, task, units, steps,
        batch_size, time, learning_rate, n_starts; loss (test MSE), baseline
        (the task's "always output 0" MSE), loss_ratio (loss / baseline);
        n_stable, n_unstable (fixed points with the input at 0); n_memories
        (stable points that read out as distinct sign patterns), n_patterns
        (2^n_bits), spurious (n_stable - n_memories), memories (the patterns
        found, space-separated, in `memory_patterns` order).
        ``res.sweep.array(row, "stable_readouts")`` is (n_stable, n_bits).
    """
    cells = list(_values(cells, "cells"))
    for name in cells:
        cell_class(name)  # a ValueError naming the known cells
    seeds = [validation.count(s, "seeds", minimum=0) for s in _values(seeds, "seeds")]
    tasks = list(_values(tasks, "tasks"))
    for task in tasks:
        if task not in POPULATION_TASKS:
            raise ValueError(f"unknown task {task!r}; expected one of {sorted(POPULATION_TASKS)}")
    grid = {"cell": cells, "seed": seeds, "task": tasks, "units": [validation.count(units, "units")],
            "steps": [validation.count(steps, "steps")], "batch_size": [validation.count(batch_size, "batch_size")],
            "time": [validation.count(time, "time")], "learning_rate": [_positive(learning_rate, "learning_rate")],
            "n_starts": [validation.count(n_starts, "n_starts")]}
    res = sweep(train_and_analyse, grid, client=client, store=store, progress=progress)
    return StudyResult(res.table, res.errors, res)


# -- helpers ------------------------------------------------------------------------------------------


def _values(values, name):
    """``values`` as a non-empty list (a list, tuple, range or 1-D array), else a TypeError or ValueError."""
    if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple, range, np.ndarray)):
        raise TypeError(f"{name} must be a list of values, got {type(values).__name__}")
    values = [v.item() if isinstance(v, np.generic) else v for v in values]
    if not values:
        raise ValueError(f"{name} is empty; give at least one value")
    if len(set(values)) != len(values):
        raise ValueError(f"{name} has a value twice: {values}")
    return values


def _positive(value, name):
    value = validation.real(value, name)
    if value <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return value


def _chunks(items, size):
    return [items[start:start + size] for start in range(0, len(items), size)]
