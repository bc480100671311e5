"""report.md: the summary data as GitHub-flavoured Markdown tables (tabulate)."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from typing import Any

from tabulate import tabulate

from reports.robustness import ESCALATED_COLUMNS, escalated_summary, intermittent_summary
from reports.safe_text import shown
from reports.summarize import (
    FAILURE_COLUMNS,
    MATRIX_COLUMNS,
    MISSING,
    STATUS_TITLES,
    SUMMARY_COLUMNS,
    flatten,
    fmt_counts,
    fmt_margin,
)


def cell(value: Any) -> str:
    """Record text made safe for a table cell: a '|' or newline would break the row, and raw
    HTML would be rendered (or swallowed) by Markdown viewers. Control characters are made
    visible before the whitespace is collapsed, which would otherwise eat some of them."""
    text = shown(MISSING if value is None else str(value))
    text = html.escape(" ".join(text.split()), quote=False)
    return text.replace("|", "\\|")


def code(value: Any) -> str:
    """A code span whose fence is longer than any backtick run inside it."""
    if value is None:
        return MISSING
    text = " ".join(shown(str(value)).split()).replace("|", "\\|")
    fence = "`" * (max((len(m) for m in re.findall(r"`+", text)), default=0) + 1)
    return f"{fence} {text} {fence}"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    # Cells are already formatted text: tabulate must not re-read "1e-06" as a number.
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)


def _status_cells(row: dict[str, Any]) -> list[str]:
    return [str(row[s]) for s in STATUS_TITLES]


def runs_overview(data: dict[str, Any]) -> list[str]:
    rows = [
        [
            cell(r["run"]),
            "complete" if r["complete"] else "**incomplete**",
            str(r["records"]),
            str(len(r["malformed_lines"])),
            cell(r["folder"]),
        ]
        for r in data["runs"]
    ]
    return [
        "## Runs",
        "",
        table(["run", "state", "records", "malformed lines", "folder"], rows),
        "",
    ]


def runs_section(data: dict[str, Any]) -> list[str]:
    out = ["## Run metadata", ""]
    for run in data["runs"]:
        state = "complete" if run["complete"] else '**incomplete** (no "finished" in manifest)'
        out += [f"### {cell(run['run'])}: {state}", ""]
        rows = [
            ["folder", cell(run["folder"])],
            ["records", str(run["records"])],
            ["malformed lines", cell(", ".join(run["malformed_lines"]) or "0")],
        ]
        if run["manifest"] is None:
            rows.append(["manifest", "none"])
        else:
            rows += [[cell(k), cell(v)] for k, v in flatten(run["manifest"])]
        out += [table(["field", "value"], rows), ""]
    return out


def summary_section(data: dict[str, Any]) -> list[str]:
    headers = list(SUMMARY_COLUMNS)
    rows = [
        [cell(r["stem"]), cell(r["adapter"]), *_status_cells(r), fmt_margin(r["worst_margin"])]
        for r in data["summary"]
    ]
    return ["## Summary", "", table(headers, rows), ""]


def matrix_section(data: dict[str, Any]) -> list[str]:
    headers = list(MATRIX_COLUMNS)
    rows = [
        [
            cell(r["stem"]),
            cell(r["adapter"]),
            cell(r["dtype"]),
            *_status_cells(r),
            fmt_margin(r["worst_margin"]),
            cell("; ".join(f"{d} ({n})" for d, n in r["diagnoses"]) or MISSING),
        ]
        for r in data["matrix"]
    ]
    return ["## Component x adapter x dtype", "", table(headers, rows), ""]


def failures_section(data: dict[str, Any]) -> list[str]:
    out = ["## Failures and errors", ""]
    if not data["failures"]:
        return [*out, "None.", ""]
    headers = list(FAILURE_COLUMNS)
    rows = [
        [
            cell(f["status"]),
            cell(f["check_id"]),
            cell(f["adapter"]),
            cell(f["dtype"]),
            cell(f["run"]),
            fmt_margin(f["margin"]),
            cell(f["message"]),
            cell(f["diagnosis"]),
            code(f["repro"]),
        ]
        for f in data["failures"]
    ]
    return [*out, table(headers, rows), ""]


def reasons_section(data: dict[str, Any]) -> list[str]:
    out = ["## Skipped, not covered, expected failures: reasons", ""]
    if not data["reasons"]:
        return [*out, "None.", ""]
    rows = [
        [
            STATUS_TITLES[r["status"]],
            cell(r["reason"]),
            str(r["count"]),
            cell(", ".join(r["adapters"])),
            cell(", ".join(r["stems"])),
        ]
        for r in data["reasons"]
    ]
    return [*out, table(["status", "reason", "checks", "adapters", "components"], rows), ""]


def robustness_section(data: dict[str, Any]) -> list[str]:
    rob = data["robustness"]
    out = ["## Robustness", "", "### Errors by cause", ""]
    if rob["error_causes"]:
        rows = [
            [cell(c["cause"]), str(c["count"]), cell(", ".join(c["adapters"])), cell(c["example"])]
            for c in rob["error_causes"]
        ]
        out += [table(["cause", "errors", "adapters", "example message"], rows), ""]
    else:
        out += ["No error rows.", ""]
    out += ["### Incomplete runs", ""]
    if rob["incomplete_runs"]:
        rows = [
            [cell(r["run"]), cell(r["reason"]), str(r["records"]), cell(r["folder"])]
            for r in rob["incomplete_runs"]
        ]
        out += [table(["run", "reason", "records", "folder"], rows), ""]
    else:
        out += ["None: every run finished.", ""]
    zoo = rob["mutant_zoo"]
    if zoo is not None:
        rows = [
            [
                cell(m["adapter"]),
                "caught" if m["caught"] else "**escaped**",
                cell(", ".join(m["checks"]) or MISSING),
                cell("; ".join(m["diagnoses"]) or MISSING),
                str(m["errors"]),
            ]
            for m in zoo["mutants"]
        ]
        out += [
            "### Mutant zoo",
            "",
            f"Kill rate: {zoo['caught']} of {zoo['total']} mutants caught "
            f"({zoo['kill_rate']:.0%}).",
            "",
            table(["mutant", "result", "failed checks", "diagnoses", "errors"], rows),
            "",
        ]
    deviations = rob.get("intermittent") or []
    if deviations:
        rows = [
            [cell(d["adapter"]), cell(d["check_id"]), str(d["fired"]), str(d["not_triggered"])]
            for d in deviations
        ]
        out += [
            "### Intermittent deviations",
            "",
            intermittent_summary(deviations),
            "",
            table(["adapter", "check", "runs showing it", "runs not"], rows),
            "",
        ]
    escalated = rob.get("escalated") or []
    if escalated:
        rows = [
            [cell(e["adapter"]), cell(e["check_id"]), e["status"], str(e["examples"]),
             fmt_margin(e["margin"])]
            for e in escalated
        ]  # fmt: skip
        out += [
            "### Escalated Monte Carlo draws",
            "",
            escalated_summary(escalated),
            "",
            table(list(ESCALATED_COLUMNS), rows),
            "",
        ]
    return out


def trace_cell(result: dict[str, Any]) -> str:
    text = fmt_counts(result["counts"])
    if result["counts"] and result["missing"]:
        text += "; no records: " + ", ".join(result["missing"])
    return cell(text)


def trace_section(data: dict[str, Any]) -> list[str]:
    headers = ["formula", "spec", "reference", "properties", *map(cell, data["adapters"])]
    rows = [
        [
            cell(t["formula"]),
            cell(t["spec"]),
            cell(t["reference"]),
            cell(", ".join(t["properties"])),
            *(trace_cell(t["results"][a]) for a in data["adapters"]),
        ]
        for t in data["trace"]
    ]
    return ["## Traceability", "", table(headers, rows), ""]


def render(data: dict[str, Any], figures: Sequence[str]) -> str:
    """The whole report; figures are file names under figures/, linked relatively."""
    totals = data["totals"]
    lines = [
        "# nnspec conformance report",
        "",
        f"{totals['records']} records from {len(data['runs'])} run(s) "
        f"({totals['incomplete_runs']} incomplete); "
        + ", ".join(f"{STATUS_TITLES[s]} {totals[s]}" for s in STATUS_TITLES)
        + f"; malformed lines skipped: {totals['malformed_lines']}.",
        "",
    ]
    lines += runs_overview(data) + summary_section(data) + failures_section(data)
    lines += robustness_section(data)
    lines += matrix_section(data) + reasons_section(data)
    if "trace" in data:
        lines += trace_section(data)
    lines += ["## Figures", ""] + [f"![{name}](figures/{name})" for name in figures] + [""]
    for extra in data.get("tables", []):
        # Extra tables carry record text too (the GPU section's adapter names): every header,
        # cell and note goes through cell(), as the record tables' do.
        lines += [f"## {extra['title']}", ""]
        for note in extra.get("notes", []):
            lines += [cell(note), ""]
        rows = [[cell(c) for c in row] for row in extra["rows"]]
        lines += [table([cell(h) for h in extra["headers"]], rows), ""]
    lines += runs_section(data)
    return "\n".join(lines)
