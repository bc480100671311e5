"""Image captioning as sympy expressions: the CNN feature as the decoder's first input, and soft
spatial attention (Show, Attend and Tell).

Lecture notes (img to text):
    f_θ(y | f_φ(x))              a CNN f_φ reads the image, an RNN f_θ writes the words
    "use feature vector as first word"
    Spatial Attention:  e^{(t)} = f_att(X, h_{t-1})          (score of each location)
                        α^{(t)} = softmax(e^{(t)})            (normalise over the locations)
                        z^{(t)} = Σ_{i,j} α^{(t)}_{i,j} x_{i,j}  (context)
                        h^{(t)} = LSTM(h_{t-1}, Embed y_t, z^{(t)})

Conventions (reference/captioning.py):
- Show and Tell: the image feature v (F,) projected to the embedding size, W_img v, is the
  input of step 0; the words' embeddings follow (steps 1..T). Declared variant
  captioning.image_input=every_step: W_img v also added to every word's input (the image seen
  at every step, as in m-RNN / LRCN-style decoders).
- Show, Attend and Tell: L locations a_i (D,) (a CNN's H x W grid flattened, L = 49 for a 7x7
  grid), additive scores e_i = w^T tanh(W_a a_i + W_h h_{t-1}), α = softmax(e) over the L
  locations (never over the batch), z = Σ_i α_i a_i, and h_t = LSTM(h_{t-1}, [E y_{t-1}; z_t]).
  Since α_i > 0 and Σ_i α_i = 1, z lies in the convex hull of the features.
"""

from __future__ import annotations

import sympy as sp

from spec import Identity
from spec.attention import matrix
from spec.softmax import softmax


def scores(a: sp.MatrixBase, h: sp.MatrixBase, W_a, W_h, w) -> sp.Matrix:
    """e (L, 1): e_i = w^T tanh(W_a a_i + W_h h); a (L, D) one location per row, h (H, 1)."""
    proj_h = W_h * h  # (A, 1)
    return sp.Matrix(
        [(w.T * (W_a * a.row(i).T + proj_h).applyfunc(sp.tanh))[0] for i in range(a.rows)]
    )


def _problem(L: int = 3, D: int = 2, A: int = 1, H: int = 1):
    a = matrix("a", L, D)
    h = matrix("h", H, 1)
    W_a, W_h, w = matrix("W_a", A, D), matrix("W_h", A, H), matrix("w", A, 1)
    return a, h, W_a, W_h, w


def attention_weights(a, h, W_a, W_h, w) -> sp.Matrix:
    """α = softmax(e) over the L locations (L, 1)."""
    return softmax(scores(a, h, W_a, W_h, w))


def context(a, alpha) -> sp.Matrix:
    """z = Σ_i α_i a_i (D, 1)."""
    return a.T * alpha


# -- identities ---------------------------------------------------------------------------------


def additive_score_definition(L: int = 2, D: int = 2, A: int = 2) -> Identity:
    """Notes: e^{(t)} = f_att(X, h_{t-1}), the additive form: e_i = Σ_k w_k tanh(Σ_d W_a[k, d]
    a_{i, d} + Σ_j W_h[k, j] h_j) (indexed sums) equals the matrix form w^T tanh(W_a a_i + W_h h)
    of reference.captioning.attention_scores."""
    a, h, W_a, W_h, w = _problem(L, D, A, 1)
    rhs = sp.Matrix(
        [
            sum(
                w[k] * sp.tanh(sum(W_a[k, d] * a[i, d] for d in range(D)) + W_h[k, 0] * h[0])
                for k in range(A)
            )
            for i in range(L)
        ]
    )
    return scores(a, h, W_a, W_h, w), rhs


def attention_weights_sum_to_one(L: int = 3) -> Identity:
    """Notes: α^{(t)} = softmax(e^{(t)}) over the locations: Σ_i α_i = 1, whatever the scores."""
    alpha = attention_weights(*_problem(L))
    return sum(alpha), sp.Integer(1)


def attention_weights_are_positive(L: int = 3) -> Identity:
    """Notes: α^{(t)} = softmax(e^{(t)}): every weight is strictly positive (sign 1), so with
    Σ α = 1 the context z = Σ α_i a_i is a convex combination of the features."""
    alpha = attention_weights(*_problem(L))
    return alpha.applyfunc(sp.sign), sp.ones(L, 1)


def context_of_equal_features(L: int = 3, D: int = 2) -> Identity:
    """Notes: z^{(t)} = Σ α^{(t)}_{i,j} x_{i,j}: when every location holds the same feature c,
    the context is c (a convex combination of equal points), whatever the attention weights."""
    _, h, W_a, W_h, w = _problem(L, D)
    c = matrix("c", 1, D)
    a = sp.Matrix.vstack(*[c] * L)
    return context(a, attention_weights(a, h, W_a, W_h, w)), c.T


def context_moves_with_translation(L: int = 3, D: int = 2) -> Identity:
    """Notes: z^{(t)} = Σ α^{(t)}_{i,j} x_{i,j} with Σ α = 1: translating the features the
    context averages (keeping the weights) translates z by the same vector:
    Σ α_i (a_i + c) = z + c."""
    a, h, W_a, W_h, w = _problem(L, D)
    alpha = attention_weights(a, h, W_a, W_h, w)
    c = matrix("c", 1, D)
    shifted = a + sp.Matrix.vstack(*[c] * L)
    return context(shifted, alpha), context(a, alpha) + c.T


def image_is_only_the_first_input(E: int = 2, F: int = 2) -> Identity:
    """Notes: "use feature vector as first word": the decoder's input sequence is
    [W_img v, E y_0, E y_1, ...], so d x_t / d v = 0 for t >= 1 (the image reaches later steps
    only through the recurrent state), and x_0 = W_img v."""
    v = matrix("v", F, 1)
    W_img = matrix("W_img", E, F)
    Emb = matrix("E", E, 2)
    inputs = [W_img * v, Emb[:, 0], Emb[:, 1]]
    lhs = sp.Matrix.vstack(*[x.jacobian(v) for x in inputs])
    rhs = sp.Matrix.vstack(W_img, sp.zeros(E, F), sp.zeros(E, F))
    return lhs, rhs
