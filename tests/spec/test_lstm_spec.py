"""Proofs of spec/lstm.py (dc_{t+1}/dc_t in full, the uninterrupted flow), the rejection of the
mutants at the formula level, and the link to reference/lstm.py."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from reference import lstm as ref
from spec import identity_holds, unproved_entries
from spec import lstm as S
from spec.rnn import vector

TOL = {"rtol": 1e-12, "atol": 1e-14}


def assert_identity(lhs, rhs) -> None:
    bad = unproved_entries(lhs, rhs)
    assert not bad, f"not proved equal at flat entries: {bad[:3]}"


@pytest.mark.parametrize(("H", "D"), [(1, 1), (2, 1), (1, 3)])
def test_lstm_cell_definition(H, D):
    assert_identity(*S.lstm_cell_definition(H, D))


@pytest.mark.parametrize(("H", "D"), [(1, 1), (2, 1)])
def test_cell_jacobian(H, D):
    assert_identity(*S.cell_jacobian(H, D))


@pytest.mark.parametrize(("H", "D"), [(1, 1), (2, 1), (3, 2)])
def test_cell_jacobian_without_recurrent_weights(H, D):
    assert_identity(*S.cell_jacobian_without_recurrent_weights(H, D))


@pytest.mark.parametrize("H", [1, 2, 3])
def test_uninterrupted_gradient_flow(H):
    assert_identity(*S.uninterrupted_gradient_flow(H))


def test_lstm_backward_step():
    assert_identity(*S.lstm_backward_step(1, 1))


# -- what the identities rule out ---------------------------------------------------------------


def test_cell_jacobian_is_not_just_the_forget_gate():
    # With recurrent weights the notes' "(...)" are really there: dc_{t+1}/dc_t != diag(f).
    _, c, _, G, c_next = S._cell_problem(2, 1)
    assert not identity_holds(c_next.jacobian(c), sp.diag(*G["f"]))


def test_forget_gate_on_the_new_cell_is_wrong():
    # The mutant c_t = f ⊙ (c_{t-1} + i ⊙ g) (forget gate applied to c_t): not the notes' cell.
    W, b = S.params(1, 1)
    h, c, x = vector("h", 1), vector("c", 1), vector("x", 1)
    G = S.gates(W, b, h, x)
    mutant = G["f"].multiply_elementwise(c + G["i"].multiply_elementwise(G["g"]))
    assert not identity_holds(mutant, S.lstm_step(W, b, h, c, x)[1])


def test_swapped_gate_order_is_wrong():
    # Reading the blocks as i, f, g, o (torch's order) instead of i, f, o, g.
    H = 1
    W, b = S.params(H, 1)
    h, c, x = vector("h", H), vector("c", H), vector("x", 1)
    perm = [0, 1, 3, 2]
    Wp = sp.Matrix.vstack(*[W[k * H : (k + 1) * H, :] for k in perm])
    bp = sp.Matrix.vstack(*[b[k * H : (k + 1) * H, :] for k in perm])
    assert not identity_holds(S.lstm_step(Wp, bp, h, c, x)[0], S.lstm_step(W, b, h, c, x)[0])


def test_uninterrupted_flow_needs_both_gates():
    # f = 1 alone is not enough: with i != 0 the cell adds i ⊙ g and the Jacobian has paths
    # through h_t.
    H = 2
    W_h = {k: S.matrix(f"W{k}", H, H) for k in ("i", "f", "g")}
    g, o, c, i = vector("g", H), vector("o", H), vector("c", H), vector("i", H)
    J = S.cell_jacobian_closed_form(W_h, sp.ones(H, 1), i, g, o, c)
    assert not identity_holds(J, sp.eye(H))


# -- spec evaluated == reference -------------------------------------------------------------------


def lambdify(inputs, expr):
    symbols = [s for M in inputs for s in M]
    f = sp.lambdify(symbols, expr, modules="numpy")
    return lambda *arrays: np.asarray(
        f(*[v for a in arrays for v in np.asarray(a, dtype=np.float64).ravel()]), dtype=np.float64
    ).reshape(expr.shape)


@pytest.mark.parametrize("seed", range(3))
def test_two_steps_spec_is_reference(seed):
    rng = np.random.default_rng(seed)
    H, D = 2, 3
    W, b = S.params(H, D)
    h0, c0, x1, x2 = vector("h", H), vector("c", H), vector("x", D), vector("u", D)
    h1, c1 = S.lstm_step(W, b, h0, c0, x1)
    h2, c2 = S.lstm_step(W, b, h1, c1, x2)
    f = lambdify([W, b, h0, c0, x1, x2], sp.Matrix.vstack(h1, h2, c2))
    w, bb = rng.standard_normal((4 * H, H + D)), rng.standard_normal(4 * H)
    h, c, x = rng.standard_normal(H), rng.standard_normal(H), rng.standard_normal((2, D))
    spec = f(w, bb, h, c, x[0], x[1]).ravel()
    hs, h_T, c_T = ref.lstm(x[None], h[None], c[None], w, bb)
    np.testing.assert_allclose(spec, np.concatenate([hs[0, 0], hs[0, 1], c_T[0]]), **TOL)
    np.testing.assert_allclose(hs[0, 1], h_T[0], **TOL)


@pytest.mark.parametrize("seed", range(2))
def test_cell_jacobian_is_the_reference_vjp(seed):
    # The closed form dc_{t+1}/dc_t, contracted with a cotangent of c_{t+1} only, is what the
    # reference's BPTT sends back to c_t (two steps: t = 1 -> t = 2; dhs = 0, dh_T = 0).
    rng = np.random.default_rng(seed)
    H, D = 3, 2
    w, bb = rng.standard_normal((4 * H, H + D)), rng.standard_normal(4 * H)
    h, c, x = (
        rng.standard_normal((1, H)),
        rng.standard_normal((1, H)),
        rng.standard_normal((1, 2, D)),
    )
    dc = rng.standard_normal((1, H))
    _, _, dc0, _, _ = ref.lstm_vjp(np.zeros((1, 2, H)), x, h, c, w, bb, dc_T=dc)
    # step 1 in float64 by hand: the gates and c_1, o_1 the closed form needs
    a1 = np.concatenate([h, x[:, 0]], axis=1) @ w.T + bb
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    i1, f1, o1, g1 = (
        sig(a1[:, :H]),
        sig(a1[:, H : 2 * H]),
        sig(a1[:, 2 * H : 3 * H]),
        np.tanh(a1[:, 3 * H :]),
    )
    c1 = f1 * c + i1 * g1
    h1 = o1 * np.tanh(c1)
    a2 = np.concatenate([h1, x[:, 1]], axis=1) @ w.T + bb
    i2, f2, g2 = sig(a2[:, :H]), sig(a2[:, H : 2 * H]), np.tanh(a2[:, 3 * H :])
    W_h = {k: w[n * H : (n + 1) * H, :H] for n, k in enumerate(S.GATES)}
    as_col = lambda v: sp.Matrix(v.ravel())  # noqa: E731
    J21 = np.array(
        S.cell_jacobian_closed_form(
            {k: sp.Matrix(v) for k, v in W_h.items()},
            as_col(f2),
            as_col(i2),
            as_col(g2),
            as_col(o1),
            as_col(c1),
        ),
        dtype=np.float64,
    )
    J10 = np.diag(f1[0])  # dc_1/dc_0 at fixed h_0: the direct path only
    np.testing.assert_allclose(dc0[0], (dc @ J21 @ J10)[0], rtol=1e-10, atol=1e-14)


# -- peepholes (ONNX LSTM's P) ------------------------------------------------------------------


@pytest.mark.parametrize(("H", "D"), [(1, 1), (2, 1)])
def test_peephole_cell_definition(H, D):
    assert_identity(*S.peephole_cell_definition(H, D))


@pytest.mark.parametrize(("H", "D"), [(1, 1), (2, 2)])
def test_zero_peepholes_are_the_lstm(H, D):
    assert_identity(*S.zero_peepholes_are_the_lstm(H, D))


def test_peepholes_change_the_cell():
    # Nonzero peepholes are a different layer (so the option is not a no-op).
    W, b = S.params(1, 1)
    h, c, x, P = vector("h", 1), vector("c", 1), vector("x", 1), vector("p", 3)
    assert not identity_holds(
        sp.Matrix.vstack(*S.peephole_lstm_step(W, b, P, h, c, x)),
        sp.Matrix.vstack(*S.lstm_step(W, b, h, c, x)),
    )


def test_onnx_peephole_order_is_not_nnspecs():
    # Reading ONNX's [Pi, Po, Pf] as (p_i, p_f, p_o) is another layer (mutant lstm-peephole-order).
    H, D = 1, 1
    W, b = S.params(H, D)
    h, c, x, P = vector("h", H), vector("c", H), vector("x", D), vector("p", 3 * H)
    onnx_order = sp.Matrix([P[0], P[2], P[1]])
    assert not identity_holds(
        sp.Matrix.vstack(*S.peephole_lstm_step(W, b, P, h, c, x)),
        sp.Matrix.vstack(*S.peephole_lstm_step(W, b, onnx_order, h, c, x)),
    )


@pytest.mark.parametrize("seed", range(3))
def test_two_peephole_steps_spec_is_reference(seed):
    rng = np.random.default_rng(seed)
    H, D = 2, 3
    W, b = S.params(H, D)
    P = vector("p", 3 * H)
    h0, c0, x1, x2 = vector("h", H), vector("c", H), vector("x", D), vector("u", D)
    h1, c1 = S.peephole_lstm_step(W, b, P, h0, c0, x1)
    h2, c2 = S.peephole_lstm_step(W, b, P, h1, c1, x2)
    f = lambdify([W, b, P, h0, c0, x1, x2], sp.Matrix.vstack(h1, h2, c2))
    w, bb, p = (
        rng.standard_normal((4 * H, H + D)),
        rng.standard_normal(4 * H),
        rng.standard_normal(3 * H),
    )
    h, c, x = rng.standard_normal(H), rng.standard_normal(H), rng.standard_normal((2, D))
    spec = f(w, bb, p, h, c, x[0], x[1]).ravel()
    hs, _, c_T = ref.lstm(x[None], h[None], c[None], w, bb, peepholes=p)
    np.testing.assert_allclose(spec, np.concatenate([hs[0, 0], hs[0, 1], c_T[0]]), **TOL)
