"""compare.md and compare.html from the data of reports.compare.

Both formats are driven by one table of categories and columns, so they list the same rows
with the same headers. All record and manifest text goes through markdown.cell/code or
html_page's esc (via tag/td), which escape it, make control characters visible and cut very
long strings.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from reports import html_page, markdown
from reports.summarize import fmt_margin

Row = Mapping[str, Any]
# A column: header, value of a row, and how the value is shown: "text" (record text),
# "code" (a command line) or "status" (coloured in HTML when it is fail or error).
Column = tuple[str, Callable[[Row], Any], str]

CHECK: Column = ("check_id", lambda r: r["check_id"], "text")
ADAPTER: Column = ("adapter", lambda r: r["adapter"], "text")
OLD_STATUS: Column = ("old status", lambda r: r["old_status"], "status")
NEW_STATUS: Column = ("new status", lambda r: r["new_status"], "status")
OLD_MARGIN: Column = ("old margin", lambda r: fmt_margin(r["old_margin"]), "text")
NEW_MARGIN: Column = ("new margin", lambda r: fmt_margin(r["new_margin"]), "text")
MESSAGE: Column = ("message", lambda r: r["message"], "text")

# (key in the data, anchor, title ({factor} is filled in), columns)
CATEGORIES: tuple[tuple[str, str, str, tuple[Column, ...]], ...] = (
    (
        "newly_failing",
        "newly-failing",
        "Newly failing",
        (
            CHECK,
            ADAPTER,
            OLD_STATUS,
            NEW_STATUS,
            NEW_MARGIN,
            MESSAGE,
            ("diagnosis", lambda r: r["diagnosis"], "text"),
            ("repro", lambda r: r["repro"], "code"),
        ),
    ),
    (
        "newly_passing",
        "newly-passing",
        "Newly passing",
        (CHECK, ADAPTER, OLD_STATUS, NEW_STATUS, OLD_MARGIN, NEW_MARGIN),
    ),
    (
        "margin_moves",
        "margins",
        "Margins moved by more than x{factor:g}",
        (
            CHECK,
            ADAPTER,
            OLD_MARGIN,
            NEW_MARGIN,
            ("ratio", lambda r: f"x{r['ratio']:.3g}", "text"),
            OLD_STATUS,
            NEW_STATUS,
        ),
    ),
    ("only_old", "only-old", "Only in OLD", (CHECK, ADAPTER, OLD_STATUS, OLD_MARGIN)),
    ("only_new", "only-new", "Only in NEW", (CHECK, ADAPTER, NEW_STATUS, NEW_MARGIN, MESSAGE)),
    (
        "status_changes",
        "status-changes",
        "Other status changes",
        (CHECK, ADAPTER, OLD_STATUS, NEW_STATUS, MESSAGE),
    ),
)
TITLE = "nnspec comparison"


def _side(name: str, side: Mapping[str, Any]) -> str:
    text = (
        f"{name}: {', '.join(side['paths']) or '-'} ({len(side['runs'])} run(s), "
        f"{side['records']} records, {side['checks']} checks"
    )
    if side["incomplete_runs"]:
        text += f"; incomplete: {', '.join(side['incomplete_runs'])}"
    return text + ")"


def counts_line(data: Mapping[str, Any]) -> str:
    counts = ", ".join(
        f"{_title(title[0].lower() + title[1:], data)}: {len(data[k])}"
        for k, _, title, _ in CATEGORIES
    )
    return f"{counts}; unchanged: {data['unchanged']}."


def _title(title: str, data: Mapping[str, Any]) -> str:
    return title.format(factor=data["factor"])


def _md_value(value: Any, style: str) -> str:
    return markdown.code(value) if style == "code" else markdown.cell(value)


def render_markdown(data: Mapping[str, Any]) -> str:
    lines = [f"# {TITLE}", ""]
    lines += [markdown.cell(_side("OLD", data["old"])), ""]
    lines += [markdown.cell(_side("NEW", data["new"])), ""]
    lines += [counts_line(data), "", "## Versions", ""]
    if data["versions"]:
        rows = [[markdown.cell(v[f]) for f in ("name", "old", "new")] for v in data["versions"]]
        lines += [markdown.table(["name", "old", "new"], rows), ""]
    else:
        lines += ["No differences.", ""]
    for k, _, title, columns in CATEGORIES:
        lines += [f"## {_title(title, data)} ({len(data[k])})", ""]
        if not data[k]:
            lines += ["None.", ""]
            continue
        rows = [[_md_value(get(row), style) for _, get, style in columns] for row in data[k]]
        lines += [markdown.table([h for h, _, _ in columns], rows), ""]
    return "\n".join(lines)


def _html_cell(row: Row, get: Callable[[Row], Any], style: str) -> html_page.Cell:
    value = get(row)
    if style == "code":
        return html_page.td(html_page.tag("code", value))
    if style == "status":
        return html_page.td(value, "fail" if value in ("fail", "error") else None)
    return html_page.td(value)


def render_html(data: Mapping[str, Any]) -> str:
    intro = html_page.tag("p", _side("OLD", data["old"])) + html_page.tag(
        "p", _side("NEW", data["new"])
    )
    if data["versions"]:
        rows = [[v["name"], v["old"], v["new"]] for v in data["versions"]]
        versions = html_page.table(["name", "old", "new"], rows, "kv")
    else:
        versions = html_page.tag("p", "No differences.")
    sections = [
        html_page.section("sides", "Compared", html_page.Markup(intro)),
        html_page.section("versions", "Versions", versions),
    ]
    for k, anchor, title, columns in CATEGORIES:
        if data[k]:
            rows = [[_html_cell(row, get, style) for _, get, style in columns] for row in data[k]]
            body: Any = html_page.table([h for h, _, _ in columns], rows, "failures")
        else:
            body = "None."
        title = _title(title, data)
        sections.append(html_page.section(anchor, f"{title} ({len(data[k])})", body))
    nav = [("versions", "versions"), *((a, _title(t, data)) for _, a, t, _ in CATEGORIES)]
    return html_page.page(TITLE, nav, counts_line(data), sections)
