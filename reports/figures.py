"""Figures (PNG, matplotlib Agg) drawn from the records.

matplotlib is imported inside the functions: importing reports must stay cheap, and Figure +
FigureCanvasAgg avoid pyplot's global backend state, so nothing needs a display.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import math
import os
import platform
import shutil
import tempfile
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from conformance.results import STATUSES
from reports.safe_text import visible
from reports.summarize import STATUS_TITLES, dtype_sort_key, key, margin_of

# Adapter names and dtypes drawn as text are cut here: a long one would collapse the layout.
LABEL_LIMIT = 40
# Exact agreement gives margin 0, which has no logarithm: such margins are drawn at this floor.
MARGIN_FLOOR = 1e-6
STATUS_COLOURS = {
    "pass": "#4c9a2a",
    "fail": "#c0392b",
    "error": "#7d3c98",
    "skip": "#95a5a6",
    "not_covered": "#d5d8dc",
    "xfail": "#e67e22",
}


def text_label(text: str) -> str:
    """Record text as a matplotlib label: short, control characters visible, and "$" escaped
    so that it is never parsed as mathtext (which fails on malformed input)."""
    if len(text) > LABEL_LIMIT:
        text = text[: LABEL_LIMIT - 3] + "..."
    return visible(text).replace("$", r"\$")


def _save(fig: Any, path: Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=100)
    return path


def margins_by_dtype(records: Sequence[dict[str, Any]], path: Path) -> Path:
    """Histogram of log10(margin) per dtype; the dashed line is margin 1, the pass limit."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    logs: dict[str, list[float]] = defaultdict(list)
    for record in records:
        margin = margin_of(record)
        if margin is not None:
            logs[key(record.get("dtype"))].append(math.log10(max(margin, MARGIN_FLOOR)))
    dtypes = sorted(logs, key=dtype_sort_key)
    fig = Figure(figsize=(7, 1.0 + 1.8 * max(len(dtypes), 1)), layout="constrained")
    if not dtypes:
        ax = fig.subplots()
        ax.text(0.5, 0.5, "no margins recorded", ha="center", va="center")
        ax.set_axis_off()
        return _save(fig, path)
    values = [v for vs in logs.values() for v in vs]
    lo, hi = math.floor(min(min(values), -1.0)), math.ceil(max(max(values), 0.5))
    bins = [lo + (hi - lo) * i / 40 for i in range(41)]
    axes = fig.subplots(len(dtypes), 1, sharex=True, squeeze=False)[:, 0]
    for ax, dtype in zip(axes, dtypes, strict=True):
        over = sum(v > 0 for v in logs[dtype])
        ax.hist(logs[dtype], bins=bins, color="#3b6ea5")
        ax.axvline(0.0, color="#c0392b", linestyle="--", linewidth=1.2)
        ax.set_title(
            f"{text_label(dtype)}: {len(logs[dtype])} checks, {over} above margin 1", fontsize=9
        )
        ax.set_ylabel("checks")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    floor = f"margins < {MARGIN_FLOOR:g} (incl. 0) drawn at {math.log10(MARGIN_FLOOR):g}"
    axes[-1].set_xlabel(f"log10(margin = error / allowed); dashed: margin 1; {floor}")
    return _save(fig, path)


def status_by_adapter(records: Sequence[dict[str, Any]], path: Path) -> Path:
    """Stacked bar of statuses per adapter: the one-glance view of a run."""
    from matplotlib.figure import Figure

    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for record in records:
        counts[key(record.get("adapter"))][key(record.get("status"))] += 1
    adapters = sorted(counts)
    fig = Figure(figsize=(7, 1.2 + 0.5 * len(adapters)), layout="constrained")
    ax = fig.subplots()
    left = [0] * len(adapters)
    positions = list(range(len(adapters)))
    for status in STATUSES:
        widths = [counts[a][status] for a in adapters]
        # Numeric positions, not the names: two long names cut to the same label stay two bars.
        ax.barh(
            positions, widths, left=left, color=STATUS_COLOURS[status], label=STATUS_TITLES[status]
        )
        left = [x + w for x, w in zip(left, widths, strict=True)]
    ax.set_yticks(positions, [text_label(a) for a in adapters])
    ax.set_xlabel("checks")
    ax.invert_yaxis()
    ax.legend(fontsize=8, ncols=len(STATUSES), loc="lower center", bbox_to_anchor=(0.5, 1.0))
    return _save(fig, path)


def _gradient_flow(folder: Path) -> Path:
    from reports.gradient_flow import gradient_flow_figure

    return gradient_flow_figure(folder)


def _attention_scaling(folder: Path) -> Path:
    from reports.attention_scaling import attention_scaling_figure

    return attention_scaling_figure(folder)


def _swin_cost(folder: Path) -> Path:
    from reports.swin_cost import swin_cost_figure

    return swin_cost_figure(folder)


# Figures drawn from the reference kernels themselves, not from results: what the lecture notes
# claim (gradient flow through time, linear vs softmax attention cost, MSA vs W-MSA cost), made
# visible.
REFERENCE_FIGURES: dict[str, Callable[[Path], Path]] = {
    "gradient_flow.png": _gradient_flow,
    "attention_scaling.png": _attention_scaling,
    "swin_cost.png": _swin_cost,
}


def draw_figures(
    records: Sequence[dict[str, Any]], folder: Path, reference: bool = True
) -> dict[str, Path]:
    """Draw every figure into folder; returns {file name: path} in display order. reference=False
    leaves out REFERENCE_FIGURES (they take seconds and do not depend on the results)."""
    folder.mkdir(parents=True, exist_ok=True)
    drawn = {}
    for name, draw in (
        ("margins_by_dtype.png", margins_by_dtype),
        ("status_by_adapter.png", status_by_adapter),
    ):
        drawn[name] = draw(records, folder / name)
    if reference and REFERENCE_FIGURES:
        root = cache_dir()
        cache = root / figure_key() if root is not None else None  # hashed once per report
        for name, draw_reference in REFERENCE_FIGURES.items():
            drawn[name] = _from_cache(name, draw_reference, folder, cache)
    return drawn


ROOT = Path(__file__).resolve().parents[1]
# What a reference figure is computed from: the kernels, the cost models and the drawing code.
FIGURE_SOURCES = ("reference", "spec", "reports")
FIGURE_PACKAGES = ("numpy", "torch", "matplotlib")


def cache_dir() -> Path | None:
    """Where reference figures are kept between reports: $NNSPEC_CACHE_DIR ("off": nowhere),
    else $XDG_CACHE_HOME/nnspec or ~/.cache/nnspec."""
    chosen = os.environ.get("NNSPEC_CACHE_DIR")
    if chosen:
        return None if chosen == "off" else Path(chosen)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "nnspec"


def figure_key() -> str:
    """A digest of everything a reference figure depends on: the sources it is computed and
    drawn from, the numeric packages' versions, and the machine (its timings are measured)."""
    digest = hashlib.sha256()
    for top in FIGURE_SOURCES:
        for path in sorted((ROOT / top).rglob("*.py")):
            digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    for package in FIGURE_PACKAGES:
        try:
            version = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            version = "-"
        digest.update(f"{package}={version}".encode())
    digest.update(f"{platform.node()} {platform.machine()} {os.cpu_count()}".encode())
    return digest.hexdigest()[:20]


def _from_cache(name: str, draw: Callable[[Path], Path], folder: Path, cache: Path | None) -> Path:
    """A reference figure takes seconds to compute (the attention-scaling one times kernels)
    and depends on no result: it is drawn once per code version and machine (the cache folder,
    named by figure_key) and copied into each report after that. A cache that cannot be read
    or written is simply not used."""
    cached = cache / name if cache is not None else None
    if cached is not None and cached.is_file():
        try:
            return Path(shutil.copyfile(cached, folder / name))
        except OSError:
            pass
    path = draw(folder)
    if cached is not None:
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=cached.parent, suffix=".tmp")
            os.close(fd)
            shutil.copyfile(path, tmp)
            os.replace(tmp, cached)  # atomic: parallel reports never see half a file
        except OSError:
            pass
    return path
