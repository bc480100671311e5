"""Every mutant in the zoo is caught, with the right diagnosis where it equals a variant, and
the reference adapter (the control) passes everything on the same run."""

from __future__ import annotations

import shlex

import pytest

from tests.conftest import run_suite
from tests.mutants import MUTANTS

RUNS = sorted({(m.stem, m.dtype) for m in MUTANTS.values()})


def _adapter_name(run, spec):
    names = {r["adapter"] for r in run.records if spec.split(":")[-1].lower() in r["repro"].lower()}
    assert len(names) == 1, f"no rows for {spec}: {run.output[-2000:]}"
    return names.pop()


def _verdict(run, mutant: str) -> str | None:
    """Why the mutant is not caught as it must be, or None when it is."""
    m = MUTANTS[mutant]
    name = _adapter_name(run, m.spec)
    fails = run.rows(name, status="fail", stem=m.stem)
    if not fails:
        return f"{mutant} escaped: no fail row in {m.stem}"
    if m.diagnosis and not any(r["diagnosis"] == m.diagnosis for r in fails):
        return f"{mutant}: expected {m.diagnosis!r}, got {sorted({r['diagnosis'] for r in fails})}"
    if run.rows(name, status="error"):
        return f"{mutant} is wrong, not broken, yet has error rows"
    return None


# One suite run per stem and dtype, holding those mutants and the reference adapter as control,
# and one test per run: a per-mutant test would repeat the run in every xdist worker it lands on.
@pytest.mark.parametrize(("stem", "dtype"), RUNS, ids=[f"{s}-{d}" for s, d in RUNS])
def test_every_mutant_of_the_stem_is_caught_and_the_control_passes(tmp_path, stem, dtype):
    mutants = sorted(k for k, m in MUTANTS.items() if (m.stem, m.dtype) == (stem, dtype))
    specs = [a for k in mutants for a in ("--adapter", MUTANTS[k].spec)]
    run = run_suite(
        tmp_path / "results",
        "--adapter",
        "reference",
        *specs,
        "--dtypes",
        dtype,
        "--hypothesis-profile=fast",  # whether a check fails, not its smallest example
        target=f"conformance/test_{stem}.py",
    )
    escaped = [v for v in (_verdict(run, k) for k in mutants) if v]
    assert not escaped, escaped
    control = run.rows("reference")
    assert control, run.output[-2000:]
    assert not [r for r in control if r["status"] != "pass"], control[:3]
    # The suite fails the run when an implementation fails a check.
    assert run.proc.returncode == 1, run.output[-2000:]


def test_repro_line_replays_the_failure(tmp_path):
    spec = MUTANTS["attention-scale-1/d"].spec
    zoo_run = run_suite(
        tmp_path / "zoo",
        "--adapter",
        spec,
        "-k",
        "test_values",
        target="conformance/test_attention.py",
    )
    row = zoo_run.rows(status="fail", check_id="attention/values/float32")[0]
    argv = shlex.split(row["repro"])[3:]  # drop "python -m pytest"
    assert argv[0] == row["case"]
    replay = run_suite(tmp_path / "replay", *argv[1:], target=argv[0], timeout=300)
    again = [r for r in replay.records if r["case"] == row["case"]]
    assert len(again) == 1, replay.output[-2000:]
    for key in ("status", "error", "allowed", "diagnosis", "message"):
        assert again[0][key] == row[key], key
