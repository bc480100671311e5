"""Scaled dot-product attention: softmax(Q K^T / sqrt(d_k)) V with masks, forward and vjp.

Shapes: q (..., Tq, dk), k (..., Tk, dk), v (..., Tk, dv); leading dims are batch (and heads).
mask: boolean, broadcastable to (..., Tq, Tk), True where query i MAY attend to key j (the
polarity of torch SDPA and ONNX Attention). causal: key j > i is hidden from query i.
attn_bias: float, broadcastable to (..., Tq, Tk), added to the scaled scores before the softmax
(ALiBi, relative position bias, torch's and ONNX's float attn_mask); -inf hides a key exactly
as mask=False does. The two mask kinds mean opposite things for the same numbers: a boolean 1
lets a key through, a float 1 only raises its score.

Keyword options are the declared variants (conformance/variants.py):
  scale_rule        "1/sqrt(d)" (Vaswani et al.) or "1/d" (muP-style)
  masked_rows       what a query with no visible key returns: "zeros" (nnspec's choice: an
                    empty weighted sum), "nan" (0/0 of the textbook formula), "uniform" (what a
                    large finite fill such as -1e9 produces: the mean of all values)
  causal_alignment  "top_left" (row i sees keys 0..i) or "bottom_right" (row i sees keys
                    0..i+Tk-Tq, the alignment used for decoding with a KV cache)
"""

from __future__ import annotations

import numpy as np

from reference.common import T, kernel_form, mm, recomputed, store, unbroadcast, weight_grad


def _scale(dk: int, dtype: np.dtype, scale_rule: str) -> np.ndarray:
    rules = {"1/sqrt(d)": 1.0 / np.sqrt(dk), "1/d": 1.0 / dk}
    return np.asarray(rules[scale_rule], dtype=dtype)


def visible(
    tq: int,
    tk: int,
    mask: np.ndarray | None,
    causal: bool,
    causal_alignment: str = "top_left",
    attn_bias: np.ndarray | None = None,
) -> np.ndarray:
    """Boolean (..., Tq, Tk): True where query i attends to key j."""
    allowed = np.ones((tq, tk), dtype=bool)
    if causal:
        offset = {"top_left": 0, "bottom_right": tk - tq}[causal_alignment]
        i = np.arange(tq)[:, None]
        j = np.arange(tk)[None, :]
        allowed = j <= i + offset
    if mask is not None:
        allowed = allowed & mask
    if attn_bias is not None:
        allowed = allowed & ~np.isneginf(attn_bias)
    return allowed


def attention_weights(
    q: np.ndarray,
    k: np.ndarray,
    mask: np.ndarray | None = None,
    causal: bool = False,
    scale_rule: str = "1/sqrt(d)",
    masked_rows: str = "zeros",
    causal_alignment: str = "top_left",
    attn_bias: np.ndarray | None = None,
) -> np.ndarray:
    """alpha = softmax over visible keys of q k^T * scale (+ attn_bias); (..., Tq, Tk)."""
    tq, tk = q.shape[-2], k.shape[-2]
    scores = mm(q, T(k)) * _scale(q.shape[-1], q.dtype, scale_rule)
    if attn_bias is not None:  # -inf entries hide their key (visible), the rest shift scores
        scores = scores + np.where(np.isneginf(attn_bias), 0, attn_bias).astype(scores.dtype)
    allowed = visible(tq, tk, mask, causal, causal_alignment, attn_bias)
    allowed = np.broadcast_to(allowed, scores.shape)
    any_visible = allowed.any(axis=-1, keepdims=True)  # (..., Tq, 1)
    # Max over visible keys only; a row with none gets 0 so that no -inf - -inf appears.
    row_max = np.where(allowed, scores, -np.inf).max(axis=-1, keepdims=True)
    row_max = np.where(any_visible, row_max, 0).astype(scores.dtype)
    e = np.where(allowed, np.exp(scores - row_max), 0).astype(scores.dtype)
    denom = e.sum(axis=-1, keepdims=True)
    alpha = e / np.where(any_visible, denom, 1).astype(scores.dtype)
    if masked_rows == "nan":
        alpha = np.where(any_visible, alpha, np.nan).astype(scores.dtype)
    elif masked_rows == "uniform":
        alpha = np.where(any_visible, alpha, 1.0 / tk).astype(scores.dtype)
    return alpha


def _flash_backward_weights(q, k, v, mask, causal, scale_rule, causal_alignment, attn_bias):
    """(p, out) as a FlashAttention-style kernel has them in its backward pass, following torch
    2.14's CPU kernel (aten/src/ATen/native/cpu/FlashAttentionKernel.cpp): the forward keeps
    e = exp(s - m), writes out = (e v) * (1 / l) and saves each row's logsumexp
    L = m + log(l), l = Σ_j e_j, in the compute dtype (float32 for float16/bfloat16 inputs);
    the backward recomputes the scores s' in another order (torch: a GEMM with alpha = scale,
    then + bias; the forward: q k^T, then * scale + bias in one fused multiply-add), so s' and s
    differ by up to an ulp (reference.common.recomputed), and the weights p = exp(s' - L).
    Exact math gives p = alpha. Rows with no visible key get p = 0 and out = 0 (the caller
    keeps its variant there)."""
    tq, tk = q.shape[-2], k.shape[-2]
    scores = mm(q, T(k)) * _scale(q.shape[-1], q.dtype, scale_rule)
    if attn_bias is not None:
        scores = scores + np.where(np.isneginf(attn_bias), 0, attn_bias).astype(scores.dtype)
    allowed = visible(tq, tk, mask, causal, causal_alignment, attn_bias)
    allowed = np.broadcast_to(allowed, scores.shape)
    any_visible = allowed.any(axis=-1, keepdims=True)
    row_max = np.where(allowed, scores, -np.inf).max(axis=-1, keepdims=True)
    row_max = np.where(any_visible, row_max, 0).astype(scores.dtype)
    e = np.where(allowed, np.exp(scores - row_max), 0).astype(scores.dtype)
    denom = np.where(any_visible, e.sum(axis=-1, keepdims=True), 1).astype(scores.dtype)
    out = mm(e, v) * (1 / denom)
    lse = row_max + np.log(denom)  # (..., Tq, 1)
    p = np.where(allowed, np.exp(recomputed(scores) - lse), 0).astype(scores.dtype)
    return p, out


def sdpa(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    mask: np.ndarray | None = None,
    causal: bool = False,
    attn_bias: np.ndarray | None = None,
    **variants: str,
) -> np.ndarray:
    """Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k) + attn_bias) V; (..., Tq, dv)."""
    return sdpa_with_vjp(q, k, v, mask, causal, attn_bias=attn_bias, **variants)[0]


def sdpa_with_vjp(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    mask: np.ndarray | None = None,
    causal: bool = False,
    scale_rule: str = "1/sqrt(d)",
    masked_rows: str = "zeros",
    causal_alignment: str = "top_left",
    attn_bias: np.ndarray | None = None,
):
    """(sdpa(q, k, v), dout -> (dq, dk, dv)): one forward, the weights alpha and the output
    saved for the pullback. out = alpha v with alpha = softmax(s), s = q k^T * scale +
    attn_bias. attn_bias is an option, not an input: it gets no gradient."""
    # The weights as a kernel that materialises them holds them, in the tensor's dtype (the
    # unfused softmax-then-matmul form; torch's math backend, onnxruntime): on rows whose values
    # cancel, their rounding dominates a float16 output's error (measured: onnxruntime float16,
    # 4 tokens, d = 1: 17x the error of float32 weights).
    alpha = store(
        attention_weights(q, k, mask, causal, scale_rule, masked_rows, causal_alignment, attn_bias)
    )
    y = mm(alpha, v)

    def pullback(dout: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return _sdpa_backward(
            dout, q, k, v, alpha, y, mask, causal, scale_rule, masked_rows, causal_alignment,
            attn_bias,
        )  # fmt: skip

    return y, pullback


def sdpa_vjp(dout: np.ndarray, *inputs: np.ndarray, **options):
    """(dq, dk, dv) of sdpa(*inputs, **options): out = alpha v with alpha = softmax(s),
    s = q k^T * scale + attn_bias. attn_bias is an option, not an input: it gets no gradient."""
    return sdpa_with_vjp(*inputs, **options)[1](dout)


def _sdpa_backward(
    dout, q, k, v, alpha, y, mask, causal, scale_rule, masked_rows, causal_alignment, attn_bias
):
    """(dq, dk, dv) from the weights alpha the forward saved and its output y = alpha v."""
    scale = _scale(q.shape[-1], q.dtype, scale_rule)
    # softmax vjp; hidden keys have alpha = 0 and get no gradient. A row whose weights do not
    # depend on the scores (masked_rows "zeros"/"uniform") has none either.
    # Three exact formulations that honest kernels use; the tolerance models take them in turn
    # (kernel_form), since where ds cancels (few keys, a saturated row) their roundings differ:
    # - "saved alpha, rowsum(dO*O)": the weights the forward saved, and the row term
    #   rowsum(dalpha * alpha) computed as rowsum(dout * out), the same number
    #   (spec.attention.softmax_backward_row_term), from the output the forward saved (measured:
    #   torch's margins on 2-key multi-head cases fell from ~1.9 to ~0.2 with this form).
    # - "saved alpha, rowsum(dalpha*alpha)": the textbook backward (torch's math backend; its
    #   rounding differs up to ~4x on a 1-head ViT case).
    # - "exp(s - L), rowsum(dO*O)": a FlashAttention-style backward (torch 2.14's CPU SDPA
    #   kernel, which it picks for every dtype on CPU, and the FlashAttention, memory-efficient
    #   and cuDNN kernels on CUDA) keeps no alpha: it recomputes p = exp(s' - L) from the
    #   logsumexp L the forward saved, with scores s' computed in another order than the
    #   forward's (_flash_backward_weights), so p differs from alpha by ~|s| eps even where alpha
    #   is exactly 1, and takes the row term from the saved output. Measured, torch 2.14 CPU
    #   float64: a 1-head case whose weights are exactly [1, 0] had L 1 ulp off the recomputed
    #   score and dv 6 eps off (margin 1.1 against models of the two forms above; the math
    #   backend was within 0.4 eps).
    form = kernel_form(
        "saved alpha, rowsum(dO*O)", "saved alpha, rowsum(dalpha*alpha)", "exp(s - L), rowsum(dO*O)"
    )
    dalpha = mm(dout, T(v))  # (..., Tq, Tk)
    if form == "saved alpha, rowsum(dalpha*alpha)":
        p = alpha
        row = (dalpha * alpha).sum(axis=-1, keepdims=True)
    elif form == "saved alpha, rowsum(dO*O)":
        p = alpha
        out = store(y)  # the forward output, as saved for backward
        row = (dout * out).sum(axis=-1, keepdims=True)
    else:
        p, out = _flash_backward_weights(
            q, k, v, mask, causal, scale_rule, causal_alignment, attn_bias
        )
        seen = visible(q.shape[-2], k.shape[-2], mask, causal, causal_alignment, attn_bias)
        rows = np.broadcast_to(seen, alpha.shape).any(axis=-1, keepdims=True)
        p = np.where(rows, p, alpha)  # a row with no visible key: its masked_rows variant
        out = store(np.where(rows, out, y))  # the forward output, as saved
        row = (dout * out).sum(axis=-1, keepdims=True)
    dv = mm(T(p), dout)  # (..., Tk, dv)
    ds = p * (dalpha - row)
    if masked_rows != "nan":
        tq, tk = q.shape[-2], k.shape[-2]
        allowed = visible(tq, tk, mask, causal, causal_alignment, attn_bias)
        any_visible = allowed.any(axis=-1, keepdims=True)
        ds = np.where(any_visible, ds, 0).astype(ds.dtype)
    dq = mm(ds, k) * scale  # (..., Tq, dk)
    dk = mm(T(ds), q) * scale  # (..., Tk, dk)
    return unbroadcast(dq, q.shape), unbroadcast(dk, k.shape), unbroadcast(dv, v.shape)


# -- multi-head attention ------------------------------------------------------------------------
#
# Notes: "Multi-Head: h개의 다중 Attention, W_Q, W_K, W_V 를 이용" (h attentions, each with its
# own projections). Canonical layout (nnspec's, the notes' X W convention), separate projections:
#   x_q (..., Tq, E_q), x_kv (..., Tk, E_kv)
#   W_Q (E_q, E), W_K (E_kv, E), W_V (E_kv, E), W_O (E, E_out); b_q, b_v (E,), b_o (E_out,)
#   Q = x_q W_Q + b_q, K = x_kv W_K + b_k, V = x_kv W_V + b_v        (..., T, E)
#   head h takes columns h*d_h .. (h+1)*d_h - 1 of Q, K and V (d_h = E / n_heads)
#   out = concat_h(Attention(Q_h, K_h, V_h)) W_O + b_o               (..., Tq, E_out)
# Masks (True = may attend, like sdpa): mask broadcastable to (..., Tq, Tk), the same for every
# head; key_mask (..., Tk), False marks a padding key that no query may attend.
#
# The key bias b_k is a keyword input without a gradient: it adds q_i·b_k to every score of row
# i, which softmax ignores, so dL/db_k is identically zero and a computed one is rounding noise
# with nothing to scale it by. It still goes into the forward pass (libraries have one).
# Packed projections (torch's in_proj_weight (3E, E), used as x W^T) are an adapter's layout.


def split_heads(x: np.ndarray, n_heads: int) -> np.ndarray:
    """(..., T, E) -> (..., H, T, E/H): head h holds features h*d_h .. (h+1)*d_h - 1."""
    *lead, t, e = x.shape
    return np.swapaxes(x.reshape(*lead, t, n_heads, e // n_heads), -2, -3)


def merge_heads(x: np.ndarray) -> np.ndarray:
    """(..., H, T, d_h) -> (..., T, H*d_h): the concatenation of the heads (split_heads^-1)."""
    *lead, h, t, d = x.shape
    return np.swapaxes(x, -2, -3).reshape(*lead, t, h * d)


def check_mha_shapes(x_q, x_kv, W_Q, W_K, W_V, W_O, b_q, b_v, b_o, n_heads, mask, key_mask, b_k):
    """One ValueError naming every size when the inputs of mha do not fit together."""
    shapes = (
        f"x_q {x_q.shape}, x_kv {x_kv.shape}, W_Q {W_Q.shape}, W_K {W_K.shape}, "
        f"W_V {W_V.shape}, W_O {W_O.shape}, b_q {b_q.shape}, b_v {b_v.shape}, b_o {b_o.shape}"
        + ("" if b_k is None else f", b_k {np.shape(b_k)}")
        + f", n_heads {n_heads}"
    )
    if x_q.ndim < 2 or x_kv.ndim < 2:
        raise ValueError(f"mha: inputs need (..., T, E): {shapes}")
    e = W_Q.shape[-1]
    ok = (
        W_Q.ndim == W_K.ndim == W_V.ndim == W_O.ndim == 2
        and W_Q.shape[0] == x_q.shape[-1]
        and W_K.shape == W_V.shape == (x_kv.shape[-1], e)
        and W_O.shape[0] == e
        and b_q.shape == b_v.shape == (e,)
        and b_o.shape == (W_O.shape[1],)
        and (b_k is None or np.shape(b_k) == (e,))
    )
    if not ok:
        raise ValueError(f"mha: inconsistent shapes: {shapes}")
    if not isinstance(n_heads, int | np.integer) or n_heads < 1 or e % n_heads:
        raise ValueError(
            f"mha: embedding dim E={e} is not divisible by n_heads={n_heads}: {shapes}"
        )
    tq, tk = x_q.shape[-2], x_kv.shape[-2]
    try:
        lead = np.broadcast_shapes(x_q.shape[:-2], x_kv.shape[:-2])
        if mask is not None:
            np.broadcast_shapes(np.shape(mask), (*lead, tq, tk))
        if key_mask is not None:
            np.broadcast_shapes(np.shape(key_mask), (*lead, tk))
    except ValueError:
        raise ValueError(
            f"mha: masks do not broadcast: mask {None if mask is None else np.shape(mask)} "
            f"to (..., Tq={tq}, Tk={tk}), key_mask "
            f"{None if key_mask is None else np.shape(key_mask)} to (..., Tk={tk}); {shapes}"
        ) from None


def check_attn_bias(where: str, attn_bias, x_q, x_kv, n_heads: int) -> None:
    if attn_bias is None:
        return
    lead = np.broadcast_shapes(x_q.shape[:-2], x_kv.shape[:-2])
    target = (*lead, n_heads, x_q.shape[-2], x_kv.shape[-2])
    try:
        np.broadcast_shapes(np.shape(attn_bias), target)
    except ValueError:
        raise ValueError(
            f"{where}: attn_bias {np.shape(attn_bias)} does not broadcast to "
            f"(..., H, Tq, Tk) = {target}"
        ) from None


def mha_visible(mask: np.ndarray | None, key_mask: np.ndarray | None) -> np.ndarray | None:
    """The boolean (..., 1, Tq|1, Tk) mask every head uses: mask and key_mask combined."""
    if mask is None and key_mask is None:
        return None
    allowed = np.asarray(True)
    if mask is not None:
        allowed = allowed & np.asarray(mask, dtype=bool)
    if key_mask is not None:
        allowed = allowed & np.asarray(key_mask, dtype=bool)[..., None, :]
    return allowed[..., None, :, :]  # a heads axis, broadcast over the heads


def _projections(x_q, x_kv, W_Q, W_K, W_V, b_q, b_v, b_k):
    # Each projection is its own kernel in a real implementation: its output is stored.
    q = store(mm(x_q, W_Q) + b_q)  # (..., Tq, E)
    k = mm(x_kv, W_K)
    k = store(k if b_k is None else k + b_k)  # (..., Tk, E)
    v = store(mm(x_kv, W_V) + b_v)  # (..., Tk, E)
    return q, k, v


def mha(
    x_q: np.ndarray,
    x_kv: np.ndarray,
    W_Q: np.ndarray,
    W_K: np.ndarray,
    W_V: np.ndarray,
    W_O: np.ndarray,
    b_q: np.ndarray,
    b_v: np.ndarray,
    b_o: np.ndarray,
    n_heads: int = 1,
    mask: np.ndarray | None = None,
    key_mask: np.ndarray | None = None,
    causal: bool = False,
    b_k: np.ndarray | None = None,
    attn_bias: np.ndarray | None = None,
    **variants: str,
) -> np.ndarray:
    """MultiHead(x_q, x_kv) = concat_h(Attention(Q_h, K_h, V_h)) W_O + b_o; (..., Tq, E_out).
    attn_bias broadcasts to (..., H, Tq, Tk): one bias for all heads, or one per head."""
    return mha_with_vjp(
        x_q, x_kv, W_Q, W_K, W_V, W_O, b_q, b_v, b_o, n_heads, mask, key_mask, causal, b_k,
        attn_bias, **variants,
    )[0]  # fmt: skip


def sum_to(g: np.ndarray, ndim: int) -> np.ndarray:
    """A parameter's gradient: summed over the leading (batch) axes down to its ndim axes."""
    return g.reshape(-1, *g.shape[g.ndim - ndim :]).sum(axis=0) if g.ndim > ndim else g


def mha_with_vjp(
    x_q: np.ndarray,
    x_kv: np.ndarray,
    W_Q: np.ndarray,
    W_K: np.ndarray,
    W_V: np.ndarray,
    W_O: np.ndarray,
    b_q: np.ndarray,
    b_v: np.ndarray,
    b_o: np.ndarray,
    n_heads: int = 1,
    mask: np.ndarray | None = None,
    key_mask: np.ndarray | None = None,
    causal: bool = False,
    b_k: np.ndarray | None = None,
    attn_bias: np.ndarray | None = None,
    **variants: str,
):
    """(mha(...), dout -> (dx_q, dx_kv, dW_Q, dW_K, dW_V, dW_O, db_q, db_v, db_o)): one
    forward, its activations saved for the pullback; b_k and attn_bias get no gradient."""
    check_mha_shapes(x_q, x_kv, W_Q, W_K, W_V, W_O, b_q, b_v, b_o, n_heads, mask, key_mask, b_k)
    check_attn_bias("mha", attn_bias, x_q, x_kv, n_heads)
    q, k, v = _projections(x_q, x_kv, W_Q, W_K, W_V, b_q, b_v, b_k)
    heads, attention_pullback = sdpa_with_vjp(
        split_heads(q, n_heads),  # (..., H, Tq, d_h)
        split_heads(k, n_heads),  # (..., H, Tk, d_h)
        split_heads(v, n_heads),
        mha_visible(mask, key_mask),
        causal,
        attn_bias=attn_bias,
        **variants,
    )
    concat = store(merge_heads(heads))  # (..., Tq, E)

    def pullback(dout: np.ndarray) -> tuple[np.ndarray, ...]:
        # out = concat W_O + b_o
        dW_O = weight_grad(concat, dout)  # (E, E_out)
        db_o = sum_to(dout, 1)
        # Gradients handed from one kernel to the next are kept in memory too: stored.
        dconcat = store(mm(dout, T(W_O)))  # (..., Tq, E)
        dqh, dkh, dvh = attention_pullback(split_heads(dconcat, n_heads))
        dq, dk, dv = (store(merge_heads(g)) for g in (dqh, dkh, dvh))  # (..., T, E)
        # q = x_q W_Q + b_q; k, v likewise from x_kv
        dx_q = mm(dq, T(W_Q))
        dx_kv = mm(dk, T(W_K)) + mm(dv, T(W_V))
        dW_Q = weight_grad(x_q, dq)
        dW_K = weight_grad(x_kv, dk)
        dW_V = weight_grad(x_kv, dv)
        return (
            unbroadcast(dx_q, x_q.shape),
            unbroadcast(dx_kv, x_kv.shape),
            dW_Q,
            dW_K,
            dW_V,
            dW_O,
            sum_to(dq, 1),  # db_q
            sum_to(dv, 1),  # db_v
            db_o,
        )

    return mm(concat, W_O) + b_o, pullback


def mha_vjp(dout: np.ndarray, *inputs: np.ndarray, **options) -> tuple[np.ndarray, ...]:
    """(dx_q, dx_kv, dW_Q, dW_K, dW_V, dW_O, db_q, db_v, db_o) of mha(*inputs, **options); b_k
    and attn_bias have none."""
    return mha_with_vjp(*inputs, **options)[1](dout)
