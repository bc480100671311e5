"""Transformer layers: post-LN encoder layer (the notes'), pre-LN block, decoder layer; values,
gradients, permutation equivariance, padding and causality."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from conformance.strategies import normal, transformer_cases
from conformance.tolerance import LOW


def _encoder_options(case):
    return {**case.options(), "key_mask": case.key_mask(), "causal": case.causal}


def _decoder_options(case):
    return {
        **case.options(),
        "causal": True,
        "tgt_key_mask": case.key_mask(),
        "memory_key_mask": case.key_mask(case.t_memory, salt=5),
    }


def _dout(case, salt=6):
    return normal(case.seed + salt, (*case.batch, case.t, case.e))


def _smooth_in_low_precision(impl, options):
    """ReLU's derivative jumps at 0: a float16/bfloat16 rounding that moves a pre-activation
    across 0 switches a hidden unit's whole gradient on or off, an O(1) change an honest kernel
    makes (torch's flash and math attention kernels disagree on such units). Low-precision
    gradient checks therefore use exact GELU where the case drew ReLU; float64/float32 keep it."""
    if impl.dtype in LOW and options["activation"] == "relu":
        return {**options, "activation": "gelu"}
    return options


# -- encoder layer (post-LN) and the pre-LN block ------------------------------------------------


@given(case=transformer_cases())
def test_encoder_values(impl, case):
    # h' = LN(x + MHA(x)), out = LN(h' + FF(h')).
    impl.compare("encoder_layer", case.x(), *case.encoder_params(), **_encoder_options(case))


@given(case=transformer_cases(gradients=True))
def test_encoder_vjp(impl, case):
    x, params = case.x(), case.encoder_params()
    options = _smooth_in_low_precision(impl, _encoder_options(case))
    impl.compare_vjp("encoder_layer", _dout(case), x, *params, **options)


@given(case=transformer_cases())
def test_pre_ln_values(impl, case):
    # h' = x + MHA(LN(x)), out = h' + FF(LN(h')).
    impl.compare("pre_ln_encoder_layer", case.x(), *case.encoder_params(), **_encoder_options(case))


@given(case=transformer_cases(gradients=True))
def test_pre_ln_vjp(impl, case):
    x, params = case.x(), case.encoder_params()
    options = _smooth_in_low_precision(impl, _encoder_options(case))
    impl.compare_vjp("pre_ln_encoder_layer", _dout(case), x, *params, **options)


@given(case=transformer_cases(padding=False, causal=False))
def test_post_ln_output_is_normalized(impl, case):
    # The post-LN layer ends with a LayerNorm: with gamma = 1 and beta = 0 every output token has
    # mean 0 over its features (spec.transformer.post_ln_rows_have_zero_mean). A pre-LN block
    # ends with a residual sum and does not.
    x, *params = impl.inputs(case.x(), *case.encoder_params())
    params[-2], params[-1] = np.ones(case.e), np.zeros(case.e)
    options = _encoder_options(case)
    (out,) = impl.run("encoder_layer", x, *params, **options)
    zeros = np.zeros(out.shape[:-1])  # all zero: the error is absolute
    impl.relation(
        "mean of each output token",
        out.mean(axis=-1),
        zeros,
        lambda: (impl.baseline("encoder_layer", x, *params, **options).mean(axis=-1), zeros),
    )


@given(case=transformer_cases(padding=False, causal=False), data=st.data())
def test_encoder_token_permutation(impl, case, data):
    # Without positional encodings the encoder layer is permutation-equivariant, post-LN and
    # pre-LN alike: Enc(P X) = P Enc(X).
    x, *params = impl.inputs(case.x(), *case.encoder_params())
    perm = np.array(data.draw(st.permutations(range(case.t)), label="token permutation"))
    op = data.draw(st.sampled_from(["encoder_layer", "pre_ln_encoder_layer"]), label="op")
    options = _encoder_options(case)
    xp = x[..., perm, :]
    (out,) = impl.run(op, x, *params, **options)
    (out_p,) = impl.run(op, xp, *params, **options)
    impl.relation(
        "Enc(P X) vs P Enc(X)",
        out_p,
        out[..., perm, :],
        lambda: (
            impl.baseline(op, xp, *params, **options),
            impl.baseline(op, x, *params, **options)[..., perm, :],
        ),
    )


@given(case=transformer_cases(padding=True, min_t=2), data=st.data())
def test_encoder_padding(impl, case, data):
    # Padding tokens (key_mask False) are never attended and every other step is per token: the
    # outputs of the real tokens do not change when the padding holds something else.
    x, *params = impl.inputs(case.x(), *case.encoder_params())
    op = data.draw(st.sampled_from(["encoder_layer", "pre_ln_encoder_layer"]), label="op")
    options = _encoder_options(case)
    real = np.broadcast_to(options["key_mask"], x.shape[:-1])
    x2 = x.copy()
    x2[~real] = normal(case.seed + 7, x2[~real].shape, 3.0)
    (x2,) = impl.inputs(x2)
    (out,) = impl.run(op, x, *params, **options)
    (out2,) = impl.run(op, x2, *params, **options)
    impl.relation(
        "real tokens after changing the padding",
        out2[real],
        out[real],
        lambda: (
            impl.baseline(op, x2, *params, **options)[:, real],
            impl.baseline(op, x, *params, **options)[:, real],
        ),
    )


# -- decoder layer -----------------------------------------------------------------------------


@given(case=transformer_cases())
def test_decoder_values(impl, case):
    # h1 = LN(y + MaskedMHA(y)), h2 = LN(h1 + MHA(h1, memory)), out = LN(h2 + FF(h2)).
    params = case.decoder_params()
    impl.compare("decoder_layer", case.x(), case.memory(), *params, **_decoder_options(case))


@given(case=transformer_cases(gradients=True))
def test_decoder_vjp(impl, case):
    y, memory, params = case.x(), case.memory(), case.decoder_params()
    options = _smooth_in_low_precision(impl, _decoder_options(case))
    impl.compare_vjp("decoder_layer", _dout(case), y, memory, *params, **options)


@given(case=transformer_cases())
def test_pre_ln_decoder_values(impl, case):
    params = case.decoder_params()
    impl.compare("pre_ln_decoder_layer", case.x(), case.memory(), *params, **_decoder_options(case))


@given(case=transformer_cases(gradients=True))
def test_pre_ln_decoder_vjp(impl, case):
    y, memory, params = case.x(), case.memory(), case.decoder_params()
    options = _smooth_in_low_precision(impl, _decoder_options(case))
    impl.compare_vjp("pre_ln_decoder_layer", _dout(case), y, memory, *params, **options)


@given(case=transformer_cases(), data=st.data())
def test_decoder_causal_ignores_future(impl, case, data):
    # Decoder output i may not change when decoder tokens after i change (masked self-attention;
    # cross-attention, FF and LayerNorm act on each position).
    y, memory, *params = impl.inputs(case.x(), case.memory(), *case.decoder_params())
    t = data.draw(st.integers(0, case.t - 1), label="last kept position")
    op = data.draw(st.sampled_from(["decoder_layer", "pre_ln_decoder_layer"]), label="op")
    options = _decoder_options(case)
    y2 = y.copy()
    y2[..., t + 1 :, :] = normal(case.seed + 8, y2[..., t + 1 :, :].shape)
    (y2,) = impl.inputs(y2)
    (out,) = impl.run(op, y, memory, *params, **options)
    (out2,) = impl.run(op, y2, memory, *params, **options)
    keep = (..., slice(0, t + 1), slice(None))
    impl.relation(
        "rows <= i after changing later tokens",
        out2[keep],
        out[keep],
        lambda: (
            impl.baseline(op, y2, memory, *params, **options)[keep],
            impl.baseline(op, y, memory, *params, **options)[keep],
        ),
    )


@given(case=transformer_cases(padding=True), data=st.data())
def test_decoder_memory_padding(impl, case, data):
    # Padded encoder positions (memory_key_mask False) do not reach the decoder output.
    y, memory, *params = impl.inputs(case.x(), case.memory(), *case.decoder_params())
    op = data.draw(st.sampled_from(["decoder_layer", "pre_ln_decoder_layer"]), label="op")
    options = _decoder_options(case)
    real = np.broadcast_to(options["memory_key_mask"], memory.shape[:-1])
    memory2 = memory.copy()
    memory2[~real] = normal(case.seed + 9, memory2[~real].shape, 3.0)
    (memory2,) = impl.inputs(memory2)
    (out,) = impl.run(op, y, memory, *params, **options)
    (out2,) = impl.run(op, y, memory2, *params, **options)
    impl.relation(
        "decoder output after changing padded memory",
        out2,
        out,
        lambda: (
            impl.baseline(op, y, memory2, *params, **options),
            impl.baseline(op, y, memory, *params, **options),
        ),
    )
