"""The CUDA configurations (conformance/adapters/torch_cuda.py) and the TF32 tolerance model.

The configurations' plumbing (switches set and restored, a refused SDPA backend as "not
covered") runs here on the CPU, where torch has the same switches; their numbers come from a
real GPU (reports/samples/, and tests/test_gpu_samples.py)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest

from conformance import tolerance
from conformance.adapters import load
from conformance.adapters.base import Adapter, CPUKernel, Intermittent, Unsupported, cpu_kernel
from conformance.adapters.torch_cuda import (
    CONFIGS,
    MEASURED_XFAILS,
    Config,
    adapter_class,
    settings,
    without_cpu_kernels,
)
from conformance.check import Check, CheckFailed
from reference import attention as ref
from reference import softmax as ref_softmax

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.name)
def test_each_configuration_is_a_builtin_adapter(config):
    adapter = load(config.name)
    assert adapter.name == config.name and adapter.dtypes == config.dtypes
    assert adapter.device.startswith("cuda")
    if not torch.cuda.is_available():
        assert adapter.unavailable() == "no CUDA device"


def _switches():
    b = torch.backends
    return (
        b.cuda.matmul.allow_tf32,
        b.cudnn.allow_tf32,
        b.cudnn.enabled,
        b.cudnn.deterministic,
        torch.are_deterministic_algorithms_enabled(),
    )


def test_settings_are_applied_and_restored_even_after_an_error():
    before = _switches()
    config = Config("x", tf32=True, cudnn=False, deterministic=True)
    with pytest.raises(ZeroDivisionError), settings(config):
        assert _switches() == (True, True, False, True, True)
        raise ZeroDivisionError
    assert _switches() == before
    with settings(Config("y")):
        assert _switches()[:2] == (False, False)  # TF32 off for cuDNN too (torch's default: on)
    assert _switches() == before


def _on_cpu(config_name: str):
    config = next(c for c in CONFIGS if c.name == config_name)

    class OnCPU(adapter_class(config)):  # the same adapter, its tensors on the CPU
        device = "cpu"

    return OnCPU()


def test_a_backend_that_refuses_the_input_is_unsupported_with_torchs_reason():
    # torch has no cuDNN attention on the CPU: the forced backend refuses every input there.
    adapter = _on_cpu("torch-cuda-sdpa-cudnn")
    q = np.random.default_rng(0).standard_normal((2, 3, 4))
    with pytest.raises(Unsupported, match="sdpa backend cudnn refuses the input: No"):
        adapter.sdpa(q, q, q)
    with pytest.raises(Unsupported, match="sdpa backend cudnn"):
        adapter.vjp("sdpa", q, q, q, q)
    other = _on_cpu("torch-cuda-sdpa-math")
    assert other.sdpa(q, q, q).shape == q.shape


def test_a_forced_backend_configuration_sends_mha_through_sdpa(monkeypatch):
    # nn.MultiheadAttention's fast path (eval, no autograd) would run its own kernel, which
    # falls back to unfused math where the forced backend refuses: each call must reach
    # F.scaled_dot_product_attention, and the switch is restored afterwards.
    calls = []
    sdpa = torch.nn.functional.scaled_dot_product_attention
    monkeypatch.setattr(
        torch.nn.functional,
        "scaled_dot_product_attention",
        lambda *a, **k: calls.append(1) or sdpa(*a, **k),
    )
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    W = [rng.standard_normal((4, 4)).astype(np.float32) for _ in range(4)]
    b = [np.zeros(4, np.float32)] * 3
    before = torch.backends.mha.get_fastpath_enabled()
    for name in ("torch-cuda-sdpa-math", "torch-cuda-sdpa-flash"):
        calls.clear()
        _on_cpu(name).mha(x, x, *W, *b, n_heads=2)
        assert calls, name
    assert torch.backends.mha.get_fastpath_enabled() == before


def test_the_configuration_switches_hold_inside_the_op():
    seen = []
    config = next(c for c in CONFIGS if c.name == "torch-cuda-no-cudnn")

    class Probe(adapter_class(config)):
        device = "cpu"
        ops: ClassVar[dict] = {
            "batch_norm": lambda *a, **k: seen.append(_switches()) or torch.zeros(1)
        }

    Probe().batch_norm(np.zeros(1))
    assert seen == [(False, False, False, False, False)]


# -- the TF32 model ---------------------------------------------------------------------------


def _truncate(x: np.ndarray, keep: int) -> np.ndarray:
    """float32 values with only `keep` mantissa bits, the rest dropped (truncation, the
    rounding mode the model's baseline does not use)."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    mask = np.uint32((0xFFFFFFFF << (23 - keep)) & 0xFFFFFFFF)
    return (bits & mask).view(np.float32)


def _emulated(keep: int, precision: str | None):
    """An sdpa kernel that reads its matmul operands with `keep` mantissa bits (10: TF32; 7:
    bfloat16) and accumulates in float32, written with torch on the CPU; `precision` is what it
    declares."""

    class Emulated(Adapter):
        name = f"emulated-{keep}-bits"
        dtypes = ("float32",)
        matmul_precision = {"float32": precision} if precision else {}

        def sdpa(self, q, k, v, mask=None, causal=False):
            t = [torch.from_numpy(_truncate(a, keep)) for a in (q, k, v)]
            scores = t[0] @ t[1].transpose(-1, -2) / np.float32(np.sqrt(q.shape[-1]))
            p = torch.softmax(scores, dim=-1).numpy()
            return (torch.from_numpy(_truncate(p, keep)) @ t[2]).numpy()

    return Emulated()


def _cases(n: int = 12):
    rng = np.random.default_rng(7)
    for _ in range(n):
        b, t, d = rng.integers(1, 4), rng.integers(4, 17), rng.integers(4, 33)
        yield tuple(rng.standard_normal((b, t, d)) for _ in range(3))


def test_a_tf32_kernel_passes_the_tf32_model_and_fails_plain_float32():
    tf32 = Check(_emulated(10, "tfloat32"), "float32")
    for q, k, v in _cases():
        tf32.compare("sdpa", q, k, v)
    assert tf32.read == "tfloat32" and tf32.worst.margin < 1
    undeclared = Check(_emulated(10, None), "float32")
    with pytest.raises(CheckFailed):
        for q, k, v in _cases():
            undeclared.compare("sdpa", q, k, v)


def test_a_kernel_with_fewer_bits_than_tf32_fails_the_tf32_model():
    bf16 = Check(_emulated(7, "tfloat32"), "float32")
    with pytest.raises(CheckFailed):
        for q, k, v in _cases():
            bf16.compare("sdpa", q, k, v)


def test_tf32_floor_applies_only_where_a_model_read_tf32_operands():
    assert tolerance.floor("float32", "tfloat32") == tolerance.FLOOR_ULPS * 2.0**-10
    assert tolerance.floor("float64", "tfloat32") == tolerance.floor("float64")
    x = np.random.default_rng(0).standard_normal((3, 5))
    no_matmul = tolerance.models(ref_softmax.softmax, [x], {}, "float32", "tfloat32")
    with_matmul = tolerance.models(ref.sdpa, [x, x, x], {}, "float32", "tfloat32")
    assert no_matmul.operands is None and with_matmul.operands == "tfloat32"


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.name)
def test_cuda_adapters_do_not_inherit_cpu_kernel_deviations(config):
    from conformance.adapters.pytorch import TorchCPU
    from conformance.adapters.thirdparty_se import TimmCPU, TimmCUDA

    for cpu, cuda in ((TorchCPU, adapter_class(config)), (TimmCPU, TimmCUDA)):
        cpu_only = {k for k, v in cpu.xfails.items() if isinstance(v, CPUKernel)}
        assert cpu_only  # the CPU LayerNorm backward's float16/bfloat16 sums at least
        # A check may still be declared on CUDA, for a deviation measured there (cuDNN's LSTM).
        measured = MEASURED_XFAILS.get(cuda.name, {})
        assert all(cuda.xfails.get(k) == measured.get(k) for k in cpu_only)
        shared = set(cpu.xfails) - cpu_only
        assert shared <= set(cuda.xfails)  # e.g. torch's GELU formula, the same on CUDA
        # A reason that names a CPU kernel is marked as one (a lint of the declarations).
        named = {k for k, v in cpu.xfails.items() if "CPU" in v or "oneDNN" in v}
        assert named == cpu_only


def test_cpu_kernel_mark_keeps_the_reason_and_its_kind():
    # Intermittent decides "xfail" vs "not triggered this run": the CPU mark must not drop it.
    flaky, always = cpu_kernel(Intermittent("a tail")), cpu_kernel("every input")
    assert isinstance(flaky, CPUKernel) and isinstance(flaky, Intermittent) and flaky == "a tail"
    assert isinstance(always, CPUKernel) and not isinstance(always, Intermittent)
    assert without_cpu_kernels({"a": flaky, "b": always, "c": "on every device"}) == {
        "c": "on every device"
    }
