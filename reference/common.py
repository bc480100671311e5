"""Small helpers shared by the reference kernels."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import ml_dtypes
import numpy as np


def mm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b in the inputs' dtype. ml_dtypes' bfloat16 matmul returns float32; casting back
    keeps every kernel in the dtype it was given (what the low-precision tiers measure).

    A stack of matrices times one matrix (a (..., n, k), b (k, m)) runs as ONE 2-D matmul of
    every row of the stack, (prod(...) n, k) @ (k, m): NumPy's batched matmul calls BLAS once
    per matrix, and a multi-threaded BLAS on a busy machine can stall at each call (measured
    on 2 shared cores: (4, 56, 56, 96) @ (96, 384) took 1.4 s batched, 0.09 s as one call)."""
    a, b = _operands(a), _operands(b)
    if np.ndim(a) > 2 and np.ndim(b) == 2:
        rows = math.prod(a.shape[:-1])
        out = (a.reshape(rows, a.shape[-1]) @ b).reshape(*a.shape[:-1], b.shape[-1])
    else:
        out = a @ b
    return out.astype(np.result_type(a, b), copy=False)


def T(a: np.ndarray) -> np.ndarray:
    """Transpose of the last two axes."""
    return np.swapaxes(a, -1, -2)


def weight_grad(x: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """dW of y = x W + b: Σ over every row r of x_r^T dy_r, x (..., n) (broadcast to dy's
    leading axes) and dy (..., m) -> (n, m), as ONE 2-D matmul of the rows stacked,
    (n, rows) @ (rows, m), as a linear layer's backward runs it (a batched matmul and a sum
    over the batch would call BLAS once per matrix)."""
    x = np.broadcast_to(x, (*dy.shape[:-1], x.shape[-1]))
    return mm(T(x.reshape(-1, x.shape[-1])), dy.reshape(-1, dy.shape[-1]))


def unbroadcast(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum a gradient over the dimensions that broadcasting added or stretched."""
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    return g.sum(axis=axes, keepdims=True) if axes else g


def sum_of_products(subscripts: str, *operands: np.ndarray) -> np.ndarray:
    """np.einsum(subscripts, *operands) in the operands' dtype: a sum of products without the
    product array in memory. NumPy's einsum accumulates float16 in float32 and refuses
    ml_dtypes' bfloat16 ("invalid data type for einsum"); bfloat16 operands go through float32
    the same way and the result is rounded back, so every float dtype runs (the naive tier of
    conformance/tolerance.py runs kernels in bfloat16 itself)."""
    dtype = np.result_type(*operands)
    if dtype == ml_dtypes.bfloat16:
        operands = tuple(np.asarray(a, dtype=np.float32) for a in operands)
    return np.einsum(subscripts, *operands).astype(dtype, copy=False)


_OPERANDS: ContextVar[str | None] = ContextVar("nnspec_matmul_operands", default=None)
_ROUNDED: ContextVar[list | None] = ContextVar("nnspec_matmul_rounded", default=None)

TF32_EPS = 2.0**-10  # TF32 keeps float32's 8 exponent bits and 10 of its 23 mantissa bits


def round_tf32(x: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
    """float32 values rounded to TF32 (10 mantissa bits), as a tensor core reads them: to
    nearest, ties to even. With a generator, each value instead goes up or down at random
    (either neighbour): NVIDIA's libraries truncate in some kernels and round in others, and a
    Monte Carlo model that may take either direction covers both."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    drop = np.uint32(0x1FFF)  # the 13 low mantissa bits TF32 does not keep
    if rng is None:
        keep_lsb = (bits >> np.uint32(13)) & np.uint32(1)
        rounded = (bits + np.uint32(0x0FFF) + keep_lsb) & ~drop
    else:
        up = rng.integers(0, 2, bits.shape, dtype=np.uint32).astype(bool)
        rounded = np.where(up & (bits & drop != 0), (bits | drop) + np.uint32(1), bits & ~drop)
    finite = np.isfinite(x)
    return np.where(finite, rounded.astype(np.uint32).view(np.float32), x).reshape(np.shape(x))


def _operands(x: np.ndarray) -> np.ndarray:
    """A matmul operand as the modelled kernel reads it: float32 operands are rounded to TF32
    under matmul_operands("tfloat32") (the model of a library with TF32 enabled)."""
    if _OPERANDS.get() != "tfloat32" or np.asarray(x).dtype != np.float32:
        return x
    rounded = _ROUNDED.get()
    if rounded is not None:
        rounded.append(True)
    return round_tf32(x, _JITTER.get())


@contextmanager
def matmul_operands(precision: str | None) -> Iterator[list]:
    """Within it, mm rounds float32 operands to `precision` ("tfloat32"; None: as given). The
    list it yields gains an entry for each operand rounded, so a caller can tell whether the
    model read anything in the lower precision."""
    seen: list = []
    token = _OPERANDS.set(precision)
    rounded_token = _ROUNDED.set(seen)
    try:
        yield seen
    finally:
        _ROUNDED.reset(rounded_token)
        _OPERANDS.reset(token)


_STORAGE: ContextVar[np.dtype | None] = ContextVar("nnspec_storage_dtype", default=None)
_JITTER: ContextVar[np.random.Generator | None] = ContextVar("nnspec_storage_jitter", default=None)


def store(x: np.ndarray) -> np.ndarray:
    """An activation that a real kernel keeps in memory: saved for the backward pass, or
    carried to the next time step. Kernels keep these in the tensor's dtype even when they
    compute in float32; the honest-kernel model of conformance/tolerance.py sets that dtype
    with storage_dtype(), and everywhere else this is the identity. Under a jitter generator
    (the Monte Carlo arithmetic models) the stored value is also nudged by up to one ulp: an
    honest kernel may round its saved statistics differently."""
    dtype = _STORAGE.get()
    if dtype is None:
        return x
    y = x.astype(dtype)
    rng = _JITTER.get()
    if rng is not None:
        ulp = float(ml_dtypes.finfo(dtype).eps)
        nudged = np.asarray(y, dtype=np.float64) * (1 + ulp * rng.uniform(-1, 1, np.shape(y)))
        y = nudged.astype(dtype)
    return y.astype(x.dtype)


def recomputed(x: np.ndarray) -> np.ndarray:
    """A value that a kernel computes a second time, in another order than the first (a
    FlashAttention-style backward recomputes the scores q k^T * scale + bias that its forward
    reduced to the saved logsumexp): the two may differ by rounding, by up to about one ulp of
    x's own dtype (the compute dtype, not the storage dtype: it is never stored). Under the
    Monte Carlo models' jitter generator the value is moved by that bound, eps |x|, up or down
    at random: one model of the form must cover a kernel whose two computations differ by the
    full ulp (measured: torch's CPU SDPA backward on a row with weights exactly [1, 0], whose
    saved logsumexp was 1 ulp off the recomputed score); a nudge drawn uniformly in [-1, 1]
    ulp left a third of such checks with less than a third of that. Elsewhere the identity."""
    rng = _JITTER.get()
    if rng is None or not np.issubdtype(np.asarray(x).dtype, np.floating):
        return x
    ulp = float(np.finfo(x.dtype).eps)
    wide = np.longdouble if x.dtype == np.float64 else np.float64  # so the nudge survives
    nudge = 1 + np.asarray(ulp * rng.choice([-1.0, 1.0], np.shape(x)), dtype=wide)
    return (x.astype(wide) * nudge).astype(x.dtype)


_FORM: ContextVar[tuple[int, list[int]] | None] = ContextVar("nnspec_kernel_form", default=None)


@contextmanager
def forced_form(index: int) -> Iterator[list[int]]:
    """Every kernel_form call inside takes forms[index % len(forms)]: the honest-kernel model of
    a kernel written in its alternative forms, on the exact inputs (conformance/tolerance.py's
    form models). Yields the list of len(forms) of each call made, so the caller knows how many
    forms the function has."""
    seen: list[int] = []
    token = _FORM.set((index, seen))
    try:
        yield seen
    finally:
        _FORM.reset(token)


def kernel_form(*forms: str) -> str:
    """Which of several exact, equally standard formulations a kernel uses (forms[0] is the
    reference's). Under the Monte Carlo models of conformance/tolerance.py (a jitter generator
    is set) the models take them in turn, so the derived tolerance covers every honest kernel,
    not only the one the reference happens to write: the baseline has forms[0], the perturbed
    model of seed s forms[(s + 1) % len(forms)], so the baseline and the PERTURBED perturbed
    models cover up to PERTURBED + 1 forms in every check. (A random draw per model left a form
    out of (1 - 1/n)^3 of the checks with 3 draws, 30% for n = 3: measured as torch margins of
    1.04 on attention/mha_attn_bias_vjp where no model had drawn torch's form.) The form models
    (forced_form) also run each form on the exact rounded inputs."""
    forced = _FORM.get()
    if forced is not None:
        index, seen = forced
        seen.append(len(forms))
        return forms[index % len(forms)]
    rng = _JITTER.get()
    if rng is None:
        return forms[0]
    seed = getattr(rng.bit_generator.seed_seq, "entropy", None)
    if not isinstance(seed, int):  # a generator not made from one integer: draw
        return forms[int(rng.integers(len(forms)))]
    return forms[(seed + 1) % len(forms)]


SUM_ORDERS = (
    "pairwise",
    "sequential",
    "lanes of 32 bytes",
    "lanes of 64 bytes",
    "lanes of 32 bytes, halved",
    "lanes of 64 bytes, halved",
    "lanes of 32 bytes, adjacent pairs",
    "lanes of 64 bytes, adjacent pairs",
)


def kernel_sum(e: np.ndarray, axis: int) -> np.ndarray:
    """Σ e along axis (keepdims) in the order a kernel adds: NumPy's sum (the reference's: pairwise
    along a contiguous axis), left to right, or in W vector lanes (element i into lane i mod W,
    each lane left to right, then the lanes in order: torch's CPU reductions,
    vec::map_reduce_all, with W = 32 bytes (AVX2) or 64 bytes (AVX-512) of the dtype; or the
    lanes halved, lane i + lane i + W/2 down to one, as a SIMD horizontal add does: Eigen's
    predux, onnxruntime's SoftmaxCrossEntropyLoss, whose float64 confident-token losses matched
    that order on 196 of 200 rows of 4 logits, the in-order lanes on 146, and were 1.27x the
    bound of models without it (thorough profile, seed 5); or the lanes added by adjacent pairs,
    (lane 0 + lane 1) + (lane 2 + lane 3) ..., as hadd instructions do: onnxruntime's float32
    confident-token losses matched it within an ulp on 653 of 760 rows of 3-40 logits (the
    sequential order on 247), and a 7-logit token was 1.11x the bound of models without it,
    its Σ exp 1.24 ulps of 1 from the exact sum where every other order is within 0.24 (thorough
    profile, seed 2)). Under the
    tolerance models the order is a kernel_form: where the sum is 1 + δ with δ small (a
    confident row: the max's term is exactly 1) each order rounds 1 + δ its own way, log(1 + δ)
    ~ δ carries that rounding over δ, and perturbing the inputs cannot move it (z = 0 at the max
    stays 0). Measured, torch 2.14 CPU (AVX-512): confident cross-entropies 252 eps off in
    float64 and 4483 eps off in float32, exactly the 8- and 16-lane sums, where every pairwise
    model was 65 and 974 eps off (margins 1.3 and 1.5). A sum that cancels carries its order the
    same way, and the form models of conformance/tolerance.py run each order on the exact inputs
    (conv2d's bias gradient: torch 2.14's nn.Conv2d adds every image's positions left to right,
    5.2 float32 eps off a sum of 16 terms 8x smaller than their magnitudes, where the pairwise
    models were within 1.2: thorough profile, margin 1.31)."""
    order = kernel_form(*SUM_ORDERS)
    if order == "pairwise":
        return e.sum(axis=axis, keepdims=True)
    e = np.moveaxis(e, axis, -1)
    width = 1 if order == "sequential" else int(order.split()[2]) // e.dtype.itemsize
    width = max(width, 1)
    pad = np.zeros((*e.shape[:-1], -e.shape[-1] % width), dtype=e.dtype)  # x + 0 = x exactly
    blocks = np.concatenate([e, pad], axis=-1).reshape(*e.shape[:-1], -1, width)
    lanes = np.cumsum(blocks, axis=-2)[..., -1, :]  # each lane left to right
    if order.endswith("halved"):
        while lanes.shape[-1] > 1:  # a horizontal add: lane i + lane i + W/2, halving to one
            half = lanes.shape[-1] // 2
            lanes = lanes[..., :half] + lanes[..., half:]
    elif order.endswith("adjacent pairs"):
        while lanes.shape[-1] > 1:  # hadd: lane 2i + lane 2i+1, halving to one
            lanes = lanes[..., 0::2] + lanes[..., 1::2]
    else:
        lanes = np.cumsum(lanes, axis=-1)[..., -1:]  # the lanes in order
    return np.moveaxis(lanes, -1, axis)


@contextmanager
def storage_dtype(dtype: np.dtype, jitter: np.random.Generator | None = None) -> Iterator[None]:
    token = _STORAGE.set(np.dtype(dtype))
    jitter_token = _JITTER.set(jitter)
    try:
        yield
    finally:
        _JITTER.reset(jitter_token)
        _STORAGE.reset(token)
