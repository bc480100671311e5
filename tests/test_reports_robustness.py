"""Self-tests of the report's robustness section (reports/robustness.py): error rows by cause,
incomplete runs, and the mutant-zoo kill rate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conformance.results import append_record, make_record, write_manifest
from reports import build
from reports.robustness import error_cause
from tests.fixtures.reports.html_check import parse_page

FINISHED = "2025-01-01T10:05:00+00:00"


def _rec(adapter: str, check_id: str, status: str, **extra: Any) -> dict:
    stem, prop, dtype = check_id.split("/")
    return make_record(
        check_id=check_id,
        adapter=adapter,
        stem=stem,
        property=prop,
        dtype=dtype,
        status=status,
        **extra,
    )


def _run(folder: Path, records: list[dict], **manifest: Any) -> Path:
    folder.mkdir(parents=True)
    if manifest:
        write_manifest(folder, {"run_id": folder.name, **manifest})
    for record in records:
        append_record(folder / "results-main.jsonl", record)
    return folder


@pytest.mark.parametrize(
    ("message", "cause"),
    [
        ("timeout: torch.sdpa did not return within 60 s", "timeout"),
        ("raised Failed: Timeout >30.0s", "timeout"),  # pytest-timeout, whole check
        ("raised TimeoutError", "timeout"),
        ("worker crashed during this check (killed, segfault or os._exit)", "worker crashed"),
        ("raised ValueError: shapes (2,3) and (3,2) not aligned", "raised ValueError"),
        ("raised KeyError", "raised KeyError"),
        ("RuntimeError: session failed", "raised RuntimeError"),  # without the prefix
        ("out [float32]: non-finite output at 3 of 12 positions", "non-finite output"),
        ("out: shape (2, 3), expected (3, 2)", "shape"),
        ("out: dtype float64, expected float32", "dtype"),
        ("runtime output differs", "other"),  # "runtime output" is not a timeout
        (None, "other"),
    ],
)
def test_error_cause(message: str | None, cause: str) -> None:
    assert error_cause(message) == cause


ERRORS = [
    "timeout: torch.sdpa did not return within 60 s",
    "timeout: the gradient of torch.sdpa did not return within 60 s",
    "worker crashed during this check (killed, segfault or os._exit)",
    "raised ValueError: bad axis",
    "raised ValueError: other text, same cause",
    "raised ZeroDivisionError: division by zero",
]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("robust")
    errors = [
        _rec("torch", f"attention/values/{dtype}", "error", message=message)
        for dtype, message in zip(
            ("float64", "float32", "float16", "bfloat16", "x1", "x2"), ERRORS, strict=True
        )
    ]
    zoo = [
        # Caught twice, with a diagnosis.
        _rec("mutant-scale", "attention/values/float64", "fail", diagnosis="scale=1/d"),
        _rec("mutant-scale", "attention/values/float32", "fail", diagnosis="scale=1/d"),
        _rec("mutant-scale", "attention/masks/float32", "pass"),
        # Escaped: every check passes.
        _rec("mutant-silent", "attention/values/float64", "pass"),
        # Broken, not caught: an error row is not a failed check.
        _rec("mutant-broken", "attention/values/float64", "error", message="raised OSError"),
        # Not a mutant: a name merely containing the word.
        _rec("torch-mutant-free", "attention/values/float64", "fail"),
    ]
    declared = "declared by torch (intermittent): a rare tail"
    quiet = f"intermittent deviation not triggered this run ({declared})"
    intermittent = [
        _rec("torch", "activation/tail/float32", "xfail", message=declared),
        _rec("torch", "activation/tail/float64", "pass", message=quiet),
        _rec("torch", "activation/other/float64", "xfail", message="declared by torch: always"),
    ]
    note = "{} past the bound of 6 Monte Carlo draws judged under 24"
    escalated = [
        _rec("torch", "transformer/encoder_vjp/float32", "pass", margin=0.55,
             message=note.format("1 example")),
        _rec("onnxruntime", "norm/layer_norm_vjp/float16", "fail", margin=1.4,
             message=f"out [float16]: error 0.1 > allowed 0.07; {note.format('3 examples')}"),
        _rec("torch", "norm/layer_norm_vjp/float32", "pass", margin=0.9, message=None),
    ]  # fmt: skip
    _run(root / "results" / "complete", errors + intermittent + escalated, finished=FINISHED)
    _run(root / "results" / "seed-2", [intermittent[0]], finished=FINISHED)
    _run(root / "results" / "zoo", zoo, finished=FINISHED)
    _run(root / "results" / "cut", [_rec("torch", "norm/x/float32", "pass")], started="t0")
    _run(
        root / "results" / "cancelled",
        [_rec("torch", "norm/y/float32", "pass")],
        finished=FINISHED,
        interrupted=True,
    )
    _run(root / "results" / "no-manifest", [_rec("torch", "norm/z/float32", "pass")])
    build([root / "results"], root / "out", warn=lambda _: None)
    return root / "out"


@pytest.fixture(scope="module")
def robustness(report: Path) -> dict:
    return json.loads((report / "summary.json").read_text())["robustness"]


def test_errors_counted_by_cause(robustness: dict) -> None:
    causes = {c["cause"]: c["count"] for c in robustness["error_causes"]}
    assert causes == {
        "timeout": 2,
        "worker crashed": 1,
        "raised ValueError": 2,
        "raised ZeroDivisionError": 1,
        "raised OSError": 1,
    }
    # Most frequent first; the example is one of the group's messages.
    assert [c["count"] for c in robustness["error_causes"]] == [2, 2, 1, 1, 1]
    timeout = next(c for c in robustness["error_causes"] if c["cause"] == "timeout")
    assert timeout["example"] in ERRORS and timeout["adapters"] == ["torch"]


def test_incomplete_runs_are_listed_with_why(robustness: dict) -> None:
    reasons = {r["run"]: r["reason"] for r in robustness["incomplete_runs"]}
    assert reasons == {
        "cut": 'no "finished" in manifest',
        "cancelled": "interrupted",
        "no-manifest": "no (readable) manifest",
    }


def test_mutant_kill_rate(robustness: dict) -> None:
    zoo = robustness["mutant_zoo"]
    assert (zoo["caught"], zoo["total"]) == (1, 3)
    assert zoo["kill_rate"] == pytest.approx(1 / 3)
    mutants = {m["adapter"]: m for m in zoo["mutants"]}
    assert set(mutants) == {"mutant-scale", "mutant-silent", "mutant-broken"}
    scale = mutants["mutant-scale"]
    assert scale["caught"] and scale["diagnoses"] == ["scale=1/d"]
    assert scale["checks"] == ["attention/values/float32", "attention/values/float64"]
    assert not mutants["mutant-silent"]["caught"]
    assert not mutants["mutant-broken"]["caught"] and mutants["mutant-broken"]["errors"] == 1


def test_intermittent_deviations_count_runs_showing_them(robustness: dict) -> None:
    rows = {(r["adapter"], r["check_id"]): r for r in robustness["intermittent"]}
    assert rows == {
        ("torch", "activation/tail/float64"): {
            "adapter": "torch",
            "check_id": "activation/tail/float64",
            "fired": 0,
            "not_triggered": 1,
        },
        ("torch", "activation/tail/float32"): {
            "adapter": "torch",
            "check_id": "activation/tail/float32",
            "fired": 2,
            "not_triggered": 0,
        },
    }
    assert robustness["intermittent"][0]["fired"] == 0  # never showing: listed first


def test_escalated_draws_listed_fails_first(robustness: dict) -> None:
    rows = [
        (r["adapter"], r["check_id"], r["status"], r["examples"]) for r in robustness["escalated"]
    ]
    assert rows == [
        ("onnxruntime", "norm/layer_norm_vjp/float16", "fail", 3),
        ("torch", "transformer/encoder_vjp/float32", "pass", 1),
    ]
    assert {r["draws"] for r in robustness["escalated"]} == {24}


def test_section_in_markdown_and_html(report: Path) -> None:
    md = (report / "report.md").read_text()
    section = md[md.index("## Robustness") :]
    section = section[: section.index("\n## ", 1)]
    for text in ("raised ZeroDivisionError", "worker crashed", "cancelled", "interrupted"):
        assert text in section
    assert "Kill rate: 1 of 3 mutants caught (33%)." in section
    assert "**escaped**" in section
    assert "2 checks covered by a declared intermittent deviation; 1 did not show it" in section
    assert "2 check records had examples past the usual Monte Carlo draws' bound" in section
    assert "1 passed there, 1 failed" in section
    page = (report / "index.html").read_text()
    parser = parse_page(page)
    assert '<a href="#robustness">' in page
    html_section = page[page.index('<section id="robustness">') :]
    html_section = html_section[: html_section.index("</section>")]
    for text in (
        "raised ZeroDivisionError",
        "Kill rate: 1 of 3",
        "mutant-silent",
        "scale=1/d",
        "Intermittent deviations",
        "activation/tail/float64",
        "Escalated Monte Carlo draws",
        "transformer/encoder_vjp/float32",
    ):
        assert text in html_section
    assert "Kill rate: 1 of 3" in "".join(parser.text)


def test_no_mutant_rows_no_zoo(tmp_path: Path) -> None:
    _run(tmp_path / "r", [_rec("torch", "norm/x/float32", "pass")], finished=FINISHED)
    build([tmp_path / "r"], tmp_path / "out", warn=lambda _: None)
    rob = json.loads((tmp_path / "out" / "summary.json").read_text())["robustness"]
    assert rob == {
        "error_causes": [],
        "incomplete_runs": [],
        "mutant_zoo": None,
        "intermittent": [],
        "escalated": [],
    }
    md = (tmp_path / "out" / "report.md").read_text()
    assert "No error rows." in md and "None: every run finished." in md
    assert "Mutant zoo" not in md
    assert "Mutant zoo" not in (tmp_path / "out" / "index.html").read_text()
