"""Proofs of the attention identities in spec/attention.py, and the mutants they must reject."""

from __future__ import annotations

import itertools

import pytest
import sympy as sp

from spec import attention as A
from spec import identity_holds, unproved_entries


def assert_identity(lhs: sp.Basic, rhs: sp.Basic) -> None:
    bad = unproved_entries(lhs, rhs)
    assert not bad, f"not proved equal at flat entries: {bad[:3]}"


@pytest.mark.parametrize(("tq", "tk", "dk", "dv"), [(2, 3, 2, 2), (1, 2, 3, 1), (3, 2, 1, 2)])
def test_attention_definition(tq: int, tk: int, dk: int, dv: int) -> None:
    assert_identity(*A.attention_definition(tq, tk, dk, dv))


@pytest.mark.parametrize("d_k", [1, 2, 4, 8])
def test_score_variance_is_one(d_k: int) -> None:
    assert_identity(*A.score_variance(d_k))


def test_attention_weights_rows_sum_to_one() -> None:
    alpha = A.attention_weights(A.matrix("Q", 2, 2), A.matrix("K", 3, 2))
    assert_identity(alpha * sp.ones(3, 1), sp.ones(2, 1))


@pytest.mark.parametrize(("m", "n"), [(2, 3), (3, 2), (1, 1)])
def test_cross_attention(m: int, n: int) -> None:
    lhs, rhs = A.cross_attention_identity(m, n)
    assert rhs.shape == (m, 2)  # one output row per decoder position
    assert_identity(lhs, rhs)


def test_padding_mask_weights() -> None:
    # Key padding: the last key of every query hidden.
    assert_identity(*A.masked_weights_are_visible_softmax(((True, True, False),) * 2))


@pytest.mark.parametrize("n", [2, 3, 4])
def test_causal_weights(n: int) -> None:
    assert_identity(*A.causal_weights(n))


def test_causal_mask_follows_the_notes_rule() -> None:
    # "i-th row < j-th column then -inf": exactly the strict upper triangle.
    M = A.causal_mask(3)
    assert [(i, j) for i in range(3) for j in range(3) if M[i, j] == -sp.oo] == [
        (0, 1),
        (0, 2),
        (1, 2),
    ]


@pytest.mark.parametrize("n", [2, 3])
def test_causal_ignores_future(n: int) -> None:
    assert_identity(*A.causal_ignores_future(n))


def test_future_leaks_without_mask() -> None:
    # The mutant "forgot the causal mask": every one of these derivatives is nonzero, so the
    # zero of test_causal_ignores_future is the mask's doing.
    leaks = A.future_leaks_without_mask()
    assert all(not identity_holds(d, 0) for d in leaks)


@pytest.mark.parametrize("n", [2, 3])
def test_causal_is_prefix_attention(n: int) -> None:
    assert_identity(*A.causal_is_prefix_attention(n))


@pytest.mark.parametrize("perm", list(itertools.permutations(range(3))))
def test_key_permutation(perm: tuple[int, ...]) -> None:
    assert_identity(*A.key_permutation(perm))


def test_permuting_keys_without_values_changes_the_output() -> None:
    P = A.permutation_matrix((2, 0, 1))
    Q, K, V = A.matrix("Q", 2, 2), A.matrix("K", 3, 2), A.matrix("V", 3, 2)
    assert not identity_holds(A.attention(Q, P * K, V), A.attention(Q, K, V))


@pytest.mark.parametrize("perm", list(itertools.permutations(range(3))))
def test_token_permutation(perm: tuple[int, ...]) -> None:
    assert_identity(*A.token_permutation(perm))


def test_token_permutation_is_equivariance_not_invariance() -> None:
    P = A.permutation_matrix((1, 2, 0))
    X, W = A.matrix("X", 3, 2), A.weights()
    assert not identity_holds(A.self_attention(P * X, *W), A.self_attention(X, *W))


def test_causal_attention_is_not_permutation_equivariant() -> None:
    # The causal mask is positional information: reordering tokens changes what each sees.
    P = A.permutation_matrix((1, 2, 0))
    X, W = A.matrix("X", 3, 2), A.weights()
    M = A.causal_mask(3)
    assert not identity_holds(
        A.self_attention(P * X, *W, mask=M), P * A.self_attention(X, *W, mask=M)
    )


# -- the scale mutant: 1/d instead of 1/sqrt(d) --------------------------------------------------


def test_inverse_d_scale_mutant_differs_from_spec() -> None:
    Q, K, V = A.matrix("Q", 2, 2), A.matrix("K", 3, 2), A.matrix("V", 3, 2)
    spec_out, mutant_out = A.attention(Q, K, V), A.attention_inverse_d_scale(Q, K, V)
    assert not identity_holds(mutant_out, spec_out)
    # An explicit witness: at this rational point the two differ far beyond rounding.
    point = {
        s: sp.Rational(i % 5 - 2, 2)
        for i, s in enumerate(sorted(Q.free_symbols | K.free_symbols | V.free_symbols, key=str))
    }
    gap = max(abs((mutant_out - spec_out)[i].xreplace(point).evalf(30)) for i in range(4))
    assert gap > 1e-3


def test_inverse_d_scale_mutant_coincides_at_d_1() -> None:
    # 1/d = 1/sqrt(d) when d = 1: a conformance case with head size 1 cannot catch the mutant.
    Q, K, V = A.matrix("Q", 2, 1), A.matrix("K", 3, 1), A.matrix("V", 3, 2)
    assert_identity(A.attention_inverse_d_scale(Q, K, V), A.attention(Q, K, V))


def test_inverse_d_scale_breaks_unit_variance() -> None:
    lhs, rhs = A.score_variance(4, inverse_d=True)
    assert lhs == sp.Rational(1, 4)
    assert not identity_holds(lhs, rhs)
