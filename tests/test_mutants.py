"""Every mutant in the zoo is caught, with the right diagnosis where it equals a variant, and
the reference adapter (the control) passes everything on the same run."""

from __future__ import annotations

import shlex

import pytest

from tests.conftest import run_suite
from tests.mutants import MUTANTS


@pytest.fixture(scope="module")
def zoo_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("zoo") / "results"
    specs = [arg for m in MUTANTS.values() for arg in ("--adapter", m.spec)]
    return run_suite(folder, "--adapter", "reference", *specs)


def _adapter_name(run, spec):
    names = {r["adapter"] for r in run.records if spec.split(":")[-1].lower() in r["repro"].lower()}
    assert len(names) == 1, f"no rows for {spec}: {run.output[-2000:]}"
    return names.pop()


@pytest.mark.parametrize("mutant", sorted(MUTANTS))
def test_mutant_is_caught(zoo_run, mutant):
    m = MUTANTS[mutant]
    name = _adapter_name(zoo_run, m.spec)
    fails = zoo_run.rows(name, status="fail", stem=m.stem)
    assert fails, f"mutant {mutant} escaped: no fail row in {m.stem}"
    if m.diagnosis:
        assert any(r["diagnosis"] == m.diagnosis for r in fails), (
            f"{mutant}: expected diagnosis {m.diagnosis!r}, got {[r['diagnosis'] for r in fails]}"
        )
    assert not zoo_run.rows(name, status="error"), "a mutant is wrong, not broken: no error rows"


def test_reference_control_passes(zoo_run):
    rows = zoo_run.rows("reference")
    assert rows, zoo_run.output[-2000:]
    bad = [r for r in rows if r["status"] != "pass"]
    assert not bad, bad[:3]


def test_zoo_run_exits_nonzero(zoo_run):
    # The suite fails the run when an implementation fails a check.
    assert zoo_run.proc.returncode == 1, zoo_run.output[-2000:]


def test_repro_line_replays_the_failure(zoo_run, tmp_path):
    row = zoo_run.rows(status="fail", check_id="attention/values/float32")[0]
    argv = shlex.split(row["repro"])[3:]  # drop "python -m pytest"
    assert argv[0] == row["case"]
    replay = run_suite(tmp_path / "replay", *argv[1:], target=argv[0], timeout=300)
    again = [r for r in replay.records if r["case"] == row["case"]]
    assert len(again) == 1, replay.output[-2000:]
    for key in ("status", "error", "allowed", "diagnosis", "message"):
        assert again[0][key] == row[key], key
