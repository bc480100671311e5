"""python -m reports compare OLD NEW [--factor F] [--out DIR] [--strict]

Writes compare.md, compare.html and compare.json (the full, uncut data) into --out, prints
the Markdown and then `compare: <out>/compare.html`. Exit status: 0; 1 with --strict when a
check newly fails; 2 for a problem the user must fix (one line on stderr).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from reports.compare import compare
from reports.compare_render import render_html, render_markdown
from reports.load import ReportError, load_runs
from reports.safe_text import visible


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m reports compare",
        description="Compare two sets of nnspec results: checks that newly fail or pass, "
        "margins that moved, checks only on one side, other status changes, and the library "
        "versions that differ. Checks are matched by (adapter, check_id).",
    )
    for name in ("old", "new"):
        parser.add_argument(
            name,
            type=Path,
            metavar=name.upper(),
            help="a results folder, or a folder holding results folders",
        )
    parser.add_argument(
        "--factor",
        type=float,
        default=2.0,
        help="list margins that grew or shrank by more than this factor (default: %(default)g)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("nnspec-out/compare"),
        metavar="DIR",
        help="output folder (default: %(default)s)",
    )
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 when a check newly fails or errors: for CI"
    )
    return parser.parse_args(argv)


def write(data: dict[str, Any], out: Path) -> str:
    """Write the three files into out (created if needed); returns the Markdown."""
    out.mkdir(parents=True, exist_ok=True)
    text = render_markdown(data)
    (out / "compare.md").write_text(text, encoding="utf-8")
    (out / "compare.html").write_text(render_html(data), encoding="utf-8")
    (out / "compare.json").write_text(
        json.dumps(data, indent=2, allow_nan=False, default=str) + "\n", encoding="utf-8"
    )
    return text


def main(argv: list[str]) -> int:
    """argv: the arguments after "compare"."""
    args = parse_args(argv)
    try:
        if not (math.isfinite(args.factor) and args.factor >= 1):
            raise ReportError(f"--factor must be a number >= 1, got {args.factor:g}")
        old, new = load_runs([args.old]), load_runs([args.new])
        data = compare(old, new, args.factor, ([str(args.old)], [str(args.new)]))
        text = write(data, args.out)
    except (ReportError, OSError) as exc:
        # Also OSError (e.g. --out not writable): 1 is reserved for "something newly fails".
        print(f"error: {visible(str(exc))}", file=sys.stderr)
        return 2
    print(text)
    print(f"compare: {args.out / 'compare.html'}")
    if args.strict and data["newly_failing"]:
        # On stderr: the last line of stdout stays the path of the page.
        print(f"{len(data['newly_failing'])} check(s) newly fail or error", file=sys.stderr)
        return 1
    return 0
