"""Shared fixtures: random data and naive step functions bound to a cell's weights."""

import numpy as np
import pytest

import naive
import rnnlab as rl
from rnnlab.cells import registry

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
    if type(cell).__name__ not in naive.REFERENCES:
        raise TypeError(f"no naive reference for {type(cell).__name__}")
    weights = [w.astype(np.float64) for w in cell.get_weights()]
    # activations by name, as naive.ACTIVATIONS knows them
    config = {**cell.get_config(), **{name: getattr(cell, name).name for name in ("activation", "recurrent_activation")
                                      if hasattr(cell, name)}}
    return naive.REFERENCES[type(cell).__name__](config, weights)


def make_cell(kind, units, dtype="float64", seed=0, **kwargs):
    """The example cell of ``kind`` (a key of naive.EXAMPLES, or "stacked"), with non-default weights."""
    if kind == "stacked":
        return rl.StackedRNNCells([make_cell("lstm", units, dtype, seed), make_cell("gru", units + 1, dtype, seed + 1)])
    class_name, arguments = naive.EXAMPLES[kind]
    return getattr(rl, class_name)(units, dtype=dtype, seed=seed, **{**arguments, **kwargs})


#: Every cell kind the tests loop over: each example of naive.py, and a stack of two cells.
CELL_KINDS = list(naive.EXAMPLES) + ["stacked"]


def kinds_on(backend):
    """The kinds whose cell runs on kernel ``backend`` ("numba" or "cuda"), from the cells' declarations."""
    return [kind for kind in CELL_KINDS if backend in registry.declaration_for(make_cell(kind, 2)).backends]


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
