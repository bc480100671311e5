"""Vanilla RNN: values and BPTT gradients, reverse direction, zero- and one-step sequences,
sequence_lens (padded batches), bidirectional and stacked layers, the output layer and MSE loss,
the Jacobian-product bound, clipping by global norm and truncated BPTT (reference/rnn.py states
the op signatures)."""

from __future__ import annotations

from functools import partial

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from conformance import recurrent, tolerance
from conformance.ops import OPS
from conformance.recurrent import honest_models, stacked
from conformance.strategies import (
    gradients_cases,
    normal,
    recurrent_cases,
    unshrunk,
)

# relu is unbounded: weights of scale <= 1 keep a 64-step relu recurrence from overflowing float16.
RELU_CASES = recurrent_cases(scales=(0.5, 1.0))


def relu_kink_free(impl, x, h0, W, U, b, reverse=False) -> bool:
    """True when no relu pre-activation a_t = W h_{t-1} + U x_t + b lies within rounding
    distance of 0 in impl's dtype.

    relu's derivative jumps at 0: a pre-activation closer to 0 than the kernel's rounding error
    may land on either side in an honest kernel, and the gradient then differs by a whole
    Jacobian column (measured: torch float16, one sign flip in 64 states, dx off by 7%). Such
    an example has no well-defined low-precision gradient, so its gradient is not compared."""
    x, h0, W, U, b = impl.inputs(x, h0, W, U, b)
    hs, _ = OPS["rnn"].forward(x, h0, W, U, b, nonlinearity="relu", reverse=reverse)
    order = np.arange(x.shape[1])[::-1] if reverse else np.arange(x.shape[1])
    start = np.zeros_like(hs[:, :1]) if h0 is None else h0[:, None]
    prev = np.concatenate([start, hs[:, order[:-1]]], axis=1)  # h_{t-1} in reading order
    xs = x[:, order]
    a = prev @ W.T + xs @ U.T + b
    size = np.abs(prev) @ np.abs(W).T + np.abs(xs) @ np.abs(U).T + np.abs(b)
    return bool(np.all(np.abs(a) > 32 * tolerance.eps(impl.dtype) * size))


def _rnn_args(case):
    W, U, b = case.rnn_weights()
    return case.x(), case.state(), W, U, b


CELL = recurrent.Cell("rnn", 1, ("dh_T",), _rnn_args)


# -- values and gradients --------------------------------------------------------------------------


@given(case=recurrent_cases())
def test_values(impl, case):
    impl.compare("rnn", *_rnn_args(case))


@given(case=recurrent_cases())
def test_vjp(impl, case):
    B, T, H = case.batch, case.steps, case.hidden
    dhs, dh_T = case.cotangent(B, T, H), case.cotangent(B, H, k=1)
    impl.compare_vjp("rnn", dhs, *_rnn_args(case), dh_T=dh_T)


@given(case=RELU_CASES)
def test_relu_values(impl, case):
    # h_t = relu(W h_{t-1} + U x_t + b), the other nonlinearity torch and ONNX offer.
    impl.compare("rnn", *_rnn_args(case), nonlinearity="relu")


@given(case=RELU_CASES)
def test_relu_vjp(impl, case):
    B, T, H = case.batch, case.steps, case.hidden
    dhs, dh_T = case.cotangent(B, T, H), case.cotangent(B, H, k=1)
    if not relu_kink_free(impl, *_rnn_args(case)):
        impl.compare("rnn", *_rnn_args(case), nonlinearity="relu")
        return
    impl.compare_vjp("rnn", dhs, *_rnn_args(case), nonlinearity="relu", dh_T=dh_T)


@given(case=recurrent_cases(max_steps=1, min_steps=1))
def test_length_one(impl, case):
    # One step: hs[:, 0] = h_T = tanh(W h0 + U x_0 + b).
    impl.compare("rnn", *_rnn_args(case))


@given(case=recurrent_cases(max_steps=1, min_steps=1))
def test_length_one_vjp(impl, case):
    # One step: the gradient is one Jacobian deep, dh0 = (dhs_0 + dh_T) diag(1 - h_1^2) W.
    B, H = case.batch, case.hidden
    dhs, dh_T = case.cotangent(B, 1, H), case.cotangent(B, H, k=1)
    impl.compare_vjp("rnn", dhs, *_rnn_args(case), dh_T=dh_T)


@unshrunk()  # onnx.reference and onnxruntime: declared xfails
@given(case=recurrent_cases(max_steps=0, min_steps=0))
def test_zero_length(impl, case):
    # T = 0: nnspec returns hs (B, 0, H) and the initial state (zeros when h0 is None).
    impl.compare("rnn", *_rnn_args(case))


@given(case=recurrent_cases())
def test_reverse_values(impl, case):
    # The backward half of a bidirectional layer.
    impl.compare("rnn", *_rnn_args(case), reverse=True)


@given(case=recurrent_cases())
def test_reverse_vjp(impl, case):
    B, T, H = case.batch, case.steps, case.hidden
    dhs, dh_T = case.cotangent(B, T, H), case.cotangent(B, H, k=1)
    impl.compare_vjp("rnn", dhs, *_rnn_args(case), reverse=True, dh_T=dh_T)


@given(case=recurrent_cases())
def test_reverse_direction(impl, case):
    # A reverse-direction layer on x equals the forward layer on x reversed in time, with the
    # outputs reversed back: rnn(x, reverse=True) = flip(rnn(flip(x))).
    x, h0, W, U, b = impl.inputs(*_rnn_args(case))
    flip = x[:, ::-1].copy()  # fresh strides: torch.from_numpy refuses negative ones
    hs_r, h_r = impl.run("rnn", x, h0, W, U, b, reverse=True)
    hs_f, h_f = impl.run("rnn", flip, h0, W, U, b)
    m_r = partial(honest_models, impl, OPS["rnn"].forward, "rnn", x, h0, W, U, b, reverse=True)
    m_f = partial(honest_models, impl, OPS["rnn"].forward, "rnn", flip, h0, W, U, b)
    impl.relation(
        "reverse hs vs flipped forward hs",
        hs_r,
        hs_f[:, ::-1],
        lambda: (stacked(m_r(), 0), stacked(m_f(), 0)[:, :, ::-1]),
    )
    impl.relation(
        "reverse h_T vs forward h_T", h_r, h_f, lambda: (stacked(m_r(), 1), stacked(m_f(), 1))
    )


@given(case=recurrent_cases())
def test_final_state_is_last_output(impl, case):
    # h_T is the state after the last step read: hs[:, -1] (hs[:, 0] in reverse).
    args = _rnn_args(case)
    for reverse, last in ((False, -1), (True, 0)):
        hs, h_T = impl.run("rnn", *args, reverse=reverse)

        def models(reverse=reverse, last=last):
            m = honest_models(impl, OPS["rnn"].forward, "rnn", *args, reverse=reverse)
            return stacked(m, 1), stacked(m, 0)[:, :, last]

        impl.relation(f"h_T vs hs[:, {last}] (reverse={reverse})", h_T, hs[:, last], models)


# -- sequence_lens, bidirectional and stacked layers ----------------------------------------------

SHORT = recurrent_cases(max_steps=16)  # the layer shapes: short sequences keep the file fast
PADDED = recurrent_cases(min_steps=2, max_steps=16)  # T >= 2: some row is shorter than T


@unshrunk()  # onnx.reference ignores sequence_lens: a declared xfail
@given(case=PADDED, direction=st.sampled_from(recurrent.DIRECTIONS))
def test_sequence_lens(impl, case, direction):
    # ONNX sequence_lens (torch: packed sequences): row b reads x[b, :L_b] only (reverse:
    # t = L_b-1 .. 0); hs is zero past L_b and h_T is the state after the last valid step read.
    recurrent.sequence_lens(impl, CELL, case, direction)


@given(case=PADDED, direction=st.sampled_from(recurrent.DIRECTIONS))
def test_sequence_lens_vjp(impl, case, direction):
    # Padded steps are the identity on the state: no gradient reaches x past L_b.
    recurrent.sequence_lens_vjp(impl, CELL, case, direction)


@given(case=SHORT)
def test_bidirectional(impl, case):
    # hs (B, T, 2H): [..., :H] the forward layer, [..., H:] the reverse layer; h_T (2, B, H)
    # (torch bidirectional=True's concatenation; ONNX's Y (T, 2, B, H) mapped by the adapter).
    recurrent.bidirectional(impl, CELL, case)


@given(case=SHORT)
def test_bidirectional_vjp(impl, case):
    recurrent.bidirectional_vjp(impl, CELL, case)


@given(case=SHORT, layers=st.integers(2, 3))
def test_layers(impl, case, layers):
    # Stacked layers (torch num_layers): layer l reads the hidden sequence of layer l-1; hs is the
    # top layer's, h_T (L, B, H) every layer's final state.
    recurrent.stacked_layers(impl, CELL, case, layers)


@given(case=SHORT, layers=st.integers(2, 3))
def test_layers_vjp(impl, case, layers):
    recurrent.stacked_layers_vjp(impl, CELL, case, layers)


# -- output layer, MSE loss, the Jacobian-product bound --------------------------------------------


def _loss_args(case, outputs):
    x, h0, W, U, b = _rnn_args(case)
    V = normal([case.seed, 20], (outputs, case.hidden)) / np.sqrt(case.hidden)
    c = normal([case.seed, 21], (outputs,))
    z = normal([case.seed, 22], (case.batch, case.steps, outputs))
    return x, h0, W, U, b, V, c, z


@given(case=recurrent_cases(), outputs=st.integers(1, 3))
def test_loss_values(impl, case, outputs):
    # L = Σ_t 1/2 ||V h_t + c - z_t||^2
    impl.compare("rnn_loss", *_loss_args(case, outputs))


@given(case=recurrent_cases(), outputs=st.integers(1, 3))
def test_loss_vjp(impl, case, outputs):
    # dL/dV = Σ_t (y_t - z_t) h_t^T, dL/dc = Σ_t (y_t - z_t), and BPTT into W, U, b, x, h0.
    dL = np.asarray(normal([case.seed, 23], ()))
    impl.compare_vjp("rnn_loss", dL, *_loss_args(case, outputs))


@given(case=recurrent_cases(initial=True, scales=(0.5, 1.0)))
def test_gradient_bound(impl, case):
    # ||dh_T/dh_0|| <= Π_t ||diag(tanh'_t) W|| <= (||W||_2 max|tanh'|)^T with tanh' <= 1: the
    # gradient reaching h0 from h_T alone is at most ||W||_2^T ||dh_T|| (vanishing when < 1).
    B, T, H = case.batch, case.steps, case.hidden
    x, h0, W, U, b = impl.inputs(*_rnn_args(case))
    dhs, dh_T = np.zeros((B, T, H)), case.cotangent(B, H, k=1)
    (dh_T,) = impl.inputs(dh_T)
    grads = impl.run_vjp("rnn", dhs, x, h0, W, U, b, dh_T=dh_T)
    bound = np.linalg.norm(W, 2) ** T * np.linalg.norm(dh_T)
    norm = np.linalg.norm(grads[1])

    def models():
        m = honest_models(impl, OPS["rnn"].vjp, "rnn", dhs, x, h0, W, U, b, dh_T=dh_T)
        model_norms = np.array([np.linalg.norm(grads[1]) for grads in m])
        return np.minimum(model_norms, bound), model_norms

    impl.relation("||dh0|| <= ||W||^T ||dh_T||", np.minimum(norm, bound), norm, models)


# -- clipping by global norm -----------------------------------------------------------------------


@given(case=gradients_cases())
def test_clip_values(impl, case):
    impl.compare("clip_grad_norm", *case.grads(), max_norm=case.max_norm())


def _clip_run(impl, grads, max_norm):
    out = impl.run("clip_grad_norm", *grads, max_norm=max_norm)
    models = honest_models(
        impl, OPS["clip_grad_norm"].forward, "clip_grad_norm", *grads, max_norm=max_norm
    )
    flat = np.concatenate([o.ravel() for o in out])
    flat_models = np.stack([np.concatenate([o.ravel() for o in m]) for m in models])
    return flat, flat_models


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return np.divide(v, n, out=np.zeros_like(v), where=n > 0)


@given(case=gradients_cases())
def test_clip_keeps_direction(impl, case):
    # clip(g) / ||clip(g)|| = g / ||g||: the whole gradient vector is scaled, never rotated.
    grads = impl.inputs(*case.grads())
    flat, flat_models = _clip_run(impl, grads, case.max_norm())
    g = np.concatenate([a.ravel() for a in grads])
    impl.relation(
        "direction of clip(g) vs of g", _unit(flat), _unit(g), _unit(flat_models), _unit(g)
    )


@given(case=gradients_cases())
def test_clip_bounds_norm(impl, case):
    # ||clip(g)|| <= max_norm, and = max_norm when g was clipped.
    grads = impl.inputs(*case.grads())
    max_norm = case.max_norm()
    flat, flat_models = _clip_run(impl, grads, max_norm)
    g_norm = np.linalg.norm(np.concatenate([a.ravel() for a in grads]))
    expected = min(g_norm, max_norm)
    norm, model_norms = np.linalg.norm(flat), np.linalg.norm(flat_models, axis=-1)
    impl.relation("||clip(g)|| vs min(||g||, max_norm)", norm, expected, model_norms, expected)


@given(case=gradients_cases())
def test_clip_idempotent(impl, case):
    # clip(clip(g)) = clip(g)
    grads = impl.inputs(*case.grads())
    max_norm = case.max_norm()
    once = impl.run("clip_grad_norm", *grads, max_norm=max_norm)
    twice = impl.run("clip_grad_norm", *once, max_norm=max_norm)
    fn = OPS["clip_grad_norm"].forward
    m_once = honest_models(impl, fn, "clip_grad_norm", *grads, max_norm=max_norm)
    m_twice = [honest_models(impl, fn, "clip_grad_norm", *m, max_norm=max_norm)[0] for m in m_once]

    def flat(outs):
        return np.concatenate([o.ravel() for o in outs])

    impl.relation(
        "clip(clip(g)) vs clip(g)",
        flat(twice),
        flat(once),
        np.stack([flat(m) for m in m_twice]),
        np.stack([flat(m) for m in m_once]),
    )


# -- truncated BPTT --------------------------------------------------------------------------------


@given(case=recurrent_cases(min_steps=2, max_steps=16), outputs=st.integers(1, 3), data=st.data())
def test_tbptt_values(impl, case, outputs, data):
    # Chunks shorter than the sequence: forward state carried, gradient stopped at boundaries.
    chunk = data.draw(st.integers(1, case.steps - 1), label="chunk")
    impl.compare("rnn_tbptt", *_loss_args(case, outputs), chunk=chunk)


@given(case=recurrent_cases(max_steps=16), outputs=st.integers(1, 3), data=st.data())
def test_tbptt_full_chunk_is_bptt(impl, case, outputs, data):
    # One chunk covering the sequence: truncated BPTT is full BPTT (the loss and dW, dU, db, dV,
    # dc of rnn_loss's gradient).
    chunk = data.draw(st.integers(case.steps, case.steps + 3), label="chunk")
    args = impl.inputs(*_loss_args(case, outputs))
    one = np.ones(())
    tb = impl.run("rnn_tbptt", *args, chunk=chunk)
    full = impl.run_vjp("rnn_loss", one, *args)
    (loss,) = impl.run("rnn_loss", *args)
    m_tb = partial(honest_models, impl, OPS["rnn_tbptt"].forward, "rnn_tbptt", *args, chunk=chunk)
    m_full = partial(honest_models, impl, OPS["rnn_loss"].vjp, "rnn_loss", one, *args)
    m_loss = partial(honest_models, impl, OPS["rnn_loss"].forward, "rnn_loss", *args)
    first = 2 if case.initial else 1  # rnn_loss_vjp: dx, [dh0], dW, dU, db, dV, dc, dz
    impl.relation(
        "tbptt L vs rnn_loss", tb[0], loss, lambda: (stacked(m_tb(), 0), stacked(m_loss(), 0))
    )
    for k, name in enumerate(("dW", "dU", "db", "dV", "dc")):
        impl.relation(
            f"tbptt {name} vs full BPTT {name}",
            tb[1 + k],
            full[first + k],
            lambda k=k: (stacked(m_tb(), 1 + k), stacked(m_full(), first + k)),
        )
