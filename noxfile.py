"""nnspec sessions. `nox -s conformance` validates implementations and writes a report;
`nox -s tests` runs nnspec's self-tests; `nox -s lint`; `nox -s report` rebuilds a report."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import nox

nox.options.reuse_venv = "yes"
nox.options.sessions = ["lint", "tests"]

PYTHON = "3.11"
PYPROJECT = nox.project.load_toml("pyproject.toml")
OUT = Path("nnspec-out")


def install(session: nox.Session, *groups: str) -> None:
    deps = [dep for group in groups for dep in nox.project.dependency_groups(PYPROJECT, group)]
    session.install(*deps)


def workers(posargs: list[str], gpus: int = 0) -> list[str]:
    """pytest-xdist across every core unless the user chose (-n / --numprocesses); at least one
    worker per GPU (worker gw<i> uses GPU i mod count: conformance/adapters/torch_cuda.py)."""
    chosen = any(a == "-n" or a.startswith(("-n", "--numprocesses")) for a in posargs)
    if chosen or "--list-checks" in posargs:
        return []
    return ["-n", str(max(os.cpu_count() or 1, gpus))] if gpus > 1 else ["-n", "auto"]


def gpu_count(session: nox.Session) -> int:
    """CUDA devices torch sees in the session's venv; 0 where there is none (the CUDA
    configurations are then skipped, each with the reason "no CUDA device")."""
    probe = "import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)"
    out = session.run("python", "-c", probe, silent=True) or "0"
    count = int(out.strip().splitlines()[-1] or 0)
    session.log(f"CUDA devices: {count}" + ("" if count else " (CUDA configurations skip)"))
    return count


def install_extra(session: nox.Session) -> None:
    """NNSPEC_INSTALL="-e ../mylib other==1.2": what a third-party adapter needs in the venv."""
    extra = os.environ.get("NNSPEC_INSTALL", "").split()
    if extra:
        session.install(*extra)


@nox.session(python=PYTHON)
def conformance(session: nox.Session) -> None:
    """Run the conformance suite against the built-in adapters (or --adapter SPEC ...)."""
    install(session, "core", "adapters")
    install_extra(session)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    results = OUT / "results" / f"{stamp}-{os.getpid()}"
    args = list(session.posargs)
    gpus = gpu_count(session)
    session.run(
        "python",
        "-m",
        "pytest",
        "conformance",
        "--results-dir",
        str(results),
        "--timeout=900",  # whole-check backstop; --call-timeout (60 s) limits one adapter call
        "--timeout-method=thread",  # SIGALRM belongs to --call-timeout
        # Short summary: failures and errors only; xfails and skips (thousands of rows, each
        # with its reason) are in the summary table and the report.
        "-rfE",
        *workers(args, gpus),
        *args,
        "--report-dir",
        str(OUT / "report"),
    )  # the end of the run prints the summary table and writes the report, pass or fail


@nox.session(python=PYTHON)
def soak(session: nox.Session) -> None:
    """Zero false positives: the thorough profile for N seeds (NNSPEC_SOAK_SEEDS, default 10)
    on every built-in adapter; fails if any check fails or errors in any seed."""
    install(session, "core", "adapters")
    seeds = int(os.environ.get("NNSPEC_SOAK_SEEDS", "10"))
    root = OUT / "soak" / dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    for seed in range(seeds):
        session.run(
            "python",
            "-m",
            "pytest",
            "conformance",
            "--hypothesis-profile=thorough",
            f"--hypothesis-seed={seed}",
            "--results-dir",
            str(root / f"seed-{seed}"),
            "--no-report",
            "--timeout=1800",
            "--timeout-method=thread",
            *workers(session.posargs),
            *session.posargs,
            success_codes=[0, 1],  # judged below, over every seed together
        )
    session.run("python", "-m", "reports", str(root), "--out", str(root / "report"), "--strict")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """nnspec's self-tests: spec proofs, reference gradients, tolerances, mutants, reports."""
    install(session, "core", "adapters")
    session.run("python", "-m", "pytest", "tests", *workers(session.posargs), *session.posargs)


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Reference kernels vs torch float64 and onnx.reference at typical sizes: a ratio table."""
    install(session, "core", "adapters", "bench")
    out = OUT / "bench"
    out.mkdir(parents=True, exist_ok=True)  # pytest-benchmark does not create it
    # One BLAS / torch thread each unless NNSPEC_BENCH_THREADS says otherwise (benchmarks/
    # conftest.py): like against like, and stable on a shared machine.
    threads = os.environ.get("NNSPEC_BENCH_THREADS", "1")
    env = {k: threads for k in ("NNSPEC_BENCH_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    session.run(
        "python",
        "-m",
        "pytest",
        "benchmarks",
        "-p",
        "no:xdist",
        "-p",
        "no:cacheprovider",
        f"--benchmark-json={out / 'bench.json'}",
        *session.posargs,
        env=env,
    )
    # ratios.md / ratios.json / bench_ratios.png, and the attention scaling (N = 1024, 4096)
    session.run(
        "python", "-m", "benchmarks.ratios", str(out / "bench.json"), "--out-dir", str(out), env=env
    )


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    install(session, "lint")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHON)
def report(session: nox.Session) -> None:
    """Rebuild one report from results folders (default: every run under nnspec-out/results).
    Arguments after -- go to `python -m reports` as given (folders, --out, --strict)."""
    install(session, "core")
    args = list(session.posargs)
    if not args:
        args = sorted(str(p) for p in (OUT / "results").glob("*") if p.is_dir())
        if not args:
            session.error(f"no results folders under {OUT / 'results'}: run `nox -s conformance`")
    if "--out" not in args:
        args += ["--out", str(OUT / "report")]
    if "--bench" not in args and (OUT / "bench" / "ratios.json").is_file():
        args += ["--bench", str(OUT / "bench")]  # what `nox -s bench` measured
    session.run("python", "-m", "reports", *args)
