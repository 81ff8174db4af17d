"""Accuracy of rnnlab.backends.numba.fastmath's tanh/sigmoid against slow, trusted references.

float32 errors are in ulp of the exact result.  The reference is NumPy/SciPy
in float64, which is exact to far below a float32 ulp.  The sweep strides over
every float32 bit pattern (subnormals, ±0, ±inf and NaN included).  float64
errors are in ulp against an 80-bit long-double reference.  They are measured
on a dense log-spaced sweep plus random bit patterns.
"""

import math
import subprocess
import sys

import numpy as np
import pytest
import scipy.special

numba = pytest.importorskip("numba")

from rnnlab.backends.numba import fastmath as fm  # noqa: E402
from rnnlab.backends.numba.jit import jit  # noqa: E402

LONG = np.longdouble
HAVE_LONG_DOUBLE = np.finfo(LONG).nmant >= 63  # x87 80-bit; some platforms alias it to float64

# Limits, a little above the measured worst cases (float32 2.42 ulp over every
# 7th bit pattern; float64 2.46 ulp over 8M points).  A correctly rounded
# result has 0.5 ulp; a naive formula is far off (see the self-checks below).
MAX_ULP = {np.float32: 3.0, np.float64: 3.0}


def ulp_error_f32(y, ref):
    """|y - ref| in units of the float32 ulp at ref (ref a float64 array, taken as exact)."""
    _, e = np.frexp(np.abs(ref))
    ulp = np.maximum(np.ldexp(1.0, e - 24), 2.0**-149)
    return np.abs(y.astype(np.float64) - ref) / ulp


def ulp_error_f64(y, ref):
    """|y - ref| in units of the float64 ulp at ref (ref a long-double array)."""
    _, e = np.frexp(np.abs(ref))
    ulp = np.maximum(np.ldexp(LONG(1), e - 53), LONG(2.0) ** -1074)
    return np.abs(y.astype(LONG) - ref) / ulp


def f32_sweep(step=97):
    """Every ``step``-th float32 bit pattern from +0 to +inf, and their negatives (about 44M values).

    A prime step visits every residue of the mantissa bits, so all binades and
    mantissa patterns are sampled, subnormals included.
    """
    bits = np.arange(0, 0x7F800001, step, dtype=np.uint32)
    bits = np.concatenate([bits, np.uint32([0x7F800000, 1, 0x007FFFFF, 0x00800000])])
    return bits.view(np.float32), (bits | np.uint32(0x80000000)).view(np.float32)


REFERENCE_F64 = {"tanh": np.tanh, "sigmoid": scipy.special.expit}
FUNCTIONS = {"tanh": fm.tanh_array, "sigmoid": fm.sigmoid_array}


@pytest.mark.parametrize("name", ["tanh", "sigmoid"])
def test_float32_whole_range_ulp(name):
    worst = 0.0
    for x in f32_sweep():
        for chunk in np.array_split(x, 8):
            y = FUNCTIONS[name](chunk)
            assert y.dtype == np.float32
            err = ulp_error_f32(y, REFERENCE_F64[name](chunk.astype(np.float64)))
            worst = max(worst, float(err.max()))
    assert worst <= MAX_ULP[np.float32], f"{name} float32 max error {worst:.2f} ulp"


def f64_points():
    rng = np.random.default_rng(42)
    mags = np.concatenate([
        np.geomspace(5e-324, 1e308, 400_000),  # all binades, subnormals to huge
        np.geomspace(1e-8, 40.0, 400_000),  # dense where tanh/sigmoid bend
        rng.uniform(0.0, 25.0, 200_000),
        rng.integers(0, 0x7FF0000000000000, 200_000, dtype=np.uint64).view(np.float64),  # random finite bits
    ])
    return np.concatenate([mags, -mags])


@pytest.mark.skipif(not HAVE_LONG_DOUBLE, reason="needs an 80-bit long double reference")
@pytest.mark.parametrize("name", ["tanh", "sigmoid"])
def test_float64_tight(name):
    x = f64_points()
    y = FUNCTIONS[name](x)
    assert y.dtype == np.float64
    xl = x.astype(LONG)
    with np.errstate(over="ignore"):
        ref = np.tanh(xl) if name == "tanh" else LONG(1) / (LONG(1) + np.exp(-xl))
    err = ulp_error_f64(y, ref)
    worst = float(err.max())
    assert worst <= MAX_ULP[np.float64], f"{name} float64 max error {worst:.2f} ulp at x={x[err.argmax()]!r}"
    normal = np.abs(ref) >= LONG(np.finfo(np.float64).tiny)
    relative = np.abs(y.astype(LONG)[normal] - ref[normal]) / np.abs(ref[normal])
    assert float(relative.max()) < 1e-15


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_special_values(dtype):
    f = dtype
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, np.finfo(dtype).max, -np.finfo(dtype).max,
                  np.finfo(dtype).smallest_subnormal, -np.finfo(dtype).smallest_subnormal], dtype)
    t = fm.tanh_array(x)
    s = fm.sigmoid_array(x)
    assert t.dtype == dtype and s.dtype == dtype
    # tanh: odd, ±0 kept with sign, saturates to exactly ±1, tiny x -> x exactly.
    assert t[0] == 0 and not np.signbit(t[0])
    assert t[1] == 0 and np.signbit(t[1])
    assert t[2] == 1 and t[3] == -1 and t[6] == 1 and t[7] == -1
    assert np.isnan(t[4]) and np.isnan(t[5])
    assert t[8] == x[8] and t[9] == x[9]
    # sigmoid: 0.5 at ±0, exactly 0/1 at the ends, NaN propagates, no sign tricks.
    assert s[0] == 0.5 and s[1] == 0.5
    assert s[2] == 1 and s[3] == 0 and s[6] == 1 and s[7] == 0
    assert np.isnan(s[4]) and np.isnan(s[5])
    assert s[8] == 0.5 and s[9] == 0.5
    # Relative accuracy in sigmoid's left tail, where 0.5*tanh(x/2)+0.5 returns 0.
    x_tail = np.array([-30.0, -80.0, -100.0], dtype)
    s_tail = fm.sigmoid_array(x_tail)
    ref = scipy.special.expit(x_tail.astype(np.float64))
    keep = ref > np.finfo(dtype).tiny
    assert np.all(np.abs(s_tail[keep] - ref[keep]) <= 4 * np.finfo(dtype).eps * ref[keep])


def test_python_scalar_calls_and_dtypes():
    assert isinstance(fm.tanh(np.float32(0.5)), np.float32)
    assert isinstance(fm.sigmoid(np.float64(0.5)), np.float64)
    assert fm.tanh(0.5) == pytest.approx(math.tanh(0.5), rel=1e-15)
    assert fm.sigmoid(np.float32(2.0)) == pytest.approx(1 / (1 + math.exp(-2)), rel=1e-6)
    with pytest.raises(TypeError):
        fm.tanh_array(np.arange(3))
    with pytest.raises(ValueError):
        fm.tanh_array(np.ones(3), out=np.ones(4))


@jit(cache=False)
def _scalar_uses(x, y):
    t = fm.tanh(x)
    s = fm.sigmoid(x)
    return t, s, fm.tanh_grad(t), fm.sigmoid_grad(s), fm.tanh_grad(y) + fm.sigmoid_grad(y)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_njit_scalars_keep_dtype_and_match(dtype):
    x, y = dtype(0.75), dtype(0.25)
    t, s, dt, ds, both = _scalar_uses(x, y)
    # No silent promotion to float64 inside numba (the return values are boxed as Python floats).
    signature = [sig for sig in _scalar_uses.nopython_signatures if sig.args[0] == numba.from_dtype(dtype)][0]
    assert signature.return_type == numba.types.UniTuple(numba.from_dtype(dtype), 5), signature
    tol = 2 * float(np.finfo(dtype).eps)
    assert t == pytest.approx(math.tanh(0.75), rel=tol)
    assert s == pytest.approx(1 / (1 + math.exp(-0.75)), rel=tol)
    assert dt == pytest.approx(1 - float(t) ** 2, rel=tol)
    assert ds == pytest.approx(float(s) * (1 - float(s)), rel=tol)
    # Python-side derivative helpers agree with the jitted ones (up to FMA contraction).
    assert fm.tanh_grad(dtype(t)) == pytest.approx(dt, rel=tol)
    assert fm.sigmoid_grad(dtype(s)) == pytest.approx(ds, rel=tol)
    assert fm.tanh_grad(dtype(t)).dtype == dtype


def test_rejects_integers_inside_njit():
    @jit(cache=False)
    def bad(n):
        return fm.tanh(n)

    with pytest.raises(numba.core.errors.TypingError, match="float32 or float64"):
        bad(3)


def test_tanh_loop_is_simd():
    """The loop that motivates the module: it must compile to packed vector instructions."""

    @jit(cache=False)
    def loop(x, out):
        for i in range(x.size):
            out[i] = fm.tanh(x[i])

    @jit(cache=False)
    def libm_loop(x, out):
        for i in range(x.size):
            out[i] = math.tanh(x[i])

    x = np.linspace(-3, 3, 64, dtype=np.float32)
    out = np.empty_like(x)
    loop(x, out)
    libm_loop(x, out)
    packed = r"\bv(?:fn?m(?:add|sub)\d+|mul|div)ps\s+%[yz]mm"  # 256/512-bit packed float32 arithmetic
    import re

    assert re.search(packed, loop.inspect_asm(loop.signatures[0]))
    # Honesty check of the pattern: the libm loop has no packed float arithmetic.
    assert not re.search(packed, libm_loop.inspect_asm(libm_loop.signatures[0]))


def test_error_measure_can_fail():
    """The ulp measure flags a sloppy tanh (float16 rounding) and passes NumPy's own float32 tanh."""
    x = np.linspace(-4, 4, 10001, dtype=np.float32)
    ref = np.tanh(x.astype(np.float64))
    sloppy = np.tanh(x.astype(np.float16)).astype(np.float32)
    assert ulp_error_f32(sloppy, ref).max() > 100
    assert ulp_error_f32(np.tanh(x), ref).max() <= 2.0  # numpy's own float32 tanh: about 1.3 ulp


def test_import_compiles_nothing():
    """Importing the kernel modules creates dispatchers only; nothing compiles at import."""
    code = (
        "import rnnlab, rnnlab.kernels, sys\n"
        "assert 'numba' not in sys.modules, 'rnnlab.kernels imported numba'\n"
        "from rnnlab.backends.numba import fastmath, blas\n"
        "for f in (fastmath.tanh_into, fastmath.sigmoid_into, blas.gemm):\n"
        "    assert not f.signatures and not f.overloads, f\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr
