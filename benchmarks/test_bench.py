"""pytest-benchmark timings, grouped per op; benchmarks/ratios.py turns them into the table."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks import cases

KINDS = {
    "reference-fwd+bwd": cases.reference_forward_backward,
    "torch-fwd+bwd": cases.torch_forward_backward,
    "reference-fwd": cases.reference_forward,
    "onnx-reference-fwd": cases.onnx_reference_forward,
}


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("op", list(cases.CASES))
def test_bench(benchmark, op, kind):
    case = cases.CASES[op]
    args, options = case.make(np.random.default_rng(0))
    run = KINDS[kind](case, args, options)
    benchmark.group = op
    benchmark.extra_info.update(op=op, kind=kind, size=case.size)
    benchmark.pedantic(run, rounds=5, warmup_rounds=1, iterations=1)
