"""The whole-network FLOP models (reference.vit.vit_macs, reference.swin.swin_macs) agree
exactly with torch.utils.flop_counter on timm's VisionTransformer and SwinTransformer of the
same config (random weights, nothing downloaded), and the parameter-count models with the
models' own parameters.

Counting convention (spec/swin.py): multiply-adds of the matrix products and convolutions;
FlopCounterMode counts 2 FLOPs per multiply-add, so its count is halved. timm's attention
modules are switched to their unfused path (fused_attn = False): on CPU, FlopCounterMode counts
0 FLOPs for F.scaled_dot_product_attention (torch 2.14), which timm calls by default."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reference import swin, vit

pytest.importorskip("timm")
torch = pytest.importorskip("torch")

SETTINGS = settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))


def _counted_macs(model, x) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    for module in model.modules():
        if hasattr(module, "fused_attn"):
            module.fused_attn = False
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    flops = counter.get_total_flops()
    assert flops % 2 == 0
    return flops // 2


@st.composite
def vit_configs(draw):
    patch = draw(st.sampled_from((2, 4)))
    heads = draw(st.integers(1, 2))
    return {
        "img_size": patch * draw(st.integers(1, 4)),
        "patch_size": patch,
        "in_chans": draw(st.integers(1, 3)),
        "embed_dim": heads * draw(st.integers(1, 4)),
        "depth": draw(st.integers(0, 2)),
        "num_heads": heads,
        "mlp_ratio": float(draw(st.integers(1, 4))),
        "num_classes": draw(st.integers(1, 5)),
    }


@st.composite
def swin_configs(draw):
    stages = draw(st.integers(1, 3))
    heads = tuple(draw(st.integers(1, 2)) for _ in range(stages))
    return {
        "img_size": draw(st.sampled_from((8, 12, 16, 20))),
        "patch_size": draw(st.sampled_from((1, 2))),
        "in_chans": draw(st.integers(1, 3)),
        "embed_dim": 2 * draw(st.integers(1, 3)),
        "depths": tuple(draw(st.integers(1, 2)) for _ in range(stages)),
        "num_heads": heads,
        "window_size": draw(st.sampled_from((2, 3, 4))),
        "mlp_ratio": float(draw(st.integers(1, 4))),
        "num_classes": draw(st.integers(1, 5)),
    }


@SETTINGS
@given(config=vit_configs())
def test_vit_flop_model_is_the_counted_flops_of_timm(config):
    from timm.models.vision_transformer import VisionTransformer

    model = VisionTransformer(**config, qkv_bias=True).eval()
    x = torch.zeros(1, config["in_chans"], config["img_size"], config["img_size"])
    assert _counted_macs(model, x) == vit.vit_macs(**config)["total"]
    assert sum(p.numel() for p in model.parameters()) == vit.vit_params(**config)


@SETTINGS
@given(config=swin_configs())
def test_swin_flop_model_is_the_counted_flops_of_timm(config):
    from timm.models.swin_transformer import SwinTransformer

    # heads must divide every stage's width embed_dim * 2^i: the strategy keeps them 1 or 2
    model = SwinTransformer(**config).eval()
    x = torch.zeros(1, config["in_chans"], config["img_size"], config["img_size"])
    assert _counted_macs(model, x) == swin.swin_macs(**config)["total"]
    assert sum(p.numel() for p in model.parameters()) == swin.swin_params(**config)
