"""Legitimate ways libraries differ. An adapter declares the ones it implements:

    variants = {"attention.masked_rows": "nan"}

The reference is then run with that option, and when a comparison fails the suite tries the
other values and names the one that matches ("matches variant attention.scale=1/d"): that is a
diagnosis, not a pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Variant:
    option: str  # keyword argument of the reference function
    values: tuple[Any, ...]  # values[0] is nnspec's canonical choice
    why: str


VARIANTS: dict[str, Variant] = {
    "attention.scale": Variant(
        "scale_rule",
        ("1/sqrt(d)", "1/d"),
        "Vaswani et al. scale scores by 1/sqrt(d_k); muP-style attention uses 1/d_k",
    ),
    "attention.masked_rows": Variant(
        "masked_rows",
        ("zeros", "nan", "uniform"),
        "a query that sees no key: empty sum (zeros), 0/0 (NaN), or a finite fill (mean of V)",
    ),
    "attention.causal_alignment": Variant(
        "causal_alignment",
        ("top_left", "bottom_right"),
        "with Tq != Tk the causal diagonal starts at key 0 or ends at the last key",
    ),
}


def reference_options(variant_keys: tuple[str, ...], declared: dict[str, Any]) -> dict[str, Any]:
    """Keyword options for the reference so that it computes what the adapter declares."""
    options = {}
    for key in variant_keys:
        variant = VARIANTS[key]
        value = declared.get(key, variant.values[0])
        if value not in variant.values:
            raise ValueError(f"variant {key}={value!r} is not one of {variant.values}")
        options[variant.option] = value
    return options


def alternatives(variant_keys: tuple[str, ...], declared: dict[str, Any]):
    """(key, value, options) for every single-key departure from what the adapter declares."""
    base = reference_options(variant_keys, declared)
    for key in variant_keys:
        variant = VARIANTS[key]
        for value in variant.values:
            if value != base[variant.option]:
                yield key, value, {**base, variant.option: value}
