"""softmax and log_softmax: values, gradients and the properties the notes rely on."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from conformance.strategies import logits, normal


@given(case=logits())
def test_values(impl, case):
    impl.compare("softmax", case.x(), axis=-1)


@given(case=logits())
def test_log_softmax_values(impl, case):
    impl.compare("log_softmax", case.x(), axis=-1)


@given(case=logits())
def test_sums_to_one(impl, case):
    x = case.x()
    (y,) = impl.run("softmax", x, axis=-1)
    ones = np.ones(y.shape[:-1])
    impl.relation(
        "row sums of softmax",
        y.sum(axis=-1),
        ones,
        lambda: (impl.baseline("softmax", x, axis=-1).sum(axis=-1), ones),
    )


@given(case=logits(max_scale=3e3, min_scale=1e2))
def test_no_overflow(impl, case):
    # Logits up to 1e4: exp overflows at ~88.7 in float32 (~709 in float64), so only a kernel
    # that subtracts the row max (or equivalent) stays finite and correct.
    impl.compare("softmax", np.clip(case.x(), -1e4, 1e4), axis=-1)


@given(case=logits(max_scale=3e3, min_scale=1e2))
def test_log_softmax_no_overflow(impl, case):
    # log(softmax(x)) underflows to -inf where softmax is below the smallest float: a stable
    # log_softmax is x - max - log(sum(exp(x - max))), finite for every finite input.
    impl.compare("log_softmax", np.clip(case.x(), -1e4, 1e4), axis=-1)


@given(case=logits(), shift=st.sampled_from([-50.0, 3.0, 100.0]))
def test_shift_invariance(impl, case, shift):
    (x,) = impl.inputs(case.x())
    (y,) = impl.run("softmax", x, axis=-1)
    (y_shifted,) = impl.run("softmax", x + shift, axis=-1)
    impl.relation(
        "softmax(x + c) vs softmax(x)",
        y_shifted,
        y,
        lambda: (
            impl.baseline("softmax", x + shift, axis=-1),
            impl.baseline("softmax", x, axis=-1),
        ),
    )


@given(case=logits())
def test_vjp(impl, case):
    x = case.x()
    impl.compare_vjp("softmax", normal(case.seed + 1, x.shape), x, axis=-1)


@given(case=logits())
def test_log_softmax_vjp(impl, case):
    x = case.x()
    impl.compare_vjp("log_softmax", normal(case.seed + 1, x.shape), x, axis=-1)
