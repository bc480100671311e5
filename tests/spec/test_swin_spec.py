"""Proofs of spec/swin.py, the wrong variants the Swin mutants implement (each must NOT be an
identity), and the link to reference.swin (windows, masks, bias index, attention, FLOPs)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import sympy as sp

from reference import swin as ref_swin
from spec import identity_holds, unproved_entries
from spec import swin as S
from spec.attention import attention, matrix

IDENTITIES = [
    S.window_partition_roundtrip,
    S.w_msa_is_block_diagonal_attention,
    S.sw_msa_is_region_masked_attention,
    S.relative_index_range,
    S.relative_bias_is_translation_invariant,
    S.patch_merging_linear_is_strided_conv,
    S.msa_complexity,
    S.w_msa_complexity,
    S.complexity_ratio,
    S.complexity_difference,
    S.heads_do_not_change_complexity,
]


@pytest.mark.parametrize("identity", IDENTITIES, ids=lambda f: f.__name__)
def test_identity(identity) -> None:
    bad = unproved_entries(*identity())
    assert not bad, f"not proved equal at flat entries: {bad[:3]}"


def test_sw_msa_identity_at_other_sizes() -> None:
    # A 6 x 4 grid with M = 2 (3 x 2 windows), and M = 3 with shift 1 on a 3 x 6 grid.
    assert identity_holds(*S.sw_msa_is_region_masked_attention(6, 4, 2))
    Q, K, V = (matrix(n, 18, 1) for n in "QKV")
    t = S.bias_table(3)
    lhs = S.sw_msa_roll(Q, K, V, 3, 6, 3, t)
    assert identity_holds(lhs, S.sw_msa_explicit(Q, K, V, 3, 6, 3, t))


def _qkv(n: int):
    return matrix("Q", n, 1), matrix("K", n, 1), matrix("V", n, 1)


def test_sw_msa_without_mask_is_not_the_layer() -> None:
    # Mutant "missing SW-MSA mask": windows of the rolled grid without the region mask.
    h = w = 4
    m, s = 2, 1
    Q, K, V = _qkv(h * w)
    rolled = [S.roll(A, h, w, -s, -s) for A in (Q, K, V)]
    parts = zip(*(S.window_partition(A, h, w, m) for A in rolled), strict=True)
    outs = [attention(q, k, v) for q, k, v in parts]
    unmasked = S.roll(S.window_reverse(outs, h, w, m), h, w, s, s)
    assert not identity_holds(unmasked, S.sw_msa_explicit(Q, K, V, h, w, m))


def test_shift_in_the_wrong_direction_or_not_undone_is_not_the_layer() -> None:
    h = w = 4
    m = 2
    Q, K, V = _qkv(h * w)
    explicit = S.sw_msa_explicit(Q, K, V, h, w, m)
    # rolled by +s instead of -s (and back by -s): the regions of the mask no longer match
    wrong = S.roll(S.sw_msa_roll(*(S.roll(A, h, w, 2, 2) for A in (Q, K, V)), h, w, m), h, w,
                   -2, -2)  # fmt: skip
    assert not identity_holds(wrong, explicit)
    # the roll back omitted
    not_undone = S.roll(S.sw_msa_roll(Q, K, V, h, w, m), h, w, -1, -1)
    assert not identity_holds(not_undone, explicit)


def test_mask_on_the_unshifted_grid_is_not_the_layer() -> None:
    # Mutant "mask built on the unshifted grid": region ids of the original positions used on
    # the rolled windows.
    h = w = 4
    m, s = 2, 1
    Q, K, V = _qkv(h * w)
    Qs, Ks, Vs = (S.roll(A, h, w, -s, -s) for A in (Q, K, V))
    # each rolled token labelled with the region of the grid position it came FROM
    regions = np.array(S.swin_img_mask_regions(h, w, m, s)).reshape(h, w)
    unshifted = np.roll(regions, (-s, -s), axis=(0, 1)).ravel().tolist()
    outs = []
    parts = [S.window_partition(A, h, w, m) for A in (Qs, Ks, Vs)]
    for ts, q, k, v in zip(S.window_tokens(h, w, m), *parts, strict=True):
        outs.append(attention(q, k, v, mask=S.region_mask([unshifted[t] for t in ts])))
    wrong = S.roll(S.window_reverse(outs, h, w, m), h, w, s, s)
    assert not identity_holds(wrong, S.sw_msa_explicit(Q, K, V, h, w, m))


def test_transposed_relative_index_is_not_translation_invariant_bias() -> None:
    m = 2
    t = S.bias_table(m)
    idx = S.relative_position_index(m)
    transposed = sp.Matrix(m * m, m * m, lambda i, j: t[idx[j][i]])
    assert not identity_holds(transposed, S.grid_bias(t, m, m, m))


def test_wrong_neighbour_order_is_not_the_strided_conv() -> None:
    h, w, c = 4, 2, 1
    X, R = matrix("X", h * w, c), matrix("R", 4 * c, 1)
    _lhs, rhs = S.patch_merging_linear_is_strided_conv(h, w, c, 1)
    rows = []
    for i in range(h // 2):
        for j in range(w // 2):
            nb = [(2 * i, 2 * j), (2 * i, 2 * j + 1), (2 * i + 1, 2 * j), (2 * i + 1, 2 * j + 1)]
            rows.append(sp.Matrix.hstack(*[X.row(r * w + cc) for r, cc in nb]))
    assert not identity_holds(sp.Matrix.vstack(*rows) * R, rhs)


@pytest.mark.parametrize("m", range(1, 7))
def test_relative_index_is_a_bijection_on_offsets(m: int) -> None:
    idx = np.array(S.relative_position_index(m))
    np.testing.assert_array_equal(idx, ref_swin.relative_position_index(m))
    coords = [(i // m, i % m) for i in range(m * m)]
    by_offset = {}
    for (i, a), (j, b) in itertools.product(enumerate(coords), repeat=2):
        by_offset.setdefault((a[0] - b[0], a[1] - b[1]), set()).add(int(idx[i, j]))
    assert all(len(v) == 1 for v in by_offset.values())  # one row per offset
    assert sorted(v.pop() for v in by_offset.values()) == list(range((2 * m - 1) ** 2))


# -- the link to reference.swin --------------------------------------------------------------


def test_reference_windows_are_the_spec_windows() -> None:
    h, w, m = 4, 6, 2
    x = np.arange(h * w, dtype=float).reshape(1, h, w, 1)
    windows = ref_swin.window_partition(x, m)[0, :, :, 0]
    np.testing.assert_array_equal(windows, np.array(S.window_tokens(h, w, m)))
    np.testing.assert_array_equal(ref_swin.window_reverse(ref_swin.window_partition(x, m), h, w), x)


@pytest.mark.parametrize(("h", "w", "m"), [(4, 4, 2), (6, 4, 2), (6, 6, 3), (8, 12, 4)])
def test_reference_mask_regions_are_the_spec_regions(h, w, m) -> None:
    s = m // 2
    np.testing.assert_array_equal(
        ref_swin.shift_regions(h, w, m, s).ravel(), S.swin_img_mask_regions(h, w, m, s)
    )
    ids = S.shifted_region_ids(h, w, m, s)
    visible = ref_swin.window_visible(h, w, m, s)
    # the rolled-window mask, mapped back to original tokens, is the region-id mask
    rolled_token = np.roll(np.arange(h * w).reshape(h, w), (-s, -s), axis=(0, 1))
    tokens = ref_swin.window_partition(rolled_token[None, :, :, None], m)[0, :, :, 0]
    for win, ts in zip(visible, tokens, strict=True):
        for a, b in itertools.product(range(m * m), repeat=2):
            assert win[a, b] == (ids[ts[a]] == ids[ts[b]])


def test_reference_sw_msa_equals_the_lambdified_spec() -> None:
    h = w = 4
    m, s = 2, 1
    rng = np.random.default_rng(0)
    Q, K, V = _qkv(h * w)
    t = S.bias_table(m)
    expr = S.sw_msa_explicit(Q, K, V, h, w, m, t)
    f = sp.lambdify([*Q, *K, *V, *t], expr, modules="numpy")
    x = rng.standard_normal((1, h, w, 1))
    wq, wk, wv = (rng.standard_normal((1, 1)) for _ in range(3))
    table = rng.standard_normal(((2 * m - 1) ** 2, 1))
    tokens = x.reshape(-1, 1)
    want = np.asarray(f(*(tokens @ wq).ravel(), *(tokens @ wk).ravel(), *(tokens @ wv).ravel(),
                        *table.ravel()), dtype=float).reshape(h, w)  # fmt: skip
    zeros = np.zeros(1)
    got = ref_swin.window_attention(x, wq, wk, wv, np.eye(1), zeros, zeros, zeros, table,
                                    window=m, shift=s)  # fmt: skip
    np.testing.assert_allclose(got[0, :, :, 0], want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(("h", "w", "c", "m"), [(4, 4, 2, 2), (8, 4, 6, 4), (6, 9, 3, 3)])
def test_reference_flop_model_is_the_symbolic_count(h, w, c, m) -> None:
    point = {S.h: h, S.w: w, S.C: c, S.M: m}
    assert ref_swin.msa_macs(h, w, c) == S.omega_msa().subs(point)
    assert ref_swin.w_msa_macs(h, w, c, m) == S.omega_w_msa().subs(point)
