"""Sinusoidal positional encodings, and adding or concatenating them to token embeddings.

Lecture notes:
    positional encoding: x_j + p_j or concat(x_j, p_j)
    p = [sin(w_1 pos), cos(w_1 pos), ..., sin(w_d pos), cos(w_d pos)] (2d entries),
    w_k = 1 / 10000^(k/d)

The notes count d frequency PAIRS (the vector has 2d entries) and start k at 1. nnspec follows
Vaswani et al. (and the issue): for a model width D (even), k = 0 .. D/2 - 1 and

    w_k = 1 / 10000^(2k / D)          (= the notes' 10000^(k/d) with d = D/2, k from 0)
    interleaved (Vaswani):   PE(pos, 2k) = sin(pos w_k),  PE(pos, 2k + 1) = cos(pos w_k)
    concatenated (tensor2tensor, Marian): PE(pos, k) = sin(pos w_k), PE(pos, D/2 + k) = cos(pos w_k)

Keyword options are the declared variants (conformance/variants.py):
  layout   "interleaved" (canonical) or "concatenated"
  combine  "add" (x + PE, canonical) or "concat" ([x, PE] on the feature axis, PE as wide as x)
"""

from __future__ import annotations

import numpy as np

from reference.common import store

BASE = 10000.0


def frequencies(d_model: int, dtype: np.dtype = np.float64) -> np.ndarray:
    """w_k = 1 / 10000^(2k / D), k = 0 .. D/2 - 1; (D/2,)."""
    k = np.arange(d_model // 2)
    return (1.0 / np.power(np.asarray(BASE, dtype=dtype), (2 * k / d_model).astype(dtype))).astype(
        dtype
    )


def _check(d_model: int, layout: str) -> None:
    if layout not in ("interleaved", "concatenated"):
        raise ValueError(f"positional: layout {layout!r} is not 'interleaved' or 'concatenated'")
    if d_model < 2 or d_model % 2:
        raise ValueError(
            f"positional: the width D={d_model} must be even (and >= 2): D/2 frequencies, each "
            f"a (sin, cos) pair, in the {layout} layout"
        )


def sinusoidal(
    positions: np.ndarray, d_model: int, layout: str = "interleaved", dtype=None
) -> np.ndarray:
    """PE(pos) for each position; (..., D). Computed in `dtype` (default: the positions' dtype,
    float64 for integer positions)."""
    _check(d_model, layout)
    dtype = np.dtype(dtype or np.asarray(positions).dtype)
    if dtype.kind != "f":  # integer positions: the encoding itself is real
        dtype = np.dtype(np.float64)
    angle = np.asarray(positions, dtype=dtype)[..., None] * frequencies(d_model, dtype)  # (.., D/2)
    sin, cos = np.sin(angle), np.cos(angle)
    if layout == "interleaved":
        # (..., D/2, 2) -> (..., D): sin at even features 2k, cos at odd features 2k + 1
        return np.stack([sin, cos], axis=-1).reshape(*angle.shape[:-1], d_model)
    return np.concatenate([sin, cos], axis=-1)  # all sines, then all cosines


def positional(
    x: np.ndarray, offset: int = 0, layout: str = "interleaved", combine: str = "add"
) -> np.ndarray:
    """x (..., T, D) + PE(offset .. offset + T - 1), or [x, PE] (..., T, 2D) for "concat".

    The encoding is computed in x's dtype widened to at least float32 (an honest kernel keeps
    a float32 table for a float16 model: pos * w_k for pos ~ 100 in float16 would be off by a
    tenth of a radian), then rounded to x's dtype, as when a table is added to the embeddings.
    """
    if x.ndim < 2:
        raise ValueError(f"positional: x needs (..., T, D), got shape {x.shape}")
    if combine not in ("add", "concat"):
        raise ValueError(f"positional: combine {combine!r} is not 'add' or 'concat'")
    t, d = x.shape[-2:]
    _check(d, layout)
    wide = np.promote_types(x.dtype, np.float32) if x.dtype.kind == "f" else np.float32
    # The table is kept in memory in x's dtype (a buffer, or an embedding weight): stored.
    pe = store(sinusoidal(np.arange(offset, offset + t), d, layout, dtype=wide).astype(x.dtype))
    if combine == "add":
        return x + pe
    return np.concatenate([x, np.broadcast_to(pe, x.shape)], axis=-1)


def positional_vjp(
    dout: np.ndarray,
    x: np.ndarray,
    offset: int = 0,
    layout: str = "interleaved",
    combine: str = "add",
) -> tuple[np.ndarray]:
    """dx: the encoding is a constant, so the gradient passes through (its x half for concat)."""
    if combine == "add":
        return (dout,)
    return (np.ascontiguousarray(dout[..., : x.shape[-1]]),)


def shift_matrix(shift: float, d_model: int, layout: str = "interleaved") -> np.ndarray:
    """R(s) with PE(pos + s) = R(s) PE(pos) for every pos: a 2x2 rotation by s w_k on each
    (sin, cos) pair, [[cos, sin], [-sin, cos]] (sin(a+b) = sin a cos b + cos a sin b, cos(a+b) =
    cos a cos b - sin a sin b); (D, D), independent of pos."""
    _check(d_model, layout)
    w = frequencies(d_model) * shift
    half = d_model // 2
    sin_idx = 2 * np.arange(half) if layout == "interleaved" else np.arange(half)
    cos_idx = sin_idx + 1 if layout == "interleaved" else np.arange(half) + half
    R = np.zeros((d_model, d_model))
    R[sin_idx, sin_idx] = np.cos(w)
    R[sin_idx, cos_idx] = np.sin(w)
    R[cos_idx, sin_idx] = -np.sin(w)
    R[cos_idx, cos_idx] = np.cos(w)
    return R
