"""Activations: tanh, sigmoid and GELU (exact and tanh form), forward and vjp, any float dtype.

Lecture notes: (tanh(x))' = 1 - tanh^2(x); GELU = x · Φ(x), Φ the cumulative distribution
function of the standard normal ("가우시안 분포의 누적분포함수").

GELU's keyword option is the declared variant `activation.gelu` (conformance/variants.py):
  approximation  "exact": x Φ(x) = x/2 · erfc(-x/√2) (torch approximate='none', HF "gelu");
                 erfc rather than 1 + erf(x/√2), which cancels for x << 0;
                 "tanh": x/2 · (1 + tanh(√(2/π) (x + 0.044715 x³))) (torch approximate='tanh',
                 HF "gelu_new", GPT-2), computed as x σ(2 √(2/π)(...)) for the same reason.
                 The two differ by at most 4.7324e-4 in absolute value,
                 at x = ±2.6989 (spec.activation.gelu_tanh_max_gap).

erfc for arrays: NumPy has no erf. For float64 and narrower dtypes the values go through
math.erfc in float64 (libm, within about 1 ulp of float64) and are rounded to the dtype. For a
wider dtype (np.longdouble, the truth dtype of conformance/tolerance.py) math.erfc would cap the
truth at float64 precision, so erfc is evaluated in that dtype: the Maclaurin-type series
erf(z) = 2/√π e^{-z²} Σ_n 2^n z^{2n+1} / (2n+1)!! (positive terms, no cancellation) for |z| < 1.5,
and the continued fraction erfc(z) = e^{-z²}/√π / (z + (1/2)/(z + 1/(z + (3/2)/(z + ...)))) for
|z| >= 1.5; measured against mpmath at 40 digits: relative error below 2e-17 (float64: 1.1e-16),
checked by tests/reference/test_activation_grad.py.
"""

from __future__ import annotations

import math

import numpy as np

from reference.common import store

GELU_TANH_COEFF = 0.044715  # the cubic coefficient of the tanh approximation (Hendrycks & Gimpel)

_SERIES_TERMS = 60  # |z| < 1.5: the series' terms shrink at least as 4.5 / (2k + 1)
_FRACTION_TERMS = 120  # |z| >= 1.5: converged to 2e-19 relative at z = 1.5 (mpmath)
_SWITCH = 1.5


def _pi(dtype: np.dtype) -> np.ndarray:
    # π in the dtype itself: np.pi is a float64 constant, 8e-17 off in np.longdouble.
    return np.arctan(np.ones((), dtype=dtype)) * 4


def _is_wider_than_float64(dtype: np.dtype) -> bool:
    return dtype.kind == "f" and np.finfo(dtype).eps < np.finfo(np.float64).eps


def _erfc_wide(z: np.ndarray) -> np.ndarray:
    """erfc(z) evaluated in z's own (wide) dtype: series for |z| < 1.5, continued fraction
    beyond."""
    dtype = z.dtype
    one = np.ones((), dtype=dtype)
    inv_sqrt_pi = one / np.sqrt(_pi(dtype))
    # series on |z| < 1.5: erf(z) = 2/√π e^{-z²} Σ_k 2^k z^{2k+1} / (2k+1)!!
    zs = np.clip(z, -_SWITCH, _SWITCH)
    term = zs.copy()
    total = zs.copy()
    for k in range(1, _SERIES_TERMS):
        term = term * (2 * zs * zs) / dtype.type(2 * k + 1)
        total = total + term
    erf_small = 2 * inv_sqrt_pi * np.exp(-zs * zs) * total
    # continued fraction on |z| >= 1.5, evaluated from the tail up
    za = np.maximum(np.abs(z), dtype.type(_SWITCH))
    tail = np.zeros_like(za)
    for k in range(_FRACTION_TERMS, 0, -1):
        tail = dtype.type(k / 2) / (za + tail)
    erfc_large = inv_sqrt_pi * np.exp(-za * za) / (za + tail)  # erfc(|z|)
    small = np.abs(z) < _SWITCH
    return np.where(small, one - erf_small, np.where(z > 0, erfc_large, 2 * one - erfc_large))


_ERFC64 = np.frompyfunc(math.erfc, 1, 1)


def erfc(z: np.ndarray) -> np.ndarray:
    """Complementary error function, elementwise, in z's dtype (see the module docstring)."""
    z = np.asarray(z)
    if _is_wider_than_float64(z.dtype):
        return _erfc_wide(z)
    return _ERFC64(z.astype(np.float64)).astype(np.float64).astype(z.dtype)


def normal_cdf(x: np.ndarray) -> np.ndarray:
    """Φ(x) = erfc(-x/√2) / 2: no cancellation for negative x (1 + erf would lose it)."""
    half = np.asarray(0.5, dtype=x.dtype)
    return half * erfc(-x / np.sqrt(np.asarray(2, dtype=x.dtype)))


def normal_pdf(x: np.ndarray) -> np.ndarray:
    """φ(x) = e^{-x²/2} / √(2π)."""
    return np.exp(-x * x / 2) / np.sqrt(2 * _pi(x.dtype))


# -- tanh ------------------------------------------------------------------------------------


def tanh(x: np.ndarray) -> np.ndarray:
    return np.tanh(x)


def tanh_vjp(dy: np.ndarray, x: np.ndarray) -> tuple[np.ndarray]:
    # (tanh x)' = 1 - tanh²(x); a kernel saves the output y for the backward pass
    y = store(np.tanh(x))
    return (dy * (1 - y * y),)


# -- sigmoid ---------------------------------------------------------------------------------


def sigmoid(x: np.ndarray) -> np.ndarray:
    """σ(x) = 1 / (1 + e^{-x}), in the form that never overflows: e = e^{-|x|} <= 1, and
    σ(x) = e / (1 + e) for x < 0."""
    e = np.exp(-np.abs(x))
    one = np.ones((), dtype=x.dtype)
    return np.where(x >= 0, one / (one + e), e / (one + e)).astype(x.dtype)


def sigmoid_vjp(dy: np.ndarray, x: np.ndarray) -> tuple[np.ndarray]:
    # σ' = σ (1 - σ), from the saved output
    s = store(sigmoid(x))
    return (dy * s * (1 - s),)


# -- GELU ------------------------------------------------------------------------------------


def _coeff(dtype: np.dtype, times: int = 1) -> np.ndarray:
    """times · 0.044715 in the dtype; a wide dtype parses the decimal itself (its float64
    rounding would move the truth of the tail by 2e-15)."""
    if _is_wider_than_float64(dtype):
        return dtype.type(times) * dtype.type(str(GELU_TANH_COEFF))
    return dtype.type(times * GELU_TANH_COEFF)


def _tanh_inner(x: np.ndarray) -> np.ndarray:
    """u = √(2/π) (x + 0.044715 x³)."""
    c = np.sqrt(2 / _pi(x.dtype))
    return c * (x + _coeff(x.dtype) * x * x * x)


def gelu(x: np.ndarray, approximation: str = "exact") -> np.ndarray:
    """GELU(x) = x Φ(x) ("exact") or its tanh approximation ("tanh")."""
    if approximation == "exact":
        return (x * normal_cdf(x)).astype(x.dtype)
    if approximation == "tanh":
        # x/2 (1 + tanh(u)) = x σ(2u): the same function without the cancellation of
        # 1 + tanh(u) for u << 0, so the negative tail keeps its relative precision.
        return (x * sigmoid(2 * _tanh_inner(x))).astype(x.dtype)
    raise ValueError(f"gelu approximation {approximation!r} is not 'exact' or 'tanh'")


def gelu_vjp(dy: np.ndarray, x: np.ndarray, approximation: str = "exact") -> tuple[np.ndarray]:
    if approximation == "exact":
        # d/dx x Φ(x) = Φ(x) + x φ(x)
        return ((dy * (normal_cdf(x) + x * normal_pdf(x))).astype(x.dtype),)
    if approximation == "tanh":
        # y = x/2 (1 + t), t = tanh(u): y' = (1 + t)/2 + x/2 (1 - t²) u'; with s = σ(2u) =
        # (1 + t)/2 and (1 - t²)/2 = 2 s (1 - s) this is s + 2 x s (1 - s) u' (no cancellation)
        s = sigmoid(2 * _tanh_inner(x))
        du = np.sqrt(2 / _pi(x.dtype)) * (1 + _coeff(x.dtype, 3) * x * x)
        return ((dy * (s + 2 * x * s * (1 - s) * du)).astype(x.dtype),)
    raise ValueError(f"gelu approximation {approximation!r} is not 'exact' or 'tanh'")


def gelu_tanh(x: np.ndarray) -> np.ndarray:
    """The tanh approximation as an op of its own (torch approximate='tanh')."""
    return gelu(x, approximation="tanh")


def gelu_tanh_vjp(dy: np.ndarray, x: np.ndarray) -> tuple[np.ndarray]:
    return gelu_vjp(dy, x, approximation="tanh")
