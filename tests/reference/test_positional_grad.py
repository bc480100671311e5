"""reference.positional: the table, its layouts, the rotation, the vjp, bad input."""

import numpy as np
import pytest

from reference import positional
from tests.gradcheck import check_vjp


def test_vaswani_formula():
    pe = positional.sinusoidal(np.arange(7), 6)
    pos, i = np.arange(7)[:, None], np.arange(3)[None, :]
    np.testing.assert_allclose(pe[:, 0::2], np.sin(pos / 10000 ** (2 * i / 6)), rtol=1e-14)
    np.testing.assert_allclose(pe[:, 1::2], np.cos(pos / 10000 ** (2 * i / 6)), rtol=1e-14)


def test_concatenated_layout_is_a_permutation():
    inter = positional.sinusoidal(np.arange(9), 8)
    concat = positional.sinusoidal(np.arange(9), 8, "concatenated")
    np.testing.assert_array_equal(concat, inter[:, [0, 2, 4, 6, 1, 3, 5, 7]])


@pytest.mark.parametrize("layout", ["interleaved", "concatenated"])
def test_shift_matrix(layout):
    pe = positional.sinusoidal(np.arange(20), 6, layout)
    R = positional.shift_matrix(3, 6, layout)
    np.testing.assert_allclose(pe[3:], pe[:-3] @ R.T, atol=1e-13)
    np.testing.assert_allclose(R @ R.T, np.eye(6), atol=1e-14)  # a rotation


@pytest.mark.parametrize("combine", ["add", "concat"])
def test_vjp(combine):
    x = np.random.default_rng(0).standard_normal((2, 5, 4))
    check_vjp(
        lambda x: positional.positional(x, offset=2, combine=combine),
        lambda d, x: positional.positional_vjp(d, x, offset=2, combine=combine),
        [x],
    )


def test_low_precision_table_is_rounded_once():
    # float16 input: the angle is computed in float32, then the table is rounded to float16.
    x = np.zeros((40, 8), dtype=np.float16)
    pe = positional.positional(x)
    exact = positional.sinusoidal(np.arange(40), 8)
    assert pe.dtype == np.float16
    np.testing.assert_allclose(pe.astype(np.float64), exact, atol=np.finfo(np.float16).eps)


@pytest.mark.parametrize("d", [3, 1])
def test_odd_width_raises(d):
    with pytest.raises(ValueError, match=f"D={d} must be even"):
        positional.positional(np.zeros((2, d)), layout="concatenated")


def test_bad_layout_and_combine_raise():
    with pytest.raises(ValueError, match="layout"):
        positional.positional(np.zeros((2, 4)), layout="sideways")
    with pytest.raises(ValueError, match="combine"):
        positional.positional(np.zeros((2, 4)), combine="multiply")
