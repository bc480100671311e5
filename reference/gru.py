"""GRU: forward and hand-written backprop through time, with both published reset placements.

nnspec's canonical layout (in the LSTM's style: one W on the concatenation [h_{t-1}; x_t], one
bias): W (3H, H + D) with row blocks r, z, n (reset, update, candidate), b (3H,). Writing
W_k = [W_kh  W_kx] for block k (W_kh (H, H) acts on h, W_kx (H, D) on x):

    r   = sigma(W_r [h_{t-1}; x_t] + b_r)
    z   = sigma(W_z [h_{t-1}; x_t] + b_z)
    n   = tanh(W_nh (r * h_{t-1}) + W_nx x_t + b_n)       reset="before" (Cho et al. 2014;
                                                           ONNX linear_before_reset=0)
    n   = tanh(W_nx x_t + b_n + r * (W_nh h_{t-1}))        reset="after" (cuDNN, PyTorch;
                                                           ONNX linear_before_reset=1)
    h_t = (1 - z) * n + z * h_{t-1}

"before" is canonical (values[0] of the variant gru.reset); the two are variants of each other
and agree exactly when W_nh is diagonal (spec/gru.py). With one bias, b_n sits outside the
reset in both placements (PyTorch's b_hn, inside the reset, is then 0).

Op signatures (what an adapter implements):

    gru(x, h0, W, b, reverse=False, reset="before", lengths=None) -> (hs, h_T)
        x (B, T, D) batch-first; h0 (B, H) or None for zeros; hs (B, T, H); h_T (B, H);
        lengths: ONNX's sequence_lens (reference.rnn.valid_steps)
    gru_vjp(dhs, x, h0, W, b, reverse=False, reset="before", dh_T=None, lengths=None)
        -> (dx, dh0, dW, db)   dh0 only when h0 is given; dh_T (keyword, None = 0) is the
        cotangent of h_T.
    gru_bidirectional(x, h0, W, b, reset="before", lengths=None) -> (hs, h_T)
        W (2, 3H, H + D), b (2, 3H), h0 (2, B, H) or None; hs (B, T, 2H) = [forward |
        reverse]; h_T (2, B, H) (reference.rnn.bidirectional).
    gru_layers(x, h0, W_0, b_0, W_1, b_1, ..., reset="before", lengths=None) -> (hs, h_T)
        W_l (3H, 2H) for l > 0; h0, h_T (L, B, H) (reference.rnn.layers).

`reset` is a declared variant (conformance/variants.py: gru.reset), so adapters do not receive
it: they declare which placement they compute. Zero-length sequences: hs (B, 0, H) and h_T is
the initial state. Bad input raises one ValueError naming the shapes.
"""

from __future__ import annotations

import numpy as np

from reference.common import T, mm, store
from reference.lstm import sigmoid
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

GATES = ("r", "z", "n")  # row blocks of W and b, in this order
RESETS = ("before", "after")


def _shapes(x, h0, W, b, reset) -> tuple[int, int, int, int]:
    if reset not in RESETS:
        raise ValueError(f"gru: reset {reset!r} is not one of {RESETS}")
    x, W, b = (np.asarray(a) for a in (x, W, b))
    ok = x.ndim == 3 and W.ndim == 2 and b.ndim == 1 and W.shape[0] % 3 == 0
    if ok:
        B, t_len, D = x.shape
        H = W.shape[0] // 3
        ok = H > 0 and W.shape == (3 * H, H + D) and b.shape == (3 * H,)
        ok = ok and (h0 is None or np.shape(h0) == (B, H))
    if not ok:
        raise ValueError(
            "gru: expected x (B, T, D), h0 (B, H) or None, W (3H, H + D) on [h; x], b (3H,); "
            "got " + shapes_text(x=x, h0=h0, W=W, b=b)
        )
    check_finite("gru", x=x, h0=h0, W=W, b=b)
    return B, t_len, D, H


def _forward(x, h0, W, b, reverse, reset, lengths=None):
    B, t_len, _, H = _shapes(x, h0, W, b, reset)
    mask = valid_steps("gru", lengths, B, t_len)
    W_rz, b_rz = W[: 2 * H], b[: 2 * H]  # reset and update gates act on [h; x]
    W_nh, W_nx, b_n = W[2 * H :, :H], W[2 * H :, H:], b[2 * H :]
    h = np.zeros((B, H), dtype=x.dtype) if h0 is None else h0
    hs = np.zeros((B, t_len, H), dtype=x.dtype)
    xn = mm(x, T(W_nx))  # (B, T, H): W_nx x_t of every step, one matmul (no recurrence in it)
    saved = []
    for t in steps(t_len, reverse):
        hx = np.concatenate([h, x[:, t]], axis=1)  # [h_{t-1}; x_t] (B, H + D)
        rz = store(sigmoid(store(mm(hx, T(W_rz)) + b_rz)))  # (B, 2H) gates, saved for backward
        r, z = rz[:, :H], rz[:, H:]
        if reset == "before":
            q = None
            a_n = store(mm(r * h, T(W_nh)) + xn[:, t] + b_n)
        else:
            q = store(mm(h, T(W_nh)))  # W_nh h_{t-1}: saved, the reset multiplies it
            a_n = store(xn[:, t] + b_n + r * q)
        n = store(np.tanh(a_n))
        h_prev = h
        h_new = store((1 - z) * n + z * h_prev)  # carried
        hs[:, t] = masked(mask, t, h_new, hs[:, t])  # zero at a padded step
        h = masked(mask, t, h_new, h_prev)  # a padded step keeps the state
        saved.append((t, hx, r, z, n, q, h_prev))
    return hs, h, saved, mask


def gru(
    x: np.ndarray,
    h0: np.ndarray | None,
    W: np.ndarray,
    b: np.ndarray,
    reverse: bool = False,
    reset: str = "before",
    lengths: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(hs (B, T, H), h_T (B, H)). lengths: ONNX's sequence_lens (reference.rnn.valid_steps)."""
    hs, h, _, _ = _forward(x, h0, W, b, reverse, reset, lengths)
    return hs, h


def gru_vjp(
    dhs: np.ndarray,
    x: np.ndarray,
    h0: np.ndarray | None,
    W: np.ndarray,
    b: np.ndarray,
    reverse: bool = False,
    reset: str = "before",
    dh_T: np.ndarray | None = None,
    lengths: np.ndarray | None = None,
) -> tuple[np.ndarray, ...]:
    """BPTT through the cell. Per step, back from the last one read, with dh the total
    gradient reaching h_t (row vectors):

        dn = dh (1 - z),  dz = dh (h_{t-1} - n),  dh_{t-1} = dh z + (paths through the gates)
        da_n = dn (1 - n^2)
        before: d(r h) = da_n W_nh,  dW_nh += da_n^T (r h),  dr = d(r h) h,  dh_{t-1} += d(r h) r
        after:  dq = da_n r (q = W_nh h),  dr = da_n q,  dW_nh += dq^T h,  dh_{t-1} += dq W_nh
        dW_nx += da_n^T x_t,  db_n += Σ da_n,  dx_t += da_n W_nx
        [da_r, da_z] = [dr r(1-r), dz z(1-z)]:  dW_rz += da^T [h; x],  [dh; dx] += da W_rz

    A padded step (lengths) passes dh through unchanged and adds nothing to the gradients.
    """
    hs, _, saved, mask = _forward(x, h0, W, b, reverse, reset, lengths)
    B, t_len, H = hs.shape
    if dhs.shape != (B, t_len, H) or (dh_T is not None and dh_T.shape != (B, H)):
        raise ValueError(
            f"gru_vjp: expected dhs {(B, t_len, H)} and dh_T {(B, H)} or None; got "
            + shapes_text(dhs=dhs, dh_T=dh_T)
        )
    W_rz = W[: 2 * H]
    W_nh, W_nx = W[2 * H :, :H], W[2 * H :, H:]
    # dx_t = da_n,t W_nx + (the gates' part of da_rz,t W_rz): the first for every step in one
    # matmul after the loop
    da_ns, dx_gates = [None] * t_len, [None] * t_len
    dW_rz, dW_nh, dW_nx = np.zeros_like(W_rz), np.zeros_like(W_nh), np.zeros_like(W_nx)
    db = np.zeros_like(b)
    dh = np.zeros((B, H), dtype=x.dtype) if dh_T is None else dh_T.astype(x.dtype)
    zero = np.zeros((B, H), dtype=x.dtype)
    for t, hx, r, z, n, q, h_prev in reversed(saved):
        dh_in = dh
        dh = dh + masked(mask, t, dhs[:, t], zero)
        if mask is not None:  # a padded step: nothing flows into the cell's gates
            dh = np.where(mask[:, t : t + 1], dh, zero)
        dn = dh * (1 - z)
        dz = dh * (h_prev - n)
        dh_prev = dh * z  # the direct path: h_t = ... + z * h_{t-1}
        da_n = dn * (1 - n * n)
        if reset == "before":
            d_rh = mm(da_n, W_nh)  # (B, H): gradient of r * h_{t-1}
            dW_nh = store(dW_nh + mm(T(da_n), r * h_prev))
            dr = d_rh * h_prev
            dh_prev = dh_prev + d_rh * r
        else:
            dq = da_n * r
            dr = da_n * q
            dW_nh = store(dW_nh + mm(T(dq), h_prev))
            dh_prev = dh_prev + mm(dq, W_nh)
        dW_nx = store(dW_nx + mm(T(da_n), x[:, t]))
        da_ns[t] = da_n
        da_rz = np.concatenate([dr * r * (1 - r), dz * z * (1 - z)], axis=1)  # (B, 2H)
        dW_rz = store(dW_rz + mm(T(da_rz), hx))  # accumulated over steps, kept in the dtype
        db = store(db + np.concatenate([da_rz, da_n], axis=1).sum(axis=0))
        dhx = mm(da_rz, W_rz)  # (B, H + D)
        # carried to the step before (unchanged across a padded step)
        dh = masked(mask, t, store(dh_prev + dhx[:, :H]), dh_in)
        dx_gates[t] = dhx[:, H:]
    dx = np.zeros_like(x)
    if t_len:
        dx[...] = mm(np.stack(da_ns, axis=1), W_nx)  # (B, T, D)
        dx[...] = dx + np.stack(dx_gates, axis=1)
    dW = np.concatenate([dW_rz, np.concatenate([dW_nh, dW_nx], axis=1)], axis=0)
    return (dx, dh, dW, db) if h0 is not None else (dx, dW, db)


def gru_bidirectional(x, h0, W, b, reset="before", lengths=None):
    """Bidirectional GRU: h0 (2, B, H) or None, W (2, 3H, H + D), b (2, 3H) (index 0 forward,
    1 reverse) -> (hs (B, T, 2H) = [forward | reverse], h_T (2, B, H))."""
    return bidirectional(
        "gru_bidirectional", gru, x, (h0,), {"W": W, "b": b}, reset=reset, lengths=lengths
    )


def gru_bidirectional_vjp(dhs, x, h0, W, b, reset="before", dh_T=None, lengths=None):
    return bidirectional_vjp(
        "gru_bidirectional",
        gru_vjp,
        dhs,
        x,
        (h0,),
        {"W": W, "b": b},
        {"dh_T": dh_T},
        reset=reset,
        lengths=lengths,
    )


GRU_LAYER = ("W", "b")


def gru_layers(x, h0, *weights, reset="before", lengths=None):
    """Stacked GRU: weights (W_0, b_0, W_1, b_1, ...) with W_0 (3H, H + D) and W_l (3H, 2H)
    above; h0 (L, B, H) or None -> (hs of the top layer, h_T (L, B, H))."""
    return layers("gru_layers", gru, GRU_LAYER, x, (h0,), weights, reset=reset, lengths=lengths)


def gru_layers_vjp(dhs, x, h0, *weights, reset="before", dh_T=None, lengths=None):
    return layers_vjp(
        "gru_layers",
        gru,
        gru_vjp,
        GRU_LAYER,
        dhs,
        x,
        (h0,),
        weights,
        {"dh_T": dh_T},
        reset=reset,
        lengths=lengths,
    )
