"""The chi-square machinery of conformance/test_language.py: the survival function against an
independent implementation (torch.special.gammaincc), and the frequency test's verdicts on a
correct sampler, one that ignores the temperature and one that takes the argmax."""

from __future__ import annotations

import numpy as np
import pytest

from conformance.test_language import ALPHA, DRAWS, chi_square_sf, frequency_test
from reference import language as ref


@pytest.mark.parametrize("df", [1, 2, 3, 4, 7, 10, 31])
def test_survival_function_matches_regularized_gamma(df):
    torch = pytest.importorskip("torch")
    for x in (0.01, 0.5, 1.0, df, 2.0 * df, 5.0 * df + 20, 120.0):
        expected = float(
            torch.special.gammaincc(
                torch.tensor(df / 2, dtype=torch.float64), torch.tensor(x / 2, dtype=torch.float64)
            )
        )
        assert chi_square_sf(x, df) == pytest.approx(expected, rel=1e-10, abs=1e-300)


def test_known_quantiles():
    # chi-square(1) at 3.841 and chi-square(10) at 18.307: the textbook 5% points.
    assert chi_square_sf(3.841458820694124, 1) == pytest.approx(0.05, rel=1e-9)
    assert chi_square_sf(18.307038053275146, 10) == pytest.approx(0.05, rel=1e-9)


def _logits(seed, V=12):
    return np.random.default_rng(seed).standard_normal((1, V)) * 1.5


@pytest.mark.parametrize("seed", range(5))
def test_correct_sampler_passes(seed):
    z = _logits(seed)
    draws = ref.sample_tokens(z, DRAWS, temperature=0.7, seed=seed)[0]
    _, pval, _, problem = frequency_test(draws, ref.sampling_distribution(z, 0.7)[0])
    assert problem is None and pval >= ALPHA


@pytest.mark.parametrize("seed", range(5))
def test_sampler_ignoring_temperature_or_taking_argmax_fails(seed):
    z = _logits(seed)
    p = ref.sampling_distribution(z, 0.7)[0]
    for draws in (ref.sample_tokens(z, DRAWS, 1.0, seed=seed)[0], np.full(DRAWS, z.argmax())):
        _, pval, _, _ = frequency_test(draws, p)
        assert pval < ALPHA


def test_draw_outside_top_k_is_a_problem():
    z = _logits(0)
    p = ref.sampling_distribution(z, 1.0, top_k=3)[0]
    draws = ref.sample_tokens(z, 1000, seed=0)[0]  # no top-k: some draws outside the 3 kept
    assert frequency_test(draws, p)[3]
