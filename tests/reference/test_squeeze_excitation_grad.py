"""reference.squeeze_excitation: vjp against finite differences, shapes, gate range."""

import numpy as np
import pytest

from reference import squeeze_excitation as se
from tests.gradcheck import check_gradient_entries, check_vjp


def _inputs(n, c, cr, spatial, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, *spatial))
    return [
        x,
        rng.standard_normal((cr, c)),
        rng.standard_normal(cr),
        rng.standard_normal((c, cr)),
        rng.standard_normal(c),
    ]


@pytest.mark.parametrize(
    ("n", "c", "cr", "spatial"), [(1, 1, 1, (1, 1)), (2, 4, 2, (3, 2)), (3, 6, 3, (4,))]
)
def test_vjp(n, c, cr, spatial):
    args = _inputs(n, c, cr, spatial, seed=c)
    check_vjp(se.squeeze_excitation, se.squeeze_excitation_vjp, args)
    check_gradient_entries(se.squeeze_excitation, se.squeeze_excitation_vjp, args)


def test_gate_is_in_unit_interval_and_scales_each_channel():
    args = _inputs(2, 4, 2, (3, 3), seed=1)
    s = se.gate(*args)
    assert s.shape == (2, 4) and np.all((s > 0) & (s < 1))
    np.testing.assert_allclose(se.squeeze_excitation(*args), args[0] * s[:, :, None, None])


@pytest.mark.parametrize(
    "which",
    ["w1_cols", "w2_shape", "b1", "b2", "no_spatial"],
)
def test_bad_shapes_raise_one_clear_error(which):
    x, w1, b1, w2, b2 = _inputs(2, 4, 2, (3, 3))
    if which == "w1_cols":
        w1 = w1[:, :3]
    elif which == "w2_shape":
        w2 = w2.T
    elif which == "b1":
        b1 = b1[:1]
    elif which == "b2":
        b2 = b2[:1]
    else:
        x = x[:, :, 0, 0]
    with pytest.raises(ValueError, match=r"\("):
        se.squeeze_excitation(x, w1, b1, w2, b2)
