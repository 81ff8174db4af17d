"""``backend="cuda"``: rnnlab's ``numba.cuda`` kernels, split by job.

* `host` -- the backend interface (``unsupported``,
  ``scan``, ``backward``) and the device-level API: weights to the device,
  ``forward_device``, ``backward_device``.
* `device` -- availability, the tunables
  (``CONFIG``, ``options``) and the `Device`:
  memory, transfers, launches and GEMMs.
* `launch` -- launch geometry: which schedule runs
  a problem, with how many blocks, threads and bytes of shared memory.
* `adapter` -- the base class of the cell adapters
  that each cell room's ``cuda.py`` provides.
* `schedules` -- the generic persistent and tiled
  kernels, built from a cell's per-unit device functions.
* `masking` -- Keras masking as device functions,
  called by every schedule.
* `primitives` -- scalar math, store modes, fill
  and GEMM kernels.

Importing this package, ``host``, ``device`` or ``launch`` does not import
``numba.cuda``; that happens on first real use.
"""
