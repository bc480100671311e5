"""Softmax attention vs linear attention: time and memory against the sequence length N.

The cost derivation (spec.linear_attention.quadratic_cost / linear_cost) says softmax (kernel)
attention costs O(N^2 d) and materialises an N x N matrix, linear attention O(N d^2) with only
(N, d) and (d, d) arrays. This module measures both on the reference kernels (NumPy, float64):

- peak memory: tracemalloc's peak during one call (NumPy reports its buffers to tracemalloc),
  deterministic for a given NumPy, so the growth exponents are stable (tests check them);
- time: the best of a few calls (machine-dependent: drawn, never asserted), torch on one
  thread; NumPy's matmuls go multi-threaded (OpenBLAS) past a size threshold, which on a busy
  machine shows as a jump in the reference curves;
- torch (when importable): the time of torch's scaled_dot_product_attention and of
  conformance.adapters.torch_attention.linear_attention on the same inputs; tracemalloc does
  not see torch's allocator, so torch has no memory curve.

`attention_scaling_figure(out_dir)` writes attention_scaling.png (log-log, two panels) and
returns its path; it takes a few seconds (N up to 2048, d = 32).
"""

from __future__ import annotations

import gc
import importlib.util
import math
import time
import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

N_VALUES = (64, 128, 256, 512, 1024, 2048)
HEAD_DIM = 32
REPEATS = 5


def _inputs(n: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return tuple(rng.standard_normal((n, d)) / math.sqrt(d) for _ in range(3))


def peak_bytes(fn: Callable, *args) -> int:
    """tracemalloc's peak (bytes) while fn(*args) runs, above what was allocated before."""
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        fn(*args)
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def best_seconds(fn: Callable, *args, repeats: int = REPEATS) -> float:
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fn(*args)
        best = min(best, time.perf_counter() - start)
    return best


def _reference_kernels() -> dict[str, Callable]:
    from reference.attention import sdpa
    from reference.linear_attention import linear_attention

    return {"softmax": sdpa, "linear": linear_attention}


def _torch_kernels() -> dict[str, Callable] | None:
    if importlib.util.find_spec("torch") is None:
        return None
    import torch
    from torch.nn.functional import scaled_dot_product_attention

    from conformance.adapters.torch_attention import linear_attention

    def wrap(fn):
        def run(q, k, v):
            with torch.no_grad():
                return fn(*(torch.from_numpy(a) for a in (q, k, v)))

        return run

    return {"softmax": wrap(scaled_dot_product_attention), "linear": wrap(linear_attention)}


def measure(
    n_values: Sequence[int] = N_VALUES, d: int = HEAD_DIM, timing: bool = True
) -> dict[str, dict[str, list[float]]]:
    """{"memory": {kernel: peak bytes per N}, "time": {"reference softmax": s per N, ...}}."""
    memory: dict[str, list[float]] = {}
    times: dict[str, list[float]] = {}
    reference = _reference_kernels()
    torch_kernels = _torch_kernels() if timing else None
    threads = _single_threaded_torch() if torch_kernels else None
    try:
        for n in n_values:
            q, k, v = _inputs(n, d)
            for name, fn in reference.items():
                memory.setdefault(name, []).append(float(peak_bytes(fn, q, k, v)))
                if timing:
                    times.setdefault(f"reference {name}", []).append(best_seconds(fn, q, k, v))
            for name, fn in (torch_kernels or {}).items():
                times.setdefault(f"torch {name}", []).append(best_seconds(fn, q, k, v))
    finally:
        if threads is not None:
            import torch

            torch.set_num_threads(threads)
    return {"memory": memory, "time": times}


def _single_threaded_torch() -> int:
    """One torch thread while timing (tiny kernels pay the thread pool's start-up on a busy
    machine); returns the previous setting."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    return previous


def growth_exponent(n_values: Sequence[int], values: Sequence[float], last: int = 3) -> float:
    """Slope of log(value) against log(N) over the last `last` points (the asymptotic regime)."""
    x = np.log(np.asarray(n_values, dtype=float)[-last:])
    y = np.log(np.asarray(values, dtype=float)[-last:])
    return float(np.polyfit(x, y, 1)[0])


def attention_scaling_figure(out_dir: Path | str, n_values: Sequence[int] = N_VALUES) -> Path:
    """Write attention_scaling.png into out_dir: time and peak memory against N, log-log."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = measure(n_values)
    n = np.asarray(n_values, dtype=float)
    fig = Figure(figsize=(10, 4.2), layout="constrained")
    ax_time, ax_mem = fig.subplots(1, 2)
    styles = {"softmax": ("#c0392b", "o"), "linear": ("#3b6ea5", "s")}

    for label, values in data["time"].items():
        impl, kind = label.split()
        colour, marker = styles[kind]
        ax_time.loglog(n, values, marker=marker, color=colour,
                       linestyle="-" if impl == "reference" else "--", label=label)  # fmt: skip
    for kind, values in data["memory"].items():
        colour, marker = styles[kind]
        slope = growth_exponent(n_values, values)
        ax_mem.loglog(n, np.asarray(values) / 2**20, marker=marker, color=colour,
                      label=f"reference {kind} (slope {slope:.2f})")  # fmt: skip

    for ax, values in ((ax_time, data["time"]), (ax_mem, data["memory"])):
        scale = 2**20 if ax is ax_mem else 1.0
        anchor = min(v[0] for v in values.values()) / scale
        for power, style in ((1, ":"), (2, "-.")):
            ax.loglog(n, anchor * (n / n[0]) ** power, color="#7f8c8d", linestyle=style,
                      linewidth=0.8, label=f"∝ N^{power}")  # fmt: skip
        ax.set_xlabel("sequence length N")
        ax.grid(True, which="both", linewidth=0.3)
        ax.legend(fontsize=8)
    ax_time.set_ylabel(f"seconds (best of {REPEATS})")
    ax_time.set_title(f"time, d = {HEAD_DIM}, float64 (machine-dependent)", fontsize=10)
    ax_mem.set_ylabel("peak memory (MiB, tracemalloc)")
    ax_mem.set_title("peak memory of one call: softmax O(N²), linear O(N d)", fontsize=10)
    path = out_dir / "attention_scaling.png"
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=100)
    return path
