"""Which reference function defines each adapter op: one row per op, nothing else."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from reference import attention, softmax


@dataclass(frozen=True)
class Op:
    stem: str
    forward: Callable
    vjp: Callable | None
    variants: tuple[str, ...] = ()  # keys of conformance.variants.VARIANTS this op honours


OPS: dict[str, Op] = {
    "softmax": Op("softmax", softmax.softmax, softmax.softmax_vjp),
    "log_softmax": Op("softmax", softmax.log_softmax, softmax.log_softmax_vjp),
    "sdpa": Op(
        "attention",
        attention.sdpa,
        attention.sdpa_vjp,
        ("attention.scale", "attention.masked_rows", "attention.causal_alignment"),
    ),
}
