"""reference.transformer: vjps of the encoder and decoder layers (post-LN and pre-LN, every
activation, masks) against finite differences, and bad input."""

import numpy as np
import pytest

from reference import transformer
from tests.gradcheck import check_gradient_entries, check_vjp

E, F = 4, 5


def _attention(rng):
    return [rng.standard_normal((E, E)) / 2 for _ in range(4)] + [
        rng.standard_normal(E) / 2 for _ in range(3)
    ]


def _ln(rng):
    return [1 + 0.3 * rng.standard_normal(E), 0.3 * rng.standard_normal(E)]


def _ffn(rng):
    return [
        rng.standard_normal((E, F)) / 2,
        rng.standard_normal(F) / 2,
        rng.standard_normal((F, E)) / 2,
        rng.standard_normal(E) / 2,
    ]


def encoder_params(seed=0):
    rng = np.random.default_rng(seed)
    return [*_attention(rng), *_ln(rng), *_ffn(rng), *_ln(rng)]


def decoder_params(seed=0):
    rng = np.random.default_rng(seed)
    return [*_attention(rng), *_ln(rng), *_attention(rng), *_ln(rng), *_ffn(rng), *_ln(rng)]


@pytest.mark.parametrize("activation", transformer.ACTIVATIONS)
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_encoder_vjp(activation, norm_first, masked):
    x = np.random.default_rng(1).standard_normal((2, 3, E))
    options = {"n_heads": 2, "activation": activation, "norm_first": norm_first, "eps": 1e-5}
    if masked:
        options |= {
            "key_mask": np.array([[True, True, False], [True, False, True]]),
            "causal": True,
        }

    def f(*a):
        return transformer.encoder_layer(*a, **options)

    def f_vjp(d, *a):
        return transformer.encoder_layer_vjp(d, *a, **options)

    args = [x, *encoder_params()]
    check_vjp(f, f_vjp, args)
    if activation == "gelu" and masked:
        check_gradient_entries(f, f_vjp, args)


@pytest.mark.parametrize("activation", ["relu", "gelu_tanh"])
@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_vjp(activation, norm_first):
    rng = np.random.default_rng(2)
    y, memory = rng.standard_normal((2, 3, E)), rng.standard_normal((2, 4, E))
    options = {
        "n_heads": 2,
        "activation": activation,
        "norm_first": norm_first,
        "tgt_key_mask": np.array([[True, True, False], [True, True, True]]),
        "memory_key_mask": np.array([[True, False, True, True], [True, True, True, False]]),
    }
    check_vjp(
        lambda *a: transformer.decoder_layer(*a, **options),
        lambda d, *a: transformer.decoder_layer_vjp(d, *a, **options),
        [y, memory, *decoder_params()],
    )


def test_pre_ln_ops_are_norm_first():
    x = np.random.default_rng(3).standard_normal((3, E))
    p = encoder_params()
    np.testing.assert_array_equal(
        transformer.pre_ln_encoder_layer(x, *p), transformer.encoder_layer(x, *p, norm_first=True)
    )


def test_post_ln_output_tokens_are_normalized():
    x = np.random.default_rng(4).standard_normal((5, E))
    p = encoder_params()
    p[-2], p[-1] = np.ones(E), np.zeros(E)
    out = transformer.encoder_layer(x, *p, eps=0.0)
    np.testing.assert_allclose(out.mean(-1), 0, atol=1e-14)
    np.testing.assert_allclose(out.var(-1), 1, rtol=1e-12)


def test_decoder_ignores_future_tokens():
    rng = np.random.default_rng(5)
    y, memory = rng.standard_normal((4, E)), rng.standard_normal((3, E))
    p = decoder_params()
    y2 = y.copy()
    y2[2:] = rng.standard_normal((2, E))
    a, b = transformer.decoder_layer(y, memory, *p), transformer.decoder_layer(y2, memory, *p)
    np.testing.assert_allclose(a[:2], b[:2], rtol=1e-13)
    assert not np.allclose(a[2:], b[2:])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p: p[:-1], "expected 15 parameter arrays, got 14"),
        (lambda p: [*p[:7], p[7][:2], *p[8:]], r"LayerNorm gamma \(2,\)"),
        (lambda p: [*p[:9], p[9][:2], *p[10:]], r"feed-forward W_1 \(2, 5\)"),
    ],
)
def test_bad_parameters_raise_one_clear_error(change, message):
    x = np.zeros((3, E))
    with pytest.raises(ValueError, match=message):
        transformer.encoder_layer(x, *change(encoder_params()))


def test_heads_must_divide_the_width():
    with pytest.raises(ValueError, match="E=4 is not divisible by n_heads=3"):
        transformer.encoder_layer(np.zeros((3, E)), *encoder_params(), n_heads=3)
