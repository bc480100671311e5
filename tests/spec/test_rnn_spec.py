"""Proofs of spec/rnn.py, the rejection of the notes' wrong BPTT Jacobian (and of the other
mutants at the formula level), and the link to reference/rnn.py: the sympy formulas lambdified
at tiny sizes agree with the NumPy kernels."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from reference import rnn as ref
from spec import identity_holds, unproved_entries
from spec import rnn as S

TOL = {"rtol": 1e-12, "atol": 1e-14}


def assert_identity(lhs, rhs) -> None:
    bad = unproved_entries(lhs, rhs)
    assert not bad, f"not proved equal at flat entries: {bad[:3]}"


# -- proofs at several sizes -----------------------------------------------------------------------


@pytest.mark.parametrize(("H", "D"), [(1, 1), (2, 1), (2, 3), (3, 2)])
def test_rnn_step_definition(H, D):
    assert_identity(*S.rnn_step_definition(H, D))


@pytest.mark.parametrize(("H", "D"), [(1, 1), (2, 1), (3, 2)])
def test_bptt_jacobian(H, D):
    assert_identity(*S.bptt_jacobian(H, D))


@pytest.mark.parametrize(("H", "D"), [(1, 1), (2, 2)])
def test_local_weight_derivative(H, D):
    assert_identity(*S.local_weight_derivative(H, D))


@pytest.mark.parametrize("H", [1, 2])
def test_jacobian_product(H):
    assert_identity(*S.jacobian_product(H))


@pytest.mark.parametrize(("H", "D"), [(1, 1), (2, 3)])
def test_rstm_equals_rnn(H, D):
    assert_identity(*S.rstm_equals_rnn(H, D))


def test_tanh_derivative_and_its_maximum():
    assert_identity(*S.tanh_derivative())
    assert_identity(*S.tanh_derivative_at_most_one())


@pytest.mark.parametrize(("T", "H", "O"), [(1, 1, 1), (2, 2, 3), (3, 2, 1)])
def test_output_layer_gradients(T, H, O):
    assert_identity(*S.output_gradient_V(T, H, O))
    assert_identity(*S.output_gradient_c(T, H, O))


@pytest.mark.parametrize(("H", "D", "O"), [(1, 1, 1), (2, 1, 1)])
def test_bptt_two_steps(H, D, O):
    assert_identity(*S.bptt_two_steps(H, D, O))


@pytest.mark.parametrize("T", [1, 2, 3])
def test_tbptt_full_chunk_is_bptt(T):
    assert_identity(*S.tbptt_full_chunk_is_bptt(T))


@pytest.mark.parametrize("n", [1, 2, 4])
def test_clipping(n):
    assert_identity(*S.clip_norm_is_threshold(n))
    assert_identity(*S.clip_keeps_direction(n))
    assert_identity(*S.clip_idempotent(n))
    assert_identity(*S.clip_leaves_small_gradients(n))


@pytest.mark.parametrize("sizes", [(2, 1), (1, 3, 2)])
def test_clip_by_global_norm(sizes):
    assert_identity(*S.clip_by_global_norm(sizes))


# -- the notes' Jacobian and other wrong formulas are rejected -------------------------------------


def test_notes_jacobian_is_wrong():
    # (1 - h_{t-1}^2) W is not the derivative of h_t = tanh(W h_{t-1} + U x_t + b)...
    W, U, b = S.params(2, 1)
    h_prev, x = S.vector("h", 2), S.vector("x", 1)
    h_t = S.rnn_step(W, U, b, h_prev, x)
    assert not identity_holds(h_t.jacobian(h_prev), S.notes_jacobian(W, h_prev))
    # ... and the concrete counterexample: 1 - tanh(1)^2 ≈ 0.42 against the notes' 1.
    true, notes = S.notes_jacobian_counterexample()
    assert identity_holds(true, 1 - sp.tanh(1) ** 2)
    assert notes == 1
    assert abs(float(true) - float(notes)) > 0.5


def test_tbptt_with_short_chunks_is_not_bptt():
    # The cross-chunk term is really there: truncation changes the gradient (not the loss).
    L_tb, g_tb = S.tbptt_loss_gradient(2, 1)
    L, theta = S._full_loss(2, 1, 1, 1)
    assert identity_holds(L_tb, L)
    assert not identity_holds(g_tb, sp.Matrix([sp.diff(L, w) for w in theta]))


def test_clipping_is_not_per_element():
    # Clipping each entry to [-theta, theta] (the per-element mutant) keeps neither the
    # direction nor the norm bound of global-norm clipping.
    g = sp.Matrix([3, 1])
    theta = sp.Integer(2)
    per_element = g.applyfunc(lambda v: sp.Max(-theta, sp.Min(theta, v)))
    assert not identity_holds(per_element, S.clip(g, theta))
    assert S.norm(per_element) > theta


def test_clip_changes_large_gradients():
    # The clipped branch really is taken when ||g|| > threshold.
    g = sp.Matrix([3, 4])
    assert S.clip(g, sp.Integer(1)) == sp.Matrix([sp.Rational(3, 5), sp.Rational(4, 5)])


# -- the spec, evaluated, is the reference ---------------------------------------------------------


def lambdify(inputs, expr):
    symbols = [s for M in inputs for s in M]
    f = sp.lambdify(symbols, expr, modules="numpy")

    def evaluate(*arrays):
        values = [v for a in arrays for v in np.asarray(a, dtype=np.float64).ravel()]
        return np.asarray(f(*values), dtype=np.float64).reshape(expr.shape)

    return evaluate


@pytest.mark.parametrize("seed", range(3))
def test_unrolled_spec_is_reference(seed):
    rng = np.random.default_rng(seed)
    H, D, T = 2, 3, 3
    W, U, b = S.params(H, D)
    h0 = S.vector("h", H)
    xs = [S.vector(f"x{t}", D) for t in range(T)]
    hs = sp.Matrix.hstack(*S.unroll(W, U, b, h0, xs))  # (H, T)
    f = lambdify([W, U, b, h0, *xs], hs)
    w, u, bb, h = (
        rng.standard_normal((H, H)),
        rng.standard_normal((H, D)),
        rng.standard_normal(H),
        rng.standard_normal(H),
    )
    x = rng.standard_normal((T, D))
    spec = f(w, u, bb, h, *x)
    out, h_T = ref.rnn(x[None], h[None], w, u, bb)
    np.testing.assert_allclose(spec.T, out[0], **TOL)
    np.testing.assert_allclose(spec[:, -1], h_T[0], **TOL)


@pytest.mark.parametrize("seed", range(2))
def test_bptt_spec_is_reference_vjp(seed):
    # sympy's gradient of L = Σ_t 1/2 ||V h_t + c - z_t||^2 (unrolled) vs reference.rnn_loss_vjp.
    rng = np.random.default_rng(seed)
    H, D, O, T = 2, 1, 2, 3
    W, U, b = S.params(H, D)
    V, c = S.matrix("V", O, H), S.vector("c", O)
    h0 = S.vector("h", H)
    xs = [S.vector(f"x{t}", D) for t in range(T)]
    zs = [S.vector(f"z{t}", O) for t in range(T)]
    hs = S.unroll(W, U, b, h0, xs)
    L = sum(S.step_loss(S.output(V, c, h), z) for h, z in zip(hs, zs, strict=True))
    grads = sp.Matrix.vstack(*[S.gradient(L, M).reshape(len(M), 1) for M in (W, U, b, V, c, h0)])
    f = lambdify([W, U, b, V, c, h0, *xs, *zs], grads)
    w, u, bb = rng.standard_normal((H, H)), rng.standard_normal((H, D)), rng.standard_normal(H)
    v, cc, h = rng.standard_normal((O, H)), rng.standard_normal(O), rng.standard_normal(H)
    x, z = rng.standard_normal((T, D)), rng.standard_normal((T, O))
    spec = f(w, u, bb, v, cc, h, *x, *z).ravel()
    _, dh0, dW, dU, db, dV, dc, _ = ref.rnn_loss_vjp(
        np.ones(()), x[None], h[None], w, u, bb, v, cc, z[None]
    )
    ref_flat = np.concatenate([dW.ravel(), dU.ravel(), db, dV.ravel(), dc, dh0.ravel()])
    np.testing.assert_allclose(spec, ref_flat, **TOL)


def test_tbptt_spec_is_reference():
    rng = np.random.default_rng(4)
    T, chunk = 3, 2
    L_sym, g_sym = S.tbptt_loss_gradient(T, chunk, wrt=lambda W, U, b: [W[0, 0], U[0, 0], b[0]])
    W, U, b = S.params(1, 1)
    V, c, h0 = S.matrix("V", 1, 1), S.vector("c", 1), S.vector("h", 1)
    xs = [S.vector(f"x{t}", 1) for t in range(T)]
    zs = [S.vector(f"z{t}", 1) for t in range(T)]
    f = lambdify([W, U, b, V, c, h0, *xs, *zs], sp.Matrix([L_sym, *g_sym]))
    w, u, bb, v, cc, h = (rng.standard_normal((1, 1)) for _ in range(6))
    x, z = rng.standard_normal((T, 1)), rng.standard_normal((T, 1))
    spec = f(w, u, bb, v, cc, h, *x, *z).ravel()
    L, dW, dU, db, _, _ = ref.rnn_tbptt(
        x[None], h.reshape(1, 1), w, u, bb.ravel(), v, cc.ravel(), z[None], chunk
    )
    np.testing.assert_allclose(spec, [L, dW[0, 0], dU[0, 0], db[0]], **TOL)


@pytest.mark.parametrize("seed", range(5))
def test_jacobian_product_bound_numerically(seed):
    # ||dh_T/dh_0|| <= Π_t ||diag(1 - h_t^2) W|| <= ||W||^T (spectral norms), on the reference's
    # trajectory: the Jacobian product formed from its states.
    rng = np.random.default_rng(seed)
    H, D, T = 4, 2, 12
    scale = [0.5, 0.9, 1.5, 3.0, 0.2][seed]
    W = rng.standard_normal((H, H)) * scale / np.sqrt(H)
    U, b = rng.standard_normal((H, D)), rng.standard_normal(H)
    x, h0 = rng.standard_normal((1, T, D)), rng.standard_normal((1, H))
    hs, _ = ref.rnn(x, h0, W, U, b)
    J, per_step = np.eye(H), 1.0
    for t in range(T):
        step = np.diag(1 - hs[0, t] ** 2) @ W
        J, per_step = step @ J, per_step * np.linalg.norm(step, 2)
    norm_W = np.linalg.norm(W, 2)
    assert np.linalg.norm(J, 2) <= per_step * (1 + 1e-12)
    assert per_step <= norm_W**T * (1 + 1e-12)
    # and the reference's vjp applies exactly that product: dh0 = J^T dh_T
    dh_T = rng.standard_normal((1, H))
    dh0 = ref.rnn_vjp(np.zeros((1, T, H)), x, h0, W, U, b, dh_T=dh_T)[1]
    np.testing.assert_allclose(dh0[0], J.T @ dh_T[0], rtol=1e-10, atol=1e-14)


def test_rstm_form_is_the_reference():
    rng = np.random.default_rng(9)
    H, D = 3, 2
    W, U, b = rng.standard_normal((H, H)), rng.standard_normal((H, D)), rng.standard_normal(H)
    h, x = rng.standard_normal((1, H)), rng.standard_normal((1, 1, D))
    block = np.hstack([W, U])
    rstm = np.tanh(np.concatenate([h, x[:, 0]], axis=1) @ block.T + b)
    np.testing.assert_allclose(rstm, ref.rnn(x, h, W, U, b)[1], **TOL)
