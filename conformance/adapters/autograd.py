"""Vector-Jacobian products through torch.autograd, for any adapter whose ops are torch
functions: the gradient half of the adapter protocol comes for free."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def module_cache() -> Callable[[tuple, Callable[[], Any]], Any]:
    """cached(key, build): the module built once per key, for one adapter module (each keeps
    its own memo, so equal keys of two libraries never meet)."""
    modules: dict[tuple, Any] = {}

    def cached(key: tuple, build: Callable[[], Any]) -> Any:
        if key not in modules:
            modules[key] = build()
        return modules[key]

    return cached


def to_torch(x: Any, device: str, requires_grad: bool = False):
    import torch

    if not isinstance(x, np.ndarray):
        return x
    if x.dtype.name == "bfloat16":  # torch cannot read ml_dtypes arrays directly
        bits = np.asarray(x.view(np.uint16).astype(np.int32) << 16)  # 0-d stays an array
        t = torch.from_numpy(bits).view(torch.float32)
        t = t.to(torch.bfloat16)
    else:
        # ascontiguousarray makes a 0-d array 1-d: reshape back (a scalar loss's cotangent).
        t = torch.from_numpy(np.ascontiguousarray(x)).reshape(x.shape)
    t = t.to(device)
    return t.requires_grad_(True) if requires_grad else t


def to_numpy(t) -> np.ndarray:
    import ml_dtypes
    import torch

    t = t.detach().cpu()
    if t.dtype == torch.bfloat16:
        return t.float().numpy().astype(ml_dtypes.bfloat16)
    return t.numpy()


def vjp(
    fn: Callable, cotangent: np.ndarray, inputs: tuple, options: dict[str, Any], device: str
) -> tuple[np.ndarray, ...]:
    """Gradients of <cotangent, fn(*inputs, **options)> with respect to every float input."""
    import torch

    def differentiable(x: Any) -> bool:
        return isinstance(x, np.ndarray) and (x.dtype.kind == "f" or x.dtype.name == "bfloat16")

    tensors = [to_torch(x, device, requires_grad=differentiable(x)) for x in inputs]
    opts = {k: to_torch(v, device) for k, v in options.items()}
    out = fn(*tensors, **opts)
    wrt = [t for t in tensors if isinstance(t, torch.Tensor) and t.requires_grad]
    grads = torch.autograd.grad(out, wrt, grad_outputs=to_torch(cotangent, device))
    return tuple(to_numpy(g) for g in grads)
