"""Proofs of the activation identities in spec/activation.py, the numerical statement of the
maximum gap between GELU and its tanh approximation, and the link to reference/activation.py."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
import sympy as sp

from reference import activation as ref
from spec import activation as A
from spec import identity_holds, unproved_entries


def assert_identity(lhs, rhs) -> None:
    bad = unproved_entries(lhs, rhs)
    assert not bad, f"not proved equal at flat entries: {bad[:3]}"


@pytest.mark.parametrize(
    "identity",
    [
        A.tanh_derivative,
        A.sigmoid_derivative,
        A.sigmoid_tanh_relation,
        A.normal_cdf_definition,
        A.gelu_derivative,
        A.gelu_tanh_derivative,
        A.gelu_odd_part,
        A.gelu_tanh_series,
        A.gelu_tanh_gap_is_even,
    ],
    ids=lambda f: f.__name__,
)
def test_identity(identity) -> None:
    assert_identity(*identity())


def test_prover_rejects_near_misses() -> None:
    x = A.variable()
    # the notes' derivative with the wrong sign, σ' without the (1 - σ) factor
    assert not identity_holds(sp.diff(sp.tanh(x), x), 1 + sp.tanh(x) ** 2)
    assert not identity_holds(sp.diff(A.sigmoid(x), x), A.sigmoid(x))
    # GELU' is not Φ alone, and the tanh form is not exact at fourth order
    assert not identity_holds(sp.diff(A.gelu(x), x), A.normal_cdf(x))
    assert not identity_holds(sp.series(A.gelu_tanh_gap(x), x, 0, 6).removeO(), 0)


# -- the stated maximum gap ------------------------------------------------------------------


def _gap(v):
    c = mpmath.sqrt(2 / mpmath.pi)
    return v * mpmath.ncdf(v) - v / 2 * (1 + mpmath.tanh(c * (v + mpmath.mpf("0.044715") * v**3)))


def test_max_gap_is_attained_where_stated() -> None:
    # The gap's derivative vanishes at the stated argmax (a root found by mpmath at 40 digits),
    # and |gap| there is the stated maximum rounded up (by less than 1e-8).
    with mpmath.workdps(40):
        root = mpmath.findroot(lambda v: mpmath.diff(_gap, v), A.GELU_TANH_GAP_ARGMAX)
        peak = abs(_gap(root))
    assert abs(float(root) - A.GELU_TANH_GAP_ARGMAX) < 1e-5
    assert float(peak) <= A.GELU_TANH_MAX_GAP < float(peak) + 1e-8


def _gap64(x: np.ndarray) -> np.ndarray:
    erf = np.vectorize(math.erf)
    c = math.sqrt(2 / math.pi)
    return x / 2 * (erf(x / math.sqrt(2)) - np.tanh(c * (x + 0.044715 * x**3)))


def test_max_gap_bounds_the_whole_line() -> None:
    # |gap| <= GELU_TANH_MAX_GAP for every real x. The gap is even (proved), so x >= 0. On
    # [0, 12], between grid points of step h a C² function exceeds its larger end value by at
    # most M h² / 8, M a bound on |gap''| (twice the largest second difference quotient);
    # beyond 12 both forms equal x to within x (Φ(-x) + e^{-2u}) < 1e-30.
    h = 1e-4
    gap = _gap64(np.arange(0, 12 + h, h))
    curvature = 2 * np.abs(np.diff(gap, 2) / h**2).max()
    slack = curvature * h**2 / 8
    assert max(gap.max(), -gap.min()) + slack <= A.GELU_TANH_MAX_GAP
    with mpmath.workdps(40):
        assert abs(_gap(mpmath.mpf(12))) < 1e-30


def test_gelu_and_tanh_form_match_reference() -> None:
    x = A.variable()
    values = np.linspace(-6, 6, 25)
    exact = sp.lambdify(x, A.gelu(x), modules="mpmath")
    approx = sp.lambdify(x, A.gelu_tanh(x), modules="mpmath")
    derivative = sp.lambdify(x, sp.diff(A.gelu(x), x), modules="mpmath")
    with mpmath.workdps(40):  # the spec's 1 + erf cancels for x << 0: evaluate it wide
        want = [[float(f(mpmath.mpf(v))) for v in values] for f in (exact, approx, derivative)]
    (grad,) = ref.gelu_vjp(np.ones_like(values), values)
    np.testing.assert_allclose(ref.gelu(values), want[0], rtol=1e-14)
    np.testing.assert_allclose(ref.gelu_tanh(values), want[1], rtol=1e-13)
    np.testing.assert_allclose(grad, want[2], rtol=1e-14)
