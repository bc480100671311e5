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

erfc for arrays: NumPy has no erf. For float64 and narrower dtypes the values are computed in
float64 by fdlibm's erfc (Sun Microsystems' s_erf.c, the algorithm glibc's libm and so
math.erfc use), vectorised: rational approximations on |z| < 0.84375, [0.84375, 1.25),
[1.25, 1/0.35), [1/0.35, 28), and e^{-z²} as e^{-c²} e^{(c - z)(c + z)} with c = z cut to 21
mantissa bits (c² exact), so the tail keeps its relative precision; then rounded to the dtype.
Measured against mpmath at 40 digits: within 2.4 ulp of float64 over the whole real line, as
libm's math.erfc (which it replaces: math.erfc through np.frompyfunc ran per element in Python,
6x slower). scipy.special.erfc (scipy 1.17.1) was no alternative: 500 ulp off in the tail
(e^{-z²} from a rounded z²), and erfcx(z) e^{-z²} 7 ulp near z = 0.5.

For a wider dtype (np.longdouble, the truth dtype of conformance/tolerance.py) a float64 erfc
would cap the truth at float64 precision, so erfc is evaluated in that dtype: the Maclaurin-type
series erf(z) = 2/√π e^{-z²} Σ_n 2^n z^{2n+1} / (2n+1)!! (positive terms, no cancellation) for
|z| < 1.5, and the continued fraction erfc(z) = e^{-z²}/√π / (z + (1/2)/(z + 1/(z + (3/2)/(z +
...)))) for |z| >= 1.5; measured against mpmath at 40 digits: relative error below 2e-17
(float64: 1.1e-16), checked by tests/reference/test_activation_grad.py.
"""

from __future__ import annotations

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


# fdlibm's erfc coefficients (s_erf.c: "Copyright (C) 1993 by Sun Microsystems, Inc. All rights
# reserved. Developed at SunPro, a Sun Microsystems, Inc. business. Permission to use, copy,
# modify, and distribute this software is freely granted, provided that this notice is
# preserved."), lowest degree first; each Q and S starts with its constant 1.
# fmt: off
_ERX = 8.45062911510467529297e-01  # erf(1) cut to 24 bits
_PP = (1.28379167095512558561e-01, -3.25042107247001499370e-01, -2.84817495755985104766e-02,
       -5.77027029648944159157e-03, -2.37630166566501626084e-05)
_QQ = (1.0, 3.97917223959155352819e-01, 6.50222499887672944485e-02, 5.08130628187576562776e-03,
       1.32494738004321644526e-04, -3.96022827877536812320e-06)
_PA = (-2.36211856075265944077e-03, 4.14856118683748331666e-01, -3.72207876035701323847e-01,
       3.18346619901161753674e-01, -1.10894694282396677476e-01, 3.54783043256182359371e-02,
       -2.16637559486879084300e-03)
_QA = (1.0, 1.06420880400844228286e-01, 5.40397917702171048937e-01, 7.18286544141962662868e-02,
       1.26171219808761642112e-01, 1.36370839120290507362e-02, 1.19844998467991074170e-02)
_RA = (-9.86494403484714822705e-03, -6.93858572707181764372e-01, -1.05586262253232909814e01,
       -6.23753324503260060396e01, -1.62396669462573470355e02, -1.84605092906711035994e02,
       -8.12874355063065934246e01, -9.81432934416914548592e00)
_SA = (1.0, 1.96512716674392571292e01, 1.37657754143519042600e02, 4.34565877475229228821e02,
       6.45387271733267880336e02, 4.29008140027567833386e02, 1.08635005541779435134e02,
       6.57024977031928170135e00, -6.04244152148580987438e-02)
_RB = (-9.86494292470009928597e-03, -7.99283237680523006574e-01, -1.77579549177547519889e01,
       -1.60636384855821916062e02, -6.37566443368389627722e02, -1.02509513161107724954e03,
       -4.83519191608651397019e02)
_SB = (1.0, 3.03380607434824582924e01, 3.25792512996573918826e02, 1.53672958608443695994e03,
       3.19985821950859553908e03, 2.55305040643316442583e03, 4.74528541206955367215e02,
       -2.24409524465858183362e01)
# fmt: on
# fdlibm compares the high 32 bits of |z|: 1/0.35 with its low word cut is its switch
_RA_TO_RB = float(np.array(0x4006DB6D00000000, dtype=np.uint64).view(np.float64))
_ERFC_CHUNK = 1 << 16  # values per pass: a chunk's temporaries stay in the CPU cache


def _ratio(p: tuple, q: tuple, t: np.ndarray) -> np.ndarray:
    """P(t) / Q(t), both by Horner's rule."""

    def horner(coeffs: tuple) -> np.ndarray:
        acc = np.full_like(t, coeffs[-1])
        for c in coeffs[-2::-1]:
            acc *= t
            acc += c
        return acc

    out = horner(p)
    out /= horner(q)
    return out


def _erfc_float64_chunk(z: np.ndarray) -> np.ndarray:
    """fdlibm's erfc on a 1-D float64 array, each range on the indices that fall in it."""
    a = np.abs(z)
    out = np.empty_like(z)
    # |z| < 0.84375: erfc = 1 - (z + z y), y = P(z²)/Q(z²); from z = 1/4 on fdlibm writes it
    # 1/2 - ((z - 1/2) + z y): with c = 0 below 1/4 and 1/2 above, erfc = (1 - c) - ((z - c) + z y)
    i = np.flatnonzero(a < 0.84375)
    zi = z.take(i)
    t = _ratio(_PP, _QQ, zi * zi)
    t *= zi
    c = (zi >= 0.25) * 0.5
    t += zi - c
    out[i] = (1 - c) - t
    # 0.84375 <= |z| < 1.25: erf(|z|) = erx + P(s)/Q(s), s = |z| - 1
    i = np.flatnonzero((a >= 0.84375) & (a < 1.25))
    if i.size:
        pq = _ratio(_PA, _QA, a.take(i) - 1)
        out[i] = np.where(z.take(i) < 0, 1 + (_ERX + pq), (1 - _ERX) - pq)
    # 1.25 <= |z| < 28: erfc(|z|) = e^{-c² - 0.5625} e^{(c - |z|)(c + |z|) + R(s)/S(s)} / |z|,
    # s = 1/z², c = |z| with the low 32 bits of its float64 cut (c² is exact)
    i = np.flatnonzero((a >= 1.25) & (a < 28))
    if i.size:
        ai = a.take(i)
        s = 1 / (ai * ai)
        near = ai < _RA_TO_RB
        rs = np.empty_like(ai)
        rs[near] = _ratio(_RA, _SA, s[near])
        rs[~near] = _ratio(_RB, _SB, s[~near])
        c = (ai.view(np.uint64) & np.uint64(0xFFFFFFFF00000000)).view(np.float64)
        tail = np.exp(-c * c - 0.5625) * np.exp((c - ai) * (c + ai) + rs) / ai
        out[i] = np.where(z.take(i) < 0, 2 - tail, tail)
    # |z| >= 28 (float64 underflows), ±inf and NaN
    i = np.flatnonzero(~(a < 28))
    if i.size:
        zi = z.take(i)
        out[i] = np.where(zi < 0, 2.0, np.where(np.isnan(zi), np.nan, 0.0))
    return out


def _erfc_float64(z: np.ndarray) -> np.ndarray:
    """erfc of a float64 array, in chunks of _ERFC_CHUNK values."""
    flat = np.ascontiguousarray(z).reshape(-1)
    out = np.empty_like(flat)
    for start in range(0, flat.size, _ERFC_CHUNK):
        part = slice(start, start + _ERFC_CHUNK)
        out[part] = _erfc_float64_chunk(flat[part])
    return out.reshape(z.shape)


def erfc(z: np.ndarray) -> np.ndarray:
    """Complementary error function, elementwise, in z's dtype (see the module docstring)."""
    z = np.asarray(z)
    if _is_wider_than_float64(z.dtype):
        return _erfc_wide(z)
    return _erfc_float64(z.astype(np.float64, copy=False)).astype(z.dtype, copy=False)


def normal_cdf(x: np.ndarray) -> np.ndarray:
    """Φ(x) = erfc(-x/√2) / 2: no cancellation for negative x (1 + erf would lose it)."""
    cdf = erfc(x / -np.sqrt(np.asarray(2, dtype=x.dtype)))  # x / -√2 = -x/√2 exactly
    cdf *= np.asarray(0.5, dtype=x.dtype)
    return cdf


def normal_pdf(x: np.ndarray) -> np.ndarray:
    """φ(x) = e^{-x²/2} / √(2π)."""
    pdf = np.asarray(x * x)  # an array even for a 0-d x: the next steps write into it
    pdf *= -0.5  # exact: -x²/2
    np.exp(pdf, out=pdf)
    pdf /= np.sqrt(2 * _pi(x.dtype))
    return pdf


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


def _gelu_gate(x: np.ndarray, approximation: str) -> np.ndarray:
    """GELU(x) = x · gate: Φ(x) ("exact") or σ(2u) ("tanh")."""
    if approximation == "exact":
        return normal_cdf(x)
    if approximation == "tanh":
        # x/2 (1 + tanh(u)) = x σ(2u): the same function without the cancellation of
        # 1 + tanh(u) for u << 0, so the negative tail keeps its relative precision.
        return sigmoid(2 * _tanh_inner(x))
    raise ValueError(f"gelu approximation {approximation!r} is not 'exact' or 'tanh'")


def _gelu_derivative(x: np.ndarray, gate: np.ndarray, approximation: str) -> np.ndarray:
    if approximation == "exact":
        # d/dx x Φ(x) = Φ(x) + x φ(x), in φ's buffer
        derivative = normal_pdf(x)
        derivative *= x
        derivative += gate
        return derivative
    # y = x/2 (1 + t), t = tanh(u): y' = (1 + t)/2 + x/2 (1 - t²) u'; with s = σ(2u) =
    # (1 + t)/2 and (1 - t²)/2 = 2 s (1 - s) this is s + 2 x s (1 - s) u' (no cancellation)
    s = gate
    du = np.sqrt(2 / _pi(x.dtype)) * (1 + _coeff(x.dtype, 3) * x * x)
    return s + 2 * x * s * (1 - s) * du


def gelu(x: np.ndarray, approximation: str = "exact") -> np.ndarray:
    """GELU(x) = x Φ(x) ("exact") or its tanh approximation ("tanh")."""
    return (x * _gelu_gate(x, approximation)).astype(x.dtype, copy=False)


def gelu_vjp(dy: np.ndarray, x: np.ndarray, approximation: str = "exact") -> tuple[np.ndarray]:
    gate = _gelu_gate(x, approximation)
    return ((dy * _gelu_derivative(x, gate, approximation)).astype(x.dtype, copy=False),)


def gelu_with_vjp(x: np.ndarray, approximation: str = "exact"):
    """(gelu(x), dy -> gelu_vjp(dy, x)[0]): the value and its vjp at x sharing one evaluation of
    the gate Φ(x) (σ(2u)); the same numbers as the two functions, one erfc pass fewer."""
    gate = _gelu_gate(x, approximation)

    def vjp(dy: np.ndarray) -> np.ndarray:
        return (dy * _gelu_derivative(x, gate, approximation)).astype(x.dtype, copy=False)

    return (x * gate).astype(x.dtype, copy=False), vjp


def gelu_tanh(x: np.ndarray) -> np.ndarray:
    """The tanh approximation as an op of its own (torch approximate='tanh')."""
    return gelu(x, approximation="tanh")


def gelu_tanh_vjp(dy: np.ndarray, x: np.ndarray) -> tuple[np.ndarray]:
    return gelu_vjp(dy, x, approximation="tanh")
