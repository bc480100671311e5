"""Normalization layers: values and gradients against the reference, the statistics each layer
normalizes over, running statistics through training steps into evaluation, the identities
between the layers, and the degenerate one-value groups.

Inputs are (N, C, *spatial) for BatchNorm, GroupNorm, InstanceNorm and the CNN LayerNorm,
(N, L, C) for the Transformer LayerNorm and RMSNorm; batch 1 and spatial 1x1 are drawn. A
normalization group with a single value is its own case: BatchNorm training refuses it
(test_batch_norm_one_value_per_channel), InstanceNorm without running statistics outputs β
there (test_instance_norm_one_spatial_element); the value checks draw groups of at least two
values.

Gradient checks draw groups of at least three values (two for RMSNorm). Normalizing removes
the group's mean and scale, so the Jacobian of x̂ has rank n - 2 (n - 1 without centring) plus a
part of size ε/σ²: with fewer values the gradient with respect to x is a cancellation residue
of that size, and its relative error measures the order of a kernel's roundings, not its
correctness (torch float64 LayerNorm with one value returns 1e-14 where the truth is 0).
"""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from conformance import tolerance
from conformance.adapters.base import Unsupported, covers
from conformance.check import CheckFailed, NotCovered
from conformance.ops import OPS
from conformance.strategies import norm_cases, token_norm_cases

# -- helpers -----------------------------------------------------------------------------------


def _batch_axes(ndim: int) -> tuple[int, ...]:
    return (0, *range(2, ndim))


def _standardized_stats(y: np.ndarray, x: np.ndarray, axes: tuple[int, ...], eps: float):
    """Per group (mean(y) / √v, var(y) / v) with v = σ²/(σ² + ε) the variance the normalized
    output must have: "mean 0 and biased variance 1 up to the ε term" as (0, 1). Dividing by v
    keeps the check's conditioning that of y itself (v is tiny when σ² << ε); a group whose
    inputs are all equal (σ = 0, possible after rounding to the dtype) must give (0, 0)."""
    y = np.asarray(y, dtype=np.float64)
    v = x.var(axis=axes)
    scale = np.where(v > 0, v / (v + eps), 1.0)
    mean = y.mean(axis=axes) / np.sqrt(scale)
    var = y.var(axis=axes) / scale
    return np.concatenate([mean.ravel(), var.ravel()]), np.concatenate(
        [np.zeros(v.size), np.where(v > 0, 1.0, 0.0).ravel()]
    )


def _check_statistics(impl, op, x, args, kwargs, axes, eps, group_shape=None) -> None:
    """The adapter's output, without affine step, has the normalized statistics per group;
    group_shape reshapes (N, C, ...) into (N, G, C/G, ...) for GroupNorm."""
    (y,) = impl.run(op, x, *args, **kwargs)
    (x_seen,) = impl.inputs(x)

    def grouped(a):
        return a if group_shape is None else a.reshape(group_shape)

    stats, expected = _standardized_stats(grouped(y), grouped(x_seen), axes, eps)

    def models():
        model_stats = np.stack(
            [
                _standardized_stats(grouped(m), grouped(x_seen), axes, eps)[0]
                for m in impl.baseline(op, x, *args, **kwargs)
            ]
        )
        return model_stats, expected

    impl.relation(f"statistics of {op} per group", stats, expected, models)


def _same_output(impl, label: str, lhs: tuple, rhs: tuple) -> None:
    """Two adapter ops that must agree by an identity of the spec; lhs and rhs are
    (op, args, kwargs) on inputs already rounded to the dtype.

    The two sides are different kernels, each off by its own honest rounding error, in either
    direction. Their honest models run the same reference code and often round identically (a
    float16 mean saved by both sides rounds the same way), so model minus model would allow no
    error at all. Each rhs model is reflected around the rhs truth (2 t - m) instead: a model
    pair then differs by the sum of the two sides' errors, what two honest kernels whose errors
    point in opposite directions show."""
    (y_lhs,) = impl.run(lhs[0], *lhs[1], **lhs[2])
    (y_rhs,) = impl.run(rhs[0], *rhs[1], **rhs[2])
    (t_rhs,) = tolerance.truth(OPS[rhs[0]].forward, rhs[1], rhs[2])

    def models():
        b_lhs = impl.baseline(lhs[0], *lhs[1], **lhs[2])
        b_rhs = 2 * np.asarray(t_rhs, dtype=np.float64) - impl.baseline(rhs[0], *rhs[1], **rhs[2])
        return b_lhs, b_rhs

    impl.relation(label, y_lhs, y_rhs, models)


def _refuses(impl, op: str, *args, **kwargs) -> None:
    """The adapter must refuse this input (raise ValueError or RuntimeError) where nnspec
    states the result is undefined; a returned output is a failure."""
    impl.ops.append(op)
    if not covers(impl.adapter, op):
        raise NotCovered(f"{impl.adapter.name} has no {op!r}")
    a, k = tolerance.rounded_inputs(args, kwargs, impl.dtype)
    try:
        getattr(impl.adapter, op)(*a, **k)
    except Unsupported as exc:
        raise NotCovered(f"{impl.adapter.name} refuses {op!r}: {exc}") from None
    except (ValueError, RuntimeError):
        return
    raise CheckFailed(
        f"{op} returned an output for x {args[0].shape} [{impl.dtype}]: training with one value "
        "per channel is undefined (output beta whatever x is; unbiased variance 0/0) and must "
        "be refused"
    )


def _size(shape) -> int:
    return int(np.prod(shape, dtype=np.int64))


def _bn_group(case) -> int:
    """Values per BatchNorm channel: N times the spatial size."""
    return case.shape[0] * _size(case.shape[2:])


def _running(case) -> dict[str, np.ndarray]:
    mean, var = case.running()
    return {"running_mean": mean, "running_var": var}


# -- BatchNorm, training mode ----------------------------------------------------------------

bn_cases = norm_cases().filter(lambda c: _bn_group(c) >= 2)
bn_grad_cases = norm_cases().filter(lambda c: _bn_group(c) >= 3)


@given(case=bn_cases)
def test_batch_norm_values(impl, case):
    impl.compare("batch_norm", case.x(), *case.affine(), eps=case.eps)


@given(case=bn_grad_cases)
def test_batch_norm_vjp(impl, case):
    impl.compare_vjp("batch_norm", case.cotangent(), case.x(), *case.affine(), eps=case.eps)


@given(case=bn_cases)
def test_batch_norm_statistics(impl, case):
    # Per channel over (N, *spatial): mean 0 and biased variance σ²/(σ²+ε).
    c = case.shape[1]
    axes = _batch_axes(len(case.shape))
    args = (np.ones(c), np.zeros(c))
    _check_statistics(impl, "batch_norm", case.x(), args, {"eps": case.eps}, axes, case.eps)


def _train_then_eval(impl, norm: str, case, steps: int, momentum: float) -> None:
    """Training steps on new batches, each fed the running statistics the adapter returned at
    the step before and compared with the reference started from the same state; then
    evaluation with the final running statistics."""
    gamma, beta = case.affine()
    running_mean, running_var = case.running()
    for step in range(steps):
        _, running_mean, running_var = impl.compare(
            f"{norm}_train",
            case.x(step),
            gamma,
            beta,
            running_mean=running_mean,
            running_var=running_var,
            momentum=momentum,
            eps=case.eps,
        )
    stats = {"running_mean": running_mean, "running_var": running_var}
    impl.compare(f"{norm}_eval", case.x(steps), gamma, beta, **stats, eps=case.eps)


@given(
    case=bn_cases,
    steps=st.integers(2, 4),
    # binary fractions near 0.1, 0.01 and 0.5 (exact in ONNX's float32 momentum attribute;
    # 0.1 itself has test_default_momentum)
    momentum=st.sampled_from((0.125, 2.0**-7, 0.5)),
)
def test_running_statistics(impl, case, steps, momentum):
    # Several training steps, each on a new batch, feeding the running statistics the adapter
    # returned into the next step; then evaluation with the final ones. Each step is compared
    # with the reference started from the same state, so a wrong momentum convention or a
    # biased running variance shows (and is named) at the first step.
    _train_then_eval(impl, "batch_norm", case, steps, momentum)


@given(case=norm_cases(max_batch=1, max_side=1))
def test_batch_norm_one_value_per_channel(impl, case):
    # Batch 1 and spatial 1x1 (or an (1, C) input): one value per channel. Training BatchNorm
    # is undefined there (x̂ ≡ 0, so the output is β whatever x is, and the unbiased running
    # variance n/(n-1) is 0/0); nnspec and PyTorch refuse it.
    gamma, beta = case.affine()
    _refuses(impl, "batch_norm_train", case.x(), gamma, beta, **_running(case), eps=case.eps)
    _refuses(impl, "batch_norm", case.x(), gamma, beta, eps=case.eps)


# -- BatchNorm, evaluation mode --------------------------------------------------------------


@given(case=norm_cases())
def test_batch_norm_eval_values(impl, case):
    # Running statistics far from the batch's own: an evaluation that used batch statistics
    # fails here. Any batch size is fine in evaluation, one value per channel included.
    impl.compare("batch_norm_eval", case.x(), *case.affine(), **_running(case), eps=case.eps)


@given(case=norm_cases())
def test_batch_norm_eval_vjp(impl, case):
    impl.compare_vjp(
        "batch_norm_eval",
        case.cotangent(),
        case.x(),
        *case.affine(),
        **_running(case),
        eps=case.eps,
    )


@given(case=bn_cases)
def test_eval_with_batch_statistics(impl, case):
    # Evaluation with running statistics equal to the batch mean and the biased batch variance
    # is exactly the training-mode output.
    (x,) = impl.inputs(case.x())
    gamma, beta = impl.inputs(*case.affine())
    axes = _batch_axes(x.ndim)
    stats = {"running_mean": x.mean(axis=axes), "running_var": x.var(axis=axes)}
    _same_output(
        impl,
        "eval with batch statistics vs training",
        ("batch_norm_eval", (x, gamma, beta), {**stats, "eps": case.eps}),
        ("batch_norm", (x, gamma, beta), {"eps": case.eps}),
    )


# -- LayerNorm -------------------------------------------------------------------------------


def _cnn_ln_params(case):
    return case.affine(case.shape[1:])


cnn_ln_cases = norm_cases(spatial_dims=(1, 2)).filter(lambda c: _size(c.shape[1:]) >= 2)
cnn_ln_grad_cases = norm_cases(spatial_dims=(1, 2)).filter(lambda c: _size(c.shape[1:]) >= 3)


@given(case=cnn_ln_cases)
def test_layer_norm_cnn_values(impl, case):
    # CNN form: per sample over (C, H, W); γ and β (C, H, W) (torch nn.LayerNorm([C, H, W])).
    impl.compare("layer_norm", case.x(), *_cnn_ln_params(case), eps=case.eps)


@given(case=cnn_ln_grad_cases)
def test_layer_norm_cnn_vjp(impl, case):
    impl.compare_vjp("layer_norm", case.cotangent(), case.x(), *_cnn_ln_params(case), eps=case.eps)


@given(case=cnn_ln_cases)
def test_layer_norm_cnn_statistics(impl, case):
    shape = case.shape[1:]
    axes = tuple(range(1, len(case.shape)))
    args = (np.ones(shape), np.zeros(shape))
    _check_statistics(impl, "layer_norm", case.x(), args, {"eps": case.eps}, axes, case.eps)


@given(case=token_norm_cases())
def test_layer_norm_values(impl, case):
    # Transformer form: per token (n, l) over C; γ and β (C,).
    impl.compare("layer_norm", case.x(), *case.affine(case.shape[-1:]), eps=case.eps)


@given(case=token_norm_cases(min_features=3))
def test_layer_norm_vjp(impl, case):
    params = case.affine(case.shape[-1:])
    impl.compare_vjp("layer_norm", case.cotangent(), case.x(), *params, eps=case.eps)


@given(case=token_norm_cases())
def test_layer_norm_statistics(impl, case):
    c = case.shape[-1]
    args = (np.ones(c), np.zeros(c))
    _check_statistics(impl, "layer_norm", case.x(), args, {"eps": case.eps}, (2,), case.eps)


# -- GroupNorm -------------------------------------------------------------------------------

gn_cases = norm_cases(grouped=True).filter(lambda c: c.per_group >= 2)
gn_grad_cases = norm_cases(grouped=True).filter(lambda c: c.per_group >= 3)


@given(case=gn_cases)
def test_group_norm_values(impl, case):
    impl.compare("group_norm", case.x(), *case.affine(), groups=case.groups, eps=case.eps)


@given(case=gn_grad_cases)
def test_group_norm_vjp(impl, case):
    impl.compare_vjp(
        "group_norm", case.cotangent(), case.x(), *case.affine(), groups=case.groups, eps=case.eps
    )


@given(case=gn_cases)
def test_group_norm_statistics(impl, case):
    n, c = case.shape[:2]
    grouped = (n, case.groups, c // case.groups, *case.shape[2:])
    axes = tuple(range(2, len(grouped)))
    args, kwargs = (np.ones(c), np.zeros(c)), {"groups": case.groups, "eps": case.eps}
    _check_statistics(impl, "group_norm", case.x(), args, kwargs, axes, case.eps, grouped)


@given(case=norm_cases(spatial_dims=(1, 2)).filter(lambda c: _size(c.shape[1:]) >= 2))
def test_group_norm_one_group(impl, case):
    # GroupNorm with one group is LayerNorm for CNNs (per sample over C, H, W).
    (x,) = impl.inputs(case.x())
    c, shape = case.shape[1], case.shape[1:]
    _same_output(
        impl,
        "group_norm(groups=1) vs layer_norm over (C, H, W)",
        ("group_norm", (x, np.ones(c), np.zeros(c)), {"groups": 1, "eps": case.eps}),
        ("layer_norm", (x, np.ones(shape), np.zeros(shape)), {"eps": case.eps}),
    )


@given(case=norm_cases(spatial_dims=(1, 2)).filter(lambda c: _size(c.shape[2:]) >= 2))
def test_group_norm_channel_groups(impl, case):
    # GroupNorm with one channel per group (G = C) is InstanceNorm.
    (x,) = impl.inputs(case.x())
    c = case.shape[1]
    args = (x, np.ones(c), np.zeros(c))
    _same_output(
        impl,
        "group_norm(groups=C) vs instance_norm",
        ("group_norm", args, {"groups": c, "eps": case.eps}),
        ("instance_norm", args, {"eps": case.eps}),
    )


# -- InstanceNorm ----------------------------------------------------------------------------

in_cases = norm_cases(spatial_dims=(1, 2)).filter(lambda c: _size(c.shape[2:]) >= 2)
in_grad_cases = norm_cases(spatial_dims=(1, 2)).filter(lambda c: _size(c.shape[2:]) >= 3)


@given(case=in_cases)
def test_instance_norm_values(impl, case):
    impl.compare("instance_norm", case.x(), *case.affine(), eps=case.eps)


@given(case=in_grad_cases)
def test_instance_norm_vjp(impl, case):
    impl.compare_vjp("instance_norm", case.cotangent(), case.x(), *case.affine(), eps=case.eps)


@given(case=in_cases)
def test_instance_norm_affine_false(impl, case):
    # affine=False (torch's InstanceNorm default): γ = β = None.
    impl.compare("instance_norm", case.x(), eps=case.eps)


@given(case=in_grad_cases)
def test_instance_norm_affine_false_vjp(impl, case):
    impl.compare_vjp("instance_norm", case.cotangent(), case.x(), eps=case.eps)


@given(case=in_cases)
def test_instance_norm_statistics(impl, case):
    c = case.shape[1]
    axes = tuple(range(2, len(case.shape)))
    args = (np.ones(c), np.zeros(c))
    _check_statistics(impl, "instance_norm", case.x(), args, {"eps": case.eps}, axes, case.eps)


@given(
    case=in_cases,
    steps=st.integers(2, 3),
    momentum=st.sampled_from((0.125, 0.5)),
)
def test_instance_norm_running_statistics(impl, case, steps, momentum):
    # track_running_stats: training uses the instance statistics and moves the running ones
    # towards their batch average; evaluation then normalizes with the running ones.
    _train_then_eval(impl, "instance_norm", case, steps, momentum)


@given(case=norm_cases(spatial_dims=(1, 2)))
def test_instance_norm_eval_vjp(impl, case):
    # Evaluation with running statistics is an affine map, like BatchNorm's; γ's gradient sums
    # the per-instance shares.
    impl.compare_vjp(
        "instance_norm_eval",
        case.cotangent(),
        case.x(),
        *case.affine(),
        **_running(case),
        eps=case.eps,
    )


@given(case=norm_cases(spatial_dims=(1, 2), max_side=1))
def test_instance_norm_one_spatial_element(impl, case):
    # One spatial element: each (n, c) is its own mean and the output is β (defined without
    # running statistics; PyTorch refuses it in training mode, reported as not covered). The
    # math cancels x exactly, but a kernel computing γ x/√(σ²+ε) + (β - γ μ/√(σ²+ε)) rounds
    # terms of size |x|/√ε: x is drawn small against √ε (|x| ~ 0.01, ε >= 2^-10) so that this
    # checks the semantics (β, not NaN, not a refusal), not that rounding.
    x = 0.01 * case.cotangent()
    impl.compare("instance_norm", x, *case.affine(), eps=max(case.eps, 2.0**-10))


# -- RMSNorm ---------------------------------------------------------------------------------


@given(case=token_norm_cases(min_features=1))
def test_rms_norm_values(impl, case):
    impl.compare("rms_norm", case.x(), case.affine(case.shape[-1:])[0], eps=case.eps)


@given(case=token_norm_cases(min_features=2))
def test_rms_norm_vjp(impl, case):
    gamma = case.affine(case.shape[-1:])[0]
    impl.compare_vjp("rms_norm", case.cotangent(), case.x(), gamma, eps=case.eps)


@given(case=token_norm_cases(min_features=1))
def test_rms_norm_statistics(impl, case):
    # mean(y²) = mean(x²)/(mean(x²) + ε) per token: 1 up to ε (no centring: the mean stays).
    # Compared as a ratio to that value, like the other statistics.
    x = case.x()
    gamma = np.ones(case.shape[-1])
    (y,) = impl.run("rms_norm", x, gamma, eps=case.eps)
    (x_seen,) = impl.inputs(x)
    ms = (x_seen**2).mean(axis=-1)
    target = np.where(ms > 0, ms / (ms + case.eps), 1.0)
    expected = np.where(ms > 0, 1.0, 0.0)

    def models():
        baseline = impl.baseline("rms_norm", x, gamma, eps=case.eps)
        return np.stack([(m**2).mean(axis=-1) / target for m in baseline]), expected

    ratio = (y**2).mean(axis=-1) / target
    impl.relation("mean square of rms_norm per token", ratio, expected, models)


@given(case=token_norm_cases())
def test_rms_norm_centred_is_layer_norm(impl, case):
    # RMSNorm of x - mean(x) is LayerNorm with β = 0.
    (x,) = impl.inputs(case.x())
    gamma = impl.inputs(case.affine(case.shape[-1:])[0])[0]
    centred = x - x.mean(axis=-1, keepdims=True)
    _same_output(
        impl,
        "rms_norm(x - mean) vs layer_norm(x)",
        ("rms_norm", (centred, gamma), {"eps": case.eps}),
        ("layer_norm", (x, gamma, np.zeros_like(gamma)), {"eps": case.eps}),
    )


@given(case=bn_cases)
def test_default_eps(impl, case):
    # ε = 1e-5, PyTorch's and ONNX's default, where it matters (σ² ~ ε: x of spread 0.003).
    # 1e-5 is not a binary fraction: an implementation that keeps it in float32 (ONNX's
    # epsilon attribute is a float) normalizes a float64 tensor with 1e-5 (1 - 2.5e-9).
    x = 0.003 * case.cotangent()
    impl.compare("batch_norm", x, *case.affine(), eps=1e-5)


@given(case=bn_cases)
def test_default_momentum(impl, case):
    # One training step with momentum 0.1, PyTorch's default, which is not a binary fraction
    # either (ONNX's momentum attribute is a float: float32(0.1) = 0.1 + 1.5e-9).
    gamma, beta = case.affine()
    impl.compare(
        "batch_norm_train", case.x(), gamma, beta, **_running(case), momentum=0.1, eps=case.eps
    )
