"""Scaled dot-product attention: softmax(Q K^T / sqrt(d_k)) V with masks, forward and vjp.

Shapes: q (..., Tq, dk), k (..., Tk, dk), v (..., Tk, dv); leading dims are batch (and heads).
mask: boolean, broadcastable to (..., Tq, Tk), True where query i MAY attend to key j (the
polarity of torch SDPA and ONNX Attention). causal: key j > i is hidden from query i.

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

from reference.common import T, mm, unbroadcast


def _scale(dk: int, dtype: np.dtype, scale_rule: str) -> np.ndarray:
    rules = {"1/sqrt(d)": 1.0 / np.sqrt(dk), "1/d": 1.0 / dk}
    return np.asarray(rules[scale_rule], dtype=dtype)


def visible(
    tq: int, tk: int, mask: np.ndarray | None, causal: bool, causal_alignment: str = "top_left"
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
    return allowed


def attention_weights(
    q: np.ndarray,
    k: np.ndarray,
    mask: np.ndarray | None = None,
    causal: bool = False,
    scale_rule: str = "1/sqrt(d)",
    masked_rows: str = "zeros",
    causal_alignment: str = "top_left",
) -> np.ndarray:
    """alpha = softmax over visible keys of q k^T * scale; (..., Tq, Tk)."""
    tq, tk = q.shape[-2], k.shape[-2]
    scores = mm(q, T(k)) * _scale(q.shape[-1], q.dtype, scale_rule)
    allowed = np.broadcast_to(visible(tq, tk, mask, causal, causal_alignment), scores.shape)
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


def sdpa(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    mask: np.ndarray | None = None,
    causal: bool = False,
    **variants: str,
) -> np.ndarray:
    """Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V; (..., Tq, dv)."""
    return mm(attention_weights(q, k, mask, causal, **variants), v)


def sdpa_vjp(
    dout: np.ndarray,
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    mask: np.ndarray | None = None,
    causal: bool = False,
    scale_rule: str = "1/sqrt(d)",
    masked_rows: str = "zeros",
    causal_alignment: str = "top_left",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dq, dk, dv) for out = alpha v with alpha = softmax(s), s = q k^T * scale."""
    alpha = attention_weights(q, k, mask, causal, scale_rule, masked_rows, causal_alignment)
    scale = _scale(q.shape[-1], q.dtype, scale_rule)
    dv = mm(T(alpha), dout)  # (..., Tk, dv)
    dalpha = mm(dout, T(v))  # (..., Tq, Tk)
    # softmax vjp; hidden keys have alpha = 0 and get no gradient. A row whose weights do not
    # depend on the scores (masked_rows "zeros"/"uniform") has none either.
    ds = alpha * (dalpha - (dalpha * alpha).sum(axis=-1, keepdims=True))
    if masked_rows != "nan":
        tq, tk = q.shape[-2], k.shape[-2]
        any_visible = visible(tq, tk, mask, causal, causal_alignment).any(axis=-1, keepdims=True)
        ds = np.where(any_visible, ds, 0).astype(ds.dtype)
    dq = mm(ds, k) * scale  # (..., Tq, dk)
    dk = mm(T(ds), q) * scale  # (..., Tk, dk)
    return unbroadcast(dq, q.shape), unbroadcast(dk, k.shape), unbroadcast(dv, v.shape)
