"""reports/attention_scaling.py: the figure is written, and the measured peak memory grows as
the cost derivation says: ~N^2 for softmax attention (the N x N weights), ~N for linear
attention. Times are drawn but never asserted (they depend on the machine)."""

from __future__ import annotations

from reports import attention_scaling as S

N = (256, 512, 1024, 2048)


def test_memory_grows_quadratically_for_softmax_and_linearly_for_linear_attention():
    data = S.measure(N, timing=False)
    softmax = S.growth_exponent(N, data["memory"]["softmax"])
    linear = S.growth_exponent(N, data["memory"]["linear"])
    assert 1.8 <= softmax <= 2.2, data["memory"]
    assert 0.8 <= linear <= 1.2, data["memory"]
    # and at the largest N softmax needs far more: the N x N matrix vs (N, d) arrays
    assert data["memory"]["softmax"][-1] > 10 * data["memory"]["linear"][-1]


def test_figure_is_written(tmp_path):
    path = S.attention_scaling_figure(tmp_path, n_values=(64, 128, 256))
    assert path == tmp_path / "attention_scaling.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 10_000
