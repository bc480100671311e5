"""What is benchmarked, at which typical size: one row per op.

Each row builds float64 inputs once and gives three callables: the reference forward+backward,
torch float64 forward+backward (autograd), and the forward alone for the reference and for
onnx.reference (onnx has no backward), so the report can state both ratios."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from conformance.ops import OPS


@dataclass(frozen=True)
class Case:
    op: str
    size: str  # stated in the report
    make: Callable[[np.random.Generator], tuple[list, dict]]  # -> (float args, options)


def _sdpa(rng):
    b, t, d = 32, 128, 64
    return [rng.standard_normal((b, t, d)) for _ in range(3)], {"causal": True}


def _softmax(rng):
    return [rng.standard_normal((32 * 128, 256))], {"axis": -1}


CASES: dict[str, Case] = {
    "softmax": Case("softmax", "(4096, 256)", _softmax),
    "sdpa": Case("sdpa", "B=32, T=128, d=64, causal", _sdpa),
}


def reference_forward(case: Case, args: list, options: dict) -> Callable[[], object]:
    return lambda: OPS[case.op].forward(*args, **options)


def reference_forward_backward(case: Case, args: list, options: dict) -> Callable[[], object]:
    op = OPS[case.op]

    def run():
        out = op.forward(*args, **options)
        return op.vjp(np.ones_like(out), *args, **options)

    return run


def torch_forward_backward(case: Case, args: list, options: dict) -> Callable[[], object]:
    import torch

    from conformance.adapters.pytorch import TORCH_OPS

    fn = TORCH_OPS[case.op]
    tensors = [torch.from_numpy(a).requires_grad_(True) for a in args]

    def run():
        out = fn(*tensors, **options)
        return torch.autograd.grad(out, tensors, grad_outputs=torch.ones_like(out))

    return run


def onnx_reference_forward(case: Case, args: list, options: dict) -> Callable[[], object]:
    from conformance.adapters.onnx_graphs import OnnxReference

    method = getattr(OnnxReference(), case.op)
    method(*args, **options)  # build and cache the graph outside the timing
    return lambda: method(*args, **options)
