"""The traceability table is complete and every name in it resolves.

Every row's spec function must prove its identity (here, once: the per-stem spec tests prove
what the table does not hold, such as other sizes and the negative cases), its reference
function must exist, and each property must name a test in conformance/test_<stem>.py (read
with ast, not imported: the conformance modules pull in adapters and hypothesis, which a spec
self-test does not need).
"""

from __future__ import annotations

import ast
import importlib
import inspect
from collections.abc import Callable
from pathlib import Path

import pytest

from spec import unproved_entries
from spec.trace import TRACE

ROOT = Path(__file__).resolve().parents[2]
KEYS = {"formula", "stem", "spec", "reference", "properties"}
SPEC_MODULES = sorted({row["spec"].rsplit(".", 1)[0] for row in TRACE})


def resolve(dotted: str) -> Callable:
    module, _, name = dotted.rpartition(".")
    obj = getattr(importlib.import_module(module), name, None)
    assert callable(obj), f"{dotted} does not exist (or is not a function)"
    return obj


def defined_tests(path: Path) -> set[str]:
    """Names of the test functions a conformance file defines (module level and in classes)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name.startswith("test_")
    }


def row_id(row: dict) -> str:
    return row["spec"].removeprefix("spec.")


def test_rows_have_exactly_the_declared_keys() -> None:
    for row in TRACE:
        assert set(row) == KEYS, f"{row.get('spec')}: keys {sorted(row)} != {sorted(KEYS)}"


def test_each_spec_function_is_traced_once() -> None:
    specs = [row["spec"] for row in TRACE]
    assert len(specs) == len(set(specs)), "a spec function appears in two rows"


@pytest.mark.parametrize("module", SPEC_MODULES)
def test_every_identity_in_spec_is_traced(module: str) -> None:
    # The other direction: a proved identity that no row names is invisible in the report.
    mod = importlib.import_module(module)
    identities = {
        f"{module}.{name}"
        for name, fn in inspect.getmembers(mod, inspect.isfunction)
        if fn.__module__ == module
        and not name.startswith("_")
        and inspect.get_annotations(fn).get("return") == "Identity"
    }
    untraced = identities - {row["spec"] for row in TRACE}
    assert not untraced, f"identities with no TRACE row: {sorted(untraced)}"


@pytest.mark.parametrize("row", TRACE, ids=row_id)
def test_row_names_are_consistent(row: dict) -> None:
    stem = row["stem"]
    assert row["formula"].strip(), "empty formula"
    assert row["spec"].startswith(f"spec.{stem}."), f"spec {row['spec']} is not in spec/{stem}.py"
    if row["reference"] is not None:
        assert row["reference"].startswith(f"reference.{stem}."), row["reference"]
    assert isinstance(row["properties"], tuple) and row["properties"], "a formula with no property"
    for prop in row["properties"]:
        assert prop.startswith(f"{stem}/") and prop.count("/") == 1, f"bad property id {prop!r}"


@pytest.mark.parametrize("row", TRACE, ids=row_id)
def test_spec_proves_the_formula(row: dict) -> None:
    fn = resolve(row["spec"])
    assert fn.__doc__ and "Notes:" in fn.__doc__, (
        f"{row['spec']} must name its formula of the notes"
    )
    result = fn()
    assert isinstance(result, tuple) and len(result) == 2, f"{row['spec']} must return (lhs, rhs)"
    bad = unproved_entries(*result)
    assert not bad, f"{row['spec']}: identity not proved at flat entries {bad[:3]}"


@pytest.mark.parametrize("row", [r for r in TRACE if r["reference"]], ids=row_id)
def test_reference_function_exists(row: dict) -> None:
    resolve(row["reference"])


@pytest.mark.parametrize("row", TRACE, ids=row_id)
def test_properties_name_conformance_tests(row: dict) -> None:
    for prop in row["properties"]:
        stem, name = prop.split("/")
        path = ROOT / "conformance" / f"test_{stem}.py"
        assert path.is_file(), f"{prop}: conformance/test_{stem}.py does not exist yet"
        assert f"test_{name}" in defined_tests(path), (
            f"{prop}: conformance/test_{stem}.py defines no test_{name}"
        )
