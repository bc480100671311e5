"""Scaled dot-product attention as sympy expressions, and the identities the notes state or imply.

Lecture notes:
    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) · V
    Query = X W_Q : n x d_k,  Key = X W_K : n x d_k,  Value = X W_V : n x d_v
    Self-Attention: Q, K, V <= X.  Cross-Attention: Q <= Y (decoder), K, V <= X (encoder)
    Masked Self-Attention: "i-th row < j-th column then -inf" (key j > query i is hidden)

Conventions are reference.attention's: Q (Tq, d_k), K (Tk, d_k), V (Tk, d_v), one query per row,
softmax along each row. A mask here is additive (0 or -oo), literally the notes' "-inf": for a
real score s, s + (-oo) = -oo and exp(-oo) = 0, so a hidden key gets weight exactly 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import sympy as sp

from spec import Identity
from spec.softmax import softmax

# -- builders ----------------------------------------------------------------------------------


def matrix(name: str, rows: int, cols: int) -> sp.Matrix:
    """rows x cols Matrix of real symbols name_i_j (same name -> same symbols, so two calls
    build the same matrix)."""
    return sp.Matrix(rows, cols, lambda i, j: sp.Symbol(f"{name}_{i}_{j}", real=True))


def causal_mask(tq: int, tk: int | None = None) -> sp.Matrix:
    """Additive mask of the notes: -oo where key j > query i (top-left aligned), else 0."""
    tk = tq if tk is None else tk
    return sp.Matrix(tq, tk, lambda i, j: -sp.oo if j > i else 0)


def additive_mask(visible: Sequence[Sequence[bool]]) -> sp.Matrix:
    """Additive mask from a boolean one (True = may attend, reference.attention's polarity)."""
    return sp.Matrix([[0 if v else -sp.oo for v in row] for row in visible])


def permutation_matrix(perm: Sequence[int]) -> sp.Matrix:
    """P with (P A)[i] = A[perm[i]]: row i of P is e_{perm[i]}."""
    n = len(perm)
    return sp.Matrix(n, n, lambda i, j: 1 if j == perm[i] else 0)


def softmax_rows(S: sp.MatrixBase) -> sp.Matrix:
    """softmax applied to each row of S (each query normalises over the keys)."""
    return sp.Matrix.vstack(*[softmax(S.row(i)) for i in range(S.rows)])


def attention_weights(
    Q: sp.MatrixBase,
    K: sp.MatrixBase,
    mask: sp.MatrixBase | None = None,
    scale: sp.Expr | None = None,
) -> sp.Matrix:
    """alpha = softmax(Q K^T · scale + mask) row-wise; scale defaults to 1/sqrt(d_k)."""
    scale = 1 / sp.sqrt(Q.cols) if scale is None else scale
    S = Q * K.T * scale
    if mask is not None:
        S = S + mask
    return softmax_rows(S)


def attention(
    Q: sp.MatrixBase,
    K: sp.MatrixBase,
    V: sp.MatrixBase,
    mask: sp.MatrixBase | None = None,
    scale: sp.Expr | None = None,
) -> sp.Matrix:
    """Notes: Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) · V; (Tq, d_v)."""
    return attention_weights(Q, K, mask, scale) * V


def attention_inverse_d_scale(
    Q: sp.MatrixBase, K: sp.MatrixBase, V: sp.MatrixBase, mask: sp.MatrixBase | None = None
) -> sp.Matrix:
    """MUTANT, not the spec: scores scaled by 1/d_k instead of 1/sqrt(d_k).

    muP-style attention does this on purpose (variant attention.scale=1/d); against the notes'
    formula it is wrong. The two agree only when d_k = 1, so a check needs d_k >= 2 to tell
    them apart."""
    return attention(Q, K, V, mask, scale=sp.Rational(1, Q.cols))


def projections(
    X: sp.MatrixBase, W_Q: sp.MatrixBase, W_K: sp.MatrixBase, W_V: sp.MatrixBase
) -> tuple[sp.Matrix, sp.Matrix, sp.Matrix]:
    """Notes: Query = X W_Q, Key = X W_K, Value = X W_V."""
    return X * W_Q, X * W_K, X * W_V


def self_attention(
    X: sp.MatrixBase,
    W_Q: sp.MatrixBase,
    W_K: sp.MatrixBase,
    W_V: sp.MatrixBase,
    mask: sp.MatrixBase | None = None,
) -> sp.Matrix:
    """Notes: Self-Attention, Q, K, V <= X: Attention(X W_Q, X W_K, X W_V)."""
    return attention(*projections(X, W_Q, W_K, W_V), mask=mask)


def cross_attention(
    Y: sp.MatrixBase,
    X: sp.MatrixBase,
    W_Q: sp.MatrixBase,
    W_K: sp.MatrixBase,
    W_V: sp.MatrixBase,
    mask: sp.MatrixBase | None = None,
) -> sp.Matrix:
    """Notes: Cross-Attention, Q <= Y (decoder), K, V <= X (encoder):
    Attention(Y W_Q, X W_K, X W_V); one output row per decoder position."""
    return attention(Y * W_Q, X * W_K, X * W_V, mask=mask)


def weights(d: int = 2, d_k: int = 2, d_v: int = 2) -> tuple[sp.Matrix, sp.Matrix, sp.Matrix]:
    """Symbolic W_Q (d, d_k), W_K (d, d_k), W_V (d, d_v)."""
    return matrix("WQ", d, d_k), matrix("WK", d, d_k), matrix("WV", d, d_v)


# -- identities --------------------------------------------------------------------------------


def attention_definition(tq: int = 2, tk: int = 3, dk: int = 2, dv: int = 2) -> Identity:
    """Notes: Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) · V.

    The matrix form equals the same formula written per entry: out_ic = Σ_j α_ij v_jc with
    α_ij = exp(q_i·k_j / sqrt(d_k)) / Σ_l exp(q_i·k_l / sqrt(d_k)), i.e. each output row is a
    weighted average of the value rows (Tq != Tk so that no transpose slip goes unnoticed)."""
    Q, K, V = matrix("Q", tq, dk), matrix("K", tk, dk), matrix("V", tk, dv)

    def score(i: int, j: int) -> sp.Expr:
        return sum(Q[i, a] * K[j, a] for a in range(dk)) / sp.sqrt(dk)

    def alpha(i: int, j: int) -> sp.Expr:
        return sp.exp(score(i, j)) / sum(sp.exp(score(i, l)) for l in range(tk))

    rhs = sp.Matrix(tq, dv, lambda i, c: sum(alpha(i, j) * V[j, c] for j in range(tk)))
    return attention(Q, K, V), rhs


def score_variance(d_k: int = 4, inverse_d: bool = False) -> Identity:
    """Notes: the sqrt(d_k) in softmax(Q K^T / sqrt(d_k)).

    For q, k with independent zero-mean unit-variance entries, E[(q·k · scale)^2] = 1 with
    scale = 1/sqrt(d_k): the scores keep unit variance whatever d_k, so softmax does not
    saturate as d_k grows. With the 1/d_k mutant (inverse_d=True) the variance is 1/d_k, and
    this function returns (1/d_k, 1) which is not an identity."""
    q, k = matrix("q", d_k, 1), matrix("k", d_k, 1)
    scale = sp.Rational(1, d_k) if inverse_d else 1 / sp.sqrt(d_k)
    second_moment = _expectation(sp.expand(((q.T * k)[0] * scale) ** 2))
    return second_moment, sp.Integer(1)


def _expectation(poly: sp.Expr) -> sp.Expr:
    """E[poly] for independent standard normal symbols: E[x^p] = (p-1)!! for even p, else 0.

    Only the first two moments matter for the second moment of a dot product; any zero-mean
    unit-variance distribution gives the same answer."""
    total = sp.Integer(0)
    for term in sp.Add.make_args(poly):
        coeff, monomial = term.as_coeff_Mul()
        value = coeff
        for _, p in monomial.as_powers_dict().items():
            value *= 0 if p % 2 else sp.factorial2(p - 1)
        total += value
    return total


def self_attention_identity(n: int = 3, d: int = 2) -> Identity:
    """Notes: Self-Attention vs Cross-Attention, "Q, K, V <= X".

    Self-attention is the case Y = X of cross-attention, and it is Attention of the notes'
    projections Query = X W_Q, Key = X W_K, Value = X W_V written out explicitly."""
    X = matrix("X", n, d)
    W_Q, W_K, W_V = weights(d)
    Q, K, V = X * W_Q, X * W_K, X * W_V
    lhs = sp.Matrix.hstack(self_attention(X, W_Q, W_K, W_V), cross_attention(X, X, W_Q, W_K, W_V))
    return lhs, sp.Matrix.hstack(attention(Q, K, V), attention(Q, K, V))


def cross_attention_identity(m: int = 2, n: int = 3, d: int = 2) -> Identity:
    """Notes: Cross-Attention, "Q <= Y (decoder), K, V <= X (encoder)".

    m decoder positions attend over n encoder positions: the output has m rows, and row i is
    cross-attention of decoder row i alone (each query reads the encoder independently)."""
    Y, X = matrix("Y", m, d), matrix("X", n, d)
    W = weights(d)
    rows = [cross_attention(Y.row(i), X, *W) for i in range(m)]
    return sp.Matrix.vstack(*rows), cross_attention(Y, X, *W)


def masked_weights_are_visible_softmax(
    visible: Sequence[Sequence[bool]] = ((True, False, True), (False, True, True)),
    dk: int = 2,
) -> Identity:
    """Notes: Masked Self-Attention, "i-th row < j-th column then -inf", for any mask.

    Adding -oo to a hidden score is the same as a softmax over the visible keys only, with
    weight exactly 0 on hidden keys (what reference.attention.attention_weights computes).
    Every row needs a visible key: with none, the notes' formula is 0/0."""
    tq, tk = len(visible), len(visible[0])
    Q, K = matrix("Q", tq, dk), matrix("K", tk, dk)
    S = Q * K.T / sp.sqrt(dk)
    rhs = sp.zeros(tq, tk)
    for i, row in enumerate(visible):
        keys = [j for j, v in enumerate(row) if v]
        alpha = softmax(sp.Matrix([[S[i, j] for j in keys]]))
        for a, j in enumerate(keys):
            rhs[i, j] = alpha[a]
    return attention_weights(Q, K, additive_mask(visible)), rhs


def causal_weights(n: int = 3, dk: int = 2) -> Identity:
    """Notes: Masked Self-Attention, "i-th row < j-th column then -inf".

    With the causal mask, row i of the weights is softmax over keys 0..i and exactly 0 on
    keys j > i: a lower-triangular matrix of rows that each sum to 1."""
    Q, K = matrix("Q", n, dk), matrix("K", n, dk)
    S = Q * K.T / sp.sqrt(dk)
    rhs = sp.zeros(n, n)
    for i in range(n):
        rhs[i, : i + 1] = softmax(S[i, : i + 1])
    return attention_weights(Q, K, causal_mask(n)), rhs


def causal_ignores_future(n: int = 3, d: int = 2) -> Identity:
    """Notes: Masked Self-Attention, "decoder를 training할 때에는 미래의 단어들을 가려야 한다"
    (when training the decoder, future words must be hidden).

    With the causal mask, d out[i, c] / d X[j, a] = 0 for every key position j > i and every
    c, a: position i cannot see (or leak gradient to) later tokens. See
    `future_leaks_without_mask` for the same derivatives without the mask (not zero)."""
    return _future_derivatives(n, d, causal_mask(n)), sp.zeros(n * (n - 1) // 2 * d * d, 1)


def future_leaks_without_mask(n: int = 3, d: int = 2) -> sp.Matrix:
    """The derivatives of `causal_ignores_future` with no mask: NOT all zero, which shows that
    the zero above comes from the mask and not from the construction."""
    return _future_derivatives(n, d, None)


def _future_derivatives(n: int, d: int, mask: sp.MatrixBase | None) -> sp.Matrix:
    X = matrix("X", n, d)
    out = self_attention(X, *weights(d), mask=mask)
    derivatives = [
        sp.diff(out[i, c], X[j, a])
        for i in range(n)
        for j in range(i + 1, n)
        for c in range(out.cols)
        for a in range(d)
    ]
    return sp.Matrix(derivatives)


def causal_is_prefix_attention(n: int = 3, d: int = 2) -> Identity:
    """Notes: Masked Self-Attention (implied): row i of causal self-attention over X equals the
    last row of unmasked self-attention over the prefix X[0..i], which is why a decoder can be
    trained on whole sequences at once and still predict token by token."""
    X = matrix("X", n, d)
    W = weights(d)
    prefix_rows = [self_attention(X[: i + 1, :], *W).row(i) for i in range(n)]
    return self_attention(X, *W, mask=causal_mask(n)), sp.Matrix.vstack(*prefix_rows)


def key_permutation(
    perm: Sequence[int] = (2, 0, 1), tq: int = 2, dk: int = 2, dv: int = 2
) -> Identity:
    """Notes: Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) · V (implied): permuting keys and
    values together leaves the output unchanged, softmax(Q (P K)^T) (P V) = softmax(Q K^T) V.
    Attention is a weighted sum over an unordered set of (key, value) pairs."""
    tk = len(perm)
    P = permutation_matrix(perm)
    Q, K, V = matrix("Q", tq, dk), matrix("K", tk, dk), matrix("V", tk, dv)
    return attention(Q, P * K, P * V), attention(Q, K, V)


def token_permutation(perm: Sequence[int] = (1, 2, 0), d: int = 2) -> Identity:
    """Notes: Self-Attention, Q, K, V <= X, with no positional encoding (implied): permutation
    equivariance Attn(P X) = P Attn(X). Without positional information the layer cannot know
    token order, which is why the notes add positional encodings next."""
    X = matrix("X", len(perm), d)
    P = permutation_matrix(perm)
    W = weights(d)
    return self_attention(P * X, *W), P * self_attention(X, *W)


def attention_vjp_identity(tq: int = 2, tk: int = 2, dk: int = 2, dv: int = 2) -> Identity:
    """Notes: Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) · V, backward.

    With L = Σ dO ∘ Attention(Q, K, V), the derived gradients dL/dQ, dL/dK, dL/dV equal the
    formulas of reference.attention.sdpa_vjp:
        dV = α^T dO,  dα = dO V^T,  dS = α ∘ (dα - rowsum(dα ∘ α)),
        dQ = dS K / sqrt(d_k),  dK = dS^T Q / sqrt(d_k).
    Both sides are the entries of (dQ, dK, dV) stacked into one column."""
    Q, K, V = matrix("Q", tq, dk), matrix("K", tk, dk), matrix("V", tk, dv)
    dO = matrix("dO", tq, dv)
    out = attention(Q, K, V)
    L = sum(out.multiply_elementwise(dO))
    derived = [sp.diff(L, x) for M in (Q, K, V) for x in M]

    alpha = attention_weights(Q, K)
    scale = 1 / sp.sqrt(dk)
    dalpha = dO * V.T
    rowsum = dalpha.multiply_elementwise(alpha) * sp.ones(tk, 1)
    dS = alpha.multiply_elementwise(dalpha - rowsum * sp.ones(1, tk))
    closed = [*(dS * K * scale), *(dS.T * Q * scale), *(alpha.T * dO)]
    return sp.Matrix(derived), sp.Matrix(closed)


def softmax_backward_row_term(tq: int = 2, tk: int = 3, dv: int = 2) -> Identity:
    """Notes: Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) · V, backward (implied): the row
    term of the softmax vjp, Σ_j α_ij dα_ij with dα = dO V^T, equals dO_i · O_i with O = α V,
    the output. FlashAttention-style kernels (and reference.attention.sdpa_vjp) use the second
    form: it needs the saved output instead of the N x N weights."""
    Q, K, V = matrix("Q", tq, 2), matrix("K", tk, 2), matrix("V", tk, dv)
    dO = matrix("dO", tq, dv)
    alpha = attention_weights(Q, K)
    dalpha = dO * V.T
    out = alpha * V
    lhs = dalpha.multiply_elementwise(alpha) * sp.ones(tk, 1)
    return lhs, dO.multiply_elementwise(out) * sp.ones(dv, 1)


# -- multi-head attention ------------------------------------------------------------------------
#
# Notes: "Multi-Head: h개의 다중 Attention, W_Q, W_K, W_V 를 이용" (h attentions, each with its own
# W_Q, W_K, W_V). Layout of reference.attention.mha: head h uses columns h*d_h .. (h+1)*d_h - 1
# of W_Q, W_K, W_V (d_h = E / h), and the heads' outputs are concatenated, then multiplied by W_O.


def head_columns(W: sp.MatrixBase, head: int, n_heads: int) -> sp.Matrix:
    """The columns of W that head `head` uses: a (rows, E / n_heads) block."""
    d_h = W.cols // n_heads
    return W[:, head * d_h : (head + 1) * d_h]


def head_rows(W_O: sp.MatrixBase, head: int, n_heads: int) -> sp.Matrix:
    """The rows of W_O that multiply head `head`'s output in concat(heads) W_O."""
    d_h = W_O.rows // n_heads
    return W_O[head * d_h : (head + 1) * d_h, :]


def multi_head(
    X_q: sp.MatrixBase,
    X_kv: sp.MatrixBase,
    W_Q: sp.MatrixBase,
    W_K: sp.MatrixBase,
    W_V: sp.MatrixBase,
    W_O: sp.MatrixBase,
    n_heads: int,
    mask: sp.MatrixBase | None = None,
) -> sp.Matrix:
    """Notes: Multi-Head, h attentions with their own W_Q, W_K, W_V:
    concat_h(Attention(X_q W_Q^h, X_kv W_K^h, X_kv W_V^h)) W_O (no biases)."""
    heads = [
        attention(
            X_q * head_columns(W_Q, h, n_heads),
            X_kv * head_columns(W_K, h, n_heads),
            X_kv * head_columns(W_V, h, n_heads),
            mask=mask,
        )
        for h in range(n_heads)
    ]
    return sp.Matrix.hstack(*heads) * W_O


def mha_weights(d: int = 2, e: int = 2) -> tuple[sp.Matrix, sp.Matrix, sp.Matrix, sp.Matrix]:
    """Symbolic W_Q, W_K, W_V (d, e) and W_O (e, e)."""
    return matrix("WQ", d, e), matrix("WK", d, e), matrix("WV", d, e), matrix("WO", e, e)


def mha_concat_is_sum_over_heads(n: int = 2, n_heads: int = 3, d_h: int = 2) -> Identity:
    """Notes: Multi-Head, h개의 다중 Attention (implied): concatenating the heads and applying W_O
    equals the sum over heads of head_h W_O^h, W_O^h the d_h rows of W_O that face head h.
    Holds for any head outputs (generic matrices here), so each head's contribution to the
    output is separate and the heads could run independently."""
    heads = [matrix(f"O{h}", n, d_h) for h in range(n_heads)]
    W_O = matrix("WO", n_heads * d_h, 3)
    lhs = sp.Matrix.hstack(*heads) * W_O
    rhs = sum((heads[h] * head_rows(W_O, h, n_heads) for h in range(n_heads)), sp.zeros(n, 3))
    return lhs, rhs


def mha_one_head_is_attention(n: int = 3, d: int = 2) -> Identity:
    """Notes: Multi-Head with h = 1 is the single Attention of the notes: with one head and
    W_O = I, multi-head self-attention is Attention(X W_Q, X W_K, X W_V)."""
    X = matrix("X", n, d)
    W_Q, W_K, W_V = weights(d)
    return multi_head(X, X, W_Q, W_K, W_V, sp.eye(d), 1), self_attention(X, W_Q, W_K, W_V)


def mha_heads_use_their_own_columns(n: int = 2, d: int = 2) -> Identity:
    """Notes: Multi-Head, each head has its own W_Q, W_K, W_V: with W_O keeping only head 0's
    rows, the output does not depend on the columns of W_Q, W_K, W_V that belong to head 1.
    Both sides are the same multi-head attention, the right one with head 1's columns of the
    projections replaced by other symbols. (A split along the wrong axis mixes the heads.)"""
    X = matrix("X", n, d)
    n_heads, e = 2, 4
    W_Q, W_K, W_V, W_O = mha_weights(d, e)
    keep0 = sp.Matrix(e, e, lambda i, j: W_O[i, j] if i < e // n_heads else 0)

    def other_head1(W: sp.MatrixBase, name: str) -> sp.Matrix:
        return sp.Matrix.hstack(W[:, : e // n_heads], matrix(name, d, e // n_heads))

    rhs = multi_head(
        X, X, other_head1(W_Q, "UQ"), other_head1(W_K, "UK"), other_head1(W_V, "UV"), keep0, 2
    )
    return multi_head(X, X, W_Q, W_K, W_V, keep0, n_heads), rhs


def mha_token_permutation(perm: Sequence[int] = (1, 2, 0), d: int = 2) -> Identity:
    """Notes: Multi-Head self-attention without positional encoding (implied): permutation
    equivariance MHA(P X) = P MHA(X) with two heads, as for one head (token_permutation)."""
    X = matrix("X", len(perm), d)
    P = permutation_matrix(perm)
    W = mha_weights(d, 2)
    return multi_head(P * X, P * X, *W, 2), P * multi_head(X, X, *W, 2)


def mha_key_bias_cancels(n: int = 2, d: int = 2) -> Identity:
    """Notes: Key = X W_K (with a bias b_k, implied): b_k adds q_i · b_k to every score of
    query i, which softmax ignores, so the output does not depend on b_k and dL/db_k = 0
    (why reference.attention.mha takes b_k without returning a gradient for it)."""
    X = matrix("X", n, d)
    W_Q, W_K, W_V = weights(d)
    b_k = matrix("bk", 1, 2)
    Q, K, V = X * W_Q, X * W_K, X * W_V
    return attention(Q, K + sp.ones(n, 1) * b_k, V), attention(Q, K, V)
