"""Normalization layers: BatchNorm (training, running statistics, evaluation), LayerNorm (CNN
and Transformer), GroupNorm, InstanceNorm, RMSNorm; forward and hand-written vjp, any float dtype.

Lecture notes ("Normalization"): x ∈ R^{N×C×(H×W)} (or N×L×C in a Transformer),

    LN(x_i) = γ · (x_i - μ) / √(σ² + ε) + β

The notes write β where γ belongs (β · (x_i - μ)/√(σ²+ε)): the scale is γ and the shift β, as
in Ioffe & Szegedy and every library; spec/norm.py states the right form and the swap is a
mutant. The statistics are the mean μ and the biased variance σ² = mean((x - μ)²) of one
normalization group, and ε sits inside the square root:

    BatchNorm          per channel c over (N, H, W)          μ_c = 1/(NHW) Σ_{n,h,w} x_{n,c,h,w}
    LayerNorm (CNN)    per sample n over (C, H, W)           μ_n = 1/(CHW) Σ_{c,h,w} x_{n,c,h,w}
    LayerNorm (Trf.)   per token (n, l) over C               μ_{n,l} = 1/C Σ_c x_{n,l,c}
    GroupNorm          per (sample, group of C/G channels)
    InstanceNorm       per (sample, channel) over (H, W)
    RMSNorm            no centring: y = γ x / √(mean(x²) + ε) over the trailing dims

Layouts: x (N, C, *spatial) with any number of spatial dims (BatchNorm1d/2d/3d) for BatchNorm,
GroupNorm and InstanceNorm, whose γ and β are per channel (C,). LayerNorm and RMSNorm normalize
the trailing dims given by γ's shape (torch's normalized_shape): γ (C, H, W) for the CNN form on
(N, C, H, W), γ (C,) for the Transformer form on (N, L, C). γ = β = None is affine=False.

BatchNorm in training normalizes with the batch statistics and returns updated running
statistics; keyword options are the declared variants (conformance/variants.py):
  running_var_estimate  "unbiased": running_var takes the batch variance times n/(n-1), n the
                        values per channel (PyTorch); "biased": the variance used to normalize
                        (ONNX BatchNormalization, Keras)
  momentum_convention   "new_weight": running = (1 - m) running + m batch (PyTorch, m = 0.1);
                        "old_weight": running = m running + (1 - m) batch (Keras m = 0.99, ONNX
                        m = 0.9)
With one value per channel (batch 1 and spatial 1x1) training BatchNorm is undefined: the batch
mean is the value itself, so x̂ ≡ 0 and the output is β whatever x is, and the unbiased variance
n/(n-1) is 0/0. nnspec refuses it with a ValueError, as PyTorch does ("Expected more than 1
value per channel when training"). The same holds for InstanceNorm's running statistics with one
spatial element. Without running statistics a single value per group is well defined (σ² = 0,
x̂ = 0: the output is β and no gradient reaches x).

The statistics a kernel saves for the backward pass (μ and 1/√(σ² + ε) per group) go through
reference.common.store: the tolerance model rounds them to the tensor's dtype, as torch's CPU
kernels keep them (float16 mean and rstd for a float16 input).

Evaluation mode normalizes with the running statistics instead: y = γ (x - mean)/√(var + ε) + β,
an affine map of x. Running statistics are keyword arguments: state, not differentiated inputs.

Bad input (shapes that do not fit, channels not divisible by groups, negative ε, momentum outside
[0, 1]) raises one ValueError naming the sizes.
"""

from __future__ import annotations

import numpy as np

from reference.common import kernel_form, store, sum_of_products

# -- checks ----------------------------------------------------------------------------------


def _check_eps(eps: float) -> None:
    if not eps >= 0:
        raise ValueError(f"eps must be >= 0 (it is added to the variance under the root): {eps}")


def _check_momentum(momentum: float) -> None:
    if not 0 <= momentum <= 1:
        raise ValueError(f"momentum must be in [0, 1]: {momentum}")


def _check_channels(x: np.ndarray, *params: np.ndarray | None, min_ndim: int = 2) -> int:
    """x (N, C, *spatial); every given per-channel array (C,). Returns C."""
    if x.ndim < min_ndim:
        raise ValueError(
            f"x must be (N, C{', *spatial' if min_ndim > 2 else ''}) with at least {min_ndim} "
            f"dims, got shape {x.shape}"
        )
    channels = x.shape[1]
    for p in params:
        if p is not None and p.shape != (channels,):
            raise ValueError(
                f"per-channel parameter of shape {p.shape} does not match the {channels} "
                f"channels of x {x.shape}: expected ({channels},)"
            )
    return channels


def _check_affine_pair(gamma: np.ndarray | None, beta: np.ndarray | None) -> None:
    if (gamma is None) != (beta is None):
        raise ValueError("gamma and beta must both be given (affine) or both be None")


def _check_trailing(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray | None) -> tuple:
    """normalized_shape = gamma.shape must be the trailing dims of x. Returns the axes."""
    shape = gamma.shape
    if gamma.ndim == 0 or gamma.ndim > x.ndim or x.shape[x.ndim - gamma.ndim :] != shape:
        raise ValueError(
            f"normalized_shape {shape} (the shape of gamma) does not match the trailing "
            f"dimensions of x {x.shape}"
        )
    if beta is not None and beta.shape != shape:
        raise ValueError(f"beta shape {beta.shape} differs from gamma shape {shape}")
    return tuple(range(x.ndim - gamma.ndim, x.ndim))


def _check_groups(channels: int, groups: int) -> None:
    if not (isinstance(groups, int | np.integer) and groups >= 1 and channels % groups == 0):
        raise ValueError(f"channels {channels} are not divisible into groups={groups}")


def _batch_axes(x: np.ndarray) -> tuple[int, ...]:
    return (0, *range(2, x.ndim))  # everything but the channel axis


def _check_batch_statistics(x: np.ndarray) -> None:
    per_channel = x.size // x.shape[1] if x.shape[1] else 0
    if per_channel < 2:
        raise ValueError(
            f"batch_norm in training needs more than 1 value per channel, got x {x.shape} "
            "(batch 1 and spatial size 1): the output would be beta whatever x is, and the "
            "unbiased running variance n/(n-1) is 0/0"
        )


# -- building blocks -------------------------------------------------------------------------


def _per_channel(p: np.ndarray, ndim: int) -> np.ndarray:
    """(C,) -> (C, 1, ..., 1), broadcasting against (N, C, *spatial)."""
    return p.reshape((-1,) + (1,) * (ndim - 2))


def _moments(x: np.ndarray, axes: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and biased variance over axes (kept), two-pass as a careful kernel computes them."""
    mean = x.mean(axis=axes, keepdims=True)
    squares = x - mean
    squares *= squares  # (x - μ)², in place: one temporary of x's size
    var = squares.mean(axis=axes, keepdims=True)
    return mean.astype(x.dtype, copy=False), var.astype(x.dtype, copy=False)


def _inv_std(var: np.ndarray, eps: float) -> np.ndarray:
    one = np.ones((), dtype=var.dtype)
    return one / np.sqrt(var + var.dtype.type(eps))  # ε inside the square root


def _saved_statistics(x: np.ndarray, axes: tuple[int, ...], eps: float):
    """μ and 1/√(σ² + ε) as a kernel keeps them for the backward pass (store: in the tensor's
    dtype, as torch's CPU kernels save mean and rstd; its BatchNorm also normalizes with them)."""
    mean, var = _moments(x, axes)
    return store(mean), store(_inv_std(var, eps))


def _normalized(x: np.ndarray, axes: tuple[int, ...], eps: float):
    """(x̂, 1/√(σ² + ε)): x̂ = (x - μ) / √(σ² + ε) from the saved statistics."""
    mean, inv = _saved_statistics(x, axes, eps)
    return _centered(x, mean, inv), inv


def _centered(x: np.ndarray, mean: np.ndarray, inv: np.ndarray) -> np.ndarray:
    xhat = x - mean
    xhat *= inv
    return xhat.astype(x.dtype, copy=False)


def normalize(x: np.ndarray, axes: tuple[int, ...], eps: float) -> np.ndarray:
    """x̂ = (x - μ) / √(σ² + ε) with μ, σ² over axes: mean 0 and variance σ²/(σ²+ε) there."""
    return _normalized(x, axes, eps)[0]


def _normalize_backward(dxhat, xhat, inv, axes: tuple[int, ...]) -> np.ndarray:
    """dx = (1/√(σ²+ε)) (dx̂ - mean(dx̂) - x̂ mean(dx̂ x̂)) from x̂ and 1/√(σ²+ε) as the forward
    computed them (a kernel's backward reads the saved statistics once for dx, dγ and dβ)."""
    mean_d = dxhat.mean(axis=axes, keepdims=True)
    product = dxhat * xhat
    mean_dx = product.mean(axis=axes, keepdims=True)
    dx = dxhat - mean_d
    dx -= np.multiply(xhat, mean_dx, out=product)  # product's buffer reused: x̂ mean(dx̂ x̂)
    dx *= inv
    return dx.astype(xhat.dtype, copy=False)


def normalize_vjp(dxhat: np.ndarray, x: np.ndarray, axes: tuple[int, ...], eps: float):
    """dx for x̂ = normalize(x): (1/√(σ²+ε)) (dx̂ - mean(dx̂) - x̂ mean(dx̂ x̂)), means over axes.

    The three terms: the direct path, the path through μ and the path through σ²."""
    xhat, inv = _normalized(x, axes, eps)
    return _normalize_backward(dxhat, xhat, inv, axes)


def _affine(xhat: np.ndarray, gamma, beta) -> np.ndarray:
    """y = γ x̂ + β (γ scales, β shifts)."""
    if gamma is None:
        return xhat
    y = gamma * xhat
    y += beta
    return y.astype(xhat.dtype, copy=False)


def _affine_grads(dy, xhat, gamma, param_axes) -> tuple:
    """(dγ, dβ) summed over param_axes and shaped like γ, or () without affine."""
    if gamma is None:
        return ()
    dgamma = (dy * xhat).sum(axis=param_axes).reshape(gamma.shape).astype(dy.dtype)
    dbeta = dy.sum(axis=param_axes).reshape(gamma.shape).astype(dy.dtype)
    return dgamma, dbeta


def _instance_affine_grads(dy, xhat, gamma) -> tuple:
    """(dγ, dβ) of InstanceNorm: per-instance partial sums over the spatial dims, kept in the
    tensor's dtype (store), then summed over the batch: InstanceNorm runs as a BatchNorm over
    N·C channels with γ repeated N times (PyTorch), so each instance's share is a tensor of its
    own before the repeat's gradient adds them up."""
    if gamma is None:
        return ()
    spatial = _spatial_axes(dy)
    dgamma = store((dy * xhat).sum(axis=spatial).astype(dy.dtype)).sum(axis=0)
    dbeta = store(dy.sum(axis=spatial).astype(dy.dtype)).sum(axis=0)
    return dgamma.astype(dy.dtype), dbeta.astype(dy.dtype)


def _running_update(
    old: np.ndarray,
    batch: np.ndarray,
    momentum: float,
    convention: str,
) -> np.ndarray:
    m = old.dtype.type(momentum)
    one = np.ones((), dtype=old.dtype)
    if convention == "new_weight":
        return ((one - m) * old + m * batch).astype(old.dtype)
    if convention == "old_weight":
        return (m * old + (one - m) * batch).astype(old.dtype)
    raise ValueError(f"momentum_convention {convention!r} is not 'new_weight' or 'old_weight'")


def _running_variance(var: np.ndarray, n: int, estimate: str) -> np.ndarray:
    if estimate == "unbiased":
        return (var * var.dtype.type(n / (n - 1))).astype(var.dtype)
    if estimate == "biased":
        return var
    raise ValueError(f"running_var_estimate {estimate!r} is not 'unbiased' or 'biased'")


# -- BatchNorm -------------------------------------------------------------------------------


def batch_norm(x, gamma, beta, eps: float = 1e-5) -> np.ndarray:
    """Training-mode BatchNorm output: statistics per channel over (N, *spatial)."""
    return batch_norm_with_vjp(x, gamma, beta, eps)[0]


def batch_norm_with_vjp(x, gamma, beta, eps: float = 1e-5):
    """(batch_norm(x, γ, β), dy -> (dx, dγ, dβ)): one forward; x̂ and 1/√(σ² + ε) saved for the
    pullback, the full backward through the batch mean and variance."""
    _check_channels(x, gamma, beta)
    _check_affine_pair(gamma, beta)
    _check_eps(eps)
    _check_batch_statistics(x)
    axes = _batch_axes(x)
    g, b = (
        (None, None) if gamma is None else (_per_channel(gamma, x.ndim), _per_channel(beta, x.ndim))
    )
    xhat, inv = _normalized(x, axes, eps)

    def pullback(dy: np.ndarray) -> tuple[np.ndarray, ...]:
        # dx = γ/√(σ²+ε) (dy - mean(dy) - x̂ mean(dy x̂)): γ is constant over the statistics'
        # axes, so normalize's means of dx̂ = γ dy are γ dβ/n and γ dγ/n, and the sums dβ, dγ
        # serve both (torch's batch_norm_backward reads dy the same way): two fewer passes
        # over x's size than forming dx̂.
        n, (batch, channels) = x.size // x.shape[1], x.shape[:2]
        # dγ = Σ dy x̂ as one sum of products: no (N, C, *spatial) product in memory
        per_channel = (batch, channels, -1)
        dgamma = sum_of_products("ncs,ncs->c", dy.reshape(per_channel), xhat.reshape(per_channel))
        dgamma = dgamma.reshape(inv.shape)  # (1, C, 1, ...)
        dbeta = dy.sum(axis=axes, keepdims=True)
        dx = dy - dbeta / n
        dx -= xhat * (dgamma / n)
        dx *= inv if gamma is None else inv * g
        dx = dx.astype(x.dtype, copy=False)
        if gamma is None:
            return (dx,)
        return dx, *(d.reshape(gamma.shape).astype(dy.dtype) for d in (dgamma, dbeta))

    return _affine(xhat, g, b), pullback


def batch_norm_vjp(dy, x, gamma, beta, eps: float = 1e-5) -> tuple[np.ndarray, ...]:
    """(dx, dγ, dβ): the full backward through the batch mean and variance."""
    return batch_norm_with_vjp(x, gamma, beta, eps)[1](dy)


def batch_statistics(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Per-channel batch mean, biased variance (C,) and the number of values per channel; the
    mean as the kernel saved it (store), which is what it blends into the running mean."""
    mean, var = _moments(x, _batch_axes(x))
    return store(mean).reshape(-1), var.reshape(-1), x.size // x.shape[1]


def batch_norm_train(
    x,
    gamma,
    beta,
    *,
    running_mean: np.ndarray,
    running_var: np.ndarray,
    momentum: float = 0.1,
    eps: float = 1e-5,
    running_var_estimate: str = "unbiased",
    momentum_convention: str = "new_weight",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One training step: (y, new running_mean, new running_var), each (C,) for the stats."""
    _check_channels(x, gamma, beta, running_mean, running_var)
    _check_momentum(momentum)
    y = batch_norm(x, gamma, beta, eps)
    mean, var, n = batch_statistics(x)
    new_mean = _running_update(running_mean, mean, momentum, momentum_convention)
    new_var = _running_update(
        running_var, _running_variance(var, n, running_var_estimate), momentum, momentum_convention
    )
    return y, new_mean, new_var


def batch_norm_eval(
    x, gamma, beta, *, running_mean: np.ndarray, running_var: np.ndarray, eps: float = 1e-5
) -> np.ndarray:
    """Evaluation mode: y = γ (x - running_mean) / √(running_var + ε) + β."""
    _check_channels(x, gamma, beta, running_mean, running_var)
    _check_affine_pair(gamma, beta)
    _check_eps(eps)
    mean = _per_channel(running_mean, x.ndim)
    inv = _per_channel(_inv_std(running_var, eps), x.ndim)
    g, b = (
        (None, None) if gamma is None else (_per_channel(gamma, x.ndim), _per_channel(beta, x.ndim))
    )
    return _affine(((x - mean) * inv).astype(x.dtype), g, b)


def batch_norm_eval_vjp(
    dy, x, gamma, beta, *, running_mean: np.ndarray, running_var: np.ndarray, eps: float = 1e-5
) -> tuple[np.ndarray, ...]:
    """(dx, dγ, dβ) of the evaluation-mode map: dx = dy γ / √(running_var + ε)."""
    _check_channels(x, gamma, beta, running_mean, running_var)
    _check_affine_pair(gamma, beta)
    _check_eps(eps)
    inv = _per_channel(_inv_std(running_var, eps), x.ndim)
    xhat = (x - _per_channel(running_mean, x.ndim)) * inv
    scale = inv if gamma is None else inv * _per_channel(gamma, x.ndim)
    dx = (dy * scale).astype(x.dtype)
    return (dx, *_affine_grads(dy, xhat, gamma, _batch_axes(x)))


# -- LayerNorm -------------------------------------------------------------------------------


def layer_norm(x, gamma, beta, eps: float = 1e-5) -> np.ndarray:
    """Statistics over the trailing dims γ.shape: (C, H, W) per sample for the CNN form,
    C per token (n, l) for the Transformer form."""
    return layer_norm_with_vjp(x, gamma, beta, eps)[0]


def layer_norm_with_vjp(x, gamma, beta, eps: float = 1e-5):
    """(layer_norm(x, γ, β), dy -> (dx, dγ, dβ)): one forward, x̂ and 1/√(σ² + ε) saved for
    the pullback."""
    axes = _check_trailing(x, gamma, beta)
    _check_eps(eps)
    mean, inv = _saved_statistics(x, axes, eps)
    xhat = _centered(x, mean, inv)
    leading = tuple(range(x.ndim - gamma.ndim))

    def pullback(dy: np.ndarray) -> tuple[np.ndarray, ...]:
        if kernel_form("x̂", "sums") == "sums":
            return _layer_norm_backward_from_sums(dy, x, gamma, mean, inv, axes, leading)
        dx = _normalize_backward(dy * gamma, xhat, inv, axes)
        return (dx, *_affine_grads(dy, xhat, gamma, leading))

    return _affine(xhat, gamma, beta), pullback


def _layer_norm_backward_from_sums(dy, x, gamma, mean, inv, axes, leading) -> tuple:
    """The same gradients as torch's CPU LayerNorm backward (layer_norm_kernel.cpp) writes them,
    from the row sums S = Σ γ dy x and B = Σ γ dy over the N normalized values:
    dx = rstd γ dy + b x + c, b = (B μ - S) rstd³ / N, c = -b μ - B rstd / N, and
    dγ = Σ dy (rstd x - rstd μ). Exact, but both cancel where |μ| is large against the spread,
    which x̂'s form never does."""
    dxhat = dy * gamma
    ds = (dxhat * x).sum(axis=axes, keepdims=True)
    db = dxhat.sum(axis=axes, keepdims=True)
    per_n = x.dtype.type(1 / np.prod([x.shape[a] for a in axes], dtype=np.int64))
    b, c = _coefficients_from_sums(ds, db, mean, inv, per_n)
    dx = inv * dxhat + b * x + c
    dgamma = (dy * (inv * x - inv * mean)).sum(axis=leading)
    return dx.astype(x.dtype), dgamma.astype(dy.dtype), dy.sum(axis=leading).astype(dy.dtype)


def _coefficients_from_sums(s, b, mean, inv, per_n) -> tuple[np.ndarray, np.ndarray]:
    """(b, c) of dx = rstd γ dy + b x + c, from S = Σ γ dy x and B = Σ γ dy over the n values
    normalized together: b = (B μ - S) rstd³ / n, c = -b μ - B rstd / n."""
    coef = (b * mean - s) * inv * inv * inv * per_n
    return coef, -coef * mean - b * inv * per_n


def layer_norm_vjp(dy, x, gamma, beta, eps: float = 1e-5) -> tuple[np.ndarray, ...]:
    return layer_norm_with_vjp(x, gamma, beta, eps)[1](dy)


# -- GroupNorm -------------------------------------------------------------------------------


def _grouped(x: np.ndarray, groups: int) -> np.ndarray:
    """(N, C, *spatial) -> (N, G, C/G, *spatial)."""
    n, c = x.shape[:2]
    return x.reshape(n, groups, c // groups, *x.shape[2:])


def _check_group_norm(x, gamma, beta, groups, eps) -> None:
    channels = _check_channels(x, gamma, beta)
    _check_affine_pair(gamma, beta)
    _check_groups(channels, groups)
    _check_eps(eps)


def group_norm(x, gamma, beta, groups: int = 1, eps: float = 1e-5) -> np.ndarray:
    """Statistics per (sample, group of C/G consecutive channels) over (C/G, *spatial)."""
    _check_group_norm(x, gamma, beta, groups, eps)
    xg = _grouped(x, groups)
    xhat = normalize(xg, tuple(range(2, xg.ndim)), eps).reshape(x.shape)
    g, b = (
        (None, None) if gamma is None else (_per_channel(gamma, x.ndim), _per_channel(beta, x.ndim))
    )
    return _affine(xhat, g, b)


def group_norm_vjp(dy, x, gamma, beta, groups: int = 1, eps: float = 1e-5):
    _check_group_norm(x, gamma, beta, groups, eps)
    if kernel_form("x̂", "sums") == "sums":
        return _group_norm_vjp_from_sums(dy, x, gamma, groups, eps)
    xg = _grouped(x, groups)
    axes = tuple(range(2, xg.ndim))
    dxhat = dy if gamma is None else dy * _per_channel(gamma, x.ndim)
    xhat, inv = _normalized(xg, axes, eps)
    dx = _normalize_backward(_grouped(dxhat, groups), xhat, inv, axes).reshape(x.shape)
    return (dx, *_affine_grads(dy, xhat.reshape(x.shape), gamma, _batch_axes(x)))


def _group_norm_vjp_from_sums(dy, x, gamma, groups: int, eps: float) -> tuple:
    """The same gradients from each channel's sums Σ dy x and Σ dy over its positions (torch's
    CPU GroupNorm backward, group_norm_kernel.cpp): with M values per group and the group's
    γ-weighted sums S = Σ γ Σ dy x, B = Σ γ Σ dy,
    dx = rstd γ dy + c2 x + c3, c2 = (B μ - S) rstd³ / M, c3 = -c2 μ - B rstd / M, and
    dγ = Σ_n rstd (Σ dy x - μ Σ dy). Exact, but both cancel where |μ| is large against the
    spread, which x̂'s form never does: thorough seed 8 measured torch's float32 dγ 1.003x the
    bound of the x̂ form's models (4 values, mean 5, std 10)."""
    n, c = x.shape[:2]
    spatial = _spatial_axes(x)
    grouped = (n, groups, c // groups)
    ds = (dy * x).sum(axis=spatial).reshape(grouped)  # (N, G, C/G)
    db = dy.sum(axis=spatial).reshape(grouped)
    mean, inv = _saved_statistics(_grouped(x, groups), tuple(range(2, x.ndim + 1)), eps)
    mean, inv = mean.reshape(n, groups, 1), inv.reshape(n, groups, 1)  # (N, G, 1)
    g = (np.ones(c, dtype=dy.dtype) if gamma is None else gamma).reshape(grouped[1:])
    s = (ds * g).sum(axis=2, keepdims=True)  # (N, G, 1)
    b = (db * g).sum(axis=2, keepdims=True)
    per_m = dy.dtype.type(1 / (c // groups * np.prod(x.shape[2:], dtype=np.int64)))
    c2, c3 = _coefficients_from_sums(s, b, mean, inv, per_m)

    def per_channel(v: np.ndarray) -> np.ndarray:  # (N, G, 1 or C/G) -> (N, C, 1, ..., 1)
        return np.broadcast_to(v, grouped).reshape(n, c, *(1,) * (x.ndim - 2))

    dx = (per_channel(inv * g) * dy + per_channel(c2) * x + per_channel(c3)).astype(dy.dtype)
    if gamma is None:
        return (dx,)
    dgamma = ((ds - db * mean) * inv).sum(axis=0).reshape(c).astype(dy.dtype)
    return dx, dgamma, db.sum(axis=0).reshape(c).astype(dy.dtype)


# -- InstanceNorm ----------------------------------------------------------------------------


def _spatial_axes(x: np.ndarray) -> tuple[int, ...]:
    return tuple(range(2, x.ndim))


def _check_instance_norm(x, gamma, beta, eps) -> None:
    _check_channels(x, gamma, beta, min_ndim=3)
    _check_affine_pair(gamma, beta)
    _check_eps(eps)


def instance_norm(x, gamma=None, beta=None, eps: float = 1e-5) -> np.ndarray:
    """Statistics per (sample, channel) over the spatial dims; γ = β = None is affine=False
    (torch's InstanceNorm default)."""
    _check_instance_norm(x, gamma, beta, eps)
    xhat = normalize(x, _spatial_axes(x), eps)
    g, b = (
        (None, None) if gamma is None else (_per_channel(gamma, x.ndim), _per_channel(beta, x.ndim))
    )
    return _affine(xhat, g, b)


def instance_norm_vjp(dy, x, gamma=None, beta=None, eps: float = 1e-5):
    _check_instance_norm(x, gamma, beta, eps)
    axes = _spatial_axes(x)
    dxhat = dy if gamma is None else dy * _per_channel(gamma, x.ndim)
    xhat, inv = _normalized(x, axes, eps)
    dx = _normalize_backward(dxhat, xhat, inv, axes)
    return (dx, *_instance_affine_grads(dy, xhat, gamma))


def instance_norm_train(
    x,
    gamma=None,
    beta=None,
    *,
    running_mean: np.ndarray,
    running_var: np.ndarray,
    momentum: float = 0.1,
    eps: float = 1e-5,
    running_var_estimate: str = "unbiased",
    momentum_convention: str = "new_weight",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """InstanceNorm with running statistics (torch track_running_stats=True) in training: the
    output uses the instance statistics; the running statistics move towards the batch average
    of the per-instance mean and variance (unbiased over the spatial size, as PyTorch)."""
    _check_instance_norm(x, gamma, beta, eps)
    _check_channels(x, running_mean, running_var)
    _check_momentum(momentum)
    spatial = x.size // (x.shape[0] * x.shape[1]) if x.shape[0] * x.shape[1] else 0
    if spatial < 2:
        raise ValueError(
            f"instance_norm with running statistics needs more than 1 spatial element, got x "
            f"{x.shape}: the unbiased variance n/(n-1) is 0/0"
        )
    y = instance_norm(x, gamma, beta, eps)
    mean, var = _moments(x, _spatial_axes(x))  # (N, C, 1, ...)
    mean = store(mean)  # as saved by the kernel, which blends it into the running mean
    var = _running_variance(var, spatial, running_var_estimate)
    batch_mean = mean.reshape(x.shape[:2]).mean(axis=0).astype(x.dtype)
    batch_var = var.reshape(x.shape[:2]).mean(axis=0).astype(x.dtype)
    new_mean = _running_update(running_mean, batch_mean, momentum, momentum_convention)
    new_var = _running_update(running_var, batch_var, momentum, momentum_convention)
    return y, new_mean, new_var


def instance_norm_eval(x, gamma=None, beta=None, *, running_mean, running_var, eps=1e-5):
    """InstanceNorm with running statistics in evaluation: the BatchNorm evaluation map."""
    _check_instance_norm(x, gamma, beta, eps)
    return batch_norm_eval(
        x, gamma, beta, running_mean=running_mean, running_var=running_var, eps=eps
    )


def instance_norm_eval_vjp(dy, x, gamma=None, beta=None, *, running_mean, running_var, eps=1e-5):
    _check_instance_norm(x, gamma, beta, eps)
    _check_channels(x, running_mean, running_var)
    inv = _per_channel(_inv_std(running_var, eps), x.ndim)
    xhat = (x - _per_channel(running_mean, x.ndim)) * inv
    scale = inv if gamma is None else inv * _per_channel(gamma, x.ndim)
    dx = (dy * scale).astype(x.dtype)
    return (dx, *_instance_affine_grads(dy, xhat, gamma))


# -- RMSNorm ---------------------------------------------------------------------------------


def _inv_rms(x: np.ndarray, axes: tuple[int, ...], eps: float) -> np.ndarray:
    ms = (x * x).mean(axis=axes, keepdims=True).astype(x.dtype)
    return _inv_std(ms, eps)


def rms_norm(x, gamma, eps: float = 1e-6) -> np.ndarray:
    """y = γ x / √(mean(x²) + ε) over the trailing dims γ.shape (no centring, no β)."""
    axes = _check_trailing(x, gamma, None)
    _check_eps(eps)
    return (gamma * (x * _inv_rms(x, axes, eps))).astype(x.dtype)


def rms_norm_vjp(dy, x, gamma, eps: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """dx = r (g - x r² mean(g x)) with r = 1/√(mean(x²)+ε), g = dy γ; dγ = Σ dy x r."""
    axes = _check_trailing(x, gamma, None)
    _check_eps(eps)
    r = _inv_rms(x, axes, eps)
    g = dy * gamma
    dx = r * (g - x * r * r * (g * x).mean(axis=axes, keepdims=True))
    leading = tuple(range(x.ndim - gamma.ndim))
    dgamma = (dy * x * r).sum(axis=leading).reshape(gamma.shape)
    return dx.astype(x.dtype), dgamma.astype(x.dtype)
