"""LSTM: forward and hand-written backprop through time, in the lecture notes' layout.

Lecture notes:
    (i, f, o, g) = (sigma, sigma, sigma, tanh)(W [h_{t-1}; x_t])      (+ b: one bias, nnspec's)
    c_t = f * c_{t-1} + i * g,     h_t = o * tanh(c_t)
    dL/dc_t = dL/dc_{t+1} dc_{t+1}/dc_t,   dc_{t+1}/dc_t = f_{t+1} + (...)   (spec/lstm.py derives
                                                                      the (...) in full)

Op signatures (nnspec's canonical layout; what an adapter implements):

    lstm(x, h0, c0, W, b, reverse=False) -> (hs, h_T, c_T)
        x (B, T, D) batch-first; h0, c0 (B, H) or None for zeros;
        W (4H, H + D) acting on the concatenation [h_{t-1}; x_t], row blocks i, f, o, g
        (W[0:H] -> i, W[H:2H] -> f, W[2H:3H] -> o, W[3H:4H] -> g); b (4H,), one bias, same
        blocks. hs (B, T, H): hs[:, t] = h after reading x[:, t]; h_T, c_T (B, H).
        reverse=True reads t = T-1 .. 0 (the backward half of a bidirectional layer).
    lstm_vjp(dhs, x, h0, c0, W, b, reverse=False, dh_T=None, dc_T=None)
        -> (dx, dh0, dc0, dW, db)   dh0 / dc0 only where h0 / c0 are given; dh_T and dc_T
        (keywords, None = 0) are the cotangents of the final states.

Other libraries' layouts (torch i,f,g,o with two biases; ONNX i,o,f,c with B = [Wb, Rb]) are
mapped by the adapters, never here. Zero-length sequences: hs is (B, 0, H) and (h_T, c_T) are
the initial states (zeros where None); the vjp passes dh_T, dc_T to dh0, dc0. Bad input raises
one ValueError naming the shapes.
"""

from __future__ import annotations

import numpy as np

from reference.common import T, mm, store
from reference.rnn import check_finite, shapes_text, steps

GATES = ("i", "f", "o", "g")  # row blocks of W and b, in this order


def sigmoid(a: np.ndarray) -> np.ndarray:
    """1 / (1 + e^{-a}) without overflow: e^{-|a|} <= 1 on both branches."""
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1 / (1 + e), e / (1 + e)).astype(a.dtype)


def _shapes(x, h0, c0, W, b) -> tuple[int, int, int, int]:
    """(B, T, D, H), or one ValueError naming every shape."""
    x, W, b = (np.asarray(a) for a in (x, W, b))
    ok = x.ndim == 3 and W.ndim == 2 and b.ndim == 1 and W.shape[0] % 4 == 0
    if ok:
        B, t_len, D = x.shape
        H = W.shape[0] // 4
        ok = H > 0 and W.shape == (4 * H, H + D) and b.shape == (4 * H,)
        ok = ok and all(s is None or np.shape(s) == (B, H) for s in (h0, c0))
    if not ok:
        raise ValueError(
            "lstm: expected x (B, T, D), h0 and c0 (B, H) or None, W (4H, H + D) on [h; x], "
            "b (4H,); got " + shapes_text(x=x, h0=h0, c0=c0, W=W, b=b)
        )
    check_finite("lstm", x=x, h0=h0, c0=c0, W=W, b=b)
    return B, t_len, D, H


def _forward(x, h0, c0, W, b, reverse):
    """The forward pass and what backward needs: per step (in reading order) the input
    [h_{t-1}; x_t], the gates (i, f, o, g), c_{t-1} and c_t."""
    B, t_len, _, H = _shapes(x, h0, c0, W, b)
    h = np.zeros((B, H), dtype=x.dtype) if h0 is None else h0
    c = np.zeros((B, H), dtype=x.dtype) if c0 is None else c0
    hs = np.zeros((B, t_len, H), dtype=x.dtype)
    saved = []
    for t in steps(t_len, reverse):
        hx = np.concatenate([h, x[:, t]], axis=1)  # [h_{t-1}; x_t] (B, H + D)
        a = store(mm(hx, T(W)) + b)  # (B, 4H) pre-activations (the matmul's result in memory)
        i = store(sigmoid(a[:, 0:H]))  # gates: saved for backward
        f = store(sigmoid(a[:, H : 2 * H]))
        o = store(sigmoid(a[:, 2 * H : 3 * H]))
        g = store(np.tanh(a[:, 3 * H :]))
        c_prev = c
        c = store(f * c_prev + i * g)  # the cell state, carried
        h = store(o * np.tanh(c))  # the hidden state, carried
        hs[:, t] = h
        saved.append((t, hx, i, f, o, g, c_prev, c))
    return hs, h, c, saved


def lstm(
    x: np.ndarray,
    h0: np.ndarray | None,
    c0: np.ndarray | None,
    W: np.ndarray,
    b: np.ndarray,
    reverse: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(hs (B, T, H), h_T (B, H), c_T (B, H))."""
    hs, h, c, _ = _forward(x, h0, c0, W, b, reverse)
    return hs, h, c


def lstm_vjp(
    dhs: np.ndarray,
    x: np.ndarray,
    h0: np.ndarray | None,
    c0: np.ndarray | None,
    W: np.ndarray,
    b: np.ndarray,
    reverse: bool = False,
    dh_T: np.ndarray | None = None,
    dc_T: np.ndarray | None = None,
) -> tuple[np.ndarray, ...]:
    """BPTT through the cell. Per step, back from the last one read, with dh, dc the total
    gradients reaching h_t, c_t (row vectors):

        dc  += dh * o * (1 - tanh^2 c_t)                    (h_t = o * tanh c_t)
        do   = dh * tanh c_t,  di = dc * g,  dg = dc * i,  df = dc * c_{t-1}
        da   = [di i(1-i), df f(1-f), do o(1-o), dg (1-g^2)]    (sigma' = sigma(1 - sigma))
        dW  += da^T [h_{t-1}; x_t],  db += Σ_batch da,  [dh_{t-1}; dx_t] = da W
        dc_{t-1} = dc * f         (the direct path: diag(f_t), the notes' "uninterrupted flow")
    """
    hs, _, _, saved = _forward(x, h0, c0, W, b, reverse)
    B, t_len, H = hs.shape
    for name, d in (("dhs", dhs), ("dh_T", dh_T), ("dc_T", dc_T)):
        want = (B, t_len, H) if name == "dhs" else (B, H)
        if d is not None and d.shape != want:
            raise ValueError(
                f"lstm_vjp: expected dhs {(B, t_len, H)}, dh_T and dc_T {(B, H)} or None; got "
                + shapes_text(dhs=dhs, dh_T=dh_T, dc_T=dc_T)
            )
    dx = np.zeros_like(x)
    dW, db = np.zeros_like(W), np.zeros_like(b)
    dh = np.zeros((B, H), dtype=x.dtype) if dh_T is None else dh_T.astype(x.dtype)
    dc = np.zeros((B, H), dtype=x.dtype) if dc_T is None else dc_T.astype(x.dtype)
    for t, hx, i, f, o, g, c_prev, c in reversed(saved):
        dh = dh + dhs[:, t]
        tanh_c = np.tanh(c)
        dc = dc + dh * o * (1 - tanh_c * tanh_c)
        do = dh * tanh_c
        di, dg, df = dc * g, dc * i, dc * c_prev
        da = np.concatenate(
            [di * i * (1 - i), df * f * (1 - f), do * o * (1 - o), dg * (1 - g * g)], axis=1
        )  # (B, 4H)
        dW = store(dW + mm(T(da), hx))  # accumulated over steps, kept in the dtype
        db = store(db + da.sum(axis=0))
        dhx = mm(da, W)  # (B, H + D)
        dh, dx[:, t] = store(dhx[:, :H]), dhx[:, H:]  # dh, dc: carried to the step before
        dc = store(dc * f)
    grads = [dx]
    if h0 is not None:
        grads.append(dh)
    if c0 is not None:
        grads.append(dc)
    return (*grads, dW, db)
