"""LSTM: values and BPTT gradients of hs and both final states, reverse direction, zero- and
one-step sequences, and the notes' "uninterrupted gradient flow" through the cell state
(reference/lstm.py states the op signature and the canonical layout)."""

from __future__ import annotations

import numpy as np
from hypothesis import given

from conformance import tolerance
from conformance.ops import OPS
from conformance.strategies import recurrent_cases
from conformance.variants import reference_options

SATURATE = 50.0  # |bias| that saturates a gate: sigma(±50 ± a few) is exactly 1 or 0 (< 1e-21)


def honest_models(impl, fn, op, *args, **kwargs) -> list[tuple[np.ndarray, ...]]:
    """Every output of fn (op's forward or vjp) under each honest-kernel model, as float64
    (impl.baseline keeps the first output only)."""
    options = reference_options(OPS[op].variants, getattr(impl.adapter, "variants", {}) or {})
    models = tolerance.models(fn, args, {**kwargs, **options}, impl.dtype)
    return [tuple(np.asarray(y).astype(np.float64) for y in m) for m in models]


def stacked(models, index) -> np.ndarray:
    return np.stack([m[index] for m in models])


def _args(case):
    W, b = case.gate_weights(4)
    return case.x(), case.state(0), case.state(1), W, b


def _cotangents(case):
    B, T, H = case.batch, case.steps, case.hidden
    return case.cotangent(B, T, H), case.cotangent(B, H, k=1), case.cotangent(B, H, k=2)


# -- values and gradients ----------------------------------------------------------------------


@given(case=recurrent_cases())
def test_values(impl, case):
    impl.compare("lstm", *_args(case))


@given(case=recurrent_cases())
def test_vjp(impl, case):
    dhs, dh_T, dc_T = _cotangents(case)
    impl.compare_vjp("lstm", dhs, *_args(case), dh_T=dh_T, dc_T=dc_T)


@given(case=recurrent_cases(max_steps=1, min_steps=1))
def test_length_one(impl, case):
    # One step: c_1 = f * c0 + i * g, h_1 = o * tanh(c_1), from gates on [h0; x_0].
    impl.compare("lstm", *_args(case))


@given(case=recurrent_cases(max_steps=1, min_steps=1))
def test_length_one_vjp(impl, case):
    dhs, dh_T, dc_T = _cotangents(case)
    impl.compare_vjp("lstm", dhs, *_args(case), dh_T=dh_T, dc_T=dc_T)


@given(case=recurrent_cases(max_steps=0, min_steps=0))
def test_zero_length(impl, case):
    # T = 0: hs (B, 0, H); (h_T, c_T) are the initial states (zeros where None).
    impl.compare("lstm", *_args(case))


@given(case=recurrent_cases())
def test_reverse_values(impl, case):
    impl.compare("lstm", *_args(case), reverse=True)


@given(case=recurrent_cases())
def test_reverse_vjp(impl, case):
    dhs, dh_T, dc_T = _cotangents(case)
    impl.compare_vjp("lstm", dhs, *_args(case), reverse=True, dh_T=dh_T, dc_T=dc_T)


@given(case=recurrent_cases())
def test_reverse_direction(impl, case):
    # lstm(x, reverse=True) = flip(lstm(flip(x))) on hs, and the same final states.
    x, h0, c0, W, b = impl.inputs(*_args(case))
    flip = x[:, ::-1].copy()  # fresh strides: torch.from_numpy refuses negative ones
    rev = impl.run("lstm", x, h0, c0, W, b, reverse=True)
    fwd = impl.run("lstm", flip, h0, c0, W, b)
    m_r = honest_models(impl, OPS["lstm"].forward, "lstm", x, h0, c0, W, b, reverse=True)
    m_f = honest_models(impl, OPS["lstm"].forward, "lstm", flip, h0, c0, W, b)
    impl.relation(
        "reverse hs vs flipped forward hs",
        rev[0],
        fwd[0][:, ::-1],
        stacked(m_r, 0),
        stacked(m_f, 0)[:, :, ::-1],
    )
    for k, name in ((1, "h_T"), (2, "c_T")):
        impl.relation(
            f"reverse {name} vs forward {name}", rev[k], fwd[k], stacked(m_r, k), stacked(m_f, k)
        )


@given(case=recurrent_cases())
def test_final_state_is_last_output(impl, case):
    # h_T is the state after the last step read: hs[:, -1] (hs[:, 0] in reverse).
    args = _args(case)
    for reverse, last in ((False, -1), (True, 0)):
        hs, h_T, _ = impl.run("lstm", *args, reverse=reverse)
        models = honest_models(impl, OPS["lstm"].forward, "lstm", *args, reverse=reverse)
        impl.relation(
            f"h_T vs hs[:, {last}] (reverse={reverse})",
            h_T,
            hs[:, last],
            stacked(models, 1),
            stacked(models, 0)[:, :, last],
        )


# -- the cell state: "uninterrupted gradient flow" ------------------------------------------------


def _saturated(case, forget: float, inputs: float):
    """The case's inputs with gate biases b_f = forget and b_i = inputs (blocks i, f, o, g)."""
    x, h0, c0, W, b = _args(case)
    H = case.hidden
    b = b.copy()
    b[0:H], b[H : 2 * H] = inputs, forget
    return x, h0, c0, W, b


@given(case=recurrent_cases(initial=True))
def test_uninterrupted_flow(impl, case):
    # f = 1 and i = 0 (saturated gates): c_t = 1 * c_{t-1} + 0 * g = c_{t-1}, so c_T = c0.
    x, h0, c0, W, b = impl.inputs(*_saturated(case, SATURATE, -SATURATE))
    _, _, c_T = impl.run("lstm", x, h0, c0, W, b)
    models = honest_models(impl, OPS["lstm"].forward, "lstm", x, h0, c0, W, b)
    impl.relation("c_T vs c0 with f = 1, i = 0", c_T, c0, stacked(models, 2), c0)


@given(case=recurrent_cases(initial=True))
def test_uninterrupted_gradient_flow(impl, case):
    # f = 1 and i = 0: dL/dc_{t-1} = dL/dc_t * f_t = dL/dc_t, so the cotangent of c_T reaches
    # c0 unchanged (no other cotangent: dhs = 0, dh_T = 0).
    B, T, H = case.batch, case.steps, case.hidden
    x, h0, c0, W, b = impl.inputs(*_saturated(case, SATURATE, -SATURATE))
    (dc_T,) = impl.inputs(case.cotangent(B, H, k=2))
    dhs, dh_T = np.zeros((B, T, H)), np.zeros((B, H))
    grads = impl.run_vjp("lstm", dhs, x, h0, c0, W, b, dh_T=dh_T, dc_T=dc_T)
    models = honest_models(
        impl, OPS["lstm"].vjp, "lstm", dhs, x, h0, c0, W, b, dh_T=dh_T, dc_T=dc_T
    )
    impl.relation("dc0 vs dc_T with f = 1, i = 0", grads[2], dc_T, stacked(models, 2), dc_T)


@given(case=recurrent_cases(initial=True))
def test_cell_jacobian_is_forget_gate(impl, case):
    # With zero recurrent weights, dc_{t+1}/dc_t = diag(f_{t+1}) exactly (spec/lstm.py), so the
    # cotangent of c_T alone reaches c0 as dc_T * Π_t f_t, with f_t = sigma(W_fx x_t + b_f).
    B, T, H = case.batch, case.steps, case.hidden
    x, h0, c0, W, b = _args(case)
    W = W.copy()
    W[:, :H] = 0  # W_h = 0: the gates no longer see h
    x, h0, c0, W, b = impl.inputs(x, h0, c0, W, b)
    (dc_T,) = impl.inputs(case.cotangent(B, H, k=2))
    dhs, dh_T = np.zeros((B, T, H)), np.zeros((B, H))
    grads = impl.run_vjp("lstm", dhs, x, h0, c0, W, b, dh_T=dh_T, dc_T=dc_T)
    a_f = x @ W[H : 2 * H, H:].T + b[H : 2 * H]  # (B, T, H) forget pre-activations
    expected = dc_T * np.prod(1 / (1 + np.exp(-a_f)), axis=1)
    models = honest_models(
        impl, OPS["lstm"].vjp, "lstm", dhs, x, h0, c0, W, b, dh_T=dh_T, dc_T=dc_T
    )
    impl.relation("dc0 vs dc_T * prod_t f_t", grads[2], expected, stacked(models, 2), expected)
