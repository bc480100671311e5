"""ONNX adapters: one small ONNX graph per op, run by two runtimes.

`OnnxReference` runs the graphs with onnx.reference.ReferenceEvaluator (the ONNX project's
executable specification, NumPy underneath); `OnnxRuntime` runs the same graphs with an
onnxruntime InferenceSession on the CPU execution provider. Building a session costs
milliseconds, so every compiled graph is cached per (runtime, op, dtype, rank, options) and its
dims are symbolic (dim_param): one graph serves every shape a property test draws.

sdpa uses the ONNX `Attention` op (opset 23), whose inputs are 4-D (batch, heads, seq, head
size): nnspec's 0, 1 or 2 leading dims are broadcast, flattened into the batch and given one
head, then reshaped back. A runtime that cannot build that graph for a dtype gets the equivalent
MatMul/Softmax/MatMul graph instead, with the spec's zero-row guard, and describe() says which
form each dtype ran. No ONNX op here has a gradient, so these adapters define no vjp.
"""

from __future__ import annotations

import importlib.util
import math
import os
import tempfile
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from numpy.lib.array_utils import normalize_axis_index

from conformance.adapters import (
    onnx_attention,
    onnx_language,
    onnx_norm,
    onnx_recurrent,
    onnx_vision,
)
from conformance.adapters.base import Adapter, Intermittent, Unsupported
from conformance.adapters.onnx_attention import OnnxAttentionMixin
from conformance.adapters.onnx_language import OnnxLanguageMixin
from conformance.adapters.onnx_norm import OnnxNormMixin
from conformance.adapters.onnx_recurrent import OnnxRecurrentMixin
from conformance.adapters.onnx_vision import OnnxVisionMixin

if TYPE_CHECKING:
    import onnx

# Attention first exists in opset 23. Softmax/LogSoftmax have not changed since opset 13, and the
# fallback graph uses nothing newer, so those graphs stay at 13 and run on older runtimes too.
ATTENTION_OPSET = 23
SOFTMAX_OPSET = 13
FALLBACK_OPSET = 13

SDPA_FORMS = {
    "attention": f"Attention op, opset {ATTENTION_OPSET}",
    "matmul": "MatMul/Softmax graph",
}

# TensorProto element-type names, by NumPy dtype name (ml_dtypes' bfloat16 is named "bfloat16").
_ELEM_TYPES = {
    "float64": "DOUBLE",
    "float32": "FLOAT",
    "float16": "FLOAT16",
    "bfloat16": "BFLOAT16",
}

Runner = Callable[[dict[str, np.ndarray]], np.ndarray]


def _elem_type(dtype: str) -> int:
    from onnx import TensorProto

    if dtype not in _ELEM_TYPES:
        raise Unsupported(f"no ONNX tensor type for dtype {dtype}")
    return getattr(TensorProto, _ELEM_TYPES[dtype])


def _model(nodes: list, inputs: list, outputs: list, opset: int, name: str) -> onnx.ModelProto:
    import onnx
    from onnx import helper

    opsets = [helper.make_opsetid("", opset)]
    graph = helper.make_graph(nodes, name, inputs, outputs)
    # The smallest IR version that carries the opset: a runtime rejects IR versions newer than
    # it knows even when it supports every op in the graph.
    model = helper.make_model(
        graph, opset_imports=opsets, ir_version=helper.find_min_ir_version_for(opsets)
    )
    onnx.checker.check_model(model)
    return model


# -- graph builders -------------------------------------------------------------------------


def softmax_graph(dtype: str, rank: int, axis: int, log: bool = False) -> onnx.ModelProto:
    """y = Softmax(x, axis) (or LogSoftmax) for x of the given rank, every dim symbolic."""
    from onnx import helper

    elem = _elem_type(dtype)
    dims = [f"d{i}" for i in range(rank)]
    op = "LogSoftmax" if log else "Softmax"
    node = helper.make_node(op, ["x"], ["y"], axis=axis)
    return _model(
        [node],
        [helper.make_tensor_value_info("x", elem, dims)],
        [helper.make_tensor_value_info("y", elem, dims)],
        SOFTMAX_OPSET,
        op.lower(),
    )


def _sdpa_io(dtype: str, masked: bool) -> tuple[list, list, list[str]]:
    from onnx import TensorProto, helper

    elem = _elem_type(dtype)
    # One head: the canonical leading dims all go into the batch dim "B".
    inputs = [
        helper.make_tensor_value_info("q", elem, ["B", 1, "Tq", "Dk"]),
        helper.make_tensor_value_info("k", elem, ["B", 1, "Tk", "Dk"]),
        helper.make_tensor_value_info("v", elem, ["B", 1, "Tk", "Dv"]),
    ]
    names = ["q", "k", "v"]
    if masked:
        inputs.append(helper.make_tensor_value_info("mask", TensorProto.BOOL, ["B", 1, "Tq", "Tk"]))
        names.append("mask")
    outputs = [helper.make_tensor_value_info("y", elem, ["B", 1, "Tq", "Dv"])]
    return inputs, outputs, names


def sdpa_attention_graph(dtype: str, masked: bool, causal: bool) -> onnx.ModelProto:
    """y = Attention(q, k, v[, mask], is_causal) on (B, 1, T, d) inputs, opset 23.

    ONNX's boolean attn_mask has nnspec's polarity (True = take part) and its default scale is
    1/sqrt(head size), so neither needs translating.
    """
    from onnx import helper

    inputs, outputs, names = _sdpa_io(dtype, masked)
    node = helper.make_node("Attention", names, ["y"], is_causal=int(causal))
    return _model([node], inputs, outputs, ATTENTION_OPSET, "sdpa_attention")


def sdpa_matmul_graph(dtype: str, masked: bool, causal: bool) -> onnx.ModelProto:
    """The same attention spelled with MatMul/Mul/Where/Softmax/MatMul at opset 13.

    It mirrors the Attention spec: scale 1/sqrt(Dk) computed in double and rounded once to the
    dtype (as the reference does), causal keeps key j <= query i (no KV cache, so top-left), and
    a query with no visible key gets a zero row rather than Softmax's 0/0.
    """
    from onnx import TensorProto, helper

    elem = _elem_type(dtype)
    inputs, outputs, _ = _sdpa_io(dtype, masked)

    def const(name: str, value: Any, data_type: int, dims: tuple[int, ...] = ()) -> Any:
        values = [value] if not dims else list(value)
        tensor = helper.make_tensor(name, data_type, dims, values)
        return helper.make_node("Constant", [], [name], value=tensor)

    nodes = [
        helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 1, 3, 2]),
        helper.make_node("MatMul", ["q", "kt"], ["qk"]),
        helper.make_node("Shape", ["q"], ["q_shape"]),
        const("three", 3, TensorProto.INT64),
        helper.make_node("Gather", ["q_shape", "three"], ["dk"]),
        helper.make_node("Cast", ["dk"], ["dk_f64"], to=TensorProto.DOUBLE),
        helper.make_node("Sqrt", ["dk_f64"], ["sqrt_dk"]),
        const("one_f64", 1.0, TensorProto.DOUBLE),
        helper.make_node("Div", ["one_f64", "sqrt_dk"], ["scale_f64"]),
        helper.make_node("Cast", ["scale_f64"], ["scale"], to=elem),
        helper.make_node("Mul", ["qk", "scale"], ["scores"]),
    ]
    if not (masked or causal):
        nodes += [
            helper.make_node("Softmax", ["scores"], ["p"], axis=-1),
            helper.make_node("MatMul", ["p", "v"], ["y"]),
        ]
        return _model(nodes, inputs, outputs, FALLBACK_OPSET, "sdpa_matmul")

    allowed = []
    if causal:
        nodes += [
            const("zero_i64", 0, TensorProto.INT64),
            const("one_i64", 1, TensorProto.INT64),
            const("two", 2, TensorProto.INT64),
            const("axis1", [1], TensorProto.INT64, (1,)),
            helper.make_node("Shape", ["k"], ["k_shape"]),
            helper.make_node("Gather", ["q_shape", "two"], ["tq"]),
            helper.make_node("Gather", ["k_shape", "two"], ["tk"]),
            helper.make_node("Range", ["zero_i64", "tq", "one_i64"], ["i_row"]),
            helper.make_node("Unsqueeze", ["i_row", "axis1"], ["i"]),
            helper.make_node("Range", ["zero_i64", "tk", "one_i64"], ["j"]),
            helper.make_node("Greater", ["j", "i"], ["future"]),
            helper.make_node("Not", ["future"], ["causal_ok"]),
        ]
        allowed.append("causal_ok")
    if masked:
        allowed.append("mask")
    if len(allowed) == 2:
        nodes.append(helper.make_node("And", allowed, ["allowed"]))
    else:
        nodes.append(helper.make_node("Identity", allowed, ["allowed"]))
    nodes += [
        const("neg_inf_f32", -np.inf, TensorProto.FLOAT),
        helper.make_node("Cast", ["neg_inf_f32"], ["neg_inf"], to=elem),
        const("zero_f32", 0.0, TensorProto.FLOAT),
        helper.make_node("Cast", ["zero_f32"], ["zero"], to=elem),
        helper.make_node("Where", ["allowed", "scores", "neg_inf"], ["masked_scores"]),
        helper.make_node("Softmax", ["masked_scores"], ["p_raw"], axis=-1),
        # The guard works on the boolean pattern in float32, not on the scores, so it holds for
        # any dtype and any score value.
        helper.make_node("Cast", ["allowed"], ["allowed_f32"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMax", ["allowed_f32"], ["any_f32"], axes=[-1], keepdims=1),
        const("half", 0.5, TensorProto.FLOAT),
        helper.make_node("Less", ["any_f32", "half"], ["dead_row"]),
        helper.make_node("Where", ["dead_row", "zero", "p_raw"], ["p"]),
        helper.make_node("MatMul", ["p", "v"], ["y"]),
    ]
    return _model(nodes, inputs, outputs, FALLBACK_OPSET, "sdpa_matmul")


SDPA_BUILDERS = {"attention": sdpa_attention_graph, "matmul": sdpa_matmul_graph}


# -- shared adapter machinery ---------------------------------------------------------------


class _Refused(Exception):
    """The runtime would not build a graph (an op or dtype it lacks): not a bug in the inputs."""


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")


def _dtype_name(*arrays: np.ndarray) -> str:
    names = {a.dtype.name for a in arrays}
    if len(names) != 1:
        raise TypeError(f"inputs have mixed dtypes {sorted(names)}")
    return names.pop()


class _OnnxAdapter(
    OnnxRecurrentMixin,
    OnnxNormMixin,
    OnnxAttentionMixin,
    OnnxLanguageMixin,
    OnnxVisionMixin,
    Adapter,
):
    """Graph building, caching and the canonical-layout plumbing; subclasses only compile."""

    dtypes: ClassVar[tuple[str, ...]] = ("float64", "float32")
    device: ClassVar[str] = "cpu"

    # (runtime name, key) -> compiled runner, or the reason the runtime refused the graph; class
    # level so every instance (the loader makes several) shares the sessions.
    _cache: ClassVar[dict[tuple, Runner | str]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, sdpa_form: str = "auto") -> None:
        # "auto": the Attention op, else the MatMul graph; naming a form pins it (for tests).
        if sdpa_form not in ("auto", *SDPA_BUILDERS):
            raise ValueError(
                f"sdpa_form {sdpa_form!r} is not 'auto' or one of {list(SDPA_BUILDERS)}"
            )
        self.sdpa_form = sdpa_form

    def _compile(self, model: onnx.ModelProto) -> Runner:
        raise NotImplementedError

    def _runner(self, key: tuple, build: Callable[[], onnx.ModelProto]) -> Runner:
        cache_key = (self.name, *key)
        entry = self._cache.get(cache_key)
        if entry is None:
            with self._lock:
                entry = self._cache.get(cache_key)
                if entry is None:
                    model = build()  # a failure here is a bug in this file: let it raise
                    try:
                        entry = self._compile(model)
                    except Exception as exc:
                        entry = _first_line(exc)
                    self._cache[cache_key] = entry
        if isinstance(entry, str):
            raise _Refused(entry)
        return entry

    # -- softmax ---------------------------------------------------------------------------

    def _softmax(self, x: np.ndarray, axis: int, log: bool) -> np.ndarray:
        dtype = _dtype_name(x)
        axis = normalize_axis_index(axis, x.ndim)  # the AxisError NumPy would raise
        op = "log_softmax" if log else "softmax"
        try:
            run = self._runner(
                (op, dtype, x.ndim, axis), lambda: softmax_graph(dtype, x.ndim, axis, log)
            )
        except _Refused as exc:
            raise Unsupported(f"{self.name} cannot run {op} in {dtype}: {exc}") from None
        return run({"x": np.ascontiguousarray(x)})

    def softmax(self, x: np.ndarray, axis: int = -1) -> np.ndarray:
        return self._softmax(x, axis, log=False)

    def log_softmax(self, x: np.ndarray, axis: int = -1) -> np.ndarray:
        return self._softmax(x, axis, log=True)

    # -- sdpa ------------------------------------------------------------------------------

    def _sdpa_runner(self, dtype: str, masked: bool, causal: bool) -> tuple[str, Runner]:
        forms = list(SDPA_BUILDERS) if self.sdpa_form == "auto" else [self.sdpa_form]
        reasons = []
        for form in forms:
            build = SDPA_BUILDERS[form]
            try:
                key = ("sdpa", form, dtype, masked, causal)
                return form, self._runner(key, lambda b=build: b(dtype, masked, causal))
            except _Refused as exc:
                reasons.append(f"{SDPA_FORMS[form]}: {exc}")
        raise Unsupported(f"{self.name} cannot run sdpa in {dtype}: " + "; ".join(reasons))

    def sdpa(
        self,
        q: np.ndarray,
        k: np.ndarray,
        v: np.ndarray,
        mask: np.ndarray | None = None,
        causal: bool = False,
    ) -> np.ndarray:
        dtype = _dtype_name(q, k, v)
        if mask is not None and np.asarray(mask).dtype != np.bool_:
            raise Unsupported(f"only boolean masks are mapped, got {np.asarray(mask).dtype}")
        (tq, dk), (tk, dv) = q.shape[-2:], v.shape[-2:]
        # Broadcast like the reference's matmuls do, mask included (it may carry batch dims q
        # lacks), then fold every leading dim into ONNX's batch with a single head.
        leading = [q.shape[:-2], k.shape[:-2], v.shape[:-2]]
        if mask is not None:
            leading.append(np.shape(mask)[:-2])
        batch = np.broadcast_shapes(*leading)
        b = math.prod(batch)

        def fold(a: np.ndarray, rows: int, cols: int) -> np.ndarray:
            full = np.broadcast_to(a, (*batch, rows, cols))
            return np.ascontiguousarray(full).reshape(b, 1, rows, cols)

        feeds = {"q": fold(q, tq, dk), "k": fold(k, tk, k.shape[-1]), "v": fold(v, tk, dv)}
        if mask is not None:
            feeds["mask"] = fold(np.asarray(mask), tq, tk)
        _, run = self._sdpa_runner(dtype, mask is not None, bool(causal))
        return run(feeds).reshape(*batch, tq, dv)

    # -- manifest ----------------------------------------------------------------------------

    def sdpa_forms(self) -> dict[str, str]:
        """Which graph each listed dtype runs for sdpa (building the graphs if need be)."""
        forms = {}
        for dtype in self.dtypes:
            try:
                forms[dtype] = SDPA_FORMS[self._sdpa_runner(dtype, False, False)[0]]
            except Unsupported as exc:
                forms[dtype] = f"unsupported ({exc})"
        return forms

    def _describe_sdpa(self) -> str | dict[str, str]:
        forms = self.sdpa_forms()
        return forms.popitem()[1] if len(set(forms.values())) == 1 else forms


_LOW = Intermittent(
    "onnx.reference evaluates Attention with NumPy in the input dtype, accumulating in "
    "float16/bfloat16: on some inputs its error exceeds an honest float32-accumulating kernel's "
    "(the 'imprecise' tier; onnx 1.23.2)"
)


class OnnxReference(_OnnxAdapter):
    name = "onnx-reference"
    # Probed with onnx 1.23.2: all four dtypes run all three graphs; bfloat16 arrays are
    # ml_dtypes.bfloat16 in and out (no conversion needed), arithmetic is NumPy's in that dtype.
    dtypes = ("float64", "float32", "float16", "bfloat16")
    # onnx 1.23.2's reference Attention: a fully masked row is zeros (the spec's zero-row guard)
    # and is_causal without a KV cache is top-left (offset 0), for Tq < Tk and Tq > Tk alike:
    # nnspec's canonical choices.
    variants: ClassVar[dict[str, Any]] = {
        "attention.masked_rows": "zeros",
        "attention.causal_alignment": "top_left",
        "gru.reset": "before",  # GRU with linear_before_reset=0 (onnx_recurrent.py)
        **onnx_norm.VARIANTS,  # BatchNormalization's running statistics (onnx_norm.py)
    }

    xfails: ClassVar[dict[str, str]] = {
        "softmax/log_softmax_no_overflow/*": "onnx.reference LogSoftmax computes log(Softmax(x)), "
        "-inf where softmax underflows (onnx 1.23.2)",
        "softmax/log_softmax_values/float16": "onnx.reference LogSoftmax computes "
        "log(Softmax(x)), -inf where float16 softmax underflows (onnx 1.23.2)",
        # Seen with random seeds (dev profile), diagnosed "imprecise: within the error of a
        # kernel that accumulates in float16": NumPy evaluates the graph in the input dtype.
        "attention/*/float16": _LOW,
        "attention/*/bfloat16": _LOW,
        **onnx_recurrent.REFERENCE_XFAILS,
        **onnx_norm.REFERENCE_XFAILS,
        **onnx_attention.REFERENCE_XFAILS,
        **onnx_language.REFERENCE_XFAILS,
        **onnx_vision.REFERENCE_XFAILS,
    }

    def unavailable(self) -> str | None:
        if importlib.util.find_spec("onnx") is None:
            return "onnx is not installed"
        return None

    def describe(self) -> dict[str, Any]:
        import onnx

        return {
            "onnx": onnx.__version__,
            "runtime": "onnx.reference.ReferenceEvaluator",
            "sdpa": self._describe_sdpa(),
        }

    def _compile(self, model: onnx.ModelProto) -> Runner:
        from onnx.reference import ReferenceEvaluator

        evaluator = ReferenceEvaluator(model)

        def run(feeds: dict[str, np.ndarray]) -> np.ndarray:
            # NumPy warns about the -inf - -inf of a fully masked row, which the graphs then
            # guard; the outputs themselves are what the checks judge.
            with np.errstate(all="ignore"):
                return evaluator.run(None, feeds)[0]

        return run


class OnnxRuntime(_OnnxAdapter):
    name = "onnxruntime"
    # Probed with onnxruntime 1.31.1 (CPU): bfloat16 is left out because not even Softmax runs
    # (no bfloat16 kernel for Softmax, nor for the ReduceMax/Expand of the function bodies it
    # falls back to). float16 Softmax runs as its function body with casts to float32 inserted;
    # float64 Attention has no kernel and runs as its ONNX function body.
    dtypes = ("float64", "float32", "float16")
    # The float32/float16 Attention kernels of onnxruntime 1.31.1 return a zero row for a fully
    # masked query and apply is_causal top-left (Tq < Tk and Tq > Tk), as the ONNX spec says.
    # float64 has no kernel: onnxruntime 1.31.1 inlines Attention's function body, which is
    # top-left too but returns NaN for a fully masked row (it predates the spec's zero-row
    # erratum) and computes the scale sqrt(1/sqrt(dk)) in float32 (relative error ~1e-8 unless
    # dk is a power of 16). Those float64 checks are declared known deviations below.
    variants: ClassVar[dict[str, Any]] = {
        "attention.masked_rows": "zeros",
        "attention.causal_alignment": "top_left",
        "gru.reset": "before",  # GRU with linear_before_reset=0 (onnx_recurrent.py)
        **onnx_norm.VARIANTS,  # BatchNormalization's running statistics (onnx_norm.py)
    }
    _F64 = (
        "float64 Attention runs as its ONNX function body, which computes the scale "
        "sqrt(1/sqrt(dk)) in float32 (relative error ~1e-8; onnxruntime 1.31.1)"
    )
    xfails: ClassVar[dict[str, str]] = {
        "attention/fully_masked_row/float64": "float64 Attention runs as its ONNX function "
        "body, which returns NaN for a fully masked row (the float32/float16 kernels return "
        "zeros, as the spec's erratum says; onnxruntime 1.31.1)",
        "attention/values/float64": _F64,
        "attention/self_attention/float64": _F64,
        "attention/cross_attention/float64": _F64,
        **onnx_recurrent.RUNTIME_XFAILS,
        **onnx_norm.RUNTIME_XFAILS,
        **onnx_attention.RUNTIME_XFAILS,
    }

    # Property tests call with tiny tensors from several worker processes: one thread per
    # session avoids thread-pool start-up cost and oversubscription.
    THREADS: ClassVar[int] = 1

    def unavailable(self) -> str | None:
        if importlib.util.find_spec("onnxruntime") is None:
            return "onnxruntime is not installed"
        if importlib.util.find_spec("onnx") is None:
            return "onnx is not installed (it builds the graphs onnxruntime runs)"
        import onnxruntime

        if "CPUExecutionProvider" not in onnxruntime.get_available_providers():
            return "onnxruntime has no CPUExecutionProvider"
        return None

    def _options(self) -> Any:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self.THREADS
        options.inter_op_num_threads = self.THREADS
        options.log_severity_level = 3  # errors only: warnings would flood the test log
        return options

    def _compile(self, model: onnx.ModelProto) -> Runner:
        import onnxruntime

        session = onnxruntime.InferenceSession(
            model.SerializeToString(), self._options(), providers=["CPUExecutionProvider"]
        )
        return lambda feeds: session.run(None, feeds)[0]

    def executed_as(self, model: onnx.ModelProto) -> str:
        """How onnxruntime runs a one-op graph: the op's own kernel, or the graph it was
        rewritten into (an ONNX function body when the provider lacks a kernel for the dtype)."""
        import onnx
        import onnxruntime
        from onnx import TensorProto

        op = model.graph.node[0].op_type
        with tempfile.TemporaryDirectory() as tmp:
            options = self._options()
            options.optimized_model_filepath = os.path.join(tmp, "optimized.onnx")
            onnxruntime.InferenceSession(
                model.SerializeToString(), options, providers=["CPUExecutionProvider"]
            )
            nodes = onnx.load(options.optimized_model_filepath).graph.node
        types = [n.op_type for n in nodes]
        if types == [op]:
            return f"{op} kernel"
        casts_to_f32 = any(
            n.op_type == "Cast"
            and any(a.name == "to" and a.i == TensorProto.FLOAT for a in n.attribute)
            for n in nodes
        )
        how = f"no {op} kernel for this dtype: expanded into {len(types)} nodes"
        return how + (", casts to float32 among them" if casts_to_f32 else "")

    def describe(self) -> dict[str, Any]:
        import onnx
        import onnxruntime

        info: dict[str, Any] = {
            "onnxruntime": onnxruntime.__version__,
            "onnx": onnx.__version__,
            "providers": ["CPUExecutionProvider"],
            "threads": self.THREADS,
            "sdpa": self._describe_sdpa(),
        }
        # Best effort: the manifest must not fail because a diagnostic session did.
        execution = {}
        for dtype in self.dtypes:
            try:
                form = self._sdpa_runner(dtype, True, False)[0]
                execution[dtype] = {
                    "softmax": self.executed_as(softmax_graph(dtype, 2, 1)),
                    "sdpa": self.executed_as(sdpa_attention_graph(dtype, True, False))
                    if form == "attention"
                    else SDPA_FORMS[form],
                }
            except Exception as exc:
                execution[dtype] = _first_line(exc)
        info["executed_as"] = execution
        return info
