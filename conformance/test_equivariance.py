"""Inductive bias (CNN vs ViT): convolution commutes with translation (circular padding; away
from the border with zero padding), global average pooling is translation-invariant, strided
pooling and patch embedding commute only with shifts by multiples of the stride, self-attention
without position embedding is permutation-equivariant; conv2d and pooling values and gradients."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from conformance.strategies import conv_cases, normal, vision_cases

PADDING_MODES = ("zeros", "circular")


def _roll(a, sy, sx):
    return np.roll(a, (sy, sx), axis=(-2, -1))


# -- conv2d and pooling ---------------------------------------------------------------------------


@given(case=conv_cases(), mode=st.sampled_from(PADDING_MODES), stride=st.integers(1, 2))
def test_conv2d_values(impl, case, mode, stride):
    # Cross-correlation, 'same' padding k // 2 with zeros or wrapping around.
    opts = {"stride": stride, "padding": case.kernel // 2, "padding_mode": mode}
    impl.compare("conv2d", case.x(), *case.params(), **opts)


@given(case=conv_cases(max_side=8), mode=st.sampled_from(PADDING_MODES), stride=st.integers(1, 2))
def test_conv2d_vjp(impl, case, mode, stride):
    opts = {"stride": stride, "padding": case.kernel // 2, "padding_mode": mode}
    oh = (case.h + 2 * (case.kernel // 2) - case.kernel) // stride + 1
    ow = (case.w + 2 * (case.kernel // 2) - case.kernel) // stride + 1
    dout = normal(case.seed + 5, (case.batch, case.out_channels, oh, ow))
    impl.compare_vjp("conv2d", dout, case.x(), *case.params(), **opts)


@given(case=conv_cases(min_side=2), kernel=st.integers(1, 3), stride=st.integers(1, 3))
def test_avg_pool_values(impl, case, kernel, stride):
    impl.compare("avg_pool2d", case.x(), kernel=min(kernel, case.h, case.w), stride=stride)


@given(case=conv_cases(min_side=2, max_side=8), kernel=st.integers(1, 3), stride=st.integers(1, 3))
def test_avg_pool_vjp(impl, case, kernel, stride):
    k = min(kernel, case.h, case.w)
    shape = (case.batch, case.channels, (case.h - k) // stride + 1, (case.w - k) // stride + 1)
    impl.compare_vjp("avg_pool2d", normal(case.seed + 5, shape), case.x(), kernel=k, stride=stride)


@given(case=conv_cases(min_side=2), kernel=st.integers(1, 3), stride=st.integers(1, 3))
def test_max_pool_values(impl, case, kernel, stride):
    impl.compare("max_pool2d", case.x(), kernel=min(kernel, case.h, case.w), stride=stride)


@given(case=conv_cases(min_side=1))
def test_global_avg_pool_values(impl, case):
    impl.compare("global_avg_pool", case.x())


@given(case=conv_cases(min_side=1))
def test_global_avg_pool_vjp(impl, case):
    dout = normal(case.seed + 5, (case.batch, case.channels))
    impl.compare_vjp("global_avg_pool", dout, case.x())


# -- translation ----------------------------------------------------------------------------------


@given(case=conv_cases(), data=st.data())
def test_conv_translation_equivariance(impl, case, data):
    # F(T x) = T F(x): a stride-1 convolution with circular padding commutes with every
    # circular translation T (spec.equivariance.conv_translation_equivariance).
    x, w, b = impl.inputs(case.x(), *case.params())
    sy = data.draw(st.integers(0, case.h - 1), label="shift rows")
    sx = data.draw(st.integers(0, case.w - 1), label="shift columns")
    opts = {"padding": case.kernel // 2, "padding_mode": "circular"}
    xs = _roll(x, sy, sx)
    (out,) = impl.run("conv2d", x, w, b, **opts)
    (out_s,) = impl.run("conv2d", xs, w, b, **opts)
    impl.relation(
        "F(T x) vs T F(x)",
        out_s,
        _roll(out, sy, sx),
        lambda: (
            impl.baseline("conv2d", xs, w, b, **opts),
            _roll(impl.baseline("conv2d", x, w, b, **opts), sy, sx),
        ),
    )


@given(case=conv_cases(min_side=6), data=st.data())
def test_conv_zero_padding_interior(impl, case, data):
    # With zero padding, F(T x) = T F(x) only where neither receptive field reaches the
    # border: rows r + sy .. H - 1 - r, columns r + sx .. W - 1 - r (kernel radius r). T is a
    # non-circular shift here (zeros enter at the top/left), the translation of an image.
    x, w, b = impl.inputs(case.x(), *case.params())
    r = case.kernel // 2
    sy = data.draw(st.integers(0, max(0, case.h - 2 * r - 1)), label="shift rows")
    sx = data.draw(st.integers(0, max(0, case.w - 2 * r - 1)), label="shift columns")
    xs = np.zeros_like(x)
    xs[..., sy:, sx:] = x[..., : case.h - sy, : case.w - sx]
    opts = {"padding": r, "padding_mode": "zeros"}
    (out,) = impl.run("conv2d", x, w, b, **opts)
    (out_s,) = impl.run("conv2d", xs, w, b, **opts)
    rows, cols = slice(r + sy, case.h - r), slice(r + sx, case.w - r)
    src_rows, src_cols = slice(r, case.h - r - sy), slice(r, case.w - r - sx)
    impl.relation(
        "interior of F(T x) vs T F(x)",
        out_s[..., rows, cols],
        out[..., src_rows, src_cols],
        lambda: (
            impl.baseline("conv2d", xs, w, b, **opts)[..., rows, cols],
            impl.baseline("conv2d", x, w, b, **opts)[..., src_rows, src_cols],
        ),
    )


@given(case=conv_cases(), data=st.data())
def test_gap_translation_invariance(impl, case, data):
    # F(T x) = F(x) for F = global average pooling (spec.equivariance.gap_translation_invariance)
    # The image gets a mean of about 1: a mean near 0 would cancel, and its rounding (which
    # depends on the summation order, so on the shift) would be relative error without bound.
    x = impl.inputs(case.x() + 1.0)[0]
    sy = data.draw(st.integers(0, case.h - 1), label="shift rows")
    sx = data.draw(st.integers(0, case.w - 1), label="shift columns")
    xs = _roll(x, sy, sx)
    (out,) = impl.run("global_avg_pool", x)
    (out_s,) = impl.run("global_avg_pool", xs)
    impl.relation(
        "GAP(T x) vs GAP(x)",
        out_s,
        out,
        lambda: (impl.baseline("global_avg_pool", xs), impl.baseline("global_avg_pool", x)),
    )


@given(
    case=conv_cases(min_side=2, even=True),
    op=st.sampled_from(["avg_pool2d", "max_pool2d"]),
    data=st.data(),
)
def test_strided_pool_commutes_with_stride_multiples(impl, case, op, data):
    # pool(T_(2a, 2b) x) = T_(a, b) pool(x) for 2 x 2 pooling with stride 2 and circular T
    # (spec.equivariance.strided_pool_commutes_with_stride_multiples): a shift by a multiple of
    # the stride moves whole windows.
    x = impl.inputs(case.x())[0]
    a = data.draw(st.integers(0, case.h // 2 - 1), label="shift rows / 2")
    c = data.draw(st.integers(0, case.w // 2 - 1), label="shift columns / 2")
    xs = _roll(x, 2 * a, 2 * c)
    (out,) = impl.run(op, x, kernel=2, stride=2)
    (out_s,) = impl.run(op, xs, kernel=2, stride=2)
    impl.relation(
        "pool(T x) vs T' pool(x)",
        out_s,
        _roll(out, a, c),
        lambda: (
            impl.baseline(op, xs, kernel=2, stride=2),
            _roll(impl.baseline(op, x, kernel=2, stride=2), a, c),
        ),
    )


@given(case=vision_cases(), data=st.data())
def test_patch_embedding_commutes_with_patch_shifts(impl, case, data):
    # A ViT's patch embedding is a strided convolution: a circular shift of the image by
    # (p a, p b) pixels shifts the token grid by (a, b) patches.
    x, W_E, b_E = impl.inputs(case.image(), *case.patch_params())
    p = case.patch
    gh, gw = case.h // p, case.w // p
    a = data.draw(st.integers(0, gh - 1), label="shift rows / p")
    c = data.draw(st.integers(0, gw - 1), label="shift columns / p")
    xs = _roll(x, p * a, p * c)

    def grid_roll(tokens):
        grid = tokens.reshape(*tokens.shape[:-2], gh, gw, tokens.shape[-1])
        return np.roll(grid, (a, c), axis=(-3, -2)).reshape(tokens.shape)

    (out,) = impl.run("patch_embedding", x, W_E, b_E, patch=p)
    (out_s,) = impl.run("patch_embedding", xs, W_E, b_E, patch=p)
    impl.relation(
        "PE(T x) vs T' PE(x)",
        out_s,
        grid_roll(out),
        lambda: (
            impl.baseline("patch_embedding", xs, W_E, b_E, patch=p),
            grid_roll(impl.baseline("patch_embedding", x, W_E, b_E, patch=p)),
        ),
    )


# -- permutations ---------------------------------------------------------------------------------


@given(case=vision_cases(max_side=4), data=st.data())
def test_attention_permutation_equivariance(impl, case, data):
    # A ViT block without position embedding sees a set of tokens: Block(P Z) = P Block(Z)
    # for every permutation P of the tokens (spec.equivariance.attention_permutation_equivariance).
    t = case.n_patches() + 1
    z, *params = impl.inputs(normal(case.seed, (case.batch, t, case.d)), *case.vit_block_params())
    perm = np.array(data.draw(st.permutations(range(t)), label="token permutation"))
    opts = {"n_heads": case.n_heads}
    (out,) = impl.run("vit_block", z, *params, **opts)
    (out_p,) = impl.run("vit_block", z[:, perm], *params, **opts)
    impl.relation(
        "Block(P Z) vs P Block(Z)",
        out_p,
        out[:, perm],
        lambda: (
            impl.baseline("vit_block", z[:, perm], *params, **opts),
            impl.baseline("vit_block", z, *params, **opts)[:, :, perm],
        ),
    )


@given(case=vision_cases(), data=st.data())
def test_vit_embed_moves_with_patches(impl, case, data):
    # Permuting the image's patches moves the patch tokens, and E_pos stays with the
    # positions: embed(P x; E_pos) = P embed(x; P^-1 E_pos) row for row. With the position
    # embedding permuted along, equivariance is restored
    # (spec.equivariance.permuted_position_embedding_restores_equivariance); without that, the
    # position embedding is what breaks it (spec: position_embedding_breaks_equivariance).
    x, W_E, b_E, cls, pos = impl.inputs(case.image(), *case.embed_params())
    p, n = case.patch, case.n_patches()
    gh, gw = case.h // p, case.w // p
    perm = np.array(data.draw(st.permutations(range(n)), label="patch permutation"))
    grid = x.reshape(case.batch, case.channels, gh, p, gw, p).transpose(0, 2, 4, 1, 3, 5)
    patches = grid.reshape(case.batch, n, case.channels, p, p)[:, perm]
    xp = patches.reshape(case.batch, gh, gw, case.channels, p, p).transpose(0, 3, 1, 4, 2, 5)
    xp = xp.reshape(x.shape)
    # token order with the class token first: 0, then 1 + perm
    order = np.concatenate([[0], 1 + perm])
    pos_p = pos[order]
    (out,) = impl.run("vit_embed", x, W_E, b_E, cls, pos, patch=p)
    (out_p,) = impl.run("vit_embed", xp, W_E, b_E, cls, pos_p, patch=p)
    impl.relation(
        "embed(P x, P E_pos) vs P embed(x)",
        out_p,
        out[:, order],
        lambda: (
            impl.baseline("vit_embed", xp, W_E, b_E, cls, pos_p, patch=p),
            impl.baseline("vit_embed", x, W_E, b_E, cls, pos, patch=p)[:, :, order],
        ),
    )
