"""``backend="cuda"``: rnnlab's ``numba.cuda`` kernels, split by job.

* :mod:`~rnnlab.backends.cuda.host` -- the backend interface (``unsupported``,
  ``scan``, ``backward``) and the device-level API: weights to the device,
  ``forward_device``, ``backward_device``.
* :mod:`~rnnlab.backends.cuda.device` -- availability, the tunables
  (``CONFIG``, ``options``) and the :class:`~rnnlab.backends.cuda.device.Device`:
  memory, transfers, launches and GEMMs.
* :mod:`~rnnlab.backends.cuda.launch` -- launch geometry: which schedule runs
  a problem, with how many blocks, threads and bytes of shared memory.
* :mod:`~rnnlab.backends.cuda.adapter` -- the base class of the cell adapters
  that each cell room's ``cuda.py`` provides.
* :mod:`~rnnlab.backends.cuda.schedules` -- the generic persistent and tiled
  kernels, built from a cell's per-unit device functions.
* :mod:`~rnnlab.backends.cuda.masking` -- Keras masking as device functions,
  called by every schedule.
* :mod:`~rnnlab.backends.cuda.primitives` -- scalar math, store modes, fill
  and GEMM kernels.

Importing this package, ``host``, ``device`` or ``launch`` does not import
``numba.cuda``; that happens on first real use.
"""
