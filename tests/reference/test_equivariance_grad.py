"""reference.equivariance: conv2d and pooling vjps against finite differences, translation
properties at float64, and bad input."""

import numpy as np
import pytest

from reference import equivariance as eq
from tests.gradcheck import check_gradient_entries, check_vjp


@pytest.mark.parametrize("mode", eq.PADDING_MODES)
@pytest.mark.parametrize(("k", "stride", "padding"), [(3, 1, 1), (3, 2, 1), (1, 1, 0), (5, 2, 2)])
def test_conv2d_vjp(mode, k, stride, padding):
    rng = np.random.default_rng(0)
    args = [rng.standard_normal((2, 2, 5, 6)), rng.standard_normal((3, 2, k, k)),
            rng.standard_normal(3)]  # fmt: skip
    opts = {"stride": stride, "padding": padding, "padding_mode": mode}
    check_vjp(lambda *a: eq.conv2d(*a, **opts), lambda d, *a: eq.conv2d_vjp(d, *a, **opts), args)


def test_conv2d_gradient_entries_circular():
    rng = np.random.default_rng(1)
    args = [rng.standard_normal((1, 1, 3, 4)), rng.standard_normal((2, 1, 3, 3)),
            rng.standard_normal(2)]  # fmt: skip
    opts = {"padding": 1, "padding_mode": "circular"}
    check_gradient_entries(
        lambda *a: eq.conv2d(*a, **opts), lambda d, *a: eq.conv2d_vjp(d, *a, **opts), args
    )


@pytest.mark.parametrize(("k", "s"), [(2, 2), (3, 1), (3, 2)])
def test_avg_pool_vjp(k, s):
    x = np.random.default_rng(2).standard_normal((2, 3, 6, 7))
    check_vjp(lambda a: eq.avg_pool2d(a, k, s), lambda d, a: eq.avg_pool2d_vjp(d, a, k, s), [x])


def test_global_avg_pool_vjp():
    x = np.random.default_rng(3).standard_normal((2, 3, 4, 5))
    check_gradient_entries(eq.global_avg_pool, eq.global_avg_pool_vjp, [x])


def test_circular_conv_commutes_with_every_shift():
    rng = np.random.default_rng(4)
    x, w, b = rng.standard_normal((1, 2, 5, 6)), rng.standard_normal((3, 2, 3, 3)), np.zeros(3)
    out = eq.conv2d(x, w, b, padding=1, padding_mode="circular")
    for sy, sx in [(1, 0), (2, 5), (4, 3)]:
        shifted = eq.conv2d(np.roll(x, (sy, sx), (2, 3)), w, b, padding=1, padding_mode="circular")
        np.testing.assert_allclose(shifted, np.roll(out, (sy, sx), (2, 3)), atol=1e-12)


def test_zero_padded_conv_differs_at_the_border():
    rng = np.random.default_rng(5)
    x, w, b = rng.standard_normal((1, 1, 5, 5)), rng.standard_normal((1, 1, 3, 3)), np.zeros(1)
    out = eq.conv2d(x, w, b, padding=1)
    shifted = eq.conv2d(np.roll(x, 1, 2), w, b, padding=1)
    assert not np.allclose(shifted, np.roll(out, 1, 2))


def test_strided_pool_does_not_commute_with_one_pixel_shifts():
    x = np.random.default_rng(6).standard_normal((1, 1, 4, 4))
    pooled = eq.avg_pool2d(np.roll(x, 1, 2), 2, 2)
    assert not any(
        np.allclose(pooled, np.roll(eq.avg_pool2d(x, 2, 2), (a, c), (2, 3)))
        for a in range(2)
        for c in range(2)
    )


def test_bad_input():
    x = np.zeros((1, 2, 4, 4))
    with pytest.raises(ValueError, match="weight"):
        eq.conv2d(x, np.zeros((3, 1, 3, 3)), np.zeros(3))
    with pytest.raises(ValueError, match="padding_mode"):
        eq.conv2d(x, np.zeros((3, 2, 3, 3)), np.zeros(3), padding_mode="reflect")
    with pytest.raises(ValueError, match="does not fit"):
        eq.conv2d(x, np.zeros((3, 2, 5, 5)), np.zeros(3))
    with pytest.raises(ValueError, match="pooling"):
        eq.avg_pool2d(x, 5, 1)
