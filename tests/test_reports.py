"""Self-tests of the report generator (reports/) on the two-run fixture in
tests/fixtures/reports/ (see make_fixture.py there for what each run contains)."""

from __future__ import annotations

import base64
import importlib.util
import json
import re
import shutil
import sys
import types
from pathlib import Path

import pytest

from reports import ReportError, build
from reports.load import load_runs
from tests.conftest import reports_cli
from tests.fixtures.reports.html_check import parse_page

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "reports"
RUN_A, RUN_B = FIXTURE / "run_a", FIXTURE / "run_b"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
XSS = "<script>alert(1)</script>"

# Facts fixed by the fixture: counts per stem / adapter / status over both runs (run_a and run_b
# both hold attention/values/float32 and norm/layer_norm/float32 for torch: merged, not replaced).
EXPECTED_COUNTS = {
    ("attention", "torch"): {"pass": 3, "fail": 1, "skip": 1},
    ("attention", "onnxruntime"): {"error": 1},
    ("norm", "torch"): {"pass": 2, "fail": 1, "xfail": 1},
    ("norm", "onnxruntime"): {"not_covered": 2},
}
EXPECTED_WORST = {("attention", "torch"): 3.2, ("norm", "torch"): 40.0}
RECORDS_A, RECORDS_B = 10, 2


def _fixture_module() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("make_fixture", FIXTURE / "make_fixture.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fixture_lines(folder: Path) -> list[dict]:
    return [
        json.loads(line)
        for path in sorted(folder.glob("results-*.jsonl"))
        for line in path.read_text().splitlines()
        if line.startswith("{") and line.endswith("}")
    ]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report")
    index = build([RUN_A, RUN_B], out, warn=lambda _: None)
    assert index == out / "index.html"
    return out


@pytest.fixture(scope="module")
def summary(report: Path) -> dict:
    return json.loads((report / "summary.json").read_text())


def _copy_runs(tmp_path: Path) -> Path:
    for run in (RUN_A, RUN_B):
        shutil.copytree(run, tmp_path / "results" / run.name)
    return tmp_path / "results"


# -- the fixture itself -----------------------------------------------------------------------


def test_fixture_is_what_make_record_writes(tmp_path: Path) -> None:
    # If the record schema changes, the committed fixture must be regenerated with make_fixture.
    _fixture_module().write(tmp_path)
    for run in (RUN_A, RUN_B):
        for path in run.iterdir():
            assert (tmp_path / run.name / path.name).read_text() == path.read_text(), path


# -- merging ----------------------------------------------------------------------------------


def test_merges_both_runs_and_counts(summary: dict) -> None:
    assert [r["run"] for r in summary["runs"]] == ["run_a", "run_b"]
    assert [r["records"] for r in summary["runs"]] == [RECORDS_A, RECORDS_B]
    assert summary["totals"]["records"] == RECORDS_A + RECORDS_B
    pairs = {(stem, adapter) for stem, by in summary["counts"].items() for adapter in by}
    assert pairs == set(EXPECTED_COUNTS)
    for (stem, adapter), expected in EXPECTED_COUNTS.items():
        counts = summary["counts"][stem][adapter]
        assert {s: n for s, n in counts.items() if n} == expected, (stem, adapter)
    worst = {(r["stem"], r["adapter"]): r["worst_margin"] for r in summary["summary"]}
    for pair, margin in EXPECTED_WORST.items():
        assert worst[pair] == pytest.approx(margin)


def test_every_record_is_tagged_with_its_run() -> None:
    runs = load_runs([RUN_A, RUN_B], warn=lambda _: None)
    for run in runs:
        assert run.records and {r["run"] for r in run.records} == {run.label}
    # The check both runs measured is kept once per run, not overwritten.
    same = [
        r["run"]
        for run in runs
        for r in run.records
        if (r["check_id"], r["adapter"]) == ("attention/values/float32", "torch")
    ]
    assert sorted(same) == ["run_a", "run_b"]


def test_parent_folder_finds_sub_folders(tmp_path: Path, summary: dict) -> None:
    build([FIXTURE], tmp_path, warn=lambda _: None)
    merged = json.loads((tmp_path / "summary.json").read_text())
    assert merged["counts"] == summary["counts"]
    assert {r["run"] for r in merged["runs"]} == {"run_a", "run_b"}


def test_same_run_id_twice_is_kept_apart(tmp_path: Path) -> None:
    for machine in ("m1", "m2"):
        shutil.copytree(RUN_A, tmp_path / machine / "run_a")
    build([tmp_path / "m1", tmp_path / "m2"], tmp_path / "out", warn=lambda _: None)
    merged = json.loads((tmp_path / "out" / "summary.json").read_text())
    labels = [r["run"] for r in merged["runs"]]
    assert len(set(labels)) == 2 and all(label.startswith("run_a") for label in labels)
    assert merged["totals"]["records"] == 2 * RECORDS_A


def test_malformed_line_is_counted_and_warned(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    build([RUN_A, RUN_B], tmp_path)
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if "malformed" in line]
    assert len(warnings) == 1 and "run_b" in warnings[0] and "results-main.jsonl:3" in warnings[0]
    data = json.loads((tmp_path / "summary.json").read_text())
    assert data["totals"]["malformed_lines"] == 1
    assert [r["malformed_lines"] for r in data["runs"]] == [[], ["results-main.jsonl:3"]]


def test_incomplete_run_is_marked(report: Path, summary: dict) -> None:
    assert {r["run"]: r["complete"] for r in summary["runs"]} == {"run_a": True, "run_b": False}
    md = (report / "report.md").read_text()
    assert re.search(r"### run_b: \**incomplete", md)
    assert not re.search(r"### run_a: \**incomplete", md)
    html = (report / "index.html").read_text()
    assert re.search(r"<td>run_b</td><td class=\"incomplete\">incomplete</td>", html)
    assert not re.search(r"<td>run_a</td><td[^>]*>incomplete", html)


def test_run_without_manifest_is_incomplete_and_named_by_folder(tmp_path: Path) -> None:
    folder = tmp_path / "nightly-7"
    folder.mkdir()
    shutil.copy(RUN_A / "results-gw0.jsonl", folder)
    build([folder], tmp_path / "out", warn=lambda _: None)
    (run,) = json.loads((tmp_path / "out" / "summary.json").read_text())["runs"]
    assert run["run"] == "nightly-7" and run["complete"] is False and run["manifest"] is None


def test_newer_minor_schema_is_read(tmp_path: Path) -> None:
    folder = _copy_runs(tmp_path) / "run_a"
    path = folder / "results-gw0.jsonl"
    path.write_text(path.read_text().replace('"nnspec.results/1"', '"nnspec.results/1.1"', 1))
    build([folder], tmp_path / "out", warn=lambda _: None)
    data = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert data["totals"]["records"] == RECORDS_A and data["totals"]["malformed_lines"] == 0


# -- outputs ----------------------------------------------------------------------------------


def test_html_parses_and_escapes_record_text(report: Path) -> None:
    html = (report / "index.html").read_text()
    parser = parse_page(html)
    assert XSS not in html
    # The message is still there, as text a reader sees.
    assert XSS in "".join(parser.text)


def test_html_is_self_contained_with_embedded_png(report: Path) -> None:
    parser = parse_page((report / "index.html").read_text())
    images = [attrs["src"] for tag, attrs in parser.tags if tag == "img"]
    assert images
    for src in images:
        assert base64.b64decode(src.removeprefix("data:image/png;base64,")).startswith(PNG_MAGIC)


def test_failures_section_lists_every_failure_with_repro(report: Path, summary: dict) -> None:
    html = (report / "index.html").read_text()
    md = (report / "report.md").read_text()
    failing = [
        r for r in _fixture_lines(RUN_A) + _fixture_lines(RUN_B) if r["status"] in ("fail", "error")
    ]
    assert len(summary["failures"]) == len(failing)
    section = html[html.index('<section id="failures">') :]
    section = section[: section.index("</section>")]
    for record in failing:
        code = "<code>" + record["repro"].replace("'", "&#x27;") + "</code>"
        assert code in section, record["check_id"]
        assert record["repro"] in md
        if record["diagnosis"]:
            assert record["diagnosis"] in section


def test_reasons_are_grouped(summary: dict) -> None:
    reasons = {(r["status"], r["reason"]): r["count"] for r in summary["reasons"]}
    assert reasons[("not_covered", "onnxruntime has no 'layer_norm'")] == 2
    assert sum(reasons.values()) == 4  # 1 skip + 2 not covered + 1 xfail in the fixture


def test_manifest_fields_are_shown(report: Path) -> None:
    md = (report / "report.md").read_text()
    manifest = json.loads((RUN_B / "manifest.json").read_text())
    for value in (manifest["git_commit"], manifest["cpu"], manifest["gpu"], manifest["started"]):
        assert value in md
    assert " ".join(manifest["command"]) in md
    assert manifest["versions"]["torch"] in md


def test_margins_figure_is_png(report: Path) -> None:
    path = report / "figures" / "margins_by_dtype.png"
    assert path.read_bytes().startswith(PNG_MAGIC)


# -- traceability -----------------------------------------------------------------------------


TRACE = [
    {
        "formula": "softmax(QK^T / sqrt(d)) V <b>",
        "stem": "attention",
        "spec": "spec.attention.sdpa",
        "reference": "reference.attention.sdpa",
        "properties": ("attention/values",),
    },
    {
        "formula": "LayerNorm: gamma * (x - mu) / sqrt(var + eps) + beta",
        "stem": "norm",
        "spec": "spec.norm.layer_norm",
        "reference": "reference.norm.layer_norm",
        "properties": ("norm/layer_norm", "norm/not_written_yet"),
    },
    {
        "formula": "a property name that is only a prefix of another one",
        "stem": "norm",
        "spec": "spec.norm.layer",
        "reference": "reference.norm.layer",
        "properties": ("norm/layer",),
    },
]


def test_traceability_section_from_spec_trace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "spec.trace", types.SimpleNamespace(TRACE=TRACE))
    build([RUN_A, RUN_B], tmp_path, warn=lambda _: None)
    data = json.loads((tmp_path / "summary.json").read_text())
    attention, norm, prefix_only = data["trace"]
    assert attention["results"]["torch"]["counts"] == EXPECTED_COUNTS[("attention", "torch")]
    assert attention["results"]["onnxruntime"]["counts"] == {"error": 1}
    # norm/rms_norm (the xfail) is not a norm/layer_norm check: only the prefix + "/" counts.
    assert norm["results"]["torch"]["counts"] == {"pass": 2, "fail": 1}
    assert norm["results"]["torch"]["missing"] == ["norm/not_written_yet"]
    assert prefix_only["results"]["torch"] == {"counts": {}, "missing": ["norm/layer"]}
    html = (tmp_path / "index.html").read_text()
    assert '<section id="trace">' in html and "V &lt;b&gt;" in html
    assert "## Traceability" in (tmp_path / "report.md").read_text()


def test_no_traceability_section_without_spec_trace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "spec.trace", None)  # makes the import fail
    build([RUN_A], tmp_path, warn=lambda _: None)
    assert "trace" not in json.loads((tmp_path / "summary.json").read_text())
    assert 'id="trace"' not in (tmp_path / "index.html").read_text()


# -- errors -----------------------------------------------------------------------------------


def test_no_records_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="no records"):
        build([tmp_path], tmp_path / "out", warn=lambda _: None)


def test_cli_prints_summary_and_report_path(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = reports_cli(str(RUN_A), str(RUN_B), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[-1] == f"report: {out / 'index.html'}"
    assert (out / "index.html").is_file()
    # A user's report carries the figures drawn from the reference kernels too.
    for name in ("gradient_flow.png", "attention_scaling.png", "swin_cost.png"):
        assert (out / "figures" / name).read_bytes().startswith(PNG_MAGIC)
        assert f"figures/{name}" in (out / "report.md").read_text()
    # ... and the whole-network cost table of the FLOP models, in both renderings.
    assert "ViT-B/16" in (out / "report.md").read_text()
    assert "ViT-B/16" in (out / "index.html").read_text()
    header = lines[0].split()
    assert header[:2] == ["component", "adapter"] and "margin" in header
    rows = {tuple(line.split()[:2]): line.split()[2:] for line in lines[2:] if line.strip()}
    for (stem, adapter), expected in EXPECTED_COUNTS.items():
        order = ("pass", "fail", "error", "skip", "not_covered", "xfail")
        assert rows[stem, adapter][:6] == [str(expected.get(s, 0)) for s in order]
    run_lines = [line for line in lines if line.startswith("run ")]
    assert any("run_b" in line and "INCOMPLETE" in line for line in run_lines)
    assert not any("run_a" in line and "INCOMPLETE" in line for line in run_lines)
    assert "results-main.jsonl:3" in proc.stderr


def _set_schema(path: Path, old: str, new: str) -> None:
    path.write_text(path.read_text().replace(old, new, 1))


@pytest.mark.parametrize(
    "case",
    ["missing folder", "no records", "record schema 2", "manifest schema 2"],
)
def test_cli_one_line_errors(tmp_path: Path, case: str) -> None:
    results = _copy_runs(tmp_path)
    if case == "missing folder":
        target, named = tmp_path / "does-not-exist", "does-not-exist"
    elif case == "no records":
        target, named = tmp_path / "empty", "empty"
        target.mkdir()
    elif case == "record schema 2":
        target, named = results, "results-gw1.jsonl"
        _set_schema(results / "run_a" / named, "nnspec.results/1", "nnspec.results/2")
    else:
        target, named = results, "manifest.json"
        _set_schema(results / "run_b" / named, "nnspec.manifest/1", "nnspec.manifest/2")
    proc = reports_cli(str(target), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith("error:") and named in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out" / "index.html").exists()


def test_bench_results_become_a_report_section(tmp_path: Path) -> None:
    # What `nox -s bench` wrote (benchmarks/ratios.py's JSON) shown in both renderings.
    bench = tmp_path / "bench"
    bench.mkdir()
    op = {
        "op": "sdpa",
        "size": "B=2",
        "seconds": {"reference-fwd+bwd": 0.3, "torch-fwd+bwd": 0.1},
        "reference_vs_torch": 3.0,
        "torch_target_met": False,
        "onnx_vs_reference": None,
        "onnx_target_met": None,
        "onnx_note": "no graph",
    }
    (bench / "ratios.json").write_text(json.dumps({"stat": "median", "ops": [op]}))
    out = tmp_path / "out"
    proc = reports_cli(str(RUN_A), "--out", str(out), "--bench", str(bench))
    assert proc.returncode == 0, proc.stderr
    for page in ("report.md", "index.html"):
        text = (out / page).read_text()
        assert "Performance (nox -s bench)" in text and "3.00" in text and "missed" in text
    broken = reports_cli(str(RUN_A), "--out", str(out), "--bench", str(tmp_path / "none"))
    assert broken.returncode == 2 and "no readable ratios.json" in broken.stderr
