"""Adapters registered by an installed package under the nnspec.adapters entry-point group run
beside the built-ins with no --adapter, and are selectable by their entry-point name."""

from __future__ import annotations

import os

from conformance import results
from tests.conftest import ROOT, run_suite


def test_entry_point_adapter_is_discovered(tmp_path):
    site = tmp_path / "site"
    (site / "nnspec_ep_demo-0.1.dist-info").mkdir(parents=True)
    (site / "nnspec_ep_demo-0.1.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: nnspec-ep-demo\nVersion: 0.1\n"
    )
    (site / "nnspec_ep_demo-0.1.dist-info" / "entry_points.txt").write_text(
        "[nnspec.adapters]\ndemo = nnspec_ep_demo:Demo\n"
    )
    (site / "nnspec_ep_demo.py").write_text(
        "from conformance.adapters.numpy_reference import NumpyReference\n\n"
        "class Demo(NumpyReference):\n    name = 'ep-demo'\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}

    def run(folder, *args):
        return run_suite(
            folder, "-k", "test_values", *args, target="conformance/test_softmax.py", env=env
        )

    default = run(tmp_path / "default")
    rows = default.rows("ep-demo")
    assert rows, default.output[-3000:]
    assert {r["status"] for r in rows} == {"pass"}
    manifest = results.read_manifest(default.folder)
    assert "nnspec_ep_demo:Demo" in [a["spec"] for a in manifest["adapters"]]
    assert "--adapter nnspec_ep_demo:Demo" in rows[0]["repro"]

    by_name = run(tmp_path / "by-name", "--adapter", "demo")
    assert by_name.records and {r["adapter"] for r in by_name.records} == {"ep-demo"}
