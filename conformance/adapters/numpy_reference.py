"""nnspec's own reference kernels as an adapter: the control row of every report (it must pass
everything; a fail here is a bug in nnspec) and the base class of the mutant zoo."""

from __future__ import annotations

from typing import Any

import numpy as np

from conformance.adapters.base import Adapter
from conformance.ops import OPS


class NumpyReference(Adapter):
    name = "reference"
    dtypes = ("float64", "float32")

    def describe(self) -> dict[str, Any]:
        return {"numpy": np.__version__}

    def __getattr__(self, op: str):
        # Every op of conformance/ops.py, as its reference defines it (canonical variants).
        if op in OPS:
            return OPS[op].forward
        raise AttributeError(op)

    def vjp(self, op: str, cotangent: np.ndarray, *inputs: Any, **options: Any):
        return OPS[op].vjp(cotangent, *inputs, **options)
