"""The link between spec/ and reference/: the sympy formulas, lambdified at tiny sizes and
evaluated in float64, agree with the NumPy kernels on random inputs.

Both sides evaluate the same exact formula in float64 (the reference in its stable, max-shifted
form), so they agree to rounding: rtol 1e-12, with a small atol for entries that cancel to ~0.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import sympy as sp

from reference import attention as ref_attention
from reference import softmax as ref_softmax
from spec import attention as A
from spec import softmax as S

TOL = {"rtol": 1e-12, "atol": 1e-14}
SEEDS = range(3)


def lambdify(inputs: list[sp.MatrixBase], expr: sp.MatrixBase) -> Callable[..., np.ndarray]:
    """f(*arrays) evaluating expr, each array filling the symbols of one input Matrix (row-major,
    as numpy ravels)."""
    symbols = [s for M in inputs for s in M]
    f = sp.lambdify(symbols, expr, modules="numpy")

    def evaluate(*arrays: np.ndarray) -> np.ndarray:
        values = [x for a in arrays for x in np.asarray(a, dtype=np.float64).ravel()]
        return np.asarray(f(*values), dtype=np.float64).reshape(expr.shape)

    return evaluate


def rand(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape)


# -- softmax ------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_softmax(seed: int) -> None:
    rng = np.random.default_rng(seed)
    z = S.logits(4)
    x = 3 * rand(rng, 4)
    spec = lambdify([z], S.softmax(z))(x).ravel()
    np.testing.assert_allclose(spec, ref_softmax.softmax(x), **TOL)


@pytest.mark.parametrize("seed", SEEDS)
def test_log_softmax(seed: int) -> None:
    rng = np.random.default_rng(seed)
    z = S.logits(4)
    x = 3 * rand(rng, 4)
    spec = lambdify([z], S.log_softmax(z))(x).ravel()
    np.testing.assert_allclose(spec, ref_softmax.log_softmax(x), **TOL)


@pytest.mark.parametrize("seed", SEEDS)
def test_softmax_vjp(seed: int) -> None:
    # The derived Jacobian (sympy's, not the closed form) contracted with a cotangent.
    rng = np.random.default_rng(seed)
    z, dy = S.logits(4), S.logits(4, "dy")
    vjp = S.softmax(z).jacobian(z).T * dy
    x, g = rand(rng, 4), rand(rng, 4)
    (ref,) = ref_softmax.softmax_vjp(g, x)
    np.testing.assert_allclose(lambdify([z, dy], vjp)(x, g).ravel(), ref, **TOL)


@pytest.mark.parametrize("seed", SEEDS)
def test_log_softmax_vjp(seed: int) -> None:
    rng = np.random.default_rng(seed)
    z, dy = S.logits(4), S.logits(4, "dy")
    vjp = S.softmax(z).applyfunc(sp.log).jacobian(z).T * dy
    x, g = rand(rng, 4), rand(rng, 4)
    (ref,) = ref_softmax.log_softmax_vjp(g, x)
    np.testing.assert_allclose(lambdify([z, dy], vjp)(x, g).ravel(), ref, **TOL)


# -- attention ----------------------------------------------------------------------------------


def qkv(tq: int, tk: int, dk: int, dv: int) -> tuple[sp.Matrix, sp.Matrix, sp.Matrix]:
    return A.matrix("Q", tq, dk), A.matrix("K", tk, dk), A.matrix("V", tk, dv)


def qkv_values(rng: np.random.Generator, tq: int, tk: int, dk: int, dv: int):
    return rand(rng, tq, dk), rand(rng, tk, dk), rand(rng, tk, dv)


@pytest.mark.parametrize("seed", SEEDS)
def test_attention(seed: int) -> None:
    rng = np.random.default_rng(seed)
    Q, K, V = qkv(2, 3, 2, 3)
    q, k, v = qkv_values(rng, 2, 3, 2, 3)
    spec = lambdify([Q, K, V], A.attention(Q, K, V))(q, k, v)
    np.testing.assert_allclose(spec, ref_attention.sdpa(q, k, v), **TOL)


@pytest.mark.parametrize(("tq", "tk"), [(3, 3), (2, 3)])
def test_causal_attention(tq: int, tk: int) -> None:
    # tq != tk: the notes' rule (key j > query i hidden) is the top-left alignment.
    rng = np.random.default_rng(tq + tk)
    Q, K, V = qkv(tq, tk, 2, 2)
    q, k, v = qkv_values(rng, tq, tk, 2, 2)
    spec = lambdify([Q, K, V], A.attention(Q, K, V, mask=A.causal_mask(tq, tk)))(q, k, v)
    ref = ref_attention.sdpa(q, k, v, causal=True, causal_alignment="top_left")
    np.testing.assert_allclose(spec, ref, **TOL)


def test_causal_weights_are_exactly_zero_above_the_diagonal() -> None:
    rng = np.random.default_rng(7)
    Q, K = A.matrix("Q", 3, 2), A.matrix("K", 3, 2)
    q, k = rand(rng, 3, 2), rand(rng, 3, 2)
    spec = lambdify([Q, K], A.attention_weights(Q, K, A.causal_mask(3)))(q, k)
    ref = ref_attention.attention_weights(q, k, causal=True)
    np.testing.assert_allclose(spec, ref, **TOL)
    assert np.all(spec[np.triu_indices(3, 1)] == 0) and np.all(ref[np.triu_indices(3, 1)] == 0)


def test_padding_mask_attention() -> None:
    rng = np.random.default_rng(11)
    visible = np.array([[True, False, True], [False, True, True]])
    Q, K, V = qkv(2, 3, 2, 2)
    q, k, v = qkv_values(rng, 2, 3, 2, 2)
    spec = lambdify([Q, K, V], A.attention(Q, K, V, mask=A.additive_mask(visible.tolist())))
    np.testing.assert_allclose(spec(q, k, v), ref_attention.sdpa(q, k, v, mask=visible), **TOL)


def test_self_and_cross_attention() -> None:
    rng = np.random.default_rng(3)
    X, Y, W = A.matrix("X", 3, 2), A.matrix("Y", 2, 2), A.weights()
    x, y = rand(rng, 3, 2), rand(rng, 2, 2)
    w = [rand(rng, 2, 2) for _ in range(3)]
    self_spec = lambdify([X, *W], A.self_attention(X, *W))(x, *w)
    np.testing.assert_allclose(self_spec, ref_attention.sdpa(x @ w[0], x @ w[1], x @ w[2]), **TOL)
    cross_spec = lambdify([Y, X, *W], A.cross_attention(Y, X, *W))(y, x, *w)
    np.testing.assert_allclose(cross_spec, ref_attention.sdpa(y @ w[0], x @ w[1], x @ w[2]), **TOL)


@pytest.mark.parametrize("seed", SEEDS[:2])
def test_attention_vjp(seed: int) -> None:
    # Spec side: gradients of L = Σ dO ∘ Attention derived by sympy, not the closed form.
    rng = np.random.default_rng(seed)
    Q, K, V = qkv(2, 3, 2, 2)
    dO = A.matrix("dO", 2, 2)
    L = sum(A.attention(Q, K, V).multiply_elementwise(dO))
    grads = [sp.Matrix(M.rows, M.cols, lambda i, j, M=M: sp.diff(L, M[i, j])) for M in (Q, K, V)]
    q, k, v = qkv_values(rng, 2, 3, 2, 2)
    g = rand(rng, 2, 2)
    for spec_grad, ref_grad in zip(grads, ref_attention.sdpa_vjp(g, q, k, v), strict=True):
        np.testing.assert_allclose(lambdify([Q, K, V, dO], spec_grad)(q, k, v, g), ref_grad, **TOL)


# -- the scale mutant: the spec's 1/d form is exactly the reference's declared variant -------------


def test_inverse_d_mutant_is_the_reference_variant_and_not_the_default() -> None:
    rng = np.random.default_rng(5)
    Q, K, V = qkv(2, 3, 4, 2)
    q, k, v = qkv_values(rng, 2, 3, 4, 2)
    mutant = lambdify([Q, K, V], A.attention_inverse_d_scale(Q, K, V))(q, k, v)
    np.testing.assert_allclose(mutant, ref_attention.sdpa(q, k, v, scale_rule="1/d"), **TOL)
    assert not np.allclose(mutant, ref_attention.sdpa(q, k, v), rtol=1e-6, atol=0)
