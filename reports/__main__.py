"""python -m reports RESULTS_DIR [RESULTS_DIR ...] --out DIR
python -m reports compare OLD NEW [--factor F] [--out DIR] [--strict]   (reports.compare_cli)"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from tabulate import tabulate

from reports.load import ReportError, load_runs, load_trace
from reports.safe_text import shown, visible
from reports.summarize import STATUS_TITLES, SUMMARY_COLUMNS, fmt_margin
from reports.writer import write_report


def console_summary(data: dict[str, Any]) -> str:
    """The short text shown after a run: component x adapter counts, then the runs."""
    headers = list(SUMMARY_COLUMNS)
    rows = [
        [
            shown(r["stem"]),
            shown(r["adapter"]),
            *(r[s] for s in STATUS_TITLES),
            fmt_margin(r["worst_margin"]),
        ]
        for r in data["summary"]
    ]
    lines = [tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True), ""]
    for run in data["runs"]:
        state = "complete" if run["complete"] else 'INCOMPLETE (no "finished" in manifest)'
        bad = (
            f", {len(run['malformed_lines'])} malformed line(s) skipped"
            if run["malformed_lines"]
            else ""
        )
        lines.append(f"run {shown(run['run'])}: {state}, {run['records']} records{bad}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m reports",
        description="Merge nnspec results folders (from any number of runs and machines) into "
        "one report: report.md, index.html, summary.json and figures/. "
        "To compare two sets of results: python -m reports compare OLD NEW (see its --help).",
    )
    parser.add_argument(
        "folders",
        nargs="+",
        type=Path,
        metavar="RESULTS_DIR",
        help="a results folder, or a folder holding results folders",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("nnspec-out/report"),
        metavar="DIR",
        help="output folder (default: %(default)s)",
    )
    parser.add_argument(
        "--no-reference-figures",
        action="store_true",
        help="leave out the figures drawn from the reference kernels (gradient flow, attention "
        "scaling): they take seconds and do not depend on the results",
    )
    parser.add_argument(
        "--bench",
        type=Path,
        metavar="DIR",
        help="also show the benchmarks written by `nox -s bench` (DIR/ratios.json and figures)",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 when any check failed or errored (xfails do not count): for CI",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["compare"]:  # a results folder named "compare" can be given as ./compare
        from reports.compare_cli import main as compare_main

        return compare_main(argv[1:])
    args = parse_args(argv)
    try:
        runs = load_runs(args.folders)
        data = write_report(
            runs,
            load_trace(),
            args.out,
            reference_figures=not args.no_reference_figures,
            bench=args.bench,
        )
    except ReportError as exc:
        print(f"error: {visible(str(exc))}", file=sys.stderr)
        return 2
    except OSError as exc:  # e.g. --out not writable: one line, not a traceback
        print(f"error: {visible(str(exc))}", file=sys.stderr)
        return 1
    print(console_summary(data))
    print(f"report: {args.out / 'index.html'}")
    broken = sum(row["fail"] + row["error"] for row in data["summary"])
    if args.strict and broken:
        print(f"{broken} check(s) failed or errored: see the failures section of the report")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
