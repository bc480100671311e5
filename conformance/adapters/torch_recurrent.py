"""PyTorch recurrent ops in nnspec's canonical layout: nn.RNN, nn.LSTM, nn.GRU (one direction,
bidirectional, stacked layers; batch-first and seq-first; packed sequences),
truncated BPTT written the way torch users write it (detach at chunk boundaries), and
torch.nn.utils.clip_grad_norm_.

Each op builds the real torch layer and runs it with torch.func.functional_call on weights
made from the canonical arrays, so autograd reaches the canonical inputs through the library's
own forward and backward (cuDNN on torch-cuda). Layout mapping happens here, never in
reference/:

- nn.RNN: weight_ih = U (H, D), weight_hh = W (H, H).
- nn.LSTM: gate order i, f, g, o (nnspec: i, f, o, g on [h; x]): the o and g row blocks of W
  and b are swapped, and W (4H, H + D) splits into weight_hh = W[:, :H], weight_ih = W[:, H:].
- nn.GRU: gate order r, z, n as nnspec's; n = tanh(W_in x + b_in + r * (W_hn h + b_hn)), the
  reset AFTER the recurrent matmul: torch declares the variant gru.reset="after".
- Two biases (b_ih, b_hh, added): the canonical bias is split in halves, b_ih = b/2 and
  b_hh = b - b/2 (exact in binary floating point), so that a layer which ignored either one
  would fail the check; putting all of b in b_ih would leave b_hh untested. The exception is
  the GRU's candidate gate: b_hn sits inside the reset in torch, and nnspec's one bias outside
  it, so b_in = b_n and b_hn = 0 there.
- reverse=True runs the backward half of a bidirectional layer (bidirectional=True; the forward
  half gets zero weights and its outputs are dropped).
- *_bidirectional: bidirectional=True with both directions' canonical weights (weight_*_l0 and
  weight_*_l0_reverse); torch's output (B, T, 2H) is already nnspec's [forward | reverse] and
  h_n (2, B, H) its final states.
- *_layers: num_layers = L (no dropout), weight_*_l{k} from layer k's canonical weights; run as
  the seq-first module (batch_first=False, torch's default), x transposed to (T, B, D) and the
  output back here; h_n (L, B, H) is nnspec's layer-major final states.
- lengths (ONNX's sequence_lens): pack_padded_sequence(enforce_sorted=False) before the module
  and pad_packed_sequence (zeros) after it; torch's h_n is then the state after each row's last
  valid step, as nnspec's. torch refuses a zero length (the strategies draw 1..T).
- peepholes: torch.nn.LSTM has none (Unsupported: not covered).
- clip_grad_norm_: scales by max_norm / (total_norm + 1e-6) when that is below 1: the declared
  variant clip_grad_norm.eps=1e-6.

Multi-output ops return a tuple when called without autograd (the adapter's forward). Under
autograd (conformance.adapters.autograd.vjp, which differentiates one output with one cotangent)
they return hs only, with the final-state cotangents given as keywords (dh_T, dc_T) injected
into h_T and c_T by a custom autograd node: the gradient then flows through torch's own
backward from every output.
"""

from __future__ import annotations

import functools
from typing import Any

from conformance.adapters.base import Intermittent, Unsupported, cpu_kernel

# What these ops compute where libraries legitimately differ (conformance/variants.py).
VARIANTS: dict[str, Any] = {"gru.reset": "after", "clip_grad_norm.eps": 1e-6}

# Known deviations (merged into the torch adapters' xfails).
#
# Measured (torch 2.14.1, CPU): float32 nn.LSTM runs on oneDNN by default. Its gradients have a
# heavier error tail than an honest float32 kernel: on 200 random inputs with B=3, T=46, H=2,
# 2 exceeded the derived tolerance (margins 1.03 and 1.56; the bias gradient, a sum over T*B
# steps dominated by one entry), while torch's own native kernel (oneDNN disabled) stayed below
# margin 0.58 on the same inputs. Most examples pass; the checks stay visible as xfail.
_ONEDNN = cpu_kernel(
    Intermittent(
        "torch's CPU LSTM runs on oneDNN: on ~1% of long sequences its float32 gradients exceed "
        "the honest-kernel bound (bias gradient margin up to 1.6; torch's native kernel stays "
        "below 0.6 on the same inputs; torch 2.14.1)"
    )
)
# Observed (thorough profile, seed 6: clip_values float16, two gradients of ~1e-5, ratio 0.1,
# returned unclipped, error 9.85): clip_grad_norm_ computes max_norm / (total_norm + 1e-6) with
# a Python float over a float16 tensor, which torch evaluates as reciprocal(d) * max_norm; 1/d
# overflows float16 for d < 1/65504 ≈ 1.5e-5, the coefficient is inf, clamps to 1, and nothing is
# clipped. clip_bounds_norm fails with it; the direction and idempotence checks still hold.
_CLIP_F16 = Intermittent(
    "torch's clip_grad_norm_ evaluates max_norm / (total_norm + 1e-6) as reciprocal(d) * max_norm "
    "in float16: for a total norm below ~1.5e-5, 1/d overflows, the coefficient clamps to 1 and "
    "the gradients are returned unclipped (torch 2.14.1)"
)
XFAILS: dict[str, str] = {
    "lstm/vjp/float32": _ONEDNN,
    "lstm/reverse_vjp/float32": _ONEDNN,
    "rnn/clip_values/float16": _CLIP_F16,
    "rnn/clip_bounds_norm/float16": _CLIP_F16,
}

# Observed and allowed for, not a deviation: torch's GRU cell computes h' = (h - n) * z + n,
# which with z = 1 (saturated update gate) is h only up to one rounding per step (h_T drifts
# from h0 by up to 5 ulps over 64 steps in float32/float16/bfloat16), so
# conformance/test_gru.py checks the copy step by step.

_LSTM_ORDER = (0, 1, 3, 2)  # torch block k takes nnspec block _LSTM_ORDER[k]: i, f, g, o


@functools.cache
def _inject_function():
    import torch

    class InjectCotangents(torch.autograd.Function):
        """Identity on `out`; its backward also hands each given cotangent to its state."""

        @staticmethod
        def forward(ctx, out, *states_and_cotangents):
            n = len(states_and_cotangents) // 2
            ctx.n = n
            ctx.save_for_backward(*states_and_cotangents[n:])
            return out.clone()

        @staticmethod
        def backward(ctx, grad):
            return (grad, *ctx.saved_tensors, *([None] * ctx.n))

    return InjectCotangents


def _outputs(hs, states: tuple, cotangents: tuple):
    import torch

    if not torch.is_grad_enabled():
        return (hs, *states)
    pairs = [(s, c) for s, c in zip(states, cotangents, strict=True) if c is not None]
    if not pairs:
        return hs
    states = [s for s, _ in pairs]
    return _inject_function().apply(hs, *states, *[c.to(s.dtype) for s, c in pairs])


@functools.cache
def _layer(kind, D, H, num_layers, bidirectional, batch_first, dtype, device, **options):
    from torch import nn

    cls = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[kind]
    # Its own parameters are never used: functional_call substitutes the canonical ones.
    return cls(
        D,
        H,
        num_layers=num_layers,
        bidirectional=bidirectional,
        batch_first=batch_first,
        dtype=dtype,
        device=device,
        **options,
    )


def _split_bias(b):
    half = b / 2
    return half, b - half


def _torch_layer(
    kind, x, h, params, num_layers=1, bidirectional=False, lengths=None, batch_first=True, **options
):
    """The torch module on canonical-layout tensors.

    x (B, T, D) batch-first; params[(layer, direction)] = (W_ih, W_hh, b_ih, b_hh) in torch's
    layout; h: torch's initial state ((L * dirs, B, H), a tuple (h, c) for the LSTM) or None;
    lengths (B,) or None: the sequences are packed (pack_padded_sequence) and the output padded
    back with zeros. batch_first=False runs the seq-first module (torch's default): x is
    transposed to (T, B, D) here and the output back to batch-first (the stacked-layer ops use
    it, so both of torch's layouts are exercised by the suite).
    Returns (output (B, T, dirs * H), final states each (L * dirs, B, H))."""
    import torch
    from torch.func import functional_call
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    _, T, D = x.shape
    H = params[(0, 0)][1].shape[1]
    layer = _layer(kind, D, H, num_layers, bidirectional, batch_first, x.dtype, x.device, **options)
    names = {}
    for (k, d), tensors in params.items():
        suffix = f"_l{k}" + ("_reverse" if d else "")
        for name, t in zip(("weight_ih", "weight_hh", "bias_ih", "bias_hh"), tensors, strict=True):
            # cuDNN's weight flattening (torch._cudnn_rnn_flatten_weight, run by the module's
            # forward on CUDA) views each weight flat: a column slice of the canonical W
            # raised "view size is not compatible" there (torch 2.11 + cuDNN 9.19, H200).
            names[name + suffix] = t.contiguous()
    inp = x if batch_first else x.transpose(0, 1)  # (T, B, D) for the seq-first module
    if lengths is not None:
        inp = pack_padded_sequence(
            inp, lengths.cpu().to(torch.int64), batch_first=batch_first, enforce_sorted=False
        )
    if h is not None and kind != "lstm":
        h = h[0]
    try:
        out, state = functional_call(layer, names, (inp, h))
    except RuntimeError as exc:
        # torch 2.14 refuses T = 0: "Expected sequence length to be larger than 0 in RNN".
        if "sequence length" in str(exc):
            raise Unsupported(f"torch.nn.{layer.__class__.__name__}: {exc}") from None
        raise
    if lengths is not None:
        out, _ = pad_packed_sequence(out, batch_first=batch_first, total_length=T)
    if not batch_first:
        out = out.transpose(0, 1)  # back to (B, T, dirs * H)
    return out, (state if kind == "lstm" else (state,))


def _run_layer(kind, x, h, W_ih, W_hh, b_ih, b_hh, reverse, lengths=None, **options):
    """One direction of one layer; (hs (B, T, H), final states (B, H)). reverse=True runs the
    backward half of a bidirectional module (its forward half gets zero weights and its outputs
    are dropped)."""
    import torch

    H = W_hh.shape[1]
    params = {(0, int(bool(reverse))): (W_ih, W_hh, b_ih, b_hh)}
    if reverse:
        params[(0, 0)] = tuple(torch.zeros_like(t) for t in (W_ih, W_hh, b_ih, b_hh))
        h = None if h is None else tuple(torch.stack([torch.zeros_like(s), s]) for s in h)
    else:
        h = None if h is None else tuple(s.unsqueeze(0) for s in h)
    out, states = _torch_layer(kind, x, h, params, 1, bool(reverse), lengths, **options)
    if reverse:
        return out[..., H:], tuple(s[1] for s in states)
    return out, tuple(s[0] for s in states)


def _initial(states):
    """(h0,) / (h0, c0) for torch: None when every one is None, zeros for a missing one."""
    import torch

    given = [s for s in states if s is not None]
    if not given:
        return None
    return tuple(torch.zeros_like(given[0]) if s is None else s for s in states)


# -- canonical weights -> torch's layout, per cell -------------------------------------------------


def _rnn_params(W, U, b):
    return (U, W, *_split_bias(b))  # weight_ih = U (H, D), weight_hh = W (H, H)


def _lstm_params(W, b):
    import torch

    H = W.shape[0] // 4
    W_torch = torch.cat([W[k * H : (k + 1) * H] for k in _LSTM_ORDER])  # torch's i, f, g, o
    b_torch = torch.cat([b[k * H : (k + 1) * H] for k in _LSTM_ORDER])
    return (W_torch[:, H:], W_torch[:, :H], *_split_bias(b_torch))


def _gru_params(W, b):
    import torch

    H = W.shape[0] // 3
    b_r, b_z = _split_bias(b[: 2 * H])  # reset and update gates: both biases exercised
    b_ih = torch.cat([b_r, b[2 * H :]])  # candidate: b_in = b_n
    b_hh = torch.cat([b_z, torch.zeros_like(b[2 * H :])])  # b_hn = 0 (inside the reset)
    return (W[:, H:], W[:, :H], b_ih, b_hh)


_PARAMS = {"rnn": (_rnn_params, 3), "lstm": (_lstm_params, 2), "gru": (_gru_params, 2)}


def _bidirectional(kind, x, states, weights, lengths, **options):
    """weights with a leading direction axis 2; states (2, B, H) or None. The module's output
    is already nnspec's (B, T, 2H) = [forward | reverse] (ONNX's (T, 2, B, H) is mapped in
    onnx_recurrent.py)."""
    to_params, _ = _PARAMS[kind]
    params = {(0, d): to_params(*(w[d] for w in weights)) for d in (0, 1)}
    return _torch_layer(kind, x, _initial(states), params, 1, True, lengths, **options)


def _layers(kind, x, states, weights, lengths, **options):
    """weights: the canonical weights of layer 0, 1, ... in turn; states (L, B, H) or None."""
    to_params, n = _PARAMS[kind]
    if not weights or len(weights) % n:
        raise Unsupported(f"{kind}_layers: {len(weights)} weights is not a multiple of {n}")
    per = [weights[k : k + n] for k in range(0, len(weights), n)]
    params = {(k, 0): to_params(*ws) for k, ws in enumerate(per)}
    # torch's default layout, seq-first: mapped in _torch_layer
    layers = len(per)
    return _torch_layer(kind, x, _initial(states), params, layers, False, lengths, False, **options)


# -- ops ---------------------------------------------------------------------------------------


def rnn(x, h0, W, U, b, nonlinearity="tanh", reverse=False, dh_T=None, lengths=None):
    hs, (h_T,) = _run_layer(
        "rnn", x, _initial([h0]), *_rnn_params(W, U, b), reverse, lengths, nonlinearity=nonlinearity
    )
    return _outputs(hs, (h_T,), (dh_T,))


def rnn_bidirectional(x, h0, W, U, b, nonlinearity="tanh", dh_T=None, lengths=None):
    hs, (h_T,) = _bidirectional("rnn", x, [h0], (W, U, b), lengths, nonlinearity=nonlinearity)
    return _outputs(hs, (h_T,), (dh_T,))


def rnn_layers(x, h0, *weights, nonlinearity="tanh", dh_T=None, lengths=None):
    hs, (h_T,) = _layers("rnn", x, [h0], weights, lengths, nonlinearity=nonlinearity)
    return _outputs(hs, (h_T,), (dh_T,))


def lstm(x, h0, c0, W, b, reverse=False, dh_T=None, dc_T=None, lengths=None, peepholes=None):
    if peepholes is not None:
        raise Unsupported("torch.nn.LSTM has no peephole connections")
    hs, (h_T, c_T) = _run_layer(
        "lstm", x, _initial([h0, c0]), *_lstm_params(W, b), reverse, lengths
    )
    return _outputs(hs, (h_T, c_T), (dh_T, dc_T))


def lstm_bidirectional(x, h0, c0, W, b, dh_T=None, dc_T=None, lengths=None, peepholes=None):
    if peepholes is not None:
        raise Unsupported("torch.nn.LSTM has no peephole connections")
    hs, (h_T, c_T) = _bidirectional("lstm", x, [h0, c0], (W, b), lengths)
    return _outputs(hs, (h_T, c_T), (dh_T, dc_T))


def lstm_layers(x, h0, c0, *weights, dh_T=None, dc_T=None, lengths=None):
    hs, (h_T, c_T) = _layers("lstm", x, [h0, c0], weights, lengths)
    return _outputs(hs, (h_T, c_T), (dh_T, dc_T))


def gru(x, h0, W, b, reverse=False, dh_T=None, lengths=None):
    hs, (h_T,) = _run_layer("gru", x, _initial([h0]), *_gru_params(W, b), reverse, lengths)
    return _outputs(hs, (h_T,), (dh_T,))


def gru_bidirectional(x, h0, W, b, dh_T=None, lengths=None):
    hs, (h_T,) = _bidirectional("gru", x, [h0], (W, b), lengths)
    return _outputs(hs, (h_T,), (dh_T,))


def gru_layers(x, h0, *weights, dh_T=None, lengths=None):
    hs, (h_T,) = _layers("gru", x, [h0], weights, lengths)
    return _outputs(hs, (h_T,), (dh_T,))


def _loss(x, h, W, U, b, V, c, z, nonlinearity):
    params = _rnn_params(W, U, b)
    hs, (h_T,) = _run_layer("rnn", x, h, *params, False, nonlinearity=nonlinearity)
    y = hs @ V.T + c  # y_t = V h_t + c
    return 0.5 * ((y - z) ** 2).sum(), h_T


def rnn_loss(x, h0, W, U, b, V, c, z, nonlinearity="tanh"):
    return _loss(x, _initial([h0]), W, U, b, V, c, z, nonlinearity)[0]


def rnn_tbptt(x, h0, W, U, b, V, c, z, chunk, nonlinearity="tanh"):
    """Truncated BPTT as torch code does it: one backward() per chunk, the carried state
    detached at each chunk boundary, gradients accumulated in .grad."""
    import torch

    with torch.enable_grad():
        params = [p.detach().clone().requires_grad_(True) for p in (W, U, b, V, c)]
        h = None if h0 is None else h0.detach()
        total = torch.zeros((), dtype=x.dtype, device=x.device)
        for start in range(0, x.shape[1], chunk):
            part = slice(start, start + chunk)
            state = None if h is None else (h.detach(),)  # the gradient stops here
            loss, h = _loss(x[:, part], state, *params, z[:, part], nonlinearity)
            loss.backward()
            total = total + loss.detach()
    return (total, *(torch.zeros_like(p) if p.grad is None else p.grad for p in params))


def clip_grad_norm(*grads, max_norm):
    import torch

    params = [torch.nn.Parameter(torch.zeros_like(g)) for g in grads]
    for p, g in zip(params, grads, strict=True):
        p.grad = g.clone()
    torch.nn.utils.clip_grad_norm_(params, max_norm)
    return tuple(p.grad for p in params)


OPS = {
    "rnn": rnn,
    "rnn_bidirectional": rnn_bidirectional,
    "rnn_layers": rnn_layers,
    "lstm_bidirectional": lstm_bidirectional,
    "lstm_layers": lstm_layers,
    "gru_bidirectional": gru_bidirectional,
    "gru_layers": gru_layers,
    "rnn_loss": rnn_loss,
    "rnn_tbptt": rnn_tbptt,
    "clip_grad_norm": clip_grad_norm,
    "lstm": lstm,
    "gru": gru,
}
