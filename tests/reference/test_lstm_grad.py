"""reference.lstm: BPTT against finite differences (hs and both final-state cotangents), the
cell-state properties, zero-length sequences and bad input."""

import numpy as np
import pytest

from reference import lstm
from tests.gradcheck import check_gradient_entries, check_vjp


def _inputs(B=2, T=4, D=3, H=3, seed=0, initial=True):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((B, T, D))
    h0 = rng.standard_normal((B, H)) if initial else None
    c0 = rng.standard_normal((B, H)) if initial else None
    W = rng.standard_normal((4 * H, H + D)) / np.sqrt(H + D)
    b = rng.standard_normal(4 * H) * 0.5
    return x, h0, c0, W, b


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("initial", [True, False])
def test_vjp(reverse, initial):
    B, T, H = 2, 4, 3
    x, h0, c0, W, b = _inputs(initial=initial)
    n = B * T * H

    def f(*args):
        full = (args[0], h0, c0, *args[1:]) if not initial else args
        hs, h_T, c_T = lstm.lstm(*full, reverse=reverse)
        return np.concatenate([hs.ravel(), h_T.ravel(), c_T.ravel()])

    def f_vjp(d, *args):
        full = (args[0], h0, c0, *args[1:]) if not initial else args
        dhs, dh_T, dc_T = d[:n].reshape(B, T, H), d[n : n + B * H], d[n + B * H :]
        return lstm.lstm_vjp(
            dhs, *full, reverse=reverse, dh_T=dh_T.reshape(B, H), dc_T=dc_T.reshape(B, H)
        )

    args = [x, h0, c0, W, b] if initial else [x, W, b]
    check_vjp(f, f_vjp, args)
    check_gradient_entries(f, f_vjp, args)


def test_reverse_is_forward_on_flipped_input():
    x, h0, c0, W, b = _inputs(T=5)
    rev = lstm.lstm(x, h0, c0, W, b, reverse=True)
    fwd = lstm.lstm(x[:, ::-1], h0, c0, W, b)
    np.testing.assert_array_equal(rev[0], fwd[0][:, ::-1])
    np.testing.assert_array_equal(rev[1], fwd[1])
    np.testing.assert_array_equal(rev[2], fwd[2])


def test_gate_blocks_are_i_f_o_g():
    # One step, written out: the row blocks of W and b are read as i, f, o, g.
    x, h0, c0, W, b = _inputs(T=1)
    H = 3
    hs, h_T, c_T = lstm.lstm(x, h0, c0, W, b)
    a = np.concatenate([h0, x[:, 0]], axis=1) @ W.T + b
    sig = 1 / (1 + np.exp(-a))
    i, f, o, g = sig[:, :H], sig[:, H : 2 * H], sig[:, 2 * H : 3 * H], np.tanh(a[:, 3 * H :])
    np.testing.assert_allclose(c_T, f * c0 + i * g, rtol=1e-14)
    np.testing.assert_allclose(h_T, o * np.tanh(f * c0 + i * g), rtol=1e-14)
    np.testing.assert_array_equal(hs[:, 0], h_T)


def test_uninterrupted_flow():
    # f = 1, i = 0 (saturated): c and its gradient pass unchanged through 20 steps.
    x, h0, c0, W, b = _inputs(T=20)
    H = 3
    b = b.copy()
    b[:H], b[H : 2 * H] = -50, 50
    _, _, c_T = lstm.lstm(x, h0, c0, W, b)
    np.testing.assert_array_equal(c_T, c0)
    dc_T = np.random.default_rng(1).standard_normal((2, H))
    grads = lstm.lstm_vjp(np.zeros((2, 20, H)), x, h0, c0, W, b, dc_T=dc_T)
    np.testing.assert_allclose(grads[2], dc_T, rtol=1e-15)


def test_zero_length():
    x, h0, c0, W, b = _inputs(T=0)
    hs, h_T, c_T = lstm.lstm(x, h0, c0, W, b)
    assert hs.shape == (2, 0, 3)
    np.testing.assert_array_equal(h_T, h0)
    np.testing.assert_array_equal(c_T, c0)
    dh_T, dc_T = np.ones((2, 3)), 2 * np.ones((2, 3))
    dx, dh0, dc0, dW, db = lstm.lstm_vjp(np.zeros((2, 0, 3)), x, h0, c0, W, b, dh_T=dh_T, dc_T=dc_T)
    assert dx.shape == (2, 0, 3)
    np.testing.assert_array_equal(dh0, dh_T)
    np.testing.assert_array_equal(dc0, dc_T)
    assert not dW.any() and not db.any()


@pytest.mark.parametrize(
    ("change", "shape_text"),
    [
        ({"W": np.zeros((12, 5))}, "W (12, 5)"),  # H + D = 6 columns expected
        ({"W": np.zeros((10, 6))}, "W (10, 6)"),  # not 4H rows
        ({"b": np.zeros(3)}, "b (3,)"),
        ({"c0": np.zeros((2, 4))}, "c0 (2, 4)"),  # hidden size mismatch
        ({"h0": np.zeros((1, 3))}, "h0 (1, 3)"),  # batch mismatch
    ],
)
def test_bad_shapes_raise_one_value_error(change, shape_text):
    x, h0, c0, W, b = _inputs()
    args = {"x": x, "h0": h0, "c0": c0, "W": W, "b": b, **change}
    with pytest.raises(ValueError, match="lstm: expected") as info:
        lstm.lstm(**args)
    assert shape_text in str(info.value)


def test_non_finite_input_raises():
    x, h0, c0, W, b = _inputs()
    W[0, 0] = np.inf
    with pytest.raises(ValueError, match=r"non-finite values in W \(12, 6\)"):
        lstm.lstm(x, h0, c0, W, b)
