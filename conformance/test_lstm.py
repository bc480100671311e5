"""LSTM: values and BPTT gradients of hs and both final states, reverse direction, zero- and
one-step sequences, and the notes' "uninterrupted gradient flow" through the cell state
(reference/lstm.py states the op signature and the canonical layout)."""

from __future__ import annotations

from functools import partial

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from conformance import recurrent
from conformance.ops import OPS
from conformance.recurrent import honest_models, stacked
from conformance.strategies import (
    recurrent_cases,
    unshrunk,
)

SATURATE = 50.0  # |bias| that saturates a gate: sigma(±50 ± a few) is exactly 1 or 0 (< 1e-21)


def _args(case):
    W, b = case.gate_weights(4)
    return case.x(), case.state(0), case.state(1), W, b


CELL = recurrent.Cell("lstm", 4, ("dh_T", "dc_T"), _args)


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


@unshrunk()  # onnx.reference and onnxruntime: declared xfails
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
    m_r = partial(honest_models, impl, OPS["lstm"].forward, "lstm", x, h0, c0, W, b, reverse=True)
    m_f = partial(honest_models, impl, OPS["lstm"].forward, "lstm", flip, h0, c0, W, b)
    impl.relation(
        "reverse hs vs flipped forward hs",
        rev[0],
        fwd[0][:, ::-1],
        lambda: (stacked(m_r(), 0), stacked(m_f(), 0)[:, :, ::-1]),
    )
    for k, name in ((1, "h_T"), (2, "c_T")):
        impl.relation(
            f"reverse {name} vs forward {name}",
            rev[k],
            fwd[k],
            lambda k=k: (stacked(m_r(), k), stacked(m_f(), k)),
        )


@given(case=recurrent_cases())
def test_final_state_is_last_output(impl, case):
    # h_T is the state after the last step read: hs[:, -1] (hs[:, 0] in reverse).
    args = _args(case)
    for reverse, last in ((False, -1), (True, 0)):
        hs, h_T, _ = impl.run("lstm", *args, reverse=reverse)

        def models(reverse=reverse, last=last):
            m = honest_models(impl, OPS["lstm"].forward, "lstm", *args, reverse=reverse)
            return stacked(m, 1), stacked(m, 0)[:, :, last]

        impl.relation(f"h_T vs hs[:, {last}] (reverse={reverse})", h_T, hs[:, last], models)


# -- sequence_lens, bidirectional and stacked layers ----------------------------------------------

SHORT = recurrent_cases(max_steps=16)  # the layer shapes: short sequences keep the file fast
PADDED = recurrent_cases(min_steps=2, max_steps=16)  # T >= 2: some row is shorter than T


@unshrunk()  # onnx.reference ignores sequence_lens: a declared xfail
@given(case=PADDED, direction=st.sampled_from(recurrent.DIRECTIONS))
def test_sequence_lens(impl, case, direction):
    # ONNX sequence_lens (torch: packed sequences): row b reads x[b, :L_b] only (reverse:
    # t = L_b-1 .. 0); hs is zero past L_b and the final states are those after the last valid
    # step read.
    recurrent.sequence_lens(impl, CELL, case, direction)


@given(case=PADDED, direction=st.sampled_from(recurrent.DIRECTIONS))
def test_sequence_lens_vjp(impl, case, direction):
    # Padded steps are the identity on the states: no gradient reaches x past L_b.
    recurrent.sequence_lens_vjp(impl, CELL, case, direction)


@given(case=SHORT)
def test_bidirectional(impl, case):
    # hs (B, T, 2H): [..., :H] the forward layer, [..., H:] the reverse layer; final states
    # (2, B, H) (torch bidirectional=True's concatenation; ONNX's Y (T, 2, B, H) mapped by the
    # adapter).
    recurrent.bidirectional(impl, CELL, case)


@given(case=SHORT)
def test_bidirectional_vjp(impl, case):
    recurrent.bidirectional_vjp(impl, CELL, case)


@given(case=SHORT, layers=st.integers(2, 3))
def test_layers(impl, case, layers):
    # Stacked layers (torch num_layers): layer l reads the hidden sequence of layer l-1; hs is
    # the top layer's, the final states (L, B, H) every layer's.
    recurrent.stacked_layers(impl, CELL, case, layers)


@given(case=SHORT, layers=st.integers(2, 3))
def test_layers_vjp(impl, case, layers):
    recurrent.stacked_layers_vjp(impl, CELL, case, layers)


# -- peepholes (ONNX LSTM's P input; Gers & Schmidhuber 2000) -------------------------------------


def _peepholes(case, count=None):
    """(p_i, p_f, p_o) (3H,), or (count, 3H) for a bidirectional layer."""
    rng = np.random.default_rng([case.seed, 40])
    shape = (3 * case.hidden,) if count is None else (count, 3 * case.hidden)
    return rng.standard_normal(shape) * 0.5


@given(case=SHORT, direction=st.sampled_from(recurrent.DIRECTIONS))
def test_peepholes(impl, case, direction):
    # i = sigma(W_i [h; x] + p_i * c_{t-1} + b_i), f likewise with p_f, o = sigma(... + p_o * c_t):
    # the peephole LSTM, an option of the reference (peepholes=None: the notes' LSTM). ONNX
    # orders P as [Pi, Po, Pf] (mapped by the adapter); torch has no peepholes (not covered).
    if direction == "bidirectional":
        args = recurrent.bidirectional_args(CELL, case)
        impl.compare("lstm_bidirectional", *args, peepholes=_peepholes(case, 2))
    else:
        reverse = direction == "reverse"
        impl.compare("lstm", *_args(case), reverse=reverse, peepholes=_peepholes(case))


@given(case=SHORT)
def test_zero_peepholes(impl, case):
    # P = 0 is the canonical LSTM (spec/lstm.py proves it): the same layer with zero peepholes
    # and without any gives the same outputs.
    x, h0, c0, W, b = _args(case)
    x, W, b = impl.inputs(x, W, b)
    h0, c0 = (None if s is None else impl.inputs(s)[0] for s in (h0, c0))
    zero = np.zeros(3 * case.hidden)
    with_p = impl.run("lstm", x, h0, c0, W, b, peepholes=zero)
    without = impl.run("lstm", x, h0, c0, W, b)
    m_p = partial(honest_models, impl, OPS["lstm"].forward, "lstm", x, h0, c0, W, b, peepholes=zero)
    m_0 = partial(honest_models, impl, OPS["lstm"].forward, "lstm", x, h0, c0, W, b)
    for k, name in enumerate(("hs", "h_T", "c_T")):
        impl.relation(
            f"{name} with P = 0 vs without peepholes",
            with_p[k],
            without[k],
            lambda k=k: (stacked(m_p(), k), stacked(m_0(), k)),
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
    models = partial(honest_models, impl, OPS["lstm"].forward, "lstm", x, h0, c0, W, b)
    impl.relation("c_T vs c0 with f = 1, i = 0", c_T, c0, lambda: (stacked(models(), 2), c0))


@given(case=recurrent_cases(initial=True))
def test_uninterrupted_gradient_flow(impl, case):
    # f = 1 and i = 0: dL/dc_{t-1} = dL/dc_t * f_t = dL/dc_t, so the cotangent of c_T reaches
    # c0 unchanged (no other cotangent: dhs = 0, dh_T = 0).
    B, T, H = case.batch, case.steps, case.hidden
    x, h0, c0, W, b = impl.inputs(*_saturated(case, SATURATE, -SATURATE))
    (dc_T,) = impl.inputs(case.cotangent(B, H, k=2))
    dhs, dh_T = np.zeros((B, T, H)), np.zeros((B, H))
    grads = impl.run_vjp("lstm", dhs, x, h0, c0, W, b, dh_T=dh_T, dc_T=dc_T)
    models = partial(
        honest_models, impl, OPS["lstm"].vjp, "lstm", dhs, x, h0, c0, W, b, dh_T=dh_T, dc_T=dc_T
    )
    impl.relation(
        "dc0 vs dc_T with f = 1, i = 0", grads[2], dc_T, lambda: (stacked(models(), 2), dc_T)
    )


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
    models = partial(
        honest_models, impl, OPS["lstm"].vjp, "lstm", dhs, x, h0, c0, W, b, dh_T=dh_T, dc_T=dc_T
    )
    impl.relation(
        "dc0 vs dc_T * prod_t f_t", grads[2], expected, lambda: (stacked(models(), 2), expected)
    )
