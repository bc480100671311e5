"""The adapter protocol: how an implementation plugs into nnspec.

An adapter is a small class. It has a `name`, the `dtypes` it runs, the `device` it runs on,
the `variants` it implements (conformance/variants.py lists the keys), an `unavailable()` check
that returns a reason instead of raising, and one method per op in nnspec's canonical layout,
NumPy arrays in and out, in the dtype it was given:

    softmax(x, axis=-1) -> y                       x (..., n)
    log_softmax(x, axis=-1) -> y
    sdpa(q, k, v, mask=None, causal=False) -> out  q (..., Tq, dk), k (..., Tk, dk),
                                                   v (..., Tk, dv); mask bool (..., Tq, Tk),
                                                   True = may attend; out (..., Tq, dv)

A missing method means "not covered". Gradients: `<op>_vjp(cotangent, *inputs, **options)`
returns the gradients of the float inputs, or a generic `vjp(op, cotangent, *inputs,
**options)` serves every op (torch adapters get one from conformance.adapters.autograd).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any, ClassVar

DTYPES = ("float64", "float32", "float16", "bfloat16")


class Adapter:
    name: ClassVar[str] = "adapter"
    dtypes: ClassVar[tuple[str, ...]] = ("float64", "float32")
    device: ClassVar[str] = "cpu"
    variants: ClassVar[dict[str, Any]] = {}
    # Known deviations of the library: check-id glob ("attention/values/float64") -> reason.
    # Those checks still run and are reported as xfail, with the reason, in every report; a
    # reason wrapped in Intermittent() marks a deviation that only some inputs show.
    xfails: ClassVar[dict[str, str]] = {}

    def unavailable(self) -> str | None:
        """None when the adapter can run here, else the reason it cannot."""
        return None

    def describe(self) -> dict[str, Any]:
        """What the manifest records about this adapter (versions, backends)."""
        return {}


class Intermittent(str):
    """An xfail reason for a deviation that only some inputs show: a tail the examples reach
    now and then (x << 0 on ~1% of draws), or a low-precision accumulation that stays within
    the tolerance on small tensors, so that a pattern covers checks that pass on one run and
    fail on another. A covered check that passes is reported as "not triggered this run"
    rather than "passes now: remove it"; `nox -s soak` lists those that never fired."""

    __slots__ = ()


class CPUKernel(str):
    """An xfail reason for a deviation of a CPU kernel (oneDNN's LSTM, torch's CPU log_softmax
    in half precision): adapters that run the same library on a GPU, which runs other kernels,
    do not inherit it (torch_cuda.without_cpu_kernels). Made with cpu_kernel()."""

    __slots__ = ()


class _IntermittentCPUKernel(Intermittent, CPUKernel):
    __slots__ = ()


def cpu_kernel(reason: str) -> str:
    """reason marked as a CPU kernel's deviation, intermittent if it was."""
    return (_IntermittentCPUKernel if isinstance(reason, Intermittent) else CPUKernel)(reason)


def covers(adapter: Adapter, op: str) -> bool:
    return callable(getattr(adapter, op, None))


def refused_options(adapter: Adapter, op: str, options: Mapping[str, Any]) -> list[str]:
    """The keyword options that the adapter's op does not declare (no parameter of that name
    and no **kwargs): an option newer than the adapter makes the check "not covered" instead of
    a TypeError inside the call."""
    try:
        params = inspect.signature(getattr(adapter, op)).parameters.values()
    except (AttributeError, TypeError, ValueError):  # no signature to read: let the call tell
        return []
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return []
    names = {p.name for p in params if p.kind is not inspect.Parameter.VAR_POSITIONAL}
    return [k for k in options if k not in names]


def covers_vjp(adapter: Adapter, op: str) -> bool:
    return callable(getattr(adapter, f"{op}_vjp", None)) or (
        covers(adapter, op) and callable(getattr(adapter, "vjp", None))
    )


def call_vjp(adapter: Adapter, op: str, cotangent: Any, *inputs: Any, **options: Any) -> Any:
    own = getattr(adapter, f"{op}_vjp", None)
    if callable(own):
        return own(cotangent, *inputs, **options)
    return adapter.vjp(op, cotangent, *inputs, **options)


class Unsupported(Exception):
    """Raised by an adapter op for an input its library refuses (a dtype, a mask kind, a head
    size): the check is reported as not covered, with this reason, instead of as an error."""
