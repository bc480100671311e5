"""Pure functions from tagged records (and runs) to the report's tables, as JSON-ready data.

Markdown, HTML, summary.json and the console all render this one structure, so they cannot
disagree with each other.
"""

from __future__ import annotations

import shlex
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from conformance.results import STATUSES
from reports.load import Run, margin_of
from reports.robustness import robustness

Record = dict[str, Any]

REPORT_SCHEMA = "nnspec.report/1"
# Column titles for the statuses, in the order the console and the tables show them.
STATUS_TITLES = {
    "pass": "passed",
    "fail": "failed",
    "error": "errors",
    "skip": "skipped",
    "not_covered": "not covered",
    "xfail": "xfail",
}
DTYPE_ORDER = ("float64", "float32", "float16", "bfloat16")
REASON_STATUSES = ("skip", "not_covered", "xfail")
MISSING = "-"
COMMAND_KEYS = ("command", "argv", "command_line", "cmdline")


def key(value: Any) -> str:
    """A record field as a grouping key: null fields group together instead of failing."""
    return MISSING if value is None else str(value)


def dtype_sort_key(dtype: str) -> tuple[int, str]:
    return (DTYPE_ORDER.index(dtype), "") if dtype in DTYPE_ORDER else (len(DTYPE_ORDER), dtype)


# Headers of the summary and matrix tables, shared by the console, Markdown and HTML renderers.
SUMMARY_COLUMNS = ("component", "adapter", *STATUS_TITLES.values(), "worst margin")
MATRIX_COLUMNS = (
    "component",
    "adapter",
    "dtype",
    *STATUS_TITLES.values(),
    "worst margin",
    "variants / diagnosis",
)

# Columns of the failures table, in the order both renderers show them.
FAILURE_COLUMNS = (
    "status",
    "check_id",
    "adapter",
    "dtype",
    "run",
    "margin",
    "message",
    "diagnosis",
    "repro",
)


def worst_margin(records: Iterable[Record]) -> float | None:
    # Known deviations (xfail) are listed on their own; they would hide how close the
    # conforming checks come to their allowed error.
    judged = (r for r in records if r.get("status") in ("pass", "fail"))
    margins = [m for m in map(margin_of, judged) if m is not None]
    return max(margins) if margins else None


def status_counts(records: Iterable[Record]) -> dict[str, int]:
    counts = Counter(key(r.get("status")) for r in records)
    return {status: counts.get(status, 0) for status in STATUSES}


def _group(records: Iterable[Record], fields: Sequence[str]) -> dict[tuple[str, ...], list[Record]]:
    groups: dict[tuple[str, ...], list[Record]] = defaultdict(list)
    for record in records:
        groups[tuple(key(record.get(f)) for f in fields)].append(record)
    return groups


def summary_rows(records: Sequence[Record]) -> list[dict[str, Any]]:
    """One row per component (stem) x adapter: counts per status and the worst margin."""
    rows = []
    for (stem, adapter), group in sorted(_group(records, ("stem", "adapter")).items()):
        rows.append(
            {
                "stem": stem,
                "adapter": adapter,
                **status_counts(group),
                "worst_margin": worst_margin(group),
            }
        )
    return rows


def matrix_rows(records: Sequence[Record]) -> list[dict[str, Any]]:
    """One row per stem x adapter x dtype, with the diagnoses (matched variants) seen there."""
    groups = _group(records, ("stem", "adapter", "dtype"))
    rows = []
    for stem, adapter, dtype in sorted(groups, key=lambda k: (k[0], k[1], dtype_sort_key(k[2]))):
        group = groups[stem, adapter, dtype]
        diagnoses = Counter(r["diagnosis"] for r in group if r.get("diagnosis"))
        rows.append(
            {
                "stem": stem,
                "adapter": adapter,
                "dtype": dtype,
                **status_counts(group),
                "worst_margin": worst_margin(group),
                "diagnoses": [[str(d), n] for d, n in sorted(diagnoses.items(), key=str)],
            }
        )
    return rows


def counts_by_stem(records: Sequence[Record]) -> dict[str, dict[str, dict[str, int]]]:
    """{stem: {adapter: {status: count}}}: the shape summary.json consumers index by."""
    out: dict[str, dict[str, dict[str, int]]] = {}
    for (stem, adapter), group in sorted(_group(records, ("stem", "adapter")).items()):
        out.setdefault(stem, {})[adapter] = status_counts(group)
    return out


FAILURE_FIELDS = (
    "run",
    "check_id",
    "adapter",
    "device",
    "dtype",
    "status",
    "margin",
    "message",
    "diagnosis",
    "repro",
    "case",
    "seed",
)


def failures(records: Sequence[Record]) -> list[dict[str, Any]]:
    """Every fail and error row, each with what is needed to understand and rerun it."""
    rows = [
        {f: r.get(f) for f in FAILURE_FIELDS}
        for r in records
        if r.get("status") in ("fail", "error")
    ]
    rows.sort(
        key=lambda r: (
            key(r["check_id"]),
            key(r["adapter"]),
            dtype_sort_key(key(r["dtype"])),
            key(r["run"]),
        )
    )
    for row in rows:
        row["margin"] = margin_of(row)
    return rows


def reasons(records: Sequence[Record]) -> list[dict[str, Any]]:
    """Skip / not-covered / xfail rows grouped by their reason, most frequent first."""
    groups: dict[tuple[str, str], list[Record]] = defaultdict(list)
    for record in records:
        if record.get("status") in REASON_STATUSES:
            reason = record.get("message") or "(no reason given)"
            groups[record["status"], str(reason)].append(record)
    rows = [
        {
            "status": status,
            "reason": reason,
            "count": len(group),
            "adapters": sorted({key(r.get("adapter")) for r in group}),
            "stems": sorted({key(r.get("stem")) for r in group}),
        }
        for (status, reason), group in groups.items()
    ]
    rows.sort(key=lambda r: (REASON_STATUSES.index(r["status"]), -r["count"], r["reason"]))
    return rows


def trace_rows(trace: Sequence[dict[str, Any]], records: Sequence[Record]) -> list[dict[str, Any]]:
    """Per traceability row and adapter: statuses of the records of the row's properties
    (check_id starts with "stem/property/"), and the properties that have no record at all."""
    adapters = sorted({key(r.get("adapter")) for r in records})
    by_check: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        by_check[key(record.get("check_id"))].append(record)
    rows = []
    for entry in trace:
        props = entry.get("properties") or ()
        props = [props] if isinstance(props, str) else [str(p) for p in props]
        per_prop = {
            prop: [
                r
                for check_id, group in by_check.items()
                if check_id.startswith(prop + "/")
                for r in group
            ]
            for prop in props
        }
        results = {}
        for adapter in adapters:
            counts: Counter[str] = Counter()
            missing = []
            for prop, matched in per_prop.items():
                mine = [key(r.get("status")) for r in matched if key(r.get("adapter")) == adapter]
                counts.update(mine)
                if not mine:
                    missing.append(prop)
            results[adapter] = {
                "counts": {s: counts[s] for s in STATUSES if counts[s]},
                "missing": missing,
            }
        rows.append(
            {
                "formula": key(entry.get("formula")),
                "stem": key(entry.get("stem")),
                "spec": key(entry.get("spec")),
                "reference": key(entry.get("reference")),
                "properties": props,
                "results": results,
            }
        )
    return rows


def run_info(run: Run) -> dict[str, Any]:
    return {
        "run": run.label,
        "folder": str(run.folder),
        "complete": run.complete,
        "records": len(run.records),
        "malformed_lines": list(run.bad_lines),
        "manifest": run.manifest,
    }


def summarize(runs: Sequence[Run], trace: Sequence[dict[str, Any]] | None) -> dict[str, Any]:
    """Everything the report shows; JSON-serialisable (it is summary.json)."""
    records = [r for run in runs for r in run.records]
    data: dict[str, Any] = {
        "schema": REPORT_SCHEMA,
        "runs": [run_info(run) for run in runs],
        "totals": {
            "records": len(records),
            **status_counts(records),
            "malformed_lines": sum(len(run.bad_lines) for run in runs),
            "incomplete_runs": sum(not run.complete for run in runs),
        },
        "adapters": sorted({key(r.get("adapter")) for r in records}),
        "counts": counts_by_stem(records),
        "summary": summary_rows(records),
        "matrix": matrix_rows(records),
        "failures": failures(records),
        "reasons": reasons(records),
        "robustness": robustness(runs),
    }
    if trace is not None:
        data["trace"] = trace_rows(trace, records)
    return data


# -- formatting shared by the renderers ------------------------------------------------------


def fmt_margin(margin: float | None) -> str:
    return MISSING if margin is None else f"{margin:.3g}"


def fmt_counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{s} {n}" for s, n in counts.items() if n) or "no records"


def flatten(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    """A manifest as (dotted key, text) pairs, so nested versions/devices show as rows."""
    if isinstance(value, dict):
        if not value and prefix:
            return [(prefix, "")]
        pairs: list[tuple[str, str]] = []
        for k, v in value.items():
            pairs.extend(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return pairs
    if isinstance(value, list | tuple):
        if all(not isinstance(v, dict | list | tuple) for v in value):
            words = [str(v) for v in value]
            # An argv list reads best as the shell line it was; other lists as enumerations.
            leaf = prefix.rsplit(".", 1)[-1]
            return [(prefix, shlex.join(words) if leaf in COMMAND_KEYS else ", ".join(words))]
        pairs = []
        for i, v in enumerate(value):
            pairs.extend(flatten(v, f"{prefix}[{i}]"))
        return pairs
    return [(prefix, MISSING if value is None else str(value))]
