"""Self-tests of `python -m reports compare OLD NEW` (reports/compare*.py) on two small results
folders written here with the record writer of the suite."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from conformance.results import append_record, make_record, write_manifest
from reports.__main__ import main
from reports.compare import compare
from reports.load import load_runs
from tests.conftest import reports_cli
from tests.fixtures.reports.html_check import parse_page

ROOT = Path(__file__).resolve().parents[1]

NEWLY_FAILING = "attention/values/float32"
NEWLY_PASSING = "attention/values/float64"
MOVED = "softmax/values/float32"  # margin 0.1 -> 0.5: x5
UNCHANGED = "softmax/values/float64"
ONLY_NEW = "softmax/no_overflow/float16"
ONLY_OLD = "softmax/no_overflow/bfloat16"
NOT_COVERED_NOW = "norm/layer_norm/float32"  # pass -> not_covered: another status change


def _rec(check_id: str, status: str, margin: float | None = None, **extra: Any) -> dict:
    stem, prop, dtype = check_id.split("/")
    return make_record(
        check_id=check_id,
        adapter="torch",
        device="cpu",
        stem=stem,
        property=prop,
        dtype=dtype,
        status=status,
        margin=margin,
        repro=f"python -m pytest 'conformance/test_{stem}.py::test_{prop}[torch-{dtype}]'",
        **extra,
    )


OLD = [
    _rec(NEWLY_FAILING, "pass", 0.9),
    _rec(NEWLY_PASSING, "fail", 1.5, message="error 1.5e-6 > allowed 1e-6"),
    _rec(MOVED, "pass", 0.1),
    _rec(UNCHANGED, "pass", 0.3),
    _rec(ONLY_OLD, "skip", message="no bfloat16"),
    _rec(NOT_COVERED_NOW, "pass", 0.2),
]
NEW = [
    _rec(NEWLY_FAILING, "fail", 1.5, message="error 1.5e-6 > allowed 1e-6", diagnosis="eps"),
    _rec(NEWLY_PASSING, "pass", 0.9),
    _rec(MOVED, "pass", 0.5),
    _rec(UNCHANGED, "pass", 0.35),
    _rec(ONLY_NEW, "pass", 0.2),
    _rec(NOT_COVERED_NOW, "not_covered", message="torch has no 'layer_norm'"),
]


def _write(folder: Path, records: list[dict], torch: str) -> Path:
    folder.mkdir(parents=True)
    manifest = {
        "run_id": folder.name,
        "python": "3.11.9",
        "versions": {"numpy": "2.4.6", "torch": torch},
        "finished": "2025-01-01T10:05:00+00:00",
    }
    write_manifest(folder, manifest)
    for record in records:
        append_record(folder / "results-main.jsonl", record)
    return folder


@pytest.fixture
def sides(tmp_path: Path) -> tuple[Path, Path]:
    return (
        _write(tmp_path / "old" / "run", OLD, "2.13.0"),
        _write(tmp_path / "new" / "run", NEW, "2.14.1"),
    )


def _checks(rows: list[dict]) -> list[str]:
    return [r["check_id"] for r in rows]


def _compare(sides: tuple[Path, Path], factor: float = 2.0) -> dict:
    old, new = (load_runs([p], warn=lambda _: None) for p in sides)
    return compare(old, new, factor)


def test_every_category(sides: tuple[Path, Path]) -> None:
    data = _compare(sides)
    assert _checks(data["newly_failing"]) == [NEWLY_FAILING]
    assert _checks(data["newly_passing"]) == [NEWLY_PASSING]
    assert _checks(data["margin_moves"]) == [MOVED]
    assert data["margin_moves"][0]["ratio"] == pytest.approx(5.0)
    assert _checks(data["only_new"]) == [ONLY_NEW]
    assert _checks(data["only_old"]) == [ONLY_OLD]
    assert [(r["check_id"], r["old_status"], r["new_status"]) for r in data["status_changes"]] == [
        (NOT_COVERED_NOW, "pass", "not_covered")
    ]
    assert data["unchanged"] == 1  # UNCHANGED: same status, margin x1.17
    failing = data["newly_failing"][0]
    assert (failing["old_status"], failing["new_status"], failing["diagnosis"]) == (
        "pass",
        "fail",
        "eps",
    )
    assert data["versions"] == [{"name": "torch", "old": "2.13.0", "new": "2.14.1"}]


def test_factor_decides_what_moved(sides: tuple[Path, Path]) -> None:
    assert _compare(sides, factor=10)["margin_moves"] == []
    # The other way: NEW margins 5x smaller are listed too.
    old, new = (load_runs([p], warn=lambda _: None) for p in sides)
    assert _checks(compare(new, old, 2.0)["margin_moves"]) == [MOVED]
    with pytest.raises(ValueError):
        compare(old, new, 0.5)


def test_several_records_of_a_check_count_as_the_worst(tmp_path: Path) -> None:
    # Two runs of NEW (e.g. two machines): the check fails on one, so it is not newly passing.
    old = _write(tmp_path / "old" / "run", [_rec(NEWLY_PASSING, "fail", 1.5)], "2.14.1")
    new = tmp_path / "new"
    _write(new / "m1", [_rec(NEWLY_PASSING, "pass", 0.5)], "2.14.1")
    _write(new / "m2", [_rec(NEWLY_PASSING, "fail", 3.0)], "2.14.1")
    data = compare(load_runs([old]), load_runs([new]), 2.0)
    assert data["newly_passing"] == [] and data["status_changes"] == []
    assert data["unchanged"] == 1


def test_an_only_new_failure_is_newly_failing(tmp_path: Path) -> None:
    old = _write(tmp_path / "old" / "run", [_rec(UNCHANGED, "pass", 0.3)], "2.14.1")
    new = _write(tmp_path / "new" / "run", [_rec(ONLY_NEW, "error", message="x")], "2.14.1")
    data = compare(load_runs([old]), load_runs([new]), 2.0)
    assert _checks(data["newly_failing"]) == [ONLY_NEW] == _checks(data["only_new"])
    assert data["newly_failing"][0]["old_status"] == "absent"


def test_cli_writes_markdown_and_html(
    sides: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cmp"
    assert main(["compare", str(sides[0]), str(sides[1]), "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    lines = stdout.splitlines()
    assert lines[-1] == f"compare: {out / 'compare.html'}"
    md = (out / "compare.md").read_text()
    assert stdout.startswith(md)
    for check_id in (NEWLY_FAILING, NEWLY_PASSING, MOVED, ONLY_NEW, ONLY_OLD, NOT_COVERED_NOW):
        assert check_id in md
    assert UNCHANGED not in md
    assert "## Newly failing (1)" in md and "## Margins moved by more than x2 (1)" in md
    assert re.search(r"\|\s*torch\s*\|\s*2\.13\.0\s*\|\s*2\.14\.1\s*\|", md) and "x5" in md
    page = (out / "compare.html").read_text()
    parser = parse_page(page)
    text = "".join(parser.text)
    for check_id in (NEWLY_FAILING, NEWLY_PASSING, MOVED, ONLY_NEW, ONLY_OLD, NOT_COVERED_NOW):
        assert check_id in text
    ids = {attrs.get("id") for tag, attrs in parser.tags if tag == "section"}
    assert {"newly-failing", "newly-passing", "margins", "only-old", "only-new"} <= ids
    data = json.loads((out / "compare.json").read_text())
    assert _checks(data["newly_failing"]) == [NEWLY_FAILING]


def test_cli_strict_exits_1_only_when_something_newly_fails(
    sides: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old, new = map(str, sides)
    out = str(tmp_path / "cmp")
    assert main(["compare", old, new, "--out", out, "--strict"]) == 1
    assert "1 check(s) newly fail" in capsys.readouterr().err
    # NEW -> OLD: the failure becomes newly passing, and the newly passing one newly fails.
    assert main(["compare", new, old, "--out", out, "--strict"]) == 1
    assert main(["compare", old, old, "--out", out, "--strict"]) == 0


def test_cli_end_to_end(sides: tuple[Path, Path], tmp_path: Path) -> None:
    proc = reports_cli(
        "compare", str(sides[0]), str(sides[1]), "--out", str(tmp_path / "o"), "--strict"
    )
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.splitlines()[-1] == f"compare: {tmp_path / 'o' / 'compare.html'}"
    assert "# nnspec comparison" in proc.stdout


@pytest.mark.parametrize("case", ["missing OLD", "missing NEW", "no records", "factor"])
def test_cli_one_line_errors(sides: tuple[Path, Path], tmp_path: Path, case: str) -> None:
    old, new, extra = str(sides[0]), str(sides[1]), []
    if case == "missing OLD":
        old, named = str(tmp_path / "nope"), "nope"
    elif case == "missing NEW":
        new, named = str(tmp_path / "nope"), "nope"
    elif case == "no records":
        (tmp_path / "empty").mkdir()
        new, named = str(tmp_path / "empty"), "empty"
    else:
        extra, named = ["--factor", "0.5"], "--factor"
    proc = reports_cli("compare", old, new, "--out", str(tmp_path / "o"), *extra)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith("error:") and named in proc.stderr
    assert not (tmp_path / "o").exists()
