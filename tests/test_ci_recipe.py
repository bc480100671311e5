"""The CI recipe in docs/ runs: its conformance command, with an implementation checked out
beside nnspec (its adapter and its xfails file), writes the job summary and the report."""

from __future__ import annotations

import re
import shlex

from tests.conftest import ROOT

RECIPE = ROOT / "docs" / "github-actions-conformance.yml"


def _command() -> list[str]:
    text = RECIPE.read_text(encoding="utf-8")
    block = re.search(r"# nnspec-command:start\n\s*run: (.*?)\n\s*# nnspec-command:end", text)
    assert block, "the recipe lost its marked conformance command"
    argv = shlex.split(block.group(1))
    assert argv[:4] == ["nox", "-s", "conformance", "--"], argv
    return argv[4:]


def test_recipe_command_runs_against_an_implementation_beside_nnspec(suite, tmp_path):
    mylib = tmp_path / "mylib"
    mylib.mkdir()
    (mylib / "nnspec_adapter.py").write_text(
        "from conformance.adapters.numpy_reference import NumpyReference\n\n"
        "class MyAdapter(NumpyReference):\n    name = 'mylib'\n"
    )
    (mylib / "nnspec-xfails.txt").write_text("# none yet\nsoftmax/never/*\n")
    summary = tmp_path / "step-summary.md"
    args = [
        a.replace("../mylib", str(mylib)).replace("$GITHUB_STEP_SUMMARY", str(summary))
        for a in _command()
    ]
    run = suite(*args, "--report-dir", str(tmp_path / "report"), "--stems", "softmax")
    assert run.proc.returncode == 0, run.output[-3000:]
    assert {r["adapter"] for r in run.records} == {"mylib"}
    assert "mylib" in summary.read_text()
    assert (tmp_path / "report" / "index.html").exists()
    assert "softmax/never/* matches no check" in run.output
