"""Language models as sympy expressions: one-hot embeddings, the LM head, cross-entropy (and its
declared variants), and what the decoders rely on.

Lecture notes (one-hot encoding / language model):
    z_t = W_emb x̂_t                   x̂_t one-hot ("a" [0 0 1], "man" [0 1 0])
    x̂_{t+1} = W_d h_t + b_d           "the probability of the next word"
    training: Σ_{t=1}^T L(x̂_t, x_t),  cross-entropy loss -Σ p(i) log f(i)
    inference: Greedy argmax L(x_t)  or  stochastic x_t ~ L(x_t);  ... <EOS> => stop.

Conventions (reference/language.py implements them; conformance/ checks them):
- W_emb is (E, V): one column per token, so z = W_emb x̂ selects column k for x̂ = e_k. A library
  storing the table as rows (torch nn.Embedding: weight (V, E)) holds W_emb^T.
- f = softmax(W_d h + b_d); p is the target distribution: one-hot e_k, or with label smoothing
  eps the mix (1 - eps) e_k + eps/V · 1 (Szegedy et al. 2016, torch, Keras). The declared
  variant "others" gives the target 1 - eps and every other class eps/(V - 1) (fairseq): the
  same mix at eps' = eps V/(V - 1) (label_smoothing_others_is_rescaled_uniform).
- Reductions over tokens: "sum" (the notes' Σ_t), "mean" over the kept tokens (ignore_index
  drops a token from numerator and denominator, torch), or "none". Declared variants: ignored
  tokens counted in the mean's denominator, and "mean" as Σ_t per sequence averaged over the
  batch (mean_over_sequences_is_T_times_token_mean).
- Greedy decoding takes argmax with the LOWEST index among tied maxima (numpy.argmax and
  torch.argmax both do). Greedy is invariant to temperature (argmax(z/T) = argmax(z), T > 0).
- Stochastic decoding draws x ~ softmax(z / T); top-k keeps every logit >= the k-th largest
  (ties with the k-th are kept, as HF's TopKLogitsWarper) and renormalises: the others get
  logit -oo (top_k_is_softmax_over_kept_logits).
- EOS: a row that emits EOS keeps it (EOS is part of the output), then holds the pad id (EOS
  itself unless another pad is given) for the rest of the batch's steps, and its state no
  longer matters. Generation stops when every row has emitted EOS or after max_len steps, so
  the output has max_len columns or fewer.

Every identity returns (lhs, rhs) that must be equal; nothing is built at import time.
"""

from __future__ import annotations

import sympy as sp

from spec import Identity
from spec.attention import matrix
from spec.softmax import log_softmax, logits, softmax

GREEDY_TIE_RULE = "lowest index"  # numpy.argmax / torch.argmax: the first maximal entry
EOS_RULE = "EOS is emitted; the row then holds the pad id; stop when all rows emitted EOS"


def one_hot(k: int, V: int) -> sp.Matrix:
    """x̂ = e_k, a column of V entries."""
    return sp.Matrix(V, 1, lambda i, _: 1 if i == k else 0)


def cross_entropy(p: sp.MatrixBase, z: sp.MatrixBase) -> sp.Expr:
    """-Σ_i p(i) log f(i) with f = softmax(z): the notes' formula, literally."""
    f = softmax(z)
    return -sum(p[i] * sp.log(f[i]) for i in range(len(z)))


def smoothed_target(k: int, V: int, eps: sp.Expr, mass: str = "uniform") -> sp.Matrix:
    """(1 - eps) e_k + eps/V · 1 ("uniform"), or 1 - eps on k and eps/(V - 1) elsewhere
    ("others")."""
    e = one_hot(k, V)
    if mass == "uniform":
        return (1 - eps) * e + eps / V * sp.ones(V, 1)
    return (1 - eps) * e + eps / (V - 1) * (sp.ones(V, 1) - e)


def _gradient(expr: sp.Expr, z: sp.MatrixBase) -> sp.Matrix:
    return sp.Matrix([sp.diff(expr, zi) for zi in z])


# -- embedding ---------------------------------------------------------------------------------


def embedding_is_column_lookup(V: int = 3, E: int = 2, k: int = 1) -> Identity:
    """Notes: z_t = W_emb x̂_t with x̂_t one-hot: the product selects column k of W_emb (a table
    lookup; no multiply is needed)."""
    W = matrix("W_emb", E, V)
    return W * one_hot(k, V), W[:, k]


def embedding_gradient_is_one_column(V: int = 3, E: int = 2, k: int = 1) -> Identity:
    """Notes: z_t = W_emb x̂_t, backward: for a cotangent g of z, d<g, W_emb e_k>/dW_emb = g e_k^T,
    i.e. column k receives g and every other column 0 (a lookup's gradient touches only the
    looked-up column; repeated tokens add up)."""
    W = matrix("W_emb", E, V)
    g = matrix("g", E, 1)
    loss = (g.T * W * one_hot(k, V))[0]
    return W.applyfunc(lambda w: sp.diff(loss, w)), g * one_hot(k, V).T


# -- LM head and cross-entropy ---------------------------------------------------------------------


def lm_head_definition(V: int = 3, H: int = 2) -> Identity:
    """Notes: x̂_{t+1} = W_d h_t + b_d: entry j is Σ_i W_d[j, i] h_i + b_d[j] (the indexed sum
    equals the matrix form reference.language.lm_head computes as h W_d^T + b_d)."""
    W, h, b = matrix("W_d", V, H), matrix("h", H, 1), matrix("b_d", V, 1)
    i = sp.Symbol("i", integer=True)
    Wi, hi = sp.IndexedBase("W"), sp.IndexedBase("h")
    as_symbols = {Wi[j, m]: W[j, m] for j in range(V) for m in range(H)}
    as_symbols |= {hi[m]: h[m] for m in range(H)}
    rhs = sp.Matrix(
        [
            sp.Sum(Wi[j, i] * hi[i], (i, 0, H - 1)).doit().xreplace(as_symbols) + b[j]
            for j in range(V)
        ]
    )
    return W * h + b, rhs


def cross_entropy_one_hot(V: int = 3, k: int = 1) -> Identity:
    """Notes: cross-entropy -Σ p(i) log f(i) with one-hot p = e_k and f = softmax(z) is the
    negative log-softmax of the target: -log_softmax(z)_k = log Σ_j e^{z_j} - z_k."""
    z = logits(V)
    return cross_entropy(one_hot(k, V), z), -log_softmax(z)[k]


def cross_entropy_gradient(V: int = 3, k: int = 1) -> Identity:
    """Notes: cross-entropy -Σ p(i) log f(i), differentiated w.r.t. the logits z (f =
    softmax(z)): d/dz = softmax(z) - e_k for a one-hot target."""
    z = logits(V)
    return _gradient(cross_entropy(one_hot(k, V), z), z), softmax(z) - one_hot(k, V)


def cross_entropy_soft_target_gradient(V: int = 3, k: int = 0) -> Identity:
    """Notes: cross-entropy -Σ p(i) log f(i) with a smoothed target p = (1 - eps) e_k + eps/V
    (label smoothing): d/dz = softmax(z) - p, because Σ_i p(i) = 1."""
    z = logits(V)
    eps = sp.Symbol("epsilon", positive=True)
    p = smoothed_target(k, V, eps)
    return _gradient(cross_entropy(p, z), z), softmax(z) - p


def label_smoothing_decomposition(V: int = 3, k: int = 2) -> Identity:
    """Notes: cross-entropy -Σ p(i) log f(i) with label smoothing eps: (1 - eps) times the
    one-hot loss plus eps times the mean over classes of -log f(j) (how torch computes it)."""
    z = logits(V)
    eps = sp.Symbol("epsilon", positive=True)
    mean_nll = -sum(log_softmax(z)) / V
    return cross_entropy(smoothed_target(k, V, eps), z), (1 - eps) * -log_softmax(z)[k] + (
        eps * mean_nll
    )


def label_smoothing_others_is_rescaled_uniform(V: int = 4, k: int = 1) -> Identity:
    """Notes: cross-entropy -Σ p(i) log f(i), label smoothing variant "others" (fairseq: 1 - eps
    on the target, eps/(V - 1) on each other class) is the "uniform" mix (torch) at eps' =
    eps V/(V - 1): the two conventions differ only in how eps is scaled."""
    eps = sp.Symbol("epsilon", positive=True)
    return smoothed_target(k, V, eps, "others"), smoothed_target(k, V, eps * V / (V - 1))


def mean_over_sequences_is_T_times_token_mean(B: int = 2, T: int = 3) -> Identity:
    """Notes: Σ_{t=1}^T L(x̂_t, x_t) per sequence, averaged over the batch (the declared variant
    cross_entropy.mean_over=sequences) is T times the mean over all B·T tokens (torch's
    reduction="mean" on flattened tokens)."""
    L = matrix("L", B, T)
    per_sequence = sum(sum(L.row(b)) for b in range(B)) / B
    return per_sequence, T * sum(L) / (B * T)


def mean_counting_ignored_is_scaled(N: int = 4, kept: int = 3) -> Identity:
    """Notes: Σ_t L(x̂_t, x_t) with ignored tokens (ignore_index) contributing 0: the mean over
    all N tokens (variant cross_entropy.ignored=counted) is kept/N times the mean over the kept
    tokens (torch)."""
    L = matrix("L", N, 1)
    total = sum(L[i] for i in range(kept))  # the first `kept` tokens are kept, the rest ignored
    return total / N, sp.Rational(kept, N) * (total / kept)


# -- decoding -----------------------------------------------------------------------------------


def temperature_scales_log_odds(V: int = 3) -> Identity:
    """Notes: stochastic x_t ~ L(x_t) with temperature T: p = softmax(z / T) has log-odds
    log(p_i / p_j) = (z_i - z_j) / T (T < 1 sharpens, T > 1 flattens; the order, hence greedy's
    argmax, is unchanged)."""
    z = logits(V)
    temp = sp.Symbol("T", positive=True)
    p = softmax(z / temp)
    return sp.Matrix([sp.log(p[i] / p[0]) for i in range(V)]), sp.Matrix(
        [(z[i] - z[0]) / temp for i in range(V)]
    )


def top_k_is_softmax_over_kept_logits(V: int = 4, k: int = 2) -> Identity:
    """Notes: stochastic x_t ~ L(x_t), top-k: the logits outside the k kept get -oo, so their
    probability is exactly 0 and the kept ones renormalise among themselves."""
    z = logits(V)
    masked = sp.Matrix([z[i] if i < k else -sp.oo for i in range(V)])
    kept = sp.Matrix(z[:k])
    return softmax(masked), sp.Matrix.vstack(softmax(kept), sp.zeros(V - k, 1))
