"""Proofs of spec/equivariance.py, and the statements that must NOT hold (the border of a
zero-padded conv, shifts that are not multiples of the stride, position embeddings), and the
link to reference.equivariance."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from reference import equivariance as ref_eq
from spec import equivariance as Q
from spec import identity_holds, unproved_entries
from spec.attention import matrix

IDENTITIES = [
    Q.conv_translation_equivariance,
    Q.conv_zero_padding_interior,
    Q.gap_translation_invariance,
    Q.strided_pool_commutes_with_stride_multiples,
    Q.attention_permutation_equivariance,
    Q.permuted_position_embedding_restores_equivariance,
]


@pytest.mark.parametrize("identity", IDENTITIES, ids=lambda f: f.__name__)
def test_identity(identity) -> None:
    bad = unproved_entries(*identity())
    assert not bad, f"not proved equal at flat entries: {bad[:3]}"


def test_zero_padding_breaks_equivariance_at_the_border() -> None:
    X, K = matrix("x", 4, 4), matrix("k", 3, 3)
    lhs = Q.conv_same(Q.shift(X, 1, 0), K, "zeros")
    rhs = Q.shift(Q.conv_same(X, K, "zeros"), 1, 0)
    assert not identity_holds(lhs, rhs)


def test_strided_pool_does_not_commute_with_a_one_pixel_shift() -> None:
    X = matrix("x", 4, 4)
    pooled_shifted = Q.avg_pool(Q.shift(X, 1, 0), 2, 2)
    for sy in range(2):
        for sx in range(2):
            assert not identity_holds(pooled_shifted, Q.shift(Q.avg_pool(X, 2, 2), sy, sx))


def test_position_embedding_breaks_permutation_equivariance() -> None:
    assert not identity_holds(*Q.position_embedding_breaks_equivariance())


def test_reference_conv_is_the_lambdified_spec() -> None:
    rng = np.random.default_rng(0)
    X, K = matrix("x", 4, 5), matrix("k", 3, 3)
    for mode in ("circular", "zeros"):
        f = sp.lambdify([*X, *K], Q.conv_same(X, K, mode), modules="numpy")
        x, k = rng.standard_normal((4, 5)), rng.standard_normal((3, 3))
        want = np.asarray(f(*x.ravel(), *k.ravel()), dtype=float)
        got = ref_eq.conv2d(x[None, None], k[None, None], np.zeros(1), padding=1,
                            padding_mode=mode)[0, 0]  # fmt: skip
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def test_reference_pooling_is_the_lambdified_spec() -> None:
    rng = np.random.default_rng(1)
    X = matrix("x", 4, 6)
    f = sp.lambdify([*X], Q.avg_pool(X, 2, 2), modules="numpy")
    g = sp.lambdify([*X], Q.global_average_pool(X), modules="numpy")
    x = rng.standard_normal((4, 6))
    np.testing.assert_allclose(ref_eq.avg_pool2d(x[None, None], 2, 2)[0, 0], f(*x.ravel()))
    np.testing.assert_allclose(ref_eq.global_avg_pool(x[None, None])[0, 0], g(*x.ravel()))
