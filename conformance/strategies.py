"""Hypothesis strategies shared by every conformance test.

A strategy draws a small *case*: shapes, a scale and an integer seed. Arrays are made from the
seed with NumPy, so a falsifying example prints as a one-line case (shapes, seed) rather than a
wall of numbers, shrinks towards small shapes, and replays exactly."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

SEEDS = st.integers(min_value=0, max_value=2**32 - 1)


def batch_shapes(max_dims: int = 2, max_size: int = 3) -> st.SearchStrategy[tuple[int, ...]]:
    """Leading (batch, head) dims: none, one or two."""
    return st.lists(st.integers(1, max_size), min_size=0, max_size=max_dims).map(tuple)


def normal(seed: int, shape: tuple[int, ...], scale: float = 1.0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape) * scale


@dataclass(frozen=True)
class LogitsCase:
    shape: tuple[int, ...]
    scale: float
    seed: int

    def x(self) -> np.ndarray:
        return normal(self.seed, self.shape, self.scale)


@st.composite
def logits(draw, max_scale: float = 10.0, min_scale: float = 0.1) -> LogitsCase:
    """Softmax inputs (..., n): batch dims then a class axis of 1..16."""
    shape = (*draw(batch_shapes()), draw(st.integers(1, 16)))
    scale = draw(st.sampled_from(sorted({min_scale, 1.0, max_scale})))
    return LogitsCase(shape, scale, draw(SEEDS))


MASK_KINDS = ("none", "random", "padding")


@dataclass(frozen=True)
class AttentionCase:
    batch: tuple[int, ...]
    tq: int
    tk: int
    dk: int
    dv: int
    mask: str  # one of MASK_KINDS
    causal: bool
    seed: int

    def qkv(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rng = np.random.default_rng(self.seed)
        q = rng.standard_normal((*self.batch, self.tq, self.dk))
        k = rng.standard_normal((*self.batch, self.tk, self.dk))
        v = rng.standard_normal((*self.batch, self.tk, self.dv))
        return q, k, v

    def attn_mask(self, empty_rows: bool = False) -> np.ndarray | None:
        """Boolean (..., Tq, Tk), True = may attend. Unless empty_rows, every query keeps at
        least one visible key (also under the causal mask): key 0 is visible to all."""
        rng = np.random.default_rng(self.seed + 1)
        shape = (*self.batch, self.tq, self.tk)
        if self.mask == "none":
            return None
        if self.mask == "padding":
            # Keys beyond each sequence's length are padding: (..., 1, Tk), broadcast over Tq.
            lengths = rng.integers(0 if empty_rows else 1, self.tk + 1, size=(*self.batch, 1, 1))
            return np.arange(self.tk) < lengths
        mask = rng.random(shape) < 0.6
        if not empty_rows:
            mask[..., 0] = True
        return mask


@st.composite
def attention_cases(
    draw, masks: tuple[str, ...] = MASK_KINDS, causal: bool | None = None, square: bool = False
) -> AttentionCase:
    tq = draw(st.integers(1, 8))
    tk = tq if square else draw(st.integers(1, 8))
    is_causal = draw(st.booleans()) if causal is None else causal
    return AttentionCase(
        batch=draw(batch_shapes()),
        tq=tq,
        tk=tk,
        dk=draw(st.integers(1, 8)),
        dv=draw(st.integers(1, 8)),
        mask=draw(st.sampled_from(masks)),
        causal=is_causal,
        seed=draw(SEEDS),
    )
