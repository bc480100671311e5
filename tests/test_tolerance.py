"""The tolerance derivation: what it allows, what it refuses, and its diagnoses."""

from __future__ import annotations

import numpy as np
import pytest

from conformance import tolerance
from conformance.adapters.numpy_reference import NumpyReference
from conformance.check import Check, CheckFailed
from reference import attention, softmax
from reference.common import storage_dtype, store
from tests.mutants.softmax import SilentHalf


def _x(shape=(8, 32), scale=3.0, seed=0):
    return np.random.default_rng(seed).standard_normal(shape) * scale


def test_truth_is_computed_wider_than_float64():
    if np.finfo(np.longdouble).eps >= np.finfo(np.float64).eps:
        pytest.skip("np.longdouble is float64 on this platform: truth falls back to float64")
    assert tolerance.truth_dtype() == np.dtype(np.longdouble)
    (t,) = tolerance.truth(softmax.softmax, [_x()], {})
    assert t.dtype == np.longdouble


@pytest.mark.parametrize("dtype", list(tolerance.DTYPES))
def test_allowed_is_k_times_model_error_with_a_floor(dtype):
    floor = tolerance.FLOOR_ULPS * tolerance.eps(dtype)
    assert tolerance.allowed(0.0, dtype) == floor
    assert tolerance.allowed(10 * floor, dtype) == tolerance.K * 10 * floor


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_models_are_rounded_to_the_dtype(dtype):
    for model in tolerance.models(softmax.softmax, [_x()], {}, dtype):
        (y,) = model
        assert y.dtype == tolerance.DTYPES[dtype]


def test_the_honest_model_itself_sits_at_one_over_k():
    # The float32 reference *is* the unperturbed model, so its margin is at most 1/K: the
    # derivation cannot be looser than K times what an honest kernel does.
    check = Check(NumpyReference(), "float32")
    check.compare("softmax", _x(), axis=-1)
    assert check.worst.margin <= 1 / tolerance.K + 1e-12


def test_a_silent_downcast_fails_in_float32():
    check = Check(SilentHalf(), "float32")
    with pytest.raises(CheckFailed, match=r"error .* > allowed"):
        check.compare("softmax", _x(), axis=-1)
    assert check.worst.margin > 10


class _NaiveBfloat16(NumpyReference):
    dtypes = ("bfloat16",)

    def sdpa(self, q, k, v, mask=None, causal=False):
        return attention.sdpa(q, k, v, mask=mask, causal=causal)  # accumulates in bfloat16


def test_accumulating_in_bfloat16_is_diagnosed_imprecise():
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((512, 64)) for _ in range(3))
    check = Check(_NaiveBfloat16(), "bfloat16")
    with pytest.raises(CheckFailed, match="imprecise: within the error of a kernel that accum"):
        check.compare("sdpa", q, k, v)


def test_nan_never_passes_and_declared_nan_must_be_nan():
    t = np.array([0.5, 0.25, np.nan])
    assert tolerance.error(np.array([0.5, 0.25, np.nan]), t) == 0.0
    assert tolerance.error(np.array([0.5, np.nan, np.nan]), t) == float("inf")
    assert tolerance.error(np.array([0.5, 0.25, 0.0]), t) == float("inf")
    assert tolerance.error(np.array([np.inf, 0.25, np.nan]), t) == float("inf")


def test_a_model_gone_nan_bounds_nothing_wherever_it_sits_among_the_models():
    t = np.array([1.0, 2.0])
    honest, gone = np.array([1.0, 2.0 + 1e-9]), np.array([np.nan, 2.0])
    errors = [tolerance.rel_error(m, t) for m in (honest, gone)]
    assert tolerance.worst_error(errors) == tolerance.worst_error(errors[::-1]) == float("inf")
    assert tolerance.worst_error(errors[:1]) == errors[0]


def test_relation_with_nan_fails():
    check = Check(NumpyReference(), "float32")
    ones = np.ones(3)
    with pytest.raises(CheckFailed, match="non-finite"):
        check.relation("demo", np.array([1.0, np.nan, 1.0]), ones, np.stack([ones]), ones)


def test_store_rounds_only_inside_storage_dtype():
    x = np.array([1.0 + 2.0**-20], dtype=np.float32)
    assert store(x)[0] == x[0]
    with storage_dtype(np.dtype(np.float16)):
        assert store(x)[0] == np.float32(1.0)
        assert store(x).dtype == np.float32
    assert store(x)[0] == x[0]
