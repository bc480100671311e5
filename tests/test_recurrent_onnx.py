"""The ONNX GRU serves both reset placements through the variant machinery: declaring
gru.reset="after" runs linear_before_reset=1 and passes; a graph that computes one placement
while the adapter declares the other fails with the other placement named."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from conformance.adapters.onnx_graphs import OnnxReference, OnnxRuntime
from tests.conftest import run_suite

HERE = "tests/test_recurrent_onnx.py"


class OnnxReferenceResetAfter(OnnxReference):
    name = "onnx-reference-gru-after"
    variants: ClassVar[dict[str, Any]] = {**OnnxReference.variants, "gru.reset": "after"}


class OnnxRuntimeResetAfter(OnnxRuntime):
    name = "onnxruntime-gru-after"
    variants: ClassVar[dict[str, Any]] = {**OnnxRuntime.variants, "gru.reset": "after"}


class OnnxRuntimeMislabelled(OnnxRuntime):
    """Runs linear_before_reset=1 (reset after) but declares the canonical "before"."""

    name = "onnxruntime-gru-mislabelled"
    gru_linear_before_reset = 1


@pytest.fixture(scope="module")
def gru_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gru-variants") / "results"
    adapters = [
        f"{HERE}:{cls}"
        for cls in ("OnnxReferenceResetAfter", "OnnxRuntimeResetAfter", "OnnxRuntimeMislabelled")
    ]
    args = [a for spec in adapters for a in ("--adapter", spec)]
    return run_suite(
        folder, *args, "-k", "test_values or test_reverse_values", target="conformance/test_gru.py"
    )


@pytest.mark.parametrize("adapter", ["onnx-reference-gru-after", "onnxruntime-gru-after"])
def test_declared_reset_after_passes(gru_run, adapter):
    rows = gru_run.rows(adapter)
    assert rows, gru_run.output[-2000:]
    passed = [r for r in rows if r["status"] == "pass"]
    bad = [r for r in rows if r["status"] not in ("pass", "not_covered")]
    assert passed and not bad, bad[:2]


def test_mislabelled_placement_is_diagnosed(gru_run):
    fails = gru_run.rows("onnxruntime-gru-mislabelled", status="fail")
    assert fails, gru_run.output[-2000:]
    assert all(r["diagnosis"] == "matches variant gru.reset=after" for r in fails), fails[:2]
