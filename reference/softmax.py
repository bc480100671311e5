"""softmax, log_softmax and cross-entropy, numerically stable, with their vjps."""

from __future__ import annotations

import numpy as np

from reference.common import store


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    # Subtracting the row max keeps exp() <= 1: softmax is shift-invariant, so this is exact
    # math and avoids overflow for large logits.
    z = x - x.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    z = x - x.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def softmax_vjp(dy: np.ndarray, x: np.ndarray, axis: int = -1) -> tuple[np.ndarray]:
    # J = diag(s) - s s^T, so dy^T J = s * (dy - <dy, s>)
    s = store(softmax(x, axis))  # the forward output, as saved for backward
    return (s * (dy - (dy * s).sum(axis=axis, keepdims=True)),)


def log_softmax_vjp(dy: np.ndarray, x: np.ndarray, axis: int = -1) -> tuple[np.ndarray]:
    # d log s_i / d x_j = delta_ij - s_j
    s = store(softmax(x, axis))
    return (dy - s * dy.sum(axis=axis, keepdims=True),)
