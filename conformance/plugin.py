"""pytest plugin of the conformance suite: --adapter, parametrization over (adapter, dtype),
the `impl` fixture, one results record per check, and the run manifest."""

from __future__ import annotations

import datetime as dt
import fnmatch
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis.errors import Unsatisfiable

try:
    import resource
except ImportError:  # not POSIX: no --memory-limit
    resource = None

from conformance import adapters as adapter_registry
from conformance import profiles, results, selection
from conformance.adapters.base import Intermittent
from conformance.check import DEFAULT_CALL_TIMEOUT_S, CallTimeout, Check, CheckFailed, NotCovered

DEFAULT_OUT = Path("nnspec-out") / "results"
DEFAULT_REPORT = Path("nnspec-out") / "report"
# Per test process. The suite's cases are small: a worker with torch, onnxruntime, timm and
# transformers loaded stays under 1 GiB of data memory.
DEFAULT_MEMORY_LIMIT_GIB = 8.0
OUT_OF_MEMORY_EXIT = 75
NOT_TRIGGERED = "intermittent deviation not triggered this run"
FILES_KEY = pytest.StashKey[dict]()  # {"xfails": [PatternFile], "skips": [PatternFile]}
CHECK_KEY = pytest.StashKey[Check]()
INTERMITTENT_KEY = pytest.StashKey[bool]()  # the check's xfail is an Intermittent deviation
ADAPTERS_KEY = pytest.StashKey[list]()  # [(spec, adapter, unavailable reason or None)]


def pytest_addoption(parser: pytest.Parser) -> None:
    profiles.register()
    group = parser.getgroup("nnspec")
    group.addoption(
        "--adapter",
        action="append",
        default=[],
        metavar="SPEC",
        help="adapter to validate: path/to/file.py:Attr, package.module:Attr or a built-in name "
        f"({', '.join(adapter_registry.BUILTINS)}); repeatable. Replaces the default set "
        "(built-ins and entry points) unless --with-builtins is given.",
    )
    group.addoption("--with-builtins", action="store_true", help="also run the built-in adapters")
    group.addoption(
        "--call-timeout",
        type=float,
        default=DEFAULT_CALL_TIMEOUT_S,
        metavar="SECONDS",
        help="limit on one adapter call; past it the check is an error row and the run goes "
        "on (default: %(default)s; 0 disables)",
    )
    group.addoption(
        "--memory-limit",
        type=float,
        default=None,
        metavar="GIB",
        help="limit on each test process's data memory (RLIMIT_DATA); an adapter that allocates "
        "past it is an error row, and an xdist worker that hit it is replaced, its leaked memory "
        f"with it (default: {DEFAULT_MEMORY_LIMIT_GIB:g}, or none when a CUDA adapter runs: "
        "the CUDA driver maps host memory of its own; 0 disables)",
    )
    group.addoption(
        "--results-dir",
        default=None,
        metavar="DIR",
        help=f"folder for this run's results (default: {DEFAULT_OUT}/<timestamp>)",
    )
    group.addoption("--stems", metavar="A,B", help="run only these components, e.g. lstm,gru")
    group.addoption("--dtypes", metavar="A,B", help="run only these dtypes, e.g. float32,bfloat16")
    group.addoption("--devices", metavar="A,B", help="run only adapters on these devices: cpu,cuda")
    group.addoption("--shard", metavar="K/N", help="run the K-th of N deterministic parts")
    group.addoption(
        "--xfails",
        action="append",
        default=[],
        metavar="FILE",
        help="check-id globs (one per line, # comments) expected to fail: they run and are "
        "reported as xfail",
    )
    group.addoption(
        "--skips", action="append", default=[], metavar="FILE", help="check-id globs not to run"
    )
    group.addoption(
        "--strict-xfails",
        action="store_true",
        help="an expected failure that passes fails the run (remove it from its file)",
    )
    group.addoption(
        "--list-checks",
        action="store_true",
        help="print every check id with each adapter's coverage, run nothing",
    )
    group.addoption(
        "--report-dir",
        default=str(DEFAULT_REPORT),
        metavar="DIR",
        help="where the end of the run writes its report (default: %(default)s)",
    )
    group.addoption("--report-md", metavar="PATH", help="also write the Markdown report here")
    group.addoption("--no-report", action="store_true", help="write results only, no report")


def _load_adapters(config: pytest.Config) -> list[tuple[str, Any, str | None]]:
    specs = list(config.getoption("adapter"))
    if not specs or config.getoption("with_builtins"):
        specs = list(adapter_registry.BUILTINS) + specs
    loaded = []
    seen = set()
    for spec in specs:
        adapter = adapter_registry.load(spec)
        if adapter.name in seen:
            continue
        seen.add(adapter.name)
        loaded.append((spec, adapter, _reason(adapter)))
    if not config.getoption("adapter"):
        for spec, adapter in adapter_registry.entry_point_adapters():
            if adapter.name not in seen:
                seen.add(adapter.name)
                loaded.append((spec, adapter, _reason(adapter)))
    return loaded


def _reason(adapter: Any) -> str | None:
    try:
        return adapter.unavailable()
    except Exception as exc:  # an adapter's own check must not take the run down
        return f"availability check raised {type(exc).__name__}: {exc}"


def _results_dir(config: pytest.Config) -> Path:
    given = config.getoption("results_dir")
    if given:
        return Path(given)
    workerinput = getattr(config, "workerinput", None)
    if workerinput and "nnspec_results_dir" in workerinput:
        return Path(workerinput["nnspec_results_dir"])
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return DEFAULT_OUT / f"{stamp}-{os.getpid()}"


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _limit_memory(gib: float) -> None:
    """RLIMIT_DATA bounds malloc and private mmap, so a leaking adapter gets a MemoryError (an
    error row) long before the machine's OOM killer would take the run down. Inherited by the
    xdist workers, which start after this."""
    if not gib or gib <= 0 or resource is None or not hasattr(resource, "RLIMIT_DATA"):
        return
    limit = int(gib * 2**30)
    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    if soft == resource.RLIM_INFINITY or limit < soft:
        resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))


def _memory_limit(config: pytest.Config) -> float:
    given = config.getoption("memory_limit")
    if given is not None:
        return given
    on_gpu = any(
        reason is None and str(getattr(adapter, "device", "cpu")).startswith("cuda")
        for _, adapter, reason in config.stash[ADAPTERS_KEY]
    )
    return 0 if on_gpu else DEFAULT_MEMORY_LIMIT_GIB


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    profiles.load_default(config)
    try:
        config.stash[ADAPTERS_KEY] = _load_adapters(config)
        config.stash[FILES_KEY] = {
            kind: [selection.PatternFile.read(f) for f in config.getoption(kind)]
            for kind in ("xfails", "skips")
        }
        selection.parse_shard(config.getoption("shard"))
    except (adapter_registry.AdapterLoadError, ValueError) as exc:
        raise pytest.UsageError(str(exc)) from None
    _limit_memory(_memory_limit(config))
    if config.getoption("list_checks"):
        config.option.dist, config.option.numprocesses = "no", None  # list in this process
    folder = _results_dir(config)
    config.nnspec_results_dir = folder  # type: ignore[attr-defined]
    listing = config.option.list_checks or config.option.collectonly
    if not _is_worker(config) and _runs_conformance(config) and not listing:
        folder.mkdir(parents=True, exist_ok=True)
        config.nnspec_started = time.time()  # type: ignore[attr-defined]
        results.write_manifest(folder, _manifest(config))
        _sigterm_as_interrupt()
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistHooks(folder), "nnspec-xdist")


_TERMINATED = threading.Event()


@pytest.hookimpl(trylast=True)
def pytest_runtest_logfinish(nodeid: str, location: Any) -> None:
    if _TERMINATED.is_set():
        raise KeyboardInterrupt("SIGTERM")


def _sigterm_as_interrupt() -> None:
    """SIGTERM (a CI job cancelled, a machine reclaimed) ends the run like Ctrl-C: the manifest
    is closed as interrupted and the report of what finished is still written."""

    def handler(signum, frame):
        # The flag stops the run at the next check even where the KeyboardInterrupt is
        # swallowed (raised inside a finalizer or a callback that ignores exceptions).
        _TERMINATED.set()
        raise KeyboardInterrupt("SIGTERM")

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)


def _runs_conformance(config: pytest.Config) -> bool:
    """A results folder is made only for runs that include the conformance suite."""
    suite = Path(__file__).resolve().parent
    for arg in config.args:
        path = Path(arg.split("::")[0]).resolve()
        if path == suite or suite in path.parents or path in suite.parents:
            return True
    return False


class _XdistHooks:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput["nnspec_results_dir"] = str(self.folder)

    def pytest_handlecrashitem(self, crashitem: str, report: Any, sched: Any) -> None:
        # The worker died inside this check (segfault, os._exit, killed): unless it wrote the
        # row itself before leaving (out of memory), the controller writes the error row.
        if any(r.get("case") == crashitem for r in results.iter_records(self.folder)):
            return
        fields = _fields_from_nodeid(crashitem)
        results.append_record(
            self.folder / "results-controller.jsonl",
            results.make_record(
                **fields,
                status="error",
                message="worker crashed during this check (killed, segfault or os._exit)",
                case=crashitem,
                worker="controller",
            ),
        )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    if _is_worker(config) or not hasattr(config, "nnspec_started"):
        return
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED and config.getoption("shard"):
        # A small selection split N ways can leave a part empty: that part of a CI matrix
        # succeeded, it must not fail the job.
        session.exitstatus = exitstatus = pytest.ExitCode.OK
    manifest = _manifest(config)
    manifest["finished"] = dt.datetime.now(dt.UTC).isoformat()
    manifest["exitstatus"] = int(exitstatus)
    manifest["interrupted"] = (
        int(exitstatus) == int(pytest.ExitCode.INTERRUPTED) or _TERMINATED.is_set()
    )
    results.write_manifest(config.nnspec_results_dir, manifest)
    if not config.getoption("no_report"):
        # An interrupted run (a cancelled CI job has seconds before SIGKILL) gets its report
        # without the figures drawn from the reference kernels, which take seconds to draw.
        quick = manifest["interrupted"]
        config.nnspec_report = _build_report(config, quick)  # type: ignore[attr-defined]


def _build_report(config: pytest.Config, quick: bool = False) -> tuple[str, str] | None:
    """(console summary, report path) of this run, or None when it recorded nothing."""
    from reports.__main__ import console_summary
    from reports.load import ReportError, load_runs, load_trace
    from reports.writer import write_report

    folder = config.nnspec_results_dir
    if not any(results.iter_records(folder)):
        return None
    out = Path(config.getoption("report_dir"))
    try:
        data = write_report(load_runs([folder]), load_trace(), out, reference_figures=not quick)
    except (ReportError, OSError) as exc:
        return f"report not written: {exc}", ""
    md = config.getoption("report_md")
    if md:
        Path(md).parent.mkdir(parents=True, exist_ok=True)
        Path(md).write_text((out / "report.md").read_text(encoding="utf-8"), encoding="utf-8")
    return console_summary(data), str(out / "index.html")


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    if _is_worker(config) or not hasattr(config, "nnspec_started"):
        return
    terminalreporter.write_line(f"nnspec results: {config.nnspec_results_dir}")
    for warning in _unused_pattern_lines(config):
        terminalreporter.write_line(f"warning: {warning}", yellow=True)
    built = getattr(config, "nnspec_report", None)
    if built:
        summary, path = built
        terminalreporter.write_line(summary)
        if path:
            terminalreporter.write_line(f"report: {path}")


def _manifest(config: pytest.Config) -> dict[str, Any]:
    from conformance import manifest

    return manifest.collect(config, config.stash[ADAPTERS_KEY], config.nnspec_started)


# -- parametrization and the impl fixture -----------------------------------------------------


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "impl" not in metafunc.fixturenames:
        return
    config = metafunc.config
    dtypes = selection.csv(config.getoption("dtypes"))
    devices = selection.csv(config.getoption("devices"))
    params, ids = [], []
    for index, (_, adapter, _) in enumerate(config.stash[ADAPTERS_KEY]):
        device = getattr(adapter, "device", "cpu").split(":")[0]
        if devices is not None and device not in devices:
            continue
        for dtype in adapter.dtypes:
            if dtypes is not None and dtype not in dtypes:
                continue
            params.append((index, dtype))
            ids.append(f"{adapter.name}-{dtype}")
    metafunc.parametrize("impl", params, ids=ids, indirect=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    adapters = config.stash[ADAPTERS_KEY]
    files = config.stash[FILES_KEY]
    stems = selection.csv(config.getoption("stems"))
    shard = selection.parse_shard(config.getoption("shard"))
    strict = config.getoption("strict_xfails")
    keep, dropped = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is None or "impl" not in callspec.params:
            keep.append(item)
            continue
        adapter = adapters[callspec.params["impl"][0]][1]
        fields = _fields_from_nodeid(item.nodeid)
        cid = fields["check_id"]
        if (stems is not None and fields["stem"] not in stems) or not selection.in_shard(
            f"{adapter.name}|{cid}", shard
        ):
            dropped.append(item)
            continue
        keep.append(item)
        skip = _first_match(files["skips"], adapter.name, cid)
        if skip:
            item.add_marker(pytest.mark.skip(reason=f"listed in {skip[0]}: {skip[1]}"))
            continue
        listed = _first_match(files["xfails"], adapter.name, cid)
        intermittent = False
        if listed:
            reason = f"listed in {listed[0]}: {listed[1]}"
        else:
            declared = [
                why
                for pattern, why in (getattr(adapter, "xfails", {}) or {}).items()
                if fnmatch.fnmatchcase(cid, pattern)
            ]
            intermittent = bool(declared) and isinstance(declared[0], Intermittent)
            item.stash[INTERMITTENT_KEY] = intermittent
            kind = " (intermittent)" if intermittent else ""
            reason = f"declared by {adapter.name}{kind}: {declared[0]}" if declared else None
        if reason:
            item.add_marker(pytest.mark.xfail(reason=reason, strict=strict and not intermittent))
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


def _first_match(files: list, adapter: str, cid: str) -> tuple[str, str] | None:
    for f in files:
        reason = f.match(adapter, cid)
        if reason:
            return str(f.path), reason
    return None


def _unused_pattern_lines(config: pytest.Config) -> list[str]:
    """Lines of --xfails/--skips files that matched no check. Under xdist the controller
    collects nothing, so it re-reads the files against the check ids of the records."""
    files = config.stash[FILES_KEY]
    pairs = {(r["adapter"], r["check_id"]) for r in results.iter_records(config.nnspec_results_dir)}
    out = []
    for f in files["xfails"] + files["skips"]:
        for adapter, cid in pairs:
            f.match(adapter, cid)
        out.extend(f.unused())
    return out


def pytest_collection_finish(session: pytest.Session) -> None:
    if session.config.getoption("list_checks"):
        from conformance import coverage

        session.config.get_terminal_writer().line(coverage.listing(session.items, session.config))
        pytest.exit("listed the checks", returncode=0)


@pytest.fixture
def impl(request: pytest.FixtureRequest) -> Check:
    index, dtype = request.param
    _, adapter, reason = request.config.stash[ADAPTERS_KEY][index]
    check = Check(adapter, dtype, request.config.getoption("call_timeout"))
    request.node.stash[CHECK_KEY] = check
    if reason:
        pytest.skip(f"{adapter.name}: {reason}")
    return check


# -- one record per check ---------------------------------------------------------------------


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    outcome = yield
    report = outcome.get_result()
    check = item.stash.get(CHECK_KEY, None)
    callspec = getattr(item, "callspec", None)
    if check is None and callspec is not None and "impl" in callspec.params:
        # Skipped before the impl fixture ran (a --skips line): still one row.
        index, dtype = callspec.params["impl"]
        check = Check(item.config.stash[ADAPTERS_KEY][index][1], dtype)
    if check is None:
        return
    if report.when == "call" or (report.when == "setup" and not report.passed):
        status, message = _status(report, call, item.stash.get(INTERMITTENT_KEY, False))
        status, message = _with_notes(check, status, message, report, call)
        if status == "error" and report.skipped:  # a CallTimeout travels as a skip: undo that
            report.outcome = "failed"
            report.longrepr = message
        _write(item, check, status, message, report.duration)
        if status == "error" and _is_worker(item.config) and _out_of_memory(call):
            # What the adapter leaked may still be held (a cache, a global): this worker is
            # spent. Its row is written; xdist starts a fresh worker for the remaining checks.
            os._exit(OUT_OF_MEMORY_EXIT)


def _with_notes(check: Check, status, message, report, call) -> tuple[str, str | None]:
    """Examples the adapter refused (Check._refused) and examples judged under the escalated
    draws (Check.escalation_note): a judged check says so in its message; one whose every
    example was refused before Hypothesis gave up is not covered, like a refusal of the first
    REFUSALS_BEFORE_NOT_COVERED."""
    refusals = check.refusal_note()
    exc = call.excinfo.value if call.excinfo else None
    if refusals is not None and isinstance(exc, Unsatisfiable):
        reason = check.refusals.most_common(1)[0][0]
        report.outcome, report.longrepr = "skipped", (report.location[0], 0, reason)
        return "not_covered", reason
    note = "; ".join(n for n in (refusals, check.escalation_note()) if n)
    if note and status in ("pass", "fail"):
        return status, f"{message}; {note}" if message else note
    return status, message


def _out_of_memory(call: pytest.CallInfo) -> bool:
    exc = call.excinfo.value if call.excinfo else None
    return any(isinstance(e, MemoryError) for e in _leaves(exc))


def _status(
    report: Any, call: pytest.CallInfo, intermittent: bool = False
) -> tuple[str, str | None]:
    exc = call.excinfo.value if call.excinfo else None
    if hasattr(report, "wasxfail"):
        if report.skipped:
            return "xfail", report.wasxfail or "xfail"
        if intermittent:
            return "pass", f"{NOT_TRIGGERED} ({report.wasxfail})"
        where = report.wasxfail.split(":", 1)[0].removeprefix("listed in ").strip()
        if report.wasxfail.startswith("listed in "):
            return "pass", f"passes now: remove it from {where} ({report.wasxfail})"
        return "pass", f"passes now: remove it from the adapter's xfails ({report.wasxfail})"
    if report.passed:
        return "pass", None
    if isinstance(exc, CallTimeout):
        return "error", str(exc.msg)
    if isinstance(exc, NotCovered):
        return "not_covered", str(exc.msg)
    if report.skipped:
        return "skip", getattr(exc, "msg", None) or str(report.longrepr[-1])
    leaves = _leaves(exc)
    if not leaves:  # failed without an exception: an expected failure that passed, strictly
        return "fail", f"passes now, but listed as an expected failure: {report.longrepr}"
    failed = [e for e in leaves if isinstance(e, CheckFailed)]
    if failed and len(failed) == len(leaves):
        return "fail", _message(failed[0])
    first = next(e for e in leaves if not isinstance(e, CheckFailed))
    if isinstance(first, MemoryError):
        return "error", f"out of memory (past --memory-limit): raised {_message(first)}"
    return "error", f"raised {_message(first)}"


def _leaves(exc: BaseException | None) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for sub in exc.exceptions for leaf in _leaves(sub)]
    return [exc] if exc is not None else []


def _first_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else ""


def _message(exc: BaseException) -> str:
    """One line: the exception, then Hypothesis' falsifying case if it attached one."""
    head = _first_line(str(exc))
    if not isinstance(exc, CheckFailed):
        head = f"{type(exc).__name__}: {head}".rstrip(": ")
    notes = [n for n in getattr(exc, "__notes__", []) if "Falsifying" in n or "case=" in n]
    example = " ".join(" ".join(notes).split())
    return f"{head} | {example}" if example else head


def _fields_from_nodeid(nodeid: str) -> dict[str, Any]:
    path, _, rest = nodeid.partition("::")
    func, _, param = rest.partition("[")
    adapter, _, dtype = param.rstrip("]").rpartition("-")
    stem = Path(path).stem.removeprefix("test_")
    prop = func.removeprefix("test_")
    return {
        "check_id": selection.check_id(stem, prop, dtype),
        "adapter": adapter,
        "stem": stem,
        "property": prop,
        "dtype": dtype,
    }


def _write(item: pytest.Item, check: Check, status: str, message: str | None, duration) -> None:
    config = item.config
    fields = _fields_from_nodeid(item.nodeid)
    spec = next(s for s, a, _ in config.stash[ADAPTERS_KEY] if a is check.adapter)
    worst = check.worst
    record = results.make_record(
        **fields,
        device=getattr(check.adapter, "device", "cpu"),
        op=",".join(check.ops) or None,
        status=status,
        error=results.finite_or_none(worst.error),
        allowed=results.finite_or_none(worst.allowed),
        margin=results.finite_or_none(worst.margin),
        max_abs_error=results.finite_or_none(worst.max_abs_error),
        diagnosis=worst.diagnosis if status == "fail" else None,
        message=message,
        case=item.nodeid,
        seed=profiles.seed_of(config),
        repro=_repro(item, spec),
        duration_s=round(float(duration), 4),
        worker=os.environ.get("PYTEST_XDIST_WORKER", "main"),
    )
    folder = config.nnspec_results_dir
    folder.mkdir(parents=True, exist_ok=True)
    results.append_record(folder / f"results-{record['worker']}.jsonl", record)


def _repro(item: pytest.Item, spec: str) -> str:
    config = item.config
    parts = [
        "python",
        "-m",
        "pytest",
        item.nodeid,
        "--adapter",
        spec,
        "-p",
        "no:xdist",
        f"--hypothesis-profile={profiles.name_of(config)}",
    ]
    seed = config.getoption("hypothesis_seed", None)
    if seed is not None:
        parts.append(f"--hypothesis-seed={seed}")
    return shlex.join(parts)


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], capture_output=True, text=True, timeout=5
        ).stdout.strip()
        return out + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def command_line() -> str:
    return shlex.join([Path(sys.executable).name, *sys.argv])
