"""PyTorch ops of the norm, activation and squeeze_excitation stems, on tensors in nnspec's
canonical layout (see reference/norm.py, activation.py, squeeze_excitation.py).

Each op runs the real torch module the issue names (nn.BatchNorm1d/2d/3d, nn.LayerNorm,
nn.GroupNorm, nn.InstanceNorm1d/2d/3d, nn.RMSNorm, torchvision.ops.SqueezeExcitation), built
in the input's dtype and device, with nnspec's arrays as its parameters through
torch.func.functional_call (so autograd reaches γ and β) and running statistics copied into its
buffers and read back after a training step. Nothing is imported at module import time.

Mapping notes:
- BatchNorm momentum: torch's is nnspec's canonical "new weight" convention
  (running = (1 - m) running + m batch) and its running variance is unbiased: no variant.
- Running statistics are buffers, not differentiated: torch's native_batch_norm refuses
  requires_grad on them, which is why nnspec passes them as keyword state.
- torch refuses some one-value groups that nnspec defines (InstanceNorm with one spatial element
  in training, GroupNorm when N * C/G * H * W == 1): that ValueError becomes Unsupported, i.e.
  "not covered" with torch's message. For training BatchNorm with one value per channel torch's
  ValueError is kept: there nnspec refuses too (test_batch_norm_one_value_per_channel).
- squeeze_excitation: torchvision's block holds W1, W2 as 1x1 convolutions, weight (C_r, C, 1, 1).
"""

from __future__ import annotations

from conformance.adapters.base import Intermittent, Unsupported, cpu_kernel


def _module(module, like):
    return module.to(device=like.device, dtype=like.dtype)


def _call(module, params: dict, x):
    """module(x) with the given tensors as its parameters (autograd flows into them)."""
    from torch.func import functional_call

    return functional_call(module, {k: v for k, v in params.items() if v is not None}, (x,))


def _set_running(module, running_mean, running_var) -> None:
    import torch

    with torch.no_grad():
        module.running_mean.copy_(running_mean)
        module.running_var.copy_(running_var)


def _running(module):
    return module.running_mean.detach().clone(), module.running_var.detach().clone()


def _refused(call, what: str):
    """Run call(); torch's refusal of a one-value group becomes Unsupported."""
    try:
        return call()
    except ValueError as exc:
        if "Expected more than 1" in str(exc):
            raise Unsupported(f"torch refuses {what}: {exc}") from None
        raise


# -- BatchNorm ---------------------------------------------------------------------------------


def _batch_norm_module(x, eps: float, affine: bool, momentum: float = 0.1, track: bool = True):
    from torch import nn

    classes = {2: nn.BatchNorm1d, 3: nn.BatchNorm1d, 4: nn.BatchNorm2d, 5: nn.BatchNorm3d}
    if x.ndim not in classes:
        raise Unsupported(f"torch BatchNorm takes 2-5 dims, got x {tuple(x.shape)}")
    module = classes[x.ndim](
        x.shape[1], eps=eps, momentum=momentum, affine=affine, track_running_stats=track
    )
    return _module(module, x)


def batch_norm(x, gamma, beta, eps=1e-5):
    # Training mode, batch statistics; the running statistics it updates are not looked at.
    module = _batch_norm_module(x, eps, gamma is not None).train()
    return _call(module, {"weight": gamma, "bias": beta}, x)


def batch_norm_train(x, gamma, beta, *, running_mean, running_var, momentum=0.1, eps=1e-5):
    module = _batch_norm_module(x, eps, gamma is not None, momentum).train()
    _set_running(module, running_mean, running_var)
    y = _call(module, {"weight": gamma, "bias": beta}, x)
    return (y, *_running(module))


def batch_norm_eval(x, gamma, beta, *, running_mean, running_var, eps=1e-5):
    module = _batch_norm_module(x, eps, gamma is not None).eval()
    _set_running(module, running_mean, running_var)
    return _call(module, {"weight": gamma, "bias": beta}, x)


# -- LayerNorm, GroupNorm, RMSNorm -------------------------------------------------------------


def layer_norm(x, gamma, beta, eps=1e-5):
    from torch import nn

    module = _module(nn.LayerNorm(tuple(gamma.shape), eps=eps), x)
    return _call(module, {"weight": gamma, "bias": beta}, x)


def group_norm(x, gamma, beta, groups=1, eps=1e-5):
    from torch import nn

    module = _module(nn.GroupNorm(groups, x.shape[1], eps=eps, affine=gamma is not None), x)
    return _refused(
        lambda: _call(module, {"weight": gamma, "bias": beta}, x),
        f"GroupNorm on x {tuple(x.shape)} with groups={groups}",
    )


def rms_norm(x, gamma, eps=1e-6):
    from torch import nn

    module = _module(nn.RMSNorm(tuple(gamma.shape), eps=eps), x)
    return _call(module, {"weight": gamma}, x)


# -- InstanceNorm ------------------------------------------------------------------------------


def _instance_norm_module(x, eps, affine, track=False, momentum=0.1):
    from torch import nn

    classes = {3: nn.InstanceNorm1d, 4: nn.InstanceNorm2d, 5: nn.InstanceNorm3d}
    if x.ndim not in classes:
        raise Unsupported(f"torch InstanceNorm takes batched 3-5 dim input, got {tuple(x.shape)}")
    module = classes[x.ndim](
        x.shape[1], eps=eps, momentum=momentum, affine=affine, track_running_stats=track
    )
    return _module(module, x)


def instance_norm(x, gamma=None, beta=None, eps=1e-5):
    module = _instance_norm_module(x, eps, gamma is not None).train()
    return _refused(
        lambda: _call(module, {"weight": gamma, "bias": beta}, x),
        f"InstanceNorm on x {tuple(x.shape)}",
    )


def instance_norm_train(
    x, gamma=None, beta=None, *, running_mean, running_var, momentum=0.1, eps=1e-5
):
    module = _instance_norm_module(x, eps, gamma is not None, True, momentum).train()
    _set_running(module, running_mean, running_var)
    y = _refused(
        lambda: _call(module, {"weight": gamma, "bias": beta}, x),
        f"InstanceNorm on x {tuple(x.shape)}",
    )
    return (y, *_running(module))


def instance_norm_eval(x, gamma=None, beta=None, *, running_mean, running_var, eps=1e-5):
    module = _instance_norm_module(x, eps, gamma is not None, True).eval()
    _set_running(module, running_mean, running_var)
    return _call(module, {"weight": gamma, "bias": beta}, x)


# -- activations -------------------------------------------------------------------------------


def tanh(x):
    import torch

    return torch.tanh(x)


def sigmoid(x):
    import torch

    return torch.sigmoid(x)


def gelu(x):
    # torch's default approximate='none' is the exact x Φ(x): nnspec's canonical GELU.
    from torch.nn import functional

    return functional.gelu(x, approximate="none")


def gelu_tanh(x):
    from torch.nn import functional

    return functional.gelu(x, approximate="tanh")


# -- squeeze-and-excitation ----------------------------------------------------------------


def se_conv_params(w1, b1, w2, b2, prefix: tuple[str, str] = ("fc1", "fc2")) -> dict:
    """nnspec's W1 (C_r, C), W2 (C, C_r) as the 1x1 convolutions of torchvision and timm."""
    fc1, fc2 = prefix
    return {
        f"{fc1}.weight": w1.reshape(*w1.shape, 1, 1),
        f"{fc1}.bias": b1,
        f"{fc2}.weight": w2.reshape(*w2.shape, 1, 1),
        f"{fc2}.bias": b2,
    }


def squeeze_excitation(x, w1, b1, w2, b2):
    from torchvision.ops import SqueezeExcitation

    module = _module(SqueezeExcitation(x.shape[1], w1.shape[0]), x)
    return _call(module, se_conv_params(w1, b1, w2, b2), x)


# torch's CPU LayerNorm backward (layer_norm_kernel.cpp) keeps dγ and dβ in a per-thread buffer
# of the input's dtype and adds each row to it in float32, storing back to the dtype: in float16
# and bfloat16 the sum over rows rounds once per row. With one thread torch's dβ matched that
# row-by-row sum bit for bit (100 of 100 cases of 34 rows); mean error over 34 rows of N(0, 1)
# 0.055 in bfloat16 and 0.0075 in float16 where a float32 accumulator's is 0.013 and 0.0018.
# Every gradient check of a torch-based LayerNorm (nn.LayerNorm, timm's and HF's blocks) has it;
# it shows where the rows are many: thorough seed 8, vit_vjp bfloat16 (the final LayerNorm's dβ
# over 34 rows, margin 1.48, torch, timm and HF alike) and encoder_vjp / decoder_vjp float16
# (the last LayerNorm's dβ, margin 1.03).
_LAYER_NORM_LOW_SUMS = cpu_kernel(
    Intermittent(
        "torch's CPU LayerNorm backward sums dγ and dβ over rows in a float16/bfloat16 buffer, "
        "one rounding per row (matched bit for bit): over 34 rows 4x the error of a float32 "
        "accumulator, growing with the rows; intermittent (torch 2.14.1)"
    )
)
LAYER_NORM_XFAILS = {
    f"{check}/{dtype}": _LAYER_NORM_LOW_SUMS
    for check in (
        "norm/layer_norm_vjp",
        "transformer/encoder_vjp",
        "transformer/pre_ln_vjp",
        "transformer/decoder_vjp",
        "transformer/pre_ln_decoder_vjp",
        "vit/vit_block_vjp",
        "vit/vit_vjp",
        "swin/swin_block_vjp",
        "swin/patch_merging_vjp",
    )
    for dtype in ("float16", "bfloat16")
}


# Known deviations observed with torch 2.14.1 (CPU); the checks still run and show as xfail.
XFAILS = {
    **LAYER_NORM_XFAILS,
    "activation/gelu_negative_tail*": Intermittent(
        "torch computes GELU as x/2 (1 + erf(x/√2)), which "
        "cancels for x << 0: relative error 2e-6 at x = -7 in float64, 17% at x = -5 in float32, "
        "and 0 (gradient too) where x Φ(x) is below ~1e-16 (float64) or ~1e-12 (float32) "
        "(torch 2.14.1)"
    ),
    "activation/gelu_tanh_negative_tail*": Intermittent(
        "torch computes the tanh form as x/2 "
        "(1 + tanh(u)), which cancels for x << 0: 8% norm-wise error on x in [-10, -2] in "
        "float64, 100% (zeros) in float32 (torch 2.14.1)"
    ),
    # The same cancellation in ordinary float32 inputs whose elements all lie below about -4
    # (x = 4 N(0, 1), 8 elements, the norm then set by the tail): seen in the thorough profile
    # (seed 7), not in the ci profile's 25 examples.
    **{
        f"activation/{check}/float32": Intermittent(
            "torch's float32 GELU x/2 (1 + erf(x/√2)) cancels for x << 0: 0 at x = -5.6 and "
            "-6.5, relative error 5e-4 to 3e-3 at x in [-4.3, -4.1] (mpmath), so a tensor of "
            "negative elements is 5.5 eps off norm-wise against the reference's 0.2 (margin "
            "1.37; its gradient 1.12); intermittent (torch 2.14.1)"
        )
        for check in ("gelu_values", "gelu_vjp")
    },
    "activation/gelu_tanh_vjp/float32": Intermittent(
        "torch's float32 tanh-form GELU gradient (1 + t)/2 + x/2 (1 - t²) u', t = tanh(u), "
        "cancels for x << 0: on a tensor of elements in [-4, -1.4] 6.8 eps off norm-wise "
        "(margin 1.26, thorough profile); intermittent (torch 2.14.1)"
    ),
    # The same cancellation inside mixed tensors (x = 4 N(0, 1)): torch's backward
    # (1 + t)/2 + x/2 (1 - t²) u' with t = tanh(u) ~ -1 loses the elements at x in [-8, -3]
    # (t's rounding, eps/2, amplified ~|x| u' ~ 40x), where the reference's σ-form keeps them;
    # intermittent: about 1 example in 100 (a dev run of 60 examples: ~half the runs; the ci
    # profile's fixed 25 pass, reported as "not triggered this run").
    "activation/gelu_tanh_vjp/float64": Intermittent(
        "torch's tanh-form GELU gradient (1 + t)/2 + x/2 "
        "(1 - t²) u', t = tanh(u), cancels for x in [-8, -3]: one element at x = -6.98 (gradient "
        "-7.5e-14) off by 2.7e-15, 11.6 eps norm-wise where the honest-kernel models are within "
        "1 eps (margin 2.9; up to 5.5 seen); intermittent, ~1% of examples (torch 2.14.1)"
    ),
}

OPS = {
    "batch_norm": batch_norm,
    "batch_norm_train": batch_norm_train,
    "batch_norm_eval": batch_norm_eval,
    "layer_norm": layer_norm,
    "group_norm": group_norm,
    "instance_norm": instance_norm,
    "instance_norm_train": instance_norm_train,
    "instance_norm_eval": instance_norm_eval,
    "rms_norm": rms_norm,
    "tanh": tanh,
    "sigmoid": sigmoid,
    "gelu": gelu,
    "gelu_tanh": gelu_tanh,
    "squeeze_excitation": squeeze_excitation,
}
