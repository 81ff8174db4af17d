"""Task functions for tests/test_sweep.py, in a module of their own so that the Dask workers can import them.

They are plain functions of their parameters, as a user would write them.
``logged`` leaves a trace of every call: an empty file ``start-<x>-<pid>-<id>``
in the folder ``log`` when it starts and ``done-<x>-<pid>-<id>`` when it ends,
so a test can count the calls and see which worker process ran them.
"""

import os
import time
import uuid
from pathlib import Path

import numpy as np


def trajectory(gain, seed):
    """A random 5-unit tanh network run for 20 steps: every kind of result a sweep can store."""
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(5, 5)) * gain / np.sqrt(5)
    h = rng.normal(size=5)
    states = []
    for _ in range(20):
        h = np.tanh(W @ h)
        states.append(h)
    states = np.array(states)  # (20, 5)
    return {
        "mean": float(states.mean()),  # Python float
        "final_norm": np.linalg.norm(h),  # numpy float64
        "steps": len(states),  # int
        "saturated": bool(np.abs(states).max() > 0.9),  # bool
        "label": f"g={gain}",  # str
        "nothing": None,
        "states": states,  # float64 array (20, 5)
        "signs": [int(s) for s in np.sign(h)],  # a list, stored as an int array (5,)
        "eigenvalues": np.linalg.eigvals(W),  # complex array (5,)
    }


def logged(x, log, seconds=0.0):
    """x squared and its powers, after ``seconds`` of sleep; leaves start and done files in ``log``."""
    tag = f"{x}-{os.getpid()}-{uuid.uuid4().hex}"
    Path(log, f"start-{tag}").touch()
    time.sleep(seconds)
    Path(log, f"done-{tag}").touch()
    return {"square": x * x, "powers": np.array([1, x, x * x])}


def fails_at(x, bad):
    """Raises ValueError when x == bad."""
    if x == bad:
        raise ValueError(f"x={x} is bad")
    return {"double": 2 * x}


def bad_result(x, kind):
    """A result that cannot be stored, of the given kind."""
    results = {
        "list": [x],
        "object": {"value": object()},
        "dict": {"value": {"a": x}},
        "ragged": {"value": [[x], [x, x]]},
        "strings": {"value": np.array(["a", "b"])},
        "parameter name": {"x": x},
    }
    return results[kind]


def worker_env(i):
    """The process id and the thread settings of the worker that runs it."""
    names = ["NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"]
    return {"pid": os.getpid(), **{name: os.environ.get(name, "unset") for name in names}}
