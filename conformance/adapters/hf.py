"""HF transformers adapter ("hf-transformers"): the library's own layers, built from tiny
configs with random weights (no hub download: from a config only), with nnspec's canonical
arrays mapped onto their parameters through torch.func.functional_call, so autograd reaches
the canonical weights (gradients from conformance.adapters.autograd).

Ops:
  encoder_layer         transformers.models.bert.BertLayer: post-LN (LN(h + Attn(h)), then
                        LN(h' + FF(h'))), the canonical layer of the notes.
  pre_ln_encoder_layer  transformers.models.gpt2.GPT2Block: pre-LN. Its causality lives in the
                        mask GPT2Model builds (or, given no mask, in the attention's is_causal):
                        causal=True passes GPT-2's causal mask, causal=False an all-visible one
                        (the block used bidirectionally, as a ViT-style pre-LN block).
  positional            transformers.models.marian.MarianSinusoidalPositionalEmbedding: the
                        concatenated layout (all sines, then all cosines), a declared variant.

Mapping notes:
- Activations are the config's hidden_act / activation_function: nnspec "relu" -> "relu",
  "gelu" (exact, x Φ(x)) -> "gelu" (BERT's default), "gelu_tanh" -> "gelu_new" (GPT-2's
  default). LayerNorm eps is the op's eps option -> layer_norm_eps (BERT's default 1e-12) /
  layer_norm_epsilon (GPT-2's 1e-5), so no variant is needed.
- BERT's nn.Linear computes x W^T (weight = W^T); GPT-2's Conv1D computes x W + b with
  weight (in, out), nnspec's own layout, and packs [W_Q, W_K, W_V] along the output axis in
  c_attn. Both have a key bias, set to zero (nnspec's layer ops have none).
- The attention mask is the additive (B, 1, Tq, Tk) float mask the HF models build: 0 where a
  query may attend, torch.finfo(dtype).min elsewhere (key padding, and GPT-2's causal mask).
  The layers run with attn_implementation="sdpa" (the HF default), eval mode, dropout 0.
- Marian's table is computed with NumPy in float64 and stored through torch.FloatTensor, i.e.
  rounded to float32 whatever the module's dtype (see xfails).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from conformance.adapters import autograd, hf_language, torch_attention, vision_libs
from conformance.adapters.pytorch import TorchCPU
from conformance.adapters.torch_norm import LAYER_NORM_XFAILS

HF_ACTIVATIONS = {
    "relu": ("relu", "relu"),
    "gelu": ("gelu", "gelu"),
    "gelu_tanh": ("gelu_new", "gelu_new"),
}

_cached = autograd.module_cache()
_fold = torch_attention._fold


def _additive_mask(key_mask, causal: bool, batch, tq: int, tk: int, dtype, device):
    """HF's 4-D additive mask (N, 1, Tq, Tk): 0 = may attend, finfo.min = hidden; or None."""
    import torch

    allowed = None
    if causal:
        allowed = torch.ones(tq, tk, dtype=torch.bool, device=device).tril()
    if key_mask is not None:
        keys = _fold(key_mask, batch, (tk,))[:, None, None, :]  # (N, 1, 1, Tk)
        allowed = keys if allowed is None else keys & allowed
    if allowed is None:
        return None
    allowed = allowed.expand(math.prod(batch), 1, tq, tk)
    zero = torch.zeros((), dtype=dtype, device=device)
    return torch.where(allowed, zero, torch.finfo(dtype).min)


def _split_params(params):
    if len(params) != 15:
        raise ValueError(f"encoder layer: expected 15 parameter arrays, got {len(params)}")
    return params[:7], params[7:9], params[9:13], params[13:15]


def bert_layer(x, *params, n_heads=1, key_mask=None, causal=False, activation="relu", eps=1e-5):
    import torch
    from torch.func import functional_call
    from transformers import BertConfig
    from transformers.models.bert.modeling_bert import BertLayer

    (W_Q, W_K, W_V, W_O, b_q, b_v, b_o), (g1, be1), (W_1, b_1, W_2, b_2), (g2, be2) = _split_params(
        params
    )
    t, e = x.shape[-2:]
    d_ff = W_1.shape[-1]
    hidden_act = HF_ACTIVATIONS[activation][0]

    def build():
        config = BertConfig(
            hidden_size=e,
            num_attention_heads=n_heads,
            intermediate_size=d_ff,
            hidden_act=hidden_act,
            layer_norm_eps=eps,
            hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0,
            attn_implementation="sdpa",
        )
        return BertLayer(config).to(dtype=x.dtype, device=x.device).eval()

    module = _cached(("bert", e, n_heads, d_ff, hidden_act, eps, x.dtype, str(x.device)), build)
    state = {
        "attention.self.query.weight": W_Q.T,
        "attention.self.query.bias": b_q,
        "attention.self.key.weight": W_K.T,
        "attention.self.key.bias": torch.zeros_like(b_q),
        "attention.self.value.weight": W_V.T,
        "attention.self.value.bias": b_v,
        "attention.output.dense.weight": W_O.T,
        "attention.output.dense.bias": b_o,
        "attention.output.LayerNorm.weight": g1,
        "attention.output.LayerNorm.bias": be1,
        "intermediate.dense.weight": W_1.T,
        "intermediate.dense.bias": b_1,
        "output.dense.weight": W_2.T,
        "output.dense.bias": b_2,
        "output.LayerNorm.weight": g2,
        "output.LayerNorm.bias": be2,
    }
    batch = tuple(
        torch.broadcast_shapes(x.shape[:-2], *([] if key_mask is None else [key_mask.shape[:-1]]))
    )
    mask = _additive_mask(key_mask, causal, batch, t, t, x.dtype, x.device)
    out = functional_call(module, state, (_fold(x, batch, (t, e)),), {"attention_mask": mask})
    out = out[0] if isinstance(out, tuple) else out
    return out.reshape(*batch, t, e)


def gpt2_block(x, *params, n_heads=1, key_mask=None, causal=False, activation="relu", eps=1e-5):
    import torch
    from torch.func import functional_call
    from transformers import GPT2Config
    from transformers.models.gpt2.modeling_gpt2 import GPT2Block

    (W_Q, W_K, W_V, W_O, b_q, b_v, b_o), (g1, be1), (W_1, b_1, W_2, b_2), (g2, be2) = _split_params(
        params
    )
    t, e = x.shape[-2:]
    d_ff = W_1.shape[-1]
    act = HF_ACTIVATIONS[activation][1]

    def build():
        config = GPT2Config(
            n_embd=e,
            n_head=n_heads,
            n_inner=d_ff,
            n_layer=1,
            activation_function=act,
            layer_norm_epsilon=eps,
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attn_pdrop=0.0,
            attn_implementation="sdpa",
        )
        return GPT2Block(config, layer_idx=0).to(dtype=x.dtype, device=x.device).eval()

    module = _cached(("gpt2", e, n_heads, d_ff, act, eps, x.dtype, str(x.device)), build)
    state = {
        "ln_1.weight": g1,
        "ln_1.bias": be1,
        "attn.c_attn.weight": torch.cat([W_Q, W_K, W_V], dim=1),  # Conv1D: (in, out)
        "attn.c_attn.bias": torch.cat([b_q, torch.zeros_like(b_q), b_v]),
        "attn.c_proj.weight": W_O,
        "attn.c_proj.bias": b_o,
        "ln_2.weight": g2,
        "ln_2.bias": be2,
        "mlp.c_fc.weight": W_1,
        "mlp.c_fc.bias": b_1,
        "mlp.c_proj.weight": W_2,
        "mlp.c_proj.bias": b_2,
    }
    batch = tuple(
        torch.broadcast_shapes(x.shape[:-2], *([] if key_mask is None else [key_mask.shape[:-1]]))
    )
    mask = _additive_mask(key_mask, causal, batch, t, t, x.dtype, x.device)
    if mask is None and not causal:
        # Without a mask GPT-2's attention applies its own causal mask (module.is_causal):
        # a bidirectional block needs an explicit all-visible one.
        mask = torch.zeros(math.prod(batch), 1, t, t, dtype=x.dtype, device=x.device)
    out = functional_call(module, state, (_fold(x, batch, (t, e)),), {"attention_mask": mask})
    out = out[0] if isinstance(out, tuple) else out
    return out.reshape(*batch, t, e)


def marian_positional(x, offset=0, combine="add"):
    import torch
    from transformers.models.marian.modeling_marian import MarianSinusoidalPositionalEmbedding

    t, d = x.shape[-2:]
    if d % 2:
        raise ValueError(f"positional: the width D={d} must be even")
    n_pos = offset + t

    def build():
        module = MarianSinusoidalPositionalEmbedding(n_pos, d)
        module = module.to(dtype=x.dtype, device=x.device)
        with torch.no_grad():  # what MarianPreTrainedModel._init_weights does
            module.weight.copy_(module.create_weight())
        return module

    module = _cached(("marian", n_pos, d, x.dtype, str(x.device)), build)
    pe = module((1, t), past_key_values_length=offset).to(x.dtype)  # (T, D)
    if combine == "add":
        return x + pe
    if combine == "concat":
        return torch.cat([x, pe.expand(x.shape)], dim=-1)
    raise ValueError(f"positional: combine {combine!r} is not 'add' or 'concat'")


HF_OPS = {
    "encoder_layer": bert_layer,
    "pre_ln_encoder_layer": gpt2_block,
    "positional": marian_positional,
    **hf_language.OPS,  # GPT-2 decoding: lm_next_logits, lm_generate_greedy/_sample
    **vision_libs.HF_OPS,  # ViTLayer, ViTModel, SwinLayer, SwinPatchMerging
}


class HFTransformers(TorchCPU):
    name = "hf-transformers"
    dtypes = ("float64", "float32", "bfloat16")
    ops: ClassVar[dict[str, Any]] = HF_OPS
    requires: ClassVar[tuple[str, ...]] = ("torch", "transformers")
    variants: ClassVar[dict[str, Any]] = {
        "positional.layout": "concatenated",
        **vision_libs.HF_VARIANTS,  # SwinLayer's shift rule
    }
    # Observed with transformers 5.23.0: MarianSinusoidalPositionalEmbedding.create_weight builds
    # the table in float64 NumPy, then stores it through torch.FloatTensor, so a float64 module
    # holds a float32-rounded table (error ~4e-8 where float64 allows ~1e-15).
    _MARIAN_F64 = (
        "Marian's sinusoidal table is rounded to float32 (torch.FloatTensor) even in a float64 "
        "module: relative error ~4e-8 (transformers 5.23.0)"
    )
    xfails: ClassVar[dict[str, str]] = {
        **LAYER_NORM_XFAILS,  # HF's blocks use nn.LayerNorm
        "positional/values/float64": _MARIAN_F64,
        "positional/table/float64": _MARIAN_F64,
        "positional/shift_is_rotation/float64": _MARIAN_F64,
        "positional/norm/float64": _MARIAN_F64,
        "positional/dot_depends_on_offset_only/float64": _MARIAN_F64,
    }

    def describe(self) -> dict[str, Any]:
        import torch
        import transformers

        return {
            "transformers": transformers.__version__,
            "torch": torch.__version__,
            "layers": {
                "encoder_layer": "BertLayer (sdpa)",
                "pre_ln_encoder_layer": "GPT2Block (sdpa)",
                "positional": "MarianSinusoidalPositionalEmbedding",
                "lm_generate_greedy": "GPT2LMHeadModel.generate (tiny, random)",
            },
        }
