"""Figures of a bench run (benchmarks/ratios.py's report dict); matplotlib's Agg canvas, no
pyplot (no global state, no display).

- ratio_figure: per op, reference / torch (forward+backward, target line at 1.5) and
  onnx.reference / reference (forward, target line at 1), missed targets in red;
- scaling_figure: the reference's softmax and linear attention time and peak memory against N,
  log-log, with the N=4096 / N=1024 ratios and their targets in the legend."""

from __future__ import annotations

from pathlib import Path

import numpy as np

MET, MISSED, NA = "#3b6ea5", "#c0392b", "#bdc3c7"


def _bars(ax, rows: list[dict], key: str, met_key: str, target: float, sense: str) -> None:
    ops = [r["op"] for r in rows]
    values = [r[key] for r in rows]
    y = np.arange(len(ops))
    shown = [v if v is not None else np.nan for v in values]
    colours = [NA if r[met_key] is None else MET if r[met_key] else MISSED for r in rows]
    ax.barh(y, shown, color=colours)
    for i, v in enumerate(values):
        label = "n/a" if v is None else f"{v:.2f}"
        ax.text(v if v is not None else target, i, f" {label}", va="center", fontsize=8)
    ax.axvline(target, color="#2c3e50", linestyle="--", linewidth=1, label=f"target {sense}")
    ax.set_yticks(y, ops, fontsize=8)
    largest = max([target, *(v for v in values if v is not None)])
    ax.set_xlim(0, largest * 1.15)
    ax.grid(True, axis="x", linewidth=0.3)
    ax.legend(fontsize=8, loc="best")


def ratio_figure(report: dict, path: Path | str) -> Path:
    """Write the per-op ratio bars of report (benchmarks.ratios.summary's dict) to path."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = report["ops"]
    torch_target = report["targets"]["reference_vs_torch"]["at_most"]
    onnx_target = report["targets"]["onnx_vs_reference"]["at_least"]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(11, 0.35 * len(rows) + 1.8), layout="constrained")
    left, right = fig.subplots(1, 2, sharey=True)
    _bars(left, rows, "reference_vs_torch", "torch_target_met", torch_target,
          f"<= {torch_target:g}")  # fmt: skip
    left.set_title("reference / torch float64, forward+backward", fontsize=10)
    _bars(right, rows, "onnx_vs_reference", "onnx_target_met", onnx_target,
          f">= {onnx_target:g}")  # fmt: skip
    right.set_title("onnx.reference / reference, forward", fontsize=10)
    left.invert_yaxis()  # first op on top (the axes share y: invert once)
    for ax in (left, right):
        ax.set_xlabel(f"time ratio ({report.get('stat', 'median')}; red: target missed)")
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=100)
    return path


def scaling_figure(scaling: dict, path: Path | str) -> Path:
    """Write time and peak memory against N (benchmarks.ratios.measure_scaling's dict)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = np.asarray(scaling["n"], dtype=float)
    ratio = {(r["kernel"], r["quantity"]): r for r in scaling["ratios"]}
    fig = Figure(figsize=(10, 4.2), layout="constrained")
    ax_time, ax_mem = fig.subplots(1, 2)
    styles = {"softmax": ("#c0392b", "o"), "linear": ("#3b6ea5", "s")}
    for kernel, (colour, marker) in styles.items():
        for ax, quantity, values, scale in (
            (ax_time, "time", scaling["time"][f"reference {kernel}"], 1.0),
            (ax_mem, "memory", scaling["memory"][kernel], 2.0**20),
        ):
            r = ratio[(kernel, quantity)]
            label = f"{kernel}: x{r['ratio']:.1f} from N=1024 to 4096 (target {r['target']})"
            ax.loglog(n, np.asarray(values) / scale, marker=marker, color=colour, label=label)
    for ax in (ax_time, ax_mem):
        ax.set_xticks(n, [str(int(v)) for v in n])
        ax.minorticks_off()
        ax.set_xlabel("sequence length N")
        ax.grid(True, which="both", linewidth=0.3)
        ax.legend(fontsize=8)
    ax_time.set_ylabel(f"seconds (best of {scaling['repeats']})")
    ax_time.set_title(f"reference time, d = {scaling['d']}, float64", fontsize=10)
    ax_mem.set_ylabel("peak memory (MiB, tracemalloc)")
    ax_mem.set_title("reference peak memory of one call", fontsize=10)
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=100)
    return path
