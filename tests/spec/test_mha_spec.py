"""Proofs of the multi-head identities in spec/attention.py, their mutants, and the link to
reference.attention.mha (the formula lambdified at tiny sizes)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import sympy as sp

from reference import attention as ref_attention
from spec import attention as A
from spec import identity_holds, unproved_entries
from tests.spec.test_spec_vs_reference import TOL, lambdify


def assert_identity(lhs, rhs) -> None:
    bad = unproved_entries(lhs, rhs)
    assert not bad, f"not proved equal at flat entries: {bad[:3]}"


@pytest.mark.parametrize(("n", "n_heads", "d_h"), [(2, 3, 2), (1, 2, 1), (3, 1, 2)])
def test_concat_is_sum_over_heads(n, n_heads, d_h) -> None:
    assert_identity(*A.mha_concat_is_sum_over_heads(n, n_heads, d_h))


def test_wrong_axis_split_mixes_the_heads() -> None:
    # The mutant tests/mutants/mha.py:HeadsWrongAxis reads head h from the strided features
    # h, h + H, ...: it is multi_head with the projection columns and W_O rows permuted by
    # [0, 2, 1, 3] (E = 4, H = 2). With W_O keeping head 0's rows, head 1's columns of the
    # projections now change the output: heads_use_their_own_columns fails for it.
    X, (W_Q, W_K, W_V, W_O) = A.matrix("X", 2, 2), A.mha_weights(2, 4)
    perm = [0, 2, 1, 3]
    keep0 = sp.Matrix(4, 4, lambda i, j: W_O[i, j] if i < 2 else 0)

    def mutant(wq, wk, wv):
        return A.multi_head(X, X, wq[:, perm], wk[:, perm], wv[:, perm], keep0[perm, :], 2)

    def other_head1(W, name):
        return sp.Matrix.hstack(W[:, :2], A.matrix(name, 2, 2))

    changed = mutant(other_head1(W_Q, "UQ"), other_head1(W_K, "UK"), other_head1(W_V, "UV"))
    assert not identity_holds(mutant(W_Q, W_K, W_V), changed)


@pytest.mark.parametrize("perm", list(itertools.permutations(range(3)))[1:])
def test_token_permutation(perm) -> None:
    assert_identity(*A.mha_token_permutation(perm))


def test_value_bias_does_not_cancel() -> None:
    # The same shift on V moves every output row: b_v has a gradient, b_k has none.
    X, (W_Q, W_K, W_V) = A.matrix("X", 2, 2), A.weights()
    b = A.matrix("b", 1, 2)
    Q, K, V = X * W_Q, X * W_K, X * W_V
    assert not identity_holds(A.attention(Q, K, V + sp.ones(2, 1) * b), A.attention(Q, K, V))


# -- spec <-> reference ---------------------------------------------------------------------------


@pytest.mark.parametrize(("n_heads", "causal"), [(1, False), (2, False), (2, True)])
def test_multi_head_matches_reference(n_heads, causal) -> None:
    rng = np.random.default_rng(n_heads + 3 * causal)
    n, d, e = 3, 2, 4
    X = A.matrix("X", n, d)
    W = A.mha_weights(d, e)
    mask = A.causal_mask(n) if causal else None
    spec = lambdify([X, *W], A.multi_head(X, X, *W, n_heads, mask))
    x = rng.standard_normal((n, d))
    w = [rng.standard_normal(M.shape) for M in W]
    zeros = np.zeros(e)
    ref = ref_attention.mha(x, x, *w, zeros, zeros, zeros, n_heads=n_heads, causal=causal)
    np.testing.assert_allclose(spec(x, *w), ref, **TOL)


def test_multi_head_gradient_matches_reference() -> None:
    # sympy's derivative of L = Σ dO ∘ MHA with respect to W_Q vs reference.attention.mha_vjp.
    rng = np.random.default_rng(9)
    X, W, dO = A.matrix("X", 2, 2), A.mha_weights(2, 2), A.matrix("dO", 2, 2)
    L = sum(A.multi_head(X, X, *W, 2).multiply_elementwise(dO))
    W_Q = W[0]
    grad = sp.Matrix(2, 2, lambda i, j: sp.diff(L, W_Q[i, j]))
    x, g = rng.standard_normal((2, 2)), rng.standard_normal((2, 2))
    w = [rng.standard_normal((2, 2)) for _ in W]
    zeros = np.zeros(2)
    ref = ref_attention.mha_vjp(g, x, x, *w, zeros, zeros, zeros, n_heads=2)
    np.testing.assert_allclose(lambdify([X, *W, dO], grad)(x, *w, g), ref[2], **TOL)
