"""Third-party squeeze-and-excitation blocks as adapters: timm's SEModule on CPU and on a CUDA
device. (torchvision's SqueezeExcitation is the `torch` adapter's own squeeze_excitation, see
conformance/adapters/torch_norm.py.)

The block is built from its constructor only (no pretrained weights, nothing downloaded):
timm.layers.SEModule(C, rd_channels=C_r) is avgpool -> fc1 (1x1 conv, bias) -> Identity (no
norm layer) -> ReLU -> fc2 (1x1 conv, bias) -> sigmoid gate -> x * gate. nnspec's W1 (C_r, C),
b1, W2 (C, C_r), b2 are mapped onto fc1/fc2 (weight (C_r, C, 1, 1)) through
torch.func.functional_call, so gradients reach them through autograd
(conformance.adapters.autograd). TIMM_OPS is the op table: another timm block is one more row.
"""

from __future__ import annotations

from typing import Any, ClassVar

from conformance.adapters import vision_libs
from conformance.adapters.pytorch import TorchCPU
from conformance.adapters.torch_cuda import OnCUDA, without_cpu_kernels
from conformance.adapters.torch_norm import LAYER_NORM_XFAILS, se_conv_params


def _timm_se(x, w1, b1, w2, b2):
    from timm.layers import SEModule
    from torch.func import functional_call

    module = SEModule(x.shape[1], rd_channels=w1.shape[0], bias=True)
    module = module.to(device=x.device, dtype=x.dtype)
    return functional_call(module, se_conv_params(w1, b1, w2, b2), (x,))


# op -> torch function on tensors in nnspec's canonical layout
TIMM_OPS = {"squeeze_excitation": _timm_se, **vision_libs.TIMM_OPS}


class TimmCPU(TorchCPU):
    name = "timm"
    ops: ClassVar[dict[str, Any]] = TIMM_OPS
    requires: ClassVar[tuple[str, ...]] = ("torch", "timm")
    # timm's SwinTransformerBlock rolls, then pads (conformance/adapters/vision_libs.py)
    variants: ClassVar[dict[str, Any]] = {**vision_libs.TIMM_VARIANTS}
    xfails: ClassVar[dict[str, str]] = {**LAYER_NORM_XFAILS}  # timm's blocks use nn.LayerNorm

    def describe(self) -> dict[str, Any]:
        import timm
        import torch

        return {"timm": timm.__version__, "torch": torch.__version__}


class TimmCUDA(OnCUDA, TimmCPU):
    """timm's blocks on a CUDA device, TF32 off (the torch-cuda configuration's switches)."""

    name = "timm-cuda"
    xfails: ClassVar[dict[str, str]] = without_cpu_kernels(TimmCPU.xfails)
