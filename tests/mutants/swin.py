"""Swin mutants (stem swin: caught by conformance/test_swin.py). Each one is a bug people make
when they write the shifted-window attention or patch merging by hand."""

import numpy as np

from conformance.adapters.numpy_reference import NumpyReference
from reference import swin
from reference.attention import merge_heads, split_heads
from reference.norm import layer_norm
from reference.softmax import softmax


def _window_attention(
    x, W_Q, W_K, W_V, W_O, b_q, b_v, b_o, table, n_heads=1, window=2, shift=0, direction=-1,
    undo=True, mask="regions", transposed=False,
):  # fmt: skip
    """reference.swin.window_attention (pad then shift) written out, with one knob per bug:
    direction of the cyclic shift (-1 is Swin's), undo (roll back after attention), mask
    ("regions" Swin's, "none", "unshifted": the regions of each token's position before the
    roll), transposed (the relative position index read as index[j, i])."""
    h, w = x.shape[1:3]
    m = window
    hp, wp = -(-h // m) * m, -(-w // m) * m
    sy, sx = swin.axis_shifts(hp, wp, m, shift)
    xp = np.pad(x, ((0, 0), (0, hp - h), (0, wp - w), (0, 0)))
    xw = swin.window_partition(np.roll(xp, (direction * sy, direction * sx), axis=(1, 2)), m)
    if mask == "regions":
        visible = swin.window_visible(hp, wp, m, shift)
    elif mask == "unshifted":
        regions = np.roll(swin.shift_regions(hp, wp, m, shift), (-sy, -sx), axis=(0, 1))
        ids = swin.window_partition(regions[None, :, :, None], m)[0, :, :, 0]
        visible = ids[:, :, None] == ids[:, None, :]
    else:
        visible = None
    index = swin.relative_position_index(m)
    bias = np.moveaxis(table[index.T if transposed else index], -1, 0)  # (nH, M², M²)
    q, k, v = (split_heads(xw @ W + bb, n_heads) for W, bb in
               ((W_Q, b_q), (W_K, 0), (W_V, b_v)))  # fmt: skip
    scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1]) + bias
    if visible is not None:
        scores = np.where(visible[None, :, None], scores, -np.inf)
    out = merge_heads(softmax(scores) @ v) @ W_O + b_o
    y = swin.window_reverse(out, hp, wp)
    if undo:
        y = np.roll(y, (-direction * sy, -direction * sx), axis=(1, 2))
    return y[:, :h, :w].astype(x.dtype)


class ShiftWrongDirection(NumpyReference):
    """torch.roll(x, (+s, +s)) before attention (and (-s, -s) after): the windows hold other
    tokens than Swin's region mask was built for."""

    name = "mutant-swin-shift-wrong-direction"

    def window_attention(self, *args, **options):
        return _window_attention(*args, **options, direction=+1)


class ShiftNotUndone(NumpyReference):
    """The cyclic shift is never rolled back: every SW-MSA output sits s tokens off."""

    name = "mutant-swin-shift-not-undone"

    def window_attention(self, *args, **options):
        return _window_attention(*args, **options, undo=False)


class MissingMask(NumpyReference):
    """SW-MSA without the attention mask: tokens rolled in from the opposite border attend to
    each other as if they were neighbours."""

    name = "mutant-swin-missing-mask"

    def window_attention(self, *args, **options):
        return _window_attention(*args, **options, mask="none")


class MaskOnUnshiftedGrid(NumpyReference):
    """The region ids taken at each token's position before the roll: the mask separates the
    wrong tokens."""

    name = "mutant-swin-mask-on-unshifted-grid"

    def window_attention(self, *args, **options):
        return _window_attention(*args, **options, mask="unshifted")


class RelativeIndexTransposed(NumpyReference):
    """The relative position bias read as table[index[j, i]]: the bias of the offset j - i
    instead of i - j (a transposed bias matrix)."""

    name = "mutant-swin-relative-index-transposed"

    def window_attention(self, *args, **options):
        return _window_attention(*args, **options, transposed=True)


class MergingNeighbourOrder(NumpyReference):
    """Patch merging concatenating the 2x2 neighbours row-major, x(2i,2j), x(2i,2j+1),
    x(2i+1,2j), x(2i+1,2j+1), instead of Swin's x0 = (2i,2j), x1 = (2i+1,2j), x2 = (2i,2j+1),
    x3 = (2i+1,2j+1): the LayerNorm does not care, the reduction weights do."""

    name = "mutant-swin-merging-neighbour-order"

    def patch_merging(self, x, gamma, beta, W_red, eps=1e-5):
        h, w = x.shape[1:3]
        x = np.pad(x, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)))
        parts = [x[:, 0::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 0::2], x[:, 1::2, 1::2]]
        merged = np.concatenate(parts, axis=-1)
        return (layer_norm(merged, gamma, beta, eps) @ W_red).astype(x.dtype)
