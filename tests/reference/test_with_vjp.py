"""Ops with a saved-activation form (conformance.ops Op.with_vjp: one forward, then a pullback
reading what it saved, as a training step runs): its value is the op's forward, its pullback
is the op's vjp, and the pullback leaves what it saved, its cotangent and the inputs as they
were, so a second call gives the same gradients (in-place buffer reuse must stay inside the
pullback's own temporaries)."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

from conformance.ops import OPS
from tests.reference.test_swin_grad import _attention_args, _block_args


def _ln_block(rng, e=6, f=8):
    r = rng.standard_normal
    attn = [r((e, e)) / 2 for _ in range(4)] + [r(e) / 3 for _ in range(3)]
    ffn = [r((e, f)) / 2, r(f) / 3, r((f, e)) / 3, r(e) / 3]
    return attn, [1 + 0.1 * r(e), 0.1 * r(e)], ffn


def _encoder(rng):
    attn, ln, ffn = _ln_block(rng)
    return [rng.standard_normal((2, 4, 6)), *attn, *ln, *ffn, *ln], {"n_heads": 2}


def _decoder(rng):
    attn, ln, ffn = _ln_block(rng)
    y, memory = rng.standard_normal((2, 4, 6)), rng.standard_normal((2, 5, 6))
    return [y, memory, *attn, *ln, *attn, *ln, *ffn, *ln], {"n_heads": 2}


def _vit(rng, d=6, p=2):
    r = rng.standard_normal
    embed = [r((3 * p * p, d)) / 3, r(d), r(d), r((5, d))]
    blocks = []
    for _ in range(2):
        attn, ln, ffn = _ln_block(rng, d)
        blocks += [*attn, *ln, *ffn, *ln]
    final = [1 + 0.1 * r(d), 0.1 * r(d)]
    return [r((2, 3, 4, 4)), *embed, *blocks, *final], {"patch": p, "n_heads": 2}


def _mha(rng):
    r = rng.standard_normal
    x_q, x_kv = r((2, 4, 6)), r((2, 5, 6))
    return [x_q, x_kv, *(r((6, 6)) / 2 for _ in range(4)), r(6), r(6), r(6)], {"n_heads": 2}


def _sdpa(rng):
    r = rng.standard_normal
    return [r((2, 2, 4, 3)), r((2, 2, 5, 3)), r((2, 2, 5, 2))], {"causal": True}


INPUTS = {
    "softmax": lambda rng: ([rng.standard_normal((3, 5, 7))], {"axis": 1}),
    "layer_norm": lambda rng: ([rng.standard_normal((2, 3, 6)), *rng.standard_normal((2, 6))], {}),
    "batch_norm": lambda rng: ([rng.standard_normal((4, 3, 5)), *rng.standard_normal((2, 3))], {}),
    "sdpa": _sdpa,
    "mha": _mha,
    "encoder_layer": _encoder,
    "pre_ln_encoder_layer": _encoder,
    "decoder_layer": _decoder,
    "pre_ln_decoder_layer": _decoder,
    "vit_block": lambda rng: (_encoder(rng)[0], {"n_heads": 2}),
    "vit": _vit,
    "window_attention": lambda rng: (_attention_args(h=5, w=3), {"n_heads": 2, "shift": 1}),
    "swin_block": lambda rng: (_block_args(), {"n_heads": 2, "shift": 1}),
    "patch_merging": lambda rng: (
        [
            rng.standard_normal((2, 3, 4, 3)),
            *rng.standard_normal((2, 12)),
            rng.standard_normal((12, 5)),
        ],
        {},
    ),
}
WITH_VJP = sorted(name for name, op in OPS.items() if op.with_vjp is not None)


def test_every_op_with_a_saved_activation_form_has_inputs_here():
    assert set(WITH_VJP) == set(INPUTS)


def _same(a, b) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("name", WITH_VJP)
# float16 and bfloat16 too: the naive tier (conformance/tolerance.py) runs the kernels in the
# low dtype itself when it diagnoses a failing low-precision check
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16, ml_dtypes.bfloat16])
def test_value_and_pullback_are_the_forward_and_the_vjp(name, dtype):
    op = OPS[name]
    args, options = INPUTS[name](np.random.default_rng(0))
    args = [a.astype(dtype) for a in args]
    kept = [a.copy() for a in args]
    out, pullback = op.with_vjp(*args, **options)
    assert np.array_equal(out, op.forward(*args, **options))
    dy = np.random.default_rng(1).standard_normal(out.shape).astype(dtype)
    dy_kept = dy.copy()
    first = pullback(dy)
    assert out.dtype == dtype and all(g.dtype == dtype for g in first), "a dtype was not kept"
    assert _same(first, op.vjp(dy, *args, **options))
    assert _same(first, pullback(dy)), "the pullback changed what it saved"
    assert np.array_equal(dy, dy_kept), "the pullback wrote into its cotangent"
    assert _same(args, kept), "the forward or the pullback wrote into an input"
