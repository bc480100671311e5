"""What changed between two sets of results (OLD and NEW), as JSON-ready data; no I/O here.

Checks are keyed by (adapter, check_id). One side may hold several records of a key (several
runs, devices or workers): the worst status stands for the key, so a check that fails anywhere
in NEW is not reported as passing, and the worst margin of its judged (pass/fail) rows is the
one compared.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from reports.load import Run
from reports.summarize import key, worst_margin

Record = dict[str, Any]
Key = tuple[str, str]

COMPARE_SCHEMA = "nnspec.compare/1"
BROKEN = ("fail", "error")
# Which status of several records stands for their key: the first of this order present.
SEVERITY = ("fail", "error", "pass", "xfail", "skip", "not_covered")
ABSENT = "absent"
# Manifest fields compared besides the "versions" table: they explain a change as much as a
# library version does.
ENV_FIELDS = ("python", "git_commit", "hypothesis_profile")


def _rank(status: str) -> int:
    return SEVERITY.index(status) if status in SEVERITY else len(SEVERITY)


def collapse(records: Iterable[Record]) -> dict[Key, dict[str, Any]]:
    """{(adapter, check_id): the key's status, margin, and the message, diagnosis and repro of
    the record that gave that status}."""
    groups: dict[Key, list[Record]] = defaultdict(list)
    for record in records:
        groups[key(record.get("adapter")), key(record.get("check_id"))].append(record)
    out = {}
    for k, group in groups.items():
        worst = min(group, key=lambda r: _rank(key(r.get("status"))))
        out[k] = {
            "status": key(worst.get("status")),
            "margin": worst_margin(group),
            "message": worst.get("message"),
            "diagnosis": worst.get("diagnosis"),
            "repro": worst.get("repro"),
            "records": len(group),
        }
    return out


def _row(k: Key, old: dict[str, Any] | None, new: dict[str, Any] | None) -> dict[str, Any]:
    shown = new or old or {}
    return {
        "adapter": k[0],
        "check_id": k[1],
        "old_status": old["status"] if old else ABSENT,
        "new_status": new["status"] if new else ABSENT,
        "old_margin": old["margin"] if old else None,
        "new_margin": new["margin"] if new else None,
        "message": shown.get("message"),
        "diagnosis": shown.get("diagnosis"),
        "repro": shown.get("repro"),
    }


def margin_ratio(old: float | None, new: float | None) -> float | None:
    """new / old when both margins are positive numbers, else None (0 has no ratio)."""
    if old is None or new is None or old <= 0 or new <= 0:
        return None
    return new / old


def versions(runs: Sequence[Run]) -> dict[str, str]:
    """{package: version(s)} over the manifests of runs; several runs with different versions
    of a package give "a, b". A package recorded as null (not installed) shows as "-"."""
    seen: dict[str, set[str]] = defaultdict(set)
    for run in runs:
        manifest = run.manifest or {}
        table = manifest.get("versions")
        if isinstance(table, dict):
            for name, version in table.items():
                seen[str(name)].add(key(version))
        for name in ENV_FIELDS:
            if name in manifest and not (isinstance(table, dict) and name in table):
                seen[name].add(key(manifest[name]))
    return {name: ", ".join(sorted(values)) for name, values in sorted(seen.items())}


def version_changes(old: Sequence[Run], new: Sequence[Run]) -> list[dict[str, str]]:
    before, after = versions(old), versions(new)
    return [
        {"name": name, "old": before.get(name, ABSENT), "new": after.get(name, ABSENT)}
        for name in sorted(set(before) | set(after))
        if before.get(name) != after.get(name)
    ]


def side(paths: Sequence[str], runs: Sequence[Run], checks: int) -> dict[str, Any]:
    return {
        "paths": list(paths),
        "runs": [run.label for run in runs],
        "incomplete_runs": [run.label for run in runs if not run.complete],
        "records": sum(len(run.records) for run in runs),
        "checks": checks,
    }


def compare(
    old_runs: Sequence[Run],
    new_runs: Sequence[Run],
    factor: float = 2.0,
    paths: tuple[Sequence[str], Sequence[str]] = ((), ()),
) -> dict[str, Any]:
    """Every difference between OLD and NEW; paths (as given on the command line) are only
    carried into the result for the renderers. A key can be listed in more than one category:
    a check only in NEW that fails is both newly failing and only in NEW."""
    if not (factor >= 1 and math.isfinite(factor)):
        raise ValueError(f"factor must be a finite number >= 1, got {factor!r}")
    old = collapse(r for run in old_runs for r in run.records)
    new = collapse(r for run in new_runs for r in run.records)
    order = sorted(set(old) | set(new), key=lambda k: (k[1], k[0]))
    data: dict[str, Any] = {
        "schema": COMPARE_SCHEMA,
        "factor": factor,
        "old": side(paths[0], old_runs, len(old)),
        "new": side(paths[1], new_runs, len(new)),
        "versions": version_changes(old_runs, new_runs),
        "newly_failing": [],
        "newly_passing": [],
        "margin_moves": [],
        "only_old": [],
        "only_new": [],
        "status_changes": [],
        "unchanged": 0,
    }
    for k in order:
        before, after = old.get(k), new.get(k)
        row = _row(k, before, after)
        if before is None:
            data["only_new"].append(row)
        if after is None:
            data["only_old"].append(row)
            continue
        was, now = row["old_status"], row["new_status"]
        if now in BROKEN and was not in BROKEN:
            data["newly_failing"].append(row)
        elif before is None:
            continue
        elif now == "pass" and was in BROKEN:
            data["newly_passing"].append(row)
        elif now != was:
            data["status_changes"].append(row)
        ratio = margin_ratio(row["old_margin"], row["new_margin"])
        moved = ratio is not None and (ratio > factor or ratio < 1 / factor)
        if moved:
            data["margin_moves"].append({**row, "ratio": ratio})
        if before is not None and now == was and not moved:
            data["unchanged"] += 1
    # Biggest moves first, whichever the direction.
    data["margin_moves"].sort(key=lambda r: -abs(math.log(r["ratio"])))
    return data
