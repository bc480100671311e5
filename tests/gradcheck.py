"""Finite-difference checks of hand-written vjps, in float64 (shared by tests/reference/)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def directional(fn: Callable, args: list, index: int, direction: np.ndarray, h: float = 1e-6):
    """(f(x + h d) - f(x - h d)) / 2h: J d by central differences, error O(h^2)."""
    plus, minus = list(args), list(args)
    plus[index] = args[index] + h * direction
    minus[index] = args[index] - h * direction
    return (fn(*plus) - fn(*minus)) / (2 * h)


def check_vjp(fn: Callable, vjp: Callable, args: list, seed: int = 0, rtol: float = 1e-6) -> None:
    """The vjp inner-product identity <dy, J d> = <J^T dy, d> for a random cotangent dy and a
    random direction d per float input; J d from central differences of the forward."""
    rng = np.random.default_rng(seed)
    y = fn(*args)
    dy = rng.standard_normal(y.shape)
    grads = vjp(dy, *args)
    floats = [i for i, a in enumerate(args) if isinstance(a, np.ndarray) and a.dtype.kind == "f"]
    assert len(grads) == len(floats), "one gradient per float input"
    for g, i in zip(grads, floats, strict=True):
        assert g.shape == args[i].shape, f"gradient {i} has shape {g.shape}, not {args[i].shape}"
        d = rng.standard_normal(args[i].shape)
        lhs = np.sum(dy * directional(fn, args, i, d))
        rhs = np.sum(g * d)
        scale = np.linalg.norm(dy) * np.linalg.norm(g) * np.linalg.norm(d) / max(g.size, 1) + 1e-300
        assert abs(lhs - rhs) <= rtol * max(abs(lhs), abs(rhs), scale), (i, lhs, rhs)


def check_gradient_entries(fn: Callable, vjp: Callable, args: list, seed: int = 0) -> None:
    """Every entry of every gradient against central differences (for small inputs)."""
    rng = np.random.default_rng(seed)
    y = fn(*args)
    dy = rng.standard_normal(y.shape)
    grads = vjp(dy, *args)
    floats = [i for i, a in enumerate(args) if isinstance(a, np.ndarray) and a.dtype.kind == "f"]
    for g, i in zip(grads, floats, strict=True):
        numeric = np.zeros_like(args[i])
        for idx in np.ndindex(args[i].shape):
            e = np.zeros_like(args[i])
            e[idx] = 1.0
            numeric[idx] = np.sum(dy * directional(fn, args, i, e))
        np.testing.assert_allclose(g, numeric, rtol=1e-6, atol=1e-8)
