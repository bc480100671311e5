"""softmax, log_softmax and cross-entropy, numerically stable, with their vjps."""

from __future__ import annotations

import numpy as np

from reference.common import kernel_sum, store


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    # Subtracting the row max keeps exp() <= 1: softmax is shift-invariant, so this is exact
    # math and avoids overflow for large logits. One buffer of x's size, overwritten in place:
    # z = x - max, then e = exp(z), then e / Σ e. Σ e is added in the orders kernels use
    # (reference.common.kernel_sum): on a confident row the max's weight 1/(1 + δ) rounds with
    # the sum's order, and a softmax gradient that cancels carries that rounding (measured,
    # torch 2.14 CPU float64: its vectorised sum put s_max 2 ulps off NumPy's pairwise one,
    # and softmax_vjp 7x the pairwise models' error; the sequential and lane orders match
    # torch exactly).
    e = x - x.max(axis=axis, keepdims=True)
    np.exp(e, out=e)
    e /= kernel_sum(e, axis)
    return e


def log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    z = x - x.max(axis=axis, keepdims=True)
    return z - np.log(kernel_sum(np.exp(z), axis))


def softmax_with_vjp(x: np.ndarray, axis: int = -1):
    """(softmax(x), dy -> (dx,)): the forward once, its output saved for the pullback, as a
    training step runs a kernel (jax.vjp's shape of the same thing)."""
    y = softmax(x, axis)
    s = store(y)  # the forward output, as saved for backward

    def pullback(dy: np.ndarray) -> tuple[np.ndarray]:
        # J = diag(s) - s s^T, so dy^T J = s * (dy - <dy, s>)
        dx = dy * s
        row = kernel_sum(dx, axis)  # <dy, s>, in the order the kernel adds (see kernel_sum)
        np.subtract(dy, row, out=dx)  # dx's buffer reused
        dx *= s
        return (dx,)

    return y, pullback


def softmax_vjp(dy: np.ndarray, x: np.ndarray, axis: int = -1) -> tuple[np.ndarray]:
    return softmax_with_vjp(x, axis)[1](dy)


def log_softmax_vjp(dy: np.ndarray, x: np.ndarray, axis: int = -1) -> tuple[np.ndarray]:
    # d log s_i / d x_j = delta_ij - s_j
    s = store(softmax(x, axis))
    return (dy - s * dy.sum(axis=axis, keepdims=True),)
