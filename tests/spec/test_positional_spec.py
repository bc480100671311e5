"""Proofs of spec/positional.py, the mutants they reject, and the link to reference.positional."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from reference import positional as ref_positional
from spec import identity_holds, unproved_entries
from spec import positional as P
from tests.spec.test_spec_vs_reference import TOL


def assert_identity(lhs, rhs) -> None:
    bad = unproved_entries(lhs, rhs)
    assert not bad, f"not proved equal at flat entries: {bad[:3]}"


@pytest.mark.parametrize("d_model", [2, 4, 6])
def test_pe_definition(d_model) -> None:
    assert_identity(*P.pe_definition(d_model))


@pytest.mark.parametrize("d_pairs", [1, 3])
def test_pe_matches_notes(d_pairs) -> None:
    assert_identity(*P.pe_matches_notes(d_pairs))


def test_notes_read_literally_are_not_the_encoding() -> None:
    # k from 1 (the notes' w_1 = 10000^(-1/d)) scales every frequency: not the same vector.
    pos, d = P.position(), 2
    literal = sp.Matrix(
        [f(pos / sp.Integer(10000) ** sp.Rational(k, d)) for k in (1, 2) for f in (sp.sin, sp.cos)]
    )
    assert not identity_holds(literal, P.pe(pos, 2 * d))


@pytest.mark.parametrize("layout", ["interleaved", "concatenated"])
@pytest.mark.parametrize("d_model", [2, 4, 6])
def test_shift_is_rotation(d_model, layout) -> None:
    assert_identity(*P.pe_shift_is_rotation(d_model, layout))
    assert P.position() not in P.shift_matrix(P.position("s"), d_model, layout).free_symbols


def test_rotation_in_the_other_direction_is_wrong() -> None:
    pos, s = P.position(), P.position("s")
    lhs = P._trig_expanded(P.pe(pos + s, 4))
    assert not identity_holds(lhs, P._trig_expanded(P.shift_matrix(s, 4).T * P.pe(pos, 4)))


def test_rotation_of_the_wrong_layout_is_wrong() -> None:
    pos, s = P.position(), P.position("s")
    lhs = P._trig_expanded(P.pe(pos + s, 4, "concatenated"))
    rhs = P._trig_expanded(P.shift_matrix(s, 4, "interleaved") * P.pe(pos, 4, "concatenated"))
    assert not identity_holds(lhs, rhs)


def test_sin_cos_swapped_mutant_needs_another_rotation() -> None:
    # The mutant tests/mutants/positional.py:SinCosSwapped: (cos, sin) pairs rotate the other
    # way, so the reference's R(s) does not carry it from pos to pos + s.
    pos, s = P.position(), P.position("s")

    def swapped(p):
        return sp.Matrix([P.pe(p, 4)[i ^ 1] for i in range(4)])

    lhs = P._trig_expanded(swapped(pos + s))
    assert not identity_holds(lhs, P._trig_expanded(P.shift_matrix(s, 4) * swapped(pos)))


@pytest.mark.parametrize("d_model", [2, 6])
def test_pe_norm(d_model) -> None:
    assert_identity(*P.pe_norm(d_model))


@pytest.mark.parametrize("d_model", [2, 6])
def test_layouts_are_a_permutation(d_model) -> None:
    assert_identity(*P.layouts_are_a_permutation(d_model))


def test_layouts_differ() -> None:
    pos = P.position()
    assert not identity_holds(P.pe(pos, 4), P.pe(pos, 4, "concatenated"))


# -- spec <-> reference ---------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["interleaved", "concatenated"])
def test_table_matches_reference(layout) -> None:
    pos = P.position()
    f = sp.lambdify(pos, P.pe(pos, 6, layout), modules="numpy")
    positions = np.arange(0, 40, 3)
    spec = np.stack([np.asarray(f(p), dtype=np.float64).ravel() for p in positions])
    np.testing.assert_allclose(spec, ref_positional.sinusoidal(positions, 6, layout), **TOL)


@pytest.mark.parametrize("layout", ["interleaved", "concatenated"])
def test_shift_matrix_matches_reference(layout) -> None:
    s = P.position("s")
    spec = np.asarray(sp.lambdify(s, P.shift_matrix(s, 6, layout))(5.0), dtype=np.float64)
    np.testing.assert_allclose(spec, ref_positional.shift_matrix(5, 6, layout), **TOL)


def test_add_and_concat_match_reference() -> None:
    x = np.random.default_rng(0).standard_normal((2, 5, 4))
    pe = ref_positional.sinusoidal(np.arange(3, 8), 4)
    np.testing.assert_allclose(ref_positional.positional(x, offset=3), x + pe, **TOL)
    both = ref_positional.positional(x, offset=3, combine="concat")
    np.testing.assert_allclose(both, np.concatenate([x, np.broadcast_to(pe, x.shape)], -1), **TOL)
