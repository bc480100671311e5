"""Adapters registered by an installed package under the nnspec.adapters entry-point group run
beside the built-ins, with no --adapter."""

from __future__ import annotations

import os
import subprocess
import sys

from conformance import results
from tests.conftest import ROOT


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
    folder = tmp_path / "results"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "conformance/test_softmax.py",
            "-q",
            "-p",
            "no:cacheprovider",
            "--results-dir",
            str(folder),
            "-k",
            "test_values",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    rows = [r for r in results.iter_records(folder) if r["adapter"] == "ep-demo"]
    assert rows, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert {r["status"] for r in rows} == {"pass"}
    manifest = results.read_manifest(folder)
    assert "nnspec_ep_demo:Demo" in [a["spec"] for a in manifest["adapters"]]
    assert "--adapter nnspec_ep_demo:Demo" in rows[0]["repro"]

    # An installed adapter is also selectable by its entry-point name alone.
    by_name = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "conformance/test_softmax.py",
            "-q",
            "-p",
            "no:cacheprovider",
            "--results-dir",
            str(tmp_path / "by-name"),
            "-k",
            "test_values",
            "--adapter",
            "demo",
            "--no-report",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    named = list(results.iter_records(tmp_path / "by-name"))
    assert named and {r["adapter"] for r in named} == {"ep-demo"}, by_name.stdout[-2000:]
