"""Every mutant in the zoo is caught, with the right diagnosis where it equals a variant, and
the reference adapter (the control) passes everything on the same run."""

from __future__ import annotations

import shlex

import pytest

from tests.conftest import run_suite
from tests.mutants import MUTANTS


class _ZooRuns:
    """One suite run per stem, with that stem's mutants and the reference adapter as control:
    a mutant only needs the checks of the component it breaks."""

    def __init__(self, tmp_path_factory) -> None:
        self.factory = tmp_path_factory
        self.runs: dict[str, object] = {}

    def __getitem__(self, stem: str):
        if stem not in self.runs:
            folder = self.factory.mktemp(f"zoo-{stem}") / "results"
            specs = [a for m in MUTANTS.values() if m.stem == stem for a in ("--adapter", m.spec)]
            self.runs[stem] = run_suite(
                folder, "--adapter", "reference", *specs, target=f"conformance/test_{stem}.py"
            )
        return self.runs[stem]


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    return _ZooRuns(tmp_path_factory)


STEMS = sorted({m.stem for m in MUTANTS.values()})


def _adapter_name(run, spec):
    names = {r["adapter"] for r in run.records if spec.split(":")[-1].lower() in r["repro"].lower()}
    assert len(names) == 1, f"no rows for {spec}: {run.output[-2000:]}"
    return names.pop()


@pytest.mark.parametrize("mutant", sorted(MUTANTS))
def test_mutant_is_caught(zoo, mutant):
    m = MUTANTS[mutant]
    zoo_run = zoo[m.stem]
    name = _adapter_name(zoo_run, m.spec)
    fails = zoo_run.rows(name, status="fail", stem=m.stem)
    assert fails, f"mutant {mutant} escaped: no fail row in {m.stem}"
    if m.diagnosis:
        assert any(r["diagnosis"] == m.diagnosis for r in fails), (
            f"{mutant}: expected diagnosis {m.diagnosis!r}, got {[r['diagnosis'] for r in fails]}"
        )
    assert not zoo_run.rows(name, status="error"), "a mutant is wrong, not broken: no error rows"


@pytest.mark.parametrize("stem", STEMS)
def test_reference_control_passes(zoo, stem):
    zoo_run = zoo[stem]
    rows = zoo_run.rows("reference")
    assert rows, zoo_run.output[-2000:]
    bad = [r for r in rows if r["status"] != "pass"]
    assert not bad, bad[:3]


@pytest.mark.parametrize("stem", STEMS)
def test_zoo_run_exits_nonzero(zoo, stem):
    # The suite fails the run when an implementation fails a check.
    zoo_run = zoo[stem]
    assert zoo_run.proc.returncode == 1, zoo_run.output[-2000:]


def test_repro_line_replays_the_failure(zoo, tmp_path):
    zoo_run = zoo["attention"]
    row = zoo_run.rows(status="fail", check_id="attention/values/float32")[0]
    argv = shlex.split(row["repro"])[3:]  # drop "python -m pytest"
    assert argv[0] == row["case"]
    replay = run_suite(tmp_path / "replay", *argv[1:], target=argv[0], timeout=300)
    again = [r for r in replay.records if r["case"] == row["case"]]
    assert len(again) == 1, replay.output[-2000:]
    for key in ("status", "error", "allowed", "diagnosis", "message"):
        assert again[0][key] == row[key], key
