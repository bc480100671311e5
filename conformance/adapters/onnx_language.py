"""ONNX language-model graphs for the ONNX adapters: a mixin of `_OnnxAdapter`
(conformance/adapters/onnx_graphs.py), whose graph cache and runners it reuses. Opset 13, every
dim symbolic, token ids int64:

- embedding: Gather(Transpose(W_emb), ids, axis=0) (how exporters write nn.Embedding: a row
  table, here W_emb^T).
- one_hot_embedding: MatMul(Cast(OneHot(ids, V, values=[0, 1] float32)), Transpose(W_emb)):
  the notes' product z = W_emb x̂ (onnxruntime has no float64 OneHot kernel; the cast is exact).
- lm_head: MatMul(h, Transpose(W_d)) + b_d.
- cross_entropy: SoftmaxCrossEntropyLoss on the logits flattened to (N, V) with its reduction
  and ignore_index attributes. The op has no label smoothing: label_smoothing > 0 is
  Unsupported (not covered).

No ONNX op has a gradient: these ops have no vjp.
"""

from __future__ import annotations

import numpy as np

from conformance.adapters.base import Intermittent, Unsupported

LANGUAGE_OPSET = 13


def _graph(dtype: str, nodes: list, floats: dict, ints: dict, out_dims: list, name: str, f32=None):
    """Inputs: floats in dtype, ints int64, f32 float32; one output y in dtype."""
    from onnx import TensorProto, helper

    from conformance.adapters import onnx_graphs

    elem = onnx_graphs._elem_type(dtype)
    inputs = [helper.make_tensor_value_info(n, elem, d) for n, d in floats.items()]
    inputs += [helper.make_tensor_value_info(n, TensorProto.INT64, d) for n, d in ints.items()]
    inputs += [
        helper.make_tensor_value_info(n, TensorProto.FLOAT, d) for n, d in (f32 or {}).items()
    ]
    outputs = [helper.make_tensor_value_info("y", elem, out_dims)]
    return onnx_graphs._model(nodes, inputs, outputs, LANGUAGE_OPSET, name)


def _dims(prefix: str, rank: int) -> list[str]:
    return [f"{prefix}{i}" for i in range(rank)]


def embedding_graph(dtype: str, rank: int):
    from onnx import helper

    nodes = [
        helper.make_node("Transpose", ["W"], ["table"], perm=[1, 0]),
        helper.make_node("Gather", ["table", "ids"], ["y"], axis=0),
    ]
    ids = _dims("n", rank)
    return _graph(dtype, nodes, {"W": ["E", "V"]}, {"ids": ids}, [*ids, "E"], "embedding")


def one_hot_embedding_graph(dtype: str, rank: int):
    from onnx import helper

    from conformance.adapters import onnx_graphs

    nodes = [
        # values in float32 (onnxruntime has no float64 OneHot kernel), cast exactly (0 and 1)
        helper.make_node("OneHot", ["ids", "depth", "values"], ["x32"], axis=-1),
        helper.make_node("Cast", ["x32"], ["x"], to=onnx_graphs._elem_type(dtype)),
        helper.make_node("Transpose", ["W"], ["table"], perm=[1, 0]),
        helper.make_node("MatMul", ["x", "table"], ["y"]),
    ]
    ids = _dims("n", rank)
    floats, ints = {"W": ["E", "V"]}, {"ids": ids, "depth": []}
    return _graph(dtype, nodes, floats, ints, [*ids, "E"], "one_hot", {"values": [2]})


def lm_head_graph(dtype: str, rank: int):
    from onnx import helper

    nodes = [
        helper.make_node("Transpose", ["W"], ["Wt"], perm=[1, 0]),
        helper.make_node("MatMul", ["h", "Wt"], ["z"]),
        helper.make_node("Add", ["z", "b"], ["y"]),
    ]
    h = _dims("n", rank - 1)
    floats = {"h": [*h, "H"], "W": ["V", "H"], "b": ["V"]}
    return _graph(dtype, nodes, floats, {}, [*h, "V"], "lm_head")


def cross_entropy_graph(dtype: str, reduction: str, ignore_index: int | None):
    from onnx import helper

    attributes = {"reduction": reduction}
    if ignore_index is not None:
        attributes["ignore_index"] = int(ignore_index)
    nodes = [helper.make_node("SoftmaxCrossEntropyLoss", ["scores", "labels"], ["y"], **attributes)]
    out = ["N"] if reduction == "none" else []
    return _graph(dtype, nodes, {"scores": ["N", "V"]}, {"labels": ["N"]}, out, "cross_entropy")


class OnnxLanguageMixin:
    """embedding, one_hot_embedding, lm_head and cross_entropy as ONNX graphs."""

    def _language_run(self, op: str, key: tuple, build, feeds: dict) -> np.ndarray:
        from conformance.adapters.onnx_graphs import _Refused

        try:
            run = self._runner((op, *key), build)
        except _Refused as exc:
            raise Unsupported(f"{self.name} cannot run {op} ({key}): {exc}") from None
        # ascontiguousarray makes a 0-d array 1-d (the OneHot depth): reshape back.
        return run({k: np.ascontiguousarray(v).reshape(np.shape(v)) for k, v in feeds.items()})

    def embedding(self, ids, W_emb):
        dtype = W_emb.dtype.name
        return self._language_run(
            "embedding",
            (dtype, ids.ndim),
            lambda: embedding_graph(dtype, ids.ndim),
            {"W": W_emb, "ids": ids.astype(np.int64)},
        )

    def one_hot_embedding(self, ids, W_emb):
        dtype = W_emb.dtype.name
        feeds = {
            "W": W_emb,
            "ids": ids.astype(np.int64),
            "depth": np.asarray(W_emb.shape[1], dtype=np.int64),
            "values": np.array([0, 1], dtype=np.float32),
        }
        return self._language_run(
            "one_hot_embedding",
            (dtype, ids.ndim),
            lambda: one_hot_embedding_graph(dtype, ids.ndim),
            feeds,
        )

    def lm_head(self, h, W_d, b_d):
        dtype = h.dtype.name
        return self._language_run(
            "lm_head",
            (dtype, h.ndim),
            lambda: lm_head_graph(dtype, h.ndim),
            {"h": h, "W": W_d, "b": b_d},
        )

    def cross_entropy(
        self, logits, targets, reduction="mean", label_smoothing=0.0, ignore_index=None
    ):
        if label_smoothing:
            raise Unsupported("SoftmaxCrossEntropyLoss has no label smoothing")
        dtype = logits.dtype.name
        V = logits.shape[-1]
        out = self._language_run(
            "cross_entropy",
            (dtype, reduction, ignore_index),
            lambda: cross_entropy_graph(dtype, reduction, ignore_index),
            {"scores": logits.reshape(-1, V), "labels": targets.reshape(-1).astype(np.int64)},
        )
        return out.reshape(targets.shape) if reduction == "none" else out


# Observed with onnx 1.23.2: onnx.reference evaluates SoftmaxCrossEntropyLoss with NumPy in the
# input dtype and as np.log(p) of the softmax p (onnx/reference/ops/
# op_softmax_cross_entropy_loss.py), not as a log-sum-exp: a confident token's loss
# -log p_k = log(1 + Σ e^{z_j - z_k}) loses its digits once p_k rounds near 1. In float16 and
# bfloat16 (loss ~1e-3) it is diagnosed "imprecise: within the error of a kernel that accumulates
# in float16"; ordinary losses pass unless a drawn token happens to be confident (dev profile,
# seed 303: a 2-word vocabulary, margins 2.7 and 2.9 on the values, 1.95 on the loss against
# -log_softmax[target]); the thorough profile found the same in float64 (seed 7: margin 6.45,
# a 2-word vocabulary) and float32 (1.77; seed 8: the confident-token check, 1.05):
# intermittent there.
_LOW = (
    "onnx.reference computes SoftmaxCrossEntropyLoss as log(softmax) in the input dtype: a "
    "confident token's loss -log p_k loses its digits as p_k rounds toward 1 (~1e-3 losses in "
    "float16/bfloat16, smaller ones in float32/float64; onnx 1.23.2)"
)
REFERENCE_XFAILS = {
    **{f"language/cross_entropy_confident/{d}": _LOW for d in ("float16", "bfloat16")},
    **{
        f"language/{check}/{d}": Intermittent(_LOW)
        for check in ("cross_entropy_values", "cross_entropy_is_negative_log_softmax")
        for d in ("float16", "bfloat16")
    },
    **{
        f"language/{check}/{d}": Intermittent(_LOW)
        for check in ("cross_entropy_values", "cross_entropy_confident")
        for d in ("float32", "float64")
    },
}
