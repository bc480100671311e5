"""Transformer layers as sympy expressions: the post-LN encoder layer of the notes, the pre-LN
block, the decoder layer, and the identities they satisfy.

Lecture notes (Transformer Encoder, "Attention is All You Need"):
    -> FF(x_i)
    -> LayerNorm(h + Attn(h, h, h))
    -> LayerNorm(h + FF(h))
and (ViT) Z'_l = MSA(LN(Z_{l-1})) + Z_{l-1}, Z_l = MLP(LN(Z'_l)) + Z'_l: the pre-LN block.

Matrices hold one token per row (reference.transformer's layout). LayerNorm normalizes each
row over the features, LN(x) = γ ∘ (x - μ) / √(σ² + ε) + β with the biased variance (the notes'
formula, with γ as the scale: the notes write β there, see reference/norm.py). The activation of
the feed-forward network is a generic function `act`, so every identity here holds for ReLU and
both GELUs alike. Attention is spec.attention.multi_head without biases.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import sympy as sp

from spec import Identity
from spec.attention import causal_mask, matrix, multi_head, permutation_matrix

act = sp.Function("act", real=True)


def layer_norm_row(x: sp.MatrixBase, gamma: sp.MatrixBase, beta: sp.MatrixBase, eps: sp.Expr):
    """LN of one row x (1, E): γ ∘ (x - μ) / √(σ² + ε) + β."""
    e = x.cols
    mu = sum(x) / e
    var = sum((xi - mu) ** 2 for xi in x) / e
    return sp.Matrix(1, e, lambda _, c: gamma[c] * (x[c] - mu) / sp.sqrt(var + eps) + beta[c])


def layer_norm(X: sp.MatrixBase, gamma, beta, eps) -> sp.Matrix:
    """LN applied to each row (token) of X."""
    return sp.Matrix.vstack(*[layer_norm_row(X.row(i), gamma, beta, eps) for i in range(X.rows)])


def feed_forward(X: sp.MatrixBase, W_1, b_1, W_2, b_2, f: Callable = act) -> sp.Matrix:
    """FF(X) = act(X W_1 + 1 b_1) W_2 + 1 b_2."""
    ones = sp.ones(X.rows, 1)
    return (X * W_1 + ones * b_1).applyfunc(f) * W_2 + ones * b_2


class Params:
    """Symbolic parameters of one layer: attention (W_Q, W_K, W_V, W_O), LayerNorms, FFN."""

    def __init__(self, e: int = 2, f: int = 2, prefix: str = "") -> None:
        self.e = e
        self.attn = [matrix(f"{prefix}{n}", e, e) for n in ("WQ", "WK", "WV", "WO")]
        self.cross = [matrix(f"{prefix}C{n}", e, e) for n in ("WQ", "WK", "WV", "WO")]
        self.ln = [(matrix(f"{prefix}g{i}", 1, e), matrix(f"{prefix}b{i}", 1, e)) for i in range(3)]
        self.ffn = (matrix("W1", e, f), matrix("c1", 1, f), matrix("W2", f, e), matrix("c2", 1, e))
        self.eps = sp.Symbol("epsilon", positive=True)
        self.act: Callable = act  # the FFN's activation (a concrete one for numeric checks)


def encoder_layer(
    X: sp.MatrixBase, p: Params, n_heads: int = 1, mask=None, norm_first: bool = False
) -> sp.Matrix:
    """Post-LN: H' = LN1(X + MHA(X)), out = LN2(H' + FF(H')). Pre-LN (norm_first):
    H' = X + MHA(LN1(X)), out = H' + FF(LN2(H'))."""
    (g1, b1), (g2, b2) = p.ln[0], p.ln[1]
    if norm_first:
        N1 = layer_norm(X, g1, b1, p.eps)
        H = X + multi_head(N1, N1, *p.attn, n_heads, mask)
        return H + feed_forward(layer_norm(H, g2, b2, p.eps), *p.ffn, p.act)
    H = layer_norm(X + multi_head(X, X, *p.attn, n_heads, mask), g1, b1, p.eps)
    return layer_norm(H + feed_forward(H, *p.ffn, p.act), g2, b2, p.eps)


def decoder_layer(Y: sp.MatrixBase, M: sp.MatrixBase, p: Params, memory_mask=None) -> sp.Matrix:
    """Post-LN decoder layer: H1 = LN1(Y + MaskedMHA(Y)), H2 = LN2(H1 + MHA(H1, M)),
    out = LN3(H2 + FF(H2)); the self-attention is causal, the cross-attention reads M."""
    (g1, b1), (g2, b2), (g3, b3) = p.ln
    H1 = layer_norm(Y + multi_head(Y, Y, *p.attn, 1, causal_mask(Y.rows)), g1, b1, p.eps)
    H2 = layer_norm(H1 + multi_head(H1, M, *p.cross, 1, memory_mask), g2, b2, p.eps)
    return layer_norm(H2 + feed_forward(H2, *p.ffn, p.act), g3, b3, p.eps)


# -- identities --------------------------------------------------------------------------------


def encoder_layer_definition(n: int = 2, e: int = 2) -> Identity:
    """Notes: LayerNorm(h + Attn(h, h, h)), then LayerNorm(h + FF(h)): the matrix builder equals
    the notes' two lines written token by token, h'_i = LN(x_i + Σ_j α_ij v_j W_O),
    out_i = LN(h'_i + FF(h'_i)) with α = softmax(q_i k_j / √E) over the tokens."""
    X, p = matrix("X", n, e), Params(e)
    W_Q, W_K, W_V, W_O = p.attn
    (g1, b1), (g2, b2) = p.ln[0], p.ln[1]
    Q, K, V = X * W_Q, X * W_K, X * W_V
    rows = []
    for i in range(n):
        scores = [(Q.row(i) * K.row(j).T)[0] / sp.sqrt(e) for j in range(n)]
        total = sum(sp.exp(s) for s in scores)
        attended = sum(((sp.exp(scores[j]) / total) * V.row(j) for j in range(n)), sp.zeros(1, e))
        h_i = layer_norm_row(X.row(i) + attended * W_O, g1, b1, p.eps)
        rows.append(layer_norm_row(h_i + feed_forward(h_i, *p.ffn), g2, b2, p.eps))
    return encoder_layer(X, p), sp.Matrix.vstack(*rows)


def pre_ln_block_definition(n: int = 2, e: int = 2) -> Identity:
    """Notes: Z'_l = MSA(LN(Z_{l-1})) + Z_{l-1}, Z_l = MLP(LN(Z'_l)) + Z'_l (the pre-LN block):
    the builder with norm_first equals the notes' two lines."""
    Z, p = matrix("Z", n, e), Params(e)
    (g1, b1), (g2, b2) = p.ln[0], p.ln[1]
    N1 = layer_norm(Z, g1, b1, p.eps)
    Z1 = multi_head(N1, N1, *p.attn, 1) + Z
    rhs = feed_forward(layer_norm(Z1, g2, b2, p.eps), *p.ffn) + Z1
    return encoder_layer(Z, p, norm_first=True), rhs


def ffn_is_position_wise(n: int = 3, e: int = 2) -> Identity:
    """Notes: -> FF(x_i): the feed-forward network maps each token on its own; row i of FF(X)
    is FF of row i alone."""
    X, p = matrix("X", n, e), Params(e)
    return feed_forward(X, *p.ffn), sp.Matrix.vstack(
        *[feed_forward(X.row(i), *p.ffn) for i in range(n)]
    )


def encoder_token_permutation(perm: Sequence[int] = (1, 2, 0), e: int = 2) -> Identity:
    """Notes: Transformer Encoder without positional encoding (implied): LayerNorm and FF act on
    each token and self-attention is permutation-equivariant, so the whole layer is:
    Enc(P X) = P Enc(X), post-LN and pre-LN alike (both stacked side by side here)."""
    X, p = matrix("X", len(perm), e), Params(e)
    P = permutation_matrix(perm)
    lhs = sp.Matrix.hstack(encoder_layer(P * X, p, 2), encoder_layer(P * X, p, 2, norm_first=True))
    rhs = sp.Matrix.hstack(P * encoder_layer(X, p, 2), P * encoder_layer(X, p, 2, norm_first=True))
    return lhs, rhs


def post_ln_rows_have_zero_mean(n: int = 2, e: int = 2) -> Identity:
    """Notes: LayerNorm(h + FF(h)) is the layer's last step: with γ = 1 and β = 0 every output
    token has mean 0 over its features (and a pre-LN block, whose last step is a residual sum,
    does not: see tests/spec/test_transformer_spec.py)."""
    X, p = matrix("X", n, e), Params(e)
    p.ln[1] = (sp.ones(1, e), sp.zeros(1, e))
    out = encoder_layer(X, p)
    return out * sp.ones(e, 1), sp.zeros(n, 1)


def decoder_causal_ignores_future(n: int = 2, e: int = 2) -> Identity:
    """Notes: Masked Self-Attention in the decoder ("미래의 단어들을 가려야 한다"): through the
    whole decoder layer (masked self-attention, cross-attention, FF, three LayerNorms) output row i
    has zero derivative with respect to every later decoder token y_j, j > i."""
    Y, M, p = matrix("Y", n, e), matrix("M", 2, e), Params(e)
    out = decoder_layer(Y, M, p)
    derivatives = [
        sp.diff(out[i, c], Y[j, a])
        for i in range(n)
        for j in range(i + 1, n)
        for c in range(e)
        for a in range(e)
    ]
    return sp.Matrix(derivatives), sp.zeros(len(derivatives), 1)


def decoder_ignores_padded_memory(n: int = 2, m: int = 2, e: int = 2) -> Identity:
    """Notes: Cross-Attention, K, V <= X (encoder), with padding (implied): an encoder position
    hidden by the memory key mask does not reach the decoder output (zero derivative)."""
    Y, M, p = matrix("Y", n, e), matrix("M", m, e), Params(e)
    visible = sp.Matrix(n, m, lambda i, j: -sp.oo if j == m - 1 else 0)
    out = decoder_layer(Y, M, p, memory_mask=visible)
    derivatives = [
        sp.diff(out[i, c], M[m - 1, a]) for i in range(n) for c in range(e) for a in range(e)
    ]
    return sp.Matrix(derivatives), sp.zeros(len(derivatives), 1)
