"""Linear attention: its three forms (quadratic kernel form, linear associativity form, causal
recurrence), values, gradients, agreement between the forms, causality and the normalizer."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from conformance.strategies import linear_attention_cases, normal
from conformance.tolerance import LOW


def _feature_map(impl, case) -> str:
    """relu's derivative jumps at 0: in float16/bfloat16 a rounding that moves q or k across 0
    switches a feature's gradient on or off (an honest O(1) change), so low-precision gradient
    checks use elu + 1 (whose derivative is continuous) where the case drew relu."""
    return "elu+1" if impl.dtype in LOW else case.feature_map


def _dout(case, n):
    return normal(case.seed + 1, (*case.batch, n, case.dv))


@given(case=linear_attention_cases())
def test_values(impl, case):
    # V' = φ(Q) (φ(K)^T V) / (φ(Q) φ(K)^T 1): the associativity (linear) form, O(N d^2).
    impl.compare("linear_attention", *case.qkv(), feature_map=case.feature_map)


@given(causal=st.booleans(), data=st.data())
def test_quadratic_values(impl, causal, data):
    # V'_i = Σ_j sim_ij V_j / Σ_j sim_ij with the N x N matrix sim = φ(Q) φ(K)^T (masked j > i).
    case = data.draw(linear_attention_cases(square=causal), label="case")
    impl.compare(
        "linear_attention_quadratic", *case.qkv(), causal=causal, feature_map=case.feature_map
    )


@given(case=linear_attention_cases(square=True))
def test_causal_values(impl, case):
    # S_i = S_{i-1} + φ(K_i) V_i^T, z_i = z_{i-1} + φ(K_i), V'_i = φ(Q_i)^T S_i / (φ(Q_i)^T z_i).
    impl.compare("linear_attention_causal", *case.qkv(), feature_map=case.feature_map)


@given(case=linear_attention_cases(gradients=True))
def test_vjp(impl, case):
    q, k, v = case.qkv()
    fm = _feature_map(impl, case)
    impl.compare_vjp("linear_attention", _dout(case, case.n), q, k, v, feature_map=fm)


@given(case=linear_attention_cases(square=True, gradients=True), causal=st.booleans())
def test_quadratic_vjp(impl, case, causal):
    q, k, v = case.qkv()
    fm = _feature_map(impl, case)
    dout = _dout(case, case.n)
    impl.compare_vjp("linear_attention_quadratic", dout, q, k, v, causal=causal, feature_map=fm)


@given(case=linear_attention_cases(square=True, gradients=True))
def test_causal_vjp(impl, case):
    q, k, v = case.qkv()
    fm = _feature_map(impl, case)
    impl.compare_vjp("linear_attention_causal", _dout(case, case.n), q, k, v, feature_map=fm)


@given(case=linear_attention_cases())
def test_forms_agree(impl, case):
    # The associativity identity on the adapter's own two forms (spec.linear_attention.
    # associativity): (φ(Q) φ(K)^T) V = φ(Q) (φ(K)^T V), normalizers alike.
    q, k, v = impl.inputs(*case.qkv())
    fm = {"feature_map": case.feature_map}
    (linear,) = impl.run("linear_attention", q, k, v, **fm)
    (quadratic,) = impl.run("linear_attention_quadratic", q, k, v, **fm)
    impl.relation(
        "linear vs quadratic form",
        linear,
        quadratic,
        lambda: (
            impl.baseline("linear_attention", q, k, v, **fm),
            impl.baseline("linear_attention_quadratic", q, k, v, **fm),
        ),
    )


@given(case=linear_attention_cases(square=True))
def test_causal_forms_agree(impl, case):
    # The recurrence equals the causally masked kernel form (spec.linear_attention.
    # causal_recurrence).
    q, k, v = impl.inputs(*case.qkv())
    fm = {"feature_map": case.feature_map}
    (recurrent,) = impl.run("linear_attention_causal", q, k, v, **fm)
    (quadratic,) = impl.run("linear_attention_quadratic", q, k, v, causal=True, **fm)
    impl.relation(
        "recurrent vs masked quadratic form",
        recurrent,
        quadratic,
        lambda: (
            impl.baseline("linear_attention_causal", q, k, v, **fm),
            impl.baseline("linear_attention_quadratic", q, k, v, causal=True, **fm),
        ),
    )


@given(case=linear_attention_cases(square=True), data=st.data())
def test_causal_ignores_future(impl, case, data):
    # Output i of the causal form may not change when positions after i change.
    q, k, v = impl.inputs(*case.qkv())
    t = data.draw(st.integers(0, case.n - 1), label="last kept position")
    fm = {"feature_map": case.feature_map}
    rng = np.random.default_rng(case.seed + 2)
    q2, k2, v2 = q.copy(), k.copy(), v.copy()
    for a in (q2, k2, v2):
        a[..., t + 1 :, :] = rng.standard_normal(a[..., t + 1 :, :].shape)
    if case.feature_map == "relu":  # keep the normalizers of the changed rows away from 0
        q2[..., t + 1 :, 0] = np.abs(q2[..., t + 1 :, 0]) + 0.5
        k2[..., t + 1 :, 0] = np.abs(k2[..., t + 1 :, 0]) + 0.5
    q2, k2, v2 = impl.inputs(q2, k2, v2)
    (out,) = impl.run("linear_attention_causal", q, k, v, **fm)
    (out2,) = impl.run("linear_attention_causal", q2, k2, v2, **fm)
    keep = (..., slice(0, t + 1), slice(None))
    impl.relation(
        "rows <= i after changing later positions",
        out2[keep],
        out[keep],
        lambda: (
            impl.baseline("linear_attention_causal", q2, k2, v2, **fm)[keep],
            impl.baseline("linear_attention_causal", q, k, v, **fm)[keep],
        ),
    )


@given(case=linear_attention_cases(square=True), op=st.sampled_from(["linear", "causal"]))
def test_normalizer(impl, case, op):
    # The denominator makes each query's weights sum to 1: when every value row is the same
    # vector c, every output row is c (spec.linear_attention.normalizer_makes_weights_sum_to_one).
    q, k, _ = impl.inputs(*case.qkv())
    (c,) = impl.inputs(normal(case.seed + 3, (case.dv,)))
    v = np.broadcast_to(c, (*k.shape[:-1], case.dv)).copy()
    name = "linear_attention" if op == "linear" else "linear_attention_causal"
    fm = {"feature_map": case.feature_map}
    (out,) = impl.run(name, q, k, v, **fm)
    rows = np.broadcast_to(c, out.shape)
    impl.relation(
        "outputs vs the common value row",
        out,
        rows,
        lambda: (impl.baseline(name, q, k, v, **fm), rows),
    )
