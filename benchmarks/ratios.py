"""python -m benchmarks.ratios BENCH_JSON [--out FILE.md]: the ratio table of a bench run.

reference / torch: forward+backward of the reference over torch float64 CPU (target <= 1.5).
onnx.reference / reference: forward of onnx.reference over the reference's (target >= 1)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tabulate import tabulate


def ratios(bench: dict) -> list[list]:
    times: dict[str, dict[str, float]] = {}
    sizes: dict[str, str] = {}
    for b in bench["benchmarks"]:
        info = b["extra_info"]
        times.setdefault(info["op"], {})[info["kind"]] = b["stats"]["median"]
        sizes[info["op"]] = info["size"]
    rows = []
    for op, t in sorted(times.items()):
        ref_vs_torch = t["reference-fwd+bwd"] / t["torch-fwd+bwd"]
        onnx_vs_ref = t["onnx-reference-fwd"] / t["reference-fwd"]
        rows.append(
            [
                op,
                sizes[op],
                f"{t['reference-fwd+bwd'] * 1e3:.2f}",
                f"{t['torch-fwd+bwd'] * 1e3:.2f}",
                f"{ref_vs_torch:.2f}" + ("" if ref_vs_torch <= 1.5 else " (misses 1.5)"),
                f"{onnx_vs_ref:.2f}" + ("" if onnx_vs_ref >= 1.0 else " (reference slower)"),
            ]
        )
    return rows


HEADERS = [
    "op",
    "size",
    "reference fwd+bwd ms",
    "torch f64 fwd+bwd ms",
    "reference / torch",
    "onnx.reference / reference (fwd)",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ratios")
    parser.add_argument("bench_json", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    table = tabulate(ratios(json.loads(args.bench_json.read_text())), HEADERS, tablefmt="github")
    print(table)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
