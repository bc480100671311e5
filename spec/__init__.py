"""Symbolic specification: the formulas of the lecture notes as sympy expressions.

Each module (one per stem) holds small builder functions and named identities. An identity is a
function returning ``(lhs, rhs)``, two sympy expressions or Matrices that must be equal;
``tests/spec/`` proves each one with :func:`identity_holds`. Nothing is built at import time.

This module only holds the prover shared by every stem.
"""

from __future__ import annotations

import random

import sympy as sp

__all__ = ["Identity", "identity_holds", "is_zero", "unproved_entries"]

# (lhs, rhs): sympy expressions or Matrices of the same shape that must be equal.
Identity = tuple[sp.Basic, sp.Basic]


def _exp_as_powers(expr: sp.Expr) -> tuple[sp.Expr, dict[sp.Symbol, sp.Expr]]:
    """Rewrite every exp(a_1 + ... + a_k) as a product of t_m ** c, one positive symbol t_m per
    distinct exponent monomial m (c is the term's rational coefficient).

    Attention and softmax expressions are rational functions of such exponentials; once they are
    symbols, `cancel` decides equality quickly where `simplify` can take minutes. Sound in one
    direction: if the rational function is identically zero, so is the original (substitute
    t_m = exp(m) back). A false "not zero" only sends the caller to the slower `simplify`.
    """
    gens: dict[sp.Expr, sp.Symbol] = {}

    def gen(m: sp.Expr) -> sp.Symbol:
        if m not in gens:
            gens[m] = sp.Symbol(f"_exp{len(gens)}", positive=True)
        return gens[m]

    def split(e: sp.exp) -> sp.Expr:
        factors = []
        for term in sp.Add.make_args(sp.expand(e.args[0])):
            c, m = term.as_coeff_Mul()
            # A constant exponent stays a number; c rational keeps t**c a plain monomial.
            factors.append(sp.exp(term) if m == 1 or not c.is_Rational else gen(m) ** c)
        return sp.Mul(*factors)

    rewritten = expr.replace(lambda a: isinstance(a, sp.exp), split)
    return rewritten, {t: m for m, t in gens.items()}


def _nonzero_somewhere(expr: sp.Expr, tries: int = 2) -> bool:
    """True when expr is clearly nonzero at a random rational point: a witness that it is not
    identically zero. Without it a false identity sends `simplify` searching for minutes."""
    # Deterministic points (same verdict on every run), small so that exponentials stay
    # moderate; evalf raises its working precision where terms cancel, so 30 digits are real.
    rng = random.Random(0)
    symbols = sorted(expr.free_symbols, key=str)
    for _ in range(tries):
        point = {s: sp.Rational(rng.randint(-10, 10), rng.randint(7, 13)) for s in symbols}
        value = expr.xreplace(point).evalf(30)
        # 30 significant digits: a value this far from zero is no rounding artefact.
        if value.is_number and (value.has(sp.nan, sp.zoo) or abs(value) > 1e-12):
            return True
    return False


def is_zero(expr: sp.Expr) -> bool:
    """True when expr is proved identically zero (exactly; floating point is only used to find
    a witness that it is NOT zero)."""
    expr = sp.sympify(expr)
    if expr == 0:
        return True
    if expr.has(sp.nan, sp.zoo) or _nonzero_somewhere(expr):
        return False
    rewritten, exponent_of = _exp_as_powers(expr)
    # log(t_m) = m needs m real: true for the real symbols every spec module uses.
    if all(m.is_extended_real for m in exponent_of.values()):
        rewritten = sp.expand_log(rewritten).xreplace(
            {sp.log(t): m for t, m in exponent_of.items()}
        )
    if sp.cancel(sp.together(rewritten)) == 0:
        return True
    return sp.simplify(expr) == 0


def unproved_entries(lhs: sp.Basic, rhs: sp.Basic) -> list[tuple[int, sp.Expr]]:
    """(flat index, lhs - rhs) of every entry not proved zero; empty when the identity holds."""
    if isinstance(lhs, sp.MatrixBase) or isinstance(rhs, sp.MatrixBase):
        lhs, rhs = sp.Matrix(lhs), sp.Matrix(rhs)
        if lhs.shape != rhs.shape:
            raise ValueError(f"shapes differ: {lhs.shape} vs {rhs.shape}")
        diffs = list(lhs - rhs)
    else:
        diffs = [sp.sympify(lhs) - sp.sympify(rhs)]
    return [(i, d) for i, d in enumerate(diffs) if not is_zero(d)]


def identity_holds(lhs: sp.Basic, rhs: sp.Basic) -> bool:
    """lhs == rhs entry by entry, proved symbolically."""
    return not unproved_entries(lhs, rhs)
