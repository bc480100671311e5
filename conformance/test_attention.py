"""Scaled dot-product attention: values, gradients, masks and the symmetries of the formula."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from conformance.strategies import attention_cases, normal


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
    b = impl.baseline("sdpa", q, k, v, mask=mask, causal=True)
    b2 = impl.baseline("sdpa", q, k2, v2, mask=mask, causal=True)
    keep = (..., slice(0, t + 1), slice(None))
    impl.relation("rows <= i after changing later tokens", out2[keep], out[keep], b2[keep], b[keep])


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
    b = impl.baseline("sdpa", q, k, v, mask=mask)
    b_p = impl.baseline("sdpa", q, k[..., perm, :], v[..., perm, :], mask=mask_p)
    impl.relation("permuted keys and values", out_p, out, b_p, b)


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
    b = impl.baseline("sdpa", q, k, v)
    b_p = impl.baseline("sdpa", qp, kp, vp)
    impl.relation("Attn(P X) vs P Attn(X)", out_p, out[..., perm, :], b_p, b[..., perm, :])
