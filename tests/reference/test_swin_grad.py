"""reference.swin: vjps against finite differences (window attention with and without shift,
padding in both orders, the Swin block, patch merging), the independent SW-MSA formulation,
and bad input."""

import numpy as np
import pytest

from reference import swin
from tests.gradcheck import check_gradient_entries, check_vjp


def _attention_args(b=2, h=4, w=6, c=4, n_heads=2, m=2, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((b, h, w, c))
    weights = [rng.standard_normal((c, c)) / 2 for _ in range(4)]
    biases = [rng.standard_normal(c) / 2 for _ in range(3)]
    table = rng.standard_normal(((2 * m - 1) ** 2, n_heads))
    return [x, *weights, *biases, table]


def _block_args(b=2, h=4, w=6, c=4, n_heads=2, m=2, f=6, seed=1):
    rng = np.random.default_rng(seed)
    x, *attn = _attention_args(b, h, w, c, n_heads, m, seed)
    ln1 = [1 + 0.1 * rng.standard_normal(c), 0.1 * rng.standard_normal(c)]
    ln2 = [1 + 0.1 * rng.standard_normal(c), 0.1 * rng.standard_normal(c)]
    ffn = [rng.standard_normal((c, f)) / 2, rng.standard_normal(f) / 3,
           rng.standard_normal((f, c)) / 3, rng.standard_normal(c) / 3]  # fmt: skip
    return [x, *ln1, *attn, *ln2, *ffn]


@pytest.mark.parametrize("shift", [0, 1])
@pytest.mark.parametrize(("h", "w"), [(4, 6), (5, 3), (2, 4)])
@pytest.mark.parametrize("pad_order", swin.PAD_ORDERS)
@pytest.mark.parametrize("shift_rule", swin.SHIFT_RULES)
def test_window_attention_vjp(shift, h, w, pad_order, shift_rule):
    opts = {"n_heads": 2, "window": 2, "shift": shift, "pad_order": pad_order,
            "shift_rule": shift_rule}  # fmt: skip
    args = _attention_args(h=h, w=w)
    check_vjp(
        lambda *a: swin.window_attention(*a, **opts),
        lambda d, *a: swin.window_attention_vjp(d, *a, **opts),
        args,
    )


def test_window_attention_gradient_entries():
    opts = {"n_heads": 2, "window": 2, "shift": 1}
    args = _attention_args(b=1, h=4, w=4, c=2)
    check_gradient_entries(
        lambda *a: swin.window_attention(*a, **opts),
        lambda d, *a: swin.window_attention_vjp(d, *a, **opts),
        args,
    )


@pytest.mark.parametrize("shift", [0, 1])
@pytest.mark.parametrize(("h", "w"), [(4, 4), (3, 5)])
def test_swin_block_vjp(shift, h, w):
    opts = {"n_heads": 2, "window": 2, "shift": shift}
    check_vjp(
        lambda *a: swin.swin_block(*a, **opts),
        lambda d, *a: swin.swin_block_vjp(d, *a, **opts),
        _block_args(h=h, w=w),
    )


@pytest.mark.parametrize(("h", "w"), [(4, 6), (5, 3), (1, 1)])
def test_patch_merging_vjp(h, w):
    rng = np.random.default_rng(2)
    c = 3
    x = rng.standard_normal((2, h, w, c))
    params = [1 + 0.1 * rng.standard_normal(4 * c), 0.1 * rng.standard_normal(4 * c),
              rng.standard_normal((4 * c, 2 * c))]  # fmt: skip
    check_vjp(swin.patch_merging, swin.patch_merging_vjp, [x, *params])


@pytest.mark.parametrize(("h", "w", "m"), [(4, 4, 2), (8, 4, 4), (6, 9, 3), (4, 2, 2)])
def test_sw_msa_equals_region_masked_full_attention(h, w, m):
    args = _attention_args(h=h, w=w, m=m, n_heads=2)
    opts = {"n_heads": 2, "window": m, "shift": m // 2}
    np.testing.assert_allclose(
        swin.window_attention(*args, **opts), swin.sw_msa_full(*args, **opts), rtol=1e-12,
        atol=1e-13,
    )  # fmt: skip


def test_w_msa_has_no_mask_and_sw_msa_masks_only_the_wrapped_regions():
    assert swin.window_visible(4, 4, 2, 0) is None
    visible = swin.window_visible(4, 4, 2, 1)  # 4 windows of 4 tokens
    assert visible[0].all()  # the first window never wraps
    assert not visible[-1].all() and np.diag(visible[-1]).all()


def test_single_window_axis_is_not_shifted():
    # H = M: along H the map holds one window and is not shifted (timm, torchvision).
    assert swin.axis_shifts(2, 6, 2, 1) == (0, 1)
    assert swin.effective_shift(2, 6, 2, 1, "both_axes") == 0
    assert swin.effective_shift(2, 6, 2, 1, "per_axis") == 1


def test_padding_is_zero_padding_of_the_input():
    args = _attention_args(h=5, w=3)
    x = args[0]
    xp = np.pad(x, ((0, 0), (0, 1), (0, 1), (0, 0)))
    opts = {"n_heads": 2, "window": 2, "shift": 1}
    np.testing.assert_allclose(
        swin.window_attention(x, *args[1:], **opts),
        swin.window_attention(xp, *args[1:], **opts)[:, :5, :3],
        rtol=1e-12,
    )


def test_odd_patch_merging_is_zero_padding():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 3, 5, 2))
    params = [np.ones(8), np.zeros(8), rng.standard_normal((8, 4))]
    xp = np.pad(x, ((0, 0), (0, 1), (0, 1), (0, 0)))
    np.testing.assert_allclose(swin.patch_merging(x, *params), swin.patch_merging(xp, *params))


def test_bad_input():
    args = _attention_args(h=4, w=4)
    with pytest.raises(ValueError, match="larger than the feature map"):
        swin.window_attention(*args, window=8, n_heads=2)
    with pytest.raises(ValueError, match="shift"):
        swin.window_attention(*args, window=2, shift=2, n_heads=2)
    with pytest.raises(ValueError, match="not divisible by n_heads"):
        swin.window_attention(*args[:-1], np.zeros((9, 3)), window=2, n_heads=3)
    with pytest.raises(ValueError, match="inconsistent shapes"):
        swin.window_attention(*args[:-1], np.zeros((4, 2)), window=2, n_heads=2)
    with pytest.raises(ValueError, match=r"\(B, H, W, C\)"):
        swin.window_attention(args[0][0], *args[1:], window=2, n_heads=2)
    with pytest.raises(ValueError, match="pad_order"):
        swin.window_attention(*args, window=2, n_heads=2, pad_order="roll_only")
    with pytest.raises(ValueError, match="W_red"):
        swin.patch_merging(args[0], np.ones(16), np.zeros(16), np.zeros((8, 8)))
    with pytest.raises(ValueError, match="parameter arrays"):
        swin.swin_block(args[0], *args[1:])


def test_flop_model_of_swin_t_and_the_complexity_formulas():
    # Swin-T (224, patch 4, C = 96, depths 2-2-6-2, M = 7): the paper's 4.5 G "FLOPs" (MACs),
    # 28.3 M parameters (timm's count for swin_tiny_patch4_window7_224 is 28,288,354).
    assert round(swin.swin_macs()["total"] / 1e9, 1) == 4.5
    assert swin.swin_params() == 28_288_354
    assert swin.msa_macs(56, 56, 96) - swin.w_msa_macs(56, 56, 96, 7) == 2 * 56 * 56 * 96 * (
        56 * 56 - 49
    )
