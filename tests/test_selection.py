"""Selection (--stems, --dtypes, --devices, --shard), the implementer's --xfails/--skips files,
--list-checks, and the report written at the end of a run."""

from __future__ import annotations

import json

import pytest

from conformance import selection

SOFT = ("--adapter", "reference", "--stems", "softmax")


def test_stems_and_dtypes_select(suite):
    run = suite(*SOFT, "--dtypes", "float32", "-k", "values")
    assert run.records, run.output[-2000:]
    assert {r["stem"] for r in run.records} == {"softmax"}
    assert {r["dtype"] for r in run.records} == {"float32"}


def test_devices_select(suite):
    run = suite(
        "--adapter",
        "reference",
        "--adapter",
        "torch-cuda",
        "--devices",
        "cuda",
        "-k",
        "test_values",
    )
    assert {r["adapter"] for r in run.records} == {"torch-cuda"}


def test_shards_cover_every_check_once(suite, tmp_path):
    full = suite(*SOFT, "-k", "values or sums")
    ids = sorted((r["adapter"], r["check_id"]) for r in full.records)
    parts = []
    for k in (1, 2, 3):
        part = suite(
            *SOFT,
            "-k",
            "values or sums",
            "--shard",
            f"{k}/3",
            "--results-dir",
            str(tmp_path / f"s{k}"),
        )
        parts += [(r["adapter"], r["check_id"]) for r in part.records]
    assert sorted(parts) == ids and len(ids) > 3


@pytest.mark.parametrize("bad", ["0/3", "4/3", "x"])
def test_bad_shard_is_one_line_error(suite, bad):
    run = suite(*SOFT, "--shard", bad)
    assert run.proc.returncode != 0 and "--shard" in run.output and "Traceback" not in run.output


def test_xfails_and_skips_files(suite, tmp_path):
    xfails = tmp_path / "xfails.txt"
    xfails.write_text(
        "# known problems of my library\n"
        "mutant-softmax-no-max:softmax/no_overflow/*   # overflows, fix planned\n"
        "softmax/values/float64   # expected to fail but does not\n"
        "softmax/nonexistent/*\n"
    )
    skips = tmp_path / "skips.txt"
    skips.write_text("softmax/*vjp*\n")
    run = suite(
        "--adapter",
        "tests/mutants/softmax.py:NoMaxSubtraction",
        "--stems",
        "softmax",
        "--xfails",
        str(xfails),
        "--skips",
        str(skips),
    )
    rows = {r["check_id"]: r for r in run.rows("mutant-softmax-no-max")}
    assert rows["softmax/no_overflow/float32"]["status"] == "xfail"
    assert "overflows, fix planned" in rows["softmax/no_overflow/float32"]["message"]
    assert rows["softmax/values/float64"]["status"] == "pass"
    assert rows["softmax/values/float64"]["message"].startswith(
        f"passes now: remove it from {xfails}"
    )
    assert rows["softmax/vjp/float32"]["status"] == "skip"
    assert "softmax/nonexistent/* matches no check" in run.output
    # shift invariance still fails (not listed): the run fails
    assert rows["softmax/shift_invariance/float32"]["status"] == "fail"
    assert run.proc.returncode == 1


def test_strict_xfails_fail_the_run_when_one_passes(suite, tmp_path):
    xfails = tmp_path / "xfails.txt"
    xfails.write_text("softmax/values/*\n")
    lenient = suite(*SOFT, "-k", "test_values", "--xfails", str(xfails))
    strict = suite(
        *SOFT,
        "-k",
        "test_values",
        "--xfails",
        str(xfails),
        "--strict-xfails",
        "--results-dir",
        str(tmp_path / "strict"),
    )
    assert lenient.proc.returncode == 0, lenient.output[-2000:]
    assert strict.proc.returncode == 1


def test_intermittent_deviation_not_triggered_is_a_pass_even_when_strict(suite, tmp_path):
    run = suite(
        "--adapter",
        "tests/faults/adapters.py:DeclaresIntermittent",
        "--stems",
        "softmax",
        "-k",
        "test_values or test_sums_to_one",
        "--strict-xfails",
    )
    rows = {r["check_id"]: r for r in run.records}
    quiet = rows["softmax/values/float64"]
    assert quiet["status"] == "pass", quiet
    assert quiet["message"].startswith("intermittent deviation not triggered this run (")
    assert "declared by declares-intermittent (intermittent): fires on rare" in quiet["message"]
    # An ordinary declared deviation that passes still fails a strict run.
    assert rows["softmax/sums_to_one/float64"]["status"] == "fail"
    assert run.proc.returncode == 1


def test_list_checks(suite):
    run = suite("--adapter", "tests/faults/adapters.py:OnlySoftmax", "--list-checks")
    assert run.proc.returncode == 0, run.output[-2000:]
    assert "softmax/values/float64" in run.output and "covered" in run.output
    assert "not covered: sdpa" in run.output
    assert not run.records


def test_end_of_run_report_and_markdown(suite, tmp_path):
    md = tmp_path / "summary.md"
    run = suite(
        *SOFT, "-k", "test_values", "--report-dir", str(tmp_path / "rep"), "--report-md", str(md)
    )
    assert f"report: {tmp_path / 'rep' / 'index.html'}" in run.output
    assert "worst margin" in run.output
    assert (tmp_path / "rep" / "index.html").exists()
    assert "softmax" in md.read_text()
    summary = json.loads((tmp_path / "rep" / "summary.json").read_text())
    assert summary["runs"][0]["complete"]


def test_pattern_file_parsing(tmp_path):
    f = tmp_path / "x.txt"
    f.write_text("a/b/*  # why\n\n# only a comment\nlib:c/d/float32\n")
    pf = selection.PatternFile.read(str(f))
    assert pf.match("any", "a/b/float16") == "why"
    assert pf.match("other", "c/d/float32") is None
    assert pf.match("lib", "c/d/float32") == "x.txt:4"
    assert pf.unused() == []
