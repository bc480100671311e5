"""PyTorch recurrent ops in nnspec's canonical layout: nn.RNN, nn.LSTM, nn.GRU (batch_first),
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

from conformance.adapters.base import Unsupported

# What these ops compute where libraries legitimately differ (conformance/variants.py).
VARIANTS: dict[str, Any] = {"gru.reset": "after", "clip_grad_norm.eps": 1e-6}

# Known deviations (merged into the torch adapters' xfails).
#
# Measured (torch 2.14.1, CPU): float32 nn.LSTM runs on oneDNN by default. Its gradients have a
# heavier error tail than an honest float32 kernel: on 200 random inputs with B=3, T=46, H=2,
# 2 exceeded the derived tolerance (margins 1.03 and 1.56; the bias gradient, a sum over T*B
# steps dominated by one entry), while torch's own native kernel (oneDNN disabled) stayed below
# margin 0.58 on the same inputs. Most examples pass; the checks stay visible as xfail.
_ONEDNN = (
    "torch's CPU LSTM runs on oneDNN: on ~1% of long sequences its float32 gradients exceed the "
    "honest-kernel bound (bias gradient margin up to 1.6; torch's native kernel stays below 0.6 "
    "on the same inputs; torch 2.14.1)"
)
XFAILS: dict[str, str] = {"lstm/vjp/float32": _ONEDNN, "lstm/reverse_vjp/float32": _ONEDNN}

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
def _layer(kind: str, D: int, H: int, bidirectional: bool, dtype, device, **options):
    from torch import nn

    cls = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[kind]
    # Its own parameters are never used: functional_call substitutes the canonical ones.
    return cls(
        D, H, batch_first=True, bidirectional=bidirectional, dtype=dtype, device=device, **options
    )


def _split_bias(b):
    half = b / 2
    return half, b - half


def _run_layer(kind, x, h, W_ih, W_hh, b_ih, b_hh, reverse, **options):
    """Run the torch layer on canonical-layout weights; (hs (B, T, H), final states (B, H))."""
    import torch
    from torch.func import functional_call

    _, _, D = x.shape
    H = W_hh.shape[1]
    layer = _layer(kind, D, H, bool(reverse), x.dtype, x.device, **options)
    suffix = "_reverse" if reverse else ""
    params = {
        f"weight_ih_l0{suffix}": W_ih,
        f"weight_hh_l0{suffix}": W_hh,
        f"bias_ih_l0{suffix}": b_ih,
        f"bias_hh_l0{suffix}": b_hh,
    }
    if reverse:
        # The forward half of the bidirectional layer: zero weights, outputs discarded.
        params.update(
            {
                "weight_ih_l0": torch.zeros_like(W_ih),
                "weight_hh_l0": torch.zeros_like(W_hh),
                "bias_ih_l0": torch.zeros_like(b_ih),
                "bias_hh_l0": torch.zeros_like(b_hh),
            }
        )
        h = None if h is None else tuple(torch.stack([torch.zeros_like(s), s]) for s in h)
    else:
        h = None if h is None else tuple(s.unsqueeze(0) for s in h)
    if h is not None and kind != "lstm":
        h = h[0]
    try:
        out, state = functional_call(layer, params, (x, h))
    except RuntimeError as exc:
        # torch 2.14 refuses T = 0: "Expected sequence length to be larger than 0 in RNN".
        if "sequence length" in str(exc):
            raise Unsupported(f"torch.nn.{layer.__class__.__name__}: {exc}") from None
        raise
    states = state if kind == "lstm" else (state,)
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


# -- ops ---------------------------------------------------------------------------------------


def rnn(x, h0, W, U, b, nonlinearity="tanh", reverse=False, dh_T=None):
    b_ih, b_hh = _split_bias(b)
    hs, (h_T,) = _run_layer(
        "rnn", x, _initial([h0]), U, W, b_ih, b_hh, reverse, nonlinearity=nonlinearity
    )
    return _outputs(hs, (h_T,), (dh_T,))


def lstm(x, h0, c0, W, b, reverse=False, dh_T=None, dc_T=None):
    import torch

    H = W.shape[0] // 4
    blocks = [W[k * H : (k + 1) * H] for k in _LSTM_ORDER]
    W_torch = torch.cat(blocks)  # (4H, H + D), torch's gate order
    b_torch = torch.cat([b[k * H : (k + 1) * H] for k in _LSTM_ORDER])
    b_ih, b_hh = _split_bias(b_torch)
    hs, (h_T, c_T) = _run_layer(
        "lstm", x, _initial([h0, c0]), W_torch[:, H:], W_torch[:, :H], b_ih, b_hh, reverse
    )
    return _outputs(hs, (h_T, c_T), (dh_T, dc_T))


def gru(x, h0, W, b, reverse=False, dh_T=None):
    import torch

    H = W.shape[0] // 3
    b_r, b_z = _split_bias(b[: 2 * H])  # reset and update gates: both biases exercised
    b_ih = torch.cat([b_r, b[2 * H :]])  # candidate: b_in = b_n
    b_hh = torch.cat([b_z, torch.zeros_like(b[2 * H :])])  # b_hn = 0 (inside the reset)
    hs, (h_T,) = _run_layer("gru", x, _initial([h0]), W[:, H:], W[:, :H], b_ih, b_hh, reverse)
    return _outputs(hs, (h_T,), (dh_T,))


def _loss(x, h, W, U, b, V, c, z, nonlinearity):
    b_ih, b_hh = _split_bias(b)
    hs, (h_T,) = _run_layer("rnn", x, h, U, W, b_ih, b_hh, False, nonlinearity=nonlinearity)
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
    "rnn_loss": rnn_loss,
    "rnn_tbptt": rnn_tbptt,
    "clip_grad_norm": clip_grad_norm,
    "lstm": lstm,
    "gru": gru,
}
