"""reference.gru: BPTT against finite differences for both reset placements, the update gate's
copy path, zero-length sequences and bad input."""

import numpy as np
import pytest

from reference import gru
from tests.gradcheck import check_gradient_entries, check_vjp


def _inputs(B=2, T=4, D=3, H=3, seed=0, initial=True):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((B, T, D))
    h0 = rng.standard_normal((B, H)) if initial else None
    W = rng.standard_normal((3 * H, H + D)) / np.sqrt(H + D)
    b = rng.standard_normal(3 * H) * 0.5
    return x, h0, W, b


@pytest.mark.parametrize("reset", ["before", "after"])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("initial", [True, False])
def test_vjp(reset, reverse, initial):
    B, T, H = 2, 4, 3
    x, h0, W, b = _inputs(initial=initial)
    n = B * T * H

    def f(*args):
        full = (args[0], h0, *args[1:]) if not initial else args
        hs, h_T = gru.gru(*full, reverse=reverse, reset=reset)
        return np.concatenate([hs.ravel(), h_T.ravel()])

    def f_vjp(d, *args):
        full = (args[0], h0, *args[1:]) if not initial else args
        dhs, dh_T = d[:n].reshape(B, T, H), d[n:].reshape(B, H)
        return gru.gru_vjp(dhs, *full, reverse=reverse, reset=reset, dh_T=dh_T)

    args = [x, h0, W, b] if initial else [x, W, b]
    check_vjp(f, f_vjp, args)
    check_gradient_entries(f, f_vjp, args)


def test_placements_differ_and_agree_for_diagonal_W_nh():
    x, h0, W, b = _inputs()
    H = 3
    before, _ = gru.gru(x, h0, W, b, reset="before")
    after, _ = gru.gru(x, h0, W, b, reset="after")
    assert np.max(np.abs(before - after)) > 1e-3
    W = W.copy()
    W[2 * H :, :H] = np.diag(np.diag(W[2 * H :, :H]))
    before, _ = gru.gru(x, h0, W, b, reset="before")
    after, _ = gru.gru(x, h0, W, b, reset="after")
    np.testing.assert_allclose(before, after, rtol=1e-14, atol=1e-15)


def test_one_step_formula():
    x, h0, W, b = _inputs(T=1)
    H = 3
    a = np.concatenate([h0, x[:, 0]], axis=1)
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    r = sig(a @ W[:H].T + b[:H])
    z = sig(a @ W[H : 2 * H].T + b[H : 2 * H])
    n = np.tanh((r * h0) @ W[2 * H :, :H].T + x[:, 0] @ W[2 * H :, H:].T + b[2 * H :])
    _, h_T = gru.gru(x, h0, W, b)
    np.testing.assert_allclose(h_T, (1 - z) * n + z * h0, rtol=1e-14)


def test_update_gate_copies():
    x, h0, W, b = _inputs(T=20)
    H = 3
    b = b.copy()
    b[H : 2 * H] = 50  # z = 1
    for reset in ("before", "after"):
        hs, h_T = gru.gru(x, h0, W, b, reset=reset)
        np.testing.assert_array_equal(h_T, h0)
        np.testing.assert_array_equal(hs, np.broadcast_to(h0[:, None], hs.shape))
        dh_T = np.random.default_rng(1).standard_normal((2, H))
        grads = gru.gru_vjp(np.zeros((2, 20, H)), x, h0, W, b, reset=reset, dh_T=dh_T)
        np.testing.assert_allclose(grads[1], dh_T, rtol=1e-15)


def test_reverse_is_forward_on_flipped_input():
    x, h0, W, b = _inputs(T=5)
    rev = gru.gru(x, h0, W, b, reverse=True, reset="after")
    fwd = gru.gru(x[:, ::-1], h0, W, b, reset="after")
    np.testing.assert_array_equal(rev[0], fwd[0][:, ::-1])
    np.testing.assert_array_equal(rev[1], fwd[1])


def test_zero_length():
    x, h0, W, b = _inputs(T=0)
    hs, h_T = gru.gru(x, h0, W, b)
    assert hs.shape == (2, 0, 3)
    np.testing.assert_array_equal(h_T, h0)
    dx, dh0, dW, db = gru.gru_vjp(np.zeros((2, 0, 3)), x, h0, W, b, dh_T=np.ones((2, 3)))
    assert dx.shape == (2, 0, 3)
    np.testing.assert_array_equal(dh0, np.ones((2, 3)))
    assert not dW.any() and not db.any()


@pytest.mark.parametrize(
    ("change", "shape_text"),
    [
        ({"W": np.zeros((9, 5))}, "W (9, 5)"),
        ({"W": np.zeros((8, 6))}, "W (8, 6)"),
        ({"b": np.zeros(6)}, "b (6,)"),
        ({"h0": np.zeros((2, 2))}, "h0 (2, 2)"),
    ],
)
def test_bad_shapes_raise_one_value_error(change, shape_text):
    x, h0, W, b = _inputs()
    args = {"x": x, "h0": h0, "W": W, "b": b, **change}
    with pytest.raises(ValueError, match="gru: expected") as info:
        gru.gru(**args)
    assert shape_text in str(info.value)


def test_bad_options_raise():
    with pytest.raises(ValueError, match="reset 'middle'"):
        gru.gru(*_inputs(), reset="middle")
    x, h0, W, b = _inputs()
    h0[0, 0] = np.nan
    with pytest.raises(ValueError, match=r"non-finite values in h0 \(2, 3\)"):
        gru.gru(x, h0, W, b)
