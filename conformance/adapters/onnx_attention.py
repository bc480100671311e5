"""ONNX graphs of the attention family for the ONNX adapters: a mixin of `_OnnxAdapter`
(conformance/adapters/onnx_graphs.py), whose graph cache and runners it reuses.

- mha: the projections as MatMul + Add, the ONNX `Attention` op (opset 23) on 3-D inputs with
  q_num_heads = kv_num_heads = H (it splits the heads itself, head h = features h*d_h ..
  (h+1)*d_h - 1, nnspec's layout), then MatMul W_O + Add b_o. nnspec's mask, key_mask and
  causal are folded into one boolean attn_mask (B, 1, Tq, Tk) here (ONNX's boolean mask is
  True = take part, nnspec's polarity), so is_causal stays 0. Every dim is symbolic; the graph
  is cached per (dtype, H, masked).
- encoder_layer / pre_ln_encoder_layer: the same attention subgraph inside the layer, with
  LayerNormalization (opset 17, stash_type double for float64) and Relu / Gelu (opset 20,
  approximate "none" / "tanh") for the feed-forward network. Opset 23 for the whole graph.
- linear_attention_causal: the ONNX `LinearAttention` op, which onnx 1.23.2 defines (opset 27,
  update_rule "linear": S_t = S_{t-1} + k_t v_t^T, o_t = scale q_t^T S_t). It has no feature
  map and no normalizer, so the graph applies φ (Elu + 1 or Relu) first and runs the op twice
  with scale 1: once on V for the numerator φ(Q_i)^T S_i and once on a column of ones for the
  normalizer φ(Q_i)^T z_i (z_i is the state of the ones column), then divides. onnxruntime
  1.31.1 does not know opset 27: there the op is not covered. onnx.reference's implementation
  computes in float32 for every dtype (a declared deviation in float64).

Observed: onnx.reference 1.23.2 refuses LayerNormalization with stash_type double
(NotImplementedError: not covered in float64); onnxruntime 1.31.1 has no float64 Erf kernel,
which its float64 Gelu expands into (not covered for GELU layers in float64).

No ONNX op has a gradient: these ops have no vjp.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from conformance.adapters.base import Unsupported

ATTENTION_OPSET = 23
LINEAR_ATTENTION_OPSET = 27

# Observed deviations (declared by the adapters in onnx_graphs.py).
_LINEAR_F32 = (
    "onnx.reference's LinearAttention casts query, key, value and the state to float32 whatever "
    "the input dtype: a float64 graph is ~1e-8 off (onnx 1.23.2)"
)
_ATTENTION_F64 = (
    "float64 Attention runs as its ONNX function body, which computes the scale "
    "sqrt(1/sqrt(d_h)) in float32 (relative error ~1e-8 to 1e-10; onnxruntime 1.31.1)"
)
REFERENCE_XFAILS: dict[str, str] = {
    "linear_attention/causal_values/float64": _LINEAR_F32,
    "linear_attention/normalizer/float64": _LINEAR_F32,
}
RUNTIME_XFAILS: dict[str, str] = {
    "attention/mha_values/float64": _ATTENTION_F64,
    "attention/mha_self_attention/float64": _ATTENTION_F64,
    "attention/mha_attn_bias/float64": _ATTENTION_F64,
    "transformer/encoder_values/float64": _ATTENTION_F64,
    "transformer/pre_ln_values/float64": _ATTENTION_F64,
}


def _value(name: str, dtype: str, dims: list) -> Any:
    from onnx import helper

    from conformance.adapters import onnx_graphs

    return helper.make_tensor_value_info(name, onnx_graphs._elem_type(dtype), dims)


def _attention_nodes(prefix: str, x_q: str, x_kv: str, out: str, n_heads: int, mask: str | None):
    """MatMul/Add projections, Attention, MatMul/Add output projection; weights named
    {prefix}W_Q ... {prefix}b_o (graph inputs)."""
    from onnx import helper

    p = prefix
    inputs = [f"{p}q", f"{p}k", f"{p}v"] + ([mask] if mask else [])
    return [
        helper.make_node("MatMul", [x_q, f"{p}W_Q"], [f"{p}q_raw"]),
        helper.make_node("Add", [f"{p}q_raw", f"{p}b_q"], [f"{p}q"]),
        helper.make_node("MatMul", [x_kv, f"{p}W_K"], [f"{p}k_raw"]),
        helper.make_node("Add", [f"{p}k_raw", f"{p}b_k"], [f"{p}k"]),
        helper.make_node("MatMul", [x_kv, f"{p}W_V"], [f"{p}v_raw"]),
        helper.make_node("Add", [f"{p}v_raw", f"{p}b_v"], [f"{p}v"]),
        helper.make_node(
            "Attention", inputs, [f"{p}heads"], q_num_heads=n_heads, kv_num_heads=n_heads
        ),
        helper.make_node("MatMul", [f"{p}heads", f"{p}W_O"], [f"{p}o_raw"]),
        helper.make_node("Add", [f"{p}o_raw", f"{p}b_o"], [out]),
    ]


def _attention_inputs(prefix: str, dtype: str, e_q: str, e_kv: str, e: str, e_out: str):
    p = prefix
    return [
        _value(f"{p}W_Q", dtype, [e_q, e]),
        _value(f"{p}W_K", dtype, [e_kv, e]),
        _value(f"{p}W_V", dtype, [e_kv, e]),
        _value(f"{p}W_O", dtype, [e, e_out]),
        _value(f"{p}b_q", dtype, [e]),
        _value(f"{p}b_k", dtype, [e]),
        _value(f"{p}b_v", dtype, [e]),
        _value(f"{p}b_o", dtype, [e_out]),
    ]


def _mask_input(name: str = "mask") -> Any:
    from onnx import TensorProto, helper

    return helper.make_tensor_value_info(name, TensorProto.BOOL, ["B", 1, "Tq", "Tk"])


def mha_graph(dtype: str, n_heads: int, masked: bool, float_mask: bool = False):
    """float_mask: the attn_mask input is in the graph's dtype, (B, H|1, Tq, Tk), and Attention
    adds it to the scores (a boolean one selects the keys that take part)."""
    from conformance.adapters import onnx_graphs

    mask = "mask" if masked or float_mask else None
    nodes = _attention_nodes("", "x_q", "x_kv", "y", n_heads, mask)
    inputs = [
        _value("x_q", dtype, ["B", "Tq", "Eq"]),
        _value("x_kv", dtype, ["B", "Tk", "Ekv"]),
        *_attention_inputs("", dtype, "Eq", "Ekv", "E", "Eout"),
    ]
    if float_mask:
        inputs.append(_value("mask", dtype, ["B", "H", "Tq", "Tk"]))
    elif masked:
        inputs.append(_mask_input())
    outputs = [_value("y", dtype, ["B", "Tq", "Eout"])]
    return onnx_graphs._model(nodes, inputs, outputs, ATTENTION_OPSET, "mha")


def encoder_layer_graph(dtype: str, n_heads: int, masked: bool, activation: str, eps: float,
                        norm_first: bool):  # fmt: skip
    from onnx import TensorProto, helper

    from conformance.adapters import onnx_graphs

    stash = TensorProto.DOUBLE if dtype == "float64" else TensorProto.FLOAT
    mask = "mask" if masked else None

    def ln(x: str, i: int, out: str):
        return helper.make_node(
            "LayerNormalization", [x, f"g{i}", f"beta{i}"], [out], axis=-1, epsilon=eps,
            stash_type=stash,
        )  # fmt: skip

    def ffn(x: str, out: str):
        if activation == "relu":
            act = helper.make_node("Relu", ["ff_pre"], ["ff_hidden"])
        else:
            approx = "none" if activation == "gelu" else "tanh"
            act = helper.make_node("Gelu", ["ff_pre"], ["ff_hidden"], approximate=approx)
        return [
            helper.make_node("MatMul", [x, "W_1"], ["ff_pre_raw"]),
            helper.make_node("Add", ["ff_pre_raw", "b_1"], ["ff_pre"]),
            act,
            helper.make_node("MatMul", ["ff_hidden", "W_2"], ["ff_out_raw"]),
            helper.make_node("Add", ["ff_out_raw", "b_2"], [out]),
        ]

    if norm_first:  # h = x + MHA(LN1(x)); y = h + FF(LN2(h))
        nodes = [
            ln("x", 1, "n1"),
            *_attention_nodes("sa_", "n1", "n1", "attn", n_heads, mask),
            helper.make_node("Add", ["x", "attn"], ["h"]),
            ln("h", 2, "n2"),
            *ffn("n2", "ff"),
            helper.make_node("Add", ["h", "ff"], ["y"]),
        ]
    else:  # h = LN1(x + MHA(x)); y = LN2(h + FF(h))
        nodes = [
            *_attention_nodes("sa_", "x", "x", "attn", n_heads, mask),
            helper.make_node("Add", ["x", "attn"], ["z1"]),
            ln("z1", 1, "h"),
            *ffn("h", "ff"),
            helper.make_node("Add", ["h", "ff"], ["z2"]),
            ln("z2", 2, "y"),
        ]
    inputs = [
        _value("x", dtype, ["B", "T", "E"]),
        *_attention_inputs("sa_", dtype, "E", "E", "E", "E"),
        _value("g1", dtype, ["E"]),
        _value("beta1", dtype, ["E"]),
        _value("W_1", dtype, ["E", "F"]),
        _value("b_1", dtype, ["F"]),
        _value("W_2", dtype, ["F", "E"]),
        _value("b_2", dtype, ["E"]),
        _value("g2", dtype, ["E"]),
        _value("beta2", dtype, ["E"]),
    ]
    if masked:
        inputs.append(_mask_input())
    outputs = [_value("y", dtype, ["B", "T", "E"])]
    return onnx_graphs._model(nodes, inputs, outputs, ATTENTION_OPSET, "encoder_layer")


def linear_attention_causal_graph(dtype: str, feature_map: str):
    from onnx import TensorProto, helper

    from conformance.adapters import onnx_graphs

    phi = []
    for x in ("q", "k"):
        if feature_map == "elu+1":
            phi += [
                helper.make_node("Elu", [x], [f"{x}_elu"], alpha=1.0),
                helper.make_node("Add", [f"{x}_elu", "one"], [f"phi_{x}"]),
            ]
        else:
            phi.append(helper.make_node("Relu", [x], [f"phi_{x}"]))
    one = helper.make_tensor("one_f32", TensorProto.FLOAT, [], [1.0])
    attrs = {"q_num_heads": 1, "kv_num_heads": 1, "update_rule": "linear", "scale": 1.0}
    nodes = [
        helper.make_node("Constant", [], ["one_f32"], value=one),
        helper.make_node("Cast", ["one_f32"], ["one"], to=onnx_graphs._elem_type(dtype)),
        *phi,
        # a column of ones, (B, N, 1): its running state is z_i
        helper.make_node("Shape", ["v"], ["v_shape"]),
        helper.make_node("Slice", ["v_shape", "zero", "two", "zero"], ["bn"]),
        helper.make_node("Concat", ["bn", "one_i64"], ["ones_shape"], axis=0),
        helper.make_node("Expand", ["one", "ones_shape"], ["ones"]),
        helper.make_node("LinearAttention", ["phi_q", "phi_k", "v"], ["num", "s1"], **attrs),
        helper.make_node("LinearAttention", ["phi_q", "phi_k", "ones"], ["den", "s2"], **attrs),
        helper.make_node("Div", ["num", "den"], ["y"]),
    ]
    ints = [
        helper.make_node(
            "Constant", [], [n], value=helper.make_tensor(n, TensorProto.INT64, [1], [v])
        )
        for n, v in (("zero", 0), ("two", 2), ("one_i64", 1))
    ]
    inputs = [
        _value("q", dtype, ["B", "N", "Dk"]),
        _value("k", dtype, ["B", "N", "Dk"]),
        _value("v", dtype, ["B", "N", "Dv"]),
    ]
    outputs = [_value("y", dtype, ["B", "N", "Dv"])]
    return onnx_graphs._model(ints + nodes, inputs, outputs, LINEAR_ATTENTION_OPSET, "linear_attn")


class OnnxAttentionMixin:
    """mha, encoder_layer, pre_ln_encoder_layer and linear_attention_causal as ONNX graphs."""

    def _run_attention_graph(self, key: tuple, build, feeds: dict[str, np.ndarray]):
        from conformance.adapters import onnx_graphs

        try:
            run = self._runner(key, build)
        except onnx_graphs._Refused as exc:
            raise Unsupported(f"{self.name} cannot run {key[0]} in {key[1]}: {exc}") from None
        try:
            return run({k: np.ascontiguousarray(v) for k, v in feeds.items()})
        except NotImplementedError as exc:  # onnx.reference: an attribute value it lacks
            raise Unsupported(f"{self.name} cannot run {key[0]} in {key[1]}: {exc}") from None

    @staticmethod
    def _batch(*shapes) -> tuple[int, ...]:
        return tuple(np.broadcast_shapes(*shapes))

    @staticmethod
    def _fold(a: np.ndarray, batch: tuple[int, ...], tail: tuple[int, ...]) -> np.ndarray:
        return np.broadcast_to(a, (*batch, *tail)).reshape(math.prod(batch), *tail)

    def _allowed(self, mask, key_mask, causal, batch, tq, tk) -> np.ndarray | None:
        """nnspec's mask, key_mask and causal as one boolean (N, 1, Tq, Tk), True = attend."""
        if mask is None and key_mask is None and not causal:
            return None
        allowed = np.ones((tq, tk), dtype=bool)
        if causal:
            allowed = np.tri(tq, tk, dtype=bool)
        if mask is not None:
            allowed = allowed & np.asarray(mask, dtype=bool)
        if key_mask is not None:
            allowed = allowed & np.asarray(key_mask, dtype=bool)[..., None, :]
        return self._fold(allowed, batch, (tq, tk))[:, None]

    def mha(self, x_q, x_kv, W_Q, W_K, W_V, W_O, b_q, b_v, b_o, n_heads=1, mask=None,
            key_mask=None, causal=False, b_k=None, attn_bias=None):  # fmt: skip
        from conformance.adapters import onnx_graphs

        dtype = onnx_graphs._dtype_name(x_q, x_kv, W_Q, W_K, W_V, W_O, b_q, b_v, b_o)
        tq, tk = x_q.shape[-2], x_kv.shape[-2]
        shapes = [x_q.shape[:-2], x_kv.shape[:-2]]
        shapes += [] if mask is None else [np.shape(mask)[:-2]]
        shapes += [] if key_mask is None else [np.shape(key_mask)[:-1]]
        batch = self._batch(*shapes)
        allowed = self._allowed(mask, key_mask, causal, batch, tq, tk)
        feeds = {
            "x_q": self._fold(x_q, batch, x_q.shape[-2:]),
            "x_kv": self._fold(x_kv, batch, x_kv.shape[-2:]),
            "W_Q": W_Q, "W_K": W_K, "W_V": W_V, "W_O": W_O, "b_q": b_q, "b_v": b_v, "b_o": b_o,
            "b_k": np.zeros_like(b_q) if b_k is None else b_k,
        }  # fmt: skip
        if attn_bias is not None:  # one float mask: the bias, -inf where a key is hidden
            bias = self._fold(attn_bias, batch, (n_heads, tq, tk)).astype(x_q.dtype)
            if allowed is not None:
                bias = np.where(allowed, bias, -np.inf).astype(x_q.dtype)
            feeds["mask"] = bias
        elif allowed is not None:
            feeds["mask"] = allowed
        masked, float_mask = allowed is not None, attn_bias is not None
        key = ("mha", dtype, n_heads, masked, float_mask)
        out = self._run_attention_graph(
            key, lambda: mha_graph(dtype, n_heads, masked, float_mask), feeds
        )
        return out.reshape(*batch, tq, out.shape[-1])

    def _encoder(self, x, *params, n_heads=1, key_mask=None, causal=False, activation="relu",
                 eps=1e-5, norm_first=False):  # fmt: skip
        from conformance.adapters import onnx_graphs

        if len(params) != 15:
            raise ValueError(f"encoder layer: expected 15 parameter arrays, got {len(params)}")
        dtype = onnx_graphs._dtype_name(x, *params)
        t, e = x.shape[-2:]
        batch = self._batch(x.shape[:-2], *([] if key_mask is None else [np.shape(key_mask)[:-1]]))
        allowed = self._allowed(None, key_mask, causal, batch, t, t)
        names = ["sa_W_Q", "sa_W_K", "sa_W_V", "sa_W_O", "sa_b_q", "sa_b_v", "sa_b_o"]
        names += ["g1", "beta1", "W_1", "b_1", "W_2", "b_2", "g2", "beta2"]
        feeds = {"x": self._fold(x, batch, (t, e)), **dict(zip(names, params, strict=True))}
        feeds["sa_b_k"] = np.zeros_like(params[4])
        if allowed is not None:
            feeds["mask"] = allowed
        masked = allowed is not None
        key = ("encoder_layer", dtype, n_heads, masked, activation, eps, norm_first)

        def build():
            return encoder_layer_graph(dtype, n_heads, masked, activation, eps, norm_first)

        return self._run_attention_graph(key, build, feeds).reshape(*batch, t, e)

    def encoder_layer(self, x, *params, **options):
        return self._encoder(x, *params, **options, norm_first=False)

    def pre_ln_encoder_layer(self, x, *params, **options):
        return self._encoder(x, *params, **options, norm_first=True)

    def linear_attention_causal(self, q, k, v, feature_map="elu+1"):
        from conformance.adapters import onnx_graphs

        dtype = onnx_graphs._dtype_name(q, k, v)
        n = q.shape[-2]
        batch = self._batch(q.shape[:-2], k.shape[:-2], v.shape[:-2])
        feeds = {
            "q": self._fold(q, batch, q.shape[-2:]),
            "k": self._fold(k, batch, k.shape[-2:]),
            "v": self._fold(v, batch, v.shape[-2:]),
        }
        key = ("linear_attention_causal", dtype, feature_map)
        out = self._run_attention_graph(
            key, lambda: linear_attention_causal_graph(dtype, feature_map), feeds
        )
        return out.reshape(*batch, n, v.shape[-1])
