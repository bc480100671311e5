"""Allowed error per output, derived rather than guessed.

For an output y = f(inputs) checked in dtype d:

  truth     f in the widest float NumPy has here (np.longdouble: 64-bit mantissa on x86-64;
            float64 where longdouble is no wider), on the float64 inputs as generated
  baseline  a model of an honest low-precision kernel: inputs rounded to d, arithmetic in
            float32 (or in d itself when d is float32/float64), output rounded to d, and the
            activations a kernel keeps in memory (saved for backward, carried across time
            steps: reference.common.store) rounded to d
  perturbed Monte Carlo arithmetic: the baseline on inputs perturbed by up to one ulp of the
            compute dtype (6 fixed draws); it measures how the problem's conditioning amplifies
            rounding, which one unperturbed run can underestimate by luck
  forms     the baseline with the kernels' alternative formulations (reference.common
            kernel_form: summation orders, backward forms), each on the exact rounded inputs:
            where a result cancels, one order's error is luck that the perturbed draws need
            not reproduce (measured: torch's conv2d bias gradient, a left-to-right float32 sum
            of 16 terms 8x smaller than their magnitudes, 5.2 eps off, where the six draws of
            that order were within 1.2)
  error     norm-wise relative error ||y - truth||_2 / ||truth||_2
  allowed   max(K * max(error(baseline), error(forms), error(perturbed)), FLOOR_ULPS * eps(d))

K = 3: on a probe (torch 2.14 CPU) an honest library's error was 0.9-1.6x the baseline's, so
K leaves margin without hiding a real bug; bugs move the error by orders of magnitude. The floor
covers outputs whose models happen to be exact: an honest elementwise kernel may be off by up to
about 2 ulps per element (a libm-grade exp or tanh is within 1 ulp, plus the output rounding),
and a composite one (a vjp that reuses a rounded forward output) by a few more; measured: torch
float64 attention gradients reach 2 ulps norm-wise on tiny outputs where every model is within
0.7 ulp. FLOOR_ULPS = 4. Every record keeps error,
allowed and their ratio (the margin), so the report shows how close each check came.

A second, looser tier (`naive`) runs the same reference entirely in d, accumulating in the low
dtype: an implementation between the two tiers is diagnosed "imprecise" rather than wrong.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import ml_dtypes
import numpy as np

from reference.common import TF32_EPS, forced_form, matmul_operands, storage_dtype

K = 3.0
FLOOR_ULPS = 4.0

DTYPES: dict[str, np.dtype] = {
    "float64": np.dtype(np.float64),
    "float32": np.dtype(np.float32),
    "float16": np.dtype(np.float16),
    "bfloat16": np.dtype(ml_dtypes.bfloat16),
}
LOW = ("float16", "bfloat16")


def truth_dtype() -> np.dtype:
    wide = np.dtype(np.longdouble)
    return wide if np.finfo(wide).eps < np.finfo(np.float64).eps else np.dtype(np.float64)


def eps(dtype: str) -> float:
    return float(ml_dtypes.finfo(DTYPES[dtype]).eps)


def floor(dtype: str, operands: str | None = None) -> float:
    """FLOOR_ULPS units of the precision the arithmetic reads: eps(dtype), or TF32's eps (2^-10)
    for a float32 check whose models read their matmul operands in TF32 (a library with TF32
    enabled; see models()). The floor's argument carries over: a tensor-core product of
    operands that happen to be exact in TF32 may still differ from the model by the operand
    rounding mode (to nearest or truncated: up to 1 ulp of TF32 per operand) plus the output's."""
    unit = TF32_EPS if operands == "tfloat32" and dtype == "float32" else eps(dtype)
    return FLOOR_ULPS * unit


def is_float(x: Any) -> bool:
    return (isinstance(x, np.ndarray) and x.dtype.kind == "f") or (
        isinstance(x, np.ndarray) and x.dtype == DTYPES["bfloat16"]
    )


def cast(x: Any, dtype: np.dtype | str) -> Any:
    """Float arrays to dtype (via float64, which every ml_dtypes type converts from), C-contiguous;
    masks, ints and options pass through unchanged. Contiguous because a library may pick
    another kernel for a strided tensor: torch's bfloat16 encoder layer gave outputs up to 0.023
    apart for the same values contiguous and strided (a relation's x[..., perm, :] with perm
    the identity: margin 1.03 against a floor of 4 ulps, thorough profile, seed 9), and the
    suite checks the math, not a layout's kernel choice."""
    if not is_float(x):
        return x
    dtype = DTYPES.get(dtype, dtype) if isinstance(dtype, str) else dtype
    if x.dtype != dtype:
        return np.asarray(x, dtype=np.float64).astype(dtype, order="C")
    return np.asarray(x, order="C")


def cast_all(args: Sequence[Any], kwargs: dict[str, Any], dtype: Any):
    return [cast(a, dtype) for a in args], {k: cast(v, dtype) for k, v in kwargs.items()}


def as_tuple(out: Any) -> tuple:
    return tuple(out) if isinstance(out, tuple | list) else (out,)


def evaluate(fn: Callable, args: Sequence[Any], kwargs: dict[str, Any], compute: Any) -> tuple:
    """fn on the inputs converted to `compute` (float64 values pass exactly into any wider type)."""
    a, k = cast_all(args, kwargs, compute)
    return as_tuple(fn(*a, **k))


def truth(fn: Callable, args: Sequence[Any], kwargs: dict[str, Any]) -> tuple:
    return evaluate(fn, args, kwargs, truth_dtype())


def rounded_inputs(args: Sequence[Any], kwargs: dict[str, Any], dtype: str):
    """What an implementation running in `dtype` is given."""
    return cast_all(args, kwargs, DTYPES[dtype])


def baseline(fn: Callable, args: Sequence[Any], kwargs: dict[str, Any], dtype: str) -> tuple:
    """The honest-kernel model: rounded inputs, float32 arithmetic (d itself if wider), stored
    activations and output rounded to d."""
    a, k = rounded_inputs(args, kwargs, dtype)
    compute = DTYPES["float32"] if dtype in LOW else DTYPES[dtype]
    with storage_dtype(DTYPES[dtype]):  # saved activations and carried state live in dtype
        return tuple(cast(y, DTYPES[dtype]) for y in evaluate(fn, a, k, compute))


# Backward-stability models per check, each with its own fixed perturbation. 6, not 3: on small
# outputs whose entries cancel (a bias gradient summed over 2-5 rows, attention with 2-3 keys)
# an honest kernel's error spreads over ~10x between draws, and the maximum of 3 draws (with K = 3)
# fell below torch's own error in ~0.5% of dev-profile examples (measured, torch 2.14 CPU:
# transformer/pre_ln_decoder_vjp float32 9 of 1600 examples, attention/mha_attn_bias_vjp float32
# margin 1.02 where draws 4-6 of the same check reached 2x draws 1-3; with 6 draws: none of 1600).
# Costs ~17% of a gradient-heavy file's time (torch, test_transformer.py: 20.1 s -> 23.6 s).
PERTURBED = 6
# Where an output fails under the six, ESCALATED draws in all decide it (conformance.check):
# the draws' errors are heavy-tailed, and six can all land low. Measured (torch 2.14 CPU,
# thorough profile seed 5): transformer/encoder_vjp float32's query-bias gradient, whose
# honest-kernel draws (30 per combination of the LayerNorm and attention backward forms) had
# medians 0.5-1.3e-6 and 90th percentiles 2.1-3.3e-6, got six draws all below 5.6e-7, and torch's
# 2.06e-6 (its flash-attention backward: an emulation on torch's own operands is 1.3e-6 off)
# failed at margin 1.23. More draws only sample the same honest-kernel distribution better (K
# stays 3); a bug's error is orders of magnitude past it and fails either way (the mutant zoo).
# Only failing outputs pay for them.
ESCALATED = 24


def perturbed(
    fn: Callable, args: Sequence[Any], kwargs: dict[str, Any], dtype: str, seed: int
) -> tuple:
    """A Monte Carlo arithmetic model (Parker; Stott Parker et al.): the honest-kernel model on
    the rounded inputs each perturbed by a random relative amount up to one ulp of the compute
    dtype. The perturbation measures how the problem's conditioning amplifies rounding (a
    near-cancelling weighted sum, a softmax gradient where one weight is ~1) and changes which
    way every intermediate rounds, so the spread over a few draws estimates the rounding error
    of an honest kernel that the single unperturbed run can underestimate by luck. Stored
    activations (reference.common.store) are nudged by up to one ulp of d as well: a kernel may
    round its saved statistics (a mean, a 1/std) differently from NumPy."""
    a, k = rounded_inputs(args, kwargs, dtype)
    compute = DTYPES["float32"] if dtype in LOW else DTYPES[dtype]
    ulp = float(np.finfo(compute).eps)
    rng = np.random.default_rng(seed)
    wide = truth_dtype()

    def nudge(x: Any) -> Any:
        if not is_float(x):
            return x
        x = cast(x, wide)
        return (x * (1 + ulp * rng.uniform(-1, 1, x.shape).astype(wide))).astype(compute)

    with storage_dtype(DTYPES[dtype], jitter=rng):
        ys = evaluate(fn, [nudge(x) for x in a], {n: nudge(x) for n, x in k.items()}, compute)
    return tuple(cast(y, DTYPES[dtype]) for y in ys)


class Models(list):
    """The models' outputs (one tuple each), and `operands`: "tfloat32" when their matmuls read
    float32 operands rounded to TF32, else None (what floor() needs)."""

    operands: str | None = None

    def __iadd__(self, more: list) -> Models:
        self.extend(more)
        self.operands = self.operands or getattr(more, "operands", None)
        return self


def models(
    fn: Callable,
    args: Sequence[Any],
    kwargs: dict[str, Any],
    dtype: str,
    operands: str | None = None,
    *,
    unperturbed: bool = True,
    draws: Sequence[int] = range(PERTURBED),
    with_forms: bool = True,
) -> Models:
    """Every model of an honest kernel: the float32-arithmetic run and the perturbed runs
    (`unperturbed`, `draws` and `with_forms` pick a subset, for callers that add the rest only
    when needed; the form models come with any draws unless with_forms is False).
    operands="tfloat32" models a library that multiplies float32 matrices on TF32 tensor cores
    (torch's allow_tf32): each matmul rounds its float32 operands to 10 mantissa bits (to
    nearest in the baseline, up or down at random in the perturbed models) and accumulates in
    float32, as NVIDIA documents TF32."""
    with matmul_operands(operands) as rounded:
        out = Models(
            ([baseline(fn, args, kwargs, dtype)] if unperturbed else [])
            + (forms(fn, args, kwargs, dtype) if draws and with_forms else [])
            + [perturbed(fn, args, kwargs, dtype, seed) for seed in draws]
        )
    out.operands = operands if rounded else None
    return out


def forms(fn: Callable, args: Sequence[Any], kwargs: dict[str, Any], dtype: str) -> list:
    """The baseline once per alternative form of the kernels fn calls (kernel_form's forms[1:],
    the most forms any call offers): none when fn offers no choice."""
    out, n_forms, index = [], 2, 1
    while index < n_forms:
        with forced_form(index) as seen:
            model = baseline(fn, args, kwargs, dtype)
        if not seen:
            break  # no kernel_form call: the baseline itself
        out.append(model)
        n_forms, index = max(seen), index + 1
    return out


def naive(fn: Callable, args: Sequence[Any], kwargs: dict[str, Any], dtype: str) -> tuple:
    """The same reference run entirely in dtype: accumulates in the low precision."""
    a, k = rounded_inputs(args, kwargs, dtype)
    return evaluate(fn, a, k, DTYPES[dtype])


def rel_error(actual: np.ndarray, expected: np.ndarray) -> float:
    """||actual - expected||_2 / ||expected||_2 over the positions where expected is not NaN
    (a declared NaN output is checked separately); absolute when expected is all zero."""
    a = np.asarray(actual, dtype=np.float64).astype(truth_dtype())
    e = np.asarray(expected, dtype=truth_dtype())
    keep = ~np.isnan(e)
    a, e = a[keep], e[keep]
    if a.size == 0:
        return 0.0
    diff = np.sqrt(np.sum((a - e) ** 2))
    norm = np.sqrt(np.sum(e**2))
    return float(diff / norm) if norm > 0 else float(diff)


def worst_error(errors: Iterable[float]) -> float:
    """The largest of the models' errors, NaN counted as inf: a model that went non-finite
    where the truth is finite bounds nothing, whatever its place among the models (max() keeps
    or drops a NaN by its position)."""
    return max(math.inf if math.isnan(e) else e for e in errors)


def overflows(exact: np.ndarray, dtype: str) -> bool:
    """Whether a finite exact value rounds to ±inf in dtype (beyond its largest finite value)."""
    e = np.asarray(exact)
    if not is_float(e):
        return False
    with np.errstate(over="ignore"):
        rounded = cast(e, dtype)
    return bool(np.any(np.isinf(rounded) & np.isfinite(e)))


def nonfinite_mismatch(actual: np.ndarray, expected: np.ndarray) -> int:
    """Positions where actual is not finite but expected is, or expected is NaN (a declared
    NaN output) but actual is not."""
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    return int(np.sum(~np.isfinite(a) & np.isfinite(e)) + np.sum(np.isnan(e) & ~np.isnan(a)))


def error(actual: np.ndarray, expected: np.ndarray) -> float:
    """rel_error, or inf when the non-finite positions disagree (a NaN never passes)."""
    return float("inf") if nonfinite_mismatch(actual, expected) else rel_error(actual, expected)


def max_abs_error(actual: np.ndarray, expected: np.ndarray) -> float:
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    keep = ~np.isnan(e)
    return float(np.max(np.abs(a[keep] - e[keep]), initial=0.0))


def allowed(baseline_error: float, dtype: str, operands: str | None = None) -> float:
    return max(K * baseline_error, floor(dtype, operands))
