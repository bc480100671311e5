"""pytest-benchmark timings, grouped per op; benchmarks/ratios.py turns them into the table.

Pedantic mode: each case's callables run a fixed number of rounds (case.rounds) after one
warm-up round, so the big cases (Swin, ViT, causal linear attention) keep `nox -s bench` short."""

from __future__ import annotations

import os

import numpy as np
import pytest

from benchmarks import cases
from benchmarks.conftest import bench_threads
from conformance.adapters.base import Unsupported


@pytest.fixture(scope="module")
def inputs():
    """Each case's inputs, built once per op (the same arrays for all four kinds)."""
    made: dict[str, tuple[list, dict]] = {}

    def get(op: str) -> tuple[list, dict]:
        if op not in made:
            made.clear()  # one op's arrays at a time (the ViT image batch is 150 MB)
            made[op] = cases.CASES[op].make(np.random.default_rng(0))
        return made[op]

    return get


@pytest.mark.parametrize("kind", cases.KINDS)
@pytest.mark.parametrize("op", list(cases.CASES))
def test_bench(benchmark, inputs, op, kind):
    case = cases.CASES[op]
    reason = cases.available(case)
    if reason:
        pytest.skip(reason)
    if kind == "onnx-reference-fwd" and case.onnx_missing:
        pytest.skip(case.onnx_missing)
    args, options = inputs(op)
    try:
        run = cases.MAKERS[kind](case, args, options)
    except Unsupported as exc:
        pytest.skip(str(exc))
    benchmark.group = op
    benchmark.extra_info.update(
        op=op,
        kind=kind,
        size=case.size,
        onnx_missing=case.onnx_missing,
        backward=cases.backward_form(case),
        threads=bench_threads(),
        openblas_threads=os.environ.get("OPENBLAS_NUM_THREADS", "default"),
    )
    benchmark.pedantic(run, rounds=case.rounds, warmup_rounds=1, iterations=1)
