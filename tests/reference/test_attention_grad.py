"""reference.attention: vjp against finite differences, masks, and the variant options."""

import numpy as np
import pytest

from reference import attention
from tests.gradcheck import check_gradient_entries, check_vjp


def _qkv(batch, tq, tk, dk, dv, seed=0):
    rng = np.random.default_rng(seed)
    return (
        rng.standard_normal((*batch, tq, dk)),
        rng.standard_normal((*batch, tk, dk)),
        rng.standard_normal((*batch, tk, dv)),
    )


@pytest.mark.parametrize("batch", [(), (2,), (2, 3)])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("scale_rule", ["1/sqrt(d)", "1/d"])
def test_vjp(batch, causal, masked, scale_rule):
    q, k, v = _qkv(batch, 3, 4, 2, 3)
    mask = None
    if masked:
        mask = np.random.default_rng(1).random((*batch, 3, 4)) < 0.6
        mask[..., 0] = True

    def f(q, k, v):
        return attention.sdpa(q, k, v, mask=mask, causal=causal, scale_rule=scale_rule)

    def f_vjp(dout, q, k, v):
        return attention.sdpa_vjp(dout, q, k, v, mask=mask, causal=causal, scale_rule=scale_rule)

    check_vjp(f, f_vjp, [q, k, v])
    if batch == (2,):
        check_gradient_entries(f, f_vjp, [q, k, v])


def test_vjp_with_broadcast_mask_and_fully_masked_row():
    q, k, v = _qkv((2,), 3, 4, 2, 2)
    mask = np.ones((1, 3, 4), dtype=bool)
    mask[..., 1, :] = False  # query 1 sees nothing: output 0 and no gradient through it

    def f(q, k, v):
        return attention.sdpa(q, k, v, mask=mask)

    out = f(q, k, v)
    assert np.all(out[:, 1] == 0)
    check_vjp(f, lambda d, q, k, v: attention.sdpa_vjp(d, q, k, v, mask=mask), [q, k, v])


@pytest.mark.parametrize(("rows", "expected"), [("nan", np.nan), ("uniform", None)])
def test_masked_row_variants(rows, expected):
    q, k, v = _qkv((), 2, 3, 2, 2)
    mask = np.array([[True, False, True], [False, False, False]])
    out = attention.sdpa(q, k, v, mask=mask, masked_rows=rows)
    if rows == "nan":
        assert np.all(np.isnan(out[1])) and np.all(np.isfinite(out[0]))
    else:
        np.testing.assert_allclose(out[1], v.mean(axis=0))


def test_causal_alignment():
    # Tq=2, Tk=4: top-left row 0 sees key 0; bottom-right row 0 sees keys 0..2.
    top = attention.visible(2, 4, None, True, "top_left")
    bottom = attention.visible(2, 4, None, True, "bottom_right")
    assert top.tolist() == [[True, False, False, False], [True, True, False, False]]
    assert bottom.tolist() == [[True, True, True, False], [True, True, True, True]]
