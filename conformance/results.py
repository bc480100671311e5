"""Results records: one JSON line per check, appended and flushed as the check finishes.

Layout of a results folder (one per run):

    manifest.json            run metadata (schema MANIFEST_SCHEMA), rewritten at the end with
                             "finished"; a manifest without "finished" marks an interrupted run
    results-<worker>.jsonl   one record per line (schema RECORD_SCHEMA), one file per xdist
                             worker ("main" without xdist), so a crash loses nothing written

A record (all keys always present, null where not applicable):

    schema       "nnspec.results/1"
    check_id     "<stem>/<property>/<dtype>", stable across runs and examples
    adapter      adapter name, e.g. "torch"
    device       "cpu", "cuda:0", ...
    stem         component, e.g. "attention"
    op           adapter op(s) the check called, comma separated, e.g. "sdpa"
    property     test name without "test_", e.g. "values"
    dtype        "float64" | "float32" | "float16" | "bfloat16"
    status       "pass" | "fail" | "error" | "skip" | "xfail" | "not_covered"
    error        worst norm-wise relative error seen (float) or null
    allowed      allowed error for that worst case (float) or null
    margin       error / allowed for the worst case (float, <= 1 passes) or null
    max_abs_error  max elementwise absolute error of that case, for the record
    diagnosis    e.g. "matches variant attention.scale=1/d" or null
    message      one-line reason for fail/error/skip/not_covered, or null
    case         pytest node id
    examples     number of hypothesis examples run
    seed         hypothesis seed (int) or "derandomized"
    repro        shell command that reruns exactly this check
    duration_s   wall time of the check
    worker       xdist worker id or "main"
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

RECORD_SCHEMA = "nnspec.results/1"
MANIFEST_SCHEMA = "nnspec.manifest/1"
STATUSES = ("pass", "fail", "error", "skip", "xfail", "not_covered")
RECORD_KEYS = (
    "schema",
    "check_id",
    "adapter",
    "device",
    "stem",
    "op",
    "property",
    "dtype",
    "status",
    "error",
    "allowed",
    "margin",
    "max_abs_error",
    "diagnosis",
    "message",
    "case",
    "examples",
    "seed",
    "repro",
    "duration_s",
    "worker",
)


def make_record(**fields: Any) -> dict[str, Any]:
    unknown = set(fields) - set(RECORD_KEYS)
    if unknown:
        raise KeyError(f"unknown record keys: {sorted(unknown)}")
    if fields.get("status") not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}, got {fields.get('status')!r}")
    record = dict.fromkeys(RECORD_KEYS)
    record.update(fields, schema=RECORD_SCHEMA)
    return record


def append_record(path: Path, record: dict[str, Any]) -> None:
    """Append one line and flush it to disk before returning: nothing measured is lost."""
    line = json.dumps(record, allow_nan=False, default=str) + "\n"
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    manifest = {**manifest, "schema": MANIFEST_SCHEMA}
    tmp = folder / "manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=2, default=str), encoding="utf-8")
    tmp.replace(folder / "manifest.json")


def read_manifest(folder: Path) -> dict[str, Any] | None:
    path = folder / "manifest.json"
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def iter_records(folder: Path, bad_lines: list[str] | None = None) -> Iterator[dict[str, Any]]:
    """Every record of a results folder; malformed lines are skipped and listed in bad_lines.
    Archived folders may hold results-*.jsonl.gz (the committed GPU samples do)."""
    paths = [*folder.glob("results-*.jsonl"), *folder.glob("results-*.jsonl.gz")]
    for path in sorted(paths):
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    record = None
                if not isinstance(record, dict) or record.get("schema") != RECORD_SCHEMA:
                    if bad_lines is not None:
                        bad_lines.append(f"{path.name}:{lineno}")
                    continue
                yield record


def finite_or_none(x: float | None) -> float | None:
    """JSON has no NaN/inf: a non-finite error is stored as null with the reason in message."""
    if x is None:
        return None
    x = float(x)
    return x if x == x and abs(x) != float("inf") else None


def records_of(folders: Iterable[Path]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for folder in folders:
        out.extend(iter_records(Path(folder)))
    return out
