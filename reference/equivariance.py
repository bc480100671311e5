"""Convolution and pooling for the inductive-bias properties (translation equivariance and
invariance), forward and vjp.

Lecture notes (CNN vs ViT): a CNN has the strong priors locality and translation
equivariance F(T(x)) = T(F(x)); translation invariance is F(T(x)) = F(x). spec/equivariance.py
proves them (exact with circular padding; away from the border with zero padding).

Layout: x (B, C, H, W), weight (O, C, k, k), bias (O,): torch's and ONNX's. conv2d is
cross-correlation (what every library computes): out[b, o, i, j] = bias[o] +
Σ_{c, dy, dx} weight[o, c, dy, dx] xp[b, c, stride i + dy, stride j + dx], xp the input padded
by `padding` pixels on every side, with zeros ("zeros") or by wrapping around ("circular",
torch's padding_mode="circular"). Pooling has no padding.
"""

from __future__ import annotations

import numpy as np

from reference.common import T, kernel_sum, mm

PADDING_MODES = ("zeros", "circular")


def _check_conv(x, weight, bias, stride, padding, padding_mode):
    if x.ndim != 4 or weight.ndim != 4 or bias.shape != (weight.shape[0],):
        raise ValueError(
            f"conv2d: x {x.shape} must be (B, C, H, W), weight {weight.shape} (O, C, k, k), "
            f"bias {bias.shape} (O,)"
        )
    if weight.shape[1] != x.shape[1] or weight.shape[2] != weight.shape[3]:
        raise ValueError(
            f"conv2d: weight {weight.shape} does not fit x {x.shape} (need (O, C, k, k))"
        )
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"conv2d: padding_mode {padding_mode!r} is not one of {PADDING_MODES}")
    k, (h, w) = weight.shape[2], x.shape[2:]
    if stride < 1 or padding < 0 or h + 2 * padding < k or w + 2 * padding < k:
        raise ValueError(
            f"conv2d: kernel {k} with padding {padding}, stride {stride} does not fit an "
            f"H x W = {h} x {w} image"
        )
    if padding_mode == "circular" and (padding > h or padding > w):
        raise ValueError(f"conv2d: circular padding {padding} exceeds H x W = {h} x {w}")


def _pad(x, padding, mode):
    pad = ((0, 0), (0, 0), (padding, padding), (padding, padding))
    return np.pad(x, pad, mode="wrap" if mode == "circular" else "constant")


def _unpad_adjoint(g, h, w, padding, mode):
    """The adjoint of _pad: the padded border folded back (circular) or dropped (zeros)."""
    p = padding
    if mode == "zeros" or p == 0:
        return g[:, :, p : p + h, p : p + w]
    hp, wp = g.shape[2:]
    out = np.zeros((*g.shape[:2], h, w), dtype=g.dtype)
    rows = (np.arange(hp) - p) % h
    cols = (np.arange(wp) - p) % w
    folded = np.zeros((*g.shape[:2], h, wp), dtype=g.dtype)
    np.add.at(folded, (slice(None), slice(None), rows), g)
    np.add.at(out, (slice(None), slice(None), slice(None), cols), folded)
    return out


def _windows(xp, k, stride):
    """(B, C, Hp, Wp) -> (B, OH, OW, C k k): each output position's receptive field."""
    b, c, hp, wp = xp.shape
    oh, ow = (hp - k) // stride + 1, (wp - k) // stride + 1
    i = stride * np.arange(oh)[:, None] + np.arange(k)[None, :]  # (OH, k)
    j = stride * np.arange(ow)[:, None] + np.arange(k)[None, :]  # (OW, k)
    cols = xp[:, :, i[:, None, :, None], j[None, :, None, :]]  # (B, C, OH, OW, k, k)
    return cols.transpose(0, 2, 3, 1, 4, 5).reshape(b, oh, ow, c * k * k), i, j


def conv2d(x, weight, bias, stride: int = 1, padding: int = 0, padding_mode: str = "zeros"):
    """(B, C, H, W) -> (B, O, OH, OW)."""
    _check_conv(x, weight, bias, stride, padding, padding_mode)
    k = weight.shape[-1]
    cols, _, _ = _windows(_pad(x, padding, padding_mode), k, stride)
    out = mm(cols, T(weight.reshape(weight.shape[0], -1))) + bias  # (B, OH, OW, O)
    return out.transpose(0, 3, 1, 2)


def conv2d_vjp(dout, x, weight, bias, stride: int = 1, padding: int = 0, padding_mode="zeros"):
    """(dx, dweight, dbias)."""
    _check_conv(x, weight, bias, stride, padding, padding_mode)
    o, c, k, _ = weight.shape
    xp = _pad(x, padding, padding_mode)
    cols, i, j = _windows(xp, k, stride)
    dy = dout.transpose(0, 2, 3, 1)  # (B, OH, OW, O)
    dweight = mm(T(cols.reshape(-1, c * k * k)), dy.reshape(-1, o)).T.reshape(weight.shape)
    dcols = mm(dy, weight.reshape(o, -1)).reshape(*dy.shape[:3], c, k, k)
    dxp = np.zeros_like(xp)
    dcols = dcols.transpose(0, 3, 1, 2, 4, 5)  # (B, C, OH, OW, k, k)
    np.add.at(dxp, (slice(None), slice(None), i[:, None, :, None], j[None, :, None, :]), dcols)
    dx = _unpad_adjoint(dxp, *x.shape[2:], padding, padding_mode)
    dbias = kernel_sum(dy.reshape(-1, o), axis=0).reshape(o)  # Σ over images and positions
    return dx, dweight, dbias


def _check_pool(x, kernel, stride):
    if x.ndim != 4:
        raise ValueError(f"pooling: x must be (B, C, H, W), got shape {x.shape}")
    if kernel < 1 or stride < 1 or kernel > min(x.shape[2:]):
        raise ValueError(
            f"pooling: window {kernel}, stride {stride} do not fit H x W = {x.shape[2:]}"
        )


def avg_pool2d(x, kernel: int = 2, stride: int = 2) -> np.ndarray:
    """Average over each k x k window (no padding): (B, C, OH, OW)."""
    _check_pool(x, kernel, stride)
    cols, _, _ = _windows(x.reshape(-1, 1, *x.shape[2:]), kernel, stride)
    out = cols.mean(axis=-1).astype(x.dtype)  # (B C, OH, OW)
    return out.reshape(*x.shape[:2], *out.shape[1:])


def avg_pool2d_vjp(dout, x, kernel: int = 2, stride: int = 2):
    _check_pool(x, kernel, stride)
    ones = np.ones((1, 1, kernel, kernel), dtype=x.dtype) / kernel**2
    g = dout.reshape(-1, 1, *dout.shape[2:])
    xs = x.reshape(-1, 1, *x.shape[2:])
    dx, _, _ = conv2d_vjp(g, xs, ones, np.zeros(1, dtype=x.dtype), stride)
    return (dx.reshape(x.shape),)


def max_pool2d(x, kernel: int = 2, stride: int = 2) -> np.ndarray:
    """Maximum over each k x k window (no padding): (B, C, OH, OW)."""
    _check_pool(x, kernel, stride)
    cols, _, _ = _windows(x.reshape(-1, 1, *x.shape[2:]), kernel, stride)
    out = cols.max(axis=-1)
    return out.reshape(*x.shape[:2], *out.shape[1:])


def global_avg_pool(x) -> np.ndarray:
    """GAP: the mean of each channel over H x W: (B, C)."""
    if x.ndim != 4:
        raise ValueError(f"global_avg_pool: x must be (B, C, H, W), got shape {x.shape}")
    b, c, h, w = x.shape
    # Σ in the orders kernels add (kernel_sum): onnxruntime's float32 GlobalAveragePool of 77
    # values was 1.06x the bound of pairwise-only models (thorough profile, seed 9)
    total = kernel_sum(x.reshape(b, c, h * w), axis=-1)[..., 0]  # (B, C)
    return (total / x.dtype.type(h * w)).astype(x.dtype)


def global_avg_pool_vjp(dout, x):
    h, w = x.shape[2:]
    return (np.broadcast_to(dout[:, :, None, None] / (h * w), x.shape).astype(x.dtype),)
