"""Legitimate ways libraries differ. An adapter declares the ones it implements:

    variants = {"attention.masked_rows": "nan"}

The reference is then run with that option, and when a comparison fails the suite tries the
other values and names the one that matches ("matches variant attention.scale=1/d"): that is a
diagnosis, not a pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Variant:
    option: str  # keyword argument of the reference function
    values: tuple[Any, ...]  # values[0] is nnspec's canonical choice
    why: str


VARIANTS: dict[str, Variant] = {
    "attention.scale": Variant(
        "scale_rule",
        ("1/sqrt(d)", "1/d"),
        "Vaswani et al. scale scores by 1/sqrt(d_k); muP-style attention uses 1/d_k",
    ),
    "attention.masked_rows": Variant(
        "masked_rows",
        ("zeros", "nan", "uniform"),
        "a query that sees no key: empty sum (zeros), 0/0 (NaN), or a finite fill (mean of V)",
    ),
    "attention.causal_alignment": Variant(
        "causal_alignment",
        ("top_left", "bottom_right"),
        "with Tq != Tk the causal diagonal starts at key 0 or ends at the last key",
    ),
    "positional.layout": Variant(
        "layout",
        ("interleaved", "concatenated"),
        "sinusoidal encodings as (sin, cos) pairs side by side (Vaswani et al.) or all sines "
        "then all cosines (tensor2tensor, Marian)",
    ),
    "transformer.norm_first": Variant(
        "norm_first",
        (False, True),
        "LayerNorm after each residual sum (post-LN: the notes, the original Transformer, "
        "BERT) or on each sublayer's input (pre-LN: GPT-2, ViT)",
    ),
    "linear_attention.eps": Variant(
        "eps",
        (0.0, 1e-6),
        "linear attention's normalizer as the formula (0) or with a small constant added "
        "(1e-6 in the paper's fast-transformers implementation)",
    ),
    "gru.reset": Variant(
        "reset",
        ("before", "after"),
        "GRU candidate: reset applied to h before the recurrent matmul (Cho et al. 2014, ONNX "
        "linear_before_reset=0) or to its result (cuDNN, PyTorch, ONNX linear_before_reset=1)",
    ),
    "clip_grad_norm.eps": Variant(
        "eps",
        (0.0, 1e-6),
        "clip by global norm: scale max_norm / ||g|| (the notes), or max_norm / (||g|| + 1e-6) "
        "as torch.nn.utils.clip_grad_norm_",
    ),
    # normalization and activations (reference/norm.py, reference/activation.py)
    "batch_norm.running_var": Variant(
        "running_var_estimate",
        ("unbiased", "biased"),
        "BatchNorm's running variance takes the batch variance times n/(n-1) (PyTorch) or the "
        "biased variance the layer normalizes with (ONNX BatchNormalization, Keras)",
    ),
    "batch_norm.momentum": Variant(
        "momentum_convention",
        ("new_weight", "old_weight"),
        "running = (1 - m) running + m batch (PyTorch, m = 0.1) or m running + (1 - m) batch "
        "(Keras m = 0.99, ONNX m = 0.9)",
    ),
    # vision (reference/swin.py)
    "swin.pad_order": Variant(
        "pad_order",
        ("pad_then_shift", "shift_then_pad"),
        "a Swin map whose sides are not multiples of the window is zero-padded then rolled "
        "(the Swin detection code, torchvision, HF) or rolled then padded (timm 1.0)",
    ),
    "swin.shift_rule": Variant(
        "shift_rule",
        ("per_axis", "both_axes"),
        "SW-MSA on a map with one side holding a single window: no shift along that axis only "
        "(timm, torchvision) or no shift at all once min(H, W) <= M (HF SwinLayer, original Swin)",
    ),
    "activation.gelu": Variant(
        "approximation",
        ("exact", "tanh"),
        "GELU as x Phi(x) (torch approximate='none', HF 'gelu') or its tanh approximation "
        "(torch approximate='tanh', HF 'gelu_new', GPT-2)",
    ),
    # language models and captioning (reference/language.py, reference/captioning.py)
    "cross_entropy.label_smoothing": Variant(
        "smoothing",
        ("uniform", "others"),
        "label smoothing eps as the mix (1 - eps) onehot + eps/V (Szegedy et al. 2016, torch, "
        "Keras) or 1 - eps on the target and eps/(V - 1) on every other class (fairseq)",
    ),
    "cross_entropy.ignore_index": Variant(
        "ignored",
        ("excluded", "counted"),
        "the mean of a loss with ignored targets divides by the kept tokens (torch ignore_index) "
        "or by every token (a mask multiplied in, then .mean())",
    ),
    "cross_entropy.mean": Variant(
        "mean_over",
        ("tokens", "sequences"),
        "a mean cross-entropy over (B, T) targets averages every token (torch, Keras) or sums "
        "over time per sequence, the notes' Σ_t L, and averages over the batch (TF "
        "sequence_loss(average_across_timesteps=False), loss.sum() / batch_size)",
    ),
    "captioning.image_input": Variant(
        "image_input",
        ("first", "every_step"),
        "the image feature is the decoder's first input only (Show and Tell, the notes) or also "
        "added to every word's input (the image seen at every step, as m-RNN / LRCN decoders)",
    ),
}


def reference_options(variant_keys: tuple[str, ...], declared: dict[str, Any]) -> dict[str, Any]:
    """Keyword options for the reference so that it computes what the adapter declares."""
    options = {}
    for key in variant_keys:
        variant = VARIANTS[key]
        value = declared.get(key, variant.values[0])
        if value not in variant.values:
            raise ValueError(f"variant {key}={value!r} is not one of {variant.values}")
        options[variant.option] = value
    return options


def alternatives(variant_keys: tuple[str, ...], declared: dict[str, Any]):
    """(key, value, options) for every single-key departure from what the adapter declares."""
    base = reference_options(variant_keys, declared)
    for key in variant_keys:
        variant = VARIANTS[key]
        for value in variant.values:
            if value != base[variant.option]:
                yield key, value, {**base, variant.option: value}
