"""Helpers of nnspec's self-tests: run the conformance suite in a subprocess, read its rows."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conformance import results

ROOT = Path(__file__).resolve().parent.parent


class SuiteRun:
    def __init__(self, proc: subprocess.CompletedProcess, folder: Path) -> None:
        self.proc = proc
        self.folder = folder
        self.records = list(results.iter_records(folder)) if folder.exists() else []

    def rows(self, adapter: str | None = None, **match) -> list[dict]:
        return [
            r
            for r in self.records
            if (adapter is None or r["adapter"] == adapter)
            and all(r[k] == v for k, v in match.items())
        ]

    @property
    def output(self) -> str:
        return self.proc.stdout + self.proc.stderr


def run_suite(
    folder: Path,
    *args: str,
    target: str = "conformance",
    timeout: float = 900,
    env: dict[str, str] | None = None,
) -> SuiteRun:
    """`python -m pytest conformance ...` from the repository root, as a user would run it."""
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        target,
        "-q",
        "-p",
        "no:cacheprovider",
        "--results-dir",
        str(folder),
        *([] if "--report-dir" in args else ["--no-report"]),
        *args,
    ]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)
    if "--results-dir" in args:  # the caller's folder wins, as it does for pytest
        folder = Path(args[len(args) - 1 - args[::-1].index("--results-dir") + 1])
    return SuiteRun(proc, folder)


def reports_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """`python -m reports ...` as a user runs it; errors="surrogateescape" keeps hostile bytes
    in the output readable for the assertions."""
    return subprocess.run(
        [sys.executable, "-m", "reports", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        errors="surrogateescape",
        timeout=120,
    )


@pytest.fixture(autouse=True)
def _no_reference_figures(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process reports leave out the figures drawn from the reference kernels: they take
    seconds each and do not depend on the records under test. tests/test_reports.py checks them
    through the CLI, which draws them as a user's run does."""
    import reports.figures

    monkeypatch.setattr(reports.figures, "REFERENCE_FIGURES", {})


@pytest.fixture
def suite(tmp_path: Path):
    return lambda *args, **kw: run_suite(tmp_path / "results", *args, **kw)
