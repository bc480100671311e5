"""Checks shared by the recurrent stems (test_rnn.py, test_lstm.py, test_gru.py): sequence_lens,
bidirectional and stacked layers are the same properties for every cell; a Cell row says how
one cell's op is called (its gate blocks, its states, its single-layer arguments)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from conformance.ops import OPS
from conformance.strategies import recurrent_lengths, recurrent_states, recurrent_weight_sets
from conformance.variants import reference_options

DIRECTIONS = ("forward", "reverse", "bidirectional")


@dataclass(frozen=True)
class Cell:
    op: str  # "rnn", "lstm" or "gru"; "<op>_bidirectional" and "<op>_layers" are its variants
    gates: int  # gate blocks in the weight matrices (rnn 1, gru 3, lstm 4)
    states: tuple[str, ...]  # the final states' cotangent keywords: ("dh_T",) or ("dh_T", "dc_T")
    args: Callable[[Any], tuple]  # case -> (x, initial states..., weights...) of one layer


def honest_models(impl, fn, op, *args, **kwargs) -> list[tuple[np.ndarray, ...]]:
    """Every output of fn (op's forward or vjp) under each honest-kernel model, as float64
    (impl.baseline keeps the first output only; the recurrent ops also return final states)."""
    options = reference_options(OPS[op].variants, getattr(impl.adapter, "variants", {}) or {})
    models = impl.models(fn, args, {**kwargs, **options})
    return [tuple(np.asarray(y).astype(np.float64) for y in m) for m in models]


def stacked(models, index) -> np.ndarray:
    """Output `index` of every model, stacked along a new first axis."""
    return np.stack([m[index] for m in models])


def _states(cell: Cell, case, count: int) -> list[np.ndarray]:
    return [recurrent_states(case, count, k=k) for k in range(len(cell.states))]


def bidirectional_args(cell: Cell, case) -> tuple:
    """Weights and initial states with a leading directions axis (forward, reverse)."""
    weights = zip(*recurrent_weight_sets(case, cell.gates, 2), strict=True)
    return case.x(), *_states(cell, case, 2), *(np.stack(w) for w in weights)


def layers_args(cell: Cell, case, layers: int) -> tuple:
    """Initial states (L, B, H); each layer's weights in turn, layer 0 first."""
    sets = recurrent_weight_sets(case, cell.gates, layers, layered=True)
    return case.x(), *_states(cell, case, layers), *(w for ws in sets for w in ws)


def _cotangents(cell: Cell, case, width: int, lead: tuple[int, ...]) -> tuple[np.ndarray, dict]:
    """dhs (B, T, width) and the final states' cotangents (*lead, B, H)."""
    B, T, H = case.batch, case.steps, case.hidden
    finals = {name: case.cotangent(*lead, B, H, k=k + 1) for k, name in enumerate(cell.states)}
    return case.cotangent(B, T, width), finals


def sequence_lens(impl, cell: Cell, case, direction: str) -> None:
    lengths = recurrent_lengths(case)
    if direction == "bidirectional":
        impl.compare(f"{cell.op}_bidirectional", *bidirectional_args(cell, case), lengths=lengths)
    else:
        reverse = direction == "reverse"
        impl.compare(cell.op, *cell.args(case), reverse=reverse, lengths=lengths)


def sequence_lens_vjp(impl, cell: Cell, case, direction: str) -> None:
    lengths = recurrent_lengths(case)
    if direction == "bidirectional":
        dhs, finals = _cotangents(cell, case, 2 * case.hidden, (2,))
        args = (f"{cell.op}_bidirectional", dhs, *bidirectional_args(cell, case))
        impl.compare_vjp(*args, **finals, lengths=lengths)
    else:
        dhs, finals = _cotangents(cell, case, case.hidden, ())
        reverse = direction == "reverse"
        impl.compare_vjp(cell.op, dhs, *cell.args(case), reverse=reverse, **finals, lengths=lengths)


def bidirectional(impl, cell: Cell, case) -> None:
    impl.compare(f"{cell.op}_bidirectional", *bidirectional_args(cell, case))


def bidirectional_vjp(impl, cell: Cell, case) -> None:
    dhs, finals = _cotangents(cell, case, 2 * case.hidden, (2,))
    impl.compare_vjp(f"{cell.op}_bidirectional", dhs, *bidirectional_args(cell, case), **finals)


def stacked_layers(impl, cell: Cell, case, layers: int) -> None:
    impl.compare(f"{cell.op}_layers", *layers_args(cell, case, layers))


def stacked_layers_vjp(impl, cell: Cell, case, layers: int) -> None:
    dhs, finals = _cotangents(cell, case, case.hidden, (layers,))
    impl.compare_vjp(f"{cell.op}_layers", dhs, *layers_args(cell, case, layers), **finals)
