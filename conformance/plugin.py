"""pytest plugin of the conformance suite: --adapter, parametrization over (adapter, dtype),
the `impl` fixture, one results record per check, and the run manifest."""

from __future__ import annotations

import datetime as dt
import fnmatch
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from conformance import adapters as adapter_registry
from conformance import profiles, results
from conformance.check import DEFAULT_CALL_TIMEOUT_S, CallTimeout, Check, CheckFailed, NotCovered

DEFAULT_OUT = Path("nnspec-out") / "results"
CHECK_KEY = pytest.StashKey[Check]()
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
        "--results-dir",
        default=None,
        metavar="DIR",
        help=f"folder for this run's results (default: {DEFAULT_OUT}/<timestamp>)",
    )


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


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    profiles.load_default(config)
    try:
        config.stash[ADAPTERS_KEY] = _load_adapters(config)
    except adapter_registry.AdapterLoadError as exc:
        raise pytest.UsageError(str(exc)) from None
    folder = _results_dir(config)
    config.nnspec_results_dir = folder  # type: ignore[attr-defined]
    if not _is_worker(config) and _runs_conformance(config):
        folder.mkdir(parents=True, exist_ok=True)
        config.nnspec_started = time.time()  # type: ignore[attr-defined]
        results.write_manifest(folder, _manifest(config))
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistHooks(folder), "nnspec-xdist")


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
        # The worker died inside this check (segfault, os._exit, killed): nothing of it was
        # written by the worker, so the controller writes the error row.
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
    manifest = _manifest(config)
    manifest["finished"] = dt.datetime.now(dt.UTC).isoformat()
    manifest["exitstatus"] = int(exitstatus)
    manifest["interrupted"] = int(exitstatus) == int(pytest.ExitCode.INTERRUPTED)
    results.write_manifest(config.nnspec_results_dir, manifest)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    if not _is_worker(config) and hasattr(config, "nnspec_started"):
        terminalreporter.write_line(f"nnspec results: {config.nnspec_results_dir}")


def _manifest(config: pytest.Config) -> dict[str, Any]:
    from conformance import manifest

    return manifest.collect(config, config.stash[ADAPTERS_KEY], config.nnspec_started)


# -- parametrization and the impl fixture -----------------------------------------------------


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "impl" not in metafunc.fixturenames:
        return
    params, ids = [], []
    for index, (_, adapter, _) in enumerate(metafunc.config.stash[ADAPTERS_KEY]):
        for dtype in adapter.dtypes:
            params.append((index, dtype))
            ids.append(f"{adapter.name}-{dtype}")
    metafunc.parametrize("impl", params, ids=ids, indirect=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    adapters = config.stash[ADAPTERS_KEY]
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is None or "impl" not in callspec.params:
            continue
        adapter = adapters[callspec.params["impl"][0]][1]
        check_id = _fields_from_nodeid(item.nodeid)["check_id"]
        for pattern, reason in (getattr(adapter, "xfails", {}) or {}).items():
            if fnmatch.fnmatchcase(check_id, pattern):
                item.add_marker(pytest.mark.xfail(reason=f"{adapter.name}: {reason}"))
                break


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
    if check is None:
        return
    if report.when == "call" or (report.when == "setup" and not report.passed):
        status, message = _status(report, call)
        if status == "error" and report.skipped:  # a CallTimeout travels as a skip: undo that
            report.outcome = "failed"
            report.longrepr = message
        _write(item, check, status, message, report.duration)


def _status(report: Any, call: pytest.CallInfo) -> tuple[str, str | None]:
    exc = call.excinfo.value if call.excinfo else None
    if hasattr(report, "wasxfail"):
        if report.skipped:
            return "xfail", report.wasxfail or "xfail"
        return "pass", f"passes now, although declared a known deviation: {report.wasxfail}"
    if report.passed:
        return "pass", None
    if isinstance(exc, CallTimeout):
        return "error", str(exc.msg)
    if isinstance(exc, NotCovered):
        return "not_covered", str(exc.msg)
    if report.skipped:
        return "skip", getattr(exc, "msg", None) or str(report.longrepr[-1])
    leaves = _leaves(exc)
    failed = [e for e in leaves if isinstance(e, CheckFailed)]
    if failed and len(failed) == len(leaves):
        return "fail", _message(failed[0])
    first = next(e for e in leaves if not isinstance(e, CheckFailed))
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
        "check_id": f"{stem}/{prop}/{dtype}",
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
