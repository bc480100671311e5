"""What is benchmarked, at which typical size: one row per op.

Typical sizes (issue #10): batch B = 32, sequence T = 128, hidden H = 256; attention splits the
hidden size into 4 heads of d = 64; images are 224 x 224 at the Swin-T / ViT-Ti stage sizes
(a smaller batch there: a whole network's forward+backward in float64). Each row builds float64
inputs once and gives the callables to time: the reference forward+backward, torch float64
forward+backward (autograd), and the forward alone for the reference and for onnx.reference
(onnx has no backward) where the OnnxReference adapter has the op.

Ops whose layers legitimately differ (a declared variant) run the reference with the variant
the library implements (`variants`): the GRU's reset gate, "after" in torch, "before" in ONNX."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from conformance.ops import OPS

B, T_LEN, H = 32, 128, 256  # batch, sequence, hidden
HEADS, D_HEAD = 4, 64  # H = HEADS * D_HEAD
FAST_ROUNDS = 25  # ops of ~10 ms: more rounds, or a busy machine's noise decides the median
KINDS = ("reference-fwd+bwd", "torch-fwd+bwd", "reference-fwd", "onnx-reference-fwd")


@dataclass(frozen=True)
class Case:
    op: str
    size: str  # stated in the report
    make: Callable[[np.random.Generator], tuple[list, dict]]  # -> (float args, options)
    onnx_missing: str | None = None  # why onnx.reference is not timed on this op, if it is not
    rounds: int = 5  # pytest-benchmark pedantic rounds (fewer for the big cases)
    # library ("torch" / "onnx") -> reference options naming the variant that library computes
    variants: dict[str, dict] = field(default_factory=dict)

    def options_for(self, library: str, options: dict) -> dict:
        return {**options, **self.variants.get(library, {})}


def _w(rng: np.random.Generator, *shape: int, fan_in: int | None = None) -> np.ndarray:
    """Normal weights scaled by 1/sqrt(fan_in) (the last axis unless named): activations stay
    O(1) at every size, as in a trained layer."""
    return rng.standard_normal(shape) / np.sqrt(fan_in or shape[-1])


def _rnn(rng):
    x, h0 = rng.standard_normal((B, T_LEN, H)), rng.standard_normal((B, H))
    return [x, h0, _w(rng, H, H), _w(rng, H, H), _w(rng, H)], {}


def _lstm(rng):
    x, h0, c0 = (rng.standard_normal(s) for s in ((B, T_LEN, H), (B, H), (B, H)))
    return [x, h0, c0, _w(rng, 4 * H, 2 * H), _w(rng, 4 * H)], {}


def _gru(rng):
    x, h0 = rng.standard_normal((B, T_LEN, H)), rng.standard_normal((B, H))
    return [x, h0, _w(rng, 3 * H, 2 * H), _w(rng, 3 * H)], {}


def _heads(rng):
    return [rng.standard_normal((B, HEADS, T_LEN, D_HEAD)) for _ in range(3)]


def _sdpa(rng):
    return _heads(rng), {"causal": True}


def _linear_attention(rng):
    return _heads(rng), {}


def _mha(rng):
    x = rng.standard_normal((B, T_LEN, H))
    weights = [_w(rng, H, H, fan_in=H) for _ in range(4)]  # W_Q, W_K, W_V, W_O (X W)
    biases = [_w(rng, H) for _ in range(3)]  # b_q, b_v, b_o
    return [x, x, *weights, *biases], {"n_heads": HEADS}


def _layer_norm(rng):
    return [rng.standard_normal((B, T_LEN, H)), 1 + _w(rng, H), _w(rng, H)], {}


def _batch_norm(rng):
    # BatchNorm1d layout (N, C, L): C = H channels, statistics over the batch and the sequence
    return [rng.standard_normal((B, H, T_LEN)), 1 + _w(rng, H), _w(rng, H)], {}


def _softmax(rng):
    return [rng.standard_normal((B * T_LEN, H))], {"axis": -1}


# Swin-T stage 1 at 224 x 224: a 56 x 56 map of C = 96 channels, 3 heads, window 7, shifted
# by 3 (the SW-MSA block), MLP ratio 4.
SWIN_B, SWIN_HW, SWIN_C, SWIN_HEADS, SWIN_M = 4, 56, 96, 3, 7


def _swin_block(rng):
    c, f, m = SWIN_C, 4 * SWIN_C, SWIN_M
    x = rng.standard_normal((SWIN_B, SWIN_HW, SWIN_HW, c))
    norm = [1 + _w(rng, c), _w(rng, c)]
    attn = [_w(rng, c, c, fan_in=c) for _ in range(3)] + [_w(rng, c, c, fan_in=c)]
    attn += [_w(rng, c) for _ in range(3)] + [0.02 * rng.standard_normal(((2 * m - 1) ** 2, 3))]
    mlp = [_w(rng, c, f, fan_in=c), _w(rng, f), _w(rng, f, c, fan_in=f), _w(rng, c)]
    params = [*norm, *attn, 1 + _w(rng, c), _w(rng, c), *mlp]
    options = {"n_heads": SWIN_HEADS, "window": m, "shift": m // 2}
    return [x, *params], options


# ViT-Ti/16 at 224 x 224 (D = 192, 3 heads, MLP 768, 197 tokens), 4 of its 12 blocks.
VIT_B, VIT_DEPTH, VIT_D, VIT_HEADS, VIT_P = 4, 4, 192, 3, 16


def _vit(rng):
    d, f, n = VIT_D, 4 * VIT_D, (224 // VIT_P) ** 2
    x = rng.standard_normal((VIT_B, 3, 224, 224))
    embed = [_w(rng, 3 * VIT_P**2, d, fan_in=3 * VIT_P**2), _w(rng, d)]
    embed += [0.02 * rng.standard_normal(d), 0.02 * rng.standard_normal((n + 1, d))]
    blocks = []
    for _ in range(VIT_DEPTH):
        blocks += [_w(rng, d, d, fan_in=d) for _ in range(4)] + [_w(rng, d) for _ in range(3)]
        blocks += [1 + _w(rng, d), _w(rng, d), _w(rng, d, f, fan_in=d), _w(rng, f)]
        blocks += [_w(rng, f, d, fan_in=f), _w(rng, d), 1 + _w(rng, d), _w(rng, d)]
    final = [1 + _w(rng, d), _w(rng, d)]
    return [x, *embed, *blocks, *final], {"patch": VIT_P, "n_heads": VIT_HEADS}


_NO_GRAPH = "no graph for this op in the OnnxReference adapter"
_LN64 = (
    "onnx.reference refuses float64 LayerNormalization (stash_type=11 != 1; onnx 1.23.2): "
    "the adapter reports it unsupported"
)
_SEQ = f"B={B}, T={T_LEN}, H={H}"
_ATT = f"B={B}, {HEADS} heads, T={T_LEN}, d={D_HEAD}"
CASES: dict[str, Case] = {
    "softmax": Case("softmax", f"({B * T_LEN}, {H})", _softmax, rounds=FAST_ROUNDS),
    "rnn": Case("rnn", f"{_SEQ}, D={H}, tanh", _rnn),
    "lstm": Case("lstm", f"{_SEQ}, D={H}", _lstm),
    "gru": Case(
        "gru",
        f"{_SEQ}, D={H}",
        _gru,
        variants={"torch": {"reset": "after"}, "onnx": {"reset": "before"}},
    ),
    "sdpa": Case("sdpa", f"{_ATT}, causal", _sdpa),
    "mha": Case("mha", f"{_SEQ}, {HEADS} heads, self-attention", _mha),
    "linear_attention": Case("linear_attention", _ATT, _linear_attention, onnx_missing=_NO_GRAPH),
    "linear_attention_causal": Case("linear_attention_causal", _ATT, _linear_attention, rounds=3),
    "layer_norm": Case(
        "layer_norm", f"{_SEQ}, over H", _layer_norm, onnx_missing=_LN64, rounds=FAST_ROUNDS
    ),
    "batch_norm": Case(
        "batch_norm",
        f"(N, C, L) = ({B}, {H}, {T_LEN}), training",
        _batch_norm,
        rounds=FAST_ROUNDS,
    ),
    "swin_block": Case(
        "swin_block",
        f"B={SWIN_B}, {SWIN_HW}x{SWIN_HW}x{SWIN_C} (Swin-T stage 1 at 224), {SWIN_HEADS} heads, "
        f"window {SWIN_M}, shift {SWIN_M // 2}",
        _swin_block,
        onnx_missing=_NO_GRAPH,
        rounds=3,
    ),
    "vit": Case(
        "vit",
        f"B={VIT_B}, 224x224, patch {VIT_P}, D={VIT_D}, {VIT_HEADS} heads, {VIT_DEPTH} blocks "
        "(ViT-Ti/16 width)",
        _vit,
        onnx_missing=_NO_GRAPH,
        rounds=3,
    ),
}


def available(case: Case) -> str | None:
    """Why a case cannot run here (its reference or torch op is missing), else None."""
    from conformance.adapters.pytorch import TORCH_OPS

    op = OPS.get(case.op)
    if op is None or op.vjp is None:
        return f"no reference forward and vjp for {case.op}"
    if case.op not in TORCH_OPS:
        return f"no torch op for {case.op}"
    return None


def _first(out):
    """The output that gets the cotangent: hs for the recurrent ops (hs, h_T[, c_T])."""
    return out[0] if isinstance(out, tuple) else out


def backward_form(case: Case) -> str:
    """How the reference's forward+backward runs (see reference_forward_backward)."""
    return "saved activations" if OPS[case.op].with_vjp else "forward recomputed"


def reference_forward(case: Case, args: list, options: dict) -> Callable[[], object]:
    options = case.options_for("onnx", options)
    return lambda: OPS[case.op].forward(*args, **options)


def reference_forward_backward(case: Case, args: list, options: dict) -> Callable[[], object]:
    """What a training step calls: the forward, then the vjp of a ones cotangent on the (first)
    output. Where the op has with_vjp, one forward whose saved activations the pullback reads
    (as torch's autograd does); otherwise the forward, then the vjp, which recomputes the
    forward it needs from the inputs (two forwards and one backward: ratios.py says which)."""
    op = OPS[case.op]
    options = case.options_for("torch", options)

    def run_saved():
        out, pullback = op.with_vjp(*args, **options)
        return pullback(np.ones_like(_first(out)))

    def run_recomputed():
        out = _first(op.forward(*args, **options))
        return op.vjp(np.ones_like(out), *args, **options)

    return run_saved if op.with_vjp else run_recomputed


def torch_forward_backward(case: Case, args: list, options: dict) -> Callable[[], object]:
    import torch

    from conformance.adapters.pytorch import TORCH_OPS

    fn = TORCH_OPS[case.op]
    tensors = [torch.from_numpy(a).requires_grad_(True) for a in args]

    def run():
        out = _first(fn(*tensors, **options))
        return torch.autograd.grad(out, tensors, grad_outputs=torch.ones_like(out))

    return run


def onnx_reference_forward(case: Case, args: list, options: dict) -> Callable[[], object]:
    from conformance.adapters.onnx_graphs import OnnxReference

    method = getattr(OnnxReference(), case.op)
    method(*args, **options)  # build and cache the graph outside the timing
    return lambda: method(*args, **options)


MAKERS: dict[str, Callable[[Case, list, dict], Callable[[], object]]] = {
    "reference-fwd+bwd": reference_forward_backward,
    "torch-fwd+bwd": torch_forward_backward,
    "reference-fwd": reference_forward,
    "onnx-reference-fwd": onnx_reference_forward,
}
