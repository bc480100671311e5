"""The committed GPU results (reports/samples/<gpu>/) build into a report with its GPU section:
every CUDA configuration that ran is a column beside the CPU adapter, each failed check shows
as a fail in its op's row, and the margins figure is drawn."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conformance.adapters.torch_cuda import CONFIGS
from conformance.results import iter_records
from reports.writer import build

SAMPLES = Path(__file__).resolve().parent.parent / "reports" / "samples"
GPUS = sorted(p for p in SAMPLES.iterdir() if p.is_dir())


def test_there_is_a_gpu_sample():
    assert GPUS, f"no GPU results under {SAMPLES}"


@pytest.mark.parametrize("folder", GPUS, ids=lambda p: p.name)
def test_the_sample_builds_a_report_with_the_gpu_section(folder, tmp_path):
    warnings: list[str] = []
    index = build([folder], tmp_path / "report", warn=warnings.append, reference_figures=False)
    assert index.is_file() and not warnings, warnings
    summary = json.loads((tmp_path / "report" / "summary.json").read_text(encoding="utf-8"))
    (gpu,) = [t for t in summary["tables"] if t["anchor"] == "gpu"]
    records = [r for run in folder.iterdir() if run.is_dir() for r in iter_records(run)]
    ran = {r["adapter"] for r in records if r["device"].startswith("cuda")}
    assert ran & {c.name for c in CONFIGS} and ran <= set(gpu["headers"])
    rows = {(row[0], row[1]): dict(zip(gpu["headers"], row, strict=True)) for row in gpu["rows"]}
    for r in records:
        if r["status"] == "fail" and r["device"].startswith("cuda"):
            cell = rows[(r["op"].split(",")[0], r["dtype"])][r["adapter"]]
            assert cell.endswith(" x") or " x " in cell, (r["check_id"], cell)
    assert (tmp_path / "report" / "figures" / "gpu_margins.png").is_file()
    html = index.read_text(encoding="utf-8")
    assert "GPU configurations" in html and "gpu_margins.png" in html
