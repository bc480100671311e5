"""ViT mutants (stem vit: caught by conformance/test_vit.py)."""

import numpy as np

from conformance.adapters.numpy_reference import NumpyReference
from reference import vit
from reference.norm import layer_norm


def _embed_cls_last(x, W_E, b_E, cls, pos, patch):
    tokens = vit.patch_embedding(x, W_E, b_E, patch)
    cls_rows = np.broadcast_to(cls, (x.shape[0], 1, cls.shape[0])).astype(tokens.dtype)
    return np.concatenate([tokens, cls_rows], axis=1) + pos


class ClsAppended(NumpyReference):
    """The class token appended after the patches instead of prepended: [patches; cls] + E_pos
    (the model still reads a 'class' token, from the last row)."""

    name = "mutant-vit-cls-appended"

    def vit_embed(self, x, W_E, b_E, cls, pos, patch=2):
        return _embed_cls_last(x, W_E, b_E, cls, pos, patch)

    def vit(self, x, *params, patch=2, n_heads=1, eps=1e-6):
        embed, blocks, gamma, beta = vit._split_vit(params)
        z = _embed_cls_last(x, *embed, patch)
        for block in blocks:
            z = vit.vit_block(z, *block, n_heads=n_heads, eps=eps)
        return layer_norm(z, gamma, beta, eps)


class PositionAfterFirstBlock(NumpyReference):
    """E_pos added to the output of the first encoder block instead of to Z_0."""

    name = "mutant-vit-position-after-first-block"

    def vit(self, x, *params, patch=2, n_heads=1, eps=1e-6):
        (W_E, b_E, cls, pos), blocks, gamma, beta = vit._split_vit(params)
        z = vit.vit_embed(x, W_E, b_E, cls, np.zeros_like(pos), patch)
        for i, block in enumerate(blocks):
            z = vit.vit_block(z, *block, n_heads=n_heads, eps=eps)
            if i == 0:
                z = z + pos
        return layer_norm(z, gamma, beta, eps)
