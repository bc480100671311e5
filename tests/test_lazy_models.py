"""The Monte Carlo models are evaluated only where they could matter (Check._settled): skipping
them must change neither a verdict nor the recorded worst case, and must skip most of them."""

from __future__ import annotations

import numpy as np
import pytest

from conformance import tolerance
from conformance.adapters.numpy_reference import NumpyReference
from conformance.check import Check, CheckFailed
from reference import softmax


class Noisy(NumpyReference):
    """The reference softmax off by a relative error that varies by example: some cases land
    near or past the allowed error, most well inside it."""

    name = "noisy"

    def __init__(self, scales) -> None:
        self.scales = iter(scales)

    def softmax(self, x, axis=-1):
        y = softmax.softmax(x, axis=axis)
        noise = np.random.default_rng(y.size).standard_normal(y.shape)
        return (y * (1 + next(self.scales) * noise)).astype(x.dtype)


def _cases(wrong: float, n: int = 40):
    """n inputs; the noise is within an ulp or two (as an honest library's), and ~40 ulps on
    a `wrong` fraction of them."""
    rng = np.random.default_rng(7)
    xs = [rng.standard_normal((3, int(rng.integers(2, 9)))) * 4 for _ in range(n)]
    scales = 2.0**-23 * np.where(rng.uniform(size=n) < wrong, 40.0, rng.uniform(0, 2, n))
    return xs, scales


def _run(monkeypatch, eager: bool, relation: bool, wrong: float):
    """Per case: passed or failed; and the check's worst case and perturbed-model count."""
    if eager:
        monkeypatch.setattr(Check, "_settled", lambda self, cases: False)
    calls = []  # the usual draws (a failing case's escalated ones cost the same either way)
    real = tolerance.perturbed

    def perturbed(fn, args, kwargs, dtype, seed):
        calls.append(seed < tolerance.PERTURBED)
        return real(fn, args, kwargs, dtype, seed)

    monkeypatch.setattr(tolerance, "perturbed", perturbed)
    xs, scales = _cases(wrong)
    check = Check(Noisy(scales), "float32")
    verdicts = []
    for x in xs:
        try:
            if relation:
                (y,) = check.run("softmax", x)
                ones = np.ones(x.shape[0])
                check.relation(
                    "row sums",
                    y.sum(axis=-1),
                    ones,
                    lambda x=x, ones=ones: (check.baseline("softmax", x).sum(axis=-1), ones),
                )
            else:
                check.compare("softmax", x)
            verdicts.append("pass")
        except CheckFailed:
            verdicts.append("fail")
    return verdicts, vars(check.worst), sum(calls)


@pytest.mark.parametrize("relation", [False, True], ids=["compare", "relation"])
@pytest.mark.parametrize("wrong", [0.0, 0.15], ids=["honest", "sometimes-wrong"])
def test_skipping_models_changes_no_verdict_and_no_record(monkeypatch, relation, wrong):
    with monkeypatch.context() as m:
        eager = _run(m, eager=True, relation=relation, wrong=wrong)
    lazy = _run(monkeypatch, eager=False, relation=relation, wrong=wrong)
    assert ("fail" in eager[0]) == (wrong > 0) and "pass" in eager[0]
    assert lazy[0] == eager[0]
    assert lazy[1] == eager[1]
    assert lazy[2] < eager[2] / 2, (lazy[2], eager[2])


@pytest.mark.parametrize(
    ("worst", "case", "settled"),
    [
        (None, (0.0, 1.0), False),  # the check's first case: every model
        (0.5, (0.4, 1.0), True),  # below the worst so far
        (0.5, (0.5, 1.0), True),  # a tie does not replace the worst case
        (0.5, (0.6, 1.0), False),  # may become the worst case: its margin must be exact
        (2.0, (1.5, 1.0), False),  # fails under the baseline alone: the models may pass it
        (2.0, (0.9, 1.0), True),  # after a failure (Hypothesis shrinking)
    ],
)
def test_settled_only_where_the_models_cannot_matter(worst, case, settled):
    check = Check(NumpyReference(), "float64")
    check.worst.margin = worst
    assert check._settled([case]) is settled
    assert check._settled([(0.0, 1.0), case]) is settled  # every output must be settled


class Scaled(NumpyReference):
    """The reference softmax times (1 + error): a norm-wise relative error of exactly `error`."""

    name = "scaled"

    def __init__(self, error: float) -> None:
        self.error = error

    def softmax(self, x, axis=-1):
        return (softmax.softmax(x, axis=axis) * (1 + self.error)).astype(x.dtype)


@pytest.mark.parametrize("relation", [False, True], ids=["compare", "relation"])
@pytest.mark.parametrize(
    ("ulps", "verdict", "draws"),
    [
        (1, "pass", tolerance.PERTURBED),  # within the usual draws' bound: no more drawn
        (15, "pass", tolerance.ESCALATED),  # past the usual draws' bound, within the escalated
        (100, "fail", tolerance.ESCALATED),  # past every bound
    ],
)
def test_escalates_only_a_failing_case(monkeypatch, relation, ulps, verdict, draws):
    # Perturbed draws 0-5 model an error of 2 ulps (allowed K * 2 = 6), the later ones of
    # 10 (allowed 30): only a case failing the first six is judged against the rest.
    eps = tolerance.eps("float32")
    drawn = []

    def perturbed(fn, args, kwargs, dtype, seed):
        drawn.append(seed)
        (y,) = tolerance.truth(fn, args, kwargs)
        return (y * (1 + (2 if seed < tolerance.PERTURBED else 10) * eps),)

    monkeypatch.setattr(tolerance, "perturbed", perturbed)
    check = Check(Scaled(ulps * eps), "float32")
    x = np.random.default_rng(3).standard_normal((3, 5))
    try:
        if relation:
            (y,) = check.run("softmax", x)
            ones = np.ones(3)
            check.relation(
                "row sums",
                y.sum(axis=-1),
                ones,
                lambda: (check.baseline("softmax", x).sum(axis=-1), ones),
            )
        else:
            check.compare("softmax", x)
        result = "pass"
    except CheckFailed:
        result = "fail"
    assert result == verdict
    assert max(drawn) == draws - 1
    # The record says when a check was judged under the escalated draws.
    note = check.escalation_note()
    escalated = draws == tolerance.ESCALATED
    assert (note is not None) == escalated
    assert not escalated or note.startswith(f"1 example past the bound of {tolerance.PERTURBED} ")
