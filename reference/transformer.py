"""Transformer layers: the post-LN encoder layer of the notes, the pre-LN block, and the decoder
layer (masked self-attention, cross-attention on the encoder output, feed-forward), forward
and vjp.

Lecture notes (Transformer Encoder, "Attention is All You Need"):
    h' = LayerNorm(h + Attn(h, h, h))
    out = LayerNorm(h' + FF(h'))          FF applied to each position x_i alone
and (ViT) the pre-LN block
    Z' = MSA(LN(Z)) + Z,   Z = MLP(LN(Z')) + Z'

Parameters, in this order after the input(s) (the notes' X W convention, as reference.attention):
    attention   W_Q, W_K, W_V (E, E), W_O (E, E), b_q, b_v, b_o (E,)
    LayerNorm   gamma, beta (E,)
    FFN         W_1 (E, F), b_1 (F,), W_2 (F, E), b_2 (E,): FF(x) = act(x W_1 + b_1) W_2 + b_2
The key bias of each attention is zero here (reference.attention.mha explains why it has no
gradient; the mha op checks it). One parameter set per sublayer: the encoder layer has
(attention, LN1, FFN, LN2), the decoder layer (self-attention, LN1, cross-attention, LN2, FFN,
LN3), the order of torch's nn.TransformerDecoderLayer.

Options: n_heads; key_mask (..., T) True = real token, False = padding (for the decoder,
tgt_key_mask over the decoder tokens and memory_key_mask over the encoder tokens); causal (the
encoder's self-attention; the decoder's self-attention is causal unless causal=False);
activation "relu", "gelu" (exact, x Φ(x)) or "gelu_tanh"; eps of every LayerNorm (inside the
square root). Variant (conformance/variants.py): norm_first False (post-LN, the notes', the
original Transformer's) or True (pre-LN).

LayerNorm is reference.norm's Transformer form (statistics of each token over the feature axis,
biased variance, eps inside the root, gamma scales, beta shifts); GELU is reference.activation's.
"""

from __future__ import annotations

import numpy as np

from reference.activation import gelu, gelu_vjp, gelu_with_vjp
from reference.attention import mha, mha_vjp, sum_to
from reference.common import T, mm, store, weight_grad
from reference.norm import layer_norm, layer_norm_vjp

ACTIVATIONS = ("relu", "gelu", "gelu_tanh")
N_ATTENTION = 7  # W_Q, W_K, W_V, W_O, b_q, b_v, b_o
N_FFN = 4  # W_1, b_1, W_2, b_2

# -- activations of the position-wise feed-forward network ------------------------------------


def activation_fn(x: np.ndarray, activation: str) -> np.ndarray:
    """relu, or GELU exact (x Φ(x)) / tanh form from reference.activation."""
    if activation == "relu":
        return np.maximum(x, 0).astype(x.dtype)
    if activation in ("gelu", "gelu_tanh"):
        return gelu(x, "exact" if activation == "gelu" else "tanh")
    raise ValueError(f"activation {activation!r} is not one of {ACTIVATIONS}")


def activation_vjp(dy: np.ndarray, x: np.ndarray, activation: str) -> np.ndarray:
    if activation == "relu":
        return (dy * (x > 0)).astype(dy.dtype)
    if activation in ("gelu", "gelu_tanh"):
        return gelu_vjp(dy, x, "exact" if activation == "gelu" else "tanh")[0]
    raise ValueError(f"activation {activation!r} is not one of {ACTIVATIONS}")


def activation_with_vjp(x: np.ndarray, activation: str):
    """(act(x), dy -> activation_vjp(dy, x, activation)), sharing GELU's Φ(x) between the two."""
    if activation in ("gelu", "gelu_tanh"):
        return gelu_with_vjp(x, "exact" if activation == "gelu" else "tanh")
    return activation_fn(x, activation), lambda dy: activation_vjp(dy, x, activation)


def feed_forward(x, W_1, b_1, W_2, b_2, activation: str = "relu") -> np.ndarray:
    """FF(x) = act(x W_1 + b_1) W_2 + b_2, applied to each position alone; (..., T, E)."""
    pre = store(mm(x, W_1) + b_1)  # (..., T, F)
    hidden = store(activation_fn(pre, activation))
    return mm(hidden, W_2) + b_2


def feed_forward_vjp(dy, x, W_1, b_1, W_2, b_2, activation: str = "relu"):
    """(dx, dW_1, db_1, dW_2, db_2)."""
    pre = store(mm(x, W_1) + b_1)
    hidden, hidden_vjp = activation_with_vjp(pre, activation)
    hidden = store(hidden)
    # Gradients handed from one kernel to the next are kept in memory too: stored.
    dhidden = store(mm(dy, T(W_2)))
    dpre = store(hidden_vjp(dhidden))
    return (
        mm(dpre, T(W_1)),
        weight_grad(x, dpre),
        sum_to(dpre, 1),
        weight_grad(hidden, dy),
        sum_to(dy, 1),
    )


# -- the layers ----------------------------------------------------------------------------------


def _check(where: str, x: np.ndarray, params: tuple, n_expected: int, activation: str) -> None:
    if len(params) != n_expected:
        raise ValueError(f"{where}: expected {n_expected} parameter arrays, got {len(params)}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"{where}: activation {activation!r} is not one of {ACTIVATIONS}")
    if x.ndim < 2:
        raise ValueError(f"{where}: input needs (..., T, E), got shape {x.shape}")


def _split(params: tuple, sizes: tuple[int, ...]) -> list[tuple]:
    out, i = [], 0
    for n in sizes:
        out.append(tuple(params[i : i + n]))
        i += n
    return out


def _ln_check(where: str, e: int, gamma: np.ndarray, beta: np.ndarray) -> None:
    if gamma.shape != (e,) or beta.shape != (e,):
        raise ValueError(
            f"{where}: LayerNorm gamma {gamma.shape} and beta {beta.shape} must be (E,) = ({e},)"
        )


def _ffn_check(where: str, e: int, W_1, b_1, W_2, b_2) -> None:
    f = W_1.shape[-1] if W_1.ndim == 2 else -1
    if W_1.shape != (e, f) or b_1.shape != (f,) or W_2.shape != (f, e) or b_2.shape != (e,):
        raise ValueError(
            f"{where}: feed-forward W_1 {W_1.shape}, b_1 {b_1.shape}, W_2 {W_2.shape}, "
            f"b_2 {b_2.shape} do not fit E={e} (need (E, F), (F,), (F, E), (E,))"
        )


def _attend(x_q, x_kv, attn, n_heads, key_mask, causal, scale_rule):
    return store(
        mha(
            x_q, x_kv, *attn, n_heads=n_heads, key_mask=key_mask, causal=causal,
            scale_rule=scale_rule,
        )
    )  # fmt: skip


def _attend_vjp(dy, x_q, x_kv, attn, n_heads, key_mask, causal, scale_rule):
    grads = mha_vjp(
        dy, x_q, x_kv, *attn, n_heads=n_heads, key_mask=key_mask, causal=causal,
        scale_rule=scale_rule,
    )  # fmt: skip
    return grads[0], grads[1], grads[2:]


# A layer is a stack of residual sublayers, each (f, f_vjp, gamma, beta):
#   post-LN (the notes'):  x <- LN(x + f(x))        pre-LN (norm_first):  x <- x + f(LN(x))
# f_vjp(dy, h) -> (dh, parameter gradients, gradient of another input such as the decoder's
# memory, or None). The forward and the vjp walk the same stack, so they cannot disagree on
# which activations a kernel stores.


def _identity(a: np.ndarray) -> np.ndarray:
    return a


def _stack_forward(x, sublayers, eps, norm_first):
    """The output, and per sublayer its input and its normalised input (pre-LN) or its residual
    sum (post-LN), which the vjp reads."""
    saved = []
    for k, (f, _, g, b) in enumerate(sublayers):
        keep = store if k < len(sublayers) - 1 else _identity  # the output is not stored
        if norm_first:
            n = store(layer_norm(x, g, b, eps))
            saved.append((x, n))
            x = keep(x + f(n))
        else:
            z = store(x + f(x))
            saved.append((x, z))
            x = keep(layer_norm(z, g, b, eps))
    return x, saved


def _stack_vjp(dout, x, sublayers, eps, norm_first):
    """(dx, per sublayer (*parameter gradients, dgamma, dbeta) flattened, the other inputs'
    gradients)."""
    _, saved = _stack_forward(x, sublayers, eps, norm_first)
    d, grads, others = dout, [], []
    for k in reversed(range(len(sublayers))):
        _, f_vjp, g, b = sublayers[k]
        h, s = saved[k]
        keep = store if k > 0 else _identity  # dx is returned, not stored
        if norm_first:  # out = h + f(n), n = LN(h)
            dn, dparams, other = f_vjp(d, s)
            dh_ln, dg, db = layer_norm_vjp(store(dn), h, g, b, eps)
            d = keep(d + store(dh_ln))
        else:  # out = LN(z), z = h + f(h)
            dz, dg, db = layer_norm_vjp(d, s, g, b, eps)
            dz = store(dz)
            dh_f, dparams, other = f_vjp(dz, h)
            d = keep(dz + store(dh_f))
        grads[:0] = [*dparams, dg, db]
        if other is not None:
            others.append(other)
    return d, grads, others


def _self_attention(attn, opts):
    def f(h):
        return _attend(h, h, attn, *opts)

    def f_vjp(dy, h):
        dq, dkv, dattn = _attend_vjp(dy, h, h, attn, *opts)
        return dq + dkv, dattn, None

    return f, f_vjp


def _cross_attention(memory, attn, opts):
    def f(h):
        return _attend(h, memory, attn, *opts)

    def f_vjp(dy, h):
        dq, dmemory, dattn = _attend_vjp(dy, h, memory, attn, *opts)
        return dq, dattn, dmemory

    return f, f_vjp


def _feed_forward(ffn, activation):
    def f(h):
        return store(feed_forward(h, *ffn, activation))

    def f_vjp(dy, h):
        dh, *dffn = feed_forward_vjp(dy, h, *ffn, activation)
        return dh, dffn, None

    return f, f_vjp


def _encoder_stack(x, params, n_heads, key_mask, causal, activation, scale_rule):
    _check("encoder_layer", x, params, N_ATTENTION + 2 + N_FFN + 2, activation)
    attn, (g1, b1), ffn, (g2, b2) = _split(params, (N_ATTENTION, 2, N_FFN, 2))
    e = x.shape[-1]
    _ln_check("encoder_layer", e, g1, b1)
    _ln_check("encoder_layer", e, g2, b2)
    _ffn_check("encoder_layer", e, *ffn)
    opts = (n_heads, key_mask, causal, scale_rule)
    return [(*_self_attention(attn, opts), g1, b1), (*_feed_forward(ffn, activation), g2, b2)]


def encoder_layer(
    x: np.ndarray,
    *params: np.ndarray,
    n_heads: int = 1,
    key_mask: np.ndarray | None = None,
    causal: bool = False,
    activation: str = "relu",
    eps: float = 1e-5,
    norm_first: bool = False,
    scale_rule: str = "1/sqrt(d)",
) -> np.ndarray:
    """Post-LN (the notes'): h' = LN1(x + MHA(x)), out = LN2(h' + FF(h')).
    Pre-LN (norm_first): h' = x + MHA(LN1(x)), out = h' + FF(LN2(h')). x (..., T, E)."""
    stack = _encoder_stack(x, params, n_heads, key_mask, causal, activation, scale_rule)
    return _stack_forward(x, stack, eps, norm_first)[0]


def encoder_layer_vjp(
    dout: np.ndarray,
    x: np.ndarray,
    *params: np.ndarray,
    n_heads: int = 1,
    key_mask: np.ndarray | None = None,
    causal: bool = False,
    activation: str = "relu",
    eps: float = 1e-5,
    norm_first: bool = False,
    scale_rule: str = "1/sqrt(d)",
) -> tuple[np.ndarray, ...]:
    """(dx, then one gradient per parameter in the order of encoder_layer)."""
    stack = _encoder_stack(x, params, n_heads, key_mask, causal, activation, scale_rule)
    dx, grads, _ = _stack_vjp(dout, x, stack, eps, norm_first)
    return (dx, *grads)


def pre_ln_encoder_layer(x: np.ndarray, *params: np.ndarray, **options) -> np.ndarray:
    """The pre-LN block (ViT's Z' = MSA(LN(Z)) + Z, Z = MLP(LN(Z')) + Z'; GPT-2's with causal):
    encoder_layer with norm_first=True, as its own op so that an adapter can offer both."""
    return encoder_layer(x, *params, **options, norm_first=True)


def pre_ln_encoder_layer_vjp(dout, x, *params, **options):
    return encoder_layer_vjp(dout, x, *params, **options, norm_first=True)


N_DECODER = N_ATTENTION + 2 + N_ATTENTION + 2 + N_FFN + 2


def _decoder_stack(y, memory, params, options):
    n_heads, causal, tgt_key_mask, memory_key_mask, activation, scale_rule = options
    _check("decoder_layer", y, params, N_DECODER, activation)
    if memory.ndim < 2 or memory.shape[-1] != y.shape[-1]:
        raise ValueError(f"decoder_layer: memory {memory.shape} must be (..., Tk, E={y.shape[-1]})")
    sa, (g1, b1), ca, (g2, b2), ffn, (g3, b3) = _split(
        params, (N_ATTENTION, 2, N_ATTENTION, 2, N_FFN, 2)
    )
    e = y.shape[-1]
    for g, b in ((g1, b1), (g2, b2), (g3, b3)):
        _ln_check("decoder_layer", e, g, b)
    _ffn_check("decoder_layer", e, *ffn)
    self_opts = (n_heads, tgt_key_mask, causal, scale_rule)
    cross_opts = (n_heads, memory_key_mask, False, scale_rule)
    return [
        (*_self_attention(sa, self_opts), g1, b1),
        (*_cross_attention(memory, ca, cross_opts), g2, b2),
        (*_feed_forward(ffn, activation), g3, b3),
    ]


def decoder_layer(
    y: np.ndarray,
    memory: np.ndarray,
    *params: np.ndarray,
    n_heads: int = 1,
    causal: bool = True,
    tgt_key_mask: np.ndarray | None = None,
    memory_key_mask: np.ndarray | None = None,
    activation: str = "relu",
    eps: float = 1e-5,
    norm_first: bool = False,
    scale_rule: str = "1/sqrt(d)",
) -> np.ndarray:
    """Post-LN: h1 = LN1(y + MaskedSelfAttn(y)), h2 = LN2(h1 + CrossAttn(h1, memory)),
    out = LN3(h2 + FF(h2)); pre-LN (norm_first) puts each LN on the sublayer's input instead.
    y (..., Tq, E) decoder tokens; memory (..., Tk, E) the encoder's output."""
    options = (n_heads, causal, tgt_key_mask, memory_key_mask, activation, scale_rule)
    return _stack_forward(y, _decoder_stack(y, memory, params, options), eps, norm_first)[0]


def decoder_layer_vjp(
    dout: np.ndarray,
    y: np.ndarray,
    memory: np.ndarray,
    *params: np.ndarray,
    n_heads: int = 1,
    causal: bool = True,
    tgt_key_mask: np.ndarray | None = None,
    memory_key_mask: np.ndarray | None = None,
    activation: str = "relu",
    eps: float = 1e-5,
    norm_first: bool = False,
    scale_rule: str = "1/sqrt(d)",
) -> tuple[np.ndarray, ...]:
    """(dy, dmemory, then one gradient per parameter in the order of decoder_layer)."""
    options = (n_heads, causal, tgt_key_mask, memory_key_mask, activation, scale_rule)
    stack = _decoder_stack(y, memory, params, options)
    dy, grads, (dmemory,) = _stack_vjp(dout, y, stack, eps, norm_first)
    return (dy, dmemory, *grads)


def pre_ln_decoder_layer(y: np.ndarray, memory: np.ndarray, *params, **options) -> np.ndarray:
    """decoder_layer with norm_first=True (torch's norm_first decoder layer)."""
    return decoder_layer(y, memory, *params, **options, norm_first=True)


def pre_ln_decoder_layer_vjp(dout, y, memory, *params, **options):
    return decoder_layer_vjp(dout, y, memory, *params, **options, norm_first=True)
