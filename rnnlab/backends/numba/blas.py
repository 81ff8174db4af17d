"""BLAS gemm for ``@njit`` code: ``C = alpha * op(A) @ op(B) + beta * C`` in place.

```text
    from rnnlab.backends.numba.blas import gemm

    @jit
    def step(...):
        gemm(False, False, 1.0, h, R, 1.0, z)   # z += h @ R, no allocation
        gemm(True, False, 1.0, x, dz, 1.0, dW)  # dW += x.T @ dz
        gemm(False, True, 1.0, dz, R, 0.0, dh)  # dh = dz @ R.T
```

``gemm(trans_a, trans_b, alpha, A, B, beta, C)``:

* ``op(X)`` is ``X.T`` when the flag is true.  ``op(A)`` is (M, K),
  ``op(B)`` is (K, N) and ``C`` is (M, N).
* ``A``, ``B`` and ``C`` are 2-D arrays, all float32 (sgemm) or all float64
  (dgemm).  ``alpha`` and ``beta`` are any real numbers and are cast to that
  dtype.
* Each matrix may be C-contiguous, F-contiguous or a view with one unit stride,
  such as ``Z[:, :H]`` or ``X.T``.  Nothing is copied.  A matrix with no unit
  stride raises ``ValueError``, and so do shapes that do not match.
* ``C`` must not share memory with ``A`` or ``B`` (BLAS forbids it).  With
  ``beta == 0``, ``C``'s old contents are ignored, NaNs included.
* It returns nothing and allocates nothing, so it is safe in a time loop.
  ``A @ B`` inside ``@njit`` allocates a new array on every call.
* Callable from Python too (it is itself a cached ``@jit``).

How BLAS is reached: ``scipy.linalg.cython_blas`` exports Fortran ``sgemm``
and ``dgemm``.  They take every argument by pointer and use column-major
storage.  Row-major ``C = op(A) op(B)`` is column-major
``C.T = op(B).T op(A).T``, so B goes first and the dimensions swap.  The
arguments are written to stack slots (``alloca``).  When ``M == 1`` or
``N == 1`` the call goes to ``?gemv`` instead, as in numba's own ``np.dot``.
scipy's OpenBLAS 0.3.30 ``sgemm`` with one row was 4-5x slower than
``sgemv`` at H=512.  `blas_threads` reads or sets the thread count of
that OpenBLAS.

Why not a ctypes function pointer: numba embeds the raw address of a
ctypes/cffi function in the machine code and then refuses to cache the caller
("uses dynamic globals").  Every kernel that calls gemm would then recompile
in every process.  Instead, this module registers the addresses with
LLVM's symbol table under fixed names (``llvmlite.binding.add_symbol``), and
the call sites name the symbol.  The cached object code holds only the name,
which the JIT linker resolves when a later process loads it.  This module must
therefore be imported before such a kernel is loaded from the cache.  It is,
because any module that uses ``gemm`` imports it.
"""

import contextlib
import ctypes
import glob
import os
import threading

import llvmlite.binding as llvm
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.errors import TypingError
from numba.extending import get_cython_function_address, intrinsic

from .jit import jit

__all__ = ["gemm", "blas_threads", "one_blas_thread", "SYMBOLS"]

#: (routine, numba dtype) -> (LLVM symbol name, scipy.linalg.cython_blas function name)
SYMBOLS = {
    ("gemm", types.float32): ("rnnlab_cython_blas_sgemm", "sgemm"),
    ("gemm", types.float64): ("rnnlab_cython_blas_dgemm", "dgemm"),
    ("gemv", types.float32): ("rnnlab_cython_blas_sgemv", "sgemv"),
    ("gemv", types.float64): ("rnnlab_cython_blas_dgemv", "dgemv"),
}

for _symbol, _name in SYMBOLS.values():
    llvm.add_symbol(_symbol, get_cython_function_address("scipy.linalg.cython_blas", _name))


def _typecheck(routine, arrays):
    """The common dtype of ``arrays`` (numba types), or a TypingError that says what is wrong."""
    if not all(isinstance(a, types.Array) for a in arrays):
        raise TypingError(f"{routine}: expected arrays, got {arrays}")
    dtype = arrays[-1].dtype
    if (routine, dtype) not in SYMBOLS or any(a.dtype != dtype for a in arrays):
        raise TypingError(f"{routine}: all arrays must be float32 or all float64, got "
                          f"{[str(a.dtype) for a in arrays]}")
    return dtype


def _emit_blas_call(context, builder, sig, args, routine, dtype, kinds):
    """Call Fortran BLAS ``routine`` with every argument passed by pointer, as Fortran does.

    ``kinds`` has one letter per argument: ``t`` a bool turned into the
    character 'T' or 'N', ``i`` an integer (BLAS int32), ``r`` a real scalar
    of ``dtype``, ``a`` an array whose data pointer is passed.  Scalars go to
    stack slots in the entry block, so calls inside loops do not grow the stack.
    """
    char, int32 = ir.IntType(8), ir.IntType(32)
    real = context.get_value_type(dtype)
    pointer_types = {"t": char.as_pointer(), "i": int32.as_pointer(), "r": real.as_pointer(),
                     "a": real.as_pointer()}
    fnty = ir.FunctionType(ir.VoidType(), [pointer_types[kind] for kind in kinds])
    function = cgutils.get_or_insert_function(builder.module, fnty, SYMBOLS[routine, dtype][0])

    def slot(llty, value):
        pointer = cgutils.alloca_once(builder, llty)
        builder.store(value, pointer)
        return pointer

    values = []
    for kind, value, ty in zip(kinds, args, sig.args):
        if kind == "t":
            flag = context.cast(builder, value, ty, types.boolean)
            values.append(slot(char, builder.select(flag, char(ord("T")), char(ord("N")))))
        elif kind == "i":
            values.append(slot(int32, context.cast(builder, value, ty, types.int32)))
        elif kind == "r":
            values.append(slot(real, context.cast(builder, value, ty, dtype)))
        else:
            array = context.make_array(ty)(context, builder, value)
            values.append(builder.bitcast(array.data, real.as_pointer()))
    builder.call(function, values)
    return context.get_dummy_value()


@intrinsic
def _fortran_gemm(typingctx, trans_x, trans_y, m, n, k, alpha, X, ldx, Y, ldy, beta, C, ldc):
    """Fortran ``?gemm``, column-major: C (m, n) = alpha op(X) (m, k) op(Y) (k, n) + beta C."""
    dtype = _typecheck("gemm", (X, Y, C))
    signature = types.void(trans_x, trans_y, m, n, k, alpha, X, ldx, Y, ldy, beta, C, ldc)

    def codegen(context, builder, sig, args):
        return _emit_blas_call(context, builder, sig, args, "gemm", dtype, "ttiiiraiairai")

    return signature, codegen


@intrinsic
def _fortran_gemv(typingctx, trans, m, n, alpha, X, ldx, x, incx, beta, y, incy):
    """Fortran ``?gemv``, column-major X (m, n): y = alpha op(X) x + beta y, strided vectors.

    ``x`` and ``y`` are arrays whose data pointers start the vectors; their
    elements are ``incx``/``incy`` apart.
    """
    dtype = _typecheck("gemv", (X, x, y))
    signature = types.void(trans, m, n, alpha, X, ldx, x, incx, beta, y, incy)

    def codegen(context, builder, sig, args):
        return _emit_blas_call(context, builder, sig, args, "gemv", dtype, "tiiraiairai")

    return signature, codegen


@jit
def _row_major(X):
    """(transposed, ld): how BLAS can read ``X`` as a row-major matrix with leading dimension ld.

    ``transposed`` means that ``X`` is column-major.  Its memory is then the
    row-major matrix ``X.T``.
    """
    rows, cols = X.shape
    item = X.itemsize
    s0, s1 = X.strides
    if (cols <= 1 or s1 == item) and (rows <= 1 or (s0 % item == 0 and s0 >= cols * item)):
        ld = s0 // item if rows > 1 else cols
        return False, max(ld, cols, 1)
    if (rows <= 1 or s0 == item) and (cols <= 1 or (s1 % item == 0 and s1 >= rows * item)):
        ld = s1 // item if cols > 1 else rows
        return True, max(ld, rows, 1)
    raise ValueError("gemm: every matrix needs a unit stride along its rows or its columns "
                     "(C- or F-ordered, or a slice of one); copy it first")


@jit
def _gemm_row_major_c(trans_a, trans_b, M, N, K, alpha, A, B, beta, C, ldc):
    """C (M, N), row-major with leading dimension ldc, = alpha op(A) op(B) + beta C."""
    a_t, lda = _row_major(A)
    b_t, ldb = _row_major(B)
    ta, tb = trans_a != a_t, trans_b != b_t  # op() of the row-major matrices A', B' BLAS sees
    if M == 1:
        # One row: c (N) = op(B').T a.  Row-major B' is column-major B'.T, so
        # op(B').T is B'.T ('N') when not tb, and B' ('T') when tb.  Like
        # numba's np.dot, use gemv: OpenBLAS's gemm is far slower here.
        inc_a = lda if ta else 1  # op(A')[0, :]
        if tb:
            _fortran_gemv(True, K, N, alpha, B, ldb, A, inc_a, beta, C, 1)
        else:
            _fortran_gemv(False, N, K, alpha, B, ldb, A, inc_a, beta, C, 1)
    elif N == 1:
        # One column: c (M) = op(A') b, with b = op(B')[:, 0] and c = C[:, 0].
        inc_b = 1 if tb else ldb
        if ta:
            _fortran_gemv(False, M, K, alpha, A, lda, B, inc_b, beta, C, ldc)
        else:
            _fortran_gemv(True, K, M, alpha, A, lda, B, inc_b, beta, C, ldc)
    else:
        # Row-major C = op(A') op(B') is column-major C.T = op(B').T op(A').T: B' goes first.
        _fortran_gemm(tb, ta, N, M, K, alpha, B, ldb, A, lda, beta, C, ldc)


#: Products of at most this many multiply-adds (M N K) run as plain loops: below it,
#: calling BLAS (argument checks and dispatch, about 0.1 us) costs more than the
#: arithmetic.  An RNN step with a handful of units is such a product.
SMALL_PRODUCT = 128

#: A single row (M = 1, the step of a batch of one) runs as plain loops up to
#: this many multiply-adds (16 LSTM units): there BLAS's gemv costs up to 0.1 us
#: more per call.  Beyond it BLAS is faster.
SMALL_ROW_PRODUCT = 1024


@jit
def _small_gemm(trans_a, trans_b, alpha, A, B, beta, C):
    """C = alpha op(A) op(B) + beta C as plain loops, for small matrices.

    The innermost loop runs along rows of B and C (or, with trans_b, along
    rows of op(A) and B: dot products), so it reads memory in order and vectorizes.
    """
    M, N = C.shape
    K = A.shape[0] if trans_a else A.shape[1]
    zero, a_scale, c_scale = C.dtype.type(0), C.dtype.type(alpha), C.dtype.type(beta)
    for i in range(M):
        c = C[i]
        for j in range(N):
            c[j] = zero if beta == 0 else c_scale * c[j]
        if trans_b:  # C[i, j] += alpha * dot(op(A)[i, :], B[j, :])
            for j in range(N):
                b = B[j]
                total = zero
                for k in range(K):
                    total += (A[k, i] if trans_a else A[i, k]) * b[k]
                c[j] += a_scale * total
        else:  # C[i, :] += alpha * op(A)[i, k] * B[k, :]
            for k in range(K):
                a = a_scale * (A[k, i] if trans_a else A[i, k])
                b = B[k]
                for j in range(N):
                    c[j] += a * b[j]


@jit
def gemm(trans_a, trans_b, alpha, A, B, beta, C):
    """C = alpha * op(A) @ op(B) + beta * C in place; op(X) = X.T if its flag is true.

    A, B, C: 2-D float32 or float64 arrays of one dtype.  op(A) is (M, K),
    op(B) is (K, N) and C is (M, N).  Allocates nothing and returns None.  See
    the module docstring.
    """
    if trans_a:
        M, K = A.shape[1], A.shape[0]
    else:
        M, K = A.shape[0], A.shape[1]
    if trans_b:
        K_b, N = B.shape[1], B.shape[0]
    else:
        K_b, N = B.shape[0], B.shape[1]
    if K_b != K or C.shape[0] != M or C.shape[1] != N:
        raise ValueError("gemm: shapes do not match: op(A) must be (M, K), op(B) (K, N) and C (M, N)")
    if M == 0 or N == 0:
        return
    if K == 0:  # an empty sum: C = beta C (gemv would return without touching C)
        for i in range(M):
            for j in range(N):
                C[i, j] = 0 if beta == 0 else beta * C[i, j]
        return
    c_t, ldc = _row_major(C)  # (also checks that C has a unit stride, as A and B are below)
    if M * N * K <= SMALL_PRODUCT or (M == 1 and N * K <= SMALL_ROW_PRODUCT):
        _row_major(A)
        _row_major(B)
        _small_gemm(trans_a, trans_b, alpha, A, B, beta, C)
        return
    if c_t:  # column-major C: its memory is row-major C.T = op(B).T op(A).T
        _gemm_row_major_c(not trans_b, not trans_a, N, M, K, alpha, B, A, beta, C, ldc)
    else:
        _gemm_row_major_c(trans_a, trans_b, M, N, K, alpha, A, B, beta, C, ldc)


_OPENBLAS = []


def _openblas():
    """scipy's bundled OpenBLAS (the library gemm calls) through ctypes, or None."""
    if not _OPENBLAS:
        import scipy

        found = None
        root = os.path.dirname(os.path.dirname(os.path.abspath(scipy.__file__)))
        for path in sorted(glob.glob(os.path.join(root, "scipy.libs", "*openblas*"))):
            try:
                library = ctypes.CDLL(path)  # already loaded by cython_blas: same handle
                getter, setter = library.scipy_openblas_get_num_threads, library.scipy_openblas_set_num_threads
            except (OSError, AttributeError):
                continue
            getter.restype, setter.argtypes = ctypes.c_int, [ctypes.c_int]
            found = (getter, setter)
            break
        _OPENBLAS.append(found)
    return _OPENBLAS[0]


def blas_threads(n=None):
    """The number of threads of the BLAS that `gemm` uses; set it to ``n`` if given.

    Returns the previous count, or None when it cannot be controlled: a scipy
    that does not bundle scipy-openblas.  This is scipy's OpenBLAS, which is
    not NumPy's, so ``np.dot`` in Python is not affected.  On a loaded 2-core
    machine, the small per-step GEMMs of an RNN can stall for milliseconds
    when BLAS runs two threads.  Measure both settings.
    """
    handles = _openblas()
    if handles is None:
        return None
    getter, setter = handles
    previous = getter()
    if n is not None:
        if int(n) < 1:
            raise ValueError(f"blas_threads needs n >= 1, got {n}")
        setter(int(n))
    return previous


class _Setting:
    """Who is using the process-wide BLAS thread count, and how (see `one_blas_thread`)."""

    changed = threading.Condition()
    running = {True: 0, False: 0}  # calls running with one BLAS thread (True) / the process's own count
    waiting = {True: 0, False: 0}
    saved = None  # the process's own count, while one-thread calls run
    held = threading.local()  # .mode: the mode this thread already holds (a nested call keeps it)


@contextlib.contextmanager
def one_blas_thread(one=True):
    """Run the body with BLAS at one thread (``one=True``) or at the process's own count.

    The count is one setting for the whole process, so threads must agree on
    it: calls of one mode run together, and a call of the other mode waits
    until they are done (and, once it waits, holds back new calls of the
    running mode, so neither starves).  The first one-thread call saves the
    count and the last one restores it.  So a result never depends on what
    other threads run, and the process is left with the count it had.
    """
    held = getattr(_Setting.held, "mode", None)
    if held is not None:  # nested in a call of this thread: it already holds a mode
        yield
        return
    other = not one
    with _Setting.changed:
        _Setting.waiting[one] += 1
        _Setting.changed.wait_for(lambda: _Setting.running[other] == 0
                                  and not (_Setting.waiting[other] and _Setting.running[one]))
        _Setting.waiting[one] -= 1
        if one and _Setting.running[True] == 0:
            _Setting.saved = blas_threads(1)
        _Setting.running[one] += 1
    _Setting.held.mode = one
    try:
        yield
    finally:
        _Setting.held.mode = None
        with _Setting.changed:
            _Setting.running[one] -= 1
            if one and _Setting.running[True] == 0 and _Setting.saved is not None:
                blas_threads(_Setting.saved)
            _Setting.changed.notify_all()
