"""Proofs of spec/vit.py, the wrong variants the ViT mutants implement, and the link to
reference.vit (patch embedding, tokens) and reference.equivariance (the strided conv)."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from reference import equivariance as ref_eq
from reference import vit as ref_vit
from spec import identity_holds, unproved_entries
from spec import vit as V
from spec.attention import matrix

IDENTITIES = [
    V.patch_embedding_is_strided_conv,
    V.token_sequence_definition,
    V.vit_block_definition,
]


@pytest.mark.parametrize("identity", IDENTITIES, ids=lambda f: f.__name__)
def test_identity(identity) -> None:
    bad = unproved_entries(*identity())
    assert not bad, f"not proved equal at flat entries: {bad[:3]}"


def test_patch_embedding_with_a_stride_smaller_than_the_kernel_is_not_patching() -> None:
    c, h, w, p, d = 1, 4, 4, 2, 1
    x = V.image("x", c, h, w)
    E, b = matrix("E", c * p * p, d), matrix("b", 1, d)
    kernel = [[[[E[dy * p + dx, 0] for dx in range(p)] for dy in range(p)]]]
    overlapping = V.conv2d_strided(x, kernel, b, 1)  # 9 overlapping windows, not 4 patches
    assert overlapping.shape != V.patch_embedding(x, E, b, p).shape


def test_cls_appended_is_not_the_token_sequence() -> None:
    # Mutant "cls appended instead of prepended".
    x = V.image("x", 1, 2, 4)
    E, b = matrix("E", 4, 2), matrix("b", 1, 2)
    cls, pos = matrix("cls", 1, 2), matrix("pos", 3, 2)
    appended = sp.Matrix.vstack(V.patch_embedding(x, E, b, 2), cls) + pos
    assert not identity_holds(appended, V.tokens(x, E, b, cls, pos, 2))


def test_reference_patch_embedding_is_the_lambdified_spec() -> None:
    c, h, w, p, d = 2, 4, 6, 2, 3
    rng = np.random.default_rng(0)
    x_sym = V.image("x", c, h, w)
    E, b = matrix("E", c * p * p, d), matrix("b", 1, d)
    cls, pos = matrix("cls", 1, d), matrix("pos", (h // p) * (w // p) + 1, d)
    symbols = [s for plane in x_sym for row in plane for s in row]
    symbols += [*E, *b, *cls, *pos]
    f = sp.lambdify(symbols, V.tokens(x_sym, E, b, cls, pos, p), modules="numpy")
    x = rng.standard_normal((1, c, h, w))
    WE, bE = rng.standard_normal((c * p * p, d)), rng.standard_normal(d)
    cl, po = rng.standard_normal(d), rng.standard_normal(pos.shape)
    want = np.asarray(f(*x.ravel(), *WE.ravel(), *bE, *cl, *po.ravel()), dtype=float)
    got = ref_vit.vit_embed(x, WE, bE, cl, po, patch=p)[0]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def test_reference_patch_embedding_is_the_reference_strided_conv() -> None:
    rng = np.random.default_rng(1)
    c, p, d = 3, 2, 4
    x = rng.standard_normal((2, c, 4, 6))
    WE, bE = rng.standard_normal((c * p * p, d)), rng.standard_normal(d)
    conv = ref_eq.conv2d(x, WE.T.reshape(d, c, p, p), bE, stride=p)  # (B, D, 2, 3)
    tokens = ref_vit.patch_embedding(x, WE, bE, patch=p)
    np.testing.assert_allclose(tokens, conv.reshape(2, d, -1).transpose(0, 2, 1), rtol=1e-12)
