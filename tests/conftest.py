"""Shared fixtures: random data and naive step functions bound to a cell's weights."""

import numpy as np
import pytest

import naive
import rnnlab as rl

DTYPES = ["float32", "float64"]
# float32 cells are compared to float64 references; these are the tolerances.
TOLERANCE = {"float32": dict(rtol=2e-5, atol=2e-6), "float64": dict(rtol=1e-12, atol=1e-13)}


def naive_step_for(cell):
    """A one-sample step function computing ``cell``'s equations with naive.py."""
    if isinstance(cell, rl.StackedRNNCells):
        inner = [naive_step_for(c) for c in cell.cells]
        sizes = [len(rl.nest.flatten(c.state_size)) for c in cell.cells]

        def stacked(x, states):
            new, position = [], 0
            for step, count in zip(inner, sizes):
                x, cell_new = step(x, states[position : position + count])
                new.extend(cell_new)
                position += count
            return x, new

        return stacked
    weights = [w.astype(np.float64) for w in cell.get_weights()]
    if isinstance(cell, rl.LSTMCell):
        K, R = weights[:2]
        b = weights[2] if cell.use_bias else None
        return lambda x, s: naive.lstm_step(x, s[0], s[1], K, R, b, cell.activation.name,
                                            cell.recurrent_activation.name)
    if isinstance(cell, rl.GRUCell):
        K, R = weights[:2]
        b = weights[2] if cell.use_bias else None
        return lambda x, s: naive.gru_step(x, s[0], K, R, b, cell.reset_after, cell.activation.name,
                                           cell.recurrent_activation.name)
    if isinstance(cell, rl.SimpleRNNCell):
        K, R = weights[:2]
        b = weights[2] if cell.use_bias else None
        return lambda x, s: naive.simple_rnn_step(x, s[0], K, R, b, cell.activation.name)
    if isinstance(cell, rl.MinimalRNNCell):
        K, R = weights
        return lambda x, s: naive.simple_rnn_step(x, s[0], K, R, None, "linear")
    raise TypeError(f"no naive reference for {type(cell).__name__}")


def make_cell(kind, units, dtype="float64", seed=0, **kwargs):
    """Cells by short name, with non-default weights so biases matter."""
    makers = {
        "simple": lambda: rl.SimpleRNNCell(units, dtype=dtype, seed=seed, bias_initializer="normal", **kwargs),
        "gru": lambda: rl.GRUCell(units, dtype=dtype, seed=seed, bias_initializer="normal", **kwargs),
        "gru_reset_before": lambda: rl.GRUCell(units, reset_after=False, dtype=dtype, seed=seed,
                                     bias_initializer="normal", **kwargs),
        "lstm": lambda: rl.LSTMCell(units, dtype=dtype, seed=seed, bias_initializer="normal", **kwargs),
        "minimal": lambda: rl.MinimalRNNCell(units, dtype=dtype, seed=seed, **kwargs),
        "stacked": lambda: rl.StackedRNNCells([
            rl.LSTMCell(units, dtype=dtype, seed=seed, bias_initializer="normal"),
            rl.GRUCell(units + 1, dtype=dtype, seed=seed + 1, bias_initializer="normal"),
        ]),
    }
    return makers[kind]()


CELL_KINDS = ["simple", "gru", "gru_reset_before", "lstm", "minimal", "stacked"]


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
