"""ViT: patch embedding (== a convolution with kernel = stride = p), the token sequence
[cls; patches] + E_pos, the pre-LN encoder block, a whole tiny ViT; values and gradients."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from conformance.strategies import normal, vision_cases
from reference.equivariance import conv2d


def _dout(case, tokens, salt=20):
    return normal(case.seed + salt, (case.batch, tokens, case.d))


# -- patch embedding ----------------------------------------------------------------------------


@given(case=vision_cases())
def test_patch_embedding_values(impl, case):
    # x_p^n E + b for every p x p patch, patches row-major, flattened (c, dy, dx).
    impl.compare("patch_embedding", case.image(), *case.patch_params(), patch=case.patch)


@given(case=vision_cases(gradients=True))
def test_patch_embedding_vjp(impl, case):
    dout = _dout(case, case.n_patches())
    impl.compare_vjp("patch_embedding", dout, case.image(), *case.patch_params(), patch=case.patch)


@given(case=vision_cases())
def test_patch_embedding_is_strided_conv(impl, case):
    # Patching then x_p E equals a convolution with kernel = stride = p whose weight is E^T
    # reshaped to (D, C, p, p) (spec.vit.patch_embedding_is_strided_conv).
    x, W_E, b_E = impl.inputs(case.image(), *case.patch_params())
    p = case.patch
    (out,) = impl.run("patch_embedding", x, W_E, b_E, patch=p)
    weight = W_E.T.reshape(case.d, case.channels, p, p)
    conv = conv2d(x, weight, b_E, stride=p)  # float64, (B, D, H/p, W/p)
    conv_tokens = conv.reshape(case.batch, case.d, -1).transpose(0, 2, 1)
    impl.relation(
        "patch embedding vs strided conv",
        out,
        conv_tokens,
        lambda: (impl.baseline("patch_embedding", x, W_E, b_E, patch=p), conv_tokens),
    )


# -- the token sequence ---------------------------------------------------------------------------


@given(case=vision_cases())
def test_vit_embed_values(impl, case):
    # Z_0 = [x_cls; x_p^1 E; ...; x_p^N E] + E_pos.
    impl.compare("vit_embed", case.image(), *case.embed_params(), patch=case.patch)


@given(case=vision_cases(gradients=True))
def test_vit_embed_vjp(impl, case):
    dout = _dout(case, case.n_patches() + 1)
    impl.compare_vjp("vit_embed", dout, case.image(), *case.embed_params(), patch=case.patch)


@given(case=vision_cases())
def test_cls_token_is_first(impl, case):
    # Row 0 of every sequence is x_cls + E_pos[0], whatever the image: the class token is
    # prepended (not appended) and gets the first position embedding.
    x, W_E, b_E, cls, pos = impl.inputs(case.image(), *case.embed_params())
    (out,) = impl.run("vit_embed", x, W_E, b_E, cls, pos, patch=case.patch)
    want = np.broadcast_to(cls + pos[0], out[:, 0].shape)
    impl.relation(
        "row 0 vs x_cls + E_pos[0]",
        out[:, 0],
        want,
        lambda: (
            impl.baseline("vit_embed", x, W_E, b_E, cls, pos, patch=case.patch)[:, :, 0],
            want,
        ),
    )


# -- encoder block and the whole model ----------------------------------------------------------


@given(case=vision_cases(max_side=4))
def test_vit_block_values(impl, case):
    # Z' = Z + MSA(LN(Z)), Z'' = Z' + MLP(LN(Z')), GELU exact, LayerNorm eps 1e-6.
    z = normal(case.seed, (case.batch, case.n_patches() + 1, case.d))
    impl.compare("vit_block", z, *case.vit_block_params(), n_heads=case.n_heads)


@given(case=vision_cases(max_side=4, gradients=True))
def test_vit_block_vjp(impl, case):
    t = case.n_patches() + 1
    z = normal(case.seed, (case.batch, t, case.d))
    params = case.vit_block_params()
    impl.compare_vjp("vit_block", _dout(case, t), z, *params, n_heads=case.n_heads)


@given(case=vision_cases(max_side=8, square=True), depth=st.integers(1, 2))
def test_vit_values(impl, case, depth):
    # A whole tiny ViT: Z_0, depth pre-LN blocks, the final LayerNorm; (B, N + 1, D).
    params = case.vit_params(depth)
    impl.compare("vit", case.image(), *params, patch=case.patch, n_heads=case.n_heads)


@given(case=vision_cases(max_side=4, gradients=True, square=True), depth=st.integers(1, 2))
def test_vit_vjp(impl, case, depth):
    params = case.vit_params(depth)
    dout = _dout(case, case.n_patches() + 1)
    opts = {"patch": case.patch, "n_heads": case.n_heads}
    impl.compare_vjp("vit", dout, case.image(), *params, **opts)
