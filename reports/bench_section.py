"""The benchmarks (nox -s bench) in the report: benchmarks/ratios.py's ratios.json as a table,
with its figures. Read as JSON only, like every other input of the report generator."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from reports.load import ReportError

FIGURES = ("bench_ratios.png", "attention_scaling_bench.png")


def bench_section(folder: Path, figures_out: Path) -> tuple[dict[str, Any], dict[str, Path]]:
    """({"anchor", "title", "notes", "headers", "rows"}, {figure name: copied path}) from a
    nox -s bench output folder."""
    from benchmarks.ratios import HEADERS, table_rows

    path = folder / "ratios.json"
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
        rows = table_rows(report["ops"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ReportError(f"--bench {folder}: no readable ratios.json ({exc})") from None
    notes = [f"Times: the {report.get('stat', 'median')} of each benchmark's rounds."]
    machine = report.get("machine") or {}
    if machine:
        notes.append("Machine: " + ", ".join(f"{k} {v}" for k, v in machine.items()) + ".")
    for r in (report.get("scaling") or {}).get("ratios", []):
        verdict = "met" if r["met"] else "MISSED"
        notes.append(
            f"Attention scaling, {r['kernel']} {r['quantity']} N=4096 / N=1024: "
            f"x{r['ratio']:.2f} (target {r['target']}: {verdict})."
        )
    figures_out.mkdir(parents=True, exist_ok=True)
    copied = {}
    for name in FIGURES:
        if (folder / name).is_file():
            copied[name] = Path(shutil.copyfile(folder / name, figures_out / name))
    table = {"anchor": "performance", "title": "Performance (nox -s bench)", "notes": notes}
    return {**table, "headers": list(HEADERS), "rows": rows}, copied
