"""The one place that decides how rnnlab's CPU kernels are compiled.

Every ``@njit`` kernel in rnnlab is declared with `jit`:

```text
    from rnnlab.backends.numba.jit import jit

    @jit
    def lstm_forward(...): ...

    @jit(parallel=True)
    def something_threaded(...): ...
```

The options, and why:

* ``cache=True``: compiled machine code is written next to the source (or to
  ``NUMBA_CACHE_DIR``) and reloaded by later processes.  An LSTM
  forward+backward pair costs about 5 s to compile and 0.25 s to load.
  Unlike plain numba, the cache is also invalidated when ``jit.py``,
  ``fastmath.py`` or ``blas.py`` in ``rnnlab/backends/numba/`` changes, or any file
  named in ``depends=``.  Those files' helpers are inlined into the cached
  code (see `_KernelCache`).  A module of shared CPU helpers, such as
  the custom-cell scan, belongs in ``depends=`` of the kernels that call it.
* ``nogil=True``: kernels release the GIL, so notebooks can run them in threads.
* ``error_model="numpy"``: a float division by zero gives inf/nan as in NumPy
  instead of a ``ZeroDivisionError``; the check it removes also blocks SIMD.
* ``fastmath=FASTMATH``: see below.
* Compilation is lazy.  Nothing here passes a signature, so nothing compiles
  until a kernel is first called; importing a module that defines kernels only
  creates dispatchers.

``FASTMATH`` is ``{"contract", "reassoc", "arcp"}``, chosen from measurements
(``benchmarks/bench_primitives.py``):

* ``contract`` fuses ``a*b + c`` into one FMA.  That is faster and more
  accurate.
* ``reassoc`` lets LLVM reorder sums.  Without it, a reduction loop such as
  ``db[j] += dz[b, j]`` over the batch, or a dot product, cannot be
  vectorized.  A float32 dot product loop ran 7-10x faster with it.  The
  fused LSTM gate loop changed by 1.0-1.3x, which is within this machine's
  noise.
* ``arcp`` lets ``x / d`` become ``x * (1/d)`` when ``d`` is loop-invariant.
* ``nnan`` and ``ninf`` are left out on purpose.  They would let LLVM assume
  that no NaN or inf exists, so NaNs could silently vanish (``x != x`` folds
  to ``False``) and inf arithmetic would be undefined.  ``nsz`` and ``afn``
  are left out too.  They buy nothing measurable here, and ``afn`` would allow
  approximate ``sqrt``/``exp`` replacements.

Callees keep their own flags.  `rnnlab.backends.numba.fastmath` compiles its
``tanh``/``sigmoid`` with ``contract`` only (no reassociation), so that their
range reduction stays exact inside a kernel compiled with ``FASTMATH``.

Importing this module imports numba (about 0.2 s).  ``rnnlab`` and
``rnnlab.backends.numba`` do not import it, so only modules that define kernels pay
that cost, and they are loaded when a numba backend is first used.
"""

import os

import numba
from numba.core.caching import FunctionCache

__all__ = ["FASTMATH", "JIT_OPTIONS", "SCALAR_OPTIONS", "BUILDING_BLOCKS", "jit", "info"]

#: LLVM fast-math flags for kernels (no ``nnan``/``ninf``: NaNs must propagate).
FASTMATH = frozenset({"contract", "reassoc", "arcp"})

#: Options given to ``numba.njit`` by `jit`.
JIT_OPTIONS = dict(cache=True, nogil=True, error_model="numpy", fastmath=set(FASTMATH))

#: Options for small numeric helpers (``overload``/inlined scalar functions)
#: whose arithmetic must not be reassociated: FMA contraction only.
SCALAR_OPTIONS = dict(nogil=True, error_model="numpy", fastmath={"contract"})


_KERNELS_DIR = os.path.dirname(os.path.abspath(__file__))


def _file_stamps(paths):
    stamps = []
    for path in sorted(set(paths)):
        try:
            st = os.stat(path)
            stamps.append((os.path.basename(path), st.st_mtime, st.st_size))
        except OSError:
            stamps.append((os.path.basename(path), None, None))
    return tuple(stamps)


#: Files every kernel may inline code from: their edits invalidate every cached kernel.
BUILDING_BLOCKS = ("jit.py", "fastmath.py", "blas.py")


def _dependency_files(depends):
    """The files whose edits must invalidate a kernel's cache: BUILDING_BLOCKS plus ``depends``."""
    files = [os.path.join(_KERNELS_DIR, name) for name in BUILDING_BLOCKS]
    for item in depends:
        path = getattr(item, "__file__", item)  # a module or a path
        files.append(os.path.abspath(os.fspath(path)))
    return files


class _KernelCache(FunctionCache):
    """numba's on-disk cache, also invalidated when a file the kernel depends on changes.

    numba checks only the stamp (mtime, size) of the file that defines the
    function.  But a kernel's machine code also contains the inlined
    ``fastmath.tanh``, ``blas.gemm`` and other helpers from other files.
    Without this class, editing those files would leave every cached kernel
    stale.  The stamps of `BUILDING_BLOCKS` and of the ``depends=``
    files are added to numba's own stamp.
    """

    def __init__(self, py_func, depends=()):
        super().__init__(py_func)
        cache_file = getattr(self, "_cache_file", None)
        if cache_file is not None and hasattr(cache_file, "_source_stamp"):  # numba internals; else plain
            cache_file._source_stamp = (cache_file._source_stamp, _file_stamps(_dependency_files(depends)))


def jit(fn=None, *, parallel=False, depends=(), **overrides):
    """``numba.njit`` with rnnlab's options; use as ``@jit`` or ``@jit(parallel=True)``.

    ``overrides`` replace single entries of `JIT_OPTIONS` (for example
    ``fastmath={"contract"}`` or ``cache=False``).  No signature is accepted,
    so compilation always happens at the first call and never at import.

    ``depends`` lists modules or paths whose code the kernel inlines, besides
    its own file and `BUILDING_BLOCKS`, which are always checked.  When
    one of them changes, the cached machine code is recompiled.
    """
    options = dict(JIT_OPTIONS)
    if "fastmath" in overrides and overrides["fastmath"] not in (True, False):
        overrides["fastmath"] = set(overrides["fastmath"])
    options.update(overrides)
    if parallel:
        options["parallel"] = True
    cache = options.pop("cache")
    depends = tuple(depends)

    def decorate(function):
        if not callable(function):
            raise TypeError(f"@jit decorates a function, got {function!r}")
        dispatcher = numba.njit(**options)(function)
        if cache:
            dispatcher._cache = _KernelCache(dispatcher.py_func, depends)
        return dispatcher

    if fn is None:
        return decorate
    return decorate(fn)


def info():
    """Facts about the numba installation that explain kernel speed (for ``rnnlab info``)."""
    from numba.core import config

    try:
        from numba.np.ufunc import parallel as _parallel

        _parallel._launch_threads()
        threading_layer = numba.threading_layer()
    except Exception as error:  # no threading layer can be loaded
        threading_layer = f"unavailable ({error})"
    return {
        "numba": numba.__version__,
        "llvmlite": __import__("llvmlite").__version__,
        "threading_layer": threading_layer,
        "num_threads": numba.config.NUMBA_NUM_THREADS,
        "svml": bool(config.USING_SVML),
        "cache_dir": config.CACHE_DIR or "__pycache__ next to each kernel's source (NUMBA_CACHE_DIR moves it)",
        "fastmath": sorted(FASTMATH),
    }
