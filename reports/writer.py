"""Writes one report folder: summary.json, report.md, figures/ and index.html."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from reports import html_page, markdown
from reports.bench_section import bench_section
from reports.figures import draw_figures
from reports.gpu_section import gpu_section
from reports.load import Run, Warn, load_runs, load_trace, stderr_warn
from reports.summarize import summarize


def write_report(
    runs: Sequence[Run],
    trace: Sequence[dict[str, Any]] | None,
    out: Path,
    reference_figures: bool = True,
    bench: Path | None = None,
) -> dict[str, Any]:
    """Write every output into out (created if needed); returns the summary data."""
    out.mkdir(parents=True, exist_ok=True)
    data = summarize(runs, trace)
    data["tables"] = []
    if reference_figures:  # the FLOP models' table travels with the reference figures
        from reports.swin_cost import network_cost_cells

        title = "Model cost (FLOP models, reference/vit.py and reference/swin.py)"
        data["tables"].append({"anchor": "costs", "title": title, **network_cost_cells()})
    records = [r for run in runs for r in run.records]
    figures = draw_figures(records, out / "figures", reference=reference_figures)
    gpus = [str(g) for run in runs for g in ((run.manifest or {}).get("gpus") or [])]
    gpu = gpu_section(records, gpus, out / "figures")
    if gpu is not None:
        data["tables"].append(gpu[0])
        figures.update(gpu[1])
    if bench is not None:
        table, bench_figures = bench_section(Path(bench), out / "figures")
        data["tables"].append(table)
        figures.update(bench_figures)
    # allow_nan=False: summary.json must stay strict JSON for other tools to read.
    (out / "summary.json").write_text(
        json.dumps(data, indent=2, allow_nan=False, default=str) + "\n", encoding="utf-8"
    )
    (out / "report.md").write_text(markdown.render(data, list(figures)), encoding="utf-8")
    (out / "index.html").write_text(html_page.render(data, figures), encoding="utf-8")
    return data


def build(
    folders: Iterable[Path | str],
    out: Path | str,
    warn: Warn = stderr_warn,
    reference_figures: bool = True,
) -> Path:
    """Merge the results folders (or folders holding them) into a report in out; returns the
    path of index.html. Raises reports.load.ReportError for problems the user must fix."""
    out = Path(out)
    write_report(load_runs(folders, warn), load_trace(warn), out, reference_figures)
    return out / "index.html"
