"""Library behaviour the norm-family adapters work around, pinned so that a library upgrade that
changes it is noticed (the adapters' docstrings state each)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from conformance.adapters import onnx_norm

needs_ort = pytest.mark.skipif(
    importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("onnx") is None,
    reason="onnx/onnxruntime not installed",
)
needs_torch = pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="no torch")


@needs_ort
def test_onnxruntime_batch_norm_training_writes_into_its_inputs():
    # onnxruntime 1.31.1 updates input_mean / input_var in place when they are fed zero-copy:
    # the reason OnnxNormMixin feeds copies.
    import onnxruntime

    model = onnx_norm.batch_norm_graph("float32", 2, True, 0, epsilon=1e-5, momentum=0.5)
    session = onnxruntime.InferenceSession(
        model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    x = np.array([[1.0], [3.0]], dtype=np.float32)
    one, mean, var = (np.ones(1, np.float32) for _ in range(3))
    session.run(None, {"X": x, "scale": one, "B": one * 0, "input_mean": mean, "input_var": var})
    assert mean[0] != 1.0 or var[0] != 1.0, "onnxruntime no longer writes into its inputs"


@needs_ort
def test_onnx_adapter_leaves_caller_arrays_alone():
    from conformance.adapters.onnx_graphs import OnnxRuntime

    x = np.array([[1.0], [3.0]], dtype=np.float32)
    mean, var = np.ones(1, np.float32), np.ones(1, np.float32)
    _, new_mean, new_var = OnnxRuntime().batch_norm_train(
        x, None, None, running_mean=mean, running_var=var, momentum=0.5
    )
    assert mean[0] == 1.0 and var[0] == 1.0
    # ONNX's convention: momentum weights the old value; biased batch variance (1.0)
    np.testing.assert_allclose([new_mean[0], new_var[0]], [0.5 * 1 + 0.5 * 2, 0.5 * 1 + 0.5 * 1])


@needs_torch
@pytest.mark.parametrize(
    ("build", "shape"),
    [
        ("batch", (1, 3, 1, 1)),  # one value per channel
        ("instance", (2, 3, 1, 1)),  # one spatial element
        ("group", (1, 3, 1, 1)),  # N * C/G * H * W == 1
    ],
)
def test_torch_refuses_one_value_groups(build, shape):
    # torch 2.14.1 raises these ValueErrors; the adapter keeps BatchNorm's (nnspec refuses too)
    # and turns the others into Unsupported (nnspec defines the output there: β).
    import torch

    module = {
        "batch": torch.nn.BatchNorm2d(3),
        "instance": torch.nn.InstanceNorm2d(3),
        "group": torch.nn.GroupNorm(3, 3),
    }[build]
    with pytest.raises(ValueError, match="Expected more than 1"):
        module(torch.zeros(shape))
