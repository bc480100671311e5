"""Broken adapters: each breaks the protocol in one way the suite must turn into a clear row."""

import numpy as np

from conformance.adapters.base import Intermittent, Unsupported
from conformance.adapters.numpy_reference import NumpyReference
from reference.softmax import softmax


class Raises(NumpyReference):
    name = "fault-raises"

    def softmax(self, x, axis=-1):
        raise RuntimeError("kernel exploded <script>alert(1)</script>")


class ReturnsNaN(NumpyReference):
    name = "fault-nan"

    def softmax(self, x, axis=-1):
        return np.full_like(x, np.nan)


class WrongShape(NumpyReference):
    name = "fault-shape"

    def softmax(self, x, axis=-1):
        return softmax(x, axis)[..., :1].copy()


class WrongDtype(NumpyReference):
    name = "fault-dtype"

    def softmax(self, x, axis=-1):
        return softmax(x, axis).astype(np.float16)


class ReturnsList(NumpyReference):
    name = "fault-list"

    def softmax(self, x, axis=-1):
        return softmax(x, axis).tolist()


class Unavailable(NumpyReference):
    name = "fault-unavailable"

    def unavailable(self):
        return "mylib is not installed"


class OnlySoftmax:
    """Duck-typed (no base class), covering one op: everything else is not covered."""

    name = "partial"
    dtypes = ("float64",)

    def unavailable(self):
        return None

    def softmax(self, x, axis=-1):
        e = np.exp(x - x.max(axis=axis, keepdims=True))
        return e / e.sum(axis=axis, keepdims=True)


class NotAnAdapter:
    pass


def broken_constructor():
    raise ValueError("no")


class Hangs(NumpyReference):
    name = "fault-hangs"

    def softmax(self, x, axis=-1):
        import time

        time.sleep(60)


class Crashes(NumpyReference):
    """Kills its process inside softmax, as a segfault in a native kernel would."""

    name = "fault-crash"

    def softmax(self, x, axis=-1):
        import os

        os._exit(139)


class LeaksMemory(NumpyReference):
    """Keeps every buffer it allocates, as a cache that never evicts would: run with a small
    --memory-limit, it must become an error row while the run goes on."""

    name = "fault-leak"

    def __init__(self) -> None:
        self.kept: list = []

    def softmax(self, x, axis=-1):
        while True:
            self.kept.append(np.ones(2**25))  # 256 MiB at a time


class DeclaresIntermittent(NumpyReference):
    """Not broken: the reference, declaring an intermittent deviation on softmax's values and
    an ordinary one on its sums to one (both checks pass)."""

    name = "declares-intermittent"
    xfails = {  # noqa: RUF012
        "softmax/values/*": Intermittent("fires on rare inputs only"),
        "softmax/sums_to_one/*": "an ordinary deviation",
    }


class RefusesOddWidths(NumpyReference):
    """Not broken: refuses softmax rows of odd width (as a fused kernel refuses some head
    sizes), computes the others exactly."""

    name = "refuses-odd"

    def softmax(self, x, axis=-1):
        if x.shape[axis] % 2:
            raise Unsupported(f"width {x.shape[axis]} is odd")
        return softmax(x, axis=axis)


class RefusesEveryInput(NumpyReference):
    """Refuses every softmax input (as a backend refuses a dtype)."""

    name = "refuses-all"

    def softmax(self, x, axis=-1):
        raise Unsupported("no kernel for this dtype")
