"""Proofs of spec/language.py, near misses the prover must reject, and the spec evaluated
against reference/language.py at tiny sizes."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from reference import language as ref
from spec import identity_holds, unproved_entries
from spec import language as S
from spec.attention import matrix
from spec.softmax import logits, softmax


def assert_identity(lhs, rhs) -> None:
    bad = unproved_entries(lhs, rhs)
    assert not bad, f"not proved equal at flat entries: {bad[:3]}"


@pytest.mark.parametrize("k", [0, 2])
def test_embedding_is_column_lookup(k):
    assert_identity(*S.embedding_is_column_lookup(3, 2, k))


@pytest.mark.parametrize("k", [0, 1])
def test_embedding_gradient_is_one_column(k):
    assert_identity(*S.embedding_gradient_is_one_column(3, 2, k))


@pytest.mark.parametrize(("V", "k"), [(2, 0), (3, 1), (4, 3)])
def test_cross_entropy_one_hot(V, k):
    assert_identity(*S.cross_entropy_one_hot(V, k))


@pytest.mark.parametrize(("V", "k"), [(2, 1), (3, 1)])
def test_cross_entropy_gradient(V, k):
    assert_identity(*S.cross_entropy_gradient(V, k))


def test_reduction_identities():
    assert_identity(*S.mean_over_sequences_is_T_times_token_mean())
    assert_identity(*S.mean_counting_ignored_is_scaled())


# -- near misses ---------------------------------------------------------------------------------


def test_prover_rejects_cross_entropy_on_probabilities():
    # The double-softmax bug: cross-entropy fed softmax(z) as if it were logits.
    z = logits(3)
    assert not identity_holds(S.cross_entropy(S.one_hot(1, 3), softmax(z)), -S.log_softmax(z)[1])


def test_prover_rejects_gradient_with_the_wrong_sign():
    z = logits(3)
    ce = S.cross_entropy(S.one_hot(0, 3), z)
    grad = sp.Matrix([sp.diff(ce, zi) for zi in z])
    assert not identity_holds(grad, S.one_hot(0, 3) - softmax(z))


def test_prover_rejects_row_lookup():
    W = matrix("W_emb", 2, 3)
    assert not identity_holds(W * S.one_hot(1, 3), W[:, 0])


def test_prover_rejects_temperature_multiplying():
    z = logits(3)
    t = sp.Symbol("T", positive=True)
    p = softmax(z * t)
    assert not identity_holds(sp.log(p[1] / p[0]), (z[1] - z[0]) / t)


# -- spec vs reference -----------------------------------------------------------------------------


def _values(M, x):
    return {s: v for s, v in zip(M, np.asarray(x, dtype=float).ravel(), strict=True)}


@pytest.mark.parametrize("seed", range(3))
def test_spec_cross_entropy_matches_reference(seed):
    rng = np.random.default_rng(seed)
    V, k, eps = 4, int(rng.integers(4)), 0.3
    z = logits(V)
    x = 2 * rng.standard_normal(V)
    for mass in ("uniform", "others"):
        spec = S.cross_entropy(S.smoothed_target(k, V, sp.Rational(3, 10), mass), z)
        value = float(spec.xreplace(_values(z, x)).evalf(30))
        got = ref.cross_entropy(x[None], np.array([k]), label_smoothing=eps, smoothing=mass)
        np.testing.assert_allclose(got, value, rtol=1e-12)
        grad = sp.Matrix([sp.diff(spec, zi) for zi in z]).xreplace(_values(z, x)).evalf(30)
        (g,) = ref.cross_entropy_vjp(
            1.0, x[None], np.array([k]), label_smoothing=eps, smoothing=mass
        )
        np.testing.assert_allclose(g[0], np.array(grad, dtype=float).ravel(), rtol=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_spec_embedding_and_head_match_reference(seed):
    rng = np.random.default_rng(seed)
    W = matrix("W_emb", 2, 3)
    Wv = rng.standard_normal((2, 3))
    k = int(rng.integers(3))
    lhs, _ = S.embedding_is_column_lookup(3, 2, k)
    spec = np.array(lhs.xreplace(_values(W, Wv)), dtype=float).ravel()
    np.testing.assert_array_equal(ref.embedding(np.array([k]), Wv)[0], spec)
    h, Wd, b = matrix("h", 2, 1), matrix("W_d", 3, 2), matrix("b_d", 3, 1)
    hv, Wdv, bv = rng.standard_normal(2), rng.standard_normal((3, 2)), rng.standard_normal(3)
    head, _ = S.lm_head_definition(3, 2)
    vals = {**_values(h, hv), **_values(Wd, Wdv), **_values(b, bv)}
    np.testing.assert_allclose(
        ref.lm_head(hv, Wdv, bv), np.array(head.xreplace(vals), dtype=float).ravel(), rtol=1e-14
    )


def test_spec_temperature_and_top_k_match_reference():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(4)
    z, t = logits(4), sp.Symbol("T", positive=True)
    spec = softmax(z / t).xreplace({**_values(z, x), t: sp.Rational(1, 2)}).evalf(30)
    got = ref.sampling_distribution(x, 0.5)
    np.testing.assert_allclose(got, np.array(spec, dtype=float).ravel(), rtol=1e-12)
    order = np.argsort(-x)
    lhs, _ = S.top_k_is_softmax_over_kept_logits(4, 2)
    spec = np.array(lhs.xreplace(_values(z, x[order])).evalf(30), dtype=float).ravel()
    np.testing.assert_allclose(ref.sampling_distribution(x[order], 1.0, top_k=2), spec, rtol=1e-12)
