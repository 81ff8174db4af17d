"""Sweeps: call one function at every point of a parameter grid, on every core or on a cluster.

The engine is Dask distributed:

```text
    import rnnlab as rl

    def run(gain, seed):                 # any function of the parameters that returns a dict
        ...
        return {"exponent": lam, "trajectory": h}   # scalars go to res.table, arrays to res.array

    res = rl.sweep(run, {"gain": [0.5, 1.0, 1.5], "seed": [0, 1, 2]}, store="runs/gain")
    res.table                            # pandas DataFrame: gain, seed, exponent; one row per finished point
    res.array(0, "trajectory")           # read from the store when asked for
    res.errors                           # the points whose task raised, with message and traceback
```

``rl.sweep`` is this package, and calling it calls `rnnlab.sweep.run.sweep`.
The modules: `grid` (points and task keys),
`store` (the folder of finished tasks),
`run` (the client's loop and the workers' task),
`results` and `studies` (two ready-made population studies,
``rl.sweep.edge_of_chaos`` and ``rl.sweep.trained_population``).  The guide is ``docs/sweeps.md``.

It needs the optional "sweep" extra: ``pip install 'rnnlab[sweep]'`` (dask,
distributed and pandas).  ``import rnnlab`` does not import it: ``rl.sweep``
is imported on first use.
"""

import sys
import types

try:
    import dask  # noqa: F401
    import distributed  # noqa: F401
    import pandas  # noqa: F401
except ImportError as error:
    raise ImportError(f"rnnlab.sweep needs the optional 'sweep' extra (dask, distributed and pandas): "
                      f"pip install 'rnnlab[sweep]' ({error})") from error

from .results import SweepResult, TaskError
from .run import WORKER_ENV, local_cluster, sweep
from .store import CorruptEntry, Store
from .studies import StudyResult, edge_of_chaos, trained_population

__all__ = ["sweep", "local_cluster", "SweepResult", "TaskError", "Store", "CorruptEntry", "WORKER_ENV",
           "edge_of_chaos", "trained_population", "StudyResult"]


class _CallableModule(types.ModuleType):
    """The type of this package: ``rl.sweep(fn, grid, ...)`` calls `sweep`, and ``rl.sweep.Store`` still works."""

    def __call__(self, fn, grid, client=None, store=None, *, progress=None):
        """`rnnlab.sweep.run.sweep`."""
        return sweep(fn, grid, client=client, store=store, progress=progress)


sys.modules[__name__].__class__ = _CallableModule
