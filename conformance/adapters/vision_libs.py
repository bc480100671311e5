"""timm and HF transformers vision layers (ViT, Swin) as ops in nnspec's canonical layout, for
the `timm` / `timm-cuda` adapters (TIMM_OPS, merged in conformance/adapters/thirdparty_se.py)
and the `hf-transformers` adapter (HF_OPS, merged in conformance/adapters/hf.py).

Every layer is the library's own module, built from a small config or constructor with random
weights (nothing is downloaded), with nnspec's arrays mapped onto its parameters through
torch.func.functional_call so that autograd reaches them.

timm 1.0:
  vit_block         timm.models.vision_transformer.Block (qkv_bias=True, LayerNorm eps option;
                    the MLP rebuilt as timm.layers.Mlp with nnspec's hidden width F: Block sizes
                    it int(D * mlp_ratio))
  vit               timm VisionTransformer(num_classes=0, global_pool='') forward_features:
                    [cls; patches] + pos_embed, blocks, final norm; (B, N + 1, D)
  window_attention  SwinTransformerBlock._attn (roll, pad, window partition, WindowAttention,
                    reverse, roll back) of a block built for the input's H x W
  swin_block        SwinTransformerBlock forward on (B, H, W, C)
  patch_merging     timm.models.swin_transformer.PatchMerging(C, out_dim)
  msa_macs,         FlopCounterMode (2 FLOPs per MAC, halved) around timm's own vit Attention
  w_msa_macs        over H W tokens, and around SwinTransformerBlock._attn without shift.
                    Both run with fused_attn = False: on CPU, FlopCounterMode counts 0 FLOPs for
                    F.scaled_dot_product_attention (torch 2.14), which timm calls by default,
                    so the attention products would go uncounted.
  timm rolls the map BEFORE it pads (SwinTransformerBlock._attn): declared as the variant
  swin.pad_order=shift_then_pad (nnspec's canonical order pads first, as the Swin detection
  code, torchvision and HF do). timm, like nnspec, does not shift along an axis whose size is
  at most the window; it also clamps a window larger than the map (nnspec refuses that input).

HF transformers 5.x:
  vit_block         models.vit.ViTLayer (layer_norm_eps = the op's eps; hidden_act "gelu")
  vit               models.vit.ViTModel(add_pooling_layer=False).last_hidden_state
  swin_block        models.swin.SwinLayer on (B, H W, C) with input_dimensions (H, W); the MLP
                    Linear layers are rebuilt with nnspec's hidden width. SwinLayer drops the
                    shift on BOTH axes (and clamps the window) as soon as min(H, W) <= M, and
                    keeps the clamped window for later calls: a fresh layer is built per map
                    size. On a map with one side equal to M and the other larger, HF computes
                    W-MSA where nnspec, timm and torchvision shift the longer axis: declared as
                    the variant swin.shift_rule=both_axes (the original Swin code's rule).
  patch_merging     models.swin.SwinPatchMerging (4C -> 2C, LayerNorm eps 1e-5 fixed)
HF's ViT and Swin attention have a key bias (zeroed here: nnspec has none).
"""

from __future__ import annotations

import math

from conformance.adapters import autograd
from conformance.adapters.torch_vision import _on, counted_macs

_cached = autograd.module_cache()


def _count(macs: int, like):
    import torch

    return torch.tensor(float(macs), dtype=like.dtype, device=like.device)


# -- parameter maps ------------------------------------------------------------------------------


def _qkv(W_Q, W_K, W_V, b_q, b_v):
    import torch

    return torch.cat([W_Q.T, W_K.T, W_V.T]), torch.cat([b_q, torch.zeros_like(b_q), b_v])


def _timm_block_state(prefix, params):
    """reference.vit.vit_block's 15 arrays as a timm Block's parameters."""
    W_Q, W_K, W_V, W_O, b_q, b_v, b_o, g1, b1, W_1, c_1, W_2, c_2, g2, b2 = params
    weight, bias = _qkv(W_Q, W_K, W_V, b_q, b_v)
    return {
        f"{prefix}norm1.weight": g1,
        f"{prefix}norm1.bias": b1,
        f"{prefix}attn.qkv.weight": weight,
        f"{prefix}attn.qkv.bias": bias,
        f"{prefix}attn.proj.weight": W_O.T,
        f"{prefix}attn.proj.bias": b_o,
        f"{prefix}norm2.weight": g2,
        f"{prefix}norm2.bias": b2,
        f"{prefix}mlp.fc1.weight": W_1.T,
        f"{prefix}mlp.fc1.bias": c_1,
        f"{prefix}mlp.fc2.weight": W_2.T,
        f"{prefix}mlp.fc2.bias": c_2,
    }


def _hf_vit_layer_state(prefix, params):
    """... as an HF ViTLayer's parameters."""
    import torch

    W_Q, W_K, W_V, W_O, b_q, b_v, b_o, g1, b1, W_1, c_1, W_2, c_2, g2, b2 = params
    return {
        f"{prefix}attention.q_proj.weight": W_Q.T,
        f"{prefix}attention.q_proj.bias": b_q,
        f"{prefix}attention.k_proj.weight": W_K.T,
        f"{prefix}attention.k_proj.bias": torch.zeros_like(b_q),
        f"{prefix}attention.v_proj.weight": W_V.T,
        f"{prefix}attention.v_proj.bias": b_v,
        f"{prefix}attention.o_proj.weight": W_O.T,
        f"{prefix}attention.o_proj.bias": b_o,
        f"{prefix}layernorm_before.weight": g1,
        f"{prefix}layernorm_before.bias": b1,
        f"{prefix}layernorm_after.weight": g2,
        f"{prefix}layernorm_after.bias": b2,
        f"{prefix}mlp.fc1.weight": W_1.T,
        f"{prefix}mlp.fc1.bias": c_1,
        f"{prefix}mlp.fc2.weight": W_2.T,
        f"{prefix}mlp.fc2.bias": c_2,
    }


def _timm_swin_state(prefix, norm1, attn, norm2, ffn):
    W_Q, W_K, W_V, W_O, b_q, b_v, b_o, table = attn
    weight, bias = _qkv(W_Q, W_K, W_V, b_q, b_v)
    state = {
        f"{prefix}attn.qkv.weight": weight,
        f"{prefix}attn.qkv.bias": bias,
        f"{prefix}attn.proj.weight": W_O.T,
        f"{prefix}attn.proj.bias": b_o,
        f"{prefix}attn.relative_position_bias_table": table,
    }
    if norm1 is not None:
        W_1, c_1, W_2, c_2 = ffn
        state.update({
            f"{prefix}norm1.weight": norm1[0],
            f"{prefix}norm1.bias": norm1[1],
            f"{prefix}norm2.weight": norm2[0],
            f"{prefix}norm2.bias": norm2[1],
            f"{prefix}mlp.fc1.weight": W_1.T,
            f"{prefix}mlp.fc1.bias": c_1,
            f"{prefix}mlp.fc2.weight": W_2.T,
            f"{prefix}mlp.fc2.bias": c_2,
        })  # fmt: skip
    return state


# -- timm: ViT ------------------------------------------------------------------------------------


def _timm_block(d, f, n_heads, eps, like):
    import functools

    import torch
    from timm.layers import Mlp
    from timm.models.vision_transformer import Block

    def build():
        norm = functools.partial(torch.nn.LayerNorm, eps=eps)
        block = Block(d, n_heads, qkv_bias=True, norm_layer=norm)
        block.mlp = Mlp(d, hidden_features=f)
        return _on(block, like)

    return _cached(("timm_block", d, f, n_heads, eps, like.dtype, str(like.device)), build)


def timm_vit_block(z, *params, n_heads=1, eps=1e-6):
    from torch.func import functional_call

    block = _timm_block(z.shape[-1], params[9].shape[1], int(n_heads), float(eps), z)
    return functional_call(block, _timm_block_state("", params), (z,))


def timm_vit(x, *params, patch=2, n_heads=1, eps=1e-6):
    import functools

    import torch
    from timm.layers import Mlp
    from timm.models.vision_transformer import VisionTransformer
    from torch.func import functional_call

    _, c, h, w = x.shape
    W_E, b_E, cls, pos = params[:4]
    blocks = params[4:-2]
    depth, d, p = len(blocks) // 15, W_E.shape[1], int(patch)
    f = blocks[9].shape[1] if blocks else 4

    class Features(torch.nn.Module):
        def __init__(self):
            super().__init__()
            norm = functools.partial(torch.nn.LayerNorm, eps=float(eps))
            self.vit = VisionTransformer(
                img_size=(h, w), patch_size=p, in_chans=c, num_classes=0, global_pool="",
                embed_dim=d, depth=depth, num_heads=int(n_heads), qkv_bias=True,
                norm_layer=norm,
            )  # fmt: skip
            for block in self.vit.blocks:
                block.mlp = Mlp(d, hidden_features=f)

        def forward(self, x):
            return self.vit.forward_features(x)

    key = ("timm_vit", c, h, w, p, depth, d, f, int(n_heads), float(eps), x.dtype, str(x.device))
    model = _cached(key, lambda: _on(Features(), x))
    state = {
        "vit.patch_embed.proj.weight": W_E.T.reshape(d, c, p, p),
        "vit.patch_embed.proj.bias": b_E,
        "vit.cls_token": cls.reshape(1, 1, d),
        "vit.pos_embed": pos.reshape(1, *pos.shape),
        "vit.norm.weight": params[-2],
        "vit.norm.bias": params[-1],
    }
    for i in range(depth):
        state.update(_timm_block_state(f"vit.blocks.{i}.", blocks[15 * i : 15 * (i + 1)]))
    return functional_call(model, state, (x,), strict=False)


# -- timm: Swin -----------------------------------------------------------------------------------


def _timm_swin_block(h, w, c, f, n_heads, window, shift, eps, like):
    import functools

    import torch
    from timm.layers import Mlp
    from timm.models.swin_transformer import SwinTransformerBlock

    def build():
        norm = functools.partial(torch.nn.LayerNorm, eps=eps)
        block = SwinTransformerBlock(c, (h, w), num_heads=n_heads, window_size=window,
                                     shift_size=shift, norm_layer=norm)  # fmt: skip
        block.mlp = Mlp(c, hidden_features=f)
        return _on(block, like)

    key = ("timm_swin", h, w, c, f, n_heads, window, shift, eps, like.dtype, str(like.device))
    return _cached(key, build)


class _Attn:
    """A module whose forward is SwinTransformerBlock._attn (the window attention part)."""

    @staticmethod
    def wrap(block):
        import torch

        class Attn(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.block = block

            def forward(self, x):
                return self.block._attn(x)

        return Attn()


def timm_window_attention(x, *attn, n_heads=1, window=2, shift=0):
    from torch.func import functional_call

    _, h, w, c = x.shape
    block = _timm_swin_block(h, w, c, 4, int(n_heads), int(window), int(shift), 1e-5, x)
    module = _cached(("timm_attn", id(block)), lambda: _Attn.wrap(block))
    state = _timm_swin_state("block.", None, attn, None, None)
    return functional_call(module, state, (x,), strict=False)


def timm_swin_block(x, *params, n_heads=1, window=2, shift=0, eps=1e-5):
    from torch.func import functional_call

    _, h, w, c = x.shape
    f = params[12].shape[1]
    block = _timm_swin_block(h, w, c, f, int(n_heads), int(window), int(shift), float(eps), x)
    state = _timm_swin_state("", params[0:2], params[2:10], params[10:12], params[12:16])
    return functional_call(block, state, (x,), strict=False)


def timm_patch_merging(x, gamma, beta, W_red, eps=1e-5):
    import functools

    import torch
    from timm.models.swin_transformer import PatchMerging
    from torch.func import functional_call

    c, out = x.shape[-1], W_red.shape[1]

    def build():
        norm = functools.partial(torch.nn.LayerNorm, eps=float(eps))
        return _on(PatchMerging(c, out, norm_layer=norm), x)

    module = _cached(("timm_merging", c, out, float(eps), x.dtype, str(x.device)), build)
    state = {"norm.weight": gamma, "norm.bias": beta, "reduction.weight": W_red.T}
    return functional_call(module, state, (x,))


def timm_msa_macs(x, n_heads=1):
    from timm.models.vision_transformer import Attention

    b, h, w, c = x.shape
    attn = _on(Attention(c, int(n_heads), qkv_bias=True), x)
    attn.fused_attn = False
    return _count(counted_macs(attn, x.reshape(b, h * w, c)), x)


def timm_w_msa_macs(x, n_heads=1, window=2):
    _, h, w, c = x.shape
    block = _timm_swin_block(h, w, c, 4, int(n_heads), int(window), 0, 1e-5, x)
    block.attn.fused_attn = False
    return _count(counted_macs(block._attn, x), x)


TIMM_OPS = {
    "vit_block": timm_vit_block,
    "vit": timm_vit,
    "window_attention": timm_window_attention,
    "swin_block": timm_swin_block,
    "patch_merging": timm_patch_merging,
    "msa_macs": timm_msa_macs,
    "w_msa_macs": timm_w_msa_macs,
}
TIMM_VARIANTS = {"swin.pad_order": "shift_then_pad"}


# -- HF transformers --------------------------------------------------------------------------


def _vit_config(**kwargs):
    from transformers import ViTConfig

    return ViTConfig(hidden_act="gelu", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                     qkv_bias=True, **kwargs)  # fmt: skip


def hf_vit_block(z, *params, n_heads=1, eps=1e-6):
    from torch.func import functional_call
    from transformers.models.vit.modeling_vit import ViTLayer

    d, f = z.shape[-1], params[9].shape[1]

    def build():
        config = _vit_config(hidden_size=d, num_attention_heads=int(n_heads),
                             intermediate_size=f, layer_norm_eps=float(eps))  # fmt: skip
        config._attn_implementation = "sdpa"
        return _on(ViTLayer(config), z)

    key = ("hf_vit_layer", d, f, int(n_heads), float(eps), z.dtype, str(z.device))
    layer = _cached(key, build)
    out = functional_call(layer, _hf_vit_layer_state("", params), (z,))
    return out[0] if isinstance(out, tuple) else out


def hf_vit(x, *params, patch=2, n_heads=1, eps=1e-6):
    from torch.func import functional_call
    from transformers.models.vit.modeling_vit import ViTModel

    from conformance.adapters.base import Unsupported

    _, c, h, w = x.shape
    if h != w:
        raise Unsupported("HF ViTConfig has one image_size: square images only")
    W_E, b_E, cls, pos = params[:4]
    blocks = params[4:-2]
    depth, d, p = len(blocks) // 15, W_E.shape[1], int(patch)
    f = blocks[9].shape[1] if blocks else 4

    def build():
        config = _vit_config(hidden_size=d, num_hidden_layers=depth, intermediate_size=f,
                             num_attention_heads=int(n_heads), image_size=h, patch_size=p,
                             num_channels=c, layer_norm_eps=float(eps))  # fmt: skip
        config._attn_implementation = "sdpa"
        return _on(ViTModel(config, add_pooling_layer=False), x)

    key = ("hf_vit", c, h, p, depth, d, f, int(n_heads), float(eps), x.dtype, str(x.device))
    model = _cached(key, build)
    state = {
        "embeddings.patch_embeddings.projection.weight": W_E.T.reshape(d, c, p, p),
        "embeddings.patch_embeddings.projection.bias": b_E,
        "embeddings.cls_token": cls.reshape(1, 1, d),
        "embeddings.position_embeddings": pos.reshape(1, *pos.shape),
        "layernorm.weight": params[-2],
        "layernorm.bias": params[-1],
    }
    for i in range(depth):
        state.update(_hf_vit_layer_state(f"layers.{i}.", blocks[15 * i : 15 * (i + 1)]))
    layer_names = {n for n, _ in model.named_parameters()}
    missing = set(state) - layer_names
    if missing:  # the encoder's module names differ between transformers versions
        raise RuntimeError(f"HF ViTModel has no parameters {sorted(missing)[:3]}")
    return functional_call(model, state, (x,), strict=False).last_hidden_state


def hf_swin_block(x, *params, n_heads=1, window=2, shift=0, eps=1e-5):
    import torch
    from torch.func import functional_call
    from transformers import SwinConfig
    from transformers.models.swin.modeling_swin import SwinLayer

    b, h, w, c = x.shape
    m, s = int(window), int(shift)
    f = params[12].shape[1]

    def build():
        config = SwinConfig(
            embed_dim=c, window_size=m, layer_norm_eps=float(eps), hidden_act="gelu",
            hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, drop_path_rate=0.0,
            qkv_bias=True,
        )  # fmt: skip
        config._attn_implementation = "sdpa"
        layer = SwinLayer(config, c, (h, w), int(n_heads), shift_size=s)
        layer.mlp.fc1 = torch.nn.Linear(c, f)
        layer.mlp.fc2 = torch.nn.Linear(f, c)
        return _on(layer, x)

    key = ("hf_swin", h, w, c, f, int(n_heads), m, s, float(eps), x.dtype, str(x.device))
    layer = _cached(key, build)
    g1, b1, W_Q, W_K, W_V, W_O, b_q, b_v, b_o, table, g2, b2, W_1, c_1, W_2, c_2 = params
    state = {
        "layernorm_before.weight": g1,
        "layernorm_before.bias": b1,
        "attention.q_proj.weight": W_Q.T,
        "attention.q_proj.bias": b_q,
        "attention.k_proj.weight": W_K.T,
        "attention.k_proj.bias": torch.zeros_like(b_q),
        "attention.v_proj.weight": W_V.T,
        "attention.v_proj.bias": b_v,
        "attention.o_proj.weight": W_O.T,
        "attention.o_proj.bias": b_o,
        "attention.relative_position_bias.relative_position_bias_table": table,
        "layernorm_after.weight": g2,
        "layernorm_after.bias": b2,
        "mlp.fc1.weight": W_1.T,
        "mlp.fc1.bias": c_1,
        "mlp.fc2.weight": W_2.T,
        "mlp.fc2.bias": c_2,
    }
    out = functional_call(layer, state, (x.reshape(b, h * w, c), (h, w)), strict=False)
    out = out[0] if isinstance(out, tuple) else out
    return out.reshape(b, h, w, c)


def hf_patch_merging(x, gamma, beta, W_red, eps=1e-5):
    from torch.func import functional_call
    from transformers.models.swin.modeling_swin import SwinPatchMerging

    from conformance.adapters.base import Unsupported

    b, h, w, c = x.shape
    if W_red.shape[1] != 2 * c or not math.isclose(float(eps), 1e-5):
        raise Unsupported("HF SwinPatchMerging maps 4C to 2C with LayerNorm eps 1e-5")
    module = _cached(("hf_merging", c, x.dtype, str(x.device)),
                     lambda: _on(SwinPatchMerging(c), x))  # fmt: skip
    state = {"norm.weight": gamma, "norm.bias": beta, "reduction.weight": W_red.T}
    out = functional_call(module, state, (x.reshape(b, h * w, c), (h, w)))
    return out.reshape(b, -(-h // 2), -(-w // 2), W_red.shape[1])


HF_VARIANTS = {"swin.shift_rule": "both_axes"}
HF_OPS = {
    "vit_block": hf_vit_block,
    "vit": hf_vit,
    "swin_block": hf_swin_block,
    "patch_merging": hf_patch_merging,
}
