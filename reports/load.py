"""Find results folders, read their manifests and records, tag each record with its run, and
refuse schema versions this reader does not know."""

from __future__ import annotations

import importlib
import json
import math
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformance.results import (
    MANIFEST_SCHEMA,
    RECORD_KEYS,
    RECORD_SCHEMA,
    iter_records,
    read_manifest,
)
from reports.safe_text import visible

Warn = Callable[[str], None]

RECORD_FAMILY, _, RECORD_MAJOR = RECORD_SCHEMA.rpartition("/")
MANIFEST_FAMILY, _, MANIFEST_MAJOR = MANIFEST_SCHEMA.rpartition("/")


class ReportError(Exception):
    """Something the user has to fix; the CLI prints it as one line and exits 2."""


def stderr_warn(message: str) -> None:
    # Warnings quote run labels and paths, which come from manifests and the filesystem.
    print(visible(message), file=sys.stderr)


@dataclass
class Run:
    label: str  # unique among the runs of one report; every record carries it as "run"
    folder: Path
    manifest: dict[str, Any] | None
    records: list[dict[str, Any]] = field(default_factory=list)
    bad_lines: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        # The runner rewrites the manifest with "finished" when the session ends, and marks an
        # interrupted one (Ctrl-C, SIGTERM): either way, not every check ran.
        return (
            self.manifest is not None
            and self.manifest.get("finished") is not None
            and not self.manifest.get("interrupted", False)
        )


def margin_of(record: dict[str, Any]) -> float | None:
    """The record's margin when it is a usable number; writers store non-finite as null, but
    a hand-edited or foreign file must not crash the report."""
    value = record.get("margin")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) and value >= 0 else None


def _major(schema: object, family: str) -> str | None:
    """Major version of "family/MAJOR[.minor]", or None when schema is not of that family."""
    if not isinstance(schema, str) or not schema.startswith(family + "/"):
        return None
    return schema[len(family) + 1 :].split(".", 1)[0]


def is_results_folder(folder: Path) -> bool:
    return (folder / "manifest.json").is_file() or any(folder.glob("results-*.jsonl*"))


def find_folders(paths: Iterable[Path | str]) -> list[Path]:
    """Every results folder given or below one given, each once, in the order given."""
    found: list[Path] = []
    seen: set[Path] = set()
    for path in map(Path, paths):
        if not path.exists():
            raise ReportError(f"results folder not found: {path}")
        if not path.is_dir():
            raise ReportError(f"not a folder: {path}")
        for dirpath, dirnames, _ in os.walk(path):
            # Sorted so that run order (and label suffixes) do not depend on the filesystem.
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            folder = Path(dirpath)
            if is_results_folder(folder) and folder.resolve() not in seen:
                seen.add(folder.resolve())
                found.append(folder)
    return found


def _load_manifest(folder: Path, warn: Warn) -> dict[str, Any] | None:
    path = folder / "manifest.json"
    try:
        manifest = read_manifest(folder)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        # Written atomically, so this is damage from outside; the records are still worth showing.
        warn(f"warning: {path} is unreadable ({exc}); run shown as incomplete")
        return None
    if manifest is None:
        return None
    if not isinstance(manifest, dict):
        warn(f"warning: {path} is not a JSON object; run shown as incomplete")
        return None
    schema = manifest.get("schema")
    if _major(schema, MANIFEST_FAMILY) != MANIFEST_MAJOR:
        raise ReportError(
            f"{path}: unknown manifest schema {schema!r} (this reader knows {MANIFEST_SCHEMA})"
        )
    return manifest


def _triage(folder: Path, bad_lines: list[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """Split the lines iter_records rejected: a record of another major schema version is an
    error (we would misread it), one of a newer minor version of ours is kept, the rest stay
    malformed (typically the last line of a worker that died mid-write)."""
    wanted: dict[str, set[int]] = {}
    for entry in bad_lines:
        name, _, lineno = entry.rpartition(":")
        wanted.setdefault(name, set()).add(int(lineno))
    kept: list[dict[str, Any]] = []
    still_bad: list[str] = []
    for name, linenos in wanted.items():
        path = folder / name
        with open(path, encoding="utf-8", errors="replace") as fh:
            for lineno, line in enumerate(fh, 1):
                if lineno not in linenos:
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    record = None
                schema = record.get("schema") if isinstance(record, dict) else None
                major = _major(schema, RECORD_FAMILY)
                if major is None:
                    still_bad.append(f"{name}:{lineno}")
                elif major != RECORD_MAJOR:
                    raise ReportError(
                        f"{path}:{lineno}: unknown record schema {schema!r} "
                        f"(this reader knows {RECORD_SCHEMA})"
                    )
                else:
                    kept.append({**dict.fromkeys(RECORD_KEYS), **record})
    return kept, still_bad


def _unique(label: str, taken: set[str]) -> str:
    # Two folders may carry the same run_id or folder name ("results" on two machines);
    # a suffix keeps their records and metadata apart instead of merging them into one run.
    candidate, n = label, 1
    while candidate in taken:
        n += 1
        candidate = f"{label}#{n}"
    taken.add(candidate)
    return candidate


def read_run(folder: Path, taken: set[str], warn: Warn = stderr_warn) -> Run:
    manifest = _load_manifest(folder, warn)
    base = (manifest or {}).get("run_id") or folder.name or folder.resolve().name
    run = Run(label=_unique(str(base), taken), folder=folder, manifest=manifest)
    rejected: list[str] = []
    try:
        run.records = list(iter_records(folder, rejected))
    except UnicodeDecodeError as exc:
        raise ReportError(f"{folder}: a results file is not UTF-8 ({exc})") from None
    kept, run.bad_lines = _triage(folder, rejected)
    run.records.extend(kept)
    for record in run.records:
        record["run"] = run.label
    if run.bad_lines:
        shown = ", ".join(run.bad_lines[:5]) + (", ..." if len(run.bad_lines) > 5 else "")
        warn(
            f"warning: run {run.label}: skipped {len(run.bad_lines)} malformed line(s) "
            f"in {folder}: {shown}"
        )
    return run


def load_runs(paths: Iterable[Path | str], warn: Warn = stderr_warn) -> list[Run]:
    """All runs under the given folders, records tagged; raises ReportError if none has any."""
    paths = [Path(p) for p in paths]
    taken: set[str] = set()
    runs = [read_run(folder, taken, warn) for folder in find_folders(paths)]
    if not any(run.records for run in runs):
        raise ReportError("no records found in " + ", ".join(map(str, paths)))
    # Only worth a warning when other folders did have records: likely a mistyped path.
    for path in paths:
        if not any(run.records and _under(run.folder, path) for run in runs):
            warn(f"warning: no records in {path}")
    return runs


def _under(folder: Path, path: Path) -> bool:
    folder, path = folder.resolve(), path.resolve()
    return folder == path or path in folder.parents


def load_trace(warn: Warn = stderr_warn) -> list[dict[str, Any]] | None:
    """spec.trace.TRACE when that module exists, else None (the report then has no
    traceability section). A module that exists but fails to import is warned about."""
    try:
        module = importlib.import_module("spec.trace")
    except ModuleNotFoundError as exc:
        if exc.name in ("spec", "spec.trace") or exc.name is None:
            return None
        warn(f"warning: traceability section omitted: spec.trace failed to import ({exc})")
        return None
    except Exception as exc:  # someone else's module mid-edit must not break the report
        warn(f"warning: traceability section omitted: spec.trace failed to import ({exc})")
        return None
    trace = getattr(module, "TRACE", None)
    if not isinstance(trace, list | tuple):
        return None
    return [row for row in trace if isinstance(row, dict)]
