"""softmax and log-softmax as sympy expressions, and the identities between them.

Lecture notes (attention section): softmax e^{z_j} / Σ e^{z_j}. The sum in the denominator runs
over all logits (the notes reuse j for it); the spec writes it with a separate index k.

Vectors are column Matrices. Every identity returns (lhs, rhs) that must be equal; building
happens inside the functions, never at import time.
"""

from __future__ import annotations

import sympy as sp

from spec import Identity


def logits(n: int = 3, name: str = "z") -> sp.Matrix:
    """Column vector of n real symbolic logits z0..z{n-1}."""
    # real=True matters: log(exp(z)) = z and z + (-oo) = -oo (a masked logit) only hold for
    # real, hence finite, symbols.
    return sp.Matrix(sp.symbols(f"{name}0:{n}", real=True))


def softmax(z: sp.MatrixBase) -> sp.Matrix:
    """softmax(z)_j = exp(z_j) / Σ_k exp(z_k), same shape as z (a row or a column)."""
    e = z.applyfunc(sp.exp)
    return e / sum(e)


def log_softmax(z: sp.MatrixBase) -> sp.Matrix:
    """log softmax(z) = z - log Σ_k exp(z_k): the form that never takes log of a tiny ratio."""
    return z - sp.log(sum(z.applyfunc(sp.exp))) * sp.ones(*z.shape)


def softmax_jacobian(z: sp.MatrixBase) -> sp.Matrix:
    """d softmax / dz = diag(s) - s s^T (closed form, not derived)."""
    s = softmax(z)
    return sp.diag(*s) - s * s.T


def log_softmax_jacobian(z: sp.MatrixBase) -> sp.Matrix:
    """d log softmax / dz = I - 1 s^T: row i is e_i - s (closed form, not derived)."""
    s = softmax(z)
    n = len(z)
    return sp.eye(n) - sp.ones(n, 1) * s.T


# -- identities --------------------------------------------------------------------------------


def softmax_definition(n: int = 3) -> Identity:
    """Notes: softmax e^{z_j} / Σ e^{z_j}.

    The Matrix builder `softmax` equals the notes' indexed formula, written independently with
    sympy's Sum over an index k = 0..n-1.
    """
    z = logits(n)
    zi = sp.IndexedBase("z", real=True)
    j, k = sp.symbols("j k", integer=True)
    formula = sp.exp(zi[j]) / sp.Sum(sp.exp(zi[k]), (k, 0, n - 1))
    as_symbols = {zi[i]: z[i] for i in range(n)}
    rhs = sp.Matrix([formula.subs(j, i).doit().xreplace(as_symbols) for i in range(n)])
    return softmax(z), rhs


def softmax_sums_to_one(n: int = 4) -> Identity:
    """Notes: softmax e^{z_j} / Σ e^{z_j} (implied): Σ_j softmax(z)_j = 1, the weights of a
    weighted average (α^{(t)} = softmax(e^{(t)}) in spatial attention)."""
    return sum(softmax(logits(n))), sp.Integer(1)


def softmax_shift_invariance(n: int = 3) -> Identity:
    """Notes: softmax e^{z_j} / Σ e^{z_j} (implied): softmax(z + c·1) = softmax(z) for any real
    c, because e^{c} cancels between numerator and denominator."""
    z = logits(n)
    c = sp.Symbol("c", real=True)
    return softmax(z + c * sp.ones(n, 1)), softmax(z)


def softmax_stable_form(n: int = 3) -> Identity:
    """Notes: softmax e^{z_j} / Σ e^{z_j}, computed without overflow: softmax(z - max(z)·1)
    = softmax(z). Shift invariance with c = -max(z); every exponent is then <= 0, so exp never
    overflows. This is what reference.softmax computes."""
    z = logits(n)
    return softmax(z - sp.Max(*z) * sp.ones(n, 1)), softmax(z)


def softmax_jacobian_identity(n: int = 3) -> Identity:
    """Notes: softmax e^{z_j} / Σ e^{z_j}, differentiated: sympy's jacobian of the formula
    equals the closed form diag(s) - s s^T (the backward pass of softmax)."""
    z = logits(n)
    return softmax(z).jacobian(z), softmax_jacobian(z)


def softmax_vjp_identity(n: int = 3) -> Identity:
    """Notes: softmax e^{z_j} / Σ e^{z_j}, backward: J^T dy = s * (dy - <dy, s>).

    The right side is the formula of reference.softmax.softmax_vjp; the left side contracts the
    derived Jacobian with a symbolic cotangent dy."""
    z = logits(n)
    dy = logits(n, "dy")
    s = softmax(z)
    rhs = s.multiply_elementwise(dy - (dy.T * s)[0] * sp.ones(n, 1))
    return softmax(z).jacobian(z).T * dy, rhs


def log_softmax_definition(n: int = 3) -> Identity:
    """Notes: softmax e^{z_j} / Σ e^{z_j}, in log space: log softmax(z) = z - log Σ_k e^{z_k}."""
    z = logits(n)
    return softmax(z).applyfunc(sp.log), log_softmax(z)


def log_softmax_jacobian_identity(n: int = 3) -> Identity:
    """Notes: softmax e^{z_j} / Σ e^{z_j}, log space, differentiated: the jacobian of
    log(softmax(z)) is I - 1 s^T."""
    z = logits(n)
    return softmax(z).applyfunc(sp.log).jacobian(z), log_softmax_jacobian(z)


def log_softmax_vjp_identity(n: int = 3) -> Identity:
    """Notes: softmax e^{z_j} / Σ e^{z_j}, log space, backward: J^T dy = dy - s Σ_i dy_i (the
    formula of reference.softmax.log_softmax_vjp)."""
    z = logits(n)
    dy = logits(n, "dy")
    rhs = dy - softmax(z) * sum(dy)
    return softmax(z).applyfunc(sp.log).jacobian(z).T * dy, rhs
