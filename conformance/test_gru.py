"""GRU: values and BPTT gradients, reverse direction, zero- and one-step sequences, and the
update gate's copy path. The reset placement (before or after the recurrent matmul) is the
declared variant gru.reset: an adapter is compared with the placement it declares, and a
mismatch is diagnosed as the other one (reference/gru.py states the op and the layout)."""

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

SATURATE = 50.0  # a bias that saturates a gate: sigma(50 ± a few) is exactly 1


def _args(case):
    W, b = case.gate_weights(3)
    return case.x(), case.state(0), W, b


CELL = recurrent.Cell("gru", 3, ("dh_T",), _args)


def _cotangents(case):
    B, T, H = case.batch, case.steps, case.hidden
    return case.cotangent(B, T, H), case.cotangent(B, H, k=1)


# -- values and gradients ----------------------------------------------------------------------


@given(case=recurrent_cases())
def test_values(impl, case):
    impl.compare("gru", *_args(case))


@given(case=recurrent_cases())
def test_vjp(impl, case):
    dhs, dh_T = _cotangents(case)
    impl.compare_vjp("gru", dhs, *_args(case), dh_T=dh_T)


@given(case=recurrent_cases(max_steps=1, min_steps=1))
def test_length_one(impl, case):
    # One step: h_1 = (1 - z) * n + z * h0, gates from [h0; x_0].
    impl.compare("gru", *_args(case))


@given(case=recurrent_cases(max_steps=1, min_steps=1))
def test_length_one_vjp(impl, case):
    dhs, dh_T = _cotangents(case)
    impl.compare_vjp("gru", dhs, *_args(case), dh_T=dh_T)


@unshrunk()  # onnx.reference and onnxruntime: declared xfails
@given(case=recurrent_cases(max_steps=0, min_steps=0))
def test_zero_length(impl, case):
    # T = 0: hs (B, 0, H); h_T is the initial state (zeros when h0 is None).
    impl.compare("gru", *_args(case))


@given(case=recurrent_cases())
def test_reverse_values(impl, case):
    impl.compare("gru", *_args(case), reverse=True)


@given(case=recurrent_cases())
def test_reverse_vjp(impl, case):
    dhs, dh_T = _cotangents(case)
    impl.compare_vjp("gru", dhs, *_args(case), reverse=True, dh_T=dh_T)


@given(case=recurrent_cases())
def test_reverse_direction(impl, case):
    # gru(x, reverse=True) = flip(gru(flip(x))) on hs, and the same final state.
    x, h0, W, b = impl.inputs(*_args(case))
    flip = x[:, ::-1].copy()  # fresh strides: torch.from_numpy refuses negative ones
    rev = impl.run("gru", x, h0, W, b, reverse=True)
    fwd = impl.run("gru", flip, h0, W, b)
    m_r = partial(honest_models, impl, OPS["gru"].forward, "gru", x, h0, W, b, reverse=True)
    m_f = partial(honest_models, impl, OPS["gru"].forward, "gru", flip, h0, W, b)
    impl.relation(
        "reverse hs vs flipped forward hs",
        rev[0],
        fwd[0][:, ::-1],
        lambda: (stacked(m_r(), 0), stacked(m_f(), 0)[:, :, ::-1]),
    )
    impl.relation(
        "reverse h_T vs forward h_T", rev[1], fwd[1], lambda: (stacked(m_r(), 1), stacked(m_f(), 1))
    )


@given(case=recurrent_cases())
def test_final_state_is_last_output(impl, case):
    # h_T is the state after the last step read: hs[:, -1] (hs[:, 0] in reverse).
    args = _args(case)
    for reverse, last in ((False, -1), (True, 0)):
        hs, h_T = impl.run("gru", *args, reverse=reverse)

        def models(reverse=reverse, last=last):
            m = honest_models(impl, OPS["gru"].forward, "gru", *args, reverse=reverse)
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


# -- the update gate's copy path -----------------------------------------------------------------


def _copying(case):
    """The case's inputs with the update-gate bias b_z saturated: z = 1 (blocks r, z, n)."""
    x, h0, W, b = _args(case)
    H = case.hidden
    b = b.copy()
    b[H : 2 * H] = SATURATE
    return x, h0, W, b


@given(case=recurrent_cases(initial=True))
def test_update_gate_copies_state(impl, case):
    # z = 1: h_t = (1 - z) * n + z * h_{t-1} = h_{t-1}: every step copies the state before it
    # (the GRU's counterpart of the LSTM's f = 1, i = 0), whatever the reset placement. Checked
    # step by step: a kernel may round once per step (torch computes (h - n) * z + n, which with
    # z = 1 is h up to one rounding), but no step may change the state beyond that.
    x, h0, W, b = impl.inputs(*_copying(case))
    hs, h_T = impl.run("gru", x, h0, W, b)
    before = np.concatenate([h0[:, None], hs[:, :-1]], axis=1)  # h_{t-1} for every t
    models = partial(honest_models, impl, OPS["gru"].forward, "gru", x, h0, W, b)

    def steps():
        m_hs = stacked(models(), 0)
        first = np.broadcast_to(h0[None, :, None], (len(m_hs), h0.shape[0], 1, h0.shape[1]))
        return m_hs, np.concatenate([first, m_hs[:, :, :-1]], axis=2)

    def last():
        m = models()
        return stacked(m, 1), stacked(m, 0)[:, :, -1]

    impl.relation("h_t vs h_{t-1} with z = 1", hs, before, steps)
    impl.relation("h_T vs hs[:, -1]", h_T, hs[:, -1], last)


@given(case=recurrent_cases(initial=True))
def test_update_gate_gradient_flow(impl, case):
    # z = 1: dh_{t-1} = dh_t * z = dh_t, the other paths carry (1 - z) = 0 or z (1 - z) = 0:
    # the cotangent of h_T reaches h0 unchanged (dhs = 0).
    B, T, H = case.batch, case.steps, case.hidden
    x, h0, W, b = impl.inputs(*_copying(case))
    (dh_T,) = impl.inputs(case.cotangent(B, H, k=1))
    dhs = np.zeros((B, T, H))
    grads = impl.run_vjp("gru", dhs, x, h0, W, b, dh_T=dh_T)
    models = partial(honest_models, impl, OPS["gru"].vjp, "gru", dhs, x, h0, W, b, dh_T=dh_T)
    impl.relation("dh0 vs dh_T with z = 1", grads[1], dh_T, lambda: (stacked(models(), 1), dh_T))
