"""Results records: schema, append-and-flush, and reading back what a crash left."""

from __future__ import annotations

import json

import pytest

from conformance import results


def _record(**kw):
    base = {"check_id": "softmax/values/float32", "adapter": "torch", "status": "pass"}
    return results.make_record(**{**base, **kw})


def test_record_has_every_key_and_the_schema():
    record = _record(error=1e-7)
    assert set(record) == set(results.RECORD_KEYS)
    assert record["schema"] == results.RECORD_SCHEMA
    assert record["margin"] is None


@pytest.mark.parametrize("bad", [{"status": "ok"}, {"colour": "red"}])
def test_bad_records_are_refused(bad):
    with pytest.raises((KeyError, ValueError)):
        _record(**bad)


def test_append_then_read_back_skipping_a_torn_line(tmp_path):
    path = tmp_path / "results-gw0.jsonl"
    results.append_record(path, _record())
    with open(path, "a") as fh:
        fh.write('{"schema": "nnspec.results/1", "check_id": "half a li')  # a worker died here
    results.append_record(tmp_path / "results-gw1.jsonl", _record(adapter="onnxruntime"))
    bad: list[str] = []
    records = list(results.iter_records(tmp_path, bad))
    assert sorted(r["adapter"] for r in records) == ["onnxruntime", "torch"]
    assert bad == ["results-gw0.jsonl:2"]


def test_non_finite_numbers_are_stored_as_null():
    assert results.finite_or_none(float("inf")) is None
    assert results.finite_or_none(float("nan")) is None
    assert results.finite_or_none(2) == 2.0
    json.dumps(_record(error=results.finite_or_none(float("nan"))), allow_nan=False)


def test_manifest_round_trip(tmp_path):
    results.write_manifest(tmp_path, {"run_id": "r1"})
    assert results.read_manifest(tmp_path) == {"run_id": "r1", "schema": results.MANIFEST_SCHEMA}


def test_published_json_schemas_match_the_writer():
    from tests.conftest import ROOT

    folder = ROOT / "docs" / "schema"
    record = json.loads((folder / "nnspec.results-1.schema.json").read_text())
    assert record["$id"] == results.RECORD_SCHEMA
    assert list(record["properties"]) == list(results.RECORD_KEYS)
    assert record["properties"]["status"]["enum"] == list(results.STATUSES)
    manifest = json.loads((folder / "nnspec.manifest-1.schema.json").read_text())
    assert manifest["$id"] == results.MANIFEST_SCHEMA
