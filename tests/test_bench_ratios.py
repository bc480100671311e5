"""The benchmark ratio table (benchmarks/ratios.py) and its figures (reports/bench_figure.py),
on tiny synthetic pytest-benchmark JSON: no timing here (speed is measured by `nox -s bench`)."""

from __future__ import annotations

import json

import pytest

from benchmarks import cases
from benchmarks.ratios import (
    ONNX_TARGET,
    SCALING_N,
    TORCH_TARGET,
    main,
    markdown,
    ratios,
    scaling_ratios,
    summary,
)

PNG = b"\x89PNG\r\n\x1a\n"


def _bench(op, kind, median, onnx_missing=None, backward="saved activations"):
    info = {"op": op, "kind": kind, "size": f"size of {op}", "onnx_missing": onnx_missing}
    info["backward"] = backward
    info.update(threads=1, openblas_threads="1")
    return {"extra_info": info, "stats": {"median": median, "min": median / 2, "mean": median}}


def _data():
    return {
        "machine_info": {"cpu": {"brand_raw": "test cpu", "count": 2}},
        "benchmarks": [
            # a: misses both targets
            _bench("a", "reference-fwd+bwd", 3.0),
            _bench("a", "torch-fwd+bwd", 1.0),
            _bench("a", "reference-fwd", 2.0),
            _bench("a", "onnx-reference-fwd", 1.0),
            # b: meets both, exactly on the torch target
            _bench("b", "reference-fwd+bwd", TORCH_TARGET),
            _bench("b", "torch-fwd+bwd", 1.0),
            _bench("b", "reference-fwd", 1.0),
            _bench("b", "onnx-reference-fwd", 4.0),
            # c: no onnx.reference graph
            _bench("c", "reference-fwd+bwd", 1.0, "no graph", "forward recomputed"),
            _bench("c", "torch-fwd+bwd", 2.0, "no graph"),
            _bench("c", "reference-fwd", 0.5, "no graph"),
        ],
    }


def test_ratios_are_the_quotients_of_the_medians_and_flag_missed_targets():
    rows = {r["op"]: r for r in ratios(_data())}
    assert rows["a"]["reference_vs_torch"] == pytest.approx(3.0)
    assert rows["a"]["onnx_vs_reference"] == pytest.approx(0.5)
    assert rows["a"]["torch_target_met"] is False and rows["a"]["onnx_target_met"] is False
    assert rows["b"]["torch_target_met"] is True and rows["b"]["onnx_target_met"] is True
    assert rows["c"]["onnx_vs_reference"] is None and rows["c"]["onnx_target_met"] is None
    assert rows["c"]["onnx_note"] == "no graph"
    assert rows["c"]["reference_vs_torch"] == pytest.approx(0.5)


def test_ratios_use_the_chosen_statistic():
    data = _data()
    for b in data["benchmarks"]:
        if b["extra_info"]["op"] == "a" and b["extra_info"]["kind"] == "torch-fwd+bwd":
            b["stats"]["min"] = 3.0  # a/min: 1.5 / 3.0
    rows = {r["op"]: r for r in ratios(data, stat="min")}
    assert rows["a"]["reference_vs_torch"] == pytest.approx(0.5)


def test_markdown_marks_each_target_and_counts_them():
    text = markdown(summary(ratios(_data()), None, {"cores": 2}, "median"))
    lines = {line.split("|")[1].strip(): line for line in text.splitlines() if line[:2] == "| "}
    assert "**missed**" in lines["a"] and lines["a"].count("**missed**") == 2
    assert "**missed**" not in lines["b"] and lines["b"].count(" met") == 2
    assert "n/a (no graph)" in lines["c"]
    assert "(forward recomputed)" in lines["c"] and "recomputed" not in lines["a"] + lines["b"]
    assert f"meets <= {TORCH_TARGET} on 2 of 3 ops" in text
    assert f"meets >= {ONNX_TARGET:g} on 1 of 2 ops" in text


def _scaling_data(linear_growth: float, softmax_growth: float) -> tuple[dict, list[int]]:
    n = [256, *SCALING_N]
    return {
        "time": {
            "reference linear": [1.0, 2.0, 2.0 * linear_growth],
            "reference softmax": [1.0, 2.0, 2.0 * softmax_growth],
        },
        "memory": {"linear": [10.0, 40.0, 160.0], "softmax": [10.0, 100.0, 1600.0]},
    }, n


@pytest.mark.parametrize(
    ("linear", "softmax", "met"),
    [
        (4.0, 16.0, {"linear": True, "softmax": True}),
        (6.0, 8.0, {"linear": False, "softmax": False}),
    ],
)
def test_scaling_ratios_compare_n_4096_with_n_1024(linear, softmax, met):
    data, n = _scaling_data(linear, softmax)
    rows = {(r["kernel"], r["quantity"]): r for r in scaling_ratios(data, n)}
    assert rows[("linear", "time")]["ratio"] == pytest.approx(linear)
    assert rows[("softmax", "time")]["ratio"] == pytest.approx(softmax)
    assert rows[("linear", "time")]["met"] is met["linear"]
    assert rows[("softmax", "time")]["met"] is met["softmax"]
    assert rows[("linear", "memory")]["ratio"] == pytest.approx(4.0)
    assert rows[("softmax", "memory")]["ratio"] == pytest.approx(16.0)
    assert rows[("linear", "memory")]["met"] and rows[("softmax", "memory")]["met"]


def test_cli_writes_markdown_json_and_figure(tmp_path):
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps(_data()))
    out = tmp_path / "out"
    assert main([str(bench), "--out-dir", str(out), "--no-scaling"]) == 0
    report = json.loads((out / "ratios.json").read_text())
    assert [r["op"] for r in report["ops"]] == ["a", "b", "c"]
    assert report["machine"]["cores"] == 2 and report["scaling"] is None
    assert "| a " in (out / "ratios.md").read_text()
    assert (out / "bench_ratios.png").read_bytes()[:8] == PNG


def test_scaling_figure_is_a_png(tmp_path):
    from benchmarks.ratios import SCALING_TARGETS
    from reports.bench_figure import scaling_figure

    data, n = _scaling_data(4.0, 16.0)
    scaling = {"n": n, "d": 32, "repeats": 5, **data, "ratios": scaling_ratios(data, n)}
    path = scaling_figure(scaling, tmp_path / "s.png")
    assert path.read_bytes()[:8] == PNG
    assert set(SCALING_TARGETS) == {"linear", "softmax"}


def test_every_case_runs_an_op_with_a_vjp_and_names_why_onnx_reference_is_missing():
    from conformance.adapters.onnx_graphs import OnnxReference
    from conformance.adapters.pytorch import TORCH_OPS
    from conformance.ops import OPS

    for name, case in cases.CASES.items():
        runnable = case.op in OPS and OPS[case.op].vjp is not None and case.op in TORCH_OPS
        # a case whose op is missing here is skipped by the benchmark, with the reason
        assert (cases.available(case) is None) == runnable, name
        if runnable:
            has_graph = callable(getattr(OnnxReference, case.op, None))
            assert has_graph or case.onnx_missing, name
