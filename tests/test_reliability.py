"""A crashing or interrupted run loses nothing already measured."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

from conformance import results
from tests.conftest import ROOT

F = "tests/faults/adapters.py"


def test_a_crashing_worker_becomes_an_error_row_and_the_run_goes_on(suite):
    run = suite("--adapter", f"{F}:Crashes", "-n", "2", "-k", "test_values", timeout=600)
    crashed = run.rows("fault-crash", stem="softmax", status="error")
    assert crashed, run.output[-3000:]
    assert "worker crashed" in crashed[0]["message"]
    # The same adapter's attention checks (no crash there) ran and passed.
    assert run.rows("fault-crash", check_id="attention/values/float64")[0]["status"] == "pass"


def test_a_leaking_adapter_becomes_an_error_row_and_the_run_goes_on(suite):
    args = ("--adapter", f"{F}:LeaksMemory", "--memory-limit", "2", "-n", "2")
    run = suite(*args, "-k", "test_values", "--stems", "softmax,attention", timeout=600)
    leaked = run.rows("fault-leak", stem="softmax", status="error")
    assert leaked, run.output[-3000:]
    assert all("out of memory" in r["message"] for r in leaked), leaked
    # One row per check: the worker wrote it before leaving, the controller added none.
    cases = [r["case"] for r in run.rows("fault-leak")]
    assert len(cases) == len(set(cases))
    # The worker was replaced and the other checks ran: attention never leaks.
    assert run.rows("fault-leak", check_id="attention/values/float64")[0]["status"] == "pass"


def test_sigterm_closes_the_run_as_interrupted_with_a_report(tmp_path):
    folder, report = tmp_path / "results", tmp_path / "report"
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "conformance",
        "-q",
        "-p",
        "no:cacheprovider",
        "--adapter",
        "reference",
        "--adapter",
        f"{F}:Hangs",
        "--results-dir",
        str(folder),
        "--report-dir",
        str(report),
        "-p",
        "no:xdist",
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    while time.time() < deadline and not any(results.iter_records(folder)):
        time.sleep(0.5)
    time.sleep(1.0)  # now inside the hanging check, with records already written
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    written = list(results.iter_records(folder))
    assert written, out.decode()[-2000:]
    manifest = results.read_manifest(folder)
    assert manifest["interrupted"] is True
    assert (report / "index.html").exists()
    # Written in the seconds a cancelled CI job gets: without the reference figures.
    assert not (report / "figures" / "attention_scaling.png").exists()
    assert "INCOMPLETE" in out.decode()


def test_same_command_same_records(suite, tmp_path):
    args = (
        "--adapter",
        "tests/mutants/attention.py:ScaleOneOverD",
        "--stems",
        "attention",
        "-k",
        "values or permutation",
    )
    first = suite(*args, "--results-dir", str(tmp_path / "a"))
    second = suite(*args, "--results-dir", str(tmp_path / "b"))

    def key(run):
        drop = {"duration_s", "worker"}
        return sorted(
            json.dumps({k: v for k, v in r.items() if k not in drop}, sort_keys=True)
            for r in run.records
        )

    assert first.records and key(first) == key(second)
    assert any(r["status"] == "fail" for r in first.records)
