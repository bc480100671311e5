"""Swin Transformer blocks: window partition, W-MSA / SW-MSA with relative position bias, the
Swin block, patch merging (forward and vjp), and a FLOP model of whole Swin networks.

Lecture notes (Swin): ① window-based attention, Ω(W-MSA) = 4hwC² + 2M²hwC instead of
Ω(MSA) = 4hwC² + 2(hw)²C; ② shifted windows (window size fixed, shifted by M/2); ③ patch
merging "like pooling". spec/swin.py proves the identities these kernels implement.

Layout: feature maps are channels-last x (B, H, W, C) (timm's and torchvision's Swin layout;
HF's SwinLayer takes the same tokens flattened to (B, H W, C)). Windows are M x M blocks,
numbered row-major, tokens row-major inside (window_partition). Parameters (the notes' X W
convention, as reference.attention.mha):
    window attention  W_Q, W_K, W_V, W_O (C, C), b_q, b_v, b_o (C,), table ((2M-1)², n_heads)
    Swin block        gamma1, beta1 (C,), the 8 attention arrays, gamma2, beta2 (C,),
                      W_1 (C, F), b_1 (F,), W_2 (F, C), b_2 (C,)   (timm's order: norm1, attn,
                      norm2, mlp)
    patch merging     gamma, beta (4C,), W_red (4C, C_out) without bias
There is no key bias: it adds q_i·b_k to a whole row of scores, which softmax ignores
(reference.attention); adapters set the library's key bias to zero.

Shifted windows: x is rolled by -shift on both axes (torch.roll(x, (-s, -s))), windows attend
under Swin's region mask (tokens that were not neighbours before the roll may not attend to
each other), and the result is rolled back by +shift. An axis along which the (padded) map
holds a single window is not shifted (timm's and torchvision's rule; HF's SwinLayer, like the
original Swin code, drops the shift on both axes as soon as min(H, W) <= M: the declared
variant swin.shift_rule=both_axes). nnspec masks with -inf (weights exactly
0); implementations add -100, whose weights exp(-100) ≈ 4e-44 are zero next to the visible
ones in every dtype.

Padding (H or W not a multiple of M): as Swin implementations do, the block's attention input
(the LayerNorm output) is zero-padded at the bottom and right to multiples of M, the padded
tokens take part in the attention as keys (they are not masked: Swin's, timm's, torchvision's
and HF's behaviour), and the output is cropped back to H x W. The order of pad and shift is a
declared variant (conformance/variants.py swin.pad_order): "pad_then_shift" (canonical: the
original Swin detection code, torchvision, HF) pads first and rolls the padded map;
"shift_then_pad" (timm 1.0) rolls the H x W map and then pads. They agree when M divides H
and W.

Bad input: a window larger than the feature map (M > H or M > W) is refused with a ValueError.
(timm and HF clamp the window to the feature map and drop the shift; torchvision pads the map
up to one window and drops the shift: three different layers, none of them the notes' window
of size M.) An odd feature map for patch merging is zero-padded at the bottom/right to even
size, as timm, torchvision and HF do.
"""

from __future__ import annotations

import numpy as np

from reference.attention import merge_heads, split_heads, sum_to
from reference.common import T, mm, store, weight_grad
from reference.norm import layer_norm_with_vjp
from reference.softmax import softmax, softmax_with_vjp
from reference.transformer import feed_forward_with_vjp

PAD_ORDERS = ("pad_then_shift", "shift_then_pad")

# -- windows ---------------------------------------------------------------------------------------


def window_partition(x: np.ndarray, m: int) -> np.ndarray:
    """(B, H, W, C) -> (B, nW, M*M, C): windows row-major, tokens row-major inside."""
    b, h, w, c = x.shape
    if h % m or w % m:
        raise ValueError(f"window_partition: H, W = {h}, {w} are not multiples of M = {m}")
    x = x.reshape(b, h // m, m, w // m, m, c).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(b, (h // m) * (w // m), m * m, c)


def window_reverse(windows: np.ndarray, h: int, w: int) -> np.ndarray:
    """(B, nW, M*M, C) -> (B, H, W, C): window_partition^-1."""
    b, n_windows, mm_, c = windows.shape
    m = round(np.sqrt(mm_))
    if m * m != mm_ or n_windows != (h // m) * (w // m) or h % m or w % m:
        raise ValueError(
            f"window_reverse: windows {windows.shape} do not tile an H x W = {h} x {w} map"
        )
    x = windows.reshape(b, h // m, w // m, m, m, c).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h, w, c)


def relative_position_index(m: int) -> np.ndarray:
    """(M², M²) rows of the (2M-1)² table: (y_i - y_j + M - 1)(2M - 1) + x_i - x_j + M - 1."""
    y, x = np.divmod(np.arange(m * m), m)
    dy = y[:, None] - y[None, :] + m - 1
    dx = x[:, None] - x[None, :] + m - 1
    return dy * (2 * m - 1) + dx


def relative_position_bias(table: np.ndarray, m: int) -> np.ndarray:
    """((2M-1)², n_heads) -> (n_heads, M², M²): bias[h, i, j] = table[index[i, j], h]."""
    return np.moveaxis(table[relative_position_index(m)], -1, 0)


def axis_shifts(hp: int, wp: int, m: int, s: int) -> tuple[int, int]:
    """The shift on each axis of an Hp x Wp (padded) map: none along an axis that holds a
    single window (Swin, timm, torchvision: "no need to shift"; there every token of the window
    is a neighbour of every other)."""
    return (s if hp > m else 0), (s if wp > m else 0)


SHIFT_RULES = ("per_axis", "both_axes")


def effective_shift(h: int, w: int, m: int, s: int, shift_rule: str = "per_axis") -> int:
    """The shift the layer applies: s, except under shift_rule "both_axes" (HF's SwinLayer, the
    original Swin code) where a map with min(H, W) <= M gets none on either axis; under
    "per_axis" (timm, torchvision, nnspec) axis_shifts drops it only along such an axis."""
    if shift_rule not in SHIFT_RULES:
        raise ValueError(f"shift_rule {shift_rule!r} is not one of {SHIFT_RULES}")
    return 0 if shift_rule == "both_axes" and min(h, w) <= m else s


def shift_regions(hp: int, wp: int, m: int, s: int) -> np.ndarray:
    """(Hp, Wp) region id of each token of the rolled map (Swin's img_mask): rows split at
    Hp - M and Hp - s_y, columns at Wp - M and Wp - s_x; nine regions."""

    def band(n: int, shift: int) -> np.ndarray:
        r = np.arange(n)
        return np.where(r < n - m, 0, np.where(r < n - shift, 1, 2))

    sy, sx = axis_shifts(hp, wp, m, s)
    return band(hp, sy)[:, None] * 3 + band(wp, sx)[None, :]


def window_visible(hp: int, wp: int, m: int, s: int) -> np.ndarray | None:
    """Boolean (nW, M², M²), True where query i of a window may attend to key j (same
    region); None without a shift (W-MSA: every key of the window)."""
    if axis_shifts(hp, wp, m, s) == (0, 0):
        return None
    regions = shift_regions(hp, wp, m, s)[None, :, :, None]  # (1, Hp, Wp, 1)
    ids = window_partition(regions, m)[0, :, :, 0]  # (nW, M²)
    return ids[:, :, None] == ids[:, None, :]


def _check_window(where: str, x: np.ndarray, m: int, s: int, pad_order: str) -> None:
    if x.ndim != 4:
        raise ValueError(f"{where}: x must be (B, H, W, C), got shape {x.shape}")
    h, w = x.shape[1:3]
    if not isinstance(m, int | np.integer) or m < 1:
        raise ValueError(f"{where}: window M = {m!r} must be a positive int")
    if m > h or m > w:
        raise ValueError(
            f"{where}: window M = {m} is larger than the feature map H x W = {h} x {w} "
            "(timm and HF clamp the window to the map and drop the shift, torchvision pads "
            "the map to one window; nnspec refuses: pass window <= min(H, W))"
        )
    if not 0 <= s < m:
        raise ValueError(f"{where}: shift {s} must be in [0, M) = [0, {m})")
    if pad_order not in PAD_ORDERS:
        raise ValueError(f"{where}: pad_order {pad_order!r} is not one of {PAD_ORDERS}")


def _padded(n: int, m: int) -> int:
    return -(-n // m) * m


def to_windows(x: np.ndarray, m: int, s: int, pad_order: str = "pad_then_shift") -> np.ndarray:
    """(B, H, W, C) -> (B, nW, M², C): zero-pad to multiples of M and roll by -s (in the order
    pad_order), then cut into windows. A linear map; from_windows is its adjoint."""
    h, w = x.shape[1:3]
    hp, wp = _padded(h, m), _padded(w, m)
    sy, sx = axis_shifts(hp, wp, m, s)
    pad = ((0, 0), (0, hp - h), (0, wp - w), (0, 0))
    if pad_order == "pad_then_shift":
        x = np.roll(np.pad(x, pad), (-sy, -sx), axis=(1, 2))
    else:
        x = np.pad(np.roll(x, (-sy, -sx), axis=(1, 2)), pad)
    return window_partition(x, m)


def from_windows(win: np.ndarray, h: int, w: int, s: int, pad_order="pad_then_shift"):
    """(B, nW, M², C) -> (B, H, W, C): window_reverse, roll back by +s and crop (the adjoint
    of to_windows, and its inverse on the H x W tokens)."""
    m = round(np.sqrt(win.shape[2]))
    hp, wp = _padded(h, m), _padded(w, m)
    sy, sx = axis_shifts(hp, wp, m, s)
    x = window_reverse(win, hp, wp)
    if pad_order == "pad_then_shift":
        return np.roll(x, (sy, sx), axis=(1, 2))[:, :h, :w]
    return np.roll(x[:, :h, :w], (sy, sx), axis=(1, 2))


def _scale(d: int, dtype) -> np.ndarray:
    return np.asarray(1.0 / np.sqrt(d), dtype=dtype)


def _attention_scores(q, k, table, m, visible):
    """(B, nW, nH, M², M²) scores q k^T / sqrt(d) + relative position bias, -inf where hidden."""
    scores = mm(q, T(k)) * _scale(q.shape[-1], q.dtype)
    scores = scores + relative_position_bias(table, m).astype(q.dtype)
    if visible is not None:
        scores = np.where(visible[None, :, None], scores, -np.inf).astype(q.dtype)
    return scores


def _check_attention(where, x, W_Q, W_K, W_V, W_O, b_q, b_v, b_o, table, n_heads, m):
    c = x.shape[-1]
    shapes = (
        f"x {x.shape}, W_Q {W_Q.shape}, W_K {W_K.shape}, W_V {W_V.shape}, W_O {W_O.shape}, "
        f"b_q {b_q.shape}, b_v {b_v.shape}, b_o {b_o.shape}, table {table.shape}, "
        f"n_heads {n_heads}, window {m}"
    )
    ok = (
        W_Q.shape == W_K.shape == W_V.shape == W_O.shape == (c, c)
        and b_q.shape == b_v.shape == b_o.shape == (c,)
        and table.shape == ((2 * m - 1) ** 2, n_heads)
    )
    if not ok:
        raise ValueError(
            f"{where}: inconsistent shapes (need W (C, C), b (C,), table ((2M-1)², n_heads)): "
            f"{shapes}"
        )
    if not isinstance(n_heads, int | np.integer) or n_heads < 1 or c % n_heads:
        raise ValueError(f"{where}: C = {c} is not divisible by n_heads = {n_heads}: {shapes}")


def window_attention(
    x: np.ndarray,
    W_Q: np.ndarray,
    W_K: np.ndarray,
    W_V: np.ndarray,
    W_O: np.ndarray,
    b_q: np.ndarray,
    b_v: np.ndarray,
    b_o: np.ndarray,
    table: np.ndarray,
    n_heads: int = 1,
    window: int = 2,
    shift: int = 0,
    pad_order: str = "pad_then_shift",
    shift_rule: str = "per_axis",
) -> np.ndarray:
    """W-MSA (shift = 0) or SW-MSA (shift = floor(M/2) in Swin) with relative position bias
    on a (B, H, W, C) map; (B, H, W, C)."""
    return window_attention_with_vjp(
        x, W_Q, W_K, W_V, W_O, b_q, b_v, b_o, table, n_heads, window, shift, pad_order, shift_rule
    )[0]


def window_attention_with_vjp(
    x: np.ndarray,
    W_Q: np.ndarray,
    W_K: np.ndarray,
    W_V: np.ndarray,
    W_O: np.ndarray,
    b_q: np.ndarray,
    b_v: np.ndarray,
    b_o: np.ndarray,
    table: np.ndarray,
    n_heads: int = 1,
    window: int = 2,
    shift: int = 0,
    pad_order: str = "pad_then_shift",
    shift_rule: str = "per_axis",
):
    """(window_attention(x, ...), dout -> (dx, dW_Q, dW_K, dW_V, dW_O, db_q, db_v, db_o,
    dtable)): one forward, its activations saved for the pullback."""
    _check_window("window_attention", x, window, shift, pad_order)
    _check_attention("window_attention", x, W_Q, W_K, W_V, W_O, b_q, b_v, b_o, table, n_heads,
                     window)  # fmt: skip
    h, w = x.shape[1:3]
    shift = effective_shift(h, w, window, shift, shift_rule)
    m = window
    xw = to_windows(x, m, shift, pad_order)  # (B, nW, M², C)
    visible = window_visible(_padded(h, m), _padded(w, m), m, shift)
    q = store(mm(xw, W_Q) + b_q)  # (B, nW, M², C)
    k = store(mm(xw, W_K))
    v = store(mm(xw, W_V) + b_v)
    qh, kh, vh = (split_heads(a, n_heads) for a in (q, k, v))  # (B, nW, nH, M², d)
    alpha, softmax_pullback = softmax_with_vjp(_attention_scores(qh, kh, table, m, visible))
    concat = store(merge_heads(mm(alpha, vh)))  # (B, nW, M², C)

    def pullback(dout: np.ndarray) -> tuple[np.ndarray, ...]:
        # out = from_windows(concat W_O + b_o): its adjoint is to_windows
        dy = to_windows(dout, m, shift, pad_order)  # (B, nW, M², C)
        dW_O = weight_grad(concat, dy)
        db_o = sum_to(dy, 1)
        dheads = split_heads(store(mm(dy, T(W_O))), n_heads)  # (B, nW, nH, M², d)
        dalpha = mm(dheads, T(vh))
        dvh = mm(T(alpha), dheads)
        (dscores,) = softmax_pullback(dalpha)
        if visible is not None:
            dscores = np.where(visible[None, :, None], dscores, 0).astype(dscores.dtype)
        # bias[h, i, j] = table[index[i, j], h]: scatter-add the score gradients into the table
        dbias = dscores.reshape(-1, *dscores.shape[-3:]).sum(axis=0)  # (nH, M², M²)
        dtable = np.zeros_like(table)
        np.add.at(dtable, relative_position_index(m).ravel(), dbias.reshape(n_heads, -1).T)
        scale = _scale(qh.shape[-1], qh.dtype)
        dq = store(merge_heads(mm(dscores, kh) * scale))
        dk = store(merge_heads(mm(T(dscores), qh) * scale))
        dv = store(merge_heads(dvh))
        dxw = mm(dq, T(W_Q)) + mm(dk, T(W_K)) + mm(dv, T(W_V))
        return (
            from_windows(dxw, h, w, shift, pad_order),
            weight_grad(xw, dq),
            weight_grad(xw, dk),
            weight_grad(xw, dv),
            dW_O,
            sum_to(dq, 1),
            sum_to(dv, 1),
            db_o,
            dtable,
        )

    return from_windows(mm(concat, W_O) + b_o, h, w, shift, pad_order), pullback


def window_attention_vjp(dout: np.ndarray, x: np.ndarray, *params, **options):
    """(dx, dW_Q, dW_K, dW_V, dW_O, db_q, db_v, db_o, dtable)."""
    return window_attention_with_vjp(x, *params, **options)[1](dout)


def sw_msa_full(x, W_Q, W_K, W_V, W_O, b_q, b_v, b_o, table, n_heads=1, window=2, shift=1):
    """SW-MSA without roll or windows (H, W multiples of M): full attention over all H W
    tokens under the region-id mask and the bias of the tokens' own offsets
    (spec.swin.sw_msa_explicit). The independent formulation the properties compare with."""
    b, h, w, c = x.shape
    m = window
    sy, sx = axis_shifts(h, w, m, shift)
    y, xx = np.divmod(np.arange(h * w), w)
    ids = np.stack([((y - sy) % h) // m, y < sy, ((xx - sx) % w) // m, xx < sx], axis=-1)
    visible = (ids[:, None, :] == ids[None, :, :]).all(axis=-1)  # (HW, HW)
    dy, dx = y[:, None] - y[None, :], xx[:, None] - xx[None, :]
    near = (np.abs(dy) < m) & (np.abs(dx) < m)
    index = np.where(near, (dy + m - 1) * (2 * m - 1) + dx + m - 1, 0)
    bias = np.moveaxis(table[index], -1, 0)  # (nH, HW, HW)
    tokens = x.reshape(b, h * w, c)
    q, k, v = (split_heads(mm(tokens, W) + bb, n_heads) for W, bb in
               ((W_Q, b_q), (W_K, 0), (W_V, b_v)))  # fmt: skip
    scores = mm(q, T(k)) * _scale(q.shape[-1], q.dtype) + bias
    scores = np.where(visible, scores, -np.inf)
    out = merge_heads(mm(softmax(scores), v))
    return (mm(out, W_O) + b_o).reshape(b, h, w, c)


# -- Swin block ------------------------------------------------------------------------------------

N_BLOCK = 2 + 8 + 2 + 4  # norm1, attention (with table), norm2, mlp


def _split_block(params):
    if len(params) != N_BLOCK:
        raise ValueError(f"swin_block: expected {N_BLOCK} parameter arrays, got {len(params)}")
    g1, b1 = params[0:2]
    attn = params[2:10]
    g2, b2 = params[10:12]
    ffn = params[12:16]
    return g1, b1, attn, g2, b2, ffn


def swin_block(
    x: np.ndarray,
    *params: np.ndarray,
    n_heads: int = 1,
    window: int = 2,
    shift: int = 0,
    eps: float = 1e-5,
    pad_order: str = "pad_then_shift",
    shift_rule: str = "per_axis",
) -> np.ndarray:
    """x' = x + (S)W-MSA(LN1(x)), out = x' + MLP(LN2(x')) with GELU (exact); (B, H, W, C)."""
    return swin_block_with_vjp(
        x, *params, n_heads=n_heads, window=window, shift=shift, eps=eps, pad_order=pad_order,
        shift_rule=shift_rule,
    )[0]  # fmt: skip


def swin_block_with_vjp(
    x: np.ndarray,
    *params: np.ndarray,
    n_heads: int = 1,
    window: int = 2,
    shift: int = 0,
    eps: float = 1e-5,
    pad_order: str = "pad_then_shift",
    shift_rule: str = "per_axis",
):
    """(swin_block(x, ...), dout -> (dx, then one gradient per parameter in swin_block's
    order)): one forward, its activations saved for the pullback."""
    g1, b1, attn, g2, b2, ffn = _split_block(params)
    opts = {"n_heads": n_heads, "window": window, "shift": shift, "pad_order": pad_order,
            "shift_rule": shift_rule}  # fmt: skip
    n1, norm1_pullback = layer_norm_with_vjp(x, g1, b1, eps)
    a, attention_pullback = window_attention_with_vjp(store(n1), *attn, **opts)
    h1 = store(x + store(a))
    n2, norm2_pullback = layer_norm_with_vjp(h1, g2, b2, eps)
    f, mlp_pullback = feed_forward_with_vjp(store(n2), *ffn, activation="gelu")

    def pullback(dout: np.ndarray) -> tuple[np.ndarray, ...]:
        dn2, *dffn = mlp_pullback(dout)
        dh1_ln, dg2, db2 = norm2_pullback(store(dn2))
        dh1 = store(dout + store(dh1_ln))
        dn1, *dattn = attention_pullback(dh1)
        dx_ln, dg1, db1 = norm1_pullback(store(dn1))
        return (dh1 + store(dx_ln), dg1, db1, *dattn, dg2, db2, *dffn)

    return h1 + store(f), pullback


def swin_block_vjp(dout: np.ndarray, x: np.ndarray, *params: np.ndarray, **options):
    """(dx, then one gradient per parameter in swin_block's order)."""
    return swin_block_with_vjp(x, *params, **options)[1](dout)


# -- patch merging ---------------------------------------------------------------------------------


def _check_merging(x, gamma, beta, W_red):
    if x.ndim != 4:
        raise ValueError(f"patch_merging: x must be (B, H, W, C), got shape {x.shape}")
    c = x.shape[-1]
    if (
        gamma.shape != (4 * c,)
        or beta.shape != (4 * c,)
        or W_red.ndim != 2
        or (W_red.shape[0] != 4 * c)
    ):
        raise ValueError(
            f"patch_merging: x {x.shape}, gamma {gamma.shape}, beta {beta.shape}, W_red "
            f"{W_red.shape} do not fit C = {c} (need gamma, beta (4C,), W_red (4C, C_out))"
        )


def merge_neighbours(x: np.ndarray) -> np.ndarray:
    """(B, H, W, C) -> (B, ceil(H/2), ceil(W/2), 4C): zero-pad an odd H or W at the bottom /
    right, then concatenate x(2i, 2j), x(2i+1, 2j), x(2i, 2j+1), x(2i+1, 2j+1)."""
    _b, h, w, _c = x.shape
    x = np.pad(x, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)))
    x0, x1 = x[:, 0::2, 0::2], x[:, 1::2, 0::2]
    x2, x3 = x[:, 0::2, 1::2], x[:, 1::2, 1::2]
    return np.concatenate([x0, x1, x2, x3], axis=-1)


def merge_neighbours_adjoint(g: np.ndarray, h: int, w: int) -> np.ndarray:
    """The adjoint of merge_neighbours: each 4C slice back to its pixel, padding dropped."""
    b, h2, w2, c4 = g.shape
    c = c4 // 4
    x = np.zeros((b, 2 * h2, 2 * w2, c), dtype=g.dtype)
    x[:, 0::2, 0::2], x[:, 1::2, 0::2] = g[..., :c], g[..., c : 2 * c]
    x[:, 0::2, 1::2], x[:, 1::2, 1::2] = g[..., 2 * c : 3 * c], g[..., 3 * c :]
    return x[:, :h, :w]


def patch_merging(x, gamma, beta, W_red, eps: float = 1e-5) -> np.ndarray:
    """LN(concat of the 2x2 neighbours) W_red: (B, H, W, C) -> (B, H/2, W/2, C_out)."""
    return patch_merging_with_vjp(x, gamma, beta, W_red, eps)[0]


def patch_merging_with_vjp(x, gamma, beta, W_red, eps: float = 1e-5):
    """(patch_merging(x, ...), dout -> (dx, dgamma, dbeta, dW_red)): one forward."""
    _check_merging(x, gamma, beta, W_red)
    merged = store(merge_neighbours(x))
    normed, norm_pullback = layer_norm_with_vjp(merged, gamma, beta, eps)
    normed = store(normed)

    def pullback(dout: np.ndarray) -> tuple[np.ndarray, ...]:
        dW_red = weight_grad(normed, dout)
        dmerged, dgamma, dbeta = norm_pullback(store(mm(dout, T(W_red))))
        return merge_neighbours_adjoint(dmerged, *x.shape[1:3]), dgamma, dbeta, dW_red

    return mm(normed, W_red), pullback


def patch_merging_vjp(dout, x, gamma, beta, W_red, eps: float = 1e-5):
    """(dx, dgamma, dbeta, dW_red)."""
    return patch_merging_with_vjp(x, gamma, beta, W_red, eps)[1](dout)


# -- FLOP model ------------------------------------------------------------------------------------


def msa_macs(h: int, w: int, c: int) -> int:
    """Ω(MSA) = 4hwC² + 2(hw)²C multiply-adds (spec.swin.msa_complexity)."""
    return 4 * h * w * c * c + 2 * (h * w) ** 2 * c


def w_msa_macs(h: int, w: int, c: int, m: int) -> int:
    """Ω(W-MSA) = 4hwC² + 2M²hwC multiply-adds on an H x W map that M divides
    (spec.swin.w_msa_complexity)."""
    return 4 * h * w * c * c + 2 * m * m * h * w * c


def swin_macs(
    img_size: int = 224,
    patch_size: int = 4,
    in_chans: int = 3,
    embed_dim: int = 96,
    depths: tuple[int, ...] = (2, 2, 6, 2),
    num_heads: tuple[int, ...] = (3, 6, 12, 24),
    window_size: int = 7,
    mlp_ratio: float = 4.0,
    num_classes: int = 1000,
) -> dict[str, int]:
    """Multiply-adds of a whole Swin network (timm's SwinTransformer layout) by part: patch
    embedding (a conv, kernel = stride = patch), per stage the blocks (W-MSA/SW-MSA: 4hwC²
    + 2M²hwC, h, w the map zero-padded to multiples of M; MLP 2hwC·F), patch merging at the
    start of stages 2.. (ceil(h/2) ceil(w/2) 4C·2C), the head (C·classes). LayerNorm, GELU,
    softmax, biases and the relative position bias are not counted (the notes' convention,
    the paper's "FLOPs"). As timm, a stage whose map is not larger than the window uses the map
    as its window."""
    del num_heads  # heads do not change the count (spec.swin.heads_do_not_change_complexity)
    r = img_size // patch_size
    macs = {"patch_embed": r * r * in_chans * patch_size**2 * embed_dim}
    c, attn, mlp, merge = embed_dim, 0, 0, 0
    for i, depth in enumerate(depths):
        if i > 0:
            r = -(-r // 2)  # an odd map is zero-padded before merging
            merge += r * r * 4 * c * 2 * c
            c = 2 * c
        m = min(window_size, r)
        rp = _padded(r, m)  # the projections and attention run on the padded windows
        f = int(c * mlp_ratio)
        attn += depth * (4 * rp * rp * c * c + 2 * m * m * rp * rp * c)
        mlp += depth * 2 * r * r * c * f
    macs.update(attention=attn, mlp=mlp, patch_merging=merge, head=c * num_classes)
    macs["total"] = sum(macs.values())
    return macs


def swin_params(
    img_size: int = 224,
    patch_size: int = 4,
    in_chans: int = 3,
    embed_dim: int = 96,
    depths: tuple[int, ...] = (2, 2, 6, 2),
    num_heads: tuple[int, ...] = (3, 6, 12, 24),
    window_size: int = 7,
    mlp_ratio: float = 4.0,
    num_classes: int = 1000,
) -> int:
    """Parameter count of timm's SwinTransformer of this config (qkv with bias, a relative
    position table per block, LayerNorm after the patch embedding, one before the head)."""
    r = img_size // patch_size
    total = in_chans * patch_size**2 * embed_dim + embed_dim + 2 * embed_dim
    c = embed_dim
    for i, (depth, heads) in enumerate(zip(depths, num_heads, strict=True)):
        if i > 0:
            total += 2 * 4 * c + 4 * c * 2 * c
            r, c = r // 2, 2 * c
        m = min(window_size, r)
        f = int(c * mlp_ratio)
        block = 2 * c + (3 * c * c + 3 * c) + (c * c + c) + (2 * m - 1) ** 2 * heads
        block += 2 * c + (c * f + f) + (f * c + c)
        total += depth * block
    return total + 2 * c + c * num_classes + num_classes


def msa_layer_macs(x: np.ndarray, n_heads: int = 1) -> np.ndarray:
    """MACs of one multi-head self-attention layer over the H W tokens of x (B, H, W, C), as
    a 0-d array in x's dtype: B Ω(MSA) (what a counter of the running layer must find)."""
    b, h, w, c = x.shape
    if c % n_heads:
        raise ValueError(f"msa_layer_macs: C = {c} is not divisible by n_heads = {n_heads}")
    return np.asarray(b * msa_macs(h, w, c), dtype=x.dtype)


def w_msa_layer_macs(x: np.ndarray, n_heads: int = 1, window: int = 2) -> np.ndarray:
    """MACs of one W-MSA layer on x (B, H, W, C), M dividing H and W: B Ω(W-MSA)."""
    b, h, w, c = x.shape
    if h % window or w % window or c % n_heads:
        raise ValueError(
            f"w_msa_layer_macs: x {x.shape} needs H, W multiples of M = {window} and C a "
            f"multiple of n_heads = {n_heads}"
        )
    return np.asarray(b * w_msa_macs(h, w, c, window), dtype=x.dtype)
