"""Vision Transformer: patch embedding, the token sequence [cls; patches] + E_pos, the pre-LN
encoder block, a whole tiny ViT (forward and vjp), and a FLOP model of whole ViT networks.

Lecture notes (ViT):
    Z_0 = [x_cls; x_p^1 E; ...; x_p^N E] + E_pos
    Z'_l = MSA(LN(Z_{l-1})) + Z_{l-1},   Z_l = MLP(LN(Z'_l)) + Z'_l,   GELU = x Φ(x)
spec/vit.py proves that the patch embedding is a convolution with kernel = stride = p.

Layout: images are channels-first x (B, C, H, W) (what a convolution takes). Patches are
numbered row-major over the (H/p) x (W/p) grid and flattened as (c, dy, dx), so E (C p², D) is
a conv weight (D, C, p, p) reshaped to (D, C p²) and transposed. Tokens are (B, N + 1, D) with
the class token first. The encoder block is reference.transformer.pre_ln_encoder_layer with
exact GELU (parameters W_Q, W_K, W_V, W_O, b_q, b_v, b_o, gamma1, beta1, W_1, b_1, W_2, b_2,
gamma2, beta2; no key bias); eps 1e-6 is timm's and HF ViT's LayerNorm eps (an option).

Bad input: an image whose H or W is not a multiple of p raises a ValueError (timm's PatchEmbed
asserts the same unless built with dynamic_img_pad=True, which zero-pads; nn.Conv2d with
stride p silently drops the remainder).
"""

from __future__ import annotations

import numpy as np

from reference.attention import sum_to
from reference.common import T, mm, store, weight_grad
from reference.norm import layer_norm_with_vjp
from reference.transformer import pre_ln_encoder_layer_with_vjp

N_BLOCK = 15  # W_Q, W_K, W_V, W_O, b_q, b_v, b_o, gamma1, beta1, W_1, b_1, W_2, b_2, gamma2, beta2


def _check_patches(x: np.ndarray, W_E: np.ndarray, b_E: np.ndarray, patch: int) -> None:
    if x.ndim != 4:
        raise ValueError(f"patch_embedding: x must be (B, C, H, W), got shape {x.shape}")
    _, c, h, w = x.shape
    if not isinstance(patch, int | np.integer) or patch < 1:
        raise ValueError(f"patch_embedding: patch size {patch!r} must be a positive int")
    if h % patch or w % patch:
        raise ValueError(
            f"patch_embedding: image H x W = {h} x {w} is not divisible by the patch size "
            f"{patch} (nnspec does not pad; timm's PatchEmbed asserts too unless "
            "dynamic_img_pad=True)"
        )
    if W_E.ndim != 2 or W_E.shape[0] != c * patch * patch or b_E.shape != (W_E.shape[1],):
        raise ValueError(
            f"patch_embedding: x {x.shape}, W_E {W_E.shape}, b_E {b_E.shape} do not fit "
            f"(need W_E (C p², D) = ({c * patch * patch}, D), b_E (D,))"
        )


def patchify(x: np.ndarray, patch: int) -> np.ndarray:
    """(B, C, H, W) -> (B, N, C p²): patch n row-major over the grid, flattened (c, dy, dx)."""
    b, c, h, w = x.shape
    p = patch
    x = x.reshape(b, c, h // p, p, w // p, p).transpose(0, 2, 4, 1, 3, 5)
    return x.reshape(b, (h // p) * (w // p), c * p * p)


def unpatchify(g: np.ndarray, c: int, h: int, w: int, patch: int) -> np.ndarray:
    """patchify^-1 (and its adjoint: a permutation)."""
    b, p = g.shape[0], patch
    g = g.reshape(b, h // p, w // p, c, p, p).transpose(0, 3, 1, 4, 2, 5)
    return g.reshape(b, c, h, w)


def patch_embedding(x, W_E, b_E, patch: int = 2) -> np.ndarray:
    """x_p^n E + b for every patch: (B, N, D)."""
    _check_patches(x, W_E, b_E, patch)
    return mm(patchify(x, patch), W_E) + b_E


def patch_embedding_vjp(dout, x, W_E, b_E, patch: int = 2):
    """(dx, dW_E, db_E)."""
    _check_patches(x, W_E, b_E, patch)
    dpatches = mm(dout, T(W_E))
    return (
        unpatchify(dpatches, *x.shape[1:], patch),
        weight_grad(patchify(x, patch), dout),
        sum_to(dout, 1),
    )


def _check_tokens(x, W_E, b_E, cls, pos, patch):
    _check_patches(x, W_E, b_E, patch)
    n = (x.shape[2] // patch) * (x.shape[3] // patch)
    d = W_E.shape[1]
    if cls.shape != (d,) or pos.shape != (n + 1, d):
        raise ValueError(
            f"vit_embed: cls {cls.shape} must be (D,) = ({d},) and pos {pos.shape} must be "
            f"(N + 1, D) = ({n + 1}, {d})"
        )


def vit_embed(x, W_E, b_E, cls, pos, patch: int = 2) -> np.ndarray:
    """Z_0 = [x_cls; x_p^1 E; ...; x_p^N E] + E_pos: (B, N + 1, D)."""
    _check_tokens(x, W_E, b_E, cls, pos, patch)
    tokens = patch_embedding(x, W_E, b_E, patch)  # (B, N, D)
    cls_rows = np.broadcast_to(cls, (x.shape[0], 1, cls.shape[0])).astype(tokens.dtype)
    return np.concatenate([cls_rows, tokens], axis=1) + pos


def vit_embed_vjp(dout, x, W_E, b_E, cls, pos, patch: int = 2):
    """(dx, dW_E, db_E, dcls, dpos)."""
    _check_tokens(x, W_E, b_E, cls, pos, patch)
    dx, dW_E, db_E = patch_embedding_vjp(dout[:, 1:], x, W_E, b_E, patch)
    return dx, dW_E, db_E, dout[:, 0].sum(axis=0), dout.sum(axis=0)


def vit_block(z, *params, n_heads: int = 1, eps: float = 1e-6) -> np.ndarray:
    """Z' = Z + MSA(LN1(Z)), Z'' = Z' + MLP(LN2(Z')) with exact GELU: (B, T, D)."""
    return vit_block_with_vjp(z, *params, n_heads=n_heads, eps=eps)[0]


def vit_block_with_vjp(z, *params, n_heads: int = 1, eps: float = 1e-6):
    return pre_ln_encoder_layer_with_vjp(z, *params, n_heads=n_heads, activation="gelu", eps=eps)


def vit_block_vjp(dout, z, *params, n_heads: int = 1, eps: float = 1e-6):
    return vit_block_with_vjp(z, *params, n_heads=n_heads, eps=eps)[1](dout)


def _split_vit(params):
    if len(params) < 6 or (len(params) - 6) % N_BLOCK:
        raise ValueError(
            f"vit: expected W_E, b_E, cls, pos, {N_BLOCK} arrays per block, gamma, beta "
            f"(6 + {N_BLOCK} * depth arrays), got {len(params)}"
        )
    depth = (len(params) - 6) // N_BLOCK
    blocks = [params[4 + i * N_BLOCK : 4 + (i + 1) * N_BLOCK] for i in range(depth)]
    return params[:4], blocks, params[-2], params[-1]


def vit(x, *params, patch: int = 2, n_heads: int = 1, eps: float = 1e-6) -> np.ndarray:
    """A whole ViT encoder: Z_0 = [cls; patches] + E_pos, depth pre-LN blocks, a final
    LayerNorm (timm's forward_features, HF ViTModel's last_hidden_state): (B, N + 1, D).
    params = W_E, b_E, cls, pos, then 15 arrays per block, then the final gamma, beta."""
    return vit_with_vjp(x, *params, patch=patch, n_heads=n_heads, eps=eps)[0]


def vit_with_vjp(x, *params, patch: int = 2, n_heads: int = 1, eps: float = 1e-6):
    """(vit(x, ...), dout -> (dx, then one gradient per parameter in vit's order)): one forward,
    every block's activations saved for the pullback."""
    embed, blocks, gamma, beta = _split_vit(params)
    z = store(vit_embed(x, *embed, patch=patch))
    block_pullbacks = []
    for block in blocks:
        z, block_pullback = vit_block_with_vjp(z, *block, n_heads=n_heads, eps=eps)
        z = store(z)
        block_pullbacks.append(block_pullback)
    out, norm_pullback = layer_norm_with_vjp(z, gamma, beta, eps)

    def pullback(dout: np.ndarray) -> tuple[np.ndarray, ...]:
        dz, dgamma, dbeta = norm_pullback(dout)
        block_grads = []
        for block_pullback in reversed(block_pullbacks):
            dz, *grads = block_pullback(store(dz))
            block_grads = grads + block_grads
        dembed = vit_embed_vjp(store(dz), x, *embed, patch=patch)
        return (*dembed, *block_grads, dgamma, dbeta)

    return out, pullback


def vit_vjp(dout, x, *params, patch: int = 2, n_heads: int = 1, eps: float = 1e-6):
    """(dx, then one gradient per parameter in vit's order)."""
    return vit_with_vjp(x, *params, patch=patch, n_heads=n_heads, eps=eps)[1](dout)


# -- FLOP model ------------------------------------------------------------------------------------


def vit_macs(
    img_size: int = 224,
    patch_size: int = 16,
    in_chans: int = 3,
    embed_dim: int = 768,
    depth: int = 12,
    num_heads: int = 12,
    mlp_ratio: float = 4.0,
    num_classes: int = 1000,
) -> dict[str, int]:
    """Multiply-adds of a whole ViT (timm's VisionTransformer with a class token, head on the
    class token) by part: patch embedding N (C p²) D; per block, over T = N + 1 tokens, the
    projections 4 T D², the attention products 2 T² D, the MLP 2 T D F; the head D classes.
    LayerNorm, GELU, softmax, biases and the position embedding are not counted (the
    convention of spec/swin.py)."""
    del num_heads  # heads do not change the count (spec.swin.heads_do_not_change_complexity)
    n = (img_size // patch_size) ** 2
    t, d, f = n + 1, embed_dim, int(embed_dim * mlp_ratio)
    macs = {
        "patch_embed": n * in_chans * patch_size**2 * d,
        "attention": depth * (4 * t * d * d + 2 * t * t * d),
        "mlp": depth * 2 * t * d * f,
        "head": d * num_classes,
    }
    macs["total"] = sum(macs.values())
    return macs


def vit_params(
    img_size: int = 224,
    patch_size: int = 16,
    in_chans: int = 3,
    embed_dim: int = 768,
    depth: int = 12,
    num_heads: int = 12,
    mlp_ratio: float = 4.0,
    num_classes: int = 1000,
) -> int:
    """Parameter count of timm's VisionTransformer of this config (qkv with bias, cls token,
    learned position embedding, final LayerNorm, linear head)."""
    del num_heads
    n = (img_size // patch_size) ** 2
    d, f = embed_dim, int(embed_dim * mlp_ratio)
    embed = in_chans * patch_size**2 * d + d + d + (n + 1) * d
    block = 2 * d + (3 * d * d + 3 * d) + (d * d + d) + 2 * d + (d * f + f) + (f * d + d)
    return embed + depth * block + 2 * d + d * num_classes + num_classes
