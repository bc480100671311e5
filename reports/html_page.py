"""index.html: one self-contained page (inline CSS, figures as base64 PNG, no scripts).

Every piece of text that comes from records, manifests or the trace table goes through esc();
only markup built here is wrapped in Markup, so an untrusted string can never become a tag.
esc() also makes control characters visible and cuts very long strings (reports.safe_text).
(Named html_page, not html, so that it can never shadow the standard library's html module.)
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

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


class Markup(str):
    """HTML produced by this module (already escaped where needed)."""


def esc(value: Any) -> Markup:
    if isinstance(value, Markup):
        return value
    return Markup(html.escape(shown(MISSING if value is None else str(value)), quote=True))


def tag(name: str, content: Any = "", cls: str | None = None) -> Markup:
    attr = f' class="{html.escape(cls)}"' if cls else ""
    return Markup(f"<{name}{attr}>{esc(content)}</{name}>")


class Cell(Markup):
    """A complete <td> element, used as is by table()."""


def td(content: Any, cls: str | None = None) -> Cell:
    return Cell(tag("td", content, cls))


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], cls: str | None = None) -> Markup:
    head = "".join(tag("th", h) for h in headers)
    body = "".join(
        "<tr>" + "".join(c if isinstance(c, Cell) else td(c) for c in row) + "</tr>\n"
        for row in rows
    )
    attr = f' class="{cls}"' if cls else ""
    return Markup(
        f"<table{attr}>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody>\n</table>\n"
    )


def count_td(status: str, n: int) -> Cell:
    # Colour only what needs attention, so a clean run reads as a calm page.
    cls = status if n and status in ("fail", "error") else ("zero" if not n else None)
    return td(str(n), cls)


def margin_td(margin: float | None) -> Cell:
    return td(fmt_margin(margin), "fail" if margin is not None and margin > 1 else None)


def section(anchor: str, title: str, *parts: Any) -> Markup:
    inner = "".join(p if isinstance(p, Markup) else tag("p", p) for p in parts)
    return Markup(f'<section id="{anchor}">\n<h2>{esc(title)}</h2>\n{inner}</section>\n')


def runs_overview(data: Mapping[str, Any]) -> Markup:
    rows = [
        [
            r["run"],
            td("complete") if r["complete"] else td("incomplete", "incomplete"),
            str(r["records"]),
            str(len(r["malformed_lines"])),
            r["folder"],
        ]
        for r in data["runs"]
    ]
    return section(
        "runs", "Runs", table(["run", "state", "records", "malformed lines", "folder"], rows)
    )


def runs_metadata(data: Mapping[str, Any]) -> Markup:
    parts = []
    for run in data["runs"]:
        state = "complete" if run["complete"] else 'incomplete (no "finished" in manifest)'
        rows = [
            ["folder", run["folder"]],
            ["records", str(run["records"])],
            ["malformed lines", ", ".join(run["malformed_lines"]) or "0"],
        ]
        if run["manifest"] is None:
            rows.append(["manifest", "none"])
        else:
            rows += [[k, v] for k, v in flatten(run["manifest"])]
        parts += [
            tag("h3", f"{run['run']}: {state}", None if run["complete"] else "incomplete"),
            table(["field", "value"], rows, "kv"),
        ]
    return section("metadata", "Run metadata", *parts)


def summary(data: Mapping[str, Any]) -> Markup:
    headers = list(SUMMARY_COLUMNS)
    rows = [
        [
            r["stem"],
            r["adapter"],
            *(count_td(s, r[s]) for s in STATUS_TITLES),
            margin_td(r["worst_margin"]),
        ]
        for r in data["summary"]
    ]
    return section("summary", "Summary", table(headers, rows))


def matrix(data: Mapping[str, Any]) -> Markup:
    headers = list(MATRIX_COLUMNS)
    rows = [
        [
            r["stem"],
            r["adapter"],
            r["dtype"],
            *(count_td(s, r[s]) for s in STATUS_TITLES),
            margin_td(r["worst_margin"]),
            "; ".join(f"{d} ({n})" for d, n in r["diagnoses"]) or MISSING,
        ]
        for r in data["matrix"]
    ]
    return section("matrix", "Component x adapter x dtype", table(headers, rows))


def failures(data: Mapping[str, Any]) -> Markup:
    if not data["failures"]:
        return section("failures", "Failures and errors", "None.")
    headers = list(FAILURE_COLUMNS)
    rows = [
        [
            td(f["status"], f["status"]),
            f["check_id"],
            f["adapter"],
            f["dtype"],
            f["run"],
            fmt_margin(f["margin"]),
            f["message"],
            f["diagnosis"],
            td(tag("code", f["repro"])),
        ]
        for f in data["failures"]
    ]
    return section("failures", "Failures and errors", table(headers, rows, "failures"))


def reasons(data: Mapping[str, Any]) -> Markup:
    title = "Skipped, not covered, expected failures: reasons"
    if not data["reasons"]:
        return section("reasons", title, "None.")
    rows = [
        [
            STATUS_TITLES[r["status"]],
            r["reason"],
            str(r["count"]),
            ", ".join(r["adapters"]),
            ", ".join(r["stems"]),
        ]
        for r in data["reasons"]
    ]
    return section(
        "reasons", title, table(["status", "reason", "checks", "adapters", "components"], rows)
    )


def robustness(data: Mapping[str, Any]) -> Markup:
    rob = data["robustness"]
    parts: list[Any] = [tag("h3", "Errors by cause")]
    if rob["error_causes"]:
        rows = [
            [c["cause"], td(str(c["count"]), "error"), ", ".join(c["adapters"]), c["example"]]
            for c in rob["error_causes"]
        ]
        parts.append(table(["cause", "errors", "adapters", "example message"], rows, "failures"))
    else:
        parts.append(tag("p", "No error rows."))
    parts.append(tag("h3", "Incomplete runs"))
    if rob["incomplete_runs"]:
        rows = [
            [td(r["run"], "incomplete"), r["reason"], str(r["records"]), r["folder"]]
            for r in rob["incomplete_runs"]
        ]
        parts.append(table(["run", "reason", "records", "folder"], rows))
    else:
        parts.append(tag("p", "None: every run finished."))
    zoo = rob["mutant_zoo"]
    if zoo is not None:
        rows = [
            [
                m["adapter"],
                td("caught") if m["caught"] else td("escaped", "fail"),
                ", ".join(m["checks"]) or MISSING,
                "; ".join(m["diagnoses"]) or MISSING,
                count_td("error", m["errors"]),
            ]
            for m in zoo["mutants"]
        ]
        parts += [
            tag("h3", "Mutant zoo"),
            tag(
                "p",
                f"Kill rate: {zoo['caught']} of {zoo['total']} mutants caught "
                f"({zoo['kill_rate']:.0%}).",
            ),
            table(["mutant", "result", "failed checks", "diagnoses", "errors"], rows, "failures"),
        ]
    deviations = rob.get("intermittent") or []
    if deviations:
        rows = [
            [d["adapter"], d["check_id"], count_td("xfail", d["fired"]), str(d["not_triggered"])]
            for d in deviations
        ]
        parts += [
            tag("h3", "Intermittent deviations"),
            tag("p", intermittent_summary(deviations)),
            table(["adapter", "check", "runs showing it", "runs not"], rows),
        ]
    escalated = rob.get("escalated") or []
    if escalated:
        rows = [
            [e["adapter"], e["check_id"], td(e["status"], e["status"]), str(e["examples"]),
             fmt_margin(e["margin"])]
            for e in escalated
        ]  # fmt: skip
        parts += [
            tag("h3", "Escalated Monte Carlo draws"),
            tag("p", escalated_summary(escalated)),
            table(list(ESCALATED_COLUMNS), rows),
        ]
    return section("robustness", "Robustness", *parts)


def trace(data: Mapping[str, Any]) -> Markup:
    def result_td(result: Mapping[str, Any]) -> Cell:
        counts = result["counts"]
        bad = counts.get("fail") or counts.get("error")
        text = fmt_counts(counts)
        if counts and result["missing"]:
            text += "; no records: " + ", ".join(result["missing"])
        return td(text, "fail" if bad else ("zero" if not counts else None))

    headers = ["formula", "spec", "reference", "properties", *data["adapters"]]
    rows = [
        [
            t["formula"],
            t["spec"],
            t["reference"],
            ", ".join(t["properties"]),
            *(result_td(t["results"][a]) for a in data["adapters"]),
        ]
        for t in data["trace"]
    ]
    return section("trace", "Traceability", table(headers, rows))


def figures(paths: Mapping[str, Path]) -> Markup:
    imgs = []
    for name, path in paths.items():
        b64 = base64.b64encode(path.read_bytes()).decode("ascii")
        imgs.append(
            Markup(
                f'<figure><img alt="{esc(name)}" src="data:image/png;base64,{b64}">'
                f"<figcaption>{esc(name)}</figcaption></figure>\n"
            )
        )
    return section("figures", "Figures", *imgs)


CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em auto; max-width: 90em; color: #222; }
nav a { margin-right: 1em; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
td.zero { color: #aaa; }
td.fail, td.error, .incomplete { color: #a61b1b; font-weight: 600; }
table.failures td { max-width: 40em; overflow-wrap: anywhere; }
table.kv td:first-child { font-family: monospace; }
code { font-size: 12px; background: #f6f6f6; padding: 0.1em 0.3em; overflow-wrap: anywhere; }
figure { display: inline-block; margin: 0 1em 1em 0; }
"""


def render(data: Mapping[str, Any], figure_paths: Mapping[str, Path]) -> str:
    totals = data["totals"]
    overview = (
        f"{totals['records']} records from {len(data['runs'])} run(s) "
        f"({totals['incomplete_runs']} incomplete); "
        + ", ".join(f"{STATUS_TITLES[s]} {totals[s]}" for s in STATUS_TITLES)
        + f"; malformed lines skipped: {totals['malformed_lines']}."
    )
    sections = [runs_overview(data), summary(data), failures(data), robustness(data)]
    sections += [matrix(data), reasons(data)]
    if "trace" in data:
        sections.append(trace(data))
    sections.append(figures(figure_paths))
    for extra in data.get("tables", []):
        parts = [*extra.get("notes", []), table(extra["headers"], extra["rows"])]
        sections.append(section(extra["anchor"], extra["title"], *parts))
    sections.append(runs_metadata(data))
    nav = [
        ("runs", "runs"),
        ("summary", "summary"),
        ("failures", "failures"),
        ("robustness", "robustness"),
        ("matrix", "matrix"),
        ("reasons", "reasons"),
        *((("trace", "traceability"),) if "trace" in data else ()),
        ("figures", "figures"),
        *((t["anchor"], t["anchor"]) for t in data.get("tables", [])),
        ("metadata", "run metadata"),
    ]
    return page("nnspec conformance report", nav, overview, sections)


def page(
    title: str, nav: Sequence[tuple[str, str]], overview: str, sections: Sequence[Markup]
) -> str:
    """A whole self-contained document (inline CSS, no scripts, no external references);
    nav is (section anchor, link text) pairs, both fixed by the caller."""
    links = "".join(f'<a href="#{html.escape(a)}">{esc(t)}</a>' for a, t in nav)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{esc(title)}</title>\n"
        f"<style>{CSS}</style>\n</head>\n<body>\n{tag('h1', title)}\n"
        f"<nav>{links}</nav>\n{tag('p', overview)}\n{''.join(sections)}</body>\n</html>\n"
    )
