"""Which GELU torch's encoder-layer fast path (eval, no autograd: torch._transformer_encoder_
layer_fwd) evaluates: its output beside the autograd path's with the exact GELU and with the tanh
form, in float64, where the two GELUs differ by ~1e-4 and rounding by ~1e-16. Behind torch-cuda's
declared fast-path deviation (conformance/adapters/torch_cuda.py).
Usage: python reports/samples/encoder_fast_path.py (CUDA if present, else CPU)"""

from __future__ import annotations

import functools


def main() -> None:
    import torch
    import torch.nn.functional as F

    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    calls = []
    fused = torch._transformer_encoder_layer_fwd

    def counted(*args, **kwargs):
        calls.append(1)
        return fused(*args, **kwargs)

    torch._transformer_encoder_layer_fwd = counted  # to show that the fast path ran
    for norm_first in (False, True):
        layer = torch.nn.TransformerEncoderLayer(
            16, 2, 32, dropout=0.0, activation="gelu", batch_first=True, norm_first=norm_first
        )
        layer = layer.to(device, torch.float64).eval()
        x = torch.randn(3, 7, 16, dtype=torch.float64, device=device)
        with torch.no_grad():
            fast = layer(x)
        took, calls[:] = bool(calls), []
        slow = {}
        for name, activation in (
            ("exact", F.gelu),
            ("tanh", functools.partial(F.gelu, approximate="tanh")),
        ):
            # a partial is not recognised as relu/gelu, so the layer takes the autograd path
            layer.activation, layer.activation_relu_or_gelu = activation, 0
            slow[name] = layer(x.clone().requires_grad_()).detach()
        assert not calls, "the autograd path called the fused kernel"
        print(
            f"{device} float64 norm_first={norm_first} (fast path taken: {took}): "
            "max |fast - exact GELU path| = "
            f"{(fast - slow['exact']).abs().max().item():.3g}, max |fast - tanh GELU path| = "
            f"{(fast - slow['tanh']).abs().max().item():.3g}"
        )


if __name__ == "__main__":
    main()
