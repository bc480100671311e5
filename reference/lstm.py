"""LSTM: forward and hand-written backprop through time, in the lecture notes' layout.

Lecture notes:
    (i, f, o, g) = (sigma, sigma, sigma, tanh)(W [h_{t-1}; x_t])      (+ b: one bias, nnspec's)
    c_t = f * c_{t-1} + i * g,     h_t = o * tanh(c_t)
    dL/dc_t = dL/dc_{t+1} dc_{t+1}/dc_t,   dc_{t+1}/dc_t = f_{t+1} + (...)   (spec/lstm.py derives
                                                                      the (...) in full)

Op signatures (nnspec's canonical layout; what an adapter implements):

    lstm(x, h0, c0, W, b, reverse=False, lengths=None, peepholes=None) -> (hs, h_T, c_T)
        x (B, T, D) batch-first; h0, c0 (B, H) or None for zeros;
        W (4H, H + D) acting on the concatenation [h_{t-1}; x_t], row blocks i, f, o, g
        (W[0:H] -> i, W[H:2H] -> f, W[2H:3H] -> o, W[3H:4H] -> g); b (4H,), one bias, same
        blocks. hs (B, T, H): hs[:, t] = h after reading x[:, t]; h_T, c_T (B, H).
        reverse=True reads t = T-1 .. 0 (the backward half of a bidirectional layer).
        lengths: ONNX's sequence_lens (reference.rnn.valid_steps).
        peepholes (3H,) blocks (p_i, p_f, p_o), or None (canonical, the notes' cell; equal to
        zeros, spec/lstm.py proves it): the peephole LSTM of Gers & Schmidhuber (ONNX LSTM's
        P, which orders them [Pi, Po, Pf]: mapped by the adapter)
            i = sigma(W_i [h; x] + p_i * c_{t-1} + b_i),  f = sigma(W_f [h; x] + p_f * c_{t-1}
            + b_f),  o = sigma(W_o [h; x] + p_o * c_t + b_o).
        It is an option, not an input: the vjp gives it no gradient (no adapter has one:
        torch has no peepholes, ONNX no gradients).
    lstm_vjp(dhs, x, h0, c0, W, b, reverse=False, dh_T=None, dc_T=None, lengths=None,
             peepholes=None)
        -> (dx, dh0, dc0, dW, db)   dh0 / dc0 only where h0 / c0 are given; dh_T and dc_T
        (keywords, None = 0) are the cotangents of the final states.
    lstm_bidirectional(x, h0, c0, W, b, lengths=None, peepholes=None) -> (hs, h_T, c_T)
        W (2, 4H, H + D), b (2, 4H), h0, c0 (2, B, H) or None, peepholes (2, 3H) or None;
        hs (B, T, 2H) = [forward | reverse]; h_T, c_T (2, B, H) (reference.rnn.bidirectional).
    lstm_layers(x, h0, c0, W_0, b_0, W_1, b_1, ..., lengths=None) -> (hs, h_T, c_T)
        W_l (4H, 2H) for l > 0; h0, c0, h_T, c_T (L, B, H) (reference.rnn.layers).

Other libraries' layouts (torch i,f,g,o with two biases; ONNX i,o,f,c with B = [Wb, Rb]) are
mapped by the adapters, never here. Zero-length sequences: hs is (B, 0, H) and (h_T, c_T) are
the initial states (zeros where None); the vjp passes dh_T, dc_T to dh0, dc0. Bad input raises
one ValueError naming the shapes.
"""

from __future__ import annotations

import numpy as np

from reference.common import T, mm, store
from reference.rnn import (
    bidirectional,
    bidirectional_vjp,
    check_finite,
    layers,
    layers_vjp,
    masked,
    shapes_text,
    steps,
    valid_steps,
)

GATES = ("i", "f", "o", "g")  # row blocks of W and b, in this order


def sigmoid(a: np.ndarray) -> np.ndarray:
    """1 / (1 + e^{-a}) without overflow: e^{-|a|} <= 1 on both branches."""
    e = np.exp(-np.abs(a))  # in [0, 1] (a faithfully rounded exp of x <= 0 is <= 1)
    # 1 / (1 + e) for a >= 0, e / (1 + e) below: the numerator is max(e, 1) = 1 or
    # max(e, 0) = e, the same quotients as np.where(a >= 0, 1 / d, e / d) with one division
    # and no branch per element
    return (np.maximum(e, a >= 0) / (1 + e)).astype(a.dtype, copy=False)


def _shapes(x, h0, c0, W, b, peepholes=None) -> tuple[int, int, int, int]:
    """(B, T, D, H), or one ValueError naming every shape."""
    x, W, b = (np.asarray(a) for a in (x, W, b))
    ok = x.ndim == 3 and W.ndim == 2 and b.ndim == 1 and W.shape[0] % 4 == 0
    if ok:
        B, t_len, D = x.shape
        H = W.shape[0] // 4
        ok = H > 0 and W.shape == (4 * H, H + D) and b.shape == (4 * H,)
        ok = ok and all(s is None or np.shape(s) == (B, H) for s in (h0, c0))
        ok = ok and (peepholes is None or np.shape(peepholes) == (3 * H,))
    if not ok:
        raise ValueError(
            "lstm: expected x (B, T, D), h0 and c0 (B, H) or None, W (4H, H + D) on [h; x], "
            "b (4H,), peepholes (3H,) or None; got "
            + shapes_text(x=x, h0=h0, c0=c0, W=W, b=b, peepholes=peepholes)
        )
    check_finite("lstm", x=x, h0=h0, c0=c0, W=W, b=b, peepholes=peepholes)
    return B, t_len, D, H


def _forward(x, h0, c0, W, b, reverse, lengths=None, peepholes=None, save=True):
    """The forward pass and what backward needs: per step (in reading order) the input
    [h_{t-1}; x_t], the gates (i, f, o, g), c_{t-1} and c_t (unmasked), and the lengths mask.
    save=False (the forward alone) keeps none of the steps: each step's arrays are freed for
    the next to reuse (keeping them all is 67 MB at B = 32, T = 128, H = 256)."""
    B, t_len, _, H = _shapes(x, h0, c0, W, b, peepholes)
    mask = valid_steps("lstm", lengths, B, t_len)
    h = np.zeros((B, H), dtype=x.dtype) if h0 is None else h0
    c = np.zeros((B, H), dtype=x.dtype) if c0 is None else c0
    hs = np.zeros((B, t_len, H), dtype=x.dtype)
    saved = []
    # W [h_{t-1}; x_t] = W_h h_{t-1} + W_x x_t, and W_x x_t has no recurrence in it: one matmul for
    # every step (as torch, ONNX runtimes and cuDNN run it), W_h^T copied row-major once (BLAS's
    # plain kernel, faster per step than the transposed view's).
    xw = mm(x, T(W[:, H:]))  # (B, T, 4H)
    W_hT = np.ascontiguousarray(T(W[:, :H]))  # (H, 4H)
    for t in steps(t_len, reverse):
        a = store(mm(h, W_hT) + xw[:, t] + b)  # (B, 4H) pre-activations (in memory)
        a_i, a_f, a_o = a[:, 0:H], a[:, H : 2 * H], a[:, 2 * H : 3 * H]
        if peepholes is not None:  # input and forget gates look at c_{t-1}
            a_i = a_i + peepholes[0:H] * c
            a_f = a_f + peepholes[H : 2 * H] * c
        i = store(sigmoid(a_i))  # gates: saved for backward
        f = store(sigmoid(a_f))
        g = store(np.tanh(a[:, 3 * H :]))
        c_prev = c
        c_new = store(f * c_prev + i * g)  # the cell state, carried
        if peepholes is not None:  # the output gate looks at c_t
            a_o = a_o + peepholes[2 * H :] * c_new
        o = store(sigmoid(a_o))
        h_new = store(o * np.tanh(c_new))  # the hidden state, carried
        if save:
            hx = np.concatenate([h, x[:, t]], axis=1)  # [h_{t-1}; x_t] (B, H + D): for dW
            saved.append((t, hx, i, f, o, g, c_prev, c_new))
        hs[:, t] = masked(mask, t, h_new, hs[:, t])  # zero at a padded step
        h, c = masked(mask, t, h_new, h), masked(mask, t, c_new, c_prev)  # padded: kept
    return hs, h, c, saved, mask


def lstm(
    x: np.ndarray,
    h0: np.ndarray | None,
    c0: np.ndarray | None,
    W: np.ndarray,
    b: np.ndarray,
    reverse: bool = False,
    lengths: np.ndarray | None = None,
    peepholes: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(hs (B, T, H), h_T (B, H), c_T (B, H)). lengths: ONNX's sequence_lens
    (reference.rnn.valid_steps); peepholes: see the module docstring."""
    hs, h, c, _, _ = _forward(x, h0, c0, W, b, reverse, lengths, peepholes, save=False)
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
    lengths: np.ndarray | None = None,
    peepholes: np.ndarray | None = None,
) -> tuple[np.ndarray, ...]:
    """BPTT through the cell. Per step, back from the last one read, with dh, dc the total
    gradients reaching h_t, c_t (row vectors):

        do   = dh * tanh c_t,  da_o = do o(1-o)                 (h_t = o * tanh c_t)
        dc  += dh * o * (1 - tanh^2 c_t)      [+ da_o * p_o with peepholes]
        di = dc * g,  dg = dc * i,  df = dc * c_{t-1}
        da   = [di i(1-i), df f(1-f), da_o, dg (1-g^2)]     (sigma' = sigma(1 - sigma))
        dW  += da^T [h_{t-1}; x_t],  db += Σ_batch da,  [dh_{t-1}; dx_t] = da W
        dc_{t-1} = dc * f   [+ da_i * p_i + da_f * p_f with peepholes]
                 (the direct path: diag(f_t), the notes' "uninterrupted flow")

    A padded step (lengths) passes dh and dc through unchanged. The peephole weights are an
    option, not an input: they get no gradient."""
    hs, _, _, saved, mask = _forward(x, h0, c0, W, b, reverse, lengths, peepholes)
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
    zero, zero4 = np.zeros((B, H), dtype=x.dtype), np.zeros((B, 4 * H), dtype=x.dtype)
    for t, hx, i, f, o, g, c_prev, c in reversed(saved):
        dh_in, dc_in = dh, dc
        dh = dh + masked(mask, t, dhs[:, t], zero)
        tanh_c = np.tanh(c)
        do = dh * tanh_c
        da_o = do * o * (1 - o)
        dc = dc + dh * o * (1 - tanh_c * tanh_c)
        if peepholes is not None:
            dc = dc + da_o * peepholes[2 * H :]
        di, dg, df = dc * g, dc * i, dc * c_prev
        da_i, da_f = di * i * (1 - i), df * f * (1 - f)
        da = np.concatenate([da_i, da_f, da_o, dg * (1 - g * g)], axis=1)  # (B, 4H)
        da = masked(mask, t, da, zero4)
        dW = store(dW + mm(T(da), hx))  # accumulated over steps, kept in the dtype
        db = store(db + da.sum(axis=0))
        dhx = mm(da, W)  # (B, H + D)
        dx[:, t] = dhx[:, H:]
        dc_prev = dc * f
        if peepholes is not None:
            dc_prev = dc_prev + da_i * peepholes[0:H] + da_f * peepholes[H : 2 * H]
        # dh, dc: carried to the step before (unchanged across a padded step)
        dh = masked(mask, t, store(dhx[:, :H]), dh_in)
        dc = masked(mask, t, store(dc_prev), dc_in)
    grads = [dx]
    if h0 is not None:
        grads.append(dh)
    if c0 is not None:
        grads.append(dc)
    return (*grads, dW, db)


def lstm_bidirectional(x, h0, c0, W, b, lengths=None, peepholes=None):
    """Bidirectional LSTM: h0, c0 (2, B, H) or None, W (2, 4H, H + D), b (2, 4H), peepholes
    (2, 3H) or None (index 0 forward, 1 reverse) -> (hs (B, T, 2H) = [forward | reverse],
    h_T (2, B, H), c_T (2, B, H)) (reference.rnn.bidirectional)."""
    return bidirectional(
        "lstm_bidirectional",
        lstm,
        x,
        (h0, c0),
        {"W": W, "b": b},
        sliced={"peepholes": peepholes},
        lengths=lengths,
    )


def lstm_bidirectional_vjp(
    dhs, x, h0, c0, W, b, dh_T=None, dc_T=None, lengths=None, peepholes=None
):
    return bidirectional_vjp(
        "lstm_bidirectional",
        lstm_vjp,
        dhs,
        x,
        (h0, c0),
        {"W": W, "b": b},
        {"dh_T": dh_T, "dc_T": dc_T},
        sliced={"peepholes": peepholes},
        lengths=lengths,
    )


LSTM_LAYER = ("W", "b")


def lstm_layers(x, h0, c0, *weights, lengths=None):
    """Stacked LSTM: weights (W_0, b_0, W_1, b_1, ...) with W_0 (4H, H + D) and W_l (4H, 2H)
    above; h0, c0 (L, B, H) or None -> (hs of the top layer, h_T (L, B, H), c_T (L, B, H))
    (reference.rnn.layers)."""
    return layers("lstm_layers", lstm, LSTM_LAYER, x, (h0, c0), weights, lengths=lengths)


def lstm_layers_vjp(dhs, x, h0, c0, *weights, dh_T=None, dc_T=None, lengths=None):
    return layers_vjp(
        "lstm_layers",
        lstm,
        lstm_vjp,
        LSTM_LAYER,
        dhs,
        x,
        (h0, c0),
        weights,
        {"dh_T": dh_T, "dc_T": dc_T},
        lengths=lengths,
    )
