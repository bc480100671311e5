"""The GPU section of a report: per op and dtype, each CUDA configuration's worst margin (error /
allowed error) beside the CPU torch adapter's, and a figure of the margins by configuration and
dtype. Present when the results hold records of an adapter on a CUDA device."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reports.figures import MARGIN_FLOOR, _save, text_label
from reports.summarize import DTYPE_ORDER, margin_of

CPU_BASELINE = "torch"  # the CPU adapter the GPU configurations are set beside
JUDGED = ("pass", "fail", "xfail")  # statuses that carry a margin
FIGURE = "gpu_margins.png"


def on_gpu(record: dict[str, Any]) -> bool:
    return str(record.get("device") or "").startswith("cuda")


def _cell(rows: list[dict[str, Any]]) -> str:
    """The worst margin of the rows, marked by their outcome: 'x' a fail, '(x)' a declared
    deviation, '—' nothing judged (not covered or skipped)."""
    judged = [r for r in rows if r["status"] in JUDGED and margin_of(r) is not None]
    errors = [r for r in rows if r["status"] == "error"]
    if not judged:
        return "error" if errors else "—"
    worst = max(judged, key=margin_of)
    text = f"{margin_of(worst):.2g}"
    if any(r["status"] == "fail" for r in judged):
        text += " x"
    elif worst["status"] == "xfail":
        text = f"({text})"
    return text + (" +error" if errors else "")


def gpu_section(
    records: Sequence[dict[str, Any]], gpus: Sequence[str], figures_out: Path
) -> tuple[dict[str, Any], dict[str, Path]] | None:
    """({"anchor", "title", "notes", "headers", "rows"}, {figure name: path}), or None when no
    record comes from a CUDA device."""
    gpu = sorted({r["adapter"] for r in records if on_gpu(r) and r["status"] in JUDGED})
    if not gpu:
        return None
    adapters = ([CPU_BASELINE] if any(r["adapter"] == CPU_BASELINE for r in records) else []) + gpu
    cells: dict[tuple[str, str], dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        if r["adapter"] in adapters and isinstance(r.get("op"), str) and r["op"]:
            # A record lists every op and relation its check called; the first is the op under
            # test.
            op = r["op"].split(",")[0]
            cells[(op, r["dtype"])][r["adapter"]].append(r)
    rows = [
        [op, dtype, *(_cell(by_adapter.get(a, [])) for a in adapters)]
        for (op, dtype), by_adapter in sorted(cells.items())
        if any(r["status"] in JUDGED for a in gpu for r in by_adapter.get(a, []))
    ]
    notes = [
        "Each cell: the worst margin (error / allowed error; 1 is the limit) over the op's "
        "checks in that dtype; 'x' a check failed, (parentheses) a declared deviation (xfail), "
        "'—' not covered or not run, '+error' some check raised.",
        "Configurations: conformance/adapters/torch_cuda.py (TF32, cuDNN, deterministic "
        "algorithms, SDPA backends); torch is the CPU adapter.",
    ]
    if gpus:
        notes.append("GPU: " + ", ".join(sorted(set(gpus))) + ".")
    figures = _figure([r for r in records if r["adapter"] in adapters], adapters, figures_out)
    table = {"anchor": "gpu", "title": "GPU configurations (margin per op and dtype)"}
    return {**table, "notes": notes, "headers": ["op", "dtype", *adapters], "rows": rows}, figures


def _figure(records, adapters: list[str], out: Path) -> dict[str, Path]:
    """log10(margin) of every judged check, by configuration (x) and dtype (colour); margins
    below MARGIN_FLOOR (exact agreement included) are drawn at the floor, as in
    reports/figures.py."""
    from matplotlib.figure import Figure

    logs: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in records:
        m = margin_of(r)
        if r["status"] in JUDGED and m is not None:
            logs[(r["adapter"], r["dtype"])].append(math.log10(max(m, MARGIN_FLOOR)))
    fig = Figure(figsize=(max(6.0, 0.9 * len(adapters) + 2), 4.2), layout="constrained")
    ax = fig.subplots()
    for j, dtype in enumerate(DTYPE_ORDER):
        xs, ys = [], []
        for i, adapter in enumerate(adapters):
            ys += logs[(adapter, dtype)]
            xs += [i + (j - 1.5) * 0.18] * len(logs[(adapter, dtype)])
        ax.scatter(xs, ys, s=6, alpha=0.5, label=dtype)
    ax.axhline(0.0, color="black", lw=0.8, ls="--")
    ax.set_xticks(
        range(len(adapters)), [text_label(a) for a in adapters], rotation=35, ha="right", fontsize=8
    )
    ax.set_ylabel("log10(margin = error / allowed)")
    ax.set_title("Margins by configuration and dtype (above the dashed line: fails)")
    ax.legend(fontsize=8, markerscale=2)
    out.mkdir(parents=True, exist_ok=True)
    return {FIGURE: _save(fig, out / FIGURE)}
