"""reference.activation: vjps against finite differences, erfc precision, GELU forms."""

import math

import ml_dtypes
import mpmath
import numpy as np
import pytest

from reference import activation
from tests.gradcheck import check_gradient_entries, check_vjp

OPS = [
    (activation.tanh, activation.tanh_vjp),
    (activation.sigmoid, activation.sigmoid_vjp),
    (activation.gelu, activation.gelu_vjp),
    (activation.gelu_tanh, activation.gelu_tanh_vjp),
]


@pytest.mark.parametrize(("fn", "vjp"), OPS, ids=lambda f: getattr(f, "__name__", ""))
@pytest.mark.parametrize("shape", [(1,), (7,), (2, 3, 4)])
def test_vjp(fn, vjp, shape):
    x = np.random.default_rng(len(shape)).standard_normal(shape) * 3
    check_vjp(fn, vjp, [x])
    check_gradient_entries(fn, vjp, [x])


def test_gelu_exact_vjp_option():
    x = np.linspace(-5, 5, 21)

    def f(x):
        return activation.gelu(x, approximation="exact")

    check_gradient_entries(f, lambda d, x: activation.gelu_vjp(d, x, approximation="exact"), [x])


def test_gelu_rejects_unknown_approximation():
    with pytest.raises(ValueError, match="approximation"):
        activation.gelu(np.zeros(2), approximation="sigmoid")


def test_sigmoid_is_finite_for_huge_inputs():
    x = np.array([-1e4, -800.0, 0.0, 800.0, 1e4])
    with np.errstate(over="raise"):
        s = activation.sigmoid(x)
    assert np.all(np.isfinite(s))
    assert s[0] == 0.0 and s[-1] == 1.0 and s[2] == 0.5


def _to_mp(v: np.longdouble) -> mpmath.mpf:
    # A long double is exactly the sum of two doubles (64-bit mantissa = 53 + 11 bits).
    hi = float(v)
    return mpmath.mpf(hi) + mpmath.mpf(float(v - np.longdouble(hi)))


@pytest.mark.skipif(
    np.finfo(np.longdouble).eps >= np.finfo(np.float64).eps, reason="long double is float64 here"
)
def test_wide_erfc_matches_mpmath():
    # The truth dtype's erfc (series below |z| = 1.5, continued fraction above) against mpmath
    # at 40 digits: relative error < 2e-17, far below float64's 1.1e-16.
    z = np.linspace(-6, 6, 1201).astype(np.longdouble) / np.longdouble(3) * 4
    got = activation.erfc(z)
    with mpmath.workdps(40):
        worst = max(
            abs(_to_mp(g) - mpmath.erfc(_to_mp(t))) / mpmath.erfc(_to_mp(t))
            for g, t in zip(got, z, strict=True)
        )
    assert worst < 2e-17, worst


def _ulps_off(got: np.ndarray, z: np.ndarray) -> np.ndarray:
    """|got - erfc(z)| in ulps of the float64 exact value (mpmath, 40 digits); normal results."""
    with mpmath.workdps(40):
        exact = [mpmath.erfc(mpmath.mpf(float(v))) for v in z]
        err = [float(abs(mpmath.mpf(float(g)) - e)) for g, e in zip(got, exact, strict=True)]
    ulp = np.spacing(np.abs(np.array([float(e) for e in exact])))
    return np.array(err) / ulp


def test_float64_erfc_is_within_ulps_over_the_whole_line():
    # fdlibm's erfc, vectorised: within 2.5 ulps of float64 (libm's math.erfc reaches 2.3 here)
    # on both sides of each of its ranges, in the cancelling region z < 0 and in the tail up to
    # where erfc leaves the normal floats (z = 26.5).
    cuts = [0.25, 0.84375, 1.25, 2.857142857142857, 6.0]
    near_cuts = np.concatenate([np.linspace(c * (1 - 1e-6), c * (1 + 1e-6), 11) for c in cuts])
    z = np.concatenate([np.linspace(-6, 26.5, 3251), near_cuts, -near_cuts, [1e-300, 1e-9]])
    got = activation.erfc(z)
    assert got.dtype == np.float64
    worst = _ulps_off(got, z)
    assert worst.max() < 2.5, (worst.max(), z[np.argmax(worst)])
    # the far ranges: no overflow or division by zero (underflow in the tail is the value),
    # the limits, NaN kept
    special = np.array([-np.inf, -1e300, -28.0, 27.5, 28.0, 1e300, np.inf, np.nan, 0.0, -0.0])
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        np.testing.assert_array_equal(
            activation.erfc(special), [2, 2, 2, math.erfc(27.5), 0, 0, 0, np.nan, 1, 1]
        )


@pytest.mark.parametrize("dtype", [np.float32, np.float16, ml_dtypes.bfloat16])
def test_narrow_erfc_is_the_float64_value_rounded_to_the_dtype(dtype):
    z = np.linspace(-4, 4, 81).astype(dtype)
    got = activation.erfc(z)
    assert got.dtype == z.dtype
    expected = activation.erfc(z.astype(np.float64)).astype(z.dtype)
    np.testing.assert_array_equal(got.astype(np.float64), expected.astype(np.float64))
    assert _ulps_off(activation.erfc(z.astype(np.float64)), z.astype(np.float64)).max() < 2.5


@pytest.mark.parametrize(
    ("dtype", "rtol"),
    [
        # erfc(-x/√2) is sensitive to its argument by 2z² (z = x/√2): up to 64 ulps at x = -8
        (np.float64, 64 * np.finfo(np.float64).eps),
        (np.longdouble, 64 * np.finfo(np.longdouble).eps),
    ],
)
@pytest.mark.parametrize("form", ["exact", "tanh"])
def test_gelu_matches_mpmath(dtype, rtol, form):
    # Relative precision over the whole range, the negative tail included (erfc and x σ(2u)
    # instead of the cancelling 1 + erf and 1 + tanh).
    x = np.linspace(-8, 8, 161)
    with mpmath.workdps(40):
        c = mpmath.sqrt(2 / mpmath.pi)

        def f(v):
            if form == "exact":
                return v * mpmath.ncdf(v)
            return v / 2 * (1 + mpmath.tanh(c * (v + mpmath.mpf("0.044715") * v**3)))

        want = [f(mpmath.mpf(v)) for v in x]
        got = activation.gelu(x.astype(dtype), approximation=form)
        pairs = [(g, w) for g, w in zip(got, want, strict=True) if w != 0]
        rel = [abs((_to_mp(np.longdouble(g)) - w) / w) for g, w in pairs]
        assert max(rel) < float(rtol), max(rel)


def test_stated_tanh_gap_is_the_reference_gap():
    # Around the argmax ±2.6989 the reference's two forms differ by the spec's stated maximum.
    from spec.activation import GELU_TANH_GAP_ARGMAX, GELU_TANH_MAX_GAP

    x = np.linspace(-12, 12, 240001)
    gap = np.abs(activation.gelu(x) - activation.gelu_tanh(x))
    assert gap.max() <= GELU_TANH_MAX_GAP
    assert abs(abs(x[np.argmax(gap)]) - GELU_TANH_GAP_ARGMAX) < 2e-4
    assert gap.max() > GELU_TANH_MAX_GAP - 1e-8
