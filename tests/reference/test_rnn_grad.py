"""reference.rnn: BPTT against finite differences (every output, both final-state cotangents),
the output layer and loss, truncated BPTT's semantics, clipping, zero-length sequences and the
ValueErrors of bad input."""

import numpy as np
import pytest

from reference import rnn
from tests.gradcheck import check_gradient_entries, check_vjp


def _inputs(B=2, T=4, D=3, H=3, seed=0, initial=True):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((B, T, D))
    h0 = rng.standard_normal((B, H)) if initial else None
    W = rng.standard_normal((H, H)) / np.sqrt(H)
    U = rng.standard_normal((H, D)) / np.sqrt(D)
    b = rng.standard_normal(H) * 0.5
    return x, h0, W, U, b


def _packed(fn, vjp, B, T, H, **options):
    """f(*inputs) -> hs and h_T flattened into one vector; its vjp splits the cotangent."""

    def f(*args):
        hs, h_T = fn(*args, **options)
        return np.concatenate([hs.ravel(), h_T.ravel()])

    def f_vjp(d, *args):
        dhs, dh_T = d[: B * T * H].reshape(B, T, H), d[B * T * H :].reshape(B, H)
        return vjp(dhs, *args, dh_T=dh_T, **options)

    return f, f_vjp


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("initial", [True, False])
def test_vjp(nonlinearity, reverse, initial):
    x, h0, W, U, b = _inputs(initial=initial)
    args = [x, h0, W, U, b] if initial else [x, W, U, b]
    fn = rnn.rnn if initial else (lambda x, W, U, b, **o: rnn.rnn(x, None, W, U, b, **o))
    vjp = (
        rnn.rnn_vjp
        if initial
        else (lambda d, x, W, U, b, **o: rnn.rnn_vjp(d, x, None, W, U, b, **o))
    )
    f, f_vjp = _packed(fn, vjp, 2, 4, 3, nonlinearity=nonlinearity, reverse=reverse)
    check_vjp(f, f_vjp, args)
    check_gradient_entries(f, f_vjp, args)


@pytest.mark.parametrize("T", [1, 7])
def test_loss_vjp(T):
    x, h0, W, U, b = _inputs(T=T, seed=T)
    rng = np.random.default_rng(5)
    V, c, z = rng.standard_normal((2, 3)), rng.standard_normal(2), rng.standard_normal((2, T, 2))

    def f(*args):
        return np.atleast_1d(rnn.rnn_loss(*args))

    def f_vjp(d, *args):
        return rnn.rnn_loss_vjp(d.reshape(()), *args)

    args = [x, h0, W, U, b, V, c, z]
    check_vjp(f, f_vjp, args)
    check_gradient_entries(f, f_vjp, args)


def test_loss_is_the_notes_sum():
    x, h0, W, U, b = _inputs()
    rng = np.random.default_rng(6)
    V, c, z = rng.standard_normal((2, 3)), rng.standard_normal(2), rng.standard_normal((2, 4, 2))
    hs, _ = rnn.rnn(x, h0, W, U, b)
    expected = sum(
        0.5 * np.sum((V @ hs[n, t] + c - z[n, t]) ** 2) for n in range(2) for t in range(4)
    )
    np.testing.assert_allclose(rnn.rnn_loss(x, h0, W, U, b, V, c, z), expected, rtol=1e-13)


def test_reverse_is_forward_on_flipped_input():
    x, h0, W, U, b = _inputs(T=5)
    hs_r, h_r = rnn.rnn(x, h0, W, U, b, reverse=True)
    hs_f, h_f = rnn.rnn(x[:, ::-1], h0, W, U, b)
    np.testing.assert_array_equal(hs_r, hs_f[:, ::-1])
    np.testing.assert_array_equal(h_r, h_f)


def test_zero_length():
    x, h0, W, U, b = _inputs(T=0)
    hs, h_T = rnn.rnn(x, h0, W, U, b)
    assert hs.shape == (2, 0, 3)
    np.testing.assert_array_equal(h_T, h0)
    _, h_T = rnn.rnn(x, None, W, U, b)
    np.testing.assert_array_equal(h_T, np.zeros((2, 3)))
    dh_T = np.ones((2, 3))
    dx, dh0, dW, dU, db = rnn.rnn_vjp(np.zeros((2, 0, 3)), x, h0, W, U, b, dh_T=dh_T)
    assert dx.shape == (2, 0, 3)
    np.testing.assert_array_equal(dh0, dh_T)
    assert not dW.any() and not dU.any() and not db.any()


def test_length_one():
    x, h0, W, U, b = _inputs(T=1)
    hs, h_T = rnn.rnn(x, h0, W, U, b)
    np.testing.assert_allclose(hs[:, 0], np.tanh(h0 @ W.T + x[:, 0] @ U.T + b), rtol=1e-15)
    np.testing.assert_array_equal(hs[:, 0], h_T)


# -- truncated BPTT --------------------------------------------------------------------------------


def _loss_args(T=6, seed=1):
    x, h0, W, U, b = _inputs(T=T, seed=seed)
    rng = np.random.default_rng(seed + 10)
    return (
        x,
        h0,
        W,
        U,
        b,
        rng.standard_normal((2, 3)),
        rng.standard_normal(2),
        rng.standard_normal((2, T, 2)),
    )


@pytest.mark.parametrize("chunk", [6, 7, 100])
def test_tbptt_with_one_chunk_is_bptt(chunk):
    args = _loss_args()
    L, *grads = rnn.rnn_tbptt(*args, chunk=chunk)
    full = rnn.rnn_loss_vjp(np.ones(()), *args)
    np.testing.assert_allclose(L, rnn.rnn_loss(*args), rtol=1e-14)
    for g, f in zip(grads, full[2:7], strict=True):  # dW, dU, db, dV, dc
        np.testing.assert_allclose(g, f, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("chunk", [1, 2, 4])
def test_tbptt_is_the_sum_of_chunk_gradients(chunk):
    # Forward carried (the loss is the full loss), gradient stopped at boundaries: each chunk's
    # BPTT gradient from the carried state, summed; and different from full BPTT.
    args = _loss_args()
    x, h0, W, U, b, V, c, z = args
    L, *grads = rnn.rnn_tbptt(*args, chunk=chunk)
    np.testing.assert_allclose(L, rnn.rnn_loss(*args), rtol=1e-13)
    expected = [np.zeros_like(p) for p in (W, U, b, V, c)]
    h = h0
    for start in range(0, 6, chunk):
        part = slice(start, start + chunk)
        g = rnn.rnn_loss_vjp(np.ones(()), x[:, part], h, W, U, b, V, c, z[:, part])
        expected = [e + d for e, d in zip(expected, g[2:7], strict=True)]
        h = rnn.rnn(x[:, part], h, W, U, b)[1]
    for g, e in zip(grads, expected, strict=True):
        np.testing.assert_allclose(g, e, rtol=1e-13, atol=1e-15)
    full = rnn.rnn_loss_vjp(np.ones(()), *args)
    assert not np.allclose(grads[0], full[2], rtol=1e-6)  # dW: the truncation is visible


def test_tbptt_chunk_must_be_positive():
    with pytest.raises(ValueError, match="chunk"):
        rnn.rnn_tbptt(*_loss_args(), chunk=0)


# -- clipping -----------------------------------------------------------------------------------


def test_clip_by_global_norm():
    rng = np.random.default_rng(2)
    grads = [rng.standard_normal((3, 4)), rng.standard_normal(5)]
    norm = np.sqrt(sum(np.sum(g**2) for g in grads))
    clipped = rnn.clip_grad_norm(*grads, max_norm=norm / 4)
    new_norm = np.sqrt(sum(np.sum(g**2) for g in clipped))
    np.testing.assert_allclose(new_norm, norm / 4, rtol=1e-14)
    for g, c in zip(grads, clipped, strict=True):  # one common factor: direction kept
        np.testing.assert_allclose(c, g / 4, rtol=1e-14)
    again = rnn.clip_grad_norm(*clipped, max_norm=norm / 4)
    for a, c in zip(again, clipped, strict=True):
        np.testing.assert_allclose(a, c, rtol=1e-15)
    small = rnn.clip_grad_norm(*grads, max_norm=2 * norm)
    for s, g in zip(small, grads, strict=True):
        np.testing.assert_array_equal(s, g)


def test_clip_eps_variant_is_torchs_formula():
    grads = [np.array([3.0, 4.0])]
    (c,) = rnn.clip_grad_norm(*grads, max_norm=1.0, eps=1e-6)
    np.testing.assert_allclose(c, grads[0] / (5 + 1e-6), rtol=1e-15)
    (zero,) = rnn.clip_grad_norm(np.zeros(3), max_norm=1.0)
    np.testing.assert_array_equal(zero, np.zeros(3))


# -- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "shape_text"),
    [
        ({"W": np.zeros((3, 4))}, "W (3, 4)"),
        ({"U": np.zeros((3, 2))}, "U (3, 2)"),
        ({"b": np.zeros(4)}, "b (4,)"),
        ({"h0": np.zeros((3, 3))}, "h0 (3, 3)"),
        ({"x": np.zeros((2, 3))}, "x (2, 3)"),
    ],
)
def test_bad_shapes_raise_one_value_error(change, shape_text):
    x, h0, W, U, b = _inputs()
    args = {"x": x, "h0": h0, "W": W, "U": U, "b": b, **change}
    with pytest.raises(ValueError, match="expected x \\(B, T, D\\)") as info:
        rnn.rnn(**args)
    assert shape_text in str(info.value)


def test_non_finite_input_raises():
    x, h0, W, U, b = _inputs()
    x[0, 1, 2] = np.nan
    with pytest.raises(ValueError, match=r"non-finite values in x \(2, 4, 3\)"):
        rnn.rnn(x, h0, W, U, b)
    with pytest.raises(ValueError, match="non-finite"):
        rnn.clip_grad_norm(np.array([np.inf]), np.ones(2), max_norm=1.0)


def test_unknown_nonlinearity_raises():
    with pytest.raises(ValueError, match="nonlinearity 'sigmoid'"):
        rnn.rnn(*_inputs(), nonlinearity="sigmoid")
