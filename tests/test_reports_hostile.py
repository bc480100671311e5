"""Hostile record text (terminal escapes, markup, NUL, lone surrogates, 10,000 characters) in
the report and the comparison: shown escaped, visible and cut; kept whole in summary.json."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from conformance.results import append_record, make_record, write_manifest
from reports.safe_text import LIMIT, shorten, shown, visible
from tests.conftest import reports_cli
from tests.fixtures.reports.html_check import parse_page

ROOT = Path(__file__).resolve().parents[1]
LONG = "A" * 10_000
# The adapter name and the message: an ANSI colour, a script tag, a NUL, a lone surrogate
# (JSON can carry one; UTF-8 cannot encode it), then 10,000 characters.
EVIL = "evil\x1b[31m<script>alert(1)</script>\x00\ud800" + LONG
RAW = ("\x1b", "\x00", "\ud800", LONG)


def test_visible_escapes_controls_but_keeps_newline_and_tab() -> None:
    assert visible("a\x1b[31mb\x00c\x7f\x9b\u202e\ud800") == (
        "a\\x1b[31mb\\x00c\\x7f\\x9b\\u202e\\ud800"
    )
    assert visible("line\n\tnext é ✓") == "line\n\tnext é ✓"


def test_shorten_cuts_with_a_marker() -> None:
    assert shorten("x" * LIMIT) == "x" * LIMIT
    cut = shorten("x" * (LIMIT + 1))
    assert cut.startswith("x" * LIMIT + "...") and f"{LIMIT + 1} characters" in cut
    # Cut before escaping, so an escape is never split.
    assert shown("\x1b" * (LIMIT + 5)).startswith("\\x1b" * LIMIT + "...")


def _rec(**fields: Any) -> dict:
    base = {
        "check_id": "attention/values/float32",
        "adapter": EVIL,
        "stem": "attention",
        "property": "values",
        "dtype": "float32",
        "status": "fail",
        "margin": 3.0,
        "message": EVIL,
        "diagnosis": EVIL,
        "repro": "pytest " + EVIL,
    }
    return make_record(**{**base, **fields})


def _results(folder: Path, *records: dict, torch: str = "2.14.1") -> Path:
    folder.mkdir(parents=True)
    write_manifest(folder, {"run_id": "run\x1b[2J" + LONG, "versions": {"torch": torch + EVIL}})
    for record in records:
        append_record(folder / "results-main.jsonl", record)
    return folder


def _assert_shown_safely(text: str, where: str) -> None:
    for raw in RAW:
        assert raw not in text, (where, repr(raw[:10]))
    assert "\\x1b[31m" in text and "\\x00" in text and "\\ud800" in text, where
    assert "characters in all]" in text, where  # the truncation marker


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    root = tmp_path_factory.mktemp("hostile")
    results = _results(
        root / "results",
        _rec(),
        _rec(status="error", check_id="attention/values/float64", dtype="float64"),
        _rec(adapter="mutant-" + EVIL),
        # A CUDA adapter: its name is a GPU-section column and a tick label of its figure (a
        # malformed "$...$" would be parsed as mathtext there unless escaped).
        _rec(adapter="gpu-$\\frac{$" + EVIL, device="cuda:0", op="sdpa"),
    )
    proc = reports_cli(str(results), "--out", str(root / "out"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    return root / "out", proc


def test_console_summary(report: tuple[Path, subprocess.CompletedProcess]) -> None:
    _, proc = report
    _assert_shown_safely(proc.stdout, "stdout")
    for raw in ("\x1b", "\x00"):
        assert raw not in proc.stderr


def test_markdown(report: tuple[Path, subprocess.CompletedProcess]) -> None:
    out, _ = report
    md = (out / "report.md").read_text()
    _assert_shown_safely(md, "report.md")
    assert "&lt;script&gt;" in md
    # Raw markup only inside code spans (the repro), where Markdown shows it as text.
    assert "<script>" not in re.sub(r"(`+) .*? \1", "", md)


def test_html(report: tuple[Path, subprocess.CompletedProcess]) -> None:
    out, _ = report
    page = (out / "index.html").read_text()
    _assert_shown_safely(page, "index.html")
    assert "<script>" not in page
    text = "".join(parse_page(page).text)
    # What the reader sees: the markup as text, the escape sequence as visible characters.
    assert "evil\\x1b[31m<script>alert(1)</script>\\x00\\ud800AAAA" in text
    assert "characters in all]" in text


def test_summary_json_keeps_everything(report: tuple[Path, subprocess.CompletedProcess]) -> None:
    out, _ = report
    data = json.loads((out / "summary.json").read_text())
    assert EVIL in data["adapters"]
    assert {f["message"] for f in data["failures"]} == {EVIL}
    assert data["runs"][0]["run"] == "run\x1b[2J" + LONG
    zoo = data["robustness"]["mutant_zoo"]
    assert zoo["mutants"][0]["adapter"] == "mutant-" + EVIL
    assert zoo["mutants"][0]["diagnoses"] == [EVIL]


def test_compare(tmp_path: Path) -> None:
    old = _results(tmp_path / "old", _rec(status="pass", margin=0.1), torch="2.13")
    new = _results(tmp_path / "new", _rec(), _rec(check_id="softmax/x/float32"))
    out = tmp_path / "cmp"
    proc = reports_cli("compare", str(old), str(new), "--out", str(out), "--strict")
    assert proc.returncode == 1, proc.stderr[-2000:]
    _assert_shown_safely(proc.stdout, "stdout")
    md = (out / "compare.md").read_text()
    _assert_shown_safely(md, "compare.md")
    assert "<script>" not in re.sub(r"(`+) .*? \1", "", md)
    page = (out / "compare.html").read_text()
    _assert_shown_safely(page, "compare.html")
    assert "<script>" not in page
    parse_page(page)
    data = json.loads((out / "compare.json").read_text())
    assert {r["message"] for r in data["newly_failing"]} == {EVIL}
