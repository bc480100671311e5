"""reference.rnn / lstm / gru options and layer shapes: sequence_lens (`lengths`), LSTM
peepholes, bidirectional and stacked layers. Forward semantics against independent
constructions (each sequence run to its own length; P = 0; the layers one by one), hand-written
vjps against finite differences, and the ValueErrors of bad input."""

from __future__ import annotations

import numpy as np
import pytest

from reference import gru, lstm, rnn
from tests.gradcheck import check_gradient_entries, check_vjp

B, T, D, H = 3, 5, 2, 3


def _rng(seed):
    return np.random.default_rng(seed)


# Per stem: the layer, its vjp, the final-state cotangent names, and its weights for (D, H).
def _weights(stem, d, h, rng):
    if stem == "rnn":
        return [
            rng.standard_normal((h, h)) / np.sqrt(h),
            rng.standard_normal((h, d)),
            rng.standard_normal(h) * 0.5,
        ]
    gates = 4 if stem == "lstm" else 3
    W = rng.standard_normal((gates * h, h + d)) / np.sqrt(h + d)
    return [W, rng.standard_normal(gates * h) * 0.5]


STEMS = {
    "rnn": (rnn.rnn, rnn.rnn_vjp, ("dh_T",)),
    "lstm": (lstm.lstm, lstm.lstm_vjp, ("dh_T", "dc_T")),
    "gru": (gru.gru, gru.gru_vjp, ("dh_T",)),
}


def _states(stem, lead, rng, initial=True):
    n = 2 if stem == "lstm" else 1
    return [rng.standard_normal((*lead, B, H)) if initial else None for _ in range(n)]


def _packed(fn, vjp, finals, n_out_states, hs_width, **options):
    """fn's outputs flattened into one vector; the vjp splits the cotangent into dhs and the
    final-state keywords. Arguments that are None are fixed (not differentiated)."""

    def f(*args):
        return np.concatenate([o.ravel() for o in fn(*args, **options)])

    def f_vjp(d, *args):
        hs_size = args[0].shape[0] * args[0].shape[1] * hs_width
        dhs = d[:hs_size].reshape(args[0].shape[0], args[0].shape[1], hs_width)
        rest = d[hs_size:]
        k = rest.size // n_out_states
        cot = {name: rest[i * k : (i + 1) * k] for i, name in enumerate(finals)}
        outs = fn(*args, **options)
        cot = {name: c.reshape(o.shape) for (name, c), o in zip(cot.items(), outs[1:], strict=True)}
        return vjp(dhs, *args, **cot, **options)

    return f, f_vjp


# -- sequence_lens -----------------------------------------------------------------------------


@pytest.mark.parametrize("stem", STEMS)
@pytest.mark.parametrize("reverse", [False, True])
def test_lengths_equal_each_sequence_run_to_its_length(stem, reverse):
    # ONNX's sequence_lens: row b is x[b, :L_b] run alone; zeros past L_b; the final state is
    # the state after the last valid step read (the initial state for L_b = 0).
    fn, _, _ = STEMS[stem]
    rng = _rng(1)
    x = rng.standard_normal((B, T, D))
    states = _states(stem, (), rng)
    ws = _weights(stem, D, H, rng)
    lengths = np.array([T, 2, 0])
    out = fn(x, *states, *ws, reverse=reverse, lengths=lengths)
    for row, n in enumerate(lengths):
        alone = fn(x[row : row + 1, :n], *(s[row : row + 1] for s in states), *ws, reverse=reverse)
        np.testing.assert_allclose(out[0][row, :n], alone[0][0], rtol=1e-12, atol=1e-14)
        assert not out[0][row, n:].any()
        for final, want in zip(out[1:], alone[1:], strict=True):
            np.testing.assert_allclose(final[row], want[0], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("stem", STEMS)
@pytest.mark.parametrize("reverse", [False, True])
def test_lengths_full_is_no_lengths(stem, reverse):
    fn, _, _ = STEMS[stem]
    rng = _rng(2)
    x = rng.standard_normal((B, T, D))
    args = [x, *_states(stem, (), rng), *_weights(stem, D, H, rng)]
    full = fn(*args, reverse=reverse, lengths=np.full(B, T))
    for a, e in zip(full, fn(*args, reverse=reverse), strict=True):
        np.testing.assert_array_equal(a, e)


@pytest.mark.parametrize("stem", STEMS)
@pytest.mark.parametrize("reverse", [False, True])
def test_lengths_vjp(stem, reverse):
    fn, vjp, finals = STEMS[stem]
    rng = _rng(3)
    x = rng.standard_normal((B, T, D))
    args = [x, *_states(stem, (), rng), *_weights(stem, D, H, rng)]
    f, f_vjp = _packed(
        fn, vjp, finals, len(finals), H, reverse=reverse, lengths=np.array([4, 1, 0])
    )
    check_vjp(f, f_vjp, args)
    check_gradient_entries(f, f_vjp, args)
    # padded inputs get no gradient
    dx = f_vjp(np.ones(f(*args).size), *args)[0]
    assert not dx[0, 4:].any() and not dx[1, 1:].any() and not dx[2].any()


@pytest.mark.parametrize("stem", STEMS)
@pytest.mark.parametrize(
    "lengths",
    [np.array([1, 2]), np.array([1, 2, T + 1]), np.array([1, -1, 2]), np.array([1.0, 2.0, 3.0])],
)
def test_bad_lengths_raise(stem, lengths):
    fn, _, _ = STEMS[stem]
    rng = _rng(4)
    x = rng.standard_normal((B, T, D))
    with pytest.raises(ValueError, match=rf"{stem}: expected lengths \(B,\) = \(3,\)") as info:
        fn(x, *_states(stem, (), rng), *_weights(stem, D, H, rng), lengths=lengths)
    assert f"lengths {lengths.shape}" in str(info.value)


# -- LSTM peepholes ------------------------------------------------------------------------------


def _lstm_args(seed=5, initial=True):
    rng = _rng(seed)
    x = rng.standard_normal((B, T, D))
    h0, c0 = _states("lstm", (), rng, initial)
    W, b = _weights("lstm", D, H, rng)
    return x, h0, c0, W, b, rng.standard_normal(3 * H)


def test_zero_peepholes_are_the_canonical_lstm():
    x, h0, c0, W, b, _ = _lstm_args()
    for a, e in zip(
        lstm.lstm(x, h0, c0, W, b, peepholes=np.zeros(3 * H)),
        lstm.lstm(x, h0, c0, W, b),
        strict=True,
    ):
        np.testing.assert_array_equal(a, e)


def test_peephole_step_formula():
    # One step, written out: i = σ(a_i + p_i c0), f = σ(a_f + p_f c0), o = σ(a_o + p_o c_1).
    x, h0, c0, W, b, P = _lstm_args()
    _, h1, c1 = lstm.lstm(x[:, :1], h0, c0, W, b, peepholes=P)
    a = np.concatenate([h0, x[:, 0]], axis=1) @ W.T + b
    s = lstm.sigmoid
    i = s(a[:, :H] + P[:H] * c0)
    f = s(a[:, H : 2 * H] + P[H : 2 * H] * c0)
    c = f * c0 + i * np.tanh(a[:, 3 * H :])
    o = s(a[:, 2 * H : 3 * H] + P[2 * H :] * c)
    np.testing.assert_allclose(c1, c, rtol=1e-13)
    np.testing.assert_allclose(h1, o * np.tanh(c), rtol=1e-13)


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("lengths", [None, np.array([5, 3, 1])])
def test_peephole_vjp(reverse, lengths):
    x, h0, c0, W, b, P = _lstm_args()
    f, f_vjp = _packed(
        lstm.lstm,
        lstm.lstm_vjp,
        ("dh_T", "dc_T"),
        2,
        H,
        reverse=reverse,
        lengths=lengths,
        peepholes=P,
    )
    args = [x, h0, c0, W, b]
    check_vjp(f, f_vjp, args)
    check_gradient_entries(f, f_vjp, args)


def test_bad_peepholes_raise():
    x, h0, c0, W, b, P = _lstm_args()
    with pytest.raises(ValueError, match=r"peepholes \(8,\)"):
        lstm.lstm(x, h0, c0, W, b, peepholes=P[:-1])
    P[0] = np.nan
    with pytest.raises(ValueError, match=r"non-finite values in peepholes \(9,\)"):
        lstm.lstm(x, h0, c0, W, b, peepholes=P)


# -- bidirectional -------------------------------------------------------------------------------

BIDIRECTIONAL = {
    "rnn": (rnn.rnn_bidirectional, rnn.rnn_bidirectional_vjp),
    "lstm": (lstm.lstm_bidirectional, lstm.lstm_bidirectional_vjp),
    "gru": (gru.gru_bidirectional, gru.gru_bidirectional_vjp),
}


def _bidirectional_args(stem, seed, initial=True):
    rng = _rng(seed)
    x = rng.standard_normal((B, T, D))
    per = [_weights(stem, D, H, rng) for _ in range(2)]
    ws = [np.stack(pair) for pair in zip(*per, strict=True)]
    return x, _states(stem, (2,), rng, initial), ws, per


@pytest.mark.parametrize("stem", STEMS)
@pytest.mark.parametrize("initial", [True, False])
def test_bidirectional_halves(stem, initial):
    fn, _, _ = STEMS[stem]
    x, states, ws, per = _bidirectional_args(stem, 6, initial)
    out = BIDIRECTIONAL[stem][0](x, *states, *ws)
    fwd = fn(x, *(None if s is None else s[0] for s in states), *per[0])
    rev = fn(x, *(None if s is None else s[1] for s in states), *per[1], reverse=True)
    np.testing.assert_array_equal(out[0][..., :H], fwd[0])
    np.testing.assert_array_equal(out[0][..., H:], rev[0])
    for k in range(1, len(out)):
        np.testing.assert_array_equal(out[k], np.stack([fwd[k], rev[k]]))


@pytest.mark.parametrize("stem", STEMS)
@pytest.mark.parametrize("lengths", [None, np.array([5, 2, 1])])
def test_bidirectional_vjp(stem, lengths):
    _, _, finals = STEMS[stem]
    fn, vjp = BIDIRECTIONAL[stem]
    x, states, ws, _ = _bidirectional_args(stem, 7)
    f, f_vjp = _packed(fn, vjp, finals, len(finals), 2 * H, lengths=lengths)
    args = [x, *states, *ws]
    check_vjp(f, f_vjp, args)
    check_gradient_entries(f, f_vjp, args)


def test_bidirectional_peepholes_vjp():
    x, states, ws, _ = _bidirectional_args("lstm", 8)
    P = _rng(9).standard_normal((2, 3 * H))
    f, f_vjp = _packed(
        lstm.lstm_bidirectional,
        lstm.lstm_bidirectional_vjp,
        ("dh_T", "dc_T"),
        2,
        2 * H,
        peepholes=P,
    )
    check_vjp(f, f_vjp, [x, *states, *ws])


@pytest.mark.parametrize("stem", STEMS)
def test_bidirectional_needs_two_directions(stem):
    x, states, ws, _ = _bidirectional_args(stem, 10)
    with pytest.raises(ValueError, match="leading direction axis of 2") as info:
        BIDIRECTIONAL[stem][0](x, *states, *(w[:1] for w in ws))
    assert f"{(1, *ws[0].shape[1:])}" in str(info.value)


# -- stacked layers ------------------------------------------------------------------------------

LAYERS = {
    "rnn": (rnn.rnn_layers, rnn.rnn_layers_vjp),
    "lstm": (lstm.lstm_layers, lstm.lstm_layers_vjp),
    "gru": (gru.gru_layers, gru.gru_layers_vjp),
}


def _layers_args(stem, seed, n_layers=2, initial=True):
    rng = _rng(seed)
    x = rng.standard_normal((B, T, D))
    per = [_weights(stem, D if k == 0 else H, H, rng) for k in range(n_layers)]
    return x, _states(stem, (n_layers,), rng, initial), per


@pytest.mark.parametrize("stem", STEMS)
@pytest.mark.parametrize("initial", [True, False])
def test_layers_are_the_layer_applied_in_turn(stem, initial):
    fn, _, _ = STEMS[stem]
    x, states, per = _layers_args(stem, 11, 3, initial)
    out = LAYERS[stem][0](x, *states, *(w for ws in per for w in ws))
    inp, finals = x, []
    for k, ws in enumerate(per):
        o = fn(inp, *(None if s is None else s[k] for s in states), *ws)
        inp, finals = o[0], [*finals, o[1:]]
    np.testing.assert_array_equal(out[0], inp)
    for k in range(1, len(out)):
        np.testing.assert_array_equal(out[k], np.stack([f[k - 1] for f in finals]))


@pytest.mark.parametrize("stem", STEMS)
@pytest.mark.parametrize("initial", [True, False])
def test_layers_vjp(stem, initial):
    _, _, finals = STEMS[stem]
    fn, vjp = LAYERS[stem]
    x, states, per = _layers_args(stem, 12, 2, initial)
    f, f_vjp = _packed(fn, vjp, finals, len(finals), H, lengths=np.array([5, 3, 1]))
    args = [x, *states, *(w for ws in per for w in ws)]
    if not initial:  # None states are fixed: differentiate the others only
        n = len(states)
        f0, v0 = f, f_vjp
        f = lambda x, *w: f0(x, *([None] * n), *w)  # noqa: E731
        f_vjp = lambda d, x, *w: v0(d, x, *([None] * n), *w)  # noqa: E731
        args = [x, *(w for ws in per for w in ws)]
    check_vjp(f, f_vjp, args)
    check_gradient_entries(f, f_vjp, args)


@pytest.mark.parametrize("stem", STEMS)
def test_layers_bad_weights_raise(stem):
    x, states, per = _layers_args(stem, 13)
    flat = [w for ws in per for w in ws]
    with pytest.raises(ValueError, match="a multiple of") as info:
        LAYERS[stem][0](x, *states, *flat[:-1])
    assert str(flat[0].shape) in str(info.value)
    with pytest.raises(ValueError, match="leading layer axis of 2"):
        LAYERS[stem][0](x, *(s[:1] for s in states), *flat)
    # layer 1 must read H inputs: a layer-1 weight sized for D is refused by that layer
    bad = _weights(stem, H + 1, H, _rng(0))
    with pytest.raises(ValueError, match=f"{stem}: expected"):
        LAYERS[stem][0](x, *states, *per[0], *bad)
