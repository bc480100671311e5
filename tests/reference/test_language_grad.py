"""reference.language: hand-written vjps against finite differences (float64), the embedding
forms against each other, and the decoders' rules (tie, EOS, temperature, bad input)."""

from __future__ import annotations

import numpy as np
import pytest

from reference import language as L
from reference.softmax import log_softmax, softmax
from tests.gradcheck import check_gradient_entries, check_vjp

V, E, H = 5, 3, 2


def rng(seed=0):
    return np.random.default_rng(seed)


def lm_params(seed=0, D=E):
    r = rng(seed)
    return (
        r.standard_normal((E, V)),
        r.standard_normal((4 * H, H + D)) * 0.7,
        r.standard_normal(4 * H) * 0.5,
        r.standard_normal((V, H)),
        r.standard_normal(V) * 0.5,
    )


def test_lookup_equals_one_hot_product_and_gradient_touches_only_looked_up_columns():
    W = rng().standard_normal((E, V))
    ids = np.array([[0, 3, 3], [1, 0, 3]])
    np.testing.assert_allclose(L.embedding(ids, W), L.one_hot_embedding(ids, W), rtol=0, atol=0)
    dz = rng(1).standard_normal((2, 3, E))
    (dW,) = L.embedding_vjp(dz, ids, W)
    assert np.all(dW[:, [2, 4]] == 0)  # tokens 2 and 4 do not occur
    np.testing.assert_allclose(dW[:, 3], dz[0, 1] + dz[0, 2] + dz[1, 2])

    def f(W):
        return L.embedding(ids, W)

    check_vjp(f, lambda dz, W: L.embedding_vjp(dz, ids, W), [W])
    check_vjp(
        lambda W: L.one_hot_embedding(ids, W),
        lambda dz, W: L.one_hot_embedding_vjp(dz, ids, W),
        [W],
    )


def test_lm_head_vjp():
    r = rng(2)
    h, W_d, b_d = r.standard_normal((2, 3, H)), r.standard_normal((V, H)), r.standard_normal(V)
    check_vjp(L.lm_head, L.lm_head_vjp, [h, W_d, b_d])
    check_gradient_entries(L.lm_head, L.lm_head_vjp, [h, W_d, b_d])


CE_OPTIONS = [
    {},
    {"reduction": "sum"},
    {"reduction": "none"},
    {"label_smoothing": 0.2},
    {"label_smoothing": 0.2, "smoothing": "others"},
    {"ignore_index": 1},
    {"ignore_index": 1, "ignored": "counted", "label_smoothing": 0.1},
    {"mean_over": "sequences"},
]


@pytest.mark.parametrize("options", CE_OPTIONS, ids=str)
def test_cross_entropy_vjp(options):
    r = rng(3)
    logits = r.standard_normal((2, 4, V)) * 2
    targets = r.integers(0, V, (2, 4))
    targets[0, 0] = 1

    def f(x):
        return L.cross_entropy(x, targets, **options)

    def f_vjp(dy, x):
        return L.cross_entropy_vjp(dy, x, targets, **options)

    check_vjp(f, f_vjp, [logits])
    check_gradient_entries(f, f_vjp, [logits])


def test_cross_entropy_one_hot_is_negative_log_softmax_and_gradient_is_softmax_minus_onehot():
    r = rng(4)
    logits, targets = r.standard_normal((6, V)), r.integers(0, V, 6)
    per_token = L.cross_entropy(logits, targets, reduction="none")
    np.testing.assert_allclose(per_token, -log_softmax(logits)[np.arange(6), targets])
    (g,) = L.cross_entropy_vjp(np.ones(6), logits, targets, reduction="none")
    np.testing.assert_allclose(g, softmax(logits) - np.eye(V)[targets])


def test_cross_entropy_ignored_tokens_and_empty_mean():
    r = rng(5)
    logits, targets = r.standard_normal((4, V)), np.array([1, 2, 1, 1])
    kept = L.cross_entropy(logits[[1]], targets[[1]])
    np.testing.assert_allclose(L.cross_entropy(logits, targets, ignore_index=1), kept)
    assert np.isnan(L.cross_entropy(logits, np.ones(4, int), ignore_index=1))


def test_rnn_lm_vjp():
    r = rng(6)
    ids = r.integers(0, V, (2, 4))
    W_emb, U = r.standard_normal((E, V)), r.standard_normal((H, E))
    W, b = r.standard_normal((H, H)) * 0.5, r.standard_normal(H)
    W_d, b_d, h0 = r.standard_normal((V, H)), r.standard_normal(V), r.standard_normal((2, H))
    for h in (h0, None):

        def f(*p, h=h):
            return L.rnn_lm(ids, *([h] if h is not None else [None]), *p)

        args = [W_emb, W, U, b, W_d, b_d]
        if h is not None:
            check_vjp(
                lambda h, *p: L.rnn_lm(ids, h, *p),
                lambda dy, h, *p: L.rnn_lm_vjp(dy, ids, h, *p),
                [h, *args],
            )
        else:
            check_vjp(f, lambda dy, *p: L.rnn_lm_vjp(dy, ids, None, *p), args)


def test_lstm_lm_and_loss_vjp():
    ids = rng(7).integers(0, V, (2, 5))
    params = list(lm_params(7))
    h0, c0 = rng(8).standard_normal((2, H)), rng(9).standard_normal((2, H))
    check_vjp(
        lambda h, c, *p: L.lstm_lm(ids, h, c, *p),
        lambda dy, h, c, *p: L.lstm_lm_vjp(dy, ids, h, c, *p),
        [h0, c0, *params],
    )
    check_gradient_entries(
        lambda *p: L.lstm_lm(ids, None, None, *p),
        lambda dy, *p: L.lstm_lm_vjp(dy, ids, None, None, *p),
        params,
    )
    for reduction in ("mean", "sum"):
        check_gradient_entries(
            lambda h, *p, r=reduction: L.lm_loss(ids, h, None, *p, reduction=r),
            lambda dy, h, *p, r=reduction: L.lm_loss_vjp(dy, ids, h, None, *p, reduction=r),
            [h0, *params],
        )


def test_lm_loss_shifts_targets_by_one():
    ids = rng(10).integers(0, V, (3, 6))
    params = lm_params(10)
    logits = L.lstm_lm(ids[:, :-1], None, None, *params)
    np.testing.assert_allclose(
        L.lm_loss(ids, None, None, *params), L.cross_entropy(logits, ids[:, 1:]), rtol=1e-14
    )


def test_greedy_tie_rule_and_eos():
    logits = np.array([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, 2.0]])
    assert L.greedy_pick(logits).tolist() == [1, 0]
    # A scripted step function: row 0 emits EOS (3) at step 1, row 1 never does.
    script = [np.array([0, 1]), np.array([3, 2]), np.array([2, 2]), np.array([1, 0])]

    def step(tokens, t):
        return np.eye(4)[script[t]], t + 1

    out = L.greedy_decode(step, 0, np.array([0, 0]), 4, eos=3, pad=0)
    assert out.tolist() == [[0, 3, 0, 0], [1, 2, 2, 0]]
    out = L.greedy_decode(step, 0, np.array([0, 0]), 4, eos=3)  # pad = EOS
    assert out.tolist() == [[0, 3, 3, 3], [1, 2, 2, 0]]
    # Every row done: decoding stops early.
    out = L.greedy_decode(lambda tok, s: (np.eye(4)[[3, 3]], s), 0, np.array([0, 1]), 5, eos=3)
    assert out.shape == (2, 1)


def test_sampling_distribution_temperature_and_top_k():
    z = np.array([[1.0, 2.0, 0.5, -1.0]])
    np.testing.assert_allclose(L.sampling_distribution(z, 2.0), softmax(z / 2))
    p = L.sampling_distribution(z, 1.0, top_k=2)
    np.testing.assert_allclose(p[0, [0, 1]], softmax(z[:, [0, 1]])[0])
    assert np.all(p[0, [2, 3]] == 0)
    draws = L.sample_tokens(z, 20000, temperature=0.5, top_k=3, seed=1)
    freq = np.bincount(draws[0], minlength=4) / 20000
    np.testing.assert_allclose(freq, L.sampling_distribution(z, 0.5, 3)[0], atol=0.015)


@pytest.mark.parametrize(
    "call",
    [
        lambda: L.embedding(np.array([[0, 5]]), np.zeros((E, V))),
        lambda: L.embedding(np.array([[-1]]), np.zeros((E, V))),
        lambda: L.embedding(np.zeros((2, 0), int), np.zeros((E, V))),
        lambda: L.embedding(np.array([0.0]), np.zeros((E, V))),
        lambda: L.cross_entropy(np.full((2, V), np.nan), np.array([0, 1])),
        lambda: L.cross_entropy(np.zeros((2, V)), np.array([0, V])),
        lambda: L.sample_tokens(np.zeros((1, V)), 3, temperature=0.0),
        lambda: L.sample_tokens(np.zeros((1, V)), 3, temperature=-1.0),
        lambda: L.greedy_pick(np.array([[0.0, np.nan]])),
        lambda: L.lstm_greedy(np.zeros((2, 0), int), None, None, *lm_params(), 3),
        lambda: L.lm_loss(np.zeros((2, 1), int), None, None, *lm_params()),
    ],
)
def test_bad_input_raises_one_value_error(call):
    with pytest.raises(ValueError):
        call()
