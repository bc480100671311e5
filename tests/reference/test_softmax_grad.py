"""reference.softmax: hand-written vjps against finite differences, float64."""

import numpy as np
import pytest

from reference import softmax
from tests.gradcheck import check_gradient_entries, check_vjp


@pytest.mark.parametrize(
    ("fn", "vjp"),
    [
        (softmax.softmax, softmax.softmax_vjp),
        (softmax.log_softmax, softmax.log_softmax_vjp),
    ],
)
@pytest.mark.parametrize("shape", [(1,), (5,), (2, 3, 4)])
@pytest.mark.parametrize("axis", [-1, 0])
def test_vjp(fn, vjp, shape, axis):
    x = np.random.default_rng(len(shape)).standard_normal(shape) * 3

    def f(x):
        return fn(x, axis=axis)

    def f_vjp(dy, x):
        return vjp(dy, x, axis=axis)

    check_vjp(f, f_vjp, [x])
    check_gradient_entries(f, f_vjp, [x])


def test_softmax_is_stable_for_huge_logits():
    x = np.array([1e4, 0.0, -1e4])
    assert np.all(np.isfinite(softmax.softmax(x)))
    assert np.all(np.isfinite(softmax.log_softmax(x)))
    np.testing.assert_allclose(softmax.log_softmax(x), x - 1e4)
