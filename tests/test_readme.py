"""The README's example adapter is complete and passes what it covers, exactly as printed."""

from __future__ import annotations

import re

from tests.conftest import ROOT


def _example() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(
        r"<!-- example-adapter:start -->\s*```python\n(.*?)```\s*<!-- example-adapter:end -->",
        text,
        re.S,
    )
    assert block, "README lost its example adapter block"
    return block.group(1)


def test_example_is_under_40_lines():
    assert len(_example().strip().splitlines()) < 40


def test_example_adapter_runs_and_passes(suite, tmp_path):
    path = tmp_path / "my_impl.py"
    path.write_text(_example(), encoding="utf-8")
    run = suite("--adapter", f"{path}:MyAdapter")
    assert run.proc.returncode == 0, run.output[-3000:]
    rows = run.rows("mylib")
    statuses = {r["status"] for r in rows}
    assert statuses <= {"pass", "not_covered"}, [r for r in rows if r["status"] != "pass"][:3]
    assert {r["stem"] for r in rows if r["status"] == "pass"} == {"softmax", "attention"}
    # log_softmax and gradients are not in the example: not covered, not failed.
    assert run.rows("mylib", check_id="softmax/log_softmax_values/float64")[0]["status"] == (
        "not_covered"
    )
