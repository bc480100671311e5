"""Proofs of spec/linear_attention.py, the mutants they reject, the cost asymptotics, and the
link to reference.linear_attention."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from reference import linear_attention as ref_la
from spec import identity_holds, unproved_entries
from spec import linear_attention as L
from tests.spec.test_spec_vs_reference import TOL, lambdify


def assert_identity(lhs, rhs) -> None:
    bad = unproved_entries(lhs, rhs)
    assert not bad, f"not proved equal at flat entries: {bad[:3]}"


@pytest.mark.parametrize(("n", "n_keys", "dk", "dv"), [(3, 4, 2, 2), (1, 1, 1, 1), (2, 3, 3, 1)])
def test_associativity(n, n_keys, dk, dv) -> None:
    assert_identity(*L.associativity(n, n_keys, dk, dv))


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_causal_recurrence(n) -> None:
    assert_identity(*L.causal_recurrence(n))


def _recurrence_reading(P, R, V, current):
    """The mutants' recurrence: the output reads S_{i-1} + current * φ(K_i) V_i^T."""
    S, z, rows = sp.zeros(R.cols, V.cols), sp.zeros(R.cols, 1), []
    for i in range(P.rows):
        step_S, step_z = R.row(i).T * V.row(i), R.row(i).T
        rows.append((P.row(i) * (S + current * step_S)) / (P.row(i) * (z + current * step_z))[0])
        S, z = S + step_S, z + step_z
    return sp.Matrix.vstack(*rows)


def test_current_step_twice_is_not_the_causal_form() -> None:
    P, R, V = L.inputs(3)
    assert not identity_holds(_recurrence_reading(P, R, V, 2), L.kernel_form(P, R, V, True))


def test_omitting_the_current_step_is_not_the_causal_form() -> None:
    P, R, V = L.inputs(3)
    rows = _recurrence_reading(P, R, V, 0)[1:, :]  # row 0 would be 0/0
    assert not identity_holds(rows, L.kernel_form(P, R, V, True)[1:, :])


def test_without_normalizer_constant_values_are_not_kept() -> None:
    P, R = L.positive("P", 3, 2), L.positive("R", 3, 2)
    V = sp.ones(3, 1) * _value_row()
    assert not identity_holds(P * (R.T * V), V)


def _value_row():
    return sp.Matrix([[sp.Symbol("c0", real=True), sp.Symbol("c1", real=True)]])


def test_costs() -> None:
    assert_identity(*L.quadratic_cost())
    assert_identity(*L.linear_cost())
    assert_identity(*L.cost_ratio_grows_with_n())


def test_cost_asymptotics() -> None:
    # O(N d^2) vs O(N^2 d): the linear form's cost per position is bounded in N, the kernel
    # form's grows; the ratio grows without bound.
    lin, quad = L.linear_cost()[0], L.quadratic_cost()[0]
    N = L.N
    assert sp.expand(sp.limit(lin / N, N, sp.oo) - 2 * L.d_k * (L.d_v + 1)) == 0
    assert sp.limit(quad / N**2, N, sp.oo) == L.d_k + L.d_v + 1
    assert sp.limit(quad / lin, N, sp.oo) == sp.oo
    # and the degree in d: quadratic in the head size for the linear form, linear for softmax
    d = sp.Symbol("d", positive=True)
    assert sp.degree(lin.subs({L.d_k: d, L.d_v: d}), d) == 2
    assert sp.degree(quad.subs({L.d_k: d, L.d_v: d}), d) == 1


# -- spec <-> reference ---------------------------------------------------------------------------


def _values(seed, n=3, n_keys=3, dk=2, dv=2):
    rng = np.random.default_rng(seed)
    return (
        rng.standard_normal((n, dk)),
        rng.standard_normal((n_keys, dk)),
        rng.standard_normal((n_keys, dv)),
    )


@pytest.mark.parametrize("feature_map", ["elu+1", "relu"])
def test_forms_match_reference(feature_map) -> None:
    P, R, V = L.inputs(3, dk=2, dv=2)
    q, k, v = _values(1)
    if feature_map == "relu":
        q[:, 0], k[:, 0] = abs(q[:, 0]) + 0.5, abs(k[:, 0]) + 0.5
    p, r = ref_la.phi(q, feature_map), ref_la.phi(k, feature_map)
    cases = [
        (
            L.kernel_form(P, R, V),
            ref_la.linear_attention_quadratic(q, k, v, feature_map=feature_map),
        ),
        (L.linear_form(P, R, V), ref_la.linear_attention(q, k, v, feature_map=feature_map)),
        (
            L.recurrent_form(P, R, V),
            ref_la.linear_attention_causal(q, k, v, feature_map=feature_map),
        ),
        (
            L.kernel_form(P, R, V, causal=True),
            ref_la.linear_attention_quadratic(q, k, v, causal=True, feature_map=feature_map),
        ),
    ]
    for expr, ref in cases:
        np.testing.assert_allclose(lambdify([P, R, V], expr)(p, r, v), ref, **TOL)


def test_vjp_matches_reference() -> None:
    # sympy's derivatives with respect to φ(Q), φ(K), V, chained through φ' (elu + 1), vs
    # reference.linear_attention.linear_attention_vjp.
    P, R, V = L.inputs(2, dk=2, dv=2)
    dO = L.matrix("dO", 2, 2)
    loss = sum(L.linear_form(P, R, V).multiply_elementwise(dO))
    q, k, v = _values(2, 2, 2)
    g = np.random.default_rng(3).standard_normal((2, 2))
    args = (ref_la.phi(q), ref_la.phi(k), v, g)
    dq, dk, dv = ref_la.linear_attention_vjp(g, q, k, v)
    for M, ref, chain in ((P, dq, ref_la.phi_grad(q)), (R, dk, ref_la.phi_grad(k)), (V, dv, 1)):
        grad = sp.Matrix(M.rows, M.cols, lambda i, j, M=M: sp.diff(loss, M[i, j]))
        spec = lambdify([P, R, V, dO], grad)(*args) * chain
        np.testing.assert_allclose(spec, ref, **TOL)
