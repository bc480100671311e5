"""Normalization mutants: each a bug people really make in a norm layer."""

import numpy as np

from conformance.adapters.numpy_reference import NumpyReference
from reference import norm


def _standardize(x, axes, eps, eps_inside=True):
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    denom = np.sqrt(var + eps) if eps_inside else np.sqrt(var) + eps
    return ((x - mean) / denom).astype(x.dtype)


def _channel(p, ndim):
    return p.reshape((-1,) + (1,) * (ndim - 2))


class LayerNormPerChannel(NumpyReference):
    """LayerNorm with its statistics over the wrong axes: per feature (channel) over the
    batch and tokens, i.e. BatchNorm's grouping, instead of per sample/token over the
    features."""

    name = "mutant-norm-layer-norm-per-channel"

    def layer_norm(self, x, gamma, beta, eps=1e-5):
        axes = tuple(range(x.ndim - gamma.ndim))
        return (gamma * _standardize(x, axes, eps) + beta).astype(x.dtype)


class BatchNormPerSample(NumpyReference):
    """BatchNorm with its statistics per sample over (C, H, W) instead of per channel over
    (N, H, W)."""

    name = "mutant-norm-batch-norm-per-sample"

    def _bn(self, x, gamma, beta, eps):
        xhat = _standardize(x, tuple(range(1, x.ndim)), eps)
        return (_channel(gamma, x.ndim) * xhat + _channel(beta, x.ndim)).astype(x.dtype)

    def batch_norm(self, x, gamma, beta, eps=1e-5):
        norm.batch_norm(x, gamma, beta, eps)  # the same refusals
        return self._bn(x, gamma, beta, eps)

    def batch_norm_train(self, x, gamma, beta, *, running_mean, running_var, **options):
        _, mean, var = norm.batch_norm_train(
            x, gamma, beta, running_mean=running_mean, running_var=running_var, **options
        )
        return self._bn(x, gamma, beta, options.get("eps", 1e-5)), mean, var


class EpsOutsideSqrt(NumpyReference):
    """(x - μ) / (√σ² + ε): ε added outside the square root (LayerNorm and BatchNorm)."""

    name = "mutant-norm-eps-outside-sqrt"

    def layer_norm(self, x, gamma, beta, eps=1e-5):
        axes = tuple(range(x.ndim - gamma.ndim, x.ndim))
        return (gamma * _standardize(x, axes, eps, eps_inside=False) + beta).astype(x.dtype)

    def batch_norm(self, x, gamma, beta, eps=1e-5):
        norm.batch_norm(x, gamma, beta, eps)
        xhat = _standardize(x, (0, *range(2, x.ndim)), eps, eps_inside=False)
        return (_channel(gamma, x.ndim) * xhat + _channel(beta, x.ndim)).astype(x.dtype)


class RunningVarBiased(NumpyReference):
    """The running variance takes the biased batch variance where PyTorch's convention (the
    canonical one, declared by leaving the variant out) takes n/(n-1) times it."""

    name = "mutant-norm-running-var-biased"

    def batch_norm_train(self, *args, **kwargs):
        return norm.batch_norm_train(*args, **kwargs, running_var_estimate="biased")


class MomentumOldWeight(NumpyReference):
    """Keras' momentum convention (m weights the old running value) under PyTorch's
    declaration."""

    name = "mutant-norm-momentum-old-weight"

    def batch_norm_train(self, *args, **kwargs):
        return norm.batch_norm_train(*args, **kwargs, momentum_convention="old_weight")


class EvalUsesBatchStatistics(NumpyReference):
    """Evaluation mode that still normalizes with the batch's own statistics (a model left in
    training mode), ignoring the running ones."""

    name = "mutant-norm-eval-uses-batch-statistics"

    def batch_norm_eval(self, x, gamma, beta, *, running_mean, running_var, eps=1e-5):
        xhat = _standardize(x, (0, *range(2, x.ndim)), eps)
        return (_channel(gamma, x.ndim) * xhat + _channel(beta, x.ndim)).astype(x.dtype)


class GammaBetaSwapped(NumpyReference):
    """y = β x̂ + γ: the lecture notes' β in front of x̂, for every normalization."""

    name = "mutant-norm-gamma-beta-swapped"

    def batch_norm(self, x, gamma, beta, eps=1e-5):
        return norm.batch_norm(x, beta, gamma, eps)

    def batch_norm_train(self, x, gamma, beta, **kwargs):
        return norm.batch_norm_train(x, beta, gamma, **kwargs)

    def batch_norm_eval(self, x, gamma, beta, **kwargs):
        return norm.batch_norm_eval(x, beta, gamma, **kwargs)

    def layer_norm(self, x, gamma, beta, eps=1e-5):
        return norm.layer_norm(x, beta, gamma, eps)

    def group_norm(self, x, gamma, beta, groups=1, eps=1e-5):
        return norm.group_norm(x, beta, gamma, groups, eps)

    def instance_norm(self, x, gamma=None, beta=None, eps=1e-5):
        return norm.instance_norm(x, beta, gamma, eps)
