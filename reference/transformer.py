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
from reference.attention import mha_with_vjp, sum_to
from reference.common import T, mm, store, weight_grad
from reference.norm import layer_norm_with_vjp

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
    return feed_forward_with_vjp(x, W_1, b_1, W_2, b_2, activation)[0]


def feed_forward_with_vjp(x, W_1, b_1, W_2, b_2, activation: str = "relu"):
    """(FF(x), dy -> (dx, dW_1, db_1, dW_2, db_2)): one forward, its activations saved."""
    pre = store(mm(x, W_1) + b_1)  # (..., T, F)
    hidden, hidden_vjp = activation_with_vjp(pre, activation)
    hidden = store(hidden)

    def pullback(dy: np.ndarray) -> tuple[np.ndarray, ...]:
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

    return mm(hidden, W_2) + b_2, pullback


def feed_forward_vjp(dy, x, W_1, b_1, W_2, b_2, activation: str = "relu"):
    """(dx, dW_1, db_1, dW_2, db_2)."""
    return feed_forward_with_vjp(x, W_1, b_1, W_2, b_2, activation)[1](dy)


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
    """An attention sublayer's (output, pullback -> (dx_q, dx_kv, *parameter gradients))."""
    out, pullback = mha_with_vjp(
        x_q, x_kv, *attn, n_heads=n_heads, key_mask=key_mask, causal=causal,
        scale_rule=scale_rule,
    )  # fmt: skip
    return store(out), pullback


# A layer is a stack of residual sublayers, each (f_with_vjp, gamma, beta):
#   post-LN (the notes'):  x <- LN(x + f(x))        pre-LN (norm_first):  x <- x + f(LN(x))
# f_with_vjp(h) -> (f(h), pullback), pullback(dy) -> (dh, parameter gradients, gradient of
# another input such as the decoder's memory, or None). One forward walks the stack and keeps
# each sublayer's and each LayerNorm's pullback (their saved activations) for the backward.


def _identity(a: np.ndarray) -> np.ndarray:
    return a


def _stack_with_vjp(x, sublayers, eps, norm_first):
    """(output, dout -> (dx, per sublayer (*parameter gradients, dgamma, dbeta) flattened, the
    other inputs' gradients))."""
    pullbacks = []
    for k, (f_with_vjp, g, b) in enumerate(sublayers):
        keep = store if k < len(sublayers) - 1 else _identity  # the output is not stored
        if norm_first:
            n, ln_pullback = layer_norm_with_vjp(x, g, b, eps)
            fx, f_pullback = f_with_vjp(store(n))
            x = keep(x + fx)
        else:
            fx, f_pullback = f_with_vjp(x)
            y, ln_pullback = layer_norm_with_vjp(store(x + fx), g, b, eps)
            x = keep(y)
        pullbacks.append((f_pullback, ln_pullback))

    def pullback(dout: np.ndarray):
        d, grads, others = dout, [], []
        for k in reversed(range(len(sublayers))):
            f_pullback, ln_pullback = pullbacks[k]
            keep = store if k > 0 else _identity  # dx is returned, not stored
            if norm_first:  # out = h + f(n), n = LN(h)
                dn, dparams, other = f_pullback(d)
                dh_ln, dg, db = ln_pullback(store(dn))
                d = keep(d + store(dh_ln))
            else:  # out = LN(z), z = h + f(h)
                dz, dg, db = ln_pullback(d)
                dz = store(dz)
                dh_f, dparams, other = f_pullback(dz)
                d = keep(dz + store(dh_f))
            grads[:0] = [*dparams, dg, db]
            if other is not None:
                others.append(other)
        return d, grads, others

    return x, pullback


def _self_attention(attn, opts):
    def f_with_vjp(h):
        out, pullback = _attend(h, h, attn, *opts)

        def f_pullback(dy):
            dq, dkv, *dattn = pullback(dy)
            return dq + dkv, dattn, None

        return out, f_pullback

    return f_with_vjp


def _cross_attention(memory, attn, opts):
    def f_with_vjp(h):
        out, pullback = _attend(h, memory, attn, *opts)

        def f_pullback(dy):
            dq, dmemory, *dattn = pullback(dy)
            return dq, dattn, dmemory

        return out, f_pullback

    return f_with_vjp


def _feed_forward(ffn, activation):
    def f_with_vjp(h):
        out, pullback = feed_forward_with_vjp(h, *ffn, activation)

        def f_pullback(dy):
            dh, *dffn = pullback(dy)
            return dh, dffn, None

        return store(out), f_pullback

    return f_with_vjp


def _encoder_stack(x, params, n_heads, key_mask, causal, activation, scale_rule):
    _check("encoder_layer", x, params, N_ATTENTION + 2 + N_FFN + 2, activation)
    attn, (g1, b1), ffn, (g2, b2) = _split(params, (N_ATTENTION, 2, N_FFN, 2))
    e = x.shape[-1]
    _ln_check("encoder_layer", e, g1, b1)
    _ln_check("encoder_layer", e, g2, b2)
    _ffn_check("encoder_layer", e, *ffn)
    opts = (n_heads, key_mask, causal, scale_rule)
    return [(_self_attention(attn, opts), g1, b1), (_feed_forward(ffn, activation), g2, b2)]


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
    return encoder_layer_with_vjp(
        x, *params, n_heads=n_heads, key_mask=key_mask, causal=causal, activation=activation,
        eps=eps, norm_first=norm_first, scale_rule=scale_rule,
    )[0]  # fmt: skip


def encoder_layer_with_vjp(
    x: np.ndarray,
    *params: np.ndarray,
    n_heads: int = 1,
    key_mask: np.ndarray | None = None,
    causal: bool = False,
    activation: str = "relu",
    eps: float = 1e-5,
    norm_first: bool = False,
    scale_rule: str = "1/sqrt(d)",
):
    """(encoder_layer(x, ...), dout -> (dx, then one gradient per parameter in the order of
    encoder_layer)): one forward, every sublayer's activations saved for the pullback."""
    stack = _encoder_stack(x, params, n_heads, key_mask, causal, activation, scale_rule)
    out, stack_pullback = _stack_with_vjp(x, stack, eps, norm_first)

    def pullback(dout: np.ndarray) -> tuple[np.ndarray, ...]:
        dx, grads, _ = stack_pullback(dout)
        return (dx, *grads)

    return out, pullback


def encoder_layer_vjp(dout: np.ndarray, x: np.ndarray, *params, **options):
    """(dx, then one gradient per parameter in the order of encoder_layer)."""
    return encoder_layer_with_vjp(x, *params, **options)[1](dout)


def pre_ln_encoder_layer(x: np.ndarray, *params: np.ndarray, **options) -> np.ndarray:
    """The pre-LN block (ViT's Z' = MSA(LN(Z)) + Z, Z = MLP(LN(Z')) + Z'; GPT-2's with causal):
    encoder_layer with norm_first=True, as its own op so that an adapter can offer both."""
    return encoder_layer(x, *params, **options, norm_first=True)


def pre_ln_encoder_layer_with_vjp(x: np.ndarray, *params: np.ndarray, **options):
    return encoder_layer_with_vjp(x, *params, **options, norm_first=True)


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
        (_self_attention(sa, self_opts), g1, b1),
        (_cross_attention(memory, ca, cross_opts), g2, b2),
        (_feed_forward(ffn, activation), g3, b3),
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
    return decoder_layer_with_vjp(
        y, memory, *params, n_heads=n_heads, causal=causal, tgt_key_mask=tgt_key_mask,
        memory_key_mask=memory_key_mask, activation=activation, eps=eps, norm_first=norm_first,
        scale_rule=scale_rule,
    )[0]  # fmt: skip


def decoder_layer_with_vjp(
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
):
    """(decoder_layer(y, memory, ...), dout -> (dy, dmemory, then one gradient per parameter in
    the order of decoder_layer)): one forward, its activations saved for the pullback."""
    options = (n_heads, causal, tgt_key_mask, memory_key_mask, activation, scale_rule)
    stack = _decoder_stack(y, memory, params, options)
    out, stack_pullback = _stack_with_vjp(y, stack, eps, norm_first)

    def pullback(dout: np.ndarray) -> tuple[np.ndarray, ...]:
        dy, grads, (dmemory,) = stack_pullback(dout)
        return (dy, dmemory, *grads)

    return out, pullback


def decoder_layer_vjp(dout: np.ndarray, y: np.ndarray, memory: np.ndarray, *params, **options):
    """(dy, dmemory, then one gradient per parameter in the order of decoder_layer)."""
    return decoder_layer_with_vjp(y, memory, *params, **options)[1](dout)


def pre_ln_decoder_layer(y: np.ndarray, memory: np.ndarray, *params, **options) -> np.ndarray:
    """decoder_layer with norm_first=True (torch's norm_first decoder layer)."""
    return decoder_layer(y, memory, *params, **options, norm_first=True)


def pre_ln_decoder_layer_with_vjp(y: np.ndarray, memory: np.ndarray, *params, **options):
    return decoder_layer_with_vjp(y, memory, *params, **options, norm_first=True)


def pre_ln_decoder_layer_vjp(dout, y, memory, *params, **options):
    return decoder_layer_vjp(dout, y, memory, *params, **options, norm_first=True)
