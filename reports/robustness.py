"""The report's robustness section, as JSON-ready data: why checks errored, which runs did not
finish, whether the mutant zoo (deliberately wrong adapters) was caught, which declared
intermittent deviations showed, and which checks needed the escalated Monte Carlo draws."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from reports.load import Run, margin_of

Record = dict[str, Any]

MUTANT_PREFIX = "mutant-"
OTHER = "other"

# "raised ValueError: ..." is what the plugin writes for an exception; older or foreign writers
# give just "ValueError: ...", accepted only when the name reads like an exception type.
_RAISED = re.compile(r"raised\s+([A-Za-z_][\w.]*)")
_BARE_EXCEPTION = re.compile(r"([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Failed))\b")
# "timeout: ...", "TimeoutError", "Failed: Timeout >30s", "timed out", "ReadTimeout"; not
# "runtime output".
_TIMEOUT = re.compile(r"(?i:\btime[_-]?out|\btimed\s+out)|(?<=[a-z])Timeout")
_SYMPTOMS = (
    ("non-finite output", re.compile(r"non-?finite|\bnan\b|\binf\b", re.IGNORECASE)),
    ("shape", re.compile(r"\bshapes?\b", re.IGNORECASE)),
    ("dtype", re.compile(r"\bdtypes?\b", re.IGNORECASE)),
)


def error_cause(message: Any) -> str:
    """The cause key of an error row's message. A timeout or crash is named as such even when
    it surfaced as an exception (pytest-timeout raises Failed: Timeout), because that is what
    one fixes; otherwise the exception type, then the symptom, else "other"."""
    text = "" if message is None else str(message).strip()
    if _TIMEOUT.search(text):
        return "timeout"
    if "crashed" in text.lower():
        return "worker crashed"
    raised = _RAISED.match(text) or _BARE_EXCEPTION.match(text)
    if raised:
        return f"raised {raised.group(1)}"
    for cause, pattern in _SYMPTOMS:
        if pattern.search(text):
            return cause
    return OTHER


def error_causes(records: Iterable[Record]) -> list[dict[str, Any]]:
    """Error rows grouped by cause, most frequent first, each with one example message."""
    groups: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        if record.get("status") == "error":
            groups[error_cause(record.get("message"))].append(record)
    rows = [
        {
            "cause": cause,
            "count": len(group),
            "adapters": sorted({str(r.get("adapter")) for r in group}),
            "example": next((r["message"] for r in group if r.get("message")), None),
        }
        for cause, group in groups.items()
    ]
    rows.sort(key=lambda r: (-r["count"], r["cause"]))
    return rows


def incomplete_reason(run: Run) -> str:
    manifest = run.manifest
    if manifest is None:
        return "no (readable) manifest"
    if manifest.get("interrupted"):
        return "interrupted"
    return 'no "finished" in manifest'


def incomplete_runs(runs: Sequence[Run]) -> list[dict[str, Any]]:
    return [
        {
            "run": run.label,
            "folder": str(run.folder),
            "records": len(run.records),
            "reason": incomplete_reason(run),
        }
        for run in runs
        if not run.complete
    ]


def mutant_zoo(records: Iterable[Record]) -> dict[str, Any] | None:
    """Per mutant adapter: caught (some check failed) or escaped, by which checks, with which
    diagnoses; None when the results hold no mutant rows. Error rows do not count as caught:
    a mutant is wrong, not broken, so only a failed check shows the suite noticed."""
    by_adapter: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        adapter = record.get("adapter")
        if isinstance(adapter, str) and adapter.startswith(MUTANT_PREFIX):
            by_adapter[adapter].append(record)
    if not by_adapter:
        return None
    mutants = []
    for adapter, group in sorted(by_adapter.items()):
        fails = [r for r in group if r.get("status") == "fail"]
        mutants.append(
            {
                "adapter": adapter,
                "caught": bool(fails),
                "checks": sorted({str(r.get("check_id")) for r in fails}),
                "diagnoses": sorted({str(r["diagnosis"]) for r in fails if r.get("diagnosis")}),
                "records": len(group),
                "errors": sum(r.get("status") == "error" for r in group),
            }
        )
    caught = sum(m["caught"] for m in mutants)
    return {
        "caught": caught,
        "total": len(mutants),
        "kill_rate": caught / len(mutants),
        "mutants": mutants,
    }


# How the plugin words a check covered by an adapter's Intermittent xfail: the xfail row's
# message is its reason, and a pass says the deviation was "not triggered this run (<reason>)".
_INTERMITTENT = re.compile(r"declared by .*? \(intermittent\): ")


def intermittent_deviations(records: Iterable[Record]) -> list[dict[str, Any]]:
    """Per adapter and check covered by a declared intermittent deviation: in how many runs it
    showed (an xfail row) and in how many it did not (a pass). Over a soak's seeds, a check
    that never showed is listed first: its declaration may be stale or broader than the
    deviation."""
    seen: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: {"fired": 0, "quiet": 0})
    for record in records:
        status = record.get("status")
        if status not in ("xfail", "pass") or not _INTERMITTENT.search(
            str(record.get("message") or "")
        ):
            continue
        key = (str(record.get("adapter")), str(record.get("check_id")))
        seen[key]["fired" if status == "xfail" else "quiet"] += 1
    rows = [
        {"adapter": adapter, "check_id": cid, "fired": c["fired"], "not_triggered": c["quiet"]}
        for (adapter, cid), c in seen.items()
    ]
    rows.sort(key=lambda r: (r["fired"] > 0, r["adapter"], r["check_id"]))
    return rows


def intermittent_summary(rows: Sequence[dict[str, Any]]) -> str:
    """The sentence above the intermittent-deviation table, in both renderings."""
    never = sum(r["fired"] == 0 for r in rows)
    return (
        f"{len(rows)} checks covered by a declared intermittent deviation; {never} did not "
        "show it in any run (a pass: not triggered)."
    )


# How Check.escalation_note words the examples whose error passed the usual Monte Carlo draws'
# bound and were judged under the escalated draws (conformance/tolerance.py ESCALATED).
_ESCALATED = re.compile(
    r"(\d+) examples? past the bound of \d+ Monte Carlo draws judged under (\d+)"
)


def escalated_checks(records: Iterable[Record]) -> list[dict[str, Any]]:
    """Per record whose examples were judged under the escalated draws: an implementation near
    the honest-kernel bound (a pass: the usual draws had landed low) or past it (a fail). Fails
    first, then the closest to the bound."""
    rows = []
    for record in records:
        found = _ESCALATED.search(str(record.get("message") or ""))
        if found is None or record.get("status") not in ("pass", "fail"):
            continue
        rows.append(
            {
                "adapter": str(record.get("adapter")),
                "check_id": str(record.get("check_id")),
                "status": record["status"],
                "examples": int(found[1]),
                "draws": int(found[2]),
                "margin": margin_of(record),
            }
        )
    rows.sort(key=lambda r: (r["status"] != "fail", -(r["margin"] or 0.0), r["check_id"]))
    return rows


def escalated_summary(rows: Sequence[dict[str, Any]]) -> str:
    """The sentence above the escalated-draws table, in both renderings."""
    fails = sum(r["status"] == "fail" for r in rows)
    draws = max(r["draws"] for r in rows)
    return (
        f"{len(rows)} check records had examples past the usual Monte Carlo draws' bound, "
        f"judged again under {draws} draws: {len(rows) - fails} passed there, {fails} failed."
    )


ESCALATED_COLUMNS = ("adapter", "check", "status", "examples", "margin")


def robustness(runs: Sequence[Run]) -> dict[str, Any]:
    records = [r for run in runs for r in run.records]
    return {
        "error_causes": error_causes(records),
        "incomplete_runs": incomplete_runs(runs),
        "mutant_zoo": mutant_zoo(records),
        "intermittent": intermittent_deviations(records),
        "escalated": escalated_checks(records),
    }
