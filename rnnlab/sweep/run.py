"""``rl.sweep``: call ``fn(**params)`` at every point of a grid on Dask distributed, and collect the results.

The client (this process) submits one Dask task per missing grid point and
handles each result as it arrives: it writes it to the store at once (when
there is one), then counts it on the progress bar.  The workers only run
`run_task`; they need rnnlab and ``fn``'s module, but no access to the store.
"""

import sys
import traceback
import warnings

import numpy as np
import pandas as pd
from distributed import Client, KilledWorker, LocalCluster, as_completed
from tqdm import tqdm

from ..train import progress_enabled
from . import grid as grids
from .results import SweepResult, TaskError
from .store import CorruptEntry, Store

#: The environment the nannies of `local_cluster` give each worker process: one worker per core already
#: uses every core, so numba's and the BLAS's own thread pools would only oversubscribe them.  (Dask sets the
#: BLAS variables to 1 itself before it spawns a worker; NUMBA_NUM_THREADS it leaves alone.)
WORKER_ENV = {"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def local_cluster(n_workers=None):
    """The cluster that `sweep` starts when it is given no client.

    A ``distributed.LocalCluster`` listening on 127.0.0.1 only (its dashboard
    too, on a free port): ``n_workers``
    worker processes (None: one per core) of one thread each, with
    `WORKER_ENV` in their environment.  Close it when done (or use it in
    a ``with`` block); keep one open to run several sweeps without starting
    processes each time: ``rl.sweep(fn, grid, client=distributed.Client(cluster))``.
    """
    return LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                        dashboard_address="127.0.0.1:0", env=WORKER_ENV)


def sweep(fn, grid, client=None, store=None, *, progress=None):
    """Call ``fn(**params)`` at every point of ``grid`` on Dask distributed, and collect the results.

    Args:
        fn: a function defined with ``def`` that the workers can import (or
            defined in ``__main__``), returning a dict of results.  Scalars
            (numbers, bools, strings, None) go to ``res.table``; arrays (numeric
            numpy arrays, or lists that make one) are kept for ``res.array``.
        grid: a dict of lists, whose product is the grid (the last name varies
            fastest), or a list of dicts, the points themselves.  Values are
            None, bools, numbers, strings or lists of them, so that they can be
            hashed into the task keys.
        client: a ``distributed.Client`` of any scheduler (a LocalCluster, SSH,
            SLURM or PBS through dask-jobqueue, Kubernetes).  None starts
            `local_cluster` for this call and shuts it down at the end.
        store: None keeps the results in memory, so nothing survives a crash.
            A folder path: each finished task is written there at once, and a
            rerun with the same store computes only the tasks that are missing
            (and those whose entry is corrupt, with a warning).
        progress: draw a tqdm progress bar; None: when stdout is a terminal or
            a notebook (`rnnlab.train.progress_enabled`).

    Returns:
        SweepResult: ``res.table`` (pandas DataFrame, one row per finished
        point, in grid order), ``res.errors`` (list of TaskError) and
        ``res.array(row, name)``.

    A task that raises is listed in ``res.errors`` and the sweep goes on; it is
    not stored, so a rerun tries it again.  A result that cannot be stored
    (not a dict, a value that is neither a scalar nor a numeric array, a name
    that is also a parameter) stops the sweep with a TypeError or ValueError:
    that is a bug in ``fn``, not a property of one point.
    """
    name = grids.function_name(fn)
    points = grids.points(grid)
    params = [{p: grids.plain(value, f"grid value {p}={value!r}") for p, value in point.items()} for point in points]
    keys = [grids.key(name, plain) for plain in params]
    first_index = {}
    for i, key in enumerate(keys):
        if key in first_index:
            raise ValueError(f"grid point {points[i]} appears twice (as points {first_index[key]} and {i}); "
                             "every point must be different")
        first_index[key] = i
    if client is not None and not isinstance(client, Client):
        raise TypeError(f"client must be a distributed.Client or None, got {type(client).__name__}")
    if store is not None:
        store = Store(store)

    finished = {} if store is None else _stored(store, keys)  # grid index -> (scalars, array names)
    in_memory = {}  # grid index -> {name: array}, when there is no store
    errors = {}  # grid index -> TaskError

    def keep(i, outcome):
        """Handle the outcome of the task of grid point i (see `run_task`)."""
        if "error" in outcome:
            errors[i] = TaskError(points[i], outcome["error"], outcome["traceback"])
            return
        if store is not None:
            entry = {"fn": name, "params": params[i], "scalars": outcome["scalars"], "arrays": list(outcome["arrays"])}
            store.save(keys[i], entry, outcome["arrays"])
        else:
            in_memory[i] = outcome["arrays"]
        finished[i] = (outcome["scalars"], list(outcome["arrays"]))

    missing = [i for i in range(len(points)) if i not in finished]
    with tqdm(total=len(points), initial=len(finished), unit="task", desc=getattr(fn, "__name__", "sweep"),
              disable=not progress_enabled(progress), file=sys.stdout) as bar:
        if missing and client is None:
            with local_cluster() as cluster, Client(cluster) as own_client:
                _compute(own_client, fn, points, missing, keep, bar)
        elif missing:
            _compute(client, fn, points, missing, keep, bar)

    rows = sorted(finished)
    param_names = list(dict.fromkeys(p for point in points for p in point))
    scalar_names = list(dict.fromkeys(s for i in rows for s in finished[i][0]))
    table = pd.DataFrame([{**points[i], **finished[i][0]} for i in rows], columns=param_names + scalar_names)
    return SweepResult(table, keys=[keys[i] for i in rows], array_names=[finished[i][1] for i in rows],
                       errors=[errors[i] for i in sorted(errors)], store=store,
                       arrays=None if store is not None else [in_memory[i] for i in rows])


def _stored(store, keys):
    """{grid index: (scalars, array names)} of the tasks already in ``store``; corrupt entries are removed."""
    found = {}
    for i, key in enumerate(keys):
        try:
            entry = store.load(key)
        except CorruptEntry as error:
            warnings.warn(f"sweep store entry {store.path / key} is corrupt ({error}); it is recomputed", stacklevel=3)
            store.discard(key)
            continue
        if entry is not None:
            found[i] = (entry["scalars"], entry["arrays"])
    return found


def _compute(client, fn, points, todo, keep, bar):
    """Run the grid points ``todo`` (indices) on ``client``, calling ``keep(i, outcome)`` as each one finishes."""
    futures = client.map(run_task, [fn] * len(todo), [points[i] for i in todo], pure=False)  # one message for all
    waiting = dict(zip(futures, todo))  # future -> grid index, until it is handled
    failed = 0
    try:
        # with_results: the results are fetched in the background, while this loop writes the store
        for future, outcome in as_completed(futures, with_results=True, raise_errors=False):
            i = waiting.pop(future)
            if future.status == "error" and isinstance(outcome[1], KilledWorker):
                # the task took down every worker it ran on (Dask tried it 3 times)
                outcome = {"error": f"KilledWorker: {outcome[1]}", "traceback": ""}
            elif future.status != "finished":
                future.result()  # raises its error here: a result that cannot be stored, a lost scheduler
            future.release()  # the cluster may forget the result now
            keep(i, outcome)
            if "error" in outcome:
                failed += 1
                bar.set_postfix(errors=failed, refresh=False)
            bar.update()
    finally:
        if waiting:  # interrupted (Ctrl-C) or stopped by an error: drop the tasks still queued
            client.cancel(list(waiting))


def run_task(fn, params):
    """Run one grid point on a worker: ``fn(**params)``, split into what the table and the store hold.

    Returns ``{"scalars": {name: value}, "arrays": {name: ndarray}}``, or
    ``{"error": "ValueError: ...", "traceback": text}`` when ``fn`` raised.
    Raises TypeError or ValueError for a result that cannot be stored.
    """
    try:
        result = fn(**params)
    except Exception as error:  # reported in res.errors; the sweep goes on
        return {"error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()}
    return split_result(result, params)


def split_result(result, params):
    """``result`` (fn's dict) split into ``{"scalars": {...}, "arrays": {...}}``; an error if it cannot be stored.

    Scalars become plain Python values (numpy scalars too), which JSON stores
    exactly; lists and tuples become arrays, which must be numeric.
    """
    if not isinstance(result, dict):
        raise TypeError(f"fn must return a dict of scalars and arrays, but fn(**{params}) returned a "
                        f"{type(result).__name__}")
    scalars, arrays = {}, {}
    for name, value in result.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"fn's results must have non-empty string names, but fn(**{params}) returned {name!r}")
        if name in params:
            raise ValueError(f"fn(**{params}) returned {name!r}, which is also a parameter name; rename the result")
        if isinstance(value, np.generic):
            value = value.item()
        array = numeric_array(value)
        if value is None or isinstance(value, (bool, int, float, str)):
            scalars[name] = value
        elif array is not None:
            arrays[name] = array
        else:
            raise TypeError(f"fn(**{params}) returned {name!r} = {type(value).__name__}, which cannot be stored: "
                            "expected a number, bool, string or None (for the table) or a numeric array")
    return {"scalars": scalars, "arrays": arrays}


def numeric_array(value):
    """``value`` (an array, list or tuple) as a numeric numpy array; None if it is not one."""
    if not isinstance(value, (np.ndarray, list, tuple)):
        return None
    try:
        array = np.asarray(value)
    except ValueError:  # a ragged list
        return None
    return array if array.dtype.kind in "biufc" else None  # bool, int, uint, float, complex: no pickle needed
