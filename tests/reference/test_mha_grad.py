"""reference.attention.mha: vjp against finite differences, masks, head layout, bad input."""

import numpy as np
import pytest

from reference import attention
from tests.gradcheck import check_gradient_entries, check_vjp


def _inputs(batch=(2,), tq=3, tk=4, e=6, e_kv=5, e_out=6, seed=0):
    rng = np.random.default_rng(seed)
    x_q = rng.standard_normal((*batch, tq, e))
    x_kv = rng.standard_normal((*batch, tk, e_kv))
    shapes = [(e, e), (e_kv, e), (e_kv, e), (e, e_out), (e,), (e,), (e_out,)]
    return [x_q, x_kv, *(rng.standard_normal(s) / 2 for s in shapes)]


@pytest.mark.parametrize("n_heads", [1, 2, 3])
@pytest.mark.parametrize("masks", ["none", "mask", "key_mask", "both"])
@pytest.mark.parametrize("causal", [False, True])
def test_vjp(n_heads, masks, causal):
    args = _inputs()
    rng = np.random.default_rng(1)
    options = {"n_heads": n_heads, "causal": causal, "b_k": rng.standard_normal(6)}
    if masks in ("mask", "both"):
        mask = rng.random((3, 4)) < 0.6
        mask[:, 0] = True
        options["mask"] = mask
    if masks in ("key_mask", "both"):
        options["key_mask"] = np.array([[True, True, False, True], [True, False, False, False]])

    def f(*a):
        return attention.mha(*a, **options)

    def f_vjp(d, *a):
        return attention.mha_vjp(d, *a, **options)

    check_vjp(f, f_vjp, args)
    if n_heads == 2 and masks == "both":
        check_gradient_entries(f, f_vjp, args)


@pytest.mark.parametrize("per_head", [False, True])
def test_vjp_with_additive_bias(per_head):
    args = _inputs()
    rng = np.random.default_rng(2)
    bias = rng.standard_normal((2, 3, 3, 4) if per_head else (3, 4))
    bias[..., 1, 2] = -np.inf  # a hidden key
    options = {"n_heads": 3, "attn_bias": bias}
    check_vjp(
        lambda *a: attention.mha(*a, **options),
        lambda d, *a: attention.mha_vjp(d, *a, **options),
        args,
    )


def test_minus_inf_bias_is_a_false_mask_and_a_float_bias_shifts_scores():
    # The same numbers mean opposite things: a boolean mask lets True keys through, a float
    # bias adds to the scores (-inf hides the key).
    args = _inputs()
    mask = np.random.default_rng(3).random((3, 4)) < 0.6
    mask[:, 0] = True
    as_bias = np.where(mask, 0.0, -np.inf)
    np.testing.assert_array_equal(
        attention.mha(*args, n_heads=2, mask=mask),
        attention.mha(*args, n_heads=2, attn_bias=as_bias),
    )
    # A constant bias per query row changes nothing (softmax is shift invariant); one per key
    # changes the output.
    row = np.random.default_rng(4).standard_normal((3, 1))
    np.testing.assert_allclose(
        attention.mha(*args, n_heads=2, attn_bias=row), attention.mha(*args, n_heads=2)
    )
    key = np.array([0.0, 3.0, 0.0, 0.0])
    assert not np.allclose(attention.mha(*args, n_heads=2, attn_bias=key), attention.mha(*args))


def test_bias_that_does_not_broadcast_is_one_error():
    with pytest.raises(ValueError, match=r"attn_bias \(5, 4\) does not broadcast"):
        attention.mha(*_inputs(), n_heads=2, attn_bias=np.zeros((5, 4)))


def test_vjp_broadcast_batch():
    # x_kv shared by every batch element (no batch dims): its gradient is summed over them.
    args = _inputs()
    args[1] = args[1][0]
    check_vjp(
        lambda *a: attention.mha(*a, n_heads=2),
        lambda d, *a: attention.mha_vjp(d, *a, n_heads=2),
        args,
    )


def test_heads_are_column_blocks():
    # head h of mha is single-head attention on columns h*d_h .. (h+1)*d_h - 1.
    x_q, x_kv, W_Q, W_K, W_V, W_O, b_q, b_v, b_o = _inputs()
    out = attention.mha(x_q, x_kv, W_Q, W_K, W_V, W_O, b_q, b_v, b_o, n_heads=3)
    heads = []
    for h in range(3):
        cols = slice(2 * h, 2 * h + 2)
        heads.append(
            attention.sdpa(
                x_q @ W_Q[:, cols] + b_q[cols], x_kv @ W_K[:, cols], x_kv @ W_V[:, cols] + b_v[cols]
            )
        )
    np.testing.assert_allclose(out, np.concatenate(heads, -1) @ W_O + b_o, rtol=1e-12)


def test_split_and_merge_are_inverse():
    x = np.random.default_rng(2).standard_normal((2, 5, 6))
    np.testing.assert_array_equal(attention.merge_heads(attention.split_heads(x, 3)), x)
    assert attention.split_heads(x, 3).shape == (2, 3, 5, 2)


def test_key_mask_hides_padding():
    x_q, x_kv, *params = _inputs()
    key_mask = np.array([[True, True, False, False], [True, False, True, False]])
    out = attention.mha(x_q, x_kv, *params, n_heads=2, key_mask=key_mask)
    x_kv2 = np.where(key_mask[..., None], x_kv, 100.0)
    np.testing.assert_allclose(
        attention.mha(x_q, x_kv2, *params, n_heads=2, key_mask=key_mask), out
    )


def test_key_bias_does_not_change_the_output():
    args = _inputs()
    out = attention.mha(*args, n_heads=2)
    b_k = np.random.default_rng(3).standard_normal(6) * 5
    np.testing.assert_allclose(attention.mha(*args, n_heads=2, b_k=b_k), out, rtol=1e-10)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"n_heads": 4}, "not divisible by n_heads=4"),
        ({"mask": np.ones((5, 4), dtype=bool)}, "masks do not broadcast"),
        ({"key_mask": np.ones((2, 3), dtype=bool)}, "masks do not broadcast"),
    ],
)
def test_bad_options_raise_one_clear_error(change, message):
    with pytest.raises(ValueError, match=message) as info:
        attention.mha(*_inputs(), **{"n_heads": 2, **change})
    assert "x_q (2, 3, 6)" in str(info.value)


def test_inconsistent_weights_raise():
    args = _inputs()
    args[2] = args[2][:, :4]  # W_Q (6, 4) while W_K, W_V are (5, 6)
    with pytest.raises(ValueError, match=r"inconsistent shapes: .*W_Q \(6, 4\)"):
        attention.mha(*args, n_heads=2)
