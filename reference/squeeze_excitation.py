"""Squeeze-and-Excitation (Hu et al.): channel attention, forward and vjp, any float dtype.

Lecture notes: "Squeeze-and-Excitation Net : Channel Attention". For x (N, C, *spatial):

    z = mean of x over the spatial dims                 squeeze: one number per channel (N, C)
    s = σ(W2 relu(W1 z + b1) + b2)                       excitation: a gate in (0, 1) per channel
    out = x * s                                          each channel scaled by its gate

W1 (C_r, C) and W2 (C, C_r) are the two fully connected layers (torchvision and timm spell them
as 1x1 convolutions, weight (C_r, C, 1, 1)); C_r = C / r is the reduced width. σ is the sigmoid:
each channel's gate is independent (a softmax over channels, which makes the gates compete and
sum to 1, is a mutant). s depends on x only through the spatial mean z, so it is invariant to
any permutation of the spatial positions, and out is equivariant to them.

Every tensor a layered implementation passes from one layer to the next (z, W1 z + b1, h, the
gate's logits, s, and their gradients in the backward pass) goes through
reference.common.store, so the tolerance model rounds them to the dtype as such a block does.
"""

from __future__ import annotations

import numpy as np

from reference.activation import sigmoid
from reference.common import T, mm, store


def _check(x, w1, b1, w2, b2) -> tuple[int, int]:
    if x.ndim < 3:
        raise ValueError(f"x must be (N, C, *spatial) with a spatial dim, got shape {x.shape}")
    c = x.shape[1]
    if w1.ndim != 2 or w1.shape[1] != c:
        raise ValueError(f"w1 must be (C_r, C) = (C_r, {c}) for x {x.shape}, got {w1.shape}")
    cr = w1.shape[0]
    if w2.shape != (c, cr) or b1.shape != (cr,) or b2.shape != (c,):
        raise ValueError(
            f"with x {x.shape} and w1 {w1.shape}: expected b1 ({cr},), w2 ({c}, {cr}), "
            f"b2 ({c},), got b1 {b1.shape}, w2 {w2.shape}, b2 {b2.shape}"
        )
    return c, cr


def _spatial(x: np.ndarray) -> tuple[int, ...]:
    return tuple(range(2, x.ndim))


def _expand(s: np.ndarray, ndim: int) -> np.ndarray:
    """(N, C) -> (N, C, 1, ..., 1)."""
    return s.reshape(s.shape + (1,) * (ndim - 2))


def _forward(x, w1, b1, w2, b2):
    z = store(x.mean(axis=_spatial(x)).astype(x.dtype))  # (N, C)   squeeze
    a = store((mm(z, T(w1)) + b1).astype(x.dtype))  # (N, C_r)
    h = store(np.maximum(a, 0).astype(x.dtype))  # (N, C_r)
    u = store((mm(h, T(w2)) + b2).astype(x.dtype))  # (N, C)
    s = store(sigmoid(u))  # (N, C)   excitation gate
    return z, h, s


def gate(x, w1, b1, w2, b2) -> np.ndarray:
    """s = σ(W2 relu(W1 z + b1) + b2), (N, C)."""
    _check(x, w1, b1, w2, b2)
    return _forward(x, w1, b1, w2, b2)[2]


def squeeze_excitation(x, w1, b1, w2, b2) -> np.ndarray:
    """out = x * s, s broadcast over the spatial dims; (N, C, *spatial)."""
    _check(x, w1, b1, w2, b2)
    s = _forward(x, w1, b1, w2, b2)[2]
    return (x * _expand(s, x.ndim)).astype(x.dtype)


def squeeze_excitation_vjp(dout, x, w1, b1, w2, b2) -> tuple[np.ndarray, ...]:
    """(dx, dW1, db1, dW2, db2)."""
    _check(x, w1, b1, w2, b2)
    z, h, s = _forward(x, w1, b1, w2, b2)
    spatial = _spatial(x)
    count = x.size // (x.shape[0] * x.shape[1])  # H * W
    # Each layer's backward hands the next a tensor in the dtype (store), like the forward.
    ds = store(store((dout * x).astype(x.dtype)).sum(axis=spatial).astype(x.dtype))  # (N, C)
    du = store((ds * s * (1 - s)).astype(x.dtype))  # sigmoid' from the saved gate
    dw2 = mm(T(du), h)  # (C, C_r)
    db2 = du.sum(axis=0)
    dh = store(mm(du, w2))  # (N, C_r)
    da = np.where(h > 0, dh, 0).astype(x.dtype)  # relu' from the saved output
    dw1 = mm(T(da), z)  # (C_r, C)
    db1 = da.sum(axis=0)
    dz = store(mm(da, w1))  # (N, C)
    # the two paths into x: through out = x * s directly, and through the spatial mean z
    direct = store((dout * _expand(s, x.ndim)).astype(x.dtype))
    dx = direct + store(_expand(dz / x.dtype.type(count), x.ndim).astype(x.dtype))
    return (
        dx.astype(x.dtype),
        dw1.astype(x.dtype),
        db1.astype(x.dtype),
        dw2.astype(x.dtype),
        db2.astype(x.dtype),
    )
