"""Inductive bias of CNNs vs ViT as sympy identities: translation equivariance of convolution,
invariance of global average pooling, strided operations, and permutation equivariance of
self-attention (lost with position embeddings).

Lecture notes (CNN vs ViT):
    CNN: strong prior — locality, translation equivariance  F(T(x)) = T(F(x))
    ViT: weak prior (locality and translation equivariance crossed out) <= position encoding
    Note: translation invariance  F(T(x)) = F(x)

T is a translation of the image grid. Exact statements need a grid without a border: T here
is the circular shift (torch.roll), and the convolution pads circularly. With zero padding the
equivariance holds only away from the border (conv_zero_padding_interior). Images are single
channel (h, w) Matrices here; channels only add sums. Convolution is cross-correlation, as
every library computes it: out[i, j] = Σ_{dy, dx} k[dy, dx] x[i + dy - r, j + dx - r] with
"same" size (r = kernel radius).
"""

from __future__ import annotations

from collections.abc import Sequence

import sympy as sp

from spec import Identity
from spec.attention import matrix, permutation_matrix, self_attention, weights


def shift(X: sp.MatrixBase, sy: int, sx: int) -> sp.Matrix:
    """T: circular translation by (sy, sx): out[i, j] = x[(i - sy) mod h, (j - sx) mod w]."""
    h, w = X.shape
    return sp.Matrix(h, w, lambda i, j: X[(i - sy) % h, (j - sx) % w])


def conv_same(X: sp.MatrixBase, K: sp.MatrixBase, padding: str = "circular") -> sp.Matrix:
    """'same' cross-correlation with an odd k x k kernel, padding "circular" or "zeros"."""
    h, w = X.shape
    k = K.rows
    r = k // 2

    def pixel(i: int, j: int) -> sp.Expr:
        if padding == "circular":
            return X[i % h, j % w]
        return X[i, j] if 0 <= i < h and 0 <= j < w else sp.Integer(0)

    return sp.Matrix(
        h,
        w,
        lambda i, j: sum(
            K[dy, dx] * pixel(i + dy - r, j + dx - r) for dy in range(k) for dx in range(k)
        ),
    )


def avg_pool(X: sp.MatrixBase, k: int, stride: int) -> sp.Matrix:
    """Average pooling, window k, no padding."""
    h, w = X.shape
    oh, ow = (h - k) // stride + 1, (w - k) // stride + 1
    return sp.Matrix(
        oh,
        ow,
        lambda i, j: (
            sum(X[stride * i + a, stride * j + b] for a in range(k) for b in range(k)) / k**2
        ),
    )


def global_average_pool(X: sp.MatrixBase) -> sp.Expr:
    return sum(X) / len(X)


# -- identities ---------------------------------------------------------------------------------


def conv_translation_equivariance(
    h: int = 4, w: int = 5, k: int = 3, sy: int = 1, sx: int = 2
) -> Identity:
    """Notes: F(T(x)) = T(F(x)) for F a convolution (circular padding: exact everywhere)."""
    X, K = matrix("x", h, w), matrix("k", k, k)
    return conv_same(shift(X, sy, sx), K), shift(conv_same(X, K), sy, sx)


def conv_zero_padding_interior(
    h: int = 5, w: int = 5, k: int = 3, sy: int = 1, sx: int = 0
) -> Identity:
    """Notes: F(T(x)) = T(F(x)) (implied for zero padding): with zero padding, F(T x) = T F(x)
    at the outputs whose receptive field (and its pre-image) stays inside the image: rows
    r + sy .. h - 1 - r, columns r + sx .. w - 1 - r for a shift (sy, sx) >= 0 and kernel
    radius r. The border rows differ (tests/spec shows it)."""
    X, K = matrix("x", h, w), matrix("k", k, k)
    r = k // 2
    lhs = conv_same(shift(X, sy, sx), K, "zeros")
    rhs = shift(conv_same(X, K, "zeros"), sy, sx)
    rows, cols = range(r + sy, h - r), range(r + sx, w - r)
    return (
        sp.Matrix([[lhs[i, j] for j in cols] for i in rows]),
        sp.Matrix([[rhs[i, j] for j in cols] for i in rows]),
    )


def gap_translation_invariance(h: int = 3, w: int = 4, sy: int = 2, sx: int = 1) -> Identity:
    """Notes: translation invariance F(T x) = F(x) for F = global average pooling, and for GAP
    after a (circular) convolution: equivariant features, then an invariant read-out."""
    X, K = matrix("x", h, w), matrix("k", 3, 3)
    lhs = sp.Matrix(
        [global_average_pool(shift(X, sy, sx)), global_average_pool(conv_same(shift(X, sy, sx), K))]
    )
    rhs = sp.Matrix([global_average_pool(X), global_average_pool(conv_same(X, K))])
    return lhs, rhs


def strided_pool_commutes_with_stride_multiples(h: int = 4, w: int = 6, s: int = 2) -> Identity:
    """Notes: (implied) average pooling with window = stride = s commutes with translations by
    multiples of s only: pool(T_{(s a, s b)} x) = T_{(a, b)} pool(x) (circularly). A shift by
    fewer than s pixels changes which pixels share a window (the spec test shows it)."""
    X = matrix("x", h, w)
    return avg_pool(shift(X, s, 2 * s), s, s), shift(avg_pool(X, s, s), 1, 2)


def attention_permutation_equivariance(perm: Sequence[int] = (2, 0, 1), d: int = 2) -> Identity:
    """Notes: ViT's weak prior. Self-attention without position embedding is equivariant to
    any permutation of the tokens, SA(P X) = P SA(X): it sees a set, not a grid."""
    X = matrix("X", len(perm), d)
    P = permutation_matrix(perm)
    W = weights(d)
    return self_attention(P * X, *W), P * self_attention(X, *W)


def position_embedding_breaks_equivariance(perm: Sequence[int] = (1, 0), d: int = 1) -> tuple:
    """Notes "<= position encoding": with E_pos added to the tokens, SA(P X + E) and
    P SA(X + E) differ (returned as a pair that is NOT an identity; tests/spec proves they
    differ). Moving the embedding with the tokens restores it: SA(P (X + E)) = P SA(X + E)."""
    X, E = matrix("X", len(perm), d), matrix("E", len(perm), d)
    P = permutation_matrix(perm)
    W = weights(d, d, d)
    return self_attention(P * X + E, *W), P * self_attention(X + E, *W)


def permuted_position_embedding_restores_equivariance(
    perm: Sequence[int] = (2, 0, 1), d: int = 2
) -> Identity:
    """Notes: "<= position encoding" (implied): SA(P (X + E)) = P SA(X + E): the position embedding
    permuted with the tokens."""
    X, E = matrix("X", len(perm), d), matrix("E", len(perm), d)
    P = permutation_matrix(perm)
    W = weights(d)
    return self_attention(P * (X + E), *W), P * self_attention(X + E, *W)
