"""python -m benchmarks.ratios BENCH_JSON --out-dir DIR: the ratio table of a bench run.

Per op (issue #10's targets, ratios of the same run on the same machine):
- reference / torch: forward+backward of the reference over torch float64 CPU (target <= 1.5);
  one forward whose saved activations the pullback reads where the op has a with_vjp form,
  else the forward and a vjp that recomputes it (marked "forward recomputed");
- onnx.reference / reference: the forward of onnx.reference over the reference's (target >= 1).

Attention scaling (reports.attention_scaling's measure: best-of-5 time and tracemalloc peak of
one reference call, q, k, v (N, 32) float64): time(N=4096) / time(N=1024) <= 5 for linear
attention and >= 12 for softmax attention; peak memory the same way.

Writes ratios.md, ratios.json, bench_ratios.png and attention_scaling_bench.png into DIR."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from tabulate import tabulate

TORCH_TARGET = 1.5  # reference / torch, forward+backward: at most
ONNX_TARGET = 1.0  # onnx.reference / reference, forward: at least
SCALING_N = (1024, 4096)
SCALING_TARGETS = {"linear": ("<=", 5.0), "softmax": (">=", 12.0)}
SCALING_PLOT_N = (256, 512, 1024, 2048, 4096)


def _times(bench: dict, stat: str) -> dict[str, dict]:
    """op -> {"size", "onnx_missing", "times": {kind: seconds}} from pytest-benchmark JSON."""
    ops: dict[str, dict] = {}
    for b in bench["benchmarks"]:
        info = b["extra_info"]
        entry = ops.setdefault(info["op"], {"size": info["size"], "times": {}})
        entry["onnx_missing"] = info.get("onnx_missing")
        if info["kind"] == "reference-fwd+bwd":
            entry["backward"] = info.get("backward")
        entry["times"][info["kind"]] = b["stats"][stat]
    return ops


def _ratio(num: float | None, den: float | None) -> float | None:
    return num / den if num is not None and den else None


def ratios(bench: dict, stat: str = "median") -> list[dict]:
    """One row per op: the times (s), both ratios (None where a side was not measured), whether
    each meets its target (None where not measured) and why onnx.reference is missing."""
    rows = []
    for op, entry in sorted(_times(bench, stat).items()):
        t = entry["times"]
        vs_torch = _ratio(t.get("reference-fwd+bwd"), t.get("torch-fwd+bwd"))
        vs_onnx = _ratio(t.get("onnx-reference-fwd"), t.get("reference-fwd"))
        onnx_note = None
        if vs_onnx is None:
            onnx_note = entry.get("onnx_missing") or "not measured"
        rows.append(
            {
                "op": op,
                "size": entry["size"],
                "backward": entry.get("backward"),
                "seconds": dict(t),
                "reference_vs_torch": vs_torch,
                "torch_target_met": None if vs_torch is None else vs_torch <= TORCH_TARGET,
                "onnx_vs_reference": vs_onnx,
                "onnx_target_met": None if vs_onnx is None else vs_onnx >= ONNX_TARGET,
                "onnx_note": onnx_note,
            }
        )
    return rows


def _met(ratio: float | None, met: bool | None, note: str | None = None) -> str:
    if ratio is None:
        return f"n/a ({note})" if note else "n/a"
    return f"{ratio:.2f} {'met' if met else '**missed**'}"


def _ms(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds * 1e3:.1f}"


HEADERS = [
    "op",
    "size",
    "reference fwd+bwd ms",
    "torch f64 fwd+bwd ms",
    f"reference / torch (<= {TORCH_TARGET})",
    "reference fwd ms",
    "onnx.reference fwd ms",
    f"onnx.reference / reference (>= {ONNX_TARGET:g})",
]


def table_rows(rows: list[dict]) -> list[list[str]]:
    out = []
    for r in rows:
        t = r["seconds"]
        out.append(
            [
                r["op"],
                r["size"],
                _ms(t.get("reference-fwd+bwd"))
                + (" (forward recomputed)" if r.get("backward") == "forward recomputed" else ""),
                _ms(t.get("torch-fwd+bwd")),
                _met(r["reference_vs_torch"], r["torch_target_met"]),
                _ms(t.get("reference-fwd")),
                _ms(t.get("onnx-reference-fwd")),
                _met(r["onnx_vs_reference"], r["onnx_target_met"], r["onnx_note"]),
            ]
        )
    return out


# -- attention scaling -----------------------------------------------------------------------


def scaling_ratios(data: dict, n_values: Sequence[int]) -> list[dict]:
    """time and memory ratios N_large / N_small of each reference kernel, with the targets;
    data is reports.attention_scaling.measure's result over n_values."""
    small, large = (list(n_values).index(n) for n in SCALING_N)
    rows = []
    for quantity, key in (("time", "reference {}"), ("memory", "{}")):
        for kernel, (sense, bound) in SCALING_TARGETS.items():
            values = data[quantity][key.format(kernel)]
            ratio = values[large] / values[small]
            met = ratio <= bound if sense == "<=" else ratio >= bound
            rows.append(
                {
                    "kernel": kernel,
                    "quantity": quantity,
                    "small": values[small],
                    "large": values[large],
                    "ratio": ratio,
                    "target": f"{sense} {bound:g}",
                    "met": met,
                }
            )
    return rows


def measure_scaling(n_values: Sequence[int] = SCALING_PLOT_N) -> dict:
    """reports.attention_scaling.measure over n_values (which must hold 1024 and 4096)."""
    from reports.attention_scaling import HEAD_DIM, REPEATS, measure

    data = measure(n_values)
    return {
        "n": list(n_values),
        "d": HEAD_DIM,
        "repeats": REPEATS,
        "time": data["time"],
        "memory": data["memory"],
        "ratios": scaling_ratios(data, n_values),
    }


def scaling_markdown(scaling: dict) -> str:
    n_small, n_large = SCALING_N
    rows = []
    for r in scaling["ratios"]:
        unit = (lambda v: f"{v * 1e3:.2f} ms") if r["quantity"] == "time" else _mib
        rows.append(
            [
                f"reference {r['kernel']} attention",
                r["quantity"],
                unit(r["small"]),
                unit(r["large"]),
                f"{r['ratio']:.2f}",
                r["target"],
                "met" if r["met"] else "**missed**",
            ]
        )
    headers = ["kernel", "quantity", f"N={n_small}", f"N={n_large}", "ratio", "target", ""]
    return tabulate(rows, headers, tablefmt="github")


def _mib(v: float) -> str:
    return f"{v / 2**20:.2f} MiB"


# -- report ----------------------------------------------------------------------------------


def summary(rows: list[dict], scaling: dict | None, machine: dict | None, stat: str) -> dict:
    return {
        "stat": stat,
        "targets": {
            "reference_vs_torch": {"at_most": TORCH_TARGET},
            "onnx_vs_reference": {"at_least": ONNX_TARGET},
            "scaling": {k: f"{s} {b:g}" for k, (s, b) in SCALING_TARGETS.items()},
        },
        "machine": machine or {},
        "ops": rows,
        "scaling": scaling,
    }


def markdown(report: dict) -> str:
    rows = report["ops"]
    lines = ["# Benchmarks: reference vs torch float64 and onnx.reference", ""]
    torch_rows = [r for r in rows if r["torch_target_met"] is not None]
    onnx_rows = [r for r in rows if r["onnx_target_met"] is not None]
    lines.append(
        f"Times are the {report['stat']} of each benchmark's rounds. "
        f"reference / torch (forward+backward) meets <= {TORCH_TARGET} on "
        f"{sum(r['torch_target_met'] for r in torch_rows)} of {len(torch_rows)} ops; "
        f"onnx.reference / reference (forward) meets >= {ONNX_TARGET:g} on "
        f"{sum(r['onnx_target_met'] for r in onnx_rows)} of {len(onnx_rows)} ops."
    )
    machine = report.get("machine") or {}
    if machine:
        lines += ["", "Machine: " + ", ".join(f"{k} {v}" for k, v in machine.items()) + "."]
    lines += ["", tabulate(table_rows(rows), HEADERS, tablefmt="github")]
    scaling = report.get("scaling")
    if scaling:
        lines += [
            "",
            f"## Attention scaling (reference, q, k, v (N, {scaling['d']}) float64)",
            "",
            f"Time: best of {scaling['repeats']} calls; memory: tracemalloc peak of one call.",
            "",
            scaling_markdown(scaling),
        ]
    return "\n".join(lines) + "\n"


def _machine(bench: dict) -> dict:
    info = bench.get("machine_info") or {}
    extra = next((b["extra_info"] for b in bench.get("benchmarks", [])), {})
    machine = {}
    if info.get("cpu", {}).get("brand_raw"):
        machine["cpu"] = info["cpu"]["brand_raw"]
    if info.get("cpu", {}).get("count"):
        machine["cores"] = info["cpu"]["count"]
    for key in ("threads", "openblas_threads"):
        if key in extra:
            machine[f"{key.replace('_', ' ')}"] = extra[key]
    return machine


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ratios")
    parser.add_argument("bench_json", type=Path)
    parser.add_argument("--out-dir", type=Path, help="write ratios.md, ratios.json, figures")
    parser.add_argument("--stat", default="median", choices=["median", "min", "mean"])
    parser.add_argument("--no-scaling", action="store_true", help="skip the N=1024/4096 runs")
    args = parser.parse_args(argv)
    bench = json.loads(args.bench_json.read_text())
    rows = ratios(bench, args.stat)
    scaling = None if args.no_scaling else measure_scaling()
    report = summary(rows, scaling, _machine(bench), args.stat)
    text = markdown(report)
    print(text)
    if args.out_dir:
        from reports.bench_figure import ratio_figure, scaling_figure

        args.out_dir.mkdir(parents=True, exist_ok=True)
        (args.out_dir / "ratios.md").write_text(text, encoding="utf-8")
        (args.out_dir / "ratios.json").write_text(
            json.dumps(report, indent=2) + "\n", encoding="utf-8"
        )
        ratio_figure(report, args.out_dir / "bench_ratios.png")
        if scaling:
            scaling_figure(scaling, args.out_dir / "attention_scaling_bench.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
