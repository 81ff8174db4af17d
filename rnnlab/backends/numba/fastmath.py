"""Scalar ``tanh`` and ``sigmoid`` that vectorize inside ``@njit`` loops.

The llvmlite wheels ship no SVML, so ``math.tanh``/``math.exp`` stay scalar
libm calls and an elementwise loop that uses them cannot use SIMD.  The
functions here use only ``+ - * /``, ``floor``, ``copysign``, compares and
an exponent bit-cast.  LLVM vectorizes a loop such as:

```text
    @jit
    def gates(z, out):
        for i in range(z.size):
            out[i] = tanh(z[i])          # rnnlab.backends.numba.fastmath.tanh
```

(``benchmarks/bench_primitives.py`` checks the assembly for packed
instructions and times it against ``np.tanh`` and ``math.tanh``.)

The math, written once and specialised per dtype (float32 math stays float32):

* ``exp(y) = 2**k * (1 + expm1(r))`` with ``k = round(y / ln 2)`` and
  ``r = y - k ln 2`` in ``[-ln2/2, ln2/2]``.  The subtraction is Cody-Waite:
  ln 2 is split into ``LN2_HI + LN2_LO``, where ``LN2_HI`` has enough trailing
  zero bits that ``k * LN2_HI`` is exact.  ``expm1(r)`` is its Taylor series
  ``r + r**2/2! + ... + r**N/N!``, with N = 7 for float32 and N = 13 for
  float64.  The first omitted term is below 1/4 ulp.  ``2**k`` is built
  directly from exponent bits.
* ``tanh(x) = sign(x) * e / (e + 2)`` with ``e = expm1(2|x|)``.  This keeps
  full relative accuracy for tiny ``x`` (``tanh(x) -> x``, subnormals
  included).  ``|x|`` is clamped where ``tanh`` rounds to 1: 10 for float32,
  20 for float64.
* ``sigmoid(x) = 1 / (1 + E)`` for ``x >= 0`` and ``E / (1 + E)`` for
  ``x < 0``, with ``E = exp(-|x|)``.  Unlike ``0.5 * tanh(0.5 x) + 0.5``, this
  keeps relative accuracy in the left tail (``sigmoid(-30)`` is about 9e-14,
  not 0), down to the subnormals.

Measured accuracy against the exact value (``tests/test_kernels_fastmath.py``):
float32 at most 2.42 ulp over every 7th float32 bit pattern (NumPy's own
float32 ``np.tanh`` reaches 1.3 ulp).  float64 at most 2.46 ulp, relative
error below 3.3e-16, against a long-double reference.  The tests allow 3 ulp.  ``tanh(±inf) = ±1``, ``sigmoid(-inf) = 0``,
``sigmoid(+inf) = 1``, ``tanh(-0.0) = -0.0``, ``sigmoid(±0) = 0.5``, and NaN
in gives NaN out.

API:

* ``tanh(x)``, ``sigmoid(x)``: scalar functions for ``@njit`` code; float32
  in, float32 out; float64 in, float64 out.  Called from plain Python they
  evaluate the same approximation through a compiled array loop.
* ``tanh_grad(y) = 1 - y*y`` and ``sigmoid_grad(s) = s * (1 - s)``: the
  derivatives written in terms of the activation's *output*, with constants
  of the input's dtype (a bare ``1 - y*y`` on a float32 ``y`` would promote
  to float64 inside numba).
* ``tanh_into(x, out)``, ``sigmoid_into(x, out)``: compiled elementwise loops
  over C-contiguous float arrays of any shape.  ``tanh_array(x)`` and
  ``sigmoid_array(x)`` are the allocating Python conveniences.

The scalar functions are compiled with ``fastmath={"contract"}`` only
(`rnnlab.backends.numba.jit.SCALAR_OPTIONS`), whatever flags the calling
kernel uses.  A reassociation could undo the exact range reduction.
"""

from fractions import Fraction
from math import factorial

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core.errors import TypingError
from numba.extending import intrinsic, overload

from .jit import SCALAR_OPTIONS, jit

__all__ = [
    "tanh", "sigmoid", "tanh_grad", "sigmoid_grad",
    "tanh_into", "sigmoid_into", "tanh_array", "sigmoid_array",
]

# ln 2 to 46 digits, enough to split it exactly for float64.
_LN2 = Fraction("0.6931471805599453094172321214581765680755001343602553")


class _Constants:
    """The per-dtype constants of the approximations, as NumPy scalars of that dtype.

    Numba freezes closure variables as typed constants, so a float32 constant
    keeps float32 arithmetic in float32.
    """

    def __init__(self, dtype, taylor_degree, k_bits, tanh_clamp, sigmoid_clamp):
        f = np.dtype(dtype).type
        significand = np.finfo(dtype).nmant + 1  # 24 or 53 bits
        keep = significand - k_bits  # k * LN2_HI is exact for |k| < 2**k_bits
        hi = Fraction(round(_LN2 * 2**keep), 2**keep)
        self.ZERO, self.HALF, self.ONE, self.TWO = f(0), f(0.5), f(1), f(2)
        self.LOG2E = f(float(1 / _LN2))
        self.LN2_HI, self.LN2_LO = f(float(hi)), f(float(_LN2 - hi))
        # expm1(r) = r + r*r * (1/2! + r/3! + ... + r**(N-2)/N!), highest first.
        self.EXPM1_TAIL = tuple(f(float(Fraction(1, factorial(n)))) for n in range(taylor_degree, 1, -1))
        self.TANH_CLAMP = f(tanh_clamp)  # tanh(x) rounds to 1 beyond it
        self.SIGMOID_CLAMP = f(sigmoid_clamp)  # exp(-x) rounds to 0 beyond it


# float32: |k| <= 150 (exp down to 2**-150); float64: |k| <= 1076.
_F32 = _Constants(np.float32, taylor_degree=7, k_bits=8, tanh_clamp=10.0, sigmoid_clamp=104.0)
_F64 = _Constants(np.float64, taylor_degree=13, k_bits=11, tanh_clamp=20.0, sigmoid_clamp=746.0)


@intrinsic
def _pow2(typingctx, kf):
    """``2.0 ** kf`` for an integral float ``kf`` in the normal exponent range, from bits.

    float32: kf in [-126, 127]; float64: kf in [-1022, 1023].  It converts to
    an integer, adds the exponent bias, shifts it into place and bit-casts.
    This vectorizes; ``math.ldexp`` does not.
    """
    if kf == types.float32:
        int_type, mantissa_bits, bias = ir.IntType(32), 23, 127
    elif kf == types.float64:
        int_type, mantissa_bits, bias = ir.IntType(64), 52, 1023
    else:
        return None

    def codegen(context, builder, signature, args):
        k = builder.fptosi(args[0], int_type)
        bits = builder.shl(builder.add(k, int_type(bias)), int_type(mantissa_bits))
        return builder.bitcast(bits, args[0].type)

    return kf(kf), codegen


def _make_functions(c):
    """The scalar implementations for one dtype's constants ``c``."""
    ZERO, HALF, ONE, TWO = c.ZERO, c.HALF, c.ONE, c.TWO
    LOG2E, LN2_HI, LN2_LO = c.LOG2E, c.LN2_HI, c.LN2_LO
    TAIL = c.EXPM1_TAIL
    TANH_CLAMP, SIGMOID_CLAMP = c.TANH_CLAMP, c.SIGMOID_CLAMP

    @njit(**SCALAR_OPTIONS)
    def reduce(y):
        """(k, expm1(r)) with exp(y) = 2**k * (1 + expm1(r)), for finite y."""
        k = np.floor(y * LOG2E + HALF)
        r = (y - k * LN2_HI) - k * LN2_LO  # exact-ish: Cody-Waite
        q = TAIL[0]
        for i in range(1, len(TAIL)):  # Horner; unrolled by LLVM
            q = q * r + TAIL[i]
        return k, r + r * r * q

    def tanh_impl(x):
        a = abs(x)
        if not (a < TANH_CLAMP):  # also sends NaN to the clamp; restored below
            a = TANH_CLAMP
        k, p = reduce(a + a)
        scale = _pow2(k)
        e = scale * p + (scale - ONE)  # expm1(2|x|) >= 0
        t = np.copysign(e / (e + TWO), x)
        return x if x != x else t

    def sigmoid_impl(x):
        a = abs(x)
        if not (a < SIGMOID_CLAMP):
            a = SIGMOID_CLAMP
        k, p = reduce(-a)
        k1 = np.floor(k * HALF)  # two steps keep each 2**k normal, down to the subnormal results
        e = ((ONE + p) * _pow2(k1)) * _pow2(k - k1)  # exp(-|x|) in (0, 1]
        numerator = ONE if x >= ZERO else e
        s = numerator / (ONE + e)
        return x if x != x else s

    def tanh_grad_impl(y):
        return ONE - y * y

    def sigmoid_grad_impl(s):
        return s * (ONE - s)

    return dict(tanh=tanh_impl, sigmoid=sigmoid_impl, tanh_grad=tanh_grad_impl, sigmoid_grad=sigmoid_grad_impl)


_IMPLS = {types.float32: _make_functions(_F32), types.float64: _make_functions(_F64)}


def _implementation(name, x):
    """The implementation of scalar function ``name`` for numba type ``x`` (overload typing)."""
    if x in _IMPLS:
        return _IMPLS[x][name]
    if isinstance(x, types.Number):  # ints, bools, float16, complex: say so
        raise TypingError(f"rnnlab.backends.numba.fastmath.{name} takes float32 or float64, got {x}")
    return None


def _from_python(array_function, x):
    """Evaluate a scalar function from Python through the compiled array loop."""
    result = array_function(np.asarray(x))
    return result[()] if result.ndim == 0 else result


def tanh(x):
    """tanh(x) for float32/float64, vectorizable inside ``@njit`` code (see module docstring)."""
    return _from_python(tanh_array, x)


def sigmoid(x):
    """1 / (1 + exp(-x)) for float32/float64, vectorizable inside ``@njit`` code."""
    return _from_python(sigmoid_array, x)


def tanh_grad(y):
    """d tanh / dx written with the output ``y = tanh(x)``: ``1 - y*y``, in y's dtype."""
    y = np.asarray(y)
    return y.dtype.type(1) - y * y


def sigmoid_grad(s):
    """d sigmoid / dx written with the output ``s = sigmoid(x)``: ``s * (1 - s)``, in s's dtype."""
    s = np.asarray(s)
    return s * (s.dtype.type(1) - s)


@overload(tanh, jit_options=SCALAR_OPTIONS)
def _overload_tanh(x):
    return _implementation("tanh", x)


@overload(sigmoid, jit_options=SCALAR_OPTIONS)
def _overload_sigmoid(x):
    return _implementation("sigmoid", x)


@overload(tanh_grad, jit_options=SCALAR_OPTIONS)
def _overload_tanh_grad(y):
    return _implementation("tanh_grad", y)


@overload(sigmoid_grad, jit_options=SCALAR_OPTIONS)
def _overload_sigmoid_grad(s):
    return _implementation("sigmoid_grad", s)


@jit
def tanh_into(x, out):
    """out[...] = tanh(x) elementwise; x and out C-contiguous, same shape and float dtype."""
    xs, outs = x.reshape(x.size), out.reshape(out.size)
    for i in range(xs.size):
        outs[i] = tanh(xs[i])


@jit
def sigmoid_into(x, out):
    """out[...] = sigmoid(x) elementwise; x and out C-contiguous, same shape and float dtype."""
    xs, outs = x.reshape(x.size), out.reshape(out.size)
    for i in range(xs.size):
        outs[i] = sigmoid(xs[i])


def _apply(into, x, out):
    x = np.asarray(x)
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"expected a float32 or float64 array, got dtype {x.dtype}")
    x = np.ascontiguousarray(x).reshape(x.shape)  # (ascontiguousarray makes 0-d arrays 1-d)
    if out is None:
        out = np.empty_like(x)
    elif out.shape != x.shape or out.dtype != x.dtype or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous {x.dtype} array of shape {x.shape}")
    into(x, out)
    return out


def tanh_array(x, out=None):
    """tanh of a float32/float64 array with the vectorized approximation; returns ``out``."""
    return _apply(tanh_into, x, out)


def sigmoid_array(x, out=None):
    """sigmoid of a float32/float64 array with the vectorized approximation; returns ``out``."""
    return _apply(sigmoid_into, x, out)
