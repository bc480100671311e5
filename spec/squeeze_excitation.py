"""Squeeze-and-Excitation as sympy expressions (one sample, spatial positions flattened).

Lecture notes: "Squeeze-and-Excitation Net : Channel Attention". Written out (Hu et al. 2018):
    z_c = 1/(HW) Σ_{h,w} x_{c,h,w}               squeeze (global average pool)
    s = σ(W2 relu(W1 z + b1) + b2)                 excitation, one gate per channel
    out_{c,h,w} = s_c x_{c,h,w}

x is a C × P Matrix (P = H·W spatial positions; the gate does not care how they are arranged),
W1 C_r × C, W2 C × C_r. relu is Max(0, ·), so expressions stay piecewise-exact.
"""

from __future__ import annotations

from collections.abc import Sequence

import sympy as sp

from spec import Identity
from spec.activation import sigmoid


def matrix(name: str, rows: int, cols: int) -> sp.Matrix:
    return sp.Matrix(rows, cols, lambda i, j: sp.Symbol(f"{name}_{i}_{j}", real=True))


def squeeze(x: sp.MatrixBase) -> sp.Matrix:
    """z = the mean of each channel's row: global average pooling, C × 1."""
    return x * sp.ones(x.cols, 1) / x.cols


def gate(x, w1, b1, w2, b2) -> sp.Matrix:
    """s = σ(W2 relu(W1 z + b1) + b2), C × 1."""
    h = (w1 * squeeze(x) + b1).applyfunc(lambda a: sp.Max(0, a))
    return (w2 * h + b2).applyfunc(sigmoid)


def squeeze_excitation(x, w1, b1, w2, b2) -> sp.Matrix:
    """out = x scaled row by row (channel by channel) by the gate: diag(s) x."""
    return sp.diag(*gate(x, w1, b1, w2, b2)) * x


def parameters(c: int, cr: int) -> tuple[sp.Matrix, sp.Matrix, sp.Matrix, sp.Matrix]:
    return matrix("W1", cr, c), matrix("b1", cr, 1), matrix("W2", c, cr), matrix("b2", c, 1)


def column_permutation(x: sp.MatrixBase, perm: Sequence[int]) -> sp.Matrix:
    """x with its spatial positions (columns) reordered: column j of the result is perm[j]."""
    return sp.Matrix.hstack(*[x.col(j) for j in perm])


# -- identities --------------------------------------------------------------------------------


def squeeze_definition(c: int = 2, p: int = 3) -> Identity:
    """Notes: Squeeze-and-Excitation Net, squeeze: z_c = 1/(HW) Σ_{h,w} x_{c,h,w}, written with
    an indexed Sum and compared with the Matrix builder."""
    x = matrix("x", c, p)
    xi = sp.IndexedBase("x", real=True)
    ch, pos = sp.symbols("c j", integer=True)
    formula = sp.Sum(xi[ch, pos], (pos, 0, p - 1)) / p
    as_symbols = {xi[i, j]: x[i, j] for i in range(c) for j in range(p)}
    rhs = sp.Matrix([formula.subs(ch, i).doit().xreplace(as_symbols) for i in range(c)])
    return squeeze(x), rhs


def gate_spatial_permutation_invariance(c: int = 2, cr: int = 1, p: int = 3) -> Identity:
    """Notes: Squeeze-and-Excitation Net : Channel Attention (implied): the gate s sees x only
    through the spatial mean, so reordering the H·W positions leaves s unchanged."""
    x = matrix("x", c, p)
    perm = [*range(1, p), 0]  # a cycle moves every position
    params = parameters(c, cr)
    return gate(column_permutation(x, perm), *params), gate(x, *params)


def output_spatial_equivariance(c: int = 2, cr: int = 1, p: int = 3) -> Identity:
    """Notes: Squeeze-and-Excitation Net : Channel Attention (implied): out(P x) = P out(x) for
    any reordering P of the spatial positions."""
    x = matrix("x", c, p)
    perm = [p - 1 - j for j in range(p)]
    params = parameters(c, cr)
    lhs = squeeze_excitation(column_permutation(x, perm), *params)
    return lhs, column_permutation(squeeze_excitation(x, *params), perm)


def input_gradient(c: int = 2, cr: int = 1, p: int = 2) -> Identity:
    """Notes: Squeeze-and-Excitation Net, backward (implied): for L = Σ dout ∘ out,
    dx = dout ∘ s + (1/P) W1^T (relu'(a) ∘ W2^T (s(1 - s) ∘ Σ_j dout_{:,j} x_{:,j})) 1^T, with
    a = W1 z + b1 (reference.squeeze_excitation.squeeze_excitation_vjp)."""
    x, dout = matrix("x", c, p), matrix("dout", c, p)
    w1, b1, w2, b2 = parameters(c, cr)
    out = squeeze_excitation(x, w1, b1, w2, b2)
    loss = sum(out.multiply_elementwise(dout))
    derived = sp.Matrix(c, p, lambda i, j: sp.diff(loss, x[i, j]))
    s = gate(x, w1, b1, w2, b2)
    a = w1 * squeeze(x) + b1
    ds = dout.multiply_elementwise(x) * sp.ones(p, 1)
    du = ds.multiply_elementwise(s.applyfunc(lambda v: v * (1 - v)))
    da = (w2.T * du).multiply_elementwise(a.applyfunc(sp.Heaviside))
    dz = w1.T * da
    closed = dout.multiply_elementwise(s * sp.ones(1, p)) + dz * sp.ones(1, p) / p
    return derived, closed
