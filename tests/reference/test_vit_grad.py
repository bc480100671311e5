"""reference.vit: vjps against finite differences (patch embedding, tokens, block, whole tiny
ViT), the conv identity, and bad input."""

import numpy as np
import pytest

from reference import equivariance, vit
from tests.gradcheck import check_gradient_entries, check_vjp


def _block(rng, d=4, f=6):
    return [
        *(rng.standard_normal((d, d)) / 2 for _ in range(4)),
        *(rng.standard_normal(d) / 3 for _ in range(3)),
        1 + 0.1 * rng.standard_normal(d), 0.1 * rng.standard_normal(d),
        rng.standard_normal((d, f)) / 2, rng.standard_normal(f) / 3,
        rng.standard_normal((f, d)) / 3, rng.standard_normal(d) / 3,
        1 + 0.1 * rng.standard_normal(d), 0.1 * rng.standard_normal(d),
    ]  # fmt: skip


def _embed(rng, c=2, h=4, w=6, p=2, d=4):
    n = (h // p) * (w // p)
    return [
        rng.standard_normal((2, c, h, w)),
        rng.standard_normal((c * p * p, d)),
        rng.standard_normal(d),
        rng.standard_normal(d),
        rng.standard_normal((n + 1, d)),
    ]


@pytest.mark.parametrize("p", [1, 2])
def test_patch_embedding_vjp(p):
    x, W_E, b_E, *_ = _embed(np.random.default_rng(0), p=p)
    check_gradient_entries(
        lambda *a: vit.patch_embedding(*a, patch=p),
        lambda d, *a: vit.patch_embedding_vjp(d, *a, patch=p),
        [x, W_E, b_E],
    )


def test_vit_embed_vjp():
    args = _embed(np.random.default_rng(1))
    check_vjp(
        lambda *a: vit.vit_embed(*a, patch=2),
        lambda d, *a: vit.vit_embed_vjp(d, *a, patch=2),
        args,
    )


@pytest.mark.parametrize("depth", [0, 1, 2])
def test_vit_vjp(depth):
    rng = np.random.default_rng(2)
    x, *embed = _embed(rng)
    blocks = [a for _ in range(depth) for a in _block(rng)]
    params = [*embed, *blocks, 1 + 0.1 * rng.standard_normal(4), 0.1 * rng.standard_normal(4)]
    check_vjp(
        lambda *a: vit.vit(*a, patch=2, n_heads=2),
        lambda d, *a: vit.vit_vjp(d, *a, patch=2, n_heads=2),
        [x, *params],
    )


def test_vit_block_is_the_pre_ln_block_with_gelu():
    rng = np.random.default_rng(3)
    z = rng.standard_normal((2, 5, 4))
    params = _block(rng)
    check_vjp(
        lambda *a: vit.vit_block(*a, n_heads=2),
        lambda d, *a: vit.vit_block_vjp(d, *a, n_heads=2),
        [z, *params],
    )


def test_patch_embedding_is_a_strided_conv():
    x, W_E, b_E, *_ = _embed(np.random.default_rng(4), c=3, h=6, w=4, p=2, d=5)
    conv = equivariance.conv2d(x, W_E.T.reshape(5, 3, 2, 2), b_E, stride=2)
    np.testing.assert_allclose(
        vit.patch_embedding(x, W_E, b_E, patch=2), conv.reshape(2, 5, -1).transpose(0, 2, 1)
    )


def test_cls_token_is_row_zero():
    x, W_E, b_E, cls, pos = _embed(np.random.default_rng(5))
    z = vit.vit_embed(x, W_E, b_E, cls, pos, patch=2)
    np.testing.assert_allclose(z[:, 0], np.broadcast_to(cls + pos[0], (2, 4)))


def test_bad_input():
    x, W_E, b_E, cls, pos = _embed(np.random.default_rng(6))
    with pytest.raises(ValueError, match="not divisible by the patch size"):
        vit.patch_embedding(x[..., :5], W_E, b_E, patch=2)
    with pytest.raises(ValueError, match="W_E"):
        vit.patch_embedding(x, W_E[:-1], b_E, patch=2)
    with pytest.raises(ValueError, match=r"pos"):
        vit.vit_embed(x, W_E, b_E, cls, pos[:-1], patch=2)
    with pytest.raises(ValueError, match="arrays"):
        vit.vit(x, W_E, b_E, cls, pos, np.ones(4), patch=2)


def test_flop_model_of_vit_b16():
    # ViT-B/16 at 224: 17.6 G multiply-adds, 86.6 M parameters (timm: 86,567,656).
    assert round(vit.vit_macs()["total"] / 1e9, 1) == 17.6
    assert vit.vit_params() == 86_567_656
