"""Vanilla RNN: forward, hand-written backprop through time (BPTT), the output layer and MSE
loss of the lecture notes, gradient clipping by global norm, and truncated BPTT.

Lecture notes:
    h_t = tanh(W h_{t-1} + U x_t + b),   y_t = V h_t + c,   L = Σ_t 1/2 ||y_t - z_t||^2
    dh_t/dh_{t-1} = diag(1 - h_t^2) W    (the notes write (1 - h_{t-1}^2) W: wrong, see
                                          spec/rnn.py for the counterexample)
    clipping: g -> threshold * g / ||g|| when ||g|| > threshold

Op signatures (nnspec's canonical layout; what an adapter implements, NumPy in and out):

    rnn(x, h0, W, U, b, nonlinearity="tanh", reverse=False, lengths=None) -> (hs, h_T)
        x (B, T, D) batch-first; h0 (B, H), or None for zeros; W (H, H); U (H, D); b (H,)
        hs (B, T, H): hs[:, t] is the state after reading x[:, t]; h_T (B, H) the last state
        nonlinearity "tanh" or "relu"; reverse=True reads t = T-1 .. 0 (the backward half of a
        bidirectional layer): hs[:, t] is then the state after reading x[:, T-1 .. t], and
        rnn(x, reverse=True) == flip(rnn(flip(x))) on hs.
        lengths (B,) integers in 0..T, or None: ONNX's sequence_lens (valid_steps): row b reads
        x[b, :lengths[b]] only; hs is zero past its length and h_T the state after its last
        valid step read (the initial state for length 0).
    rnn_vjp(dhs, x, h0, W, U, b, nonlinearity="tanh", reverse=False, dh_T=None, lengths=None)
        -> (dx, dh0, dW, dU, db)       dh0 only when h0 is given (one gradient per float input);
        dhs is the cotangent of hs, dh_T (keyword, None = 0) that of h_T.
    rnn_bidirectional(x, h0, W, U, b, nonlinearity="tanh", lengths=None) -> (hs, h_T)
        weights and h0 with a leading direction axis of 2 (0 forward, 1 reverse): W (2, H, H),
        U (2, H, D), b (2, H), h0 (2, B, H) or None; hs (B, T, 2H) = [forward | reverse] on the
        feature axis (torch's layout; ONNX's (T, 2, B, H) is mapped by its adapter),
        h_T (2, B, H). Its vjp takes dh_T (2, B, H).
    rnn_layers(x, h0, W_0, U_0, b_0, W_1, U_1, b_1, ..., nonlinearity="tanh", lengths=None)
        -> (hs, h_T)   L stacked layers (torch num_layers, no dropout): layer l reads the hidden
        sequence of layer l-1 (U_l (H, H) for l > 0); h0 (L, B, H) or None; hs (B, T, H) of the
        top layer; h_T (L, B, H), layer 0 first. Its vjp returns dx, [dh0], then dW_0, dU_0,
        db_0, dW_1, ...
    rnn_loss(x, h0, W, U, b, V, c, z, nonlinearity="tanh") -> L
        V (O, H), c (O,), targets z (B, T, O); L = Σ_{batch, t} 1/2 ||V h_t + c - z_t||^2, shape ()
    rnn_loss_vjp(dL, x, h0, W, U, b, V, c, z, nonlinearity="tanh")
        -> (dx, dh0, dW, dU, db, dV, dc, dz)    (dh0 only when h0 is given)
    rnn_tbptt(x, h0, W, U, b, V, c, z, chunk, nonlinearity="tanh") -> (L, dW, dU, db, dV, dc)
        truncated BPTT, see its docstring for the exact semantics.
    clip_grad_norm(*grads, max_norm, eps=0.0) -> tuple of clipped grads, one per grad

Multi-output ops and their vjp: the positional cotangent belongs to the first output (hs);
cotangents of the final states come as keywords named after them (dh_T; dc_T for the LSTM).

Zero-length sequences (T = 0): hs is empty (B, 0, H) and h_T is the initial state (zeros when
h0 is None); the vjp passes dh_T straight to dh0 and every weight gradient is zero.

Bad input (inconsistent shapes, hidden-size mismatches, non-finite values, unknown options)
raises one ValueError naming the shapes.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from reference.common import T, mm, store

NONLINEARITIES = ("tanh", "relu")


# -- input checks -------------------------------------------------------------------------


def check_finite(op: str, **arrays: np.ndarray | None) -> None:
    """ValueError naming every array that holds a NaN or an infinity."""
    bad = [
        f"{name} {np.shape(a)}"
        for name, a in arrays.items()
        if a is not None and not np.all(np.isfinite(np.asarray(a, dtype=np.float64)))
    ]
    if bad:
        raise ValueError(f"{op}: non-finite values in {', '.join(bad)}")


def shapes_text(**arrays: np.ndarray | None) -> str:
    return ", ".join(f"{n} {None if a is None else np.shape(a)}" for n, a in arrays.items())


def steps(t_len: int, reverse: bool) -> Iterable[int]:
    """Time indices in the order a layer reads them."""
    return range(t_len - 1, -1, -1) if reverse else range(t_len)


def _shapes(x, h0, W, U, b) -> tuple[int, int, int, int]:
    """(B, T, D, H), or one ValueError naming every shape."""
    x, W, U, b = (np.asarray(a) for a in (x, W, U, b))
    ok = x.ndim == 3 and W.ndim == 2 and U.ndim == 2 and b.ndim == 1
    if ok:
        B, t_len, D = x.shape
        H = W.shape[0]
        ok = W.shape == (H, H) and U.shape == (H, D) and b.shape == (H,)
        ok = ok and (h0 is None or np.shape(h0) == (B, H))
    if not ok:
        raise ValueError(
            "rnn: expected x (B, T, D), h0 (B, H) or None, W (H, H), U (H, D), b (H,); got "
            + shapes_text(x=x, h0=h0, W=W, U=U, b=b)
        )
    check_finite("rnn", x=x, h0=h0, W=W, U=U, b=b)
    return B, t_len, D, H


def _activation(nonlinearity: str):
    if nonlinearity == "tanh":
        return np.tanh
    if nonlinearity == "relu":
        return lambda a: np.maximum(a, 0).astype(a.dtype)
    raise ValueError(f"rnn: nonlinearity {nonlinearity!r} is not one of {NONLINEARITIES}")


def activation_derivative(h: np.ndarray, nonlinearity: str) -> np.ndarray:
    """sigma'(a) written with the OUTPUT h = sigma(a): tanh' = 1 - tanh^2 = 1 - h^2; relu' = [h > 0]
    (0 at a = 0, as torch and ONNX take it)."""
    if nonlinearity == "tanh":
        return 1 - h * h
    if nonlinearity == "relu":
        return (h > 0).astype(h.dtype)
    raise ValueError(f"rnn: nonlinearity {nonlinearity!r} is not one of {NONLINEARITIES}")


# -- forward ---------------------------------------------------------------------------------


def valid_steps(op: str, lengths: np.ndarray | None, B: int, t_len: int) -> np.ndarray | None:
    """The (B, T) mask t < lengths[b] of ONNX's sequence_lens (None when lengths is None).

    Semantics (ONNX RNN/LSTM/GRU sequence_lens; torch's packed sequences): sequence b has
    lengths[b] valid steps, x[b, :lengths[b]]. A layer reads only those, in its direction
    (reverse: t = lengths[b]-1 .. 0); at a padded step the carried state is left unchanged and
    the output hs[b, t] is zero, so the final state is the state after the last valid step read
    (the initial state when lengths[b] = 0), and padded inputs get zero gradient."""
    if lengths is None:
        return None
    lens = np.asarray(lengths)
    ok = lens.shape == (B,) and lens.dtype.kind in "iu"
    if not ok or np.any(lens < 0) or np.any(lens > t_len):
        raise ValueError(
            f"{op}: expected lengths (B,) = ({B},) of integers in 0..T = 0..{t_len}; got "
            f"lengths {lens.shape} of {lens.dtype}"
            + (f" {lens.tolist()}" if lens.size <= 16 else "")
        )
    return np.arange(t_len)[None, :] < lens[:, None]


def masked(mask: np.ndarray | None, t: int, new: np.ndarray, old: np.ndarray) -> np.ndarray:
    """new where step t is valid for the batch row, else old (mask None: every step valid)."""
    return new if mask is None else np.where(mask[:, t : t + 1], new, old)


def _forward(x, h0, W, U, b, nonlinearity, reverse, lengths):
    """hs (B, T, H), h_T (B, H) and, per step in reading order, (t, h_{t-1}, h_t) with h_t the
    unmasked new state (what backward needs)."""
    B, t_len, _, H = _shapes(x, h0, W, U, b)
    mask = valid_steps("rnn", lengths, B, t_len)
    sigma = _activation(nonlinearity)
    h = np.zeros((B, H), dtype=x.dtype) if h0 is None else h0  # (B, H)
    hs = np.zeros((B, t_len, H), dtype=x.dtype)
    saved = []
    for t in steps(t_len, reverse):
        # (B, H); row-vector form of W h + U x + b. A kernel writes the matmul result to
        # memory before the nonlinearity: stored, so a relu's sign decisions are modelled too.
        a = store(mm(h, T(W)) + mm(x[:, t], T(U)) + b)
        new = store(sigma(a))  # carried to the next step and saved for backward
        saved.append((t, h, new))
        hs[:, t] = masked(mask, t, new, hs[:, t])  # zero at a padded step
        h = masked(mask, t, new, h)  # a padded step keeps the state
    return hs, h, saved, mask


def rnn(
    x: np.ndarray,
    h0: np.ndarray | None,
    W: np.ndarray,
    U: np.ndarray,
    b: np.ndarray,
    nonlinearity: str = "tanh",
    reverse: bool = False,
    lengths: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """h_t = sigma(W h_{t-1} + U x_t + b) for every t; (hs (B, T, H), h_T (B, H)).
    lengths (B,) integers: ONNX's sequence_lens, see valid_steps."""
    hs, h, _, _ = _forward(x, h0, W, U, b, nonlinearity, reverse, lengths)
    return hs, h


def rnn_vjp(
    dhs: np.ndarray,
    x: np.ndarray,
    h0: np.ndarray | None,
    W: np.ndarray,
    U: np.ndarray,
    b: np.ndarray,
    nonlinearity: str = "tanh",
    reverse: bool = False,
    dh_T: np.ndarray | None = None,
    lengths: np.ndarray | None = None,
) -> tuple[np.ndarray, ...]:
    """BPTT. Walking back from the last step read, dh_t (the total gradient reaching h_t) is

        dh_t = dhs_t + (dh_{t+1} Jacobian)   with   dh_{t+1}/dh_t = diag(sigma'_{t+1}) W,

    so with da_t = dh_t * sigma'(a_t) (B, H) (row vectors): dW += da_t^T h_{t-1},
    dU += da_t^T x_t, db += Σ_batch da_t, dx_t = da_t U, and dh_{t-1} = da_t W.
    The factor is sigma' at step t (1 - h_t^2 for tanh), NOT at t-1 as the notes write.
    A padded step (lengths) is the identity on the state: da = 0 there and dh passes through."""
    B, t_len, _, H = _shapes(x, h0, W, U, b)
    if dhs.shape != (B, t_len, H) or (dh_T is not None and dh_T.shape != (B, H)):
        raise ValueError(
            f"rnn_vjp: expected dhs {(B, t_len, H)} and dh_T {(B, H)} or None; got "
            + shapes_text(dhs=dhs, dh_T=dh_T)
        )
    _, _, saved, mask = _forward(x, h0, W, U, b, nonlinearity, reverse, lengths)
    dx = np.zeros_like(x)
    dW, dU, db = np.zeros_like(W), np.zeros_like(U), np.zeros_like(b)
    dh = np.zeros((B, H), dtype=x.dtype) if dh_T is None else dh_T.astype(x.dtype)
    zero = np.zeros((B, H), dtype=x.dtype)
    for t, h_prev, h_t in reversed(saved):
        dh_in = dh
        dh = store(dh + masked(mask, t, dhs[:, t], zero))
        # diag(sigma'_t) dh_t; zero at a padded step
        da = masked(mask, t, store(dh * activation_derivative(h_t, nonlinearity)), zero)
        # The honest-kernel model of the backward pass is an unfused one (autograd's): every
        # step's weight-gradient contribution is a tensor in memory, added to an accumulator
        # kept in the dtype, like the carried gradient dh. A fused kernel rounds less.
        dW = store(dW + store(mm(T(da), h_prev)))
        dU = store(dU + store(mm(T(da), x[:, t])))
        db = store(db + store(da.sum(axis=0)))
        dx[:, t] = mm(da, U)
        # dh_{t-1} = W^T diag(sigma'_t) dh_t, as a row vector; unchanged across a padded step
        dh = masked(mask, t, store(mm(da, W)), dh_in)
    return (dx, dh, dW, dU, db) if h0 is not None else (dx, dW, dU, db)


# -- bidirectional and stacked layers (shared by rnn, lstm and gru) ----------------------------


def _pick(states: tuple, k: int) -> list:
    return [None if s is None else s[k] for s in states]


def _check_leading(op: str, n: int | None, what: str, **arrays: np.ndarray | None) -> int:
    """The common leading axis (2 directions, or L layers) of every given array, or one
    ValueError naming every shape."""
    sizes = {np.shape(a)[0] if np.ndim(a) >= 1 else None for a in arrays.values() if a is not None}
    if len(sizes) != 1 or None in sizes or (n is not None and sizes != {n}) or 0 in sizes:
        raise ValueError(
            f"{op}: expected a leading {what} axis{'' if n is None else f' of {n}'} on "
            f"{', '.join(arrays)}; got " + shapes_text(**arrays)
        )
    return sizes.pop()


def bidirectional(op, layer, x, states: tuple, weights: dict, sliced=None, **options) -> tuple:
    """Both directions of `layer` (rnn, lstm or gru) on x, concatenated on the feature axis as
    torch's bidirectional=True (and Keras' merge_mode="concat") return them.

    states (h0[, c0]): (2, B, H) or None; weights: the layer's weights, each with a leading
    direction axis of 2 (0: forward, 1: reverse). Returns hs (B, T, 2H) with
    hs[..., :H] = layer(x, forward weights) and hs[..., H:] = layer(x, reverse weights,
    reverse=True), and the final states stacked (2, B, H) (the state after the last step each
    direction reads: t = T-1 forward, t = 0 reverse). sliced: keyword options that are arrays
    with a leading direction axis (the LSTM's peepholes), None where not given."""
    sliced = {k: v for k, v in (sliced or {}).items() if v is not None}
    named = {**dict(zip(("h0", "c0"), states, strict=False)), **weights, **sliced}
    _check_leading(op, 2, "direction", **named)
    ws = list(weights.values())
    outs = []
    for d in (0, 1):
        per = {k: v[d] for k, v in sliced.items()}
        args = (x, *_pick(states, d), *(w[d] for w in ws))
        outs.append(layer(*args, reverse=bool(d), **per, **options))
    hs = np.concatenate([outs[0][0], outs[1][0]], axis=-1)
    return (hs, *(np.stack(pair) for pair in zip(outs[0][1:], outs[1][1:], strict=True)))


def bidirectional_vjp(
    op, layer_vjp, dhs, x, states, weights: dict, finals: dict, sliced=None, **options
):
    """(dx, [dh0, dc0 (2, B, H)], dweights (2, ...)): each direction's vjp on its half of dhs
    and its slice of the final-state cotangents; dx is the sum of both directions'."""
    sliced = {k: v for k, v in (sliced or {}).items() if v is not None}
    named = {**dict(zip(("h0", "c0"), states, strict=False)), **weights, **sliced}
    _check_leading(op, 2, "direction", **named)
    if dhs.ndim != 3 or dhs.shape[-1] % 2:
        raise ValueError(f"{op}_vjp: expected dhs (B, T, 2H); got dhs {dhs.shape}")
    H = dhs.shape[-1] // 2
    ws = list(weights.values())
    grads = []
    for d in (0, 1):
        cot = {k: None if v is None else v[d] for k, v in finals.items()}
        half = np.ascontiguousarray(dhs[..., d * H : (d + 1) * H])
        per = {k: v[d] for k, v in sliced.items()}
        args = (half, x, *_pick(states, d), *(w[d] for w in ws))
        grads.append(layer_vjp(*args, reverse=bool(d), **cot, **per, **options))
    dx = grads[0][0] + grads[1][0]
    return (dx, *(np.stack(pair) for pair in zip(grads[0][1:], grads[1][1:], strict=True)))


def _layer_weights(op: str, names: tuple[str, ...], weights: tuple) -> list[tuple]:
    if not weights or len(weights) % len(names):
        raise ValueError(
            f"{op}: expected the weights ({', '.join(names)}) of each layer in turn, a multiple "
            f"of {len(names)} arrays; got {len(weights)}: "
            + ", ".join(str(np.shape(w)) for w in weights)
        )
    n = len(names)
    return [tuple(weights[k : k + n]) for k in range(0, len(weights), n)]


def layers(op, layer, names, x, states: tuple, weights: tuple, **options) -> tuple:
    """`layer` stacked: layer l reads the hidden sequence of layer l-1 (layer 0 reads x), as
    torch's num_layers = L (without dropout). weights: (names...) of layer 0, then layer 1, ...
    (layer l > 0 has input size H); states (h0[, c0]): (L, B, H) or None. Returns the top
    layer's hs (B, T, H) and every layer's final states stacked (L, B, H)."""
    per = _layer_weights(op, names, weights)
    given = {n: s for n, s in zip(("h0", "c0"), states, strict=False) if s is not None}
    if given:
        _check_leading(op, len(per), "layer", **given)
    inp, finals = x, []
    for k, ws in enumerate(per):
        out = layer(inp, *_pick(states, k), *ws, **options)
        inp, finals = out[0], [*finals, out[1:]]
    return (inp, *(np.stack(f) for f in zip(*finals, strict=True)))


def layers_vjp(op, layer, layer_vjp, names, dhs, x, states, weights, finals: dict, **options):
    """(dx, [dh0, dc0 (L, B, H)], dweights of layer 0, layer 1, ...): backward through the
    layers from the top one; the gradient of a layer's input is the cotangent of the hidden
    sequence of the layer below."""
    per = _layer_weights(op, names, weights)
    given = {n: s for n, s in zip(("h0", "c0"), states, strict=False) if s is not None}
    if given:
        _check_leading(op, len(per), "layer", **given)
    inputs = [x]
    for k, ws in enumerate(per[:-1]):
        inputs.append(layer(inputs[-1], *_pick(states, k), *ws, **options)[0])
    n_states = len(given)
    d_in, d_states, d_weights = dhs, [], []
    for k in range(len(per) - 1, -1, -1):
        cot = {name: None if v is None else v[k] for name, v in finals.items()}
        g = layer_vjp(d_in, inputs[k], *_pick(states, k), *per[k], **cot, **options)
        d_in = g[0]
        d_states.insert(0, g[1 : 1 + n_states])
        d_weights.insert(0, g[1 + n_states :])
    stacked = [np.stack(d) for d in zip(*d_states, strict=True)] if n_states else []
    return (d_in, *stacked, *(w for ws in d_weights for w in ws))


def rnn_bidirectional(x, h0, W, U, b, nonlinearity="tanh", lengths=None):
    """Bidirectional RNN: h0 (2, B, H) or None, W (2, H, H), U (2, H, D), b (2, H) (index 0
    forward, 1 reverse) -> (hs (B, T, 2H) = [forward | reverse], h_T (2, B, H))."""
    return bidirectional(
        "rnn_bidirectional",
        rnn,
        x,
        (h0,),
        {"W": W, "U": U, "b": b},
        nonlinearity=nonlinearity,
        lengths=lengths,
    )


def rnn_bidirectional_vjp(dhs, x, h0, W, U, b, nonlinearity="tanh", dh_T=None, lengths=None):
    return bidirectional_vjp(
        "rnn_bidirectional",
        rnn_vjp,
        dhs,
        x,
        (h0,),
        {"W": W, "U": U, "b": b},
        {"dh_T": dh_T},
        nonlinearity=nonlinearity,
        lengths=lengths,
    )


RNN_LAYER = ("W", "U", "b")


def rnn_layers(x, h0, *weights, nonlinearity="tanh", lengths=None):
    """Stacked RNN: weights (W_0, U_0, b_0, W_1, U_1, b_1, ...) with U_0 (H, D) and U_l (H, H)
    above; h0 (L, B, H) or None -> (hs of the top layer (B, T, H), h_T (L, B, H))."""
    return layers(
        "rnn_layers", rnn, RNN_LAYER, x, (h0,), weights, nonlinearity=nonlinearity, lengths=lengths
    )


def rnn_layers_vjp(dhs, x, h0, *weights, nonlinearity="tanh", dh_T=None, lengths=None):
    return layers_vjp(
        "rnn_layers",
        rnn,
        rnn_vjp,
        RNN_LAYER,
        dhs,
        x,
        (h0,),
        weights,
        {"dh_T": dh_T},
        nonlinearity=nonlinearity,
        lengths=lengths,
    )


# -- output layer and loss -----------------------------------------------------------------------


def rnn_output(hs: np.ndarray, V: np.ndarray, c: np.ndarray) -> np.ndarray:
    """y_t = V h_t + c for every t; hs (B, T, H), V (O, H), c (O,) -> ys (B, T, O)."""
    if V.ndim != 2 or hs.shape[-1] != V.shape[1] or c.shape != (V.shape[0],):
        raise ValueError(
            "rnn_output: expected hs (B, T, H), V (O, H), c (O,); got "
            + shapes_text(hs=hs, V=V, c=c)
        )
    return mm(hs, T(V)) + c


def mse_loss(ys: np.ndarray, z: np.ndarray) -> np.ndarray:
    """L = Σ_t L_t with L_t = 1/2 ||y_t - z_t||^2, summed over the batch too; shape ()."""
    if ys.shape != z.shape:
        raise ValueError(f"mse_loss: y {ys.shape} and targets z {z.shape} differ")
    e = ys - z
    return np.asarray(np.sum(e * e) / 2, dtype=ys.dtype)


def rnn_output_vjp(
    dys: np.ndarray, hs: np.ndarray, V: np.ndarray, c: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dhs, dV, dc): dL/dV = Σ_t dy_t h_t^T and dL/dc = Σ_t dy_t (the notes' formulas with
    dy_t = y_t - z_t for the MSE loss)."""
    B, t_len, H = hs.shape
    flat_dy = dys.reshape(B * t_len, -1)  # (B*T, O): the sums over t (and batch) as one matmul
    dV = mm(T(flat_dy), hs.reshape(B * t_len, H))  # (O, H)
    dc = flat_dy.sum(axis=0)
    return mm(dys, V), dV, dc


def rnn_loss(
    x: np.ndarray,
    h0: np.ndarray | None,
    W: np.ndarray,
    U: np.ndarray,
    b: np.ndarray,
    V: np.ndarray,
    c: np.ndarray,
    z: np.ndarray,
    nonlinearity: str = "tanh",
) -> np.ndarray:
    """L = Σ_t 1/2 ||V h_t + c - z_t||^2 over the RNN's states; shape ()."""
    hs, _ = rnn(x, h0, W, U, b, nonlinearity)
    check_finite("rnn_loss", V=V, c=c, z=z)
    return mse_loss(store(rnn_output(hs, V, c)), z)  # y: the output layer's activations


def rnn_loss_vjp(
    dL: np.ndarray,
    x: np.ndarray,
    h0: np.ndarray | None,
    W: np.ndarray,
    U: np.ndarray,
    b: np.ndarray,
    V: np.ndarray,
    c: np.ndarray,
    z: np.ndarray,
    nonlinearity: str = "tanh",
) -> tuple[np.ndarray, ...]:
    """Gradients of dL * L: the output layer's (dL/dy_t = y_t - z_t), then BPTT."""
    hs, _ = rnn(x, h0, W, U, b, nonlinearity)
    ys = store(rnn_output(hs, V, c))
    if ys.shape != z.shape:
        raise ValueError(f"rnn_loss: y {ys.shape} and targets z {z.shape} differ")
    dys = store(ys - z) * dL  # dL/dy_t = y_t - z_t (the residual, saved for backward)
    dhs, dV, dc = rnn_output_vjp(dys, hs, V, c)
    grads = rnn_vjp(dhs, x, h0, W, U, b, nonlinearity)
    return (*grads, dV, dc, -dys)


# -- truncated BPTT ----------------------------------------------------------------------------


def rnn_tbptt(
    x: np.ndarray,
    h0: np.ndarray | None,
    W: np.ndarray,
    U: np.ndarray,
    b: np.ndarray,
    V: np.ndarray,
    c: np.ndarray,
    z: np.ndarray,
    chunk: int,
    nonlinearity: str = "tanh",
) -> tuple[np.ndarray, ...]:
    """Truncated BPTT with chunks of `chunk` steps: (L, dW, dU, db, dV, dc).

    Semantics. Split t = 0 .. T-1 into chunks [0, k), [k, 2k), ... (the last may be shorter).
    - Forward: the state is carried across chunks: chunk j starts from the state the previous
      chunk ended in (h0 for the first), so L = Σ_chunks L_chunk is exactly the full loss.
    - Backward: the gradient stops at chunk boundaries: within chunk j the starting state s_j is
      a constant, so each chunk contributes its own BPTT gradient ∂L_j/∂θ |_{s_j fixed}, and
      the gradients returned are Σ_j of those (no parameter update between chunks).
    Equivalently, full BPTT on the unrolled graph with stop_gradient applied to the state at
    each chunk boundary. With chunk >= T there is one chunk and this is full BPTT exactly.
    """
    if not isinstance(chunk, int | np.integer) or chunk < 1:
        raise ValueError(f"rnn_tbptt: chunk must be a positive integer, got {chunk!r}")
    B, t_len, _, H = _shapes(x, h0, W, U, b)
    if z.shape[:2] != (B, t_len) or V.ndim != 2 or V.shape[1] != H:
        raise ValueError(
            "rnn_tbptt: expected V (O, H), c (O,), z (B, T, O) with x (B, T, D); got "
            + shapes_text(x=x, V=V, c=c, z=z)
        )
    h = np.zeros((B, H), dtype=x.dtype) if h0 is None else h0
    one = np.ones((), dtype=x.dtype)
    total = np.zeros((), dtype=x.dtype)
    grads = [np.zeros_like(p) for p in (W, U, b, V, c)]
    for start in range(0, t_len, chunk):
        part = slice(start, start + chunk)
        xs, zs = x[:, part], z[:, part]
        total = total + rnn_loss(xs, h, W, U, b, V, c, zs, nonlinearity)
        # h is an input of this chunk, not a function of the parameters: the gradient stops.
        _dx, _dh, dW, dU, db, dV, dc, _dz = rnn_loss_vjp(
            one, xs, h, W, U, b, V, c, zs, nonlinearity
        )
        grads = [store(g + d) for g, d in zip(grads, (dW, dU, db, dV, dc), strict=True)]
        _, h = rnn(xs, h, W, U, b, nonlinearity)  # the forward state carries over
    return (np.asarray(total, dtype=x.dtype), *grads)


# -- gradient clipping ---------------------------------------------------------------------------


def global_norm(grads: Iterable[np.ndarray]) -> np.ndarray:
    """||g|| of all gradients concatenated: sqrt(Σ_i Σ g_i^2)."""
    grads = list(grads)
    total = sum((np.sum(g * g) for g in grads), np.zeros((), dtype=grads[0].dtype))
    return np.sqrt(total)


def clip_grad_norm(*grads: np.ndarray, max_norm: float, eps: float = 0.0) -> tuple[np.ndarray, ...]:
    """Clip by global norm: every g_i -> g_i * max_norm / ||g|| when ||g|| > max_norm, else g_i,
    with ||g|| the norm of all gradients together (direction of the whole vector kept, norm
    bounded by max_norm, idempotent).

    eps is a declared variant (clip_grad_norm.eps): torch.nn.utils.clip_grad_norm_ scales by
    min(1, max_norm / (||g|| + 1e-6)). nnspec's canonical eps is 0, the notes' formula."""
    if not grads:
        raise ValueError("clip_grad_norm: no gradients given")
    if not max_norm > 0:
        raise ValueError(f"clip_grad_norm: max_norm must be positive, got {max_norm!r}")
    dtypes = {g.dtype for g in grads}
    if len(dtypes) != 1:
        raise ValueError(f"clip_grad_norm: gradients of mixed dtypes {sorted(map(str, dtypes))}")
    check_finite("clip_grad_norm", **{f"grads[{i}]": g for i, g in enumerate(grads)})
    norm = global_norm(grads)
    if not norm + eps > max_norm:  # also the all-zero gradient: nothing to clip
        return tuple(g.copy() for g in grads)
    scale = (max_norm / (norm + eps)).astype(grads[0].dtype)
    return tuple((g * scale).astype(g.dtype) for g in grads)
