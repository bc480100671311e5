"""A fake GPU adapter: it claims a CUDA device and float32, but computes every op in float16
(a kernel that silently runs a half-precision path, or autocast left on). The float32
tolerance must catch it; its rows are reported as device cuda:0, like a real GPU's."""

from typing import Any

import numpy as np

from conformance.adapters.numpy_reference import NumpyReference
from conformance.ops import OPS


def _half(x: Any) -> Any:
    return x.astype(np.float16) if isinstance(x, np.ndarray) and x.dtype == np.float32 else x


def _back(y: Any) -> Any:
    if isinstance(y, tuple):
        return tuple(_back(v) for v in y)
    return y.astype(np.float32) if isinstance(y, np.ndarray) and y.dtype == np.float16 else y


class FakeGPUHalf(NumpyReference):
    name = "mutant-gpu-silent-half"
    device = "cuda:0"
    dtypes = ("float32",)

    def __getattr__(self, op: str):
        if op not in OPS:
            raise AttributeError(op)

        def run(*inputs: Any, **options: Any) -> Any:
            args = [_half(x) for x in inputs]
            return _back(OPS[op].forward(*args, **{k: _half(v) for k, v in options.items()}))

        return run

    def vjp(self, op: str, cotangent: np.ndarray, *inputs: Any, **options: Any):
        args = [_half(x) for x in (cotangent, *inputs)]
        return _back(OPS[op].vjp(*args, **{k: _half(v) for k, v in options.items()}))
