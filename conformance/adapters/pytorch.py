"""PyTorch adapters: the same torch functions on CPU and on a CUDA device.

Each op is a function on tensors in nnspec's canonical layout; the adapter converts NumPy in and
out, and gradients come from autograd (conformance.adapters.autograd)."""

from __future__ import annotations

import functools
import importlib.util
import math
from typing import Any, ClassVar

import numpy as np

from conformance.adapters import (
    autograd,
    torch_attention,
    torch_language,
    torch_norm,
    torch_recurrent,
    torch_vision,
)
from conformance.adapters.base import Adapter


def _softmax(x, axis=-1):
    import torch

    return torch.softmax(x, dim=axis)


def _log_softmax(x, axis=-1):
    import torch

    return torch.log_softmax(x, dim=axis)


def _sdpa(q, k, v, mask=None, causal=False, attn_bias=None):
    """F.scaled_dot_product_attention on 4-D (N, 1, T, d) tensors: the fused CUDA backends
    (flash, memory-efficient, cuDNN) take only 4-D inputs, so nnspec's leading dims are folded
    into N (a layout mapping; the math backend computes the same either way)."""
    import torch

    extra = [t for t in (mask, attn_bias) if t is not None]
    batch = tuple(torch.broadcast_shapes(*(t.shape[:-2] for t in (q, k, v, *extra))))
    tq, tk = q.shape[-2], k.shape[-2]

    n = math.prod(batch)

    def fold(t):
        return None if t is None else t.expand(*batch, *t.shape[-2:]).reshape(n, 1, *t.shape[-2:])

    out = _sdpa_4d(fold(q), fold(k), fold(v), fold(mask), causal, fold(attn_bias), tq, tk)
    return out.reshape(*batch, tq, v.shape[-1])


def _sdpa_4d(q, k, v, mask, causal, attn_bias, tq, tk):
    import torch
    from torch.nn.functional import scaled_dot_product_attention

    if attn_bias is not None:  # torch adds a float attn_mask to the scores
        allowed = mask
        if causal:
            tril = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool, device=q.device).tril()
            allowed = tril if allowed is None else allowed & tril
        bias = attn_bias.to(q.dtype)
        if allowed is not None:
            bias = bias.masked_fill(~allowed, float("-inf"))
        return scaled_dot_product_attention(q, k, v, attn_mask=bias)

    if mask is not None and causal:
        # torch refuses attn_mask together with is_causal; its is_causal is top-left aligned.
        tril = torch.ones(tq, tk, dtype=torch.bool, device=q.device).tril()
        return scaled_dot_product_attention(q, k, v, attn_mask=mask & tril)
    return scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal)


# op -> torch function on tensors in nnspec's canonical layout (see conformance/adapters/base.py)
TORCH_OPS = {
    "softmax": _softmax,
    "log_softmax": _log_softmax,
    "sdpa": _sdpa,
    **torch_recurrent.OPS,
    **torch_norm.OPS,
    **torch_attention.OPS,
    **torch_language.OPS,
    **torch_vision.OPS,
}


class TorchCPU(Adapter):
    """Torch functions on NumPy arrays. Adapters of torch-based libraries (timm, HF) subclass
    it with their own op table (`ops`) and the packages they need (`requires`)."""

    name = "torch"
    dtypes = ("float64", "float32", "float16", "bfloat16")
    device = "cpu"
    ops: ClassVar[dict[str, Any]] = TORCH_OPS
    requires: ClassVar[tuple[str, ...]] = ("torch",)
    variants: ClassVar[dict[str, Any]] = {**torch_recurrent.VARIANTS}
    xfails: ClassVar[dict[str, str]] = {
        **torch_norm.XFAILS,
        **torch_recurrent.XFAILS,
        **torch_language.XFAILS,
        # The mha_vjp (float16, float64) and linear_attention/quadratic_vjp (float32) margins
        # of 1.01-2.0 seen on 2-token cases were the honest-kernel model's, not torch's: the
        # model now computes softmax's backward row term as rowsum(dO * O) as torch's SDPA
        # backward does, and stores linear attention's saved normalizer and output
        # (reference/attention.py sdpa_vjp, reference/linear_attention.py).
    }
    # Property tests call with tiny tensors from several xdist workers: one intra-op thread per
    # worker avoids OpenMP oversubscription (measured on 2 busy cores: a (3, 4, 2, 2)
    # BatchNorm2d took 12 ms per call with torch's default 2 threads, 0.02 ms with 1).
    THREADS: ClassVar[int] = 1

    def unavailable(self) -> str | None:
        for module in self.requires:
            if importlib.util.find_spec(module) is None:
                return f"{module} is not installed"
        return None

    def _limit_threads(self) -> None:
        import torch

        if torch.get_num_threads() != self.THREADS:
            torch.set_num_threads(self.THREADS)

    def describe(self) -> dict[str, Any]:
        import torch

        self._limit_threads()
        return {"torch": torch.__version__, "threads": torch.get_num_threads()}

    def _run(self, op: str, *inputs: Any, **options: Any) -> np.ndarray:
        import torch

        self._limit_threads()
        with torch.no_grad():
            args = [autograd.to_torch(x, self.device) for x in inputs]
            opts = {k: autograd.to_torch(v, self.device) for k, v in options.items()}
            out = self.ops[op](*args, **opts)
            if isinstance(out, tuple):  # ops with several outputs (rnn: hs, h_T)
                return tuple(autograd.to_numpy(t) for t in out)
            return autograd.to_numpy(out)

    def __getattr__(self, op: str):
        # One method per op of the table: NumPy in, torch on self.device, NumPy out.
        if op in type(self).ops:
            return functools.partial(self._run, op)
        raise AttributeError(op)

    def vjp(self, op: str, cotangent: np.ndarray, *inputs: Any, **options: Any):
        self._limit_threads()
        return autograd.vjp(self.ops[op], cotangent, inputs, options, self.device)
