"""reference.norm: vjps against finite differences, the statistics each layer normalizes over,
running statistics, the degenerate one-value case and bad input."""

import numpy as np
import pytest

from reference import norm
from tests.gradcheck import check_gradient_entries, check_vjp


def _rng(seed=20):
    return np.random.default_rng(seed + 100)  # not check_vjp's seed: dy must not be x


def _channel_params(c, seed=1):
    rng = _rng(seed)
    return 1 + 0.5 * rng.standard_normal(c), rng.standard_normal(c)


SHAPES = [(2, 3), (3, 2, 4), (2, 3, 2, 2), (1, 2, 1, 3)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_vjp(shape, affine):
    x = _rng().standard_normal(shape) * 2 + 1
    gamma, beta = _channel_params(shape[1]) if affine else (None, None)

    def f(x, *p):
        return norm.batch_norm(x, *(p or (None, None)), eps=1e-3)

    def f_vjp(dy, x, *p):
        return norm.batch_norm_vjp(dy, x, *(p or (None, None)), eps=1e-3)

    args = [x, gamma, beta] if affine else [x]
    check_vjp(f, f_vjp, args)
    check_gradient_entries(f, f_vjp, args)


@pytest.mark.parametrize("shape", SHAPES)
def test_batch_norm_eval_vjp(shape):
    rng = _rng(2)
    x = rng.standard_normal(shape)
    gamma, beta = _channel_params(shape[1])
    stats = {
        "running_mean": rng.standard_normal(shape[1]),
        "running_var": rng.random(shape[1]) + 0.5,
    }

    def f(x, g, b):
        return norm.batch_norm_eval(x, g, b, **stats)

    def f_vjp(dy, x, g, b):
        return norm.batch_norm_eval_vjp(dy, x, g, b, **stats)

    check_gradient_entries(f, f_vjp, [x, gamma, beta])


@pytest.mark.parametrize("shape", [(2, 5), (3, 2, 4), (2, 3, 2, 2)])
@pytest.mark.parametrize("k", [1, 2])
def test_layer_norm_vjp(shape, k):
    rng = _rng(3)
    x = rng.standard_normal(shape) * 3
    gamma = 1 + 0.3 * rng.standard_normal(shape[-k:])
    beta = rng.standard_normal(shape[-k:])

    def f(x, g, b):
        return norm.layer_norm(x, g, b, eps=1e-4)

    def f_vjp(dy, x, g, b):
        return norm.layer_norm_vjp(dy, x, g, b, eps=1e-4)

    check_vjp(f, f_vjp, [x, gamma, beta])
    check_gradient_entries(f, f_vjp, [x, gamma, beta])


@pytest.mark.parametrize(
    ("shape", "groups"), [((2, 4, 3), 2), ((1, 6, 2, 2), 3), ((2, 3, 1, 1), 3)]
)
def test_group_norm_vjp(shape, groups):
    x = _rng(4).standard_normal(shape)
    gamma, beta = _channel_params(shape[1])

    def f(x, g, b):
        return norm.group_norm(x, g, b, groups=groups)

    def f_vjp(dy, x, g, b):
        return norm.group_norm_vjp(dy, x, g, b, groups=groups)

    check_gradient_entries(f, f_vjp, [x, gamma, beta])


@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("shape", [(2, 3, 4), (1, 2, 2, 3)])
def test_instance_norm_vjp(shape, affine):
    x = _rng(5).standard_normal(shape)
    params = list(_channel_params(shape[1])) if affine else []

    def f(x, *p):
        return norm.instance_norm(x, *p)

    def f_vjp(dy, x, *p):
        return norm.instance_norm_vjp(dy, x, *p)

    check_gradient_entries(f, f_vjp, [x, *params])


@pytest.mark.parametrize("shape", [(2, 5), (2, 3, 4)])
def test_rms_norm_vjp(shape):
    rng = _rng(6)
    x = rng.standard_normal(shape)
    gamma = 1 + 0.3 * rng.standard_normal(shape[-1:])

    def f(x, g):
        return norm.rms_norm(x, g, eps=1e-3)

    def f_vjp(dy, x, g):
        return norm.rms_norm_vjp(dy, x, g, eps=1e-3)

    check_vjp(f, f_vjp, [x, gamma])
    check_gradient_entries(f, f_vjp, [x, gamma])


# -- which values each layer normalizes together -------------------------------------------


def _standardized(x, axes, eps):
    mean = x.mean(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(x.var(axis=axes, keepdims=True) + eps)


def test_statistics_axes_against_numpy_var():
    x = _rng(7).standard_normal((3, 4, 2, 5))
    ones, zeros = np.ones(4), np.zeros(4)
    eps = 1e-3
    np.testing.assert_allclose(
        norm.batch_norm(x, ones, zeros, eps), _standardized(x, (0, 2, 3), eps)
    )
    np.testing.assert_allclose(norm.instance_norm(x, eps=eps), _standardized(x, (2, 3), eps))
    np.testing.assert_allclose(
        norm.layer_norm(x, np.ones((4, 2, 5)), np.zeros((4, 2, 5)), eps),
        _standardized(x, (1, 2, 3), eps),
    )
    grouped = _standardized(x.reshape(3, 2, 2, 2, 5), (2, 3, 4), eps).reshape(x.shape)
    np.testing.assert_allclose(norm.group_norm(x, ones, zeros, groups=2, eps=eps), grouped)
    rms = x / np.sqrt((x**2).mean(axis=-1, keepdims=True) + eps)
    np.testing.assert_allclose(norm.rms_norm(x, np.ones(5), eps), rms)


def test_gamma_scales_and_beta_shifts():
    x = _rng(8).standard_normal((4, 3))
    gamma, beta = np.array([2.0, 3.0, 4.0]), np.array([-1.0, 0.5, 7.0])
    y = norm.layer_norm(x, gamma, beta, eps=0.0)
    xhat = _standardized(x, (1,), 0.0)
    np.testing.assert_allclose(y, gamma * xhat + beta)


def test_running_statistics_update():
    rng = _rng(9)
    x = rng.standard_normal((4, 2, 3)) * 2 + 3
    rm, rv = rng.standard_normal(2), rng.random(2) + 0.5
    g, b = _channel_params(2)
    batch_mean = x.mean(axis=(0, 2))
    unbiased = x.var(axis=(0, 2), ddof=1)
    biased = x.var(axis=(0, 2))
    _, m1, v1 = norm.batch_norm_train(x, g, b, running_mean=rm, running_var=rv, momentum=0.1)
    np.testing.assert_allclose(m1, 0.9 * rm + 0.1 * batch_mean)
    np.testing.assert_allclose(v1, 0.9 * rv + 0.1 * unbiased)
    _, m2, v2 = norm.batch_norm_train(
        x,
        g,
        b,
        running_mean=rm,
        running_var=rv,
        momentum=0.99,
        running_var_estimate="biased",
        momentum_convention="old_weight",
    )
    np.testing.assert_allclose(m2, 0.99 * rm + 0.01 * batch_mean)
    np.testing.assert_allclose(v2, 0.99 * rv + 0.01 * biased)
    # InstanceNorm's running stats: batch average of per-instance statistics
    _, m3, v3 = norm.instance_norm_train(x, g, b, running_mean=rm, running_var=rv, momentum=0.5)
    np.testing.assert_allclose(m3, 0.5 * rm + 0.5 * x.mean(axis=2).mean(axis=0))
    np.testing.assert_allclose(v3, 0.5 * rv + 0.5 * x.var(axis=2, ddof=1).mean(axis=0))


def test_eval_uses_running_statistics():
    rng = _rng(10)
    x = rng.standard_normal((3, 2, 2))
    rm, rv = np.array([1.0, -2.0]), np.array([4.0, 0.25])
    g, b = _channel_params(2)
    y = norm.batch_norm_eval(x, g, b, running_mean=rm, running_var=rv, eps=0.0)
    expected = g[:, None] * (x - rm[:, None]) / np.sqrt(rv[:, None]) + b[:, None]
    np.testing.assert_allclose(y, expected)


# -- degenerate groups -----------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(1, 3), (1, 3, 1), (1, 3, 1, 1)])
def test_batch_norm_training_refuses_one_value_per_channel(shape):
    x = np.ones(shape)
    g, b = _channel_params(3)
    for call in (
        lambda: norm.batch_norm(x, g, b),
        lambda: norm.batch_norm_vjp(x, x, g, b),
        lambda: norm.batch_norm_train(x, g, b, running_mean=b, running_var=g**2),
    ):
        with pytest.raises(ValueError, match="more than 1 value per channel"):
            call()
    # evaluation mode is an affine map and is defined for any batch
    assert norm.batch_norm_eval(x, g, b, running_mean=b, running_var=g**2).shape == shape


def test_one_value_per_group_gives_beta_and_no_gradient():
    x = _rng(11).standard_normal((2, 3, 1, 1))
    g, b = _channel_params(3)
    for y in (norm.group_norm(x, g, b, groups=3), norm.instance_norm(x, g, b)):
        np.testing.assert_array_equal(y, np.broadcast_to(b[:, None, None], x.shape))
    (dx, _, _) = norm.group_norm_vjp(np.ones_like(x), x, g, b, groups=3)
    np.testing.assert_array_equal(dx, 0)


# -- bad input: one clear ValueError naming the sizes ---------------------------------------


def test_layer_norm_shape_mismatch():
    x = np.zeros((2, 3, 5))
    with pytest.raises(ValueError, match=r"normalized_shape \(4,\).*\(2, 3, 5\)"):
        norm.layer_norm(x, np.ones(4), np.zeros(4))
    with pytest.raises(ValueError, match=r"normalized_shape \(5, 3\)"):
        norm.layer_norm(x, np.ones((5, 3)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="beta shape"):
        norm.layer_norm(x, np.ones(5), np.zeros(3))
    with pytest.raises(ValueError, match="normalized_shape"):
        norm.rms_norm(x, np.ones(3))


def test_groups_must_divide_channels():
    with pytest.raises(ValueError, match=r"channels 6 .* groups=4"):
        norm.group_norm(np.zeros((2, 6, 3)), np.ones(6), np.zeros(6), groups=4)
    with pytest.raises(ValueError, match="groups=0"):
        norm.group_norm(np.zeros((2, 6, 3)), np.ones(6), np.zeros(6), groups=0)


@pytest.mark.parametrize(
    "call",
    [
        lambda x, p: norm.batch_norm(x, p, p, eps=-1e-5),
        lambda x, p: norm.batch_norm_eval(x, p, p, running_mean=p, running_var=p, eps=-1.0),
        lambda x, p: norm.layer_norm(x, np.ones(4), np.ones(4), eps=-1e-5),
        lambda x, p: norm.group_norm(x, p, p, groups=1, eps=-1e-5),
        lambda x, p: norm.instance_norm(x, eps=-1e-5),
        lambda x, p: norm.rms_norm(x, np.ones(4), eps=-1e-6),
    ],
)
def test_negative_eps(call):
    with pytest.raises(ValueError, match="eps must be >= 0"):
        call(np.zeros((2, 3, 4)), np.ones(3))


def test_per_channel_parameter_shapes_and_momentum():
    x = np.zeros((2, 3, 4))
    with pytest.raises(ValueError, match=r"\(2,\) does not match the 3 channels"):
        norm.batch_norm(x, np.ones(2), np.zeros(2))
    with pytest.raises(ValueError, match="momentum"):
        norm.batch_norm_train(
            x,
            np.ones(3),
            np.zeros(3),
            running_mean=np.zeros(3),
            running_var=np.ones(3),
            momentum=1.5,
        )
    with pytest.raises(ValueError, match="both"):
        norm.instance_norm(x, np.ones(3), None)


@pytest.mark.parametrize("affine", [True, False])
def test_instance_norm_eval_vjp(affine):
    rng = _rng(12)
    x = rng.standard_normal((3, 2, 4))
    params = list(_channel_params(2)) if affine else []
    stats = {"running_mean": rng.standard_normal(2), "running_var": rng.random(2) + 0.5}

    def f(x, *p):
        return norm.instance_norm_eval(x, *p, **stats)

    def f_vjp(dy, x, *p):
        return norm.instance_norm_eval_vjp(dy, x, *p, **stats)

    check_gradient_entries(f, f_vjp, [x, *params])


def test_instance_norm_running_statistics_refuse_one_spatial_element():
    x = np.ones((2, 3, 1, 1))
    with pytest.raises(ValueError, match="more than 1 spatial element"):
        norm.instance_norm_train(x, running_mean=np.zeros(3), running_var=np.ones(3))
