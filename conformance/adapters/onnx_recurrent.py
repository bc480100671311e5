"""ONNX RNN, LSTM and GRU (opset 14) for the ONNX adapters: a mixin of `_OnnxAdapter`
(conformance/adapters/onnx_graphs.py), whose graph cache and runners it reuses.

One graph per (op, dtype, hidden size, direction, options); T, B and D are symbolic. Layouts
are mapped here, never in reference/:

- x (B, T, D) batch-first -> X (T, B, D) (layout=0, seq-first); Y (T, 1, B, H) back to
  (B, T, H). direction "forward" or "reverse" (reverse=True).
- RNN: W = U (1, H, D), R = W (1, H, H); activations ["Tanh"] or ["Relu"].
- LSTM: gate order i, o, f, c (nnspec: i, f, o, g on [h; x]): row blocks reordered, W = the x
  columns (1, 4H, D), R = the h columns (1, 4H, H). No peepholes (P absent = zero).
- GRU: gate order z, r, h (nnspec: r, z, n). linear_before_reset=0 computes the reset BEFORE
  the recurrent matmul, =1 after it: the adapter runs whichever placement it declares in
  `variants["gru.reset"]` (the built-ins declare "before", nnspec's canonical one).
- B = [Wb, Rb] (1, 2 * gates * H), added: the canonical bias is split in halves (b/2, b - b/2,
  exact) so that both are exercised; where Rb sits inside the reset (GRU's candidate with
  linear_before_reset=1) it is 0 and Wb carries b_n.

The graph's one output packs Y (T, B, H), Y_h and Y_c (1, B, H) along the time axis (the
adapter's runners return a graph's first output only) and is unpacked here. No ONNX op has a
gradient: these ops have no vjp.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from conformance.adapters.base import Unsupported

OPSET = 14  # RNN, GRU, LSTM as of opset 14 (the layout attribute; batch-first is mapped here)
GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}
_LSTM_ORDER = (0, 2, 1, 3)  # ONNX block k takes nnspec block _LSTM_ORDER[k]: i, o, f, c(=g)
_GRU_ORDER = (1, 0, 2)  # z, r, h(=n)


# Known deviations observed with these graphs, merged into the adapters' xfails.
_EMPTY_REFERENCE = (
    "onnx.reference's RNN, LSTM and GRU raise ValueError ('need at least one array to stack') "
    "on a zero-length sequence (onnx 1.23.2)"
)
_EMPTY_RUNTIME = (
    "onnxruntime returns Y_h (and Y_c) = 0 for a zero-length sequence instead of the initial "
    "state it was given (onnxruntime 1.31.1; its GRU aborts the process there, see _ABORTS)"
)
REFERENCE_XFAILS = {f"{stem}/zero_length/*": _EMPTY_REFERENCE for stem in ("rnn", "lstm", "gru")}
RUNTIME_XFAILS = {f"{stem}/zero_length/*": _EMPTY_RUNTIME for stem in ("rnn", "lstm")}


def recurrent_graph(
    op: str,
    dtype: str,
    hidden: int,
    direction: str,
    has_h0: bool,
    has_c0: bool,
    **attributes: Any,
):
    """packed = Concat(Squeeze(Y, 1), Y_h[, Y_c]) along axis 0: (T + 1 [+ 1], B, H)."""
    from onnx import TensorProto, helper

    from conformance.adapters import onnx_graphs

    elem = onnx_graphs._elem_type(dtype)
    g = GATES[op]
    inputs = [
        helper.make_tensor_value_info("X", elem, ["T", "B", "D"]),
        helper.make_tensor_value_info("W", elem, [1, g * hidden, "D"]),
        helper.make_tensor_value_info("R", elem, [1, g * hidden, hidden]),
        helper.make_tensor_value_info("Bias", elem, [1, 2 * g * hidden]),
    ]
    names = ["X", "W", "R", "Bias", ""]  # "" = no sequence_lens: every sequence has length T
    names.append("initial_h" if has_h0 else "")
    if has_h0:
        inputs.append(helper.make_tensor_value_info("initial_h", elem, [1, "B", hidden]))
    outputs = ["Y", "Y_h"]
    if op == "LSTM":
        names.append("initial_c" if has_c0 else "")
        if has_c0:
            inputs.append(helper.make_tensor_value_info("initial_c", elem, [1, "B", hidden]))
        outputs.append("Y_c")
    while names[-1] == "":
        names.pop()
    axis1 = helper.make_tensor("axis1", TensorProto.INT64, (1,), [1])
    nodes = [
        helper.make_node(op, names, outputs, hidden_size=hidden, direction=direction, **attributes),
        helper.make_node("Constant", [], ["axis1"], value=axis1),
        helper.make_node("Squeeze", ["Y", "axis1"], ["Y_seq"]),  # (T, B, H): one direction
        helper.make_node("Concat", ["Y_seq", *outputs[1:]], ["packed"], axis=0),
    ]
    out = [helper.make_tensor_value_info("packed", elem, ["P", "B", hidden])]
    return onnx_graphs._model(nodes, inputs, out, OPSET, f"{op.lower()}_{direction}")


def _split_bias(b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    half = b / 2
    return half, b - half


def _blocks(a: np.ndarray, order: tuple[int, ...], hidden: int) -> np.ndarray:
    return np.concatenate([a[k * hidden : (k + 1) * hidden] for k in order])


class OnnxRecurrentMixin:
    """rnn, lstm and gru on ONNX graphs; mixed into onnx_graphs._OnnxAdapter."""

    # Runtimes that do not survive a call, by (adapter name, ONNX op): never run, reported as
    # not covered with the reason. Observed with onnxruntime 1.31.1 (CPU): a zero-length GRU
    # ends the process with std::terminate (RNN and LSTM return, see the xfails).
    _ABORTS: ClassVar[dict[tuple[str, str], str]] = {
        ("onnxruntime", "GRU"): "onnxruntime 1.31.1 aborts the process (std::terminate) on a "
        "zero-length GRU sequence",
    }

    def _recurrent(self, op, x, states, W, R, B, reverse, **attributes):
        from conformance.adapters import onnx_graphs

        dtype = onnx_graphs._dtype_name(x, W, R, B, *(s for s in states if s is not None))
        steps = x.shape[1]
        hidden = R.shape[-1]
        if steps == 0 and (self.name, op) in self._ABORTS:
            raise Unsupported(self._ABORTS[(self.name, op)])
        direction = "reverse" if reverse else "forward"
        has = [s is not None for s in states] + [False] * (2 - len(states))
        options = tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in attributes.items())
        key = ("recurrent", op, dtype, hidden, direction, *has, *sorted(options))
        try:
            run = self._runner(
                key, lambda: recurrent_graph(op, dtype, hidden, direction, *has, **attributes)
            )
        except onnx_graphs._Refused as exc:
            raise Unsupported(f"{self.name} cannot run {op} in {dtype}: {exc}") from None
        feeds = {
            "X": np.ascontiguousarray(x.transpose(1, 0, 2)),  # (T, B, D): layout 0
            "W": np.ascontiguousarray(W[None]),
            "R": np.ascontiguousarray(R[None]),
            "Bias": np.ascontiguousarray(B[None]),
        }
        for name, s in zip(("initial_h", "initial_c"), states, strict=False):
            if s is not None:
                feeds[name] = np.ascontiguousarray(s[None])
        try:
            packed = run(feeds)
        except Exception as exc:
            # onnxruntime 1.31.1 refuses float64 GRU/LSTM when run ("... operator does not
            # support double yet"): a refusal, not a wrong answer.
            if "not support" in str(exc):
                raise Unsupported(f"{self.name} {op}: {onnx_graphs._first_line(exc)}") from None
            raise
        hs = np.ascontiguousarray(packed[:steps].transpose(1, 0, 2))  # (B, T, H)
        return (hs, *packed[steps:])

    def rnn(self, x, h0, W, U, b, nonlinearity="tanh", reverse=False):
        activation = {"tanh": "Tanh", "relu": "Relu"}.get(nonlinearity)
        if activation is None:
            raise Unsupported(f"no ONNX activation for nonlinearity {nonlinearity!r}")
        bias = np.concatenate(_split_bias(b))  # [Wb, Rb]
        return self._recurrent("RNN", x, (h0,), U, W, bias, reverse, activations=[activation])

    def lstm(self, x, h0, c0, W, b, reverse=False):
        H = W.shape[0] // 4
        Wo, bo = _blocks(W, _LSTM_ORDER, H), _blocks(b, _LSTM_ORDER, H)
        bias = np.concatenate(_split_bias(bo))
        return self._recurrent("LSTM", x, (h0, c0), Wo[:, H:], Wo[:, :H], bias, reverse)

    # ONNX GRU's linear_before_reset; None: the placement the adapter declares (gru.reset).
    gru_linear_before_reset: ClassVar[int | None] = None

    def gru(self, x, h0, W, b, reverse=False):
        H = W.shape[0] // 3
        after = self.gru_linear_before_reset
        if after is None:
            reset = (getattr(self, "variants", {}) or {}).get("gru.reset", "before")
            after = {"before": 0, "after": 1}[reset]
        Wo, bo = _blocks(W, _GRU_ORDER, H), _blocks(b, _GRU_ORDER, H)
        Wb, Rb = _split_bias(bo)
        if after:  # Rb of the candidate sits inside the reset: the whole b_n goes to Wb
            Wb[2 * H :], Rb[2 * H :] = bo[2 * H :], 0
        bias = np.concatenate([Wb, Rb])
        return self._recurrent(
            "GRU", x, (h0,), Wo[:, H:], Wo[:, :H], bias, reverse, linear_before_reset=after
        )
