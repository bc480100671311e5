"""Sinusoidal positional encodings as sympy expressions, and the identities they satisfy.

Lecture notes:
    positional encoding: x_j + p_j or concat(x_j, p_j)
    p = [sin(w_1 pos), cos(w_1 pos), ..., sin(w_d pos), cos(w_d pos)]  (2d entries)
    w_k = 1 / 10000^(k/d)

The notes' d counts (sin, cos) PAIRS and their k starts at 1; Vaswani et al. (and nnspec) write
the model width D = 2d and start at k = 0: w_k = 1 / 10000^(2k/D), so the first pair is
(sin(pos), cos(pos)). `notes_vector` is the notes' formula with k from 0, and
`pe_matches_notes` shows it is the interleaved encoding of width 2d. Read literally (k = 1..d),
the notes would scale every frequency by 10000^(-1/d); no library does that, so nnspec follows
Vaswani et al. and it is not a variant.

Layouts (a declared variant, positional.layout): interleaved (Vaswani: sin at 2k, cos at
2k + 1) and concatenated (tensor2tensor, Marian: all D/2 sines, then all cosines).
"""

from __future__ import annotations

import sympy as sp

from spec import Identity

BASE = 10000


def position(name: str = "pos") -> sp.Symbol:
    return sp.Symbol(name, real=True)


def frequency(k: int, d_model: int) -> sp.Expr:
    """w_k = 1 / 10000^(2k / D), exactly."""
    return 1 / sp.Integer(BASE) ** sp.Rational(2 * k, d_model)


def pe(pos: sp.Expr, d_model: int, layout: str = "interleaved") -> sp.Matrix:
    """PE(pos), a column of D entries."""
    half = d_model // 2
    sines = [sp.sin(pos * frequency(k, d_model)) for k in range(half)]
    cosines = [sp.cos(pos * frequency(k, d_model)) for k in range(half)]
    if layout == "interleaved":
        return sp.Matrix([v for pair in zip(sines, cosines, strict=True) for v in pair])
    if layout == "concatenated":
        return sp.Matrix(sines + cosines)
    raise ValueError(f"layout {layout!r} is not 'interleaved' or 'concatenated'")


def notes_vector(pos: sp.Expr, d_pairs: int) -> sp.Matrix:
    """The notes' vector [sin(w_k pos), cos(w_k pos)]_k with w_k = 1/10000^(k/d), d = number of
    pairs, k = 0 .. d-1 (the notes write k from 1; see the module docstring)."""
    entries = []
    for k in range(d_pairs):
        w = 1 / sp.Integer(BASE) ** sp.Rational(k, d_pairs)
        entries += [sp.sin(w * pos), sp.cos(w * pos)]
    return sp.Matrix(entries)


def shift_matrix(s: sp.Expr, d_model: int, layout: str = "interleaved") -> sp.Matrix:
    """R(s): a rotation by s w_k on each (sin, cos) pair; depends on s only, never on pos."""
    half = d_model // 2
    R = sp.zeros(d_model, d_model)
    for k in range(half):
        i, j = (2 * k, 2 * k + 1) if layout == "interleaved" else (k, half + k)
        a = s * frequency(k, d_model)
        R[i, i], R[i, j] = sp.cos(a), sp.sin(a)
        R[j, i], R[j, j] = -sp.sin(a), sp.cos(a)
    return R


def layout_permutation(d_model: int) -> sp.Matrix:
    """Π with Π PE_interleaved = PE_concatenated: row k picks feature 2k (a sine), row D/2 + k
    picks feature 2k + 1 (a cosine)."""
    half = d_model // 2
    order = [2 * k for k in range(half)] + [2 * k + 1 for k in range(half)]
    return sp.Matrix(d_model, d_model, lambda i, j: 1 if j == order[i] else 0)


def _trig_expanded(M: sp.MatrixBase) -> sp.Matrix:
    """sin/cos of sums written out (sin(a + b) = sin a cos b + cos a sin b): a rewriting, not an
    assumption; the prover checks what is left."""
    return M.applyfunc(lambda e: sp.expand_trig(sp.expand(e)))


# -- identities --------------------------------------------------------------------------------


def pe_definition(d_model: int = 6) -> Identity:
    """Notes: positional encoding [sin(w_1 pos), cos(w_1 pos), ..., sin(w_d pos), cos(w_d pos)]:
    PE(pos, 2k) = sin(pos / 10000^(2k/D)), PE(pos, 2k+1) = cos(pos / 10000^(2k/D)), written
    with the indexed formula of Vaswani et al."""
    pos = position()
    rhs = sp.Matrix(
        [
            (sp.sin if i % 2 == 0 else sp.cos)(
                pos / sp.Integer(BASE) ** sp.Rational(i - i % 2, d_model)
            )
            for i in range(d_model)
        ]
    )
    return pe(pos, d_model), rhs


def pe_matches_notes(d_pairs: int = 3) -> Identity:
    """Notes: w_k = 1 / 10000^(k/d) with d (sin, cos) pairs: the notes' vector of 2d entries is
    the interleaved encoding of width D = 2d (10000^(k/d) = 10000^(2k/D))."""
    pos = position()
    return notes_vector(pos, d_pairs), pe(pos, 2 * d_pairs)


def pe_shift_is_rotation(d_model: int = 4, layout: str = "interleaved") -> Identity:
    """Notes: positional encoding, relative positions (implied): PE(pos + s) = R(s) PE(pos),
    R(s) a rotation by s w_k on each (sin, cos) pair that does not depend on pos. A fixed
    linear map reaches every offset s, which is why sinusoids let attention use relative
    positions."""
    pos, s = position(), position("s")
    lhs = _trig_expanded(pe(pos + s, d_model, layout))
    return lhs, _trig_expanded(shift_matrix(s, d_model, layout) * pe(pos, d_model, layout))


def pe_shift_is_rotation_concatenated(d_model: int = 4) -> Identity:
    """Notes: positional encoding, relative positions, concatenated layout: the same rotation,
    acting on features (k, D/2 + k) instead of (2k, 2k + 1)."""
    return pe_shift_is_rotation(d_model, "concatenated")


def pe_norm(d_model: int = 6) -> Identity:
    """Notes: positional encoding (implied): ||PE(pos)||^2 = Σ_k sin^2 + cos^2 = D/2 at every
    position, so adding it never swamps an embedding of comparable norm."""
    p = pe(position(), d_model)
    return sp.trigsimp((p.T * p)[0]), sp.Rational(d_model, 2)


def pe_dot_depends_on_offset_only(d_model: int = 4) -> Identity:
    """Notes: positional encoding, relative positions (implied): PE(pos) · PE(pos + s) =
    Σ_k cos(s w_k), a function of the offset s alone."""
    pos, s = position(), position("s")
    dot = (pe(pos, d_model).T * pe(pos + s, d_model))[0]
    rhs = sum(sp.cos(s * frequency(k, d_model)) for k in range(d_model // 2))
    return sp.expand_trig(sp.expand(dot)), sp.expand_trig(rhs)


def layouts_are_a_permutation(d_model: int = 6) -> Identity:
    """Notes: positional encoding, the two layouts (implied): the concatenated encoding is a
    fixed permutation of the interleaved one, so a layer that learns its input projection
    cannot tell them apart, but weights trained with one layout are wrong under the other."""
    pos = position()
    return layout_permutation(d_model) * pe(pos, d_model), pe(pos, d_model, "concatenated")


def add_is_concat_then_tied_projection(d: int = 2, e: int = 2) -> Identity:
    """Notes: x_j + p_j or concat(x_j, p_j): a linear layer W applied to x + p equals the layer
    [W; W] applied to concat(x, p); concatenation followed by a linear layer can learn addition
    (and more, with untied halves), at twice the width."""
    x = sp.Matrix(1, d, lambda i, j: sp.Symbol(f"x_{j}", real=True))
    p = sp.Matrix(1, d, lambda i, j: sp.Symbol(f"p_{j}", real=True))
    W = sp.Matrix(d, e, lambda i, j: sp.Symbol(f"W_{i}_{j}", real=True))
    return sp.Matrix.hstack(x, p) * sp.Matrix.vstack(W, W), (x + p) * W
