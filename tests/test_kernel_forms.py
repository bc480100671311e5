"""The honest-kernel models' alternative formulations (reference.common.kernel_form) are exact
(each equals the reference's form in wide arithmetic, so a model never shifts the truth), and
the Monte Carlo models of conformance/tolerance.py take every form in every check."""

from __future__ import annotations

import numpy as np
import pytest

import reference.attention as attention
import reference.common as common
import reference.equivariance as equivariance
import reference.norm as norm
import reference.softmax as softmax
from conformance import tolerance
from reference.common import kernel_form, recomputed, storage_dtype

WIDE = tolerance.truth_dtype()
SDPA_FORMS = (
    "saved alpha, rowsum(dO*O)",
    "saved alpha, rowsum(dalpha*alpha)",
    "exp(s - L), rowsum(dO*O)",
)
SUM_ORDERS = common.SUM_ORDERS


def _forced(monkeypatch, module, form: str) -> None:
    monkeypatch.setattr(module, "kernel_form", lambda *forms: form)


def _sdpa_case(seed: int, masked_rows: str):
    rng = np.random.default_rng(seed)
    tq, tk, d = 3, int(rng.integers(1, 6)), int(rng.integers(1, 5))
    q, k, v, dout = (
        rng.standard_normal(s) for s in ((2, tq, d), (2, tk, d), (2, tk, d), (2, tq, d))
    )
    mask = rng.random((2, tq, tk)) < 0.6
    mask[0, 0] = False  # a row with no visible key: its masked_rows variant
    bias = rng.standard_normal((tq, tk)) * 1.5
    bias[1, 0] = -np.inf
    args = [np.asarray(a, dtype=WIDE) for a in (dout, q, k, v)]
    kwargs = {
        "mask": mask,
        "causal": bool(seed % 2),
        "attn_bias": np.asarray(bias, dtype=WIDE),
        "masked_rows": masked_rows,
    }
    return args, kwargs


@pytest.mark.parametrize("masked_rows", ["zeros", "nan", "uniform"])
@pytest.mark.parametrize("form", SDPA_FORMS[1:])
def test_every_sdpa_backward_form_is_exact(monkeypatch, form, masked_rows):
    for seed in range(6):
        args, kwargs = _sdpa_case(seed, masked_rows)
        expected = attention.sdpa_vjp(*args, **kwargs)
        _forced(monkeypatch, attention, form)
        got = attention.sdpa_vjp(*args, **kwargs)
        monkeypatch.undo()
        for g, e in zip(got, expected, strict=True):
            np.testing.assert_array_equal(np.isnan(g), np.isnan(e))
            scale = np.nanmax(np.abs(e.astype(np.float64)), initial=1.0)
            assert np.nanmax(np.abs((g - e).astype(np.float64)), initial=0.0) <= 1e-15 * scale


@pytest.mark.parametrize("order", SUM_ORDERS[1:])
def test_every_log_softmax_summation_order_is_exact(monkeypatch, order):
    rng = np.random.default_rng(0)
    for n in (1, 3, 8, 17, 40):
        x = np.asarray(rng.standard_normal((2, 3, n)) * 3, dtype=WIDE)
        for axis in (-1, 1):
            expected = softmax.log_softmax(x, axis=axis)
            _forced(monkeypatch, common, order)
            got = softmax.log_softmax(x, axis=axis)
            monkeypatch.undo()
            assert got.shape == expected.shape
            assert np.max(np.abs((got - expected).astype(np.float64))) <= 1e-15


def test_lane_sums_add_in_the_documented_order(monkeypatch):
    # 8 float64 lanes (64 bytes): element i goes to lane i mod 8, lanes then added in order.
    e = np.asarray([1.0, 2.0**-53, 2.0**-53, 0, 0, 0, 0, 0, 2.0**-53], dtype=np.float64)
    lane0 = np.float64(1.0) + np.float64(2.0**-53)  # rounds back to 1 (ties to even)
    expected = ((lane0 + 2.0**-53) + 2.0**-53) + 0.0
    _forced(monkeypatch, common, "lanes of 64 bytes")
    total = common.kernel_sum(e[None, :], axis=-1)
    assert total.shape == (1, 1)
    assert total[0, 0] == expected
    _forced(monkeypatch, common, "sequential")
    assert common.kernel_sum(e[None, :], axis=-1)[0, 0] == np.float64(1.0)  # each 2^-53 lost


def test_halved_lanes_add_like_a_horizontal_add(monkeypatch):
    # 4 float64 lanes (32 bytes), halved: (e0 + e2) + (e1 + e3); in order ((e0 + e1) + e2) + e3.
    e = np.asarray([[1.0, 2.0**-53, 2.0**-53, 2.0**-53]], dtype=np.float64)
    _forced(monkeypatch, common, "lanes of 32 bytes, halved")
    assert common.kernel_sum(e, axis=-1)[0, 0] == 1.0 + 2.0**-52  # 1 + 2^-53 ties back to 1
    _forced(monkeypatch, common, "lanes of 32 bytes")
    assert common.kernel_sum(e, axis=-1)[0, 0] == 1.0


def test_adjacent_pair_lanes_add_like_hadd(monkeypatch):
    # 4 float64 lanes (32 bytes) by adjacent pairs: (e0 + e1) + (e2 + e3); halved: (e0 + e2) +
    # (e1 + e3); in order: ((e0 + e1) + e2) + e3. With e = (1, 0, 2^-53, 2^-53) only the pairs
    # add the two 2^-53 first (1 + 2^-52); 1 + 2^-53 ties back to 1 in the other two.
    e = np.asarray([[1.0, 0.0, 2.0**-53, 2.0**-53]], dtype=np.float64)
    _forced(monkeypatch, common, "lanes of 32 bytes, adjacent pairs")
    assert common.kernel_sum(e, axis=-1)[0, 0] == 1.0 + 2.0**-52
    for other in ("lanes of 32 bytes, halved", "lanes of 32 bytes"):
        _forced(monkeypatch, common, other)
        assert common.kernel_sum(e, axis=-1)[0, 0] == 1.0


@pytest.mark.parametrize("n_forms", [1, 2, 3, 4])
def test_the_models_take_every_form(n_forms):
    forms = tuple(f"form {i}" for i in range(n_forms))
    seen: list[str] = []

    def fn(x):
        seen.append(kernel_form(*forms))
        return x

    tolerance.models(fn, (np.ones(3),), {}, "float32")
    assert seen[0] == forms[0]  # the baseline keeps the reference's form
    assert set(seen) == set(forms)


@pytest.mark.parametrize("n_forms", [2, 3, 4])
def test_the_form_models_run_every_form_on_the_exact_inputs(n_forms):
    # Each form adds its own offset; the exact rounded input is 1/3 in float32.
    def fn(x):
        return x + forms.index(kernel_form(*forms))

    forms = tuple(f"form {i}" for i in range(n_forms))
    x = np.full(2, 1 / 3)
    exact = np.float32(1 / 3)
    got = [m[0][0] for m in tolerance.forms(fn, (x,), {}, "float32")]
    assert got == [exact + i for i in range(1, n_forms)]
    assert len(tolerance.models(fn, (x,), {}, "float32")) == n_forms + tolerance.PERTURBED


def test_a_kernel_without_forms_has_no_form_models():
    assert tolerance.forms(lambda x: x * 2, (np.ones(3),), {}, "float32") == []


def test_kernel_form_outside_the_models_is_the_reference_form():
    assert kernel_form("a", "b", "c") == "a"


def test_recomputed_moves_each_value_by_one_ulp_only_inside_the_models():
    x = np.asarray([-4.62, 0.3, 7.0, 0.0], dtype=np.float64)
    np.testing.assert_array_equal(recomputed(x), x)
    with storage_dtype(np.dtype(np.float64)):  # the baseline: no jitter
        np.testing.assert_array_equal(recomputed(x), x)
    eps = np.finfo(np.float64).eps
    with storage_dtype(np.dtype(np.float64), jitter=np.random.default_rng(0)):
        y = recomputed(x)
    assert y.dtype == x.dtype
    moved = np.abs((y.astype(WIDE) - x.astype(WIDE)) / (eps * np.abs(x.astype(WIDE)) + 1e-300))
    assert np.all(np.abs(moved[:3] - 1) < 0.6)  # by eps |x|, rounded to the dtype
    assert y[3] == 0.0


def test_conv2d_bias_gradient_sums_in_every_kernel_order():
    # torch's nn.Conv2d adds the bias gradient over images and positions left to right: one of
    # the form models must be exactly that float32 sum (the thorough-profile false positive).
    rng = np.random.default_rng(3)
    dout, x = rng.standard_normal((2, 1, 2, 4)), rng.standard_normal((2, 1, 3, 7))
    weight, bias = rng.standard_normal((1, 1, 1, 1)), rng.standard_normal(1)
    args = (dout, x, weight, bias)
    models = tolerance.forms(equivariance.conv2d_vjp, args, {"stride": 2}, "float32")
    left_to_right = np.float32(0)
    for term in dout.astype(np.float32).transpose(0, 2, 3, 1).ravel():
        left_to_right = np.float32(left_to_right + term)
    assert [m[2][0] for m in models].count(left_to_right) >= 1


def _assert_exact(got: tuple, expected: tuple) -> None:
    """Each form's gradients equal the reference's in wide arithmetic (to 1e-13, the cancelling
    sums' rounding in WIDE)."""
    for g, e in zip(got, expected, strict=True):
        assert g.shape == e.shape and g.dtype == e.dtype
        scale = np.max(np.abs(e.astype(np.float64)))
        assert np.max(np.abs((g - e).astype(np.float64))) <= 1e-13 * scale


@pytest.mark.parametrize("affine", [True, False])
def test_group_norm_backward_from_sums_is_exact(affine):
    # torch's GroupNorm backward (Σ dy x and Σ dy per channel) equals the x̂ form exactly: the
    # cancellation it suffers when |μ| is large is rounding, not a different truth.
    rng = np.random.default_rng(5)
    for shape, groups in (((2, 4, 3), 2), ((1, 6, 2, 3), 3), ((3, 2, 5), 1), ((2, 4, 1, 2), 4)):
        x = np.asarray(rng.standard_normal(shape) * 2 + 7, dtype=WIDE)
        dy = np.asarray(rng.standard_normal(shape), dtype=WIDE)
        gamma, beta = (np.asarray(rng.standard_normal(shape[1]), dtype=WIDE) for _ in range(2))
        args = (dy, x, gamma, beta) if affine else (dy, x, None, None)
        expected = norm.group_norm_vjp(*args, groups=groups, eps=1e-3)
        with common.forced_form(1) as seen:
            got = norm.group_norm_vjp(*args, groups=groups, eps=1e-3)
        assert seen == [2]
        assert len(got) == len(expected) == (3 if affine else 1)
        _assert_exact(got, expected)


def test_layer_norm_backward_from_sums_is_exact():
    # torch's LayerNorm backward (dx = rstd γ dy + b x + c from the row sums) is exact too.
    rng = np.random.default_rng(6)
    for shape, normalized in (((2, 3, 4), 1), ((5, 6), 1), ((2, 3, 4), 2)):
        x = np.asarray(rng.standard_normal(shape) * 2 + 7, dtype=WIDE)
        dy = np.asarray(rng.standard_normal(shape), dtype=WIDE)
        gamma, beta = (
            np.asarray(rng.standard_normal(shape[-normalized:]), dtype=WIDE) for _ in range(2)
        )
        expected = norm.layer_norm_vjp(dy, x, gamma, beta, eps=1e-3)
        with common.forced_form(1) as seen:
            got = norm.layer_norm_vjp(dy, x, gamma, beta, eps=1e-3)
        assert seen == [2]
        _assert_exact(got, expected)
