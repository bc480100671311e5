"""Image captioning decoders: the CNN feature as the first word (Show and Tell), and soft spatial
attention (Show, Attend and Tell), forward and hand-written backward.

Lecture notes (img to text):
    "use feature vector as first word";  e^{(t)} = f_att(X, h_{t-1});  α^{(t)} = softmax(e^{(t)});
    z^{(t)} = Σ_{i,j} α^{(t)}_{i,j} x_{i,j};  h^{(t)} = LSTM(h_{t-1}, Embed y_t, z^{(t)})

Op signatures (batch-first; captions are integer token ids; the LSTM is reference.lstm's: W
(4H, H + X) on [h; x], blocks i, f, o, g, one bias):

    show_and_tell(v, captions, h0, c0, W_img, W_emb, W, b, W_d, b_d, image_input="first")
        v (B, F) image features (a CNN's pooled output), captions (B, T) word ids, W_img (E, F)
        the projection to the embedding size, W_emb (E, V), W (4H, H + E), W_d (V, H).
        The LSTM reads [W_img v, W_emb y_0, ..., W_emb y_{T-1}] (T + 1 steps) and returns the
        logits of every step (B, T + 1, V): step 0's predict the first word.
        image_input="every_step" (declared variant captioning.image_input) also adds W_img v to
        every word's input.
    attention_scores(a, h, W_a, W_h, w) -> e (B, L)   e_i = w^T tanh(W_a a_i + W_h h)
    attention_weights(a, h, W_a, W_h, w) -> α (B, L)  softmax over the L locations
    soft_attention(a, h, W_a, W_h, w) -> z (B, D)     z = Σ_i α_i a_i
        a (B, L, D) the features of L locations (a 7x7 grid: L = 49), h (B, H) the previous
        hidden state, W_a (A, D), W_h (A, H), w (A,).
    show_attend_tell(a, captions, h0, c0, W_emb, W_a, W_h, w, W, b, W_d, b_d) -> (B, T, V)
        for t = 0..T-1: z_t = soft_attention(a, h_{t-1}), h_t = LSTM(h_{t-1}, [W_emb y_t; z_t])
        with W (4H, H + E + D), and logits_t = W_d h_t + b_d (predicting y_{t+1}).
    <op>_vjp(cotangent, *inputs) -> one gradient per float input (captions have none; h0, c0
    only where given).

Bad input (ids out of range, empty captions, non-finite values, inconsistent shapes) raises one
ValueError naming the shapes.
"""

from __future__ import annotations

import numpy as np

from reference.common import T, mm, store
from reference.language import check_ids, embedding, embedding_vjp, lm_head, lm_head_vjp
from reference.lstm import lstm, lstm_vjp
from reference.rnn import check_finite, shapes_text
from reference.softmax import softmax, softmax_vjp

IMAGE_INPUTS = ("first", "every_step")

# -- Show and Tell: the image feature as the first word ----------------------------------------


def _show_and_tell_inputs(v, captions, W_img, W_emb, image_input):
    if image_input not in IMAGE_INPUTS:
        raise ValueError(f"show_and_tell: image_input {image_input!r} not in {IMAGE_INPUTS}")
    ok = np.ndim(v) == 2 and np.ndim(W_img) == 2 and np.ndim(W_emb) == 2 and np.ndim(captions) == 2
    ok = ok and np.shape(W_img) == (np.shape(W_emb)[0], np.shape(v)[-1])
    ok = ok and np.shape(captions)[0] == np.shape(v)[0]
    if not ok:
        raise ValueError(
            "show_and_tell: expected v (B, F), captions (B, T), W_img (E, F), W_emb (E, V); got "
            + shapes_text(v=v, captions=captions, W_img=W_img, W_emb=W_emb)
        )
    check_finite("show_and_tell", v=v, W_img=W_img)
    captions = check_ids("show_and_tell", captions, W_emb.shape[1])
    image = store(mm(v, T(W_img)))  # (B, E): the projected feature, a tensor in memory
    words = embedding(captions, W_emb)  # (B, T, E)
    if image_input == "every_step":
        words = words + image[:, None, :]
    return np.concatenate([image[:, None, :], words], axis=1)  # (B, T + 1, E)


def show_and_tell(v, captions, h0, c0, W_img, W_emb, W, b, W_d, b_d, image_input="first"):
    """Logits (B, T + 1, V) of an LSTM whose first input is the projected image feature."""
    x = _show_and_tell_inputs(v, captions, W_img, W_emb, image_input)
    hs, _, _ = lstm(x, h0, c0, W, b)
    return lm_head(hs, W_d, b_d)


def show_and_tell_vjp(
    dlogits, v, captions, h0, c0, W_img, W_emb, W, b, W_d, b_d, image_input="first"
):
    """(dv, dh0, dc0 where given, dW_img, dW_emb, dW, db, dW_d, db_d)."""
    x = _show_and_tell_inputs(v, captions, W_img, W_emb, image_input)
    hs, _, _ = lstm(x, h0, c0, W, b)
    dhs, dW_d, db_d = lm_head_vjp(dlogits, hs, W_d, b_d)
    dx, *grads = lstm_vjp(dhs, x, h0, c0, W, b)
    states, (dW, db) = grads[:-2], grads[-2:]
    dimage = dx[:, 0]  # (B, E)
    if image_input == "every_step":
        dimage = dimage + dx[:, 1:].sum(axis=1)
    (dW_emb,) = embedding_vjp(dx[:, 1:], captions, W_emb)
    dv = mm(dimage, W_img)
    dW_img = mm(T(dimage), v)
    return (dv, *states, dW_img, dW_emb, dW, db, dW_d, db_d)


# -- soft attention ----------------------------------------------------------------------------


def _attention_shapes(a, h, W_a, W_h, w) -> None:
    ok = np.ndim(a) == 3 and np.ndim(h) == 2 and np.ndim(W_a) == 2 and np.ndim(W_h) == 2
    ok = ok and np.ndim(w) == 1
    if ok:
        B, L, D = np.shape(a)
        A = np.shape(w)[0]
        ok = L >= 1 and np.shape(h)[0] == B and np.shape(W_a) == (A, D)
        ok = ok and np.shape(W_h) == (A, np.shape(h)[1])
    if not ok:
        raise ValueError(
            "soft_attention: expected a (B, L, D) with L >= 1, h (B, H), W_a (A, D), W_h (A, H), "
            "w (A,); got " + shapes_text(a=a, h=h, W_a=W_a, W_h=W_h, w=w)
        )
    check_finite("soft_attention", a=a, h=h, W_a=W_a, W_h=W_h, w=w)


def _attend(a, h, W_a, W_h, w):
    """(u, e, α, z): u = tanh(W_a a_i + W_h h) (B, L, A), e (B, L), α (B, L), z (B, D)."""
    _attention_shapes(a, h, W_a, W_h, w)
    u = store(np.tanh(mm(a, T(W_a)) + mm(h, T(W_h))[:, None, :]))  # saved for backward
    e = store(mm(u, w[:, None])[..., 0])  # (B, L) additive scores, in memory
    alpha = store(softmax(e, axis=-1))  # over the L locations of each image
    z = store(mm(alpha[:, None, :], a)[:, 0])  # (B, D) = Σ_i α_i a_i
    return u, e, alpha, z


def attention_scores(a, h, W_a, W_h, w):
    return _attend(a, h, W_a, W_h, w)[1]


def attention_weights(a, h, W_a, W_h, w):
    return _attend(a, h, W_a, W_h, w)[2]


def soft_attention(a, h, W_a, W_h, w):
    return _attend(a, h, W_a, W_h, w)[3]


def _scores_vjp(de, a, h, u, W_a, W_h, w):
    """Back through e_i = w^T tanh(W_a a_i + W_h h): (da, dh, dW_a, dW_h, dw)."""
    B, L, D = a.shape
    A = w.shape[0]
    dw = mm(T(de.reshape(B * L, 1)), u.reshape(B * L, A))[0]  # Σ de_i u_i
    # The backward as autograd runs it: every intermediate gradient is a tensor in memory.
    de = store(de)
    dpre = store(de[..., None] * w * (1 - u * u))  # (B, L, A): through tanh
    da = mm(dpre, W_a)
    dW_a = mm(T(dpre.reshape(B * L, A)), a.reshape(B * L, D))
    dpre_h = store(dpre.sum(axis=1))  # (B, A): W_h h is shared by the L locations
    return da, mm(dpre_h, W_h), dW_a, mm(T(dpre_h), h), dw


def attention_scores_vjp(de, a, h, W_a, W_h, w):
    u, _, _, _ = _attend(a, h, W_a, W_h, w)
    return _scores_vjp(de, a, h, u, W_a, W_h, w)


def attention_weights_vjp(dalpha, a, h, W_a, W_h, w):
    u, e, _, _ = _attend(a, h, W_a, W_h, w)
    (de,) = softmax_vjp(dalpha, e, axis=-1)
    return _scores_vjp(de, a, h, u, W_a, W_h, w)


def soft_attention_vjp(dz, a, h, W_a, W_h, w):
    """z = Σ α_i a_i: da_i gets α_i dz directly and the rest through α (softmax, then scores)."""
    u, e, alpha, _ = _attend(a, h, W_a, W_h, w)
    dalpha = store(mm(a, dz[:, :, None])[..., 0])  # (B, L): <a_i, dz>
    (de,) = softmax_vjp(dalpha, e, axis=-1)
    da, dh, dW_a, dW_h, dw = _scores_vjp(de, a, h, u, W_a, W_h, w)
    return da + alpha[..., None] * dz[:, None, :], dh, dW_a, dW_h, dw


# -- Show, Attend and Tell ---------------------------------------------------------------------


def _sat_inputs(a, captions, W_emb, W, H):
    if np.ndim(captions) != 2 or np.shape(captions)[0] != np.shape(a)[0] or np.ndim(W_emb) != 2:
        raise ValueError(
            "show_attend_tell: expected a (B, L, D), captions (B, T), W_emb (E, V); got "
            + shapes_text(a=a, captions=captions, W_emb=W_emb)
        )
    E, D = W_emb.shape[0], np.shape(a)[-1]
    if np.shape(W) != (4 * H, H + E + D):
        raise ValueError(
            f"show_attend_tell: expected W (4H, H + E + D) = {(4 * H, H + E + D)}; got "
            + shapes_text(W=W)
        )
    return embedding(check_ids("show_attend_tell", captions, W_emb.shape[1]), W_emb)


def _sat_forward(a, captions, h0, c0, W_emb, W_a, W_h, w, W, b):
    H = np.shape(W)[0] // 4
    words = _sat_inputs(a, captions, W_emb, W, H)  # (B, T, E)
    B, t_len, _ = words.shape
    h = np.zeros((B, H), dtype=a.dtype) if h0 is None else h0
    c = np.zeros((B, H), dtype=a.dtype) if c0 is None else c0
    hs, saved = [], []
    for t in range(t_len):
        z = soft_attention(a, h, W_a, W_h, w)  # attends with h_{t-1}
        x = np.concatenate([words[:, t], z], axis=1)[:, None, :]  # [E y_t; z_t] (B, 1, E + D)
        saved.append((h, c, x))
        _, h, c = lstm(x, h, c, W, b)
        hs.append(h)
    return np.stack(hs, axis=1), saved


def show_attend_tell(a, captions, h0, c0, W_emb, W_a, W_h, w, W, b, W_d, b_d):
    """Logits (B, T, V) of the attention LSTM decoder."""
    hs, _ = _sat_forward(a, captions, h0, c0, W_emb, W_a, W_h, w, W, b)
    return lm_head(hs, W_d, b_d)


def show_attend_tell_vjp(dlogits, a, captions, h0, c0, W_emb, W_a, W_h, w, W, b, W_d, b_d):
    """(da, dh0, dc0 where given, dW_emb, dW_a, dW_h, dw, dW, db, dW_d, db_d): BPTT one step
    at a time (reference.lstm.lstm_vjp on a one-step sequence), each step's dz sent back
    through the attention to a and to h_{t-1}."""
    hs, saved = _sat_forward(a, captions, h0, c0, W_emb, W_a, W_h, w, W, b)
    dhs, dW_d, db_d = lm_head_vjp(dlogits, hs, W_d, b_d)
    B, t_len, H = hs.shape
    E = W_emb.shape[0]
    zero = np.zeros((B, H), dtype=a.dtype)
    dh, dc = zero, zero
    da = np.zeros_like(a)
    dW_a, dW_h, dw = np.zeros_like(W_a), np.zeros_like(W_h), np.zeros_like(w)
    dW, db = np.zeros_like(W), np.zeros_like(b)
    dwords = np.zeros((B, t_len, E), dtype=a.dtype)
    for t in range(t_len - 1, -1, -1):
        h_prev, c_prev, x = saved[t]
        dx, dh_prev, dc_prev, dW_t, db_t = lstm_vjp(
            np.zeros((B, 1, H), dtype=a.dtype),
            x,
            h_prev,
            c_prev,
            W,
            b,
            dh_T=dh + dhs[:, t],
            dc_T=dc,
        )
        dW, db = store(dW + dW_t), store(db + db_t)
        dwords[:, t], dz = dx[:, 0, :E], dx[:, 0, E:]
        da_t, dh_att, dW_a_t, dW_h_t, dw_t = soft_attention_vjp(dz, a, h_prev, W_a, W_h, w)
        da, dW_a, dW_h, dw = (
            store(da + da_t),
            store(dW_a + dW_a_t),
            store(dW_h + dW_h_t),
            store(dw + dw_t),
        )
        dh, dc = store(dh_prev + dh_att), store(dc_prev)
    (dW_emb,) = embedding_vjp(dwords, captions, W_emb)
    states = [g for g, s in ((dh, h0), (dc, c0)) if s is not None]
    return (da, *states, dW_emb, dW_a, dW_h, dw, dW, db, dW_d, db_d)
