"""Which ops a check calls (read from its source) and whether an adapter covers them: the
listing of `--list-checks`."""

from __future__ import annotations

import functools
import inspect
import re
from typing import Any

from conformance.adapters.base import covers, covers_vjp
from conformance.selection import check_id

_CALL = re.compile(r"impl\.(run_vjp|compare_vjp|run|compare|baseline)\(\s*\"(\w+)\"")


@functools.cache
def ops_of(function: Any) -> frozenset[tuple[str, bool]]:
    """(op, needs_gradient) for every adapter op the test body names."""
    try:
        source = inspect.getsource(function)
    except (OSError, TypeError):
        return frozenset()
    return frozenset(
        (op, kind.endswith("vjp")) for kind, op in _CALL.findall(source) if kind != "baseline"
    )


def coverage(adapter: Any, function: Any) -> str:
    missing = [
        f"{op}{' gradient' if grad else ''}"
        for op, grad in sorted(ops_of(function))
        if not (covers_vjp(adapter, op) if grad else covers(adapter, op))
    ]
    return "covered" if not missing else "not covered: " + ", ".join(missing)


def listing(items: list, config: Any) -> str:
    from conformance.plugin import ADAPTERS_KEY, _fields_from_nodeid

    adapters = config.stash[ADAPTERS_KEY]
    rows = []
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is None or "impl" not in callspec.params:
            continue
        index, dtype = callspec.params["impl"]
        _, adapter, reason = adapters[index]
        fields = _fields_from_nodeid(item.nodeid)
        cid = check_id(fields["stem"], fields["property"], dtype)
        state = f"unavailable: {reason}" if reason else coverage(adapter, item.function)
        rows.append(f"{cid:48s} {adapter.name:18s} {state}")
    return "\n".join(rows) + f"\n{len(rows)} checks"
