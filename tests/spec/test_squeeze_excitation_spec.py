"""Proofs of the squeeze-and-excitation identities and the link to the reference kernel."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from reference import squeeze_excitation as ref
from spec import identity_holds, unproved_entries
from spec import squeeze_excitation as S


@pytest.mark.parametrize(
    "identity",
    [
        S.squeeze_definition,
        S.gate_spatial_permutation_invariance,
        S.output_spatial_equivariance,
        S.input_gradient,
    ],
    ids=lambda f: f.__name__,
)
def test_identity(identity) -> None:
    bad = unproved_entries(*identity())
    assert not bad, bad[:3]


def test_prover_rejects_softmax_gate_and_channel_permutation() -> None:
    x = S.matrix("x", 2, 3)
    params = S.parameters(2, 1)
    w1, b1, w2, b2 = params
    u = w2 * (w1 * S.squeeze(x) + b1).applyfunc(lambda a: sp.Max(0, a)) + b2
    softmax = u.applyfunc(sp.exp) / sum(u.applyfunc(sp.exp))
    assert not identity_holds(softmax, S.gate(x, *params))
    # Permuting channels is not a symmetry: the weights mix them.
    swapped = sp.Matrix.vstack(x.row(1), x.row(0))
    assert not identity_holds(S.gate(swapped, *params), S.gate(x, *params))


def test_spec_matches_reference() -> None:
    rng = np.random.default_rng(0)
    c, cr, p = 3, 2, 4
    x = S.matrix("x", c, p)
    w1, b1, w2, b2 = S.parameters(c, cr)
    out = S.squeeze_excitation(x, w1, b1, w2, b2)
    symbols = [*x, *w1, *b1, *w2, *b2]
    f = sp.lambdify(symbols, out, modules="numpy")
    xv = rng.standard_normal((1, c, 2, 2))
    params = [
        rng.standard_normal((cr, c)),
        rng.standard_normal(cr),
        rng.standard_normal((c, cr)),
        rng.standard_normal(c),
    ]
    values = [*xv.reshape(c, p).ravel(), *(v for a in params for v in a.ravel())]
    spec_out = np.asarray(f(*values), dtype=np.float64).reshape(1, c, 2, 2)
    np.testing.assert_allclose(spec_out, ref.squeeze_excitation(xv, *params), rtol=1e-13)
