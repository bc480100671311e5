"""reports/swin_cost.py: the figure is written; the counted MACs of the running layers equal
the formulas; the network table reproduces the published sizes of the standard models."""

from __future__ import annotations

import pytest

from reports import swin_cost as C


def test_counted_costs_are_the_formulas():
    pytest.importorskip("torchvision")
    sides = (56, 112, 224)
    assert C.counted_costs(sides) == C.formula_costs(sides)


def test_figure_is_written(tmp_path):
    path = C.swin_cost_figure(tmp_path, sides=(56, 112, 224))
    assert path == tmp_path / "swin_cost.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 10_000


def test_network_table_matches_the_published_sizes():
    # Published (timm / the ViT and Swin papers): GMACs at 224 and millions of parameters.
    published = {
        "ViT-S/16": (4.6, 22.1),
        "ViT-B/16": (17.6, 86.6),
        "ViT-L/16": (61.6, 304.3),
        "Swin-T": (4.5, 28.3),
        "Swin-S": (8.7, 49.6),
        "Swin-B": (15.4, 87.8),
    }
    rows = {r["model"]: r for r in C.network_cost_rows()}
    for name, (gmacs, mparams) in published.items():
        assert round(rows[name]["gmacs"], 1) == gmacs, name
        assert round(rows[name]["mparams"], 1) == mparams, name
    table = C.network_cost_table()
    assert "Swin-T" in table and "GMACs" in table
