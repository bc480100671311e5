"""The CI recipe in docs/ runs: its conformance command, with an implementation checked out
beside nnspec (its adapter and its xfails file), writes the job summary and the report."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

from tests.conftest import ROOT, reports_cli

RECIPE = ROOT / "docs" / "github-actions-conformance.yml"
SHARDED = ROOT / "docs" / "github-actions-sharded.yml"


def _marked(recipe: Path, marker: str, session: str, shard: int | None = None) -> list[str]:
    """The arguments after `nox -s SESSION --` of the recipe's command marked MARKER, with the
    matrix's shard number filled in."""
    text = recipe.read_text(encoding="utf-8")
    block = re.search(rf"# {marker}:start\n\s*run: (.*?)\n\s*# {marker}:end", text)
    assert block, f"{recipe.name} lost its marked {marker} command"
    line = block.group(1)
    if shard is not None:
        assert "${{ matrix.shard }}" in line, line
        line = line.replace("${{ matrix.shard }}", str(shard))
    argv = shlex.split(line)
    assert argv[:4] == ["nox", "-s", session, "--"], argv
    return argv[4:]


def _command() -> list[str]:
    return _marked(RECIPE, "nnspec-command", "conformance")


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


SMALL = ("--adapter", "reference", "--stems", "softmax", "-k", "values")


def test_sharded_recipe_runs_every_shard_and_merges_them(suite, tmp_path):
    text = SHARDED.read_text(encoding="utf-8")
    shards = [int(k) for k in re.search(r"shard: \[([\d, ]+)\]", text).group(1).split(",")]
    root = tmp_path / "all-results"
    for k in shards:
        args = _marked(SHARDED, "nnspec-shard", "conformance", shard=k)
        assert args[args.index("--shard") + 1] == f"{k}/{len(shards)}", "matrix and N differ"
        args = [a.replace("nnspec-out/results", str(root)) for a in args]
        run = suite(*args, *SMALL)
        assert run.proc.returncode == 0, run.output[-3000:]
    merge = [
        a.replace("all-results", str(root)) for a in _marked(SHARDED, "nnspec-merge", "report")
    ]
    merge = [a.replace("nnspec-out/report", str(tmp_path / "report")) for a in merge]
    proc = reports_cli(*merge)
    assert proc.returncode == 0, proc.stderr
    merged = json.loads((tmp_path / "report" / "summary.json").read_text())
    whole = suite(*SMALL)
    # Every check ran in exactly one shard: the merge holds what one unsharded run holds.
    assert merged["totals"]["records"] == len(whole.records) > 0
    assert len(merged["runs"]) == len(shards)
