"""PyTorch ops of the vision stems (vit, equivariance, swin) on tensors in nnspec's canonical
layout (see reference/vit.py, equivariance.py, swin.py), for the `torch` and `torch-cuda`
adapters.

The layers run the real modules: nn.Conv2d (padding_mode zeros / circular), F.avg_pool2d,
F.max_pool2d, nn.AdaptiveAvgPool2d; the patch embedding as nn.Conv2d(C, D, p, stride=p);
torchvision's ViT EncoderBlock and VisionTransformer, and its Swin ShiftedWindowAttention,
SwinTransformerBlock and PatchMerging (torchvision.models.*, built from their constructors with
random weights: nothing is downloaded), called through torch.func.functional_call with
nnspec's arrays mapped onto their parameters so autograd reaches the canonical weights.

Layout mapping:
- nn.Linear computes x W^T: nnspec's W (in, out) becomes weight = W^T. torchvision's
  nn.MultiheadAttention (ViT) packs [W_Q; W_K; W_V]^T in in_proj_weight and [b_q, b_k, b_v]
  in in_proj_bias; the Swin qkv Linear packs them the same way along its output axis. The key
  bias is set to zero (nnspec has none: softmax ignores it).
- Patch embedding: E (C p², D) is the conv weight (D, C, p, p) reshaped and transposed.
- torchvision's VisionTransformer hard-codes 3 input channels in conv_proj and takes square
  images only: conv_proj is rebuilt for C channels; a non-square image is refused
  (Unsupported). Its encoder adds the position embedding after the class token is prepended,
  then runs the blocks and the final LayerNorm: nnspec's `vit` (the classification head is
  not part of it).
- torchvision's SwinTransformerBlock builds its MLP as int(C * mlp_ratio): the MLP is rebuilt
  with nnspec's hidden width F. Its shifted_window_attention pads first and then rolls
  (nnspec's canonical swin.pad_order), drops the shift along an axis holding one window (as
  nnspec), and masks with -100.
- FLOP counts (msa_macs, w_msa_macs): torch.utils.flop_counter.FlopCounterMode around the
  running layer (an MSA of nn.Linear projections and matmuls; torchvision's
  ShiftedWindowAttention), whose count is 2 FLOPs per multiply-add: halved here. On CPU,
  FlopCounterMode counts 0 FLOPs for F.scaled_dot_product_attention (torch 2.14), so the MSA
  layer here multiplies explicitly.
"""

from __future__ import annotations

import functools
import math

from conformance.adapters import autograd

_cached = autograd.module_cache()


def _on(module, like):
    return module.to(device=like.device, dtype=like.dtype).eval()


# -- equivariance: convolution and pooling --------------------------------------------------------


def conv2d(x, weight, bias, stride=1, padding=0, padding_mode="zeros"):
    import torch
    from torch.func import functional_call

    o, c, k, _ = weight.shape

    def build():
        conv = torch.nn.Conv2d(c, o, k, stride=int(stride), padding=int(padding),
                               padding_mode=padding_mode)  # fmt: skip
        return _on(conv, x)

    key = ("conv2d", o, c, k, int(stride), int(padding), padding_mode, x.dtype, str(x.device))
    module = _cached(key, build)
    return functional_call(module, {"weight": weight, "bias": bias}, (x,))


def avg_pool2d(x, kernel=2, stride=2):
    import torch.nn.functional as F

    return F.avg_pool2d(x, int(kernel), int(stride))


def max_pool2d(x, kernel=2, stride=2):
    import torch.nn.functional as F

    return F.max_pool2d(x, int(kernel), int(stride))


def global_avg_pool(x):
    import torch

    return torch.nn.AdaptiveAvgPool2d(1)(x).flatten(1)


# -- vit ----------------------------------------------------------------------------------------


def patch_embedding(x, W_E, b_E, patch=2):
    p = int(patch)
    d, c = W_E.shape[1], x.shape[1]
    weight = W_E.T.reshape(d, c, p, p)
    return conv2d(x, weight, b_E, stride=p).flatten(2).transpose(1, 2)  # (B, N, D)


def vit_embed(x, W_E, b_E, cls, pos, patch=2):
    import torch

    tokens = patch_embedding(x, W_E, b_E, patch)
    cls_rows = cls.expand(x.shape[0], 1, cls.shape[0])
    return torch.cat([cls_rows, tokens], dim=1) + pos


def _encoder_block_params(prefix, params):
    """nnspec's vit_block arrays as torchvision EncoderBlock's parameters."""
    import torch

    W_Q, W_K, W_V, W_O, b_q, b_v, b_o, g1, b1, W_1, c_1, W_2, c_2, g2, b2 = params
    return {
        f"{prefix}ln_1.weight": g1,
        f"{prefix}ln_1.bias": b1,
        f"{prefix}self_attention.in_proj_weight": torch.cat([W_Q.T, W_K.T, W_V.T]),
        f"{prefix}self_attention.in_proj_bias": torch.cat([b_q, torch.zeros_like(b_q), b_v]),
        f"{prefix}self_attention.out_proj.weight": W_O.T,
        f"{prefix}self_attention.out_proj.bias": b_o,
        f"{prefix}ln_2.weight": g2,
        f"{prefix}ln_2.bias": b2,
        f"{prefix}mlp.0.weight": W_1.T,
        f"{prefix}mlp.0.bias": c_1,
        f"{prefix}mlp.3.weight": W_2.T,
        f"{prefix}mlp.3.bias": c_2,
    }


def vit_block(z, *params, n_heads=1, eps=1e-6):
    import torch
    from torch.func import functional_call
    from torchvision.models.vision_transformer import EncoderBlock

    d, f = z.shape[-1], params[9].shape[1]

    def build():
        norm = functools.partial(torch.nn.LayerNorm, eps=float(eps))
        return _on(EncoderBlock(int(n_heads), d, f, 0.0, 0.0, norm_layer=norm), z)

    key = ("vit_block", d, f, int(n_heads), float(eps), z.dtype, str(z.device))
    block = _cached(key, build)
    return functional_call(block, _encoder_block_params("", params), (z,))


def vit(x, *params, patch=2, n_heads=1, eps=1e-6):
    import torch
    from torch.func import functional_call
    from torchvision.models.vision_transformer import VisionTransformer

    from conformance.adapters.base import Unsupported

    _, c, h, w = x.shape
    if h != w:
        raise Unsupported("torchvision's VisionTransformer takes square images only")
    W_E, b_E, cls, pos = params[:4]
    blocks = params[4:-2]
    depth, d, f = len(blocks) // 15, W_E.shape[1], (blocks[9].shape[1] if blocks else 4)
    p = int(patch)

    class Encoder(torch.nn.Module):
        """torchvision's VisionTransformer up to its encoder's final LayerNorm."""

        def __init__(self):
            super().__init__()
            norm = functools.partial(torch.nn.LayerNorm, eps=float(eps))
            self.vit = VisionTransformer(h, p, depth, int(n_heads), d, f, norm_layer=norm)
            self.vit.conv_proj = torch.nn.Conv2d(c, d, p, stride=p)  # 3 channels hard-coded

        def forward(self, x):
            tokens = self.vit._process_input(x)
            cls_rows = self.vit.class_token.expand(x.shape[0], -1, -1)
            return self.vit.encoder(torch.cat([cls_rows, tokens], dim=1))

    key = ("vit", c, h, p, depth, d, f, int(n_heads), float(eps), x.dtype, str(x.device))
    model = _cached(key, lambda: _on(Encoder(), x))
    state = {
        "vit.conv_proj.weight": W_E.T.reshape(d, c, p, p),
        "vit.conv_proj.bias": b_E,
        "vit.class_token": cls.reshape(1, 1, d),
        "vit.encoder.pos_embedding": pos.reshape(1, *pos.shape),
        "vit.encoder.ln.weight": params[-2],
        "vit.encoder.ln.bias": params[-1],
    }
    for i in range(depth):
        block = blocks[15 * i : 15 * (i + 1)]
        state.update(_encoder_block_params(f"vit.encoder.layers.encoder_layer_{i}.", block))
    return functional_call(model, state, (x,), strict=False)


# -- swin -----------------------------------------------------------------------------------------


def _window_attention_params(prefix, W_Q, W_K, W_V, W_O, b_q, b_v, b_o, table):
    import torch

    return {
        f"{prefix}qkv.weight": torch.cat([W_Q.T, W_K.T, W_V.T]),
        f"{prefix}qkv.bias": torch.cat([b_q, torch.zeros_like(b_q), b_v]),
        f"{prefix}proj.weight": W_O.T,
        f"{prefix}proj.bias": b_o,
        f"{prefix}relative_position_bias_table": table,
    }


def _tv_window_attention(c, n_heads, window, shift, like):
    from torchvision.models.swin_transformer import ShiftedWindowAttention

    def build():
        return _on(ShiftedWindowAttention(c, [window, window], [shift, shift], n_heads), like)

    key = ("tv_window_attention", c, n_heads, window, shift, like.dtype, str(like.device))
    return _cached(key, build)


def window_attention(x, W_Q, W_K, W_V, W_O, b_q, b_v, b_o, table, n_heads=1, window=2, shift=0):
    from torch.func import functional_call

    module = _tv_window_attention(x.shape[-1], int(n_heads), int(window), int(shift), x)
    params = _window_attention_params("", W_Q, W_K, W_V, W_O, b_q, b_v, b_o, table)
    return functional_call(module, params, (x,), strict=False)


def swin_block(x, *params, n_heads=1, window=2, shift=0, eps=1e-5):
    import torch
    from torch.func import functional_call
    from torchvision.models.swin_transformer import SwinTransformerBlock
    from torchvision.ops import MLP

    c, f = x.shape[-1], params[12].shape[1]

    def build():
        norm = functools.partial(torch.nn.LayerNorm, eps=float(eps))
        block = SwinTransformerBlock(c, int(n_heads), [int(window)] * 2, [int(shift)] * 2,
                                     norm_layer=norm)  # fmt: skip
        block.mlp = MLP(c, [f, c], activation_layer=torch.nn.GELU, inplace=None, dropout=0.0)
        return _on(block, x)

    key = ("swin_block", c, f, int(n_heads), int(window), int(shift), float(eps), x.dtype,
           str(x.device))  # fmt: skip
    block = _cached(key, build)
    g1, b1, *attn = params[:10]
    g2, b2, W_1, c_1, W_2, c_2 = params[10:]
    state = {
        "norm1.weight": g1,
        "norm1.bias": b1,
        **_window_attention_params("attn.", *attn),
        "norm2.weight": g2,
        "norm2.bias": b2,
        "mlp.0.weight": W_1.T,
        "mlp.0.bias": c_1,
        "mlp.3.weight": W_2.T,
        "mlp.3.bias": c_2,
    }
    return functional_call(block, state, (x,), strict=False)


def patch_merging(x, gamma, beta, W_red, eps=1e-5):
    import torch
    from torch.func import functional_call
    from torchvision.models.swin_transformer import PatchMerging

    from conformance.adapters.base import Unsupported

    c = x.shape[-1]
    if W_red.shape[1] != 2 * c:
        raise Unsupported("torchvision's PatchMerging always maps 4C to 2C")

    def build():
        norm = functools.partial(torch.nn.LayerNorm, eps=float(eps))
        return _on(PatchMerging(c, norm_layer=norm), x)

    module = _cached(("patch_merging", c, float(eps), x.dtype, str(x.device)), build)
    state = {"norm.weight": gamma, "norm.bias": beta, "reduction.weight": W_red.T}
    return functional_call(module, state, (x,))


# -- FLOP counts --------------------------------------------------------------------------------


def counted_macs(fn, *args) -> int:
    """Multiply-adds of fn(*args) as torch.utils.flop_counter counts them (2 FLOPs each)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        fn(*args)
    flops = counter.get_total_flops()
    if flops % 2:
        raise ValueError(f"an odd FLOP count {flops}: not 2 per multiply-add")
    return flops // 2


class _MSA:
    """Multi-head self-attention as a running layer: nn.Linear projections, softmax(q k^T /
    sqrt(d)) v by matmuls over all tokens. (Not F.scaled_dot_product_attention: on CPU,
    FlopCounterMode counts nothing for it in torch 2.14 -- measured: 0 FLOPs for float32 and
    float64 -- its CPU flash kernel has no registered formula.)"""

    def __init__(self, c, n_heads, like):
        import torch

        self.n_heads = n_heads
        self.qkv = _on(torch.nn.Linear(c, 3 * c), like)
        self.proj = _on(torch.nn.Linear(c, c), like)

    def __call__(self, x):
        import torch.nn.functional as F

        b, h, w, c = x.shape
        tokens = x.reshape(b, h * w, c)
        q, k, v = self.qkv(tokens).reshape(b, h * w, 3, self.n_heads, -1).permute(2, 0, 3, 1, 4)
        out = F.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1) @ v
        return self.proj(out.transpose(1, 2).reshape(b, h * w, c))


def _count(macs: int, like):
    import torch

    return torch.tensor(float(macs), dtype=like.dtype, device=like.device)


def msa_macs(x, n_heads=1):
    return _count(counted_macs(_MSA(x.shape[-1], int(n_heads), x), x), x)


def w_msa_macs(x, n_heads=1, window=2):
    module = _tv_window_attention(x.shape[-1], int(n_heads), int(window), 0, x)
    return _count(counted_macs(module, x), x)


OPS = {
    "conv2d": conv2d,
    "avg_pool2d": avg_pool2d,
    "max_pool2d": max_pool2d,
    "global_avg_pool": global_avg_pool,
    "patch_embedding": patch_embedding,
    "vit_embed": vit_embed,
    "vit_block": vit_block,
    "vit": vit,
    "window_attention": window_attention,
    "swin_block": swin_block,
    "patch_merging": patch_merging,
    "msa_macs": msa_macs,
    "w_msa_macs": w_msa_macs,
}
