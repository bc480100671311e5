"""Proofs of spec/captioning.py, near misses the prover must reject, and the spec's attention
evaluated against reference/captioning.py at tiny sizes."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from reference import captioning as ref
from spec import captioning as S
from spec import identity_holds, unproved_entries
from spec.attention import matrix


def assert_identity(lhs, rhs) -> None:
    bad = unproved_entries(lhs, rhs)
    assert not bad, f"not proved equal at flat entries: {bad[:3]}"


@pytest.mark.parametrize("L", [1, 2, 4])
def test_attention_weights_sum_to_one(L):
    assert_identity(*S.attention_weights_sum_to_one(L))


def test_prover_rejects_unnormalised_weights():
    # exp(e) without the softmax denominator: weights that do not sum to one.
    a, h, W_a, W_h, w = S._problem(3)
    e = S.scores(a, h, W_a, W_h, w)
    assert not identity_holds(sum(e.applyfunc(sp.exp)), sp.Integer(1))


def test_prover_rejects_context_of_unweighted_sum():
    c = matrix("c", 1, 2)
    a = sp.Matrix.vstack(c, c, c)
    assert not identity_holds(a.T * sp.ones(3, 1), c.T)


@pytest.mark.parametrize("seed", range(3))
def test_spec_attention_matches_reference(seed):
    rng = np.random.default_rng(seed)
    L, D, A, H = 3, 2, 2, 1
    a, h = matrix("a", L, D), matrix("h", H, 1)
    W_a, W_h, w = matrix("W_a", A, D), matrix("W_h", A, H), matrix("w", A, 1)
    vals = [rng.standard_normal(m.shape) for m in (a, h, W_a, W_h, w)]
    sub = {
        s: v
        for M, x in zip((a, h, W_a, W_h, w), vals, strict=True)
        for s, v in zip(M, x.ravel(), strict=True)
    }
    alpha = S.attention_weights(a, h, W_a, W_h, w)
    z = S.context(a, alpha)
    av, hv, Wav, Whv, wv = vals
    args = (av[None], hv.T, Wav, Whv, wv.ravel())
    np.testing.assert_allclose(
        ref.attention_weights(*args)[0],
        np.array(alpha.xreplace(sub).evalf(30), dtype=float).ravel(),
        rtol=1e-12,
    )
    np.testing.assert_allclose(
        ref.soft_attention(*args)[0],
        np.array(z.xreplace(sub).evalf(30), dtype=float).ravel(),
        rtol=1e-12,
    )
