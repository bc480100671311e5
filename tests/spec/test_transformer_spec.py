"""Proofs of spec/transformer.py, the post-LN vs pre-LN distinction the LN-placement mutant
relies on, and the link to reference.transformer (the layers lambdified at tiny sizes)."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from reference import transformer as ref_transformer
from spec import identity_holds, unproved_entries
from spec import transformer as TR
from spec.attention import matrix
from tests.spec.test_spec_vs_reference import TOL


def assert_identity(lhs, rhs) -> None:
    bad = unproved_entries(lhs, rhs)
    assert not bad, f"not proved equal at flat entries: {bad[:3]}"


def concrete(M: sp.MatrixBase) -> sp.Matrix:
    """The generic activation replaced by tanh, so that a non-identity has a numeric witness
    (spec.is_zero evaluates at a point; an undefined function has no value there)."""
    return M.applyfunc(lambda e: e.replace(TR.act, sp.tanh))


def test_pre_ln_rows_do_not_have_zero_mean() -> None:
    # What tells the LN-placement mutant (tests/mutants/transformer.py) from the notes' layer:
    # a pre-LN block ends with a residual sum, whose tokens need not have mean 0.
    X, p = matrix("X", 1, 3), TR.Params(3)
    p.ln[1] = (sp.ones(1, 3), sp.zeros(1, 3))
    out = concrete(TR.encoder_layer(X, p, norm_first=True))
    assert not identity_holds(out * sp.ones(3, 1), sp.zeros(1, 1))


def test_post_ln_and_pre_ln_differ() -> None:
    X, p = matrix("X", 1, 3), TR.Params(3)
    post, pre = TR.encoder_layer(X, p), TR.encoder_layer(X, p, norm_first=True)
    assert not identity_holds(concrete(post), concrete(pre))


# -- spec <-> reference ---------------------------------------------------------------------------
#
# The layers' expressions grow too fast to lambdify (LayerNorm repeats its input in the mean and
# the variance: one output entry of a 2-token encoder layer prints to ~5M characters), so the
# builders are evaluated at a point instead: the same formulas on Matrices of 30-digit numbers.
# Width 4 with one head keeps the scale 1/√d_k = 1/2 rational, so every step evaluates.


def _numeric(a: np.ndarray) -> sp.Matrix:
    a = np.atleast_2d(a)
    return sp.Matrix(a.shape[0], a.shape[1], lambda i, j: sp.Float(float(a[i, j]), 30))


def _values(rng, p: TR.Params, cross: bool = False):
    """Random values put into p (as exact numbers, ReLU as the activation), and the reference's
    parameter arrays (zero attention biases: the spec has none)."""
    e = p.e
    attn = [rng.standard_normal((e, e)) / np.sqrt(e) for _ in range(4)]
    ca = [rng.standard_normal((e, e)) / np.sqrt(e) for _ in range(4)]
    ln = [(1 + 0.2 * rng.standard_normal(e), 0.2 * rng.standard_normal(e)) for _ in range(3)]
    f = p.ffn[0].cols
    ffn = (
        rng.standard_normal((e, f)),
        rng.standard_normal(f),
        rng.standard_normal((f, e)),
        rng.standard_normal(e),
    )
    p.attn = [_numeric(w) for w in attn]
    p.cross = [_numeric(w) for w in ca]
    p.ln = [(_numeric(g), _numeric(b)) for g, b in ln]
    p.ffn = tuple(_numeric(w) for w in ffn)
    p.eps = sp.Float(1e-5, 30)
    p.act = lambda z: sp.Max(z, 0)
    zeros = [np.zeros(e)] * 3
    encoder = (*attn, *zeros, *ln[0], *ffn, *ln[1])
    decoder = (*attn, *zeros, *ln[0], *ca, *zeros, *ln[1], *ffn, *ln[2])
    return decoder if cross else encoder


def _float(M: sp.MatrixBase) -> np.ndarray:
    return np.array(M.evalf(20).tolist(), dtype=np.float64)


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_layer_matches_reference(norm_first) -> None:
    rng = np.random.default_rng(4)
    p = TR.Params(4, 2)
    params = _values(rng, p)
    x = rng.standard_normal((2, 4))
    spec = _float(TR.encoder_layer(_numeric(x), p, norm_first=norm_first))
    ref = ref_transformer.encoder_layer(x, *params, eps=1e-5, norm_first=norm_first)
    np.testing.assert_allclose(spec, ref, **TOL)


def test_decoder_layer_matches_reference() -> None:
    rng = np.random.default_rng(5)
    p = TR.Params(4, 2)
    params = _values(rng, p, cross=True)
    y, m = rng.standard_normal((3, 4)), rng.standard_normal((2, 4))
    spec = _float(TR.decoder_layer(_numeric(y), _numeric(m), p))
    np.testing.assert_allclose(ref_transformer.decoder_layer(y, m, *params), spec, **TOL)
