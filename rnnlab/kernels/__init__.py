"""Old spellings of the kernel modules, kept for code written for rnnlab 0.1.

The modules moved to `rnnlab.backends`: ``rnnlab.kernels.scan`` is now
`rnnlab.backends.numba.custom_scan`; ``jit``, ``fastmath`` and ``blas``
are in `rnnlab.backends.numba`; ``cuda_backend`` is split into
`rnnlab.backends.cuda.device` and `rnnlab.backends.cuda.host`.
Each old module here re-exports the new names; new code imports those.
Nothing here imports numba until one of them is imported.
"""
