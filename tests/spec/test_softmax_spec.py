"""Proofs of the softmax identities in spec/softmax.py, and proof that the prover is not blind."""

from __future__ import annotations

import pytest
import sympy as sp

from spec import identity_holds, unproved_entries
from spec import softmax as S


def assert_identity(lhs: sp.Basic, rhs: sp.Basic) -> None:
    bad = unproved_entries(lhs, rhs)
    assert not bad, f"not proved equal at flat entries: {bad[:3]}"


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_softmax_definition(n: int) -> None:
    assert_identity(*S.softmax_definition(n))


@pytest.mark.parametrize("n", [1, 2, 4, 6])
def test_softmax_sums_to_one(n: int) -> None:
    assert_identity(*S.softmax_sums_to_one(n))


@pytest.mark.parametrize("n", [2, 3, 4])
def test_softmax_shift_invariance(n: int) -> None:
    assert_identity(*S.softmax_shift_invariance(n))


@pytest.mark.parametrize("n", [2, 3])
def test_softmax_jacobian(n: int) -> None:
    assert_identity(*S.softmax_jacobian_identity(n))


def test_softmax_jacobian_is_symmetric_and_kills_ones() -> None:
    # Rows of J sum to 0 because softmax is shift invariant: J 1 = d softmax(z + c 1) / dc = 0.
    z = S.logits(3)
    J = S.softmax_jacobian(z)
    assert_identity(J, J.T)
    assert_identity(J * sp.ones(3, 1), sp.zeros(3, 1))


@pytest.mark.parametrize("n", [2, 3])
def test_log_softmax_definition(n: int) -> None:
    assert_identity(*S.log_softmax_definition(n))


def test_log_softmax_builder_is_log_of_softmax_builder() -> None:
    z = S.logits(3)
    assert_identity(S.log_softmax(z).applyfunc(sp.exp), S.softmax(z))


# -- the prover must reject near misses (otherwise every proof above is worthless) -------------


def test_prover_rejects_wrong_jacobian_sign() -> None:
    z = S.logits(3)
    s = S.softmax(z)
    assert not identity_holds(s.jacobian(z), sp.diag(*s) + s * s.T)


def test_prover_rejects_transposed_log_softmax_jacobian() -> None:
    # I - s 1^T instead of I - 1 s^T: the classic transpose slip.
    z = S.logits(3)
    s = S.softmax(z)
    wrong = sp.eye(3) - s * sp.ones(1, 3)
    assert not identity_holds(S.softmax(z).applyfunc(sp.log).jacobian(z), wrong)


def test_prover_rejects_scaled_logits() -> None:
    # Shift invariance, not scale invariance: softmax(2z) is a sharper distribution.
    z = S.logits(3)
    assert not identity_holds(S.softmax(2 * z), S.softmax(z))


def test_prover_rejects_wrong_log_sign() -> None:
    z = S.logits(3)
    wrong = z + sp.log(sum(z.applyfunc(sp.exp))) * sp.ones(3, 1)
    assert not identity_holds(S.softmax(z).applyfunc(sp.log), wrong)
