"""Proofs of spec/gru.py (both reset placements, variants of each other), and the link to
reference/gru.py for each placement."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from reference import gru as ref
from spec import gru as S
from spec import identity_holds, unproved_entries
from spec.rnn import vector

TOL = {"rtol": 1e-12, "atol": 1e-14}


def assert_identity(lhs, rhs) -> None:
    bad = unproved_entries(lhs, rhs)
    assert not bad, f"not proved equal at flat entries: {bad[:3]}"


@pytest.mark.parametrize(("H", "D"), [(1, 1), (2, 1), (2, 3)])
def test_gru_definitions(H, D):
    assert_identity(*S.gru_reset_before(H, D))
    assert_identity(*S.gru_reset_after(H, D))


@pytest.mark.parametrize("H", [1, 2, 3])
def test_reset_placements_agree_for_diagonal(H):
    assert_identity(*S.reset_placements_agree_for_diagonal(H))


@pytest.mark.parametrize(("H", "D"), [(1, 1), (2, 1)])
def test_gru_jacobian(H, D):
    assert_identity(*S.gru_jacobian(H, D))


@pytest.mark.parametrize("H", [1, 2])
def test_update_gate_copies(H):
    assert_identity(*S.update_gate_copies(H))


def test_gru_backward_step():
    assert_identity(*S.gru_backward_step(1, 1))


def test_reset_placements_differ():
    # Two different functions in general: a concrete point where they disagree...
    before, after = S.reset_placements_differ()
    assert abs(float(before) - float(after)) > 0.05
    # ... and at random points, with a full W_nh (the formulas lambdified).
    W, b = S.params(2, 1)
    h, x = vector("h", 2), vector("x", 1)
    diff = S.gru_step(W, b, h, x, "before") - S.gru_step(W, b, h, x, "after")
    f = lambdify([W, b, h, x], diff)
    rng = np.random.default_rng(0)
    for _ in range(3):
        args = rng.standard_normal((6, 3)), rng.standard_normal(6), *rng.standard_normal((2, 2))
        assert np.max(np.abs(f(*args[:3], args[3][:1]))) > 1e-3


def test_update_gate_copy_needs_z_one():
    # z = 1 is what makes the copy exact: with a free z the Jacobian is not I.
    H = 2
    W = S.matrix("W", 3 * H, H + 1)
    h, r, n, z = vector("h", H), vector("r", H), vector("n", H), vector("z", H)
    assert not identity_holds(S.jacobian_closed_form(W, h, r, z, n, "before"), sp.eye(H))


def lambdify(inputs, expr):
    symbols = [s for M in inputs for s in M]
    f = sp.lambdify(symbols, expr, modules="numpy")
    return lambda *arrays: np.asarray(
        f(*[v for a in arrays for v in np.asarray(a, dtype=np.float64).ravel()]), dtype=np.float64
    ).reshape(expr.shape)


@pytest.mark.parametrize("reset", ["before", "after"])
@pytest.mark.parametrize("seed", range(2))
def test_two_steps_spec_is_reference(reset, seed):
    rng = np.random.default_rng(seed)
    H, D = 2, 3
    W, b = S.params(H, D)
    h0, x1, x2 = vector("h", H), vector("x", D), vector("u", D)
    h1 = S.gru_step(W, b, h0, x1, reset)
    h2 = S.gru_step(W, b, h1, x2, reset)
    f = lambdify([W, b, h0, x1, x2], sp.Matrix.vstack(h1, h2))
    w, bb = rng.standard_normal((3 * H, H + D)), rng.standard_normal(3 * H)
    h, x = rng.standard_normal(H), rng.standard_normal((2, D))
    spec = f(w, bb, h, x[0], x[1]).ravel()
    hs, _ = ref.gru(x[None], h[None], w, bb, reset=reset)
    np.testing.assert_allclose(spec, hs[0].ravel(), **TOL)


@pytest.mark.parametrize("reset", ["before", "after"])
def test_jacobian_closed_form_is_the_reference_vjp(reset):
    # One step, cotangent on h_1 only: the reference's dh0 = J^T dh with J the closed form.
    rng = np.random.default_rng(3)
    H, D = 3, 2
    w, bb = rng.standard_normal((3 * H, H + D)), rng.standard_normal(3 * H)
    h, x, dh = (
        rng.standard_normal((1, H)),
        rng.standard_normal((1, 1, D)),
        rng.standard_normal((1, H)),
    )
    _, dh0, _, _ = ref.gru_vjp(np.zeros((1, 1, H)), x, h, w, bb, reset=reset, dh_T=dh)
    Wm, bm = S.params(H, D)
    hv, xv = vector("h", H), vector("x", D)
    r, z = S.gates(Wm, bm, hv, xv)
    n = S.candidate(Wm, bm, hv, xv, r, reset)
    J = S.jacobian_closed_form(Wm, hv, r, z, n, reset)
    J_num = lambdify([Wm, bm, hv, xv], J)(w, bb, h[0], x[0, 0])
    np.testing.assert_allclose(dh0[0], dh[0] @ J_num, rtol=1e-10, atol=1e-14)
