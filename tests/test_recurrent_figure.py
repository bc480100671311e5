"""reports/gradient_flow.py: the figure is written, and the curves it draws show what the notes
claim: the RNN's gradient vanishes for small ||W|| and explodes for ||W|| > 1 in tanh's linear
regime, clipping bounds it, and the LSTM's cell gradient with f ≈ 1 does not vanish."""

from __future__ import annotations

import numpy as np
import pytest

from reports.gradient_flow import CLIP, gradient_flow_figure, gradient_flow_norms


@pytest.fixture(scope="module")
def curves():
    series = gradient_flow_norms()
    return dict(zip(("vanishing", "exploding", "clipped", "lstm"), series.values(), strict=True))


def test_figure_is_a_png(tmp_path):
    path = gradient_flow_figure(tmp_path / "figures")
    assert path.exists() and path.suffix == ".png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 10_000  # two panels, four curves


def test_rnn_gradient_vanishes_for_small_W(curves):
    norms = curves["vanishing"]
    # Monotone decay back in time, by far more than any rounding: 0.6^120 ~ 1e-27 at least.
    assert norms[0] < 1e-20 * norms[-1]
    assert np.all(np.diff(np.log(norms)) > 0)  # every step back shrinks it


def test_lstm_cell_gradient_does_not_vanish(curves):
    norms = curves["lstm"]
    assert norms.min() > 0.1 * norms[-1]  # same order over 120 steps, f ≈ 0.998


def test_rnn_gradient_explodes_and_clipping_bounds_it(curves):
    assert curves["exploding"][0] > 100 * curves["exploding"][-1]
    # clipped to CLIP before each step back, then one Jacobian (norm <= 1.07) applied
    assert curves["clipped"].max() <= 1.07 * CLIP + 1e-12
    assert curves["clipped"][-1] == curves["exploding"][-1]  # the first one is not clipped yet
