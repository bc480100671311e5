"""Scaled dot-product attention: values, gradients, masks and the symmetries of the formula."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from conformance.strategies import attention_cases, mha_cases, normal


@given(case=attention_cases())
def test_values(impl, case):
    q, k, v = case.qkv()
    impl.compare("sdpa", q, k, v, mask=case.attn_mask(), causal=case.causal)


@given(case=attention_cases(masks=("none",)), data=st.data())
def test_self_attention(impl, case, data):
    # Q = X W_Q, K = X W_K, V = X W_V: one sequence attends to itself.
    x, w_q, w_k, w_v = _projections(case, case.tq)
    impl.compare("sdpa", x @ w_q, x @ w_k, x @ w_v, causal=case.causal)


@given(case=attention_cases(masks=("none", "padding"), causal=False))
def test_cross_attention(impl, case):
    # Q from the decoder sequence Y, K and V from the encoder sequence X.
    y, w_q, _, _ = _projections(case, case.tq)
    x, _, w_k, w_v = _projections(case, case.tk, offset=10)
    impl.compare("sdpa", y @ w_q, x @ w_k, x @ w_v, mask=case.attn_mask())


def _projections(case, tokens, offset=0):
    d_model = case.dk + 1
    x = normal(case.seed + offset, (*case.batch, tokens, d_model))
    w_q = normal(case.seed + offset + 1, (d_model, case.dk)) / np.sqrt(d_model)
    w_k = normal(case.seed + offset + 2, (d_model, case.dk)) / np.sqrt(d_model)
    w_v = normal(case.seed + offset + 3, (d_model, case.dv)) / np.sqrt(d_model)
    return x, w_q, w_k, w_v


@given(case=attention_cases(masks=("none", "padding"), causal=True, square=True), data=st.data())
def test_causal_ignores_future(impl, case, data):
    # Row i of a causal attention may not change when tokens after i change.
    q, k, v = impl.inputs(*case.qkv())
    t = data.draw(st.integers(0, case.tq - 1), label="last kept position")
    rng = np.random.default_rng(case.seed + 2)
    k2, v2 = k.copy(), v.copy()
    k2[..., t + 1 :, :] = rng.standard_normal(k2[..., t + 1 :, :].shape)
    v2[..., t + 1 :, :] = rng.standard_normal(v2[..., t + 1 :, :].shape)
    mask = case.attn_mask()
    (out,) = impl.run("sdpa", q, k, v, mask=mask, causal=True)
    (out2,) = impl.run("sdpa", q, k2, v2, mask=mask, causal=True)
    keep = (..., slice(0, t + 1), slice(None))
    impl.relation(
        "rows <= i after changing later tokens",
        out2[keep],
        out[keep],
        lambda: (
            impl.baseline("sdpa", q, k2, v2, mask=mask, causal=True)[keep],
            impl.baseline("sdpa", q, k, v, mask=mask, causal=True)[keep],
        ),
    )


@given(case=attention_cases(causal=False), data=st.data())
def test_key_permutation(impl, case, data):
    # Attention is a weighted sum over keys: permuting keys and values together (and the mask's
    # key axis) cannot change the output.
    q, k, v = impl.inputs(*case.qkv())
    mask = case.attn_mask()
    perm = np.array(data.draw(st.permutations(range(case.tk)), label="key permutation"))
    mask_p = None if mask is None else mask[..., perm]
    (out,) = impl.run("sdpa", q, k, v, mask=mask)
    (out_p,) = impl.run("sdpa", q, k[..., perm, :], v[..., perm, :], mask=mask_p)
    impl.relation(
        "permuted keys and values",
        out_p,
        out,
        lambda: (
            impl.baseline("sdpa", q, k[..., perm, :], v[..., perm, :], mask=mask_p),
            impl.baseline("sdpa", q, k, v, mask=mask),
        ),
    )


@given(case=attention_cases(masks=("random",), causal=False))
def test_fully_masked_row(impl, case):
    # A query that may attend to no key: the textbook softmax is 0/0 there. nnspec returns
    # zeros (an empty weighted sum); libraries that differ declare attention.masked_rows. The
    # other rows must be unaffected either way.
    q, k, v = case.qkv()
    mask = case.attn_mask(empty_rows=True)
    mask[..., 0, :] = False
    impl.compare("sdpa", q, k, v, mask=mask)


@given(case=attention_cases())
def test_vjp(impl, case):
    q, k, v = case.qkv()
    dout = normal(case.seed + 3, (*case.batch, case.tq, case.dv))
    impl.compare_vjp("sdpa", dout, q, k, v, mask=case.attn_mask(), causal=case.causal)


@given(case=attention_cases(masks=("none",), causal=False, square=True), data=st.data())
def test_token_permutation(impl, case, data):
    # Self-attention without positional information is permutation-equivariant over tokens:
    # Attn(P X) = P Attn(X).
    x, w_q, w_k, w_v = _projections(case, case.tq)
    perm = np.array(data.draw(st.permutations(range(case.tq)), label="token permutation"))
    q, k, v = impl.inputs(x @ w_q, x @ w_k, x @ w_v)
    qp, kp, vp = (a[..., perm, :] for a in (q, k, v))
    (out,) = impl.run("sdpa", q, k, v)
    (out_p,) = impl.run("sdpa", qp, kp, vp)
    impl.relation(
        "Attn(P X) vs P Attn(X)",
        out_p,
        out[..., perm, :],
        lambda: (impl.baseline("sdpa", qp, kp, vp), impl.baseline("sdpa", q, k, v)[..., perm, :]),
    )


# -- multi-head attention (op "mha": reference.attention.mha) ----------------------------------


def _mha_inputs(impl, case):
    """x_q, x_kv and the parameters as the adapter sees them (rounded to the dtype)."""
    return impl.inputs(*case.x(), *case.params())


@given(case=mha_cases())
def test_mha_values(impl, case):
    impl.compare("mha", *case.x(), *case.params(), **case.options())


@given(case=mha_cases(self_attention=True))
def test_mha_self_attention(impl, case):
    # Q, K and V all projected from the same sequence x.
    x, _ = case.x()
    impl.compare("mha", x, x, *case.params(), **case.options())


@given(case=mha_cases())
def test_mha_vjp(impl, case):
    x_q, x_kv = case.x()
    dout = normal(case.seed + 5, (*case.batch, case.tq, case.e))
    impl.compare_vjp("mha", dout, x_q, x_kv, *case.params(), **case.options())


@given(case=mha_cases(masks=("padding",)))
def test_mha_key_padding(impl, case):
    # A padding key (key_mask False) takes no part: changing what the padded positions hold
    # cannot change any output.
    x_q, x_kv, *params = _mha_inputs(impl, case)
    options = case.options()
    padded = ~np.broadcast_to(options["key_mask"], (*case.batch, case.tk))
    x_kv2 = x_kv.copy()
    x_kv2[padded] = normal(case.seed + 6, x_kv2[padded].shape, 3.0)
    x_kv2 = impl.inputs(x_kv2)[0]
    (out,) = impl.run("mha", x_q, x_kv, *params, **options)
    (out2,) = impl.run("mha", x_q, x_kv2, *params, **options)
    impl.relation(
        "padded keys changed",
        out2,
        out,
        lambda: (
            impl.baseline("mha", x_q, x_kv2, *params, **options),
            impl.baseline("mha", x_q, x_kv, *params, **options),
        ),
    )


@given(case=mha_cases(masks=("none",), causal=False, self_attention=True), data=st.data())
def test_mha_token_permutation(impl, case, data):
    # Multi-head self-attention without positional information: MHA(P X) = P MHA(X).
    x, _, *params = _mha_inputs(impl, case)
    perm = np.array(data.draw(st.permutations(range(case.tq)), label="token permutation"))
    options = case.options()
    xp = x[..., perm, :]
    (out,) = impl.run("mha", x, x, *params, **options)
    (out_p,) = impl.run("mha", xp, xp, *params, **options)
    impl.relation(
        "MHA(P X) vs P MHA(X)",
        out_p,
        out[..., perm, :],
        lambda: (
            impl.baseline("mha", xp, xp, *params, **options),
            impl.baseline("mha", x, x, *params, **options)[..., perm, :],
        ),
    )


@given(case=mha_cases(min_heads=2, min_d_head=2), data=st.data())
def test_mha_heads_are_independent(impl, case, data):
    # Head h uses columns h*d_h .. (h+1)*d_h - 1 of W_Q, W_K, W_V and the same rows of W_O.
    # With W_O keeping only head h's rows, the other heads' columns of the projections cannot
    # matter (spec.attention.mha_heads_use_their_own_columns).
    x_q, x_kv, w_q, w_k, w_v, w_o, b_q, b_v, b_o = _mha_inputs(impl, case)
    head = data.draw(st.integers(0, case.n_heads - 1), label="head")
    mine = np.zeros(case.e, dtype=bool)
    mine[head * case.d_head : (head + 1) * case.d_head] = True
    w_o = np.where(mine[:, None], w_o, 0.0)
    rng = np.random.default_rng(case.seed + 7)

    def others_changed(w):
        return impl.inputs(np.where(mine, w, rng.standard_normal(w.shape)))[0]

    options = case.options()
    before = (x_q, x_kv, w_q, w_k, w_v, w_o, b_q, b_v, b_o)
    after = (x_q, x_kv, *(others_changed(w) for w in (w_q, w_k, w_v)), w_o, b_q, b_v, b_o)
    (out,) = impl.run("mha", *before, **options)
    (out2,) = impl.run("mha", *after, **options)
    impl.relation(
        "other heads' projection columns changed",
        out2,
        out,
        lambda: (impl.baseline("mha", *after, **options), impl.baseline("mha", *before, **options)),
    )


@given(case=mha_cases())
def test_mha_key_bias(impl, case):
    # b_k adds q_i . b_k to every score of query i, which softmax ignores
    # (spec.attention.mha_key_bias_cancels): the output is the same with and without it.
    x_q, x_kv, *params = _mha_inputs(impl, case)
    options = {k: v for k, v in case.options().items() if k != "b_k"}
    (b_k,) = impl.inputs(normal(case.seed + 8, (case.e,), 2.0))
    (out,) = impl.run("mha", x_q, x_kv, *params, **options)
    (out_b,) = impl.run("mha", x_q, x_kv, *params, **options, b_k=b_k)
    impl.relation(
        "with vs without a key bias",
        out_b,
        out,
        lambda: (
            impl.baseline("mha", x_q, x_kv, *params, **options, b_k=b_k),
            impl.baseline("mha", x_q, x_kv, *params, **options),
        ),
    )


@given(case=mha_cases(masks=("none", "padding"), causal=True, self_attention=True), data=st.data())
def test_mha_causal_ignores_future(impl, case, data):
    # Causal multi-head self-attention: row i may not change when tokens after i change.
    x, _, *params = _mha_inputs(impl, case)
    t = data.draw(st.integers(0, case.tq - 1), label="last kept position")
    x2 = x.copy()
    x2[..., t + 1 :, :] = normal(case.seed + 9, x2[..., t + 1 :, :].shape)
    x2 = impl.inputs(x2)[0]
    options = case.options()
    (out,) = impl.run("mha", x, x, *params, **options)
    (out2,) = impl.run("mha", x2, x2, *params, **options)
    keep = (..., slice(0, t + 1), slice(None))
    impl.relation(
        "rows <= i after changing later tokens",
        out2[keep],
        out[keep],
        lambda: (
            impl.baseline("mha", x2, x2, *params, **options)[keep],
            impl.baseline("mha", x, x, *params, **options)[keep],
        ),
    )


# -- additive bias: torch's and ONNX's float attn_mask, ALiBi, relative position bias -----------


def _bias(case, shape: tuple[int, ...]) -> np.ndarray:
    # Scores are O(1): a bias of the same size moves the weights substantially.
    return normal(case.seed + 10, shape, 1.5)


@given(case=attention_cases(), per_row=st.booleans())
def test_attn_bias(impl, case, per_row):
    # softmax(q k^T / sqrt(d) + bias) v; per_row=False draws one bias for every batch element.
    shape = (*case.batch, case.tq, case.tk) if per_row else (case.tq, case.tk)
    q, k, v = case.qkv()
    impl.compare("sdpa", q, k, v, mask=case.attn_mask(), attn_bias=_bias(case, shape))


@given(case=mha_cases(), per_head=st.booleans())
def test_mha_attn_bias(impl, case, per_head):
    # One bias shared by every head, or one per head (Swin's relative position bias).
    shape = (*case.batch, case.n_heads, case.tq, case.tk) if per_head else (case.tq, case.tk)
    options = {**case.options(), "attn_bias": _bias(case, shape)}
    impl.compare("mha", *case.x(), *case.params(), **options)


@given(case=mha_cases())
def test_mha_attn_bias_vjp(impl, case):
    x_q, x_kv = case.x()
    dout = normal(case.seed + 5, (*case.batch, case.tq, case.e))
    options = {**case.options(), "attn_bias": _bias(case, (case.tq, case.tk))}
    impl.compare_vjp("mha", dout, x_q, x_kv, *case.params(), **options)


@given(case=mha_cases(masks=("random",)))
def test_mha_minus_inf_bias_is_a_false_mask(impl, case):
    # The two mask kinds mean opposite things for the same numbers: a boolean mask lets its
    # True keys through, a float mask is added to the scores. A float mask of 0 where the
    # boolean one is True and -inf where it is False hides the same keys.
    x_q, x_kv, *params = _mha_inputs(impl, case)
    options = case.options()
    # (..., 1, Tq, Tk): a bias has a heads axis, the boolean mask does not.
    as_bias = np.where(options.pop("mask"), 0.0, -np.inf)[..., None, :, :]
    (out,) = impl.run("mha", x_q, x_kv, *params, **options, mask=case.masks()["mask"])
    (out_f,) = impl.run("mha", x_q, x_kv, *params, **options, attn_bias=as_bias)
    impl.relation(
        "float 0/-inf mask vs boolean mask",
        out_f,
        out,
        lambda: (
            impl.baseline("mha", x_q, x_kv, *params, **options, attn_bias=as_bias),
            impl.baseline("mha", x_q, x_kv, *params, **options, mask=case.masks()["mask"]),
        ),
    )
