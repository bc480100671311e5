"""ONNX RNN, LSTM and GRU (opset 14) for the ONNX adapters: a mixin of `_OnnxAdapter`
(conformance/adapters/onnx_graphs.py), whose graph cache and runners it reuses.

One graph per (op, dtype, hidden size, direction, options); T, B and D are symbolic. Layouts
are mapped here, never in reference/:

- x (B, T, D) batch-first -> X (T, B, D) (layout=0, seq-first); Y (T, dirs, B, H) back to
  (B, T, dirs * H): direction "forward" or "reverse" (reverse=True) with dirs = 1, and
  "bidirectional" (the *_bidirectional ops) with dirs = 2, Y[:, 0] the forward and Y[:, 1] the
  reverse direction, which become nnspec's [forward | reverse] halves of the feature axis; the
  weights, biases, initial states and peepholes get ONNX's leading direction axis (1 or 2).
- lengths (nnspec's option) -> sequence_lens (int32, (B,)): ONNX's stated semantics are
  nnspec's (Y zero past a row's length, Y_h the state after its last valid step).
  onnx.reference ignores the input (declared xfail); onnxruntime honours it.
- initial_h / initial_c: h0 / c0 when given (absent inputs are zeros, as nnspec's None).
- No stacked layers (ONNX has no num_layers): *_layers are not covered.
- RNN: W = U (1, H, D), R = W (1, H, H); activations ["Tanh"] or ["Relu"].
- LSTM: gate order i, o, f, c (nnspec: i, f, o, g on [h; x]): row blocks reordered, W = the x
  columns (1, 4H, D), R = the h columns (1, 4H, H). Peepholes: nnspec's (p_i, p_f, p_o) ->
  P = [Pi, Po, Pf] (1, 3H); absent when peepholes is None (ONNX: P absent = zero).
- GRU: gate order z, r, h (nnspec: r, z, n). linear_before_reset=0 computes the reset BEFORE
  the recurrent matmul, =1 after it: the adapter runs whichever placement it declares in
  `variants["gru.reset"]` (the built-ins declare "before", nnspec's canonical one).
- B = [Wb, Rb] (1, 2 * gates * H), added: the canonical bias is split in halves (b/2, b - b/2,
  exact) so that both are exercised; where Rb sits inside the reset (GRU's candidate with
  linear_before_reset=1) it is 0 and Wb carries b_n.

The graph's one output packs Y (T, dirs, B, H), Y_h and Y_c (dirs, B, H) along the time axis
(the adapter's runners return a graph's first output only) and is unpacked here. No ONNX op has a
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
_PEEPHOLE_ORDER = (0, 2, 1)  # ONNX P = [Pi, Po, Pf]; nnspec's peepholes are (p_i, p_f, p_o)


# Known deviations observed with these graphs, merged into the adapters' xfails.
_EMPTY_REFERENCE = (
    "onnx.reference's RNN, LSTM and GRU raise ValueError ('need at least one array to stack') "
    "on a zero-length sequence (onnx 1.23.2)"
)
_EMPTY_RUNTIME = (
    "onnxruntime returns Y_h (and Y_c) = 0 for a zero-length sequence instead of the initial "
    "state it was given (onnxruntime 1.31.1; its GRU aborts the process there, see _ABORTS)"
)
_IGNORES_LENGTHS = (
    "onnx.reference's RNN, LSTM and GRU ignore the sequence_lens input (their _run marks it "
    "unused): every row runs all T steps, so Y is not zero past a row's length and Y_h is the "
    "state after step T-1 (onnx 1.23.2; onnxruntime honours it)"
)
REFERENCE_XFAILS = {
    **{f"{stem}/zero_length/*": _EMPTY_REFERENCE for stem in ("rnn", "lstm", "gru")},
    **{f"{stem}/*sequence_lens*/*": _IGNORES_LENGTHS for stem in ("rnn", "lstm", "gru")},
}
RUNTIME_XFAILS = {f"{stem}/zero_length/*": _EMPTY_RUNTIME for stem in ("rnn", "lstm")}


def recurrent_graph(
    op: str,
    dtype: str,
    hidden: int,
    direction: str,
    has_h0: bool,
    has_c0: bool,
    has_lengths: bool = False,
    has_peepholes: bool = False,
    **attributes: Any,
):
    """packed = Concat(Y, Unsqueeze(Y_h, 0)[, Unsqueeze(Y_c, 0)]) along axis 0:
    (T + 1 [+ 1], dirs, B, H)."""
    from onnx import TensorProto, helper

    from conformance.adapters import onnx_graphs

    elem = onnx_graphs._elem_type(dtype)
    g = GATES[op]
    dirs = 2 if direction == "bidirectional" else 1
    inputs = [
        helper.make_tensor_value_info("X", elem, ["T", "B", "D"]),
        helper.make_tensor_value_info("W", elem, [dirs, g * hidden, "D"]),
        helper.make_tensor_value_info("R", elem, [dirs, g * hidden, hidden]),
        helper.make_tensor_value_info("Bias", elem, [dirs, 2 * g * hidden]),
    ]
    # "" = an absent optional input (no sequence_lens: every sequence has length T)
    names = ["X", "W", "R", "Bias", "sequence_lens" if has_lengths else ""]
    if has_lengths:
        inputs.append(helper.make_tensor_value_info("sequence_lens", TensorProto.INT32, ["B"]))
    names.append("initial_h" if has_h0 else "")
    if has_h0:
        inputs.append(helper.make_tensor_value_info("initial_h", elem, [dirs, "B", hidden]))
    outputs = ["Y", "Y_h"]
    if op == "LSTM":
        names.append("initial_c" if has_c0 else "")
        if has_c0:
            inputs.append(helper.make_tensor_value_info("initial_c", elem, [dirs, "B", hidden]))
        names.append("P" if has_peepholes else "")
        if has_peepholes:
            inputs.append(helper.make_tensor_value_info("P", elem, [dirs, 3 * hidden]))
        outputs.append("Y_c")
    while names[-1] == "":
        names.pop()
    axis0 = helper.make_tensor("axis0", TensorProto.INT64, (1,), [0])
    nodes = [
        helper.make_node(op, names, outputs, hidden_size=hidden, direction=direction, **attributes),
        helper.make_node("Constant", [], ["axis0"], value=axis0),
    ]
    for name in outputs[1:]:  # (dirs, B, H) -> (1, dirs, B, H)
        nodes.append(helper.make_node("Unsqueeze", [name, "axis0"], [f"{name}_1"]))
    packed = ["Y", *(f"{name}_1" for name in outputs[1:])]
    nodes.append(helper.make_node("Concat", packed, ["packed"], axis=0))
    out = [helper.make_tensor_value_info("packed", elem, ["P", dirs, "B", hidden])]
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

    def _recurrent(self, op, x, states, W, R, B, direction, lengths=None, P=None, **attributes):
        """Run the ONNX op; W, R, B, the states and P carry ONNX's leading direction axis.
        Returns (hs (B, T, dirs * H), final states (dirs, B, H) each)."""
        from conformance.adapters import onnx_graphs

        arrays = (x, W, R, B, *(s for s in (*states, P) if s is not None))
        dtype = onnx_graphs._dtype_name(*arrays)
        batch, steps = x.shape[:2]
        hidden = R.shape[-1]
        if steps == 0 and (self.name, op) in self._ABORTS:
            raise Unsupported(self._ABORTS[(self.name, op)])
        has = [s is not None for s in states] + [False] * (2 - len(states))
        has += [lengths is not None, P is not None]
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
            "W": np.ascontiguousarray(W),
            "R": np.ascontiguousarray(R),
            "Bias": np.ascontiguousarray(B),
        }
        if lengths is not None:
            feeds["sequence_lens"] = np.asarray(lengths, dtype=np.int32)
        for name, s in zip(("initial_h", "initial_c"), states, strict=False):
            if s is not None:
                feeds[name] = np.ascontiguousarray(s)
        if P is not None:
            feeds["P"] = np.ascontiguousarray(P)
        try:
            packed = run(feeds)  # (T + 1 [+ 1], dirs, B, H)
        except Exception as exc:
            # onnxruntime 1.31.1 refuses float64 GRU/LSTM when run ("... operator does not
            # support double yet"): a refusal, not a wrong answer.
            if "not support" in str(exc):
                raise Unsupported(f"{self.name} {op}: {onnx_graphs._first_line(exc)}") from None
            raise
        dirs = packed.shape[1]
        # Y (T, dirs, B, H) -> (B, T, dirs * H): [forward | reverse] on the feature axis
        hs = packed[:steps].transpose(2, 0, 1, 3).reshape(batch, steps, dirs * hidden)
        return (np.ascontiguousarray(hs), *packed[steps:])

    def _one_direction(self, op, x, states, weights, reverse, lengths, P=None, **attributes):
        direction = "reverse" if reverse else "forward"
        W, R, B = (a[None] for a in weights)
        states = tuple(None if s is None else s[None] for s in states)
        P = None if P is None else P[None]
        hs, *finals = self._recurrent(op, x, states, W, R, B, direction, lengths, P, **attributes)
        return (hs, *(f[0] for f in finals))

    def _two_directions(self, op, x, states, per_direction, lengths, P=None, **attributes):
        W, R, B = (np.stack(pair) for pair in zip(*per_direction, strict=True))
        return self._recurrent(op, x, states, W, R, B, "bidirectional", lengths, P, **attributes)

    # -- rnn ---------------------------------------------------------------------------------

    @staticmethod
    def _rnn_weights(W, U, b):
        return U, W, np.concatenate(_split_bias(b))  # W = U (H, D), R = W (H, H), [Wb, Rb]

    @staticmethod
    def _activation(nonlinearity):
        activation = {"tanh": "Tanh", "relu": "Relu"}.get(nonlinearity)
        if activation is None:
            raise Unsupported(f"no ONNX activation for nonlinearity {nonlinearity!r}")
        return activation

    def rnn(self, x, h0, W, U, b, nonlinearity="tanh", reverse=False, lengths=None):
        act = [self._activation(nonlinearity)]
        weights = self._rnn_weights(W, U, b)
        return self._one_direction("RNN", x, (h0,), weights, reverse, lengths, activations=act)

    def rnn_bidirectional(self, x, h0, W, U, b, nonlinearity="tanh", lengths=None):
        act = [self._activation(nonlinearity)] * 2
        per = [self._rnn_weights(W[d], U[d], b[d]) for d in (0, 1)]
        return self._two_directions("RNN", x, (h0,), per, lengths, activations=act)

    # -- lstm --------------------------------------------------------------------------------

    @staticmethod
    def _lstm_weights(W, b):
        H = W.shape[0] // 4
        Wo, bo = _blocks(W, _LSTM_ORDER, H), _blocks(b, _LSTM_ORDER, H)
        return Wo[:, H:], Wo[:, :H], np.concatenate(_split_bias(bo))

    @staticmethod
    def _peepholes(P):
        """nnspec's (p_i, p_f, p_o) -> ONNX's P = [Pi, Po, Pf]."""
        return None if P is None else _blocks(P, _PEEPHOLE_ORDER, P.shape[-1] // 3)

    def lstm(self, x, h0, c0, W, b, reverse=False, lengths=None, peepholes=None):
        weights, P = self._lstm_weights(W, b), self._peepholes(peepholes)
        return self._one_direction("LSTM", x, (h0, c0), weights, reverse, lengths, P)

    def lstm_bidirectional(self, x, h0, c0, W, b, lengths=None, peepholes=None):
        per = [self._lstm_weights(W[d], b[d]) for d in (0, 1)]
        P = None if peepholes is None else np.stack([self._peepholes(p) for p in peepholes])
        return self._two_directions("LSTM", x, (h0, c0), per, lengths, P)

    # -- gru ---------------------------------------------------------------------------------

    # ONNX GRU's linear_before_reset; None: the placement the adapter declares (gru.reset).
    gru_linear_before_reset: ClassVar[int | None] = None

    def _linear_before_reset(self) -> int:
        after = self.gru_linear_before_reset
        if after is None:
            reset = (getattr(self, "variants", {}) or {}).get("gru.reset", "before")
            after = {"before": 0, "after": 1}[reset]
        return after

    @staticmethod
    def _gru_weights(W, b, after):
        H = W.shape[0] // 3
        Wo, bo = _blocks(W, _GRU_ORDER, H), _blocks(b, _GRU_ORDER, H)
        Wb, Rb = _split_bias(bo)
        if after:  # Rb of the candidate sits inside the reset: the whole b_n goes to Wb
            Wb[2 * H :], Rb[2 * H :] = bo[2 * H :], 0
        return Wo[:, H:], Wo[:, :H], np.concatenate([Wb, Rb])

    def gru(self, x, h0, W, b, reverse=False, lengths=None):
        after = self._linear_before_reset()
        weights = self._gru_weights(W, b, after)
        return self._one_direction(
            "GRU", x, (h0,), weights, reverse, lengths, linear_before_reset=after
        )

    def gru_bidirectional(self, x, h0, W, b, lengths=None):
        after = self._linear_before_reset()
        per = [self._gru_weights(W[d], b[d], after) for d in (0, 1)]
        return self._two_directions("GRU", x, (h0,), per, lengths, linear_before_reset=after)
