"""Activations as sympy expressions: tanh, sigmoid, GELU and its tanh approximation.

Lecture notes:
    (tanh(x))' = 1 - tanh²(x)
    GELU = x · Φ(x), Φ the cumulative distribution function of the standard normal

The tanh approximation (Hendrycks & Gimpel 2016; torch approximate='tanh', GPT-2's "gelu_new")
    GELU_tanh(x) = x/2 · (1 + tanh(√(2/π) (x + 0.044715 x³)))
agrees with x Φ(x) to second order at 0 and differs from it by at most GELU_TANH_MAX_GAP in
absolute value, attained at x = ±GELU_TANH_GAP_ARGMAX. That maximum is a number, not an
identity: tests/spec/test_activation_spec.py locates it with mpmath (the roots of the gap's
derivative) and bounds the gap on a fine grid with a derivative bound between grid points; the
gap is even (`gelu_tanh_gap_is_even`), so x >= 0 suffices. 0.044715 is a fitted constant: the
Taylor coefficient that would also match the x⁴ term is 2/(3π) - 1/6 = 0.04554.
"""

from __future__ import annotations

import sympy as sp

from spec import Identity

GELU_TANH_COEFF = sp.Rational(44715, 10**6)
# max_x |x Φ(x) - GELU_tanh(x)| = 4.73235521e-4, at x = ±2.698941386 (mpmath, 40 digits); the
# stated bound is rounded up, the argmax to the digits given.
GELU_TANH_MAX_GAP = 4.7324e-4
GELU_TANH_GAP_ARGMAX = 2.69894


def variable(name: str = "x") -> sp.Symbol:
    return sp.Symbol(name, real=True)


def sigmoid(x: sp.Expr) -> sp.Expr:
    return 1 / (1 + sp.exp(-x))


def normal_pdf(x: sp.Expr) -> sp.Expr:
    """φ(x) = e^{-x²/2} / √(2π)."""
    return sp.exp(-(x**2) / 2) / sp.sqrt(2 * sp.pi)


def normal_cdf(x: sp.Expr) -> sp.Expr:
    """Φ(x) = (1 + erf(x/√2)) / 2 (closed form; `normal_cdf_definition` proves it)."""
    return (1 + sp.erf(x / sp.sqrt(2))) / 2


def gelu(x: sp.Expr) -> sp.Expr:
    """GELU(x) = x Φ(x)."""
    return x * normal_cdf(x)


def gelu_tanh(x: sp.Expr) -> sp.Expr:
    """x/2 (1 + tanh(√(2/π) (x + 0.044715 x³)))."""
    return x / 2 * (1 + sp.tanh(sp.sqrt(2 / sp.pi) * (x + GELU_TANH_COEFF * x**3)))


def gelu_tanh_gap(x: sp.Expr) -> sp.Expr:
    """x Φ(x) - GELU_tanh(x)."""
    return gelu(x) - gelu_tanh(x)


# -- identities --------------------------------------------------------------------------------


def tanh_derivative() -> Identity:
    """Notes: (tanh(x))' = 1 - tanh²(x)."""
    x = variable()
    return sp.diff(sp.tanh(x), x), 1 - sp.tanh(x) ** 2


def sigmoid_derivative() -> Identity:
    """Notes: σ in the LSTM gates, differentiated (implied): σ'(x) = σ(x)(1 - σ(x)), the form
    reference.activation.sigmoid_vjp computes from the saved output."""
    x = variable()
    return sp.diff(sigmoid(x), x), sigmoid(x) * (1 - sigmoid(x))


def sigmoid_tanh_relation() -> Identity:
    """Notes: σ and tanh (implied): σ(x) = (1 + tanh(x/2)) / 2, the two squashing functions of
    the LSTM are one function rescaled."""
    x = variable()
    # tanh written with exponentials (an exact rewrite) so the prover sees one function family
    return sigmoid(x), ((1 + sp.tanh(x / 2)) / 2).rewrite(sp.exp)


def normal_cdf_definition() -> Identity:
    """Notes: GELU = x · Φ(x), Φ the Gaussian cumulative distribution function:
    ∫_{-∞}^{x} φ(t) dt = (1 + erf(x/√2)) / 2."""
    x, t = variable(), variable("t")
    # sympy answers with erfc; erfc = 1 - erf is an exact rewrite
    return sp.integrate(normal_pdf(t), (t, -sp.oo, x)).rewrite(sp.erf), normal_cdf(x)


def gelu_derivative() -> Identity:
    """Notes: GELU = x · Φ(x), differentiated: GELU'(x) = Φ(x) + x φ(x)."""
    x = variable()
    return sp.diff(gelu(x), x), normal_cdf(x) + x * normal_pdf(x)


def gelu_tanh_derivative() -> Identity:
    """Notes: GELU = x · Φ(x), tanh approximation, differentiated: with t = tanh(u),
    u = √(2/π)(x + 0.044715 x³): (1 + t)/2 + x/2 (1 - t²) √(2/π)(1 + 3·0.044715 x²)."""
    x = variable()
    u = sp.sqrt(2 / sp.pi) * (x + GELU_TANH_COEFF * x**3)
    t = sp.tanh(u)
    closed = (1 + t) / 2 + x / 2 * (1 - t**2) * sp.sqrt(2 / sp.pi) * (
        1 + 3 * GELU_TANH_COEFF * x**2
    )
    return sp.diff(gelu_tanh(x), x), closed


def gelu_odd_part() -> Identity:
    """Notes: GELU = x · Φ(x) (implied): Φ(x) + Φ(-x) = 1, so GELU(x) - GELU(-x) = x; the tanh
    form keeps this because tanh is odd."""
    x = variable()
    return sp.Matrix([gelu(x) - gelu(-x), gelu_tanh(x) - gelu_tanh(-x)]), sp.Matrix([x, x])


def gelu_tanh_series() -> Identity:
    """Notes: GELU = x · Φ(x), tanh approximation (implied): both are x/2 + x²/√(2π) + O(x⁴)
    at 0: the approximation is exact to second order."""
    x = variable()
    return sp.series(gelu_tanh_gap(x), x, 0, 4).removeO(), sp.Integer(0)


def gelu_tanh_gap_is_even() -> Identity:
    """Notes: GELU = x · Φ(x), tanh approximation (implied): the gap x Φ(x) - GELU_tanh(x) is
    an even function (both forms have odd part x/2), so its maximum |gap| = 4.7324e-4 is
    attained at ±2.69894 alike and checking x >= 0 suffices."""
    x = variable()
    return gelu_tanh_gap(-x), gelu_tanh_gap(x)
