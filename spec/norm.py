"""Normalization layers as sympy expressions, and the identities the notes state or imply.

Lecture notes ("Normalization"):
    N × C × (H × W), X ∈ R (or L for a Transformer)
    LN(x_i) = β · (x_i - μ) / √(σ² + ε)
    ① Batch Norm (CNN)        μ_c = 1/(NHW) Σ_{n,h,w} x_{n,c,h,w}
    ② Layer Norm (CNN)        μ_n = 1/(CHW) Σ_{c,h,w} x_{n,c,h,w}
    ③ Layer Norm (Transformer) μ_{n,l} = 1/C Σ_c x_{n,l,c}

Correction: the notes scale by β. The affine step is y = γ x̂ + β: γ (initialised to 1) scales,
β (initialised to 0) shifts (Ioffe & Szegedy 2015, Ba et al. 2016, every library). With β as the
scale the layer could not represent a shift at all and a zero-initialised β would output 0; the
spec states γ x̂ + β (`affine_statistics` proves γ sets the spread and β the mean) and
tests/mutants has the swap.

Tensors here are NumPy object arrays of sympy symbols, so the same axis-wise mean that
reference/norm.py takes over (0, 2, 3) is taken over the symbols: the spec and the kernel
describe the groups with the same axes. σ² is the biased variance mean((x - μ)²), and ε sits
inside the square root. Everything is built inside functions, never at import time.
"""

from __future__ import annotations

import itertools

import numpy as np
import sympy as sp

from spec import Identity

# -- builders ----------------------------------------------------------------------------------


def tensor(name: str, shape: tuple[int, ...]) -> np.ndarray:
    """Object array of real symbols name_i_j_..., one per entry."""
    out = np.empty(shape, dtype=object)
    for idx in itertools.product(*(range(n) for n in shape)):
        out[idx] = sp.Symbol(f"{name}_{'_'.join(map(str, idx))}", real=True)
    return out


def eps() -> sp.Symbol:
    return sp.Symbol("epsilon", positive=True)


def mean(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """μ over axes (kept for broadcasting)."""
    count = int(np.prod([x.shape[a] for a in axes]))
    return x.sum(axis=axes, keepdims=True) * sp.Rational(1, count)


def variance(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """Biased σ² = mean((x - μ)²) over axes: what every normalization divides by."""
    return mean((x - mean(x, axes)) ** 2, axes)


def normalize(x: np.ndarray, axes: tuple[int, ...], epsilon: sp.Expr) -> np.ndarray:
    """x̂ = (x - μ) / √(σ² + ε), statistics over axes."""
    root = np.vectorize(lambda v: sp.sqrt(v + epsilon), otypes=[object])(variance(x, axes))
    return (x - mean(x, axes)) / root


def affine(xhat: np.ndarray, gamma, beta) -> np.ndarray:
    """y = γ x̂ + β: γ scales, β shifts (the notes write β where γ belongs)."""
    return gamma * xhat + beta


# The normalization groups, as axes of the layouts reference/norm.py uses.
def batch_norm_axes(ndim: int) -> tuple[int, ...]:
    """BatchNorm: per channel c over (N, H, W) of (N, C, H, W)."""
    return (0, *range(2, ndim))


def layer_norm_cnn_axes(ndim: int) -> tuple[int, ...]:
    """LayerNorm (CNN): per sample n over (C, H, W)."""
    return tuple(range(1, ndim))


def instance_norm_axes(ndim: int) -> tuple[int, ...]:
    """InstanceNorm: per (n, c) over (H, W)."""
    return tuple(range(2, ndim))


TRANSFORMER_AXES = (2,)  # LayerNorm (Transformer): per token (n, l) of (N, L, C), over C


def group_norm(x: np.ndarray, groups: int, epsilon: sp.Expr) -> np.ndarray:
    """x̂ of GroupNorm: (N, C, H, W) split into G groups of C/G consecutive channels."""
    n, c = x.shape[:2]
    grouped = x.reshape(n, groups, c // groups, *x.shape[2:])
    return normalize(grouped, tuple(range(2, grouped.ndim)), epsilon).reshape(x.shape)


def rms_norm(x: np.ndarray, axes: tuple[int, ...], epsilon: sp.Expr) -> np.ndarray:
    """RMSNorm without γ: x / √(mean(x²) + ε), no centring."""
    root = np.vectorize(lambda v: sp.sqrt(v + epsilon), otypes=[object])(mean(x**2, axes))
    return x / root


def _matrix(a: np.ndarray) -> sp.Matrix:
    return sp.Matrix(np.asarray(a, dtype=object).ravel().tolist())


def _stats(xhat: np.ndarray, x: np.ndarray, axes: tuple[int, ...], epsilon) -> Identity:
    """(mean(x̂), mean(x̂²)) per group vs (0, σ²/(σ²+ε)): mean 0 and biased variance 1 up to
    the ε term."""
    var = variance(x, axes)
    lhs = _matrix(np.concatenate([mean(xhat, axes).ravel(), mean(xhat**2, axes).ravel()]))
    rhs = _matrix(
        np.concatenate([np.zeros(var.size, dtype=object), (var / (var + epsilon)).ravel()])
    )
    return lhs, rhs


# -- identities: what each layer normalizes ------------------------------------------------


def batch_norm_statistics(shape: tuple[int, ...] = (2, 2, 1, 2)) -> Identity:
    """Notes: ① Batch Norm (CNN), μ_c = 1/(NHW) Σ_{n,h,w} x_{n,c,h,w}: per channel c, x̂ over
    (N, H, W) has mean 0 and biased variance σ_c²/(σ_c² + ε) (1 up to ε)."""
    x, e = tensor("x", shape), eps()
    axes = batch_norm_axes(len(shape))
    return _stats(normalize(x, axes, e), x, axes, e)


def layer_norm_cnn_statistics(shape: tuple[int, ...] = (2, 2, 1, 2)) -> Identity:
    """Notes: ② Layer Norm (CNN), μ_n = 1/(CHW) Σ_{c,h,w} x_{n,c,h,w}: per sample n, x̂ over
    (C, H, W) has mean 0 and biased variance σ_n²/(σ_n² + ε)."""
    x, e = tensor("x", shape), eps()
    axes = layer_norm_cnn_axes(len(shape))
    return _stats(normalize(x, axes, e), x, axes, e)


def layer_norm_transformer_statistics(shape: tuple[int, ...] = (1, 2, 3)) -> Identity:
    """Notes: ③ Layer Norm (Transformer), μ_{n,l} = 1/C Σ_c x_{n,l,c}: per token (n, l), x̂ over
    C has mean 0 and biased variance σ_{n,l}²/(σ_{n,l}² + ε)."""
    x, e = tensor("x", shape), eps()
    return _stats(normalize(x, TRANSFORMER_AXES, e), x, TRANSFORMER_AXES, e)


def instance_norm_statistics(shape: tuple[int, ...] = (1, 2, 1, 3)) -> Identity:
    """Notes: Normalization, N × C × (H × W) (implied): InstanceNorm, per (n, c) over (H, W),
    has mean 0 and biased variance σ_{n,c}²/(σ_{n,c}² + ε)."""
    x, e = tensor("x", shape), eps()
    axes = instance_norm_axes(len(shape))
    return _stats(normalize(x, axes, e), x, axes, e)


def group_norm_statistics(shape: tuple[int, ...] = (1, 4, 1, 2), groups: int = 2) -> Identity:
    """Notes: Normalization, N × C × (H × W) (implied): GroupNorm, per (n, group of C/G
    channels) over (C/G, H, W), has mean 0 and biased variance σ_{n,g}²/(σ_{n,g}² + ε)."""
    x, e = tensor("x", shape), eps()
    n, c = shape[:2]
    grouped = x.reshape(n, groups, c // groups, *shape[2:])
    axes = tuple(range(2, grouped.ndim))
    return _stats(group_norm(x, groups, e).reshape(grouped.shape), grouped, axes, e)


def group_norm_one_group_is_layer_norm(shape: tuple[int, ...] = (2, 2, 1, 2)) -> Identity:
    """Notes: ② Layer Norm (CNN) (implied): GroupNorm with one group normalizes each sample over
    (C, H, W): it is LayerNorm for CNNs (with a per-channel γ, β)."""
    x, e = tensor("x", shape), eps()
    return _matrix(group_norm(x, 1, e)), _matrix(normalize(x, layer_norm_cnn_axes(len(shape)), e))


def group_norm_channel_groups_is_instance_norm(shape: tuple[int, ...] = (1, 2, 1, 3)) -> Identity:
    """Notes: Normalization, N × C × (H × W) (implied): GroupNorm with G = C groups normalizes
    each (n, c) over (H, W): it is InstanceNorm."""
    x, e = tensor("x", shape), eps()
    return _matrix(group_norm(x, shape[1], e)), _matrix(
        normalize(x, instance_norm_axes(len(shape)), e)
    )


def affine_statistics(n: int = 3) -> Identity:
    """Notes: LN(x_i) = β · (x_i - μ)/√(σ² + ε), corrected to γ x̂ + β: the output's mean is β
    and its biased variance γ² σ²/(σ² + ε). γ sets the spread and β the centre, so γ is the
    factor in front of x̂ (with the notes' β · x̂ the mean would always be 0)."""
    x = tensor("x", (n,))
    e = eps()
    gamma, beta = sp.symbols("gamma beta", real=True)
    y = affine(normalize(x, (0,), e), gamma, beta)
    var = variance(x, (0,))[0]
    lhs = sp.Matrix([mean(y, (0,))[0], variance(y, (0,))[0]])
    return lhs, sp.Matrix([beta, gamma**2 * var / (var + e)])


# -- backward: the closed forms reference/norm.py implements, derived --------------------------


def _closed_form_dx(dxhat: np.ndarray, x: np.ndarray, axes, epsilon) -> np.ndarray:
    """(1/√(σ²+ε)) (dx̂ - mean(dx̂) - x̂ mean(dx̂ x̂)): reference.norm.normalize_vjp."""
    xhat = normalize(x, axes, epsilon)
    inv = np.vectorize(lambda v: 1 / sp.sqrt(v + epsilon), otypes=[object])(variance(x, axes))
    return inv * (dxhat - mean(dxhat, axes) - xhat * mean(dxhat * xhat, axes))


def _derived(y: np.ndarray, dy: np.ndarray, wrt: np.ndarray) -> np.ndarray:
    """∂/∂wrt of L = Σ dy ∘ y, entry by entry (sympy differentiates the formula)."""
    loss = (dy * y).sum()
    return np.vectorize(lambda v: sp.diff(loss, v), otypes=[object])(wrt)


def batch_norm_backward(shape: tuple[int, ...] = (2, 1, 2)) -> Identity:
    """Notes: ① Batch Norm (CNN), backward (implied): differentiating y = γ_c x̂ + β_c through
    the batch mean and variance gives dx = γ_c/√(σ_c²+ε) (dy - mean(dy) - x̂ mean(dy x̂)),
    dγ_c = Σ dy x̂, dβ_c = Σ dy (means and sums over (N, H, W))."""
    x, dy, e = tensor("x", shape), tensor("dy", shape), eps()
    gamma, beta = sp.symbols("gamma beta", real=True)  # one channel
    axes = batch_norm_axes(len(shape))
    xhat = normalize(x, axes, e)
    y = affine(xhat, gamma, beta)
    derived = np.concatenate(
        [
            _derived(y, dy, x).ravel(),
            [sp.diff((dy * y).sum(), gamma), sp.diff((dy * y).sum(), beta)],
        ]
    )
    closed = np.concatenate(
        [_closed_form_dx(dy * gamma, x, axes, e).ravel(), [(dy * xhat).sum(), dy.sum()]]
    )
    return _matrix(derived), _matrix(closed)


def layer_norm_backward(shape: tuple[int, ...] = (1, 3)) -> Identity:
    """Notes: ③ Layer Norm (Transformer), backward (implied): with an elementwise γ_c,
    dx = (1/√(σ²+ε)) (g - mean(g) - x̂ mean(g x̂)) with g = dy γ, over the normalized axis."""
    x, dy, e = tensor("x", shape), tensor("dy", shape), eps()
    gamma, beta = tensor("gamma", shape[-1:]), tensor("beta", shape[-1:])
    axes = (len(shape) - 1,)
    y = affine(normalize(x, axes, e), gamma, beta)
    return _matrix(_derived(y, dy, x)), _matrix(_closed_form_dx(dy * gamma, x, axes, e))


def rms_norm_statistics(n: int = 3) -> Identity:
    """Notes: Normalization (implied; RMSNorm drops the centring): y = x / √(mean(x²) + ε) has
    mean square mean(x²)/(mean(x²) + ε), 1 up to ε."""
    x, e = tensor("x", (n,)), eps()
    ms = mean(x**2, (0,))[0]
    return mean(rms_norm(x, (0,), e) ** 2, (0,))[0], ms / (ms + e)


def rms_norm_of_centred_is_layer_norm(n: int = 3) -> Identity:
    """Notes: LN(x_i) = γ (x_i - μ)/√(σ² + ε) + β (implied): RMSNorm of the centred x - μ is
    LayerNorm with β = 0: RMSNorm is LayerNorm without the mean subtraction."""
    x, e = tensor("x", (n,)), eps()
    return _matrix(rms_norm(x - mean(x, (0,)), (0,), e)), _matrix(normalize(x, (0,), e))


def rms_norm_backward(n: int = 3) -> Identity:
    """Notes: Normalization (implied), RMSNorm backward: with r = 1/√(mean(x²)+ε) and
    g = dy γ, dx = r (g - x r² mean(g x)) (reference.norm.rms_norm_vjp)."""
    x, dy, e = tensor("x", (n,)), tensor("dy", (n,)), eps()
    gamma = tensor("gamma", (n,))
    y = gamma * rms_norm(x, (0,), e)
    r = 1 / sp.sqrt(mean(x**2, (0,))[0] + e)
    g = dy * gamma
    closed = r * (g - x * r**2 * mean(g * x, (0,))[0])
    return _matrix(_derived(y, dy, x)), _matrix(closed)


# -- BatchNorm state: running statistics and evaluation mode ----------------------------------


def unbiased_running_variance(n: int = 4) -> Identity:
    """Notes: ① Batch Norm (CNN), running statistics (implied): PyTorch's running variance takes
    the batch variance times n/(n-1), which is the sample variance Σ (x - μ)² / (n - 1); the
    layer itself normalizes with the biased σ² (declared variant batch_norm.running_var)."""
    x = tensor("x", (n,))
    biased = variance(x, (0,))[0]
    sample = sum((x - mean(x, (0,))) ** 2) / (n - 1)
    return biased * sp.Rational(n, n - 1), sample


def momentum_conventions() -> Identity:
    """Notes: ① Batch Norm (CNN), running statistics (implied): PyTorch's momentum m weights the
    new batch value, (1 - m) r + m b; Keras' and ONNX's weights the old, m' r + (1 - m') b. They
    agree when m' = 1 - m (PyTorch 0.1 is ONNX 0.9; Keras' default 0.99 is PyTorch 0.01): the
    declared variant batch_norm.momentum."""
    r, b, m = sp.symbols("r b m", real=True)
    new_weight = (1 - m) * r + m * b
    old_weight = lambda mm: mm * r + (1 - mm) * b  # noqa: E731
    return new_weight, old_weight(1 - m)


def eval_with_batch_statistics(shape: tuple[int, ...] = (2, 1, 2)) -> Identity:
    """Notes: ① Batch Norm (CNN), evaluation (implied): evaluation normalizes with stored
    statistics, y = γ (x - mean)/√(var + ε) + β; when they are the batch mean and the biased
    batch variance it is exactly the training-mode output."""
    x, e = tensor("x", shape), eps()
    gamma, beta = sp.symbols("gamma beta", real=True)
    axes = batch_norm_axes(len(shape))
    m, v = mean(x, axes), variance(x, axes)
    root = np.vectorize(lambda t: sp.sqrt(t + e), otypes=[object])(v)
    evaluation = gamma * (x - m) / root + beta
    return _matrix(evaluation), _matrix(affine(normalize(x, axes, e), gamma, beta))


def eval_is_affine() -> Identity:
    """Notes: ① Batch Norm (CNN), evaluation (implied): with fixed running statistics (μ_r, v_r)
    BatchNorm is the affine map a x + b, a = γ/√(v_r+ε), b = β - a μ_r (what inference engines
    fold into the previous convolution)."""
    x, gamma, beta, mu = sp.symbols("x gamma beta mu_r", real=True)
    v, e = sp.Symbol("v_r", positive=True), eps()
    a = gamma / sp.sqrt(v + e)
    return gamma * (x - mu) / sp.sqrt(v + e) + beta, a * x + (beta - a * mu)
