"""reference.linear_attention: the three forms agree, their vjps against finite differences,
and bad input."""

import ml_dtypes
import numpy as np
import pytest

from reference import linear_attention as la
from tests.gradcheck import check_gradient_entries, check_vjp


def _qkv(batch=(2,), n=5, n_keys=5, dk=3, dv=4, seed=0, positive_first=False):
    rng = np.random.default_rng(seed)
    q, k = rng.standard_normal((*batch, n, dk)), rng.standard_normal((*batch, n_keys, dk))
    if positive_first:
        q[..., 0], k[..., 0] = abs(q[..., 0]) + 0.5, abs(k[..., 0]) + 0.5
    return q, k, rng.standard_normal((*batch, n_keys, dv))


@pytest.mark.parametrize("feature_map", la.FEATURE_MAPS)
def test_forms_agree(feature_map):
    q, k, v = _qkv(positive_first=feature_map == "relu")
    fm = {"feature_map": feature_map}
    np.testing.assert_allclose(
        la.linear_attention(q, k, v, **fm), la.linear_attention_quadratic(q, k, v, **fm), rtol=1e-12
    )
    np.testing.assert_allclose(
        la.linear_attention_causal(q, k, v, **fm),
        la.linear_attention_quadratic(q, k, v, causal=True, **fm),
        rtol=1e-12,
    )


FORMS = [
    (la.linear_attention, la.linear_attention_vjp, {}),
    (la.linear_attention_quadratic, la.linear_attention_quadratic_vjp, {}),
    (la.linear_attention_quadratic, la.linear_attention_quadratic_vjp, {"causal": True}),
    (la.linear_attention_causal, la.linear_attention_causal_vjp, {}),
]


@pytest.mark.parametrize(("fn", "vjp", "options"), FORMS)
@pytest.mark.parametrize("feature_map", la.FEATURE_MAPS)
@pytest.mark.parametrize("eps", [0.0, 1e-6])
def test_vjp(fn, vjp, options, feature_map, eps):
    q, k, v = _qkv(positive_first=feature_map == "relu")
    opts = {**options, "feature_map": feature_map, "eps": eps}

    def f(*a):
        return fn(*a, **opts)

    def f_vjp(d, *a):
        return vjp(d, *a, **opts)

    check_vjp(f, f_vjp, [q, k, v])
    if eps == 0.0 and feature_map == "elu+1":
        check_gradient_entries(f, f_vjp, [q, k, v])


@pytest.mark.parametrize(("fn", "vjp", "options"), FORMS)
@pytest.mark.parametrize("dtype", [np.float16, ml_dtypes.bfloat16])
def test_low_precision_keeps_its_dtype(fn, vjp, options, dtype):
    # The naive tier (conformance/tolerance.py) runs the kernels in the low dtype itself; eps
    # as a Python float once promoted bfloat16 to float32 (ml_dtypes' promotion rules).
    q, k, v = (a.astype(dtype) for a in _qkv())
    out = fn(q, k, v, eps=1e-6, **options)
    grads = vjp(np.ones_like(out), q, k, v, eps=1e-6, **options)
    assert [a.dtype for a in (out, *grads)] == [np.dtype(dtype)] * 4


def test_vjp_broadcast():
    q, k, v = _qkv()
    check_vjp(
        lambda *a: la.linear_attention_causal(*a),
        lambda d, *a: la.linear_attention_causal_vjp(d, *a),
        [q, k[0], v[:1]],
    )


def test_causal_position_sees_itself_and_the_past_only():
    q, k, v = _qkv(batch=())
    out = la.linear_attention_causal(q, k, v)
    np.testing.assert_allclose(out[0], v[0], rtol=1e-14)  # position 0 sees only itself
    v2 = v.copy()
    v2[3:] = 0
    np.testing.assert_allclose(la.linear_attention_causal(q, k, v2)[:3], out[:3], rtol=1e-14)


def test_constant_values_are_kept():
    q, k, v = _qkv()
    v[:] = np.array([1.0, -2.0, 3.0, 0.5])
    np.testing.assert_allclose(la.linear_attention(q, k, v), v[..., :5, :], rtol=1e-13)


def test_relu_zero_normalizer_is_nan_unless_eps():
    q = -np.ones((2, 2))  # relu(q) = 0: the formula's 0/0
    k, v = np.ones((2, 2)), np.ones((2, 2))
    with np.errstate(invalid="ignore"):
        assert np.isnan(la.linear_attention(q, k, v, feature_map="relu")).all()
    assert np.all(la.linear_attention(q, k, v, feature_map="relu", eps=1e-6) == 0)


@pytest.mark.parametrize(
    ("shapes", "message"),
    [
        (((3, 2), (3, 4), (3, 2)), "need q"),
        (((3, 2), (4, 2), (5, 2)), "need q"),
        (((2, 3, 2), (3, 3, 2), (3, 3, 2)), "batch dims do not broadcast"),
    ],
)
def test_bad_shapes_raise_one_clear_error(shapes, message):
    q, k, v = (np.zeros(s) for s in shapes)
    with pytest.raises(ValueError, match=message) as info:
        la.linear_attention(q, k, v)
    assert f"q {shapes[0]}" in str(info.value)


def test_causal_needs_square():
    q, k, v = _qkv(batch=(), n=3, n_keys=4)
    with pytest.raises(ValueError, match="causal needs as many queries as keys"):
        la.linear_attention_causal(q, k, v)


def test_no_position_gives_an_empty_output_in_every_causal_form():
    q, v = np.zeros((2, 3, 0, 4)), np.zeros((2, 3, 0, 5))
    recurrent = la.linear_attention_causal(q, q, v)
    assert recurrent.shape == (2, 3, 0, 5)
    assert la.linear_attention_quadratic(q, q, v, causal=True).shape == recurrent.shape
