"""Swin: W-MSA / SW-MSA with relative position bias (values, gradients, the region-id mask
formulation, locality, padding), the Swin block, patch merging, and MSA vs W-MSA FLOPs counted
on running layers against Ω(MSA) = 4hwC² + 2(hw)²C and Ω(W-MSA) = 4hwC² + 2M²hwC."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from conformance.check import NotCovered
from conformance.strategies import SEEDS, normal, vision_cases
from conformance.tolerance import LOW
from reference.swin import sw_msa_full


def _dout(case, h=None, w=None, c=None, salt=20):
    return normal(case.seed + salt, (case.batch, h or case.h, w or case.w, c or case.d))


# -- W-MSA / SW-MSA ------------------------------------------------------------------------------


@given(case=vision_cases())
def test_window_attention_values(impl, case):
    # softmax(Q K^T / sqrt(d) + B + mask) V inside each (shifted) window, B from the (2M-1)²
    # table through the relative position index.
    x = case.feature_map()
    impl.compare("window_attention", x, *case.window_params(), **case.window_options())


@given(case=vision_cases(gradients=True, max_side=6))
def test_window_attention_vjp(impl, case):
    x = case.feature_map()
    opts = case.window_options()
    impl.compare_vjp("window_attention", _dout(case), x, *case.window_params(), **opts)


@given(case=vision_cases())
def test_sw_msa_is_region_masked_attention(impl, case):
    # The layer (roll by -M/2, windows, Swin's mask, roll back) equals full attention over all
    # H W tokens under the region-id mask, with the bias of the tokens' own offsets: no roll, no
    # windows (spec.swin.sw_msa_is_region_masked_attention). W-MSA (shift 0) is the same with
    # a block-diagonal mask (spec.swin.w_msa_is_block_diagonal_attention).
    x, *params = impl.inputs(case.feature_map(), *case.window_params())
    opts = case.window_options()
    (out,) = impl.run("window_attention", x, *params, **opts)
    full = sw_msa_full(x, *params, **opts)  # float64, from the same rounded inputs
    impl.relation(
        "window attention vs region-masked full attention",
        out,
        full,
        lambda: (impl.baseline("window_attention", x, *params, **opts), full),
    )


@given(case=vision_cases(shift=False), data=st.data())
def test_windows_do_not_mix(impl, case, data):
    # W-MSA: a token sees only its own window. Changing the tokens of one window leaves every
    # other window's output unchanged.
    x, *params = impl.inputs(case.feature_map(), *case.window_params())
    m = case.window
    wy = data.draw(st.integers(0, case.h // m - 1), label="window row")
    wx = data.draw(st.integers(0, case.w // m - 1), label="window column")
    inside = np.zeros((case.h, case.w), dtype=bool)
    inside[wy * m : (wy + 1) * m, wx * m : (wx + 1) * m] = True
    x2 = x.copy()
    x2[:, inside] = normal(case.seed + 9, x2[:, inside].shape, 2.0)
    (x2,) = impl.inputs(x2)
    opts = case.window_options()
    (out,) = impl.run("window_attention", x, *params, **opts)
    (out2,) = impl.run("window_attention", x2, *params, **opts)
    outside = ~inside
    impl.relation(
        "other windows after changing one",
        out2[:, outside],
        out[:, outside],
        lambda: (
            impl.baseline("window_attention", x2, *params, **opts)[:, :, outside],
            impl.baseline("window_attention", x, *params, **opts)[:, :, outside],
        ),
    )


@given(case=vision_cases(shift=False), data=st.data())
def test_w_msa_commutes_with_window_translation(impl, case, data):
    # Rolling the map by whole windows moves whole windows, and the relative position bias
    # depends only on offsets inside a window: W-MSA(T x) = T W-MSA(x) for T a circular shift
    # by multiples of M (and only those: a shift inside a window changes the partition).
    x, *params = impl.inputs(case.feature_map(), *case.window_params())
    m = case.window
    sy = m * data.draw(st.integers(0, case.h // m - 1), label="shift rows / M")
    sx = m * data.draw(st.integers(0, case.w // m - 1), label="shift columns / M")
    opts = case.window_options()

    def roll(a, axes=(1, 2)):
        return np.roll(a, (sy, sx), axis=axes)

    xr = roll(x)
    (out,) = impl.run("window_attention", x, *params, **opts)
    (out_r,) = impl.run("window_attention", xr, *params, **opts)
    impl.relation(
        "W-MSA(T x) vs T W-MSA(x)",
        out_r,
        roll(out),
        lambda: (
            impl.baseline("window_attention", xr, *params, **opts),
            roll(impl.baseline("window_attention", x, *params, **opts), (2, 3)),
        ),
    )


@given(case=vision_cases(divisible=False))
def test_window_attention_padded_values(impl, case):
    # H or W not a multiple of M: zero-padded at the bottom/right (pad then shift, canonical;
    # timm rolls first: the declared variant swin.pad_order=shift_then_pad), padded tokens
    # attended as keys, output cropped.
    x = case.feature_map()
    impl.compare("window_attention", x, *case.window_params(), **case.window_options())


@given(case=vision_cases(divisible=False, shift=False))
def test_window_padding_is_zero_padding(impl, case):
    # W-MSA on an H x W map equals W-MSA on the map explicitly zero-padded to multiples of M,
    # cropped back (the padding Swin implementations apply; with the shift the order of pad
    # and roll matters, see test_window_attention_padded_values).
    x, *params = impl.inputs(case.feature_map(), *case.window_params())
    m = case.window
    hp, wp = -(-case.h // m) * m, -(-case.w // m) * m
    xp = np.pad(x, ((0, 0), (0, hp - case.h), (0, wp - case.w), (0, 0)))
    opts = case.window_options()
    (out,) = impl.run("window_attention", x, *params, **opts)
    (out_p,) = impl.run("window_attention", xp, *params, **opts)
    crop = (slice(None), slice(0, case.h), slice(0, case.w))
    impl.relation(
        "W-MSA(x) vs W-MSA(pad x) cropped",
        out,
        out_p[crop],
        lambda: (
            impl.baseline("window_attention", x, *params, **opts),
            impl.baseline("window_attention", xp, *params, **opts)[(slice(None), *crop)],
        ),
    )


# -- Swin block ----------------------------------------------------------------------------------


@given(case=vision_cases())
def test_swin_block_values(impl, case):
    # x' = x + (S)W-MSA(LN1(x)), out = x' + MLP(LN2(x')), GELU exact.
    x = case.feature_map()
    impl.compare("swin_block", x, *case.swin_block_params(), **case.window_options())


@given(case=vision_cases(divisible=False))
def test_swin_block_padded_values(impl, case):
    x = case.feature_map()
    impl.compare("swin_block", x, *case.swin_block_params(), **case.window_options())


@given(case=vision_cases(gradients=True, max_side=6))
def test_swin_block_vjp(impl, case):
    x = case.feature_map()
    opts = case.window_options()
    impl.compare_vjp("swin_block", _dout(case), x, *case.swin_block_params(), **opts)


# -- patch merging -------------------------------------------------------------------------------


@given(case=vision_cases(divisible=False, min_side=2))
def test_patch_merging_values(impl, case):
    # LN(concat(x(2i,2j), x(2i+1,2j), x(2i,2j+1), x(2i+1,2j+1))) W_red; odd sides zero-padded.
    impl.compare("patch_merging", case.feature_map(), *case.merging_params())


@given(case=vision_cases(divisible=False, min_side=2, gradients=True))
def test_patch_merging_vjp(impl, case):
    h2, w2 = -(-case.h // 2), -(-case.w // 2)
    dout = _dout(case, h2, w2, 2 * case.d)
    impl.compare_vjp("patch_merging", dout, case.feature_map(), *case.merging_params())


@given(case=vision_cases(divisible=False, min_side=2))
def test_patch_merging_odd_is_zero_padded(impl, case):
    # An odd H or W is padded with zeros at the bottom/right before merging (timm,
    # torchvision, HF): merging x equals merging the explicitly padded x.
    x, *params = impl.inputs(case.feature_map(), *case.merging_params())
    xp = np.pad(x, ((0, 0), (0, case.h % 2), (0, case.w % 2), (0, 0)))
    (out,) = impl.run("patch_merging", x, *params)
    (out_p,) = impl.run("patch_merging", xp, *params)
    impl.relation(
        "merge(x) vs merge(pad x)",
        out,
        out_p,
        lambda: (
            impl.baseline("patch_merging", x, *params),
            impl.baseline("patch_merging", xp, *params),
        ),
    )


# -- complexity: FLOPs counted on running layers ------------------------------------------------


@st.composite
def flop_cases(draw):
    """h, w multiples of M in {2, 4} up to 16, C = heads x head width <= 16."""
    m = draw(st.sampled_from((2, 4)))
    n_heads = draw(st.integers(1, 2))
    return {
        "batch": draw(st.integers(1, 2)),
        "h": m * draw(st.integers(1, 16 // m)),
        "w": m * draw(st.integers(1, 16 // m)),
        "c": n_heads * draw(st.integers(1, 16 // n_heads)),
        "n_heads": n_heads,
        "window": m,
        "seed": draw(SEEDS),
    }


def _counts_in_range(impl):
    # Counts reach millions: exact in float32 and float64, not representable in float16.
    if impl.dtype in LOW:
        raise NotCovered(f"FLOP counts are integers beyond {impl.dtype}'s range")


@given(case=flop_cases())
def test_msa_macs(impl, case):
    # Multiply-adds counted while a multi-head self-attention layer runs over h w tokens equal
    # Ω(MSA) = 4hwC² + 2(hw)²C per image (torch.utils.flop_counter's 2 FLOPs per MAC halved).
    _counts_in_range(impl)
    x = normal(case["seed"], (case["batch"], case["h"], case["w"], case["c"]))
    impl.compare("msa_macs", x, n_heads=case["n_heads"])


@given(case=flop_cases())
def test_w_msa_macs(impl, case):
    # ... and for W-MSA with M x M windows, Ω(W-MSA) = 4hwC² + 2M²hwC.
    _counts_in_range(impl)
    x = normal(case["seed"], (case["batch"], case["h"], case["w"], case["c"]))
    impl.compare("w_msa_macs", x, n_heads=case["n_heads"], window=case["window"])
