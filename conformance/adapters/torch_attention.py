"""PyTorch ops of the attention family (multi-head attention, positional encodings, transformer
layers, linear attention) on tensors in nnspec's canonical layout (see reference/attention.py,
positional.py, transformer.py, linear_attention.py).

The layers run the real torch modules: nn.MultiheadAttention, nn.TransformerEncoderLayer and
nn.TransformerDecoderLayer, built in the input's dtype and device (dropout=0, eval mode) and
called through torch.func.functional_call with nnspec's arrays mapped to their parameters, so
autograd reaches the canonical weights. Modules are cached per configuration; nothing is
imported at module import time.

Layout mapping (the traps, see shared CONVENTIONS):
- torch's Linear computes x W^T: nnspec's W (in, out) becomes weight = W^T (out, in).
- nn.MultiheadAttention packs W_Q, W_K, W_V into in_proj_weight (3E, E) when the key/value width
  equals E, and keeps q/k/v_proj_weight apart otherwise (kdim/vdim); in_proj_bias (3E) always
  holds [b_q, b_k, b_v], with b_k = 0 where nnspec passes none.
- torch's boolean attn_mask and key_padding_mask are True where attention is NOT allowed: the
  opposite of nnspec's (True = may attend, like torch SDPA's). They are inverted here. A 3-D
  attn_mask is (N * num_heads, Tq, Tk), batch-major; nnspec's leading dims are folded into N.
- nn.MultiheadAttention in eval mode without autograd takes its "fast path"
  (torch._native_multi_head_attention) for self-attention with an even number of heads;
  nn.TransformerEncoderLayer likewise (torch._transformer_encoder_layer_fwd) for relu/gelu. The
  value checks run without autograd and pass the same tensor as query, key and value when x_q
  and x_kv hold the same values, so both paths are exercised; gradients take the slow path.
- GELU's tanh form is passed to the layers as a callable (functools.partial(F.gelu,
  approximate="tanh")), which also disables the encoder's fast path for it.
- Positional encodings: torch has no sinusoidal module; `positional` is written after the
  PyTorch tutorial's PositionalEncoding (interleaved: pe[:, 0::2] = sin, pe[:, 1::2] = cos), its
  table built in float64 and cast to the input's dtype, with the angle pos / 10000^(2k/D). The
  tutorial builds its table in float32 (a float64 model would carry float32 error) with
  div_term = exp(arange(0, D, 2) * -ln(10000) / D): in float64 that form was 1.1e-15 off at
  position 59 (D = 12), past the 4-ulp floor an exact formula meets.
- Linear attention: torch has none; each form is written with torch ops (the paper's
  elu(x) + 1 feature map, no eps: nnspec's canonical normalizer), computing in float32 for
  float16/bfloat16 inputs like a fused kernel (op by op in float16 the N x N matrix and the
  running sums are rounded at every step: 2-3x the error of nnspec's honest-kernel model on the
  gradients with respect to q, diagnosed "imprecise").
"""

from __future__ import annotations

import functools
import math

from conformance.adapters import autograd

_cached = autograd.module_cache()


def _batch_shape(*shapes) -> tuple[int, ...]:
    import torch

    return tuple(torch.broadcast_shapes(*shapes))


def _fold(t, batch: tuple[int, ...], tail: tuple[int, ...]):
    """Broadcast t to (*batch, *tail) and fold the batch dims into one: (N, *tail)."""
    return t.expand(*batch, *tail).reshape(math.prod(batch), *tail)


def _grad_free(*tensors) -> bool:
    import torch

    return not torch.is_grad_enabled() or not any(t.requires_grad for t in tensors)


def _same(a, b) -> bool:
    """a and b hold the same values (and neither needs its own gradient)."""
    import torch

    return a.shape == b.shape and _grad_free(a, b) and bool(torch.equal(a, b))


def _activation(name: str):
    import torch.nn.functional as F

    if name in ("relu", "gelu"):
        return name  # the strings keep the encoder layer's fast path available
    if name == "gelu_tanh":
        return functools.partial(F.gelu, approximate="tanh")
    raise ValueError(f"activation {name!r} is not relu, gelu or gelu_tanh")


# -- nn.MultiheadAttention -----------------------------------------------------------------------


def _attention_params(prefix: str, W_Q, W_K, W_V, W_O, b_q, b_v, b_o, b_k=None, packed=True):
    """nnspec's attention arrays as nn.MultiheadAttention's parameters."""
    import torch

    zeros = torch.zeros_like(b_q) if b_k is None else b_k
    params = {
        f"{prefix}in_proj_bias": torch.cat([b_q, zeros, b_v]),
        f"{prefix}out_proj.weight": W_O.T,
        f"{prefix}out_proj.bias": b_o,
    }
    if packed:
        params[f"{prefix}in_proj_weight"] = torch.cat([W_Q.T, W_K.T, W_V.T])
    else:
        params[f"{prefix}q_proj_weight"] = W_Q.T
        params[f"{prefix}k_proj_weight"] = W_K.T
        params[f"{prefix}v_proj_weight"] = W_V.T
    return params


def _torch_masks(mask, key_mask, causal: bool, batch, n_heads: int, tq: int, tk: int, device):
    """(attn_mask, key_padding_mask) in torch's polarity (True = NOT allowed), or None."""
    import torch

    allowed = None
    if causal:
        allowed = torch.ones(tq, tk, dtype=torch.bool, device=device).tril()
    if mask is not None:
        allowed = mask if allowed is None else mask & allowed
    attn_mask = None
    if allowed is not None:
        if allowed.dim() == 2 and len(batch) == 0:
            attn_mask = ~allowed
        else:
            folded = _fold(allowed, batch, (tq, tk))  # (N, Tq, Tk)
            attn_mask = ~folded.repeat_interleave(n_heads, dim=0)  # (N * H, Tq, Tk)
    key_padding_mask = None if key_mask is None else ~_fold(key_mask, batch, (tk,))
    return attn_mask, key_padding_mask


def _float_masks(attn_bias, attn_mask, key_padding_mask, batch, n_heads, tq, tk, dtype):
    """A float attn_mask is added to the scores (the opposite of a boolean one, which hides the
    True entries); torch wants both masks float when one is: hidden entries become -inf."""
    lead = math.prod(batch)
    bias = attn_bias.to(dtype).expand(*batch, n_heads, tq, tk).reshape(lead * n_heads, tq, tk)
    if attn_mask is not None:
        bias = bias.masked_fill(attn_mask, float("-inf"))
    if key_padding_mask is not None:
        zeros = key_padding_mask.new_zeros(key_padding_mask.shape, dtype=dtype)
        key_padding_mask = zeros.masked_fill(key_padding_mask, float("-inf"))
    return bias, key_padding_mask


def _mha_module(e: int, e_kv: int, n_heads: int, dtype, device):
    import torch

    def build():
        kv = None if e_kv == e else e_kv
        module = torch.nn.MultiheadAttention(
            e, n_heads, dropout=0.0, bias=True, kdim=kv, vdim=kv, batch_first=True
        )
        return module.to(device=device, dtype=dtype).eval()

    return _cached(("mha", e, e_kv, n_heads, dtype, str(device)), build)


def mha(
    x_q,
    x_kv,
    W_Q,
    W_K,
    W_V,
    W_O,
    b_q,
    b_v,
    b_o,
    n_heads=1,
    mask=None,
    key_mask=None,
    causal=False,
    b_k=None,
    attn_bias=None,
):
    from torch.func import functional_call

    e, e_kv = W_Q.shape[1], x_kv.shape[-1]
    tq, tk = x_q.shape[-2], x_kv.shape[-2]
    shapes = [x_q.shape[:-2], x_kv.shape[:-2]]
    shapes += [] if mask is None else [mask.shape[:-2]]
    shapes += [] if key_mask is None else [key_mask.shape[:-1]]
    batch = _batch_shape(*shapes)
    module = _mha_module(e, e_kv, n_heads, x_q.dtype, x_q.device)
    params = _attention_params("", W_Q, W_K, W_V, W_O, b_q, b_v, b_o, b_k, packed=e_kv == e)
    attn_mask, key_padding_mask = _torch_masks(
        mask, key_mask, causal, batch, n_heads, tq, tk, x_q.device
    )
    if attn_bias is not None:
        attn_mask, key_padding_mask = _float_masks(
            attn_bias, attn_mask, key_padding_mask, batch, n_heads, tq, tk, x_q.dtype
        )
    query = _fold(x_q, batch, (tq, x_q.shape[-1]))
    key = query if _same(x_q, x_kv) else _fold(x_kv, batch, (tk, e_kv))  # fast path eligible
    out, _ = functional_call(
        module,
        params,
        (query, key, key),
        {"key_padding_mask": key_padding_mask, "attn_mask": attn_mask, "need_weights": False},
    )
    return out.reshape(*batch, tq, out.shape[-1])


# -- nn.TransformerEncoderLayer / nn.TransformerDecoderLayer -------------------------------------


def _layer_params(kind: str, params: tuple) -> dict:
    """nnspec's parameter tuple (reference.transformer's order) as the layer's state dict."""
    attn = ("W_Q", "W_K", "W_V", "W_O", "b_q", "b_v", "b_o")
    if kind == "encoder":
        names = (*(f"sa.{a}" for a in attn), "norm1.weight", "norm1.bias", "W_1", "b_1", "W_2")
        names += ("b_2", "norm2.weight", "norm2.bias")
    else:
        names = (*(f"sa.{a}" for a in attn), "norm1.weight", "norm1.bias")
        names += (*(f"ca.{a}" for a in attn), "norm2.weight", "norm2.bias")
        names += ("W_1", "b_1", "W_2", "b_2", "norm3.weight", "norm3.bias")
    if len(params) != len(names):
        raise ValueError(f"{kind} layer: expected {len(names)} parameter arrays, got {len(params)}")
    p = dict(zip(names, params, strict=True))
    state = _attention_params("self_attn.", *(p[f"sa.{a}"] for a in attn))
    if kind == "decoder":
        state |= _attention_params("multihead_attn.", *(p[f"ca.{a}"] for a in attn))
    state |= {
        "linear1.weight": p["W_1"].T,
        "linear1.bias": p["b_1"],
        "linear2.weight": p["W_2"].T,
        "linear2.bias": p["b_2"],
    }
    state |= {k: v for k, v in p.items() if k.startswith("norm")}
    return state


def _layer_module(kind, e, n_heads, d_ff, activation, eps, norm_first, dtype, device):
    import torch

    def build():
        cls = (
            torch.nn.TransformerEncoderLayer
            if kind == "encoder"
            else torch.nn.TransformerDecoderLayer
        )
        module = cls(
            e,
            n_heads,
            dim_feedforward=d_ff,
            dropout=0.0,
            activation=_activation(activation),
            layer_norm_eps=eps,
            batch_first=True,
            norm_first=norm_first,
        )
        return module.to(device=device, dtype=dtype).eval()

    key = (kind, e, n_heads, d_ff, activation, eps, norm_first, dtype, str(device))
    return _cached(key, build)


def _encoder(
    x,
    *params,
    n_heads=1,
    key_mask=None,
    causal=False,
    activation="relu",
    eps=1e-5,
    norm_first=False,
):
    import torch
    from torch.func import functional_call

    t, e = x.shape[-2:]
    batch = _batch_shape(x.shape[:-2], *([] if key_mask is None else [key_mask.shape[:-1]]))
    d_ff = params[11].shape[-1]  # W_1 (E, F)
    module = _layer_module(
        "encoder", e, n_heads, d_ff, activation, eps, norm_first, x.dtype, x.device
    )
    src_mask = None
    if causal:  # torch's polarity: True = not allowed
        src_mask = ~torch.ones(t, t, dtype=torch.bool, device=x.device).tril()
    padding = None if key_mask is None else ~_fold(key_mask, batch, (t,))
    out = functional_call(
        module,
        _layer_params("encoder", params),
        (_fold(x, batch, (t, e)),),
        {"src_mask": src_mask, "src_key_padding_mask": padding, "is_causal": causal},
    )
    return out.reshape(*batch, t, e)


def encoder_layer(x, *params, **options):
    return _encoder(x, *params, **options, norm_first=False)


def pre_ln_encoder_layer(x, *params, **options):
    return _encoder(x, *params, **options, norm_first=True)


def _decoder(
    y,
    memory,
    *params,
    n_heads=1,
    causal=True,
    tgt_key_mask=None,
    memory_key_mask=None,
    activation="relu",
    eps=1e-5,
    norm_first=False,
):
    import torch
    from torch.func import functional_call

    t, e = y.shape[-2:]
    tk = memory.shape[-2]
    shapes = [y.shape[:-2], memory.shape[:-2]]
    shapes += [] if tgt_key_mask is None else [tgt_key_mask.shape[:-1]]
    shapes += [] if memory_key_mask is None else [memory_key_mask.shape[:-1]]
    batch = _batch_shape(*shapes)
    d_ff = params[20].shape[-1]  # W_1 (E, F)
    module = _layer_module(
        "decoder", e, n_heads, d_ff, activation, eps, norm_first, y.dtype, y.device
    )
    tgt_mask = None
    if causal:
        tgt_mask = ~torch.ones(t, t, dtype=torch.bool, device=y.device).tril()
    out = functional_call(
        module,
        _layer_params("decoder", params),
        (_fold(y, batch, (t, e)), _fold(memory, batch, (tk, e))),
        {
            "tgt_mask": tgt_mask,
            "tgt_key_padding_mask": None
            if tgt_key_mask is None
            else ~_fold(tgt_key_mask, batch, (t,)),
            "memory_key_padding_mask": None
            if memory_key_mask is None
            else ~_fold(memory_key_mask, batch, (tk,)),
            "tgt_is_causal": causal,
        },
    )
    return out.reshape(*batch, t, e)


def decoder_layer(y, memory, *params, **options):
    return _decoder(y, memory, *params, **options, norm_first=False)


def pre_ln_decoder_layer(y, memory, *params, **options):
    return _decoder(y, memory, *params, **options, norm_first=True)


# -- sinusoidal positional encoding (the PyTorch tutorial's) ------------------------------------


def positional(x, offset=0, combine="add"):
    import torch

    t, d = x.shape[-2:]
    if d % 2:
        raise ValueError(f"positional: the width D={d} must be even")
    f64 = {"dtype": torch.float64, "device": x.device}
    position = torch.arange(offset, offset + t, **f64).unsqueeze(1)  # (T, 1)
    # Vaswani et al.'s pos / 10000^(2k/D); see the module docstring for the tutorial's exp form.
    angle = position / torch.pow(10000.0, torch.arange(0, d, 2, **f64) / d)  # (T, D/2)
    pe = torch.zeros(t, d, **f64)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle)
    pe = pe.to(x.dtype)
    if combine == "add":
        return x + pe
    if combine == "concat":
        return torch.cat([x, pe.expand(x.shape)], dim=-1)
    raise ValueError(f"positional: combine {combine!r} is not 'add' or 'concat'")


# -- linear attention, three forms -------------------------------------------------------------


def _phi(x, feature_map: str):
    import torch.nn.functional as F

    if feature_map == "elu+1":
        return F.elu(x) + 1
    if feature_map == "relu":
        return F.relu(x)
    raise ValueError(f"feature_map {feature_map!r} is not elu+1 or relu")


def _in_float32(form):
    """Run a form in float32 for float16/bfloat16 inputs and round the result back, as a fused
    kernel accumulating in float32 would; op by op in float16 every intermediate (the N x N
    matrix, the running sums) is rounded, which nnspec diagnoses as 'imprecise'."""

    @functools.wraps(form)
    def run(q, k, v, **options):
        import torch

        low = q.dtype in (torch.float16, torch.bfloat16)
        if not low:
            return form(q, k, v, **options)
        return form(q.float(), k.float(), v.float(), **options).to(q.dtype)

    return run


@_in_float32
def linear_attention_quadratic(q, k, v, causal=False, feature_map="elu+1"):
    import torch

    A = _phi(q, feature_map) @ _phi(k, feature_map).transpose(-1, -2)  # (..., Nq, Nk)
    if causal:
        A = A * torch.ones(A.shape[-2:], dtype=A.dtype, device=A.device).tril()
    return (A @ v) / A.sum(dim=-1, keepdim=True)


@_in_float32
def linear_attention(q, k, v, feature_map="elu+1"):
    P, R = _phi(q, feature_map), _phi(k, feature_map)
    S = R.transpose(-1, -2) @ v  # (..., d_k, d_v)
    z = R.sum(dim=-2).unsqueeze(-1)  # (..., d_k, 1)
    return (P @ S) / (P @ z)


@_in_float32
def linear_attention_causal(q, k, v, feature_map="elu+1"):
    """The recurrence, one position at a time: S_i = S_{i-1} + φ(k_i) v_i^T,
    z_i = z_{i-1} + φ(k_i)."""
    import torch

    P, R = _phi(q, feature_map), _phi(k, feature_map)
    batch = torch.broadcast_shapes(P.shape[:-2], R.shape[:-2], v.shape[:-2])
    S = torch.zeros(*batch, R.shape[-1], v.shape[-1], dtype=v.dtype, device=v.device)
    z = torch.zeros(*batch, R.shape[-1], dtype=R.dtype, device=R.device)
    outs = []
    for i in range(P.shape[-2]):
        S = S + R[..., i, :, None] * v[..., i, None, :]
        z = z + R[..., i, :]
        p = P[..., i, :]
        outs.append((p.unsqueeze(-2) @ S).squeeze(-2) / (p * z).sum(-1, keepdim=True))
    return torch.stack(outs, dim=-2)


OPS = {
    "mha": mha,
    "positional": positional,
    "encoder_layer": encoder_layer,
    "pre_ln_encoder_layer": pre_ln_encoder_layer,
    "decoder_layer": decoder_layer,
    "pre_ln_decoder_layer": pre_ln_decoder_layer,
    "linear_attention": linear_attention,
    "linear_attention_quadratic": linear_attention_quadratic,
    "linear_attention_causal": linear_attention_causal,
}
