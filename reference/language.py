"""Language models: one-hot embeddings (lookup and matmul forms), the LM head, cross-entropy with
its backward, RNN/LSTM language models, and greedy / sampled decoding with EOS.

Lecture notes:
    z_t = W_emb x̂_t (x̂_t one-hot),   x̂_{t+1} = W_d h_t + b_d,   h_t = LSTM(z_t, h_{t-1}, c_{t-1})
    training: Σ_t L(x̂_t, x_t) with the cross-entropy -Σ p(i) log f(i)
    inference: greedy argmax, or stochastic x_t ~ softmax; <EOS> stops the generation.

Op signatures (nnspec's canonical layout, batch-first; ids are integer arrays):

    embedding(ids, W_emb) -> z           ids (...) in [0, V); W_emb (E, V): column k embeds token
                                         k (z = W_emb x̂); z (..., E)
    one_hot_embedding(ids, W_emb) -> z   the same as one_hot(ids) @ W_emb^T (the notes' product)
    lm_head(h, W_d, b_d) -> logits       h (..., H), W_d (V, H), b_d (V,); logits (..., V)
    cross_entropy(logits, targets, reduction="mean", label_smoothing=0.0, ignore_index=None)
        logits (..., V), targets (...) ints; per token -Σ_j q_j log softmax(logits)_j with q the
        one-hot target, mixed with eps/V · 1 under label smoothing; a target equal to
        ignore_index adds 0 and is not counted. reduction "sum", "mean" (over the kept tokens;
        NaN when none is kept, 0/0 as torch) or "none" (per-token losses, 0 where ignored).
        Declared variants (conformance/variants.py): smoothing="others" (1 - eps on the target,
        eps/(V-1) elsewhere, fairseq), ignored="counted" (the mean divides by every token),
        mean_over="sequences" (the last axis is time: Σ_t per sequence, mean over sequences).
    rnn_lm(ids, h0, W_emb, W, U, b, W_d, b_d, nonlinearity="tanh") -> logits (B, T, V)
    lstm_lm(ids, h0, c0, W_emb, W, b, W_d, b_d) -> logits (B, T, V)
        the embedding feeds reference.rnn.rnn / reference.lstm.lstm (their layouts), the LM
        head reads every hidden state: logits[:, t] predicts the token after ids[:, t].
    lm_loss(ids, h0, c0, W_emb, W, b, W_d, b_d, reduction="mean") -> L
        teacher forcing on ids (B, T >= 2): the LSTM LM reads ids[:, :-1] and the targets are
        ids[:, 1:] (logits[:, t] against ids[:, t + 1]).
    <op>_vjp(cotangent, *inputs, **options) -> one gradient per float input (ids have none).

    lstm_greedy(prompt, h0, c0, W_emb, W, b, W_d, b_d, max_new_tokens, eos=None, pad=None)
    lstm_sample(prompt, h0, c0, W_emb, W, b, W_d, b_d, max_new_tokens, temperature=1.0,
                top_k=None, eos=None, pad=None, seed=0)
        prompt (B, P >= 1); the LSTM LM reads the prompt, then feeds back its own choices.
        Returns the new tokens (B, n), int64, n <= max_new_tokens (see EOS below).
    sample_tokens(logits, n, temperature=1.0, top_k=None, seed=0) -> (B, n) int64 draws
        from softmax(logits / temperature) (top-k: only logits >= the k-th largest), logits
        (B, V); a NumPy Generator seeded with `seed`.

Decoding over any step function: greedy_decode / sample_decode(step, state, first, max_len,
...) with step(tokens (B,), state) -> (logits (B, V), state).
- Greedy: argmax with the LOWEST index among tied maxima (numpy.argmax, torch.argmax).
- Sampling: inverse CDF of softmax(logits / T) on uniforms from the Generator given.
- EOS: a row that emits EOS keeps it, then holds `pad` (EOS itself when pad is None) at every
  later step; decoding stops when every row has emitted EOS, or after max_len steps.

Bad input (ids out of range or not integers, empty sequences, temperature <= 0, NaN or
infinite values, inconsistent shapes) raises one ValueError naming what is wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from reference.common import T, mm, store
from reference.lstm import lstm, lstm_vjp
from reference.rnn import check_finite, rnn, rnn_vjp, shapes_text
from reference.softmax import log_softmax, softmax

REDUCTIONS = ("mean", "sum", "none")

# -- input checks -------------------------------------------------------------------------------


def check_ids(op: str, ids: Any, V: int, allow: int | None = None) -> np.ndarray:
    """ids as an integer array, non-empty, every entry in [0, V) (or equal to `allow`)."""
    ids = np.asarray(ids)
    if ids.dtype.kind not in "iu":
        raise ValueError(f"{op}: token ids must be integers, got dtype {ids.dtype}")
    if ids.size == 0:
        raise ValueError(f"{op}: empty token sequence, ids shape {ids.shape}")
    bad = (ids < 0) | (ids >= V)
    if allow is not None:
        bad &= ids != allow
    if np.any(bad):
        raise ValueError(
            f"{op}: token ids out of range [0, {V}): {sorted(set(ids[bad].tolist()))[:5]}"
        )
    return ids


def check_temperature(op: str, temperature: float) -> None:
    if not (np.isfinite(temperature) and temperature > 0):
        raise ValueError(f"{op}: temperature must be a positive number, got {temperature!r}")


# -- embedding ----------------------------------------------------------------------------------


def one_hot(ids: np.ndarray, V: int, dtype: Any = np.float64) -> np.ndarray:
    """x̂ (..., V): 1 at the token, 0 elsewhere."""
    ids = check_ids("one_hot", ids, V)
    return (ids[..., None] == np.arange(V)).astype(dtype)


def _embedding_shapes(op: str, ids, W_emb) -> np.ndarray:
    if np.ndim(W_emb) != 2:
        raise ValueError(f"{op}: expected W_emb (E, V); got " + shapes_text(ids=ids, W_emb=W_emb))
    check_finite(op, W_emb=W_emb)
    return check_ids(op, ids, W_emb.shape[1])


def embedding(ids: np.ndarray, W_emb: np.ndarray) -> np.ndarray:
    """z = W_emb x̂ as a lookup: column ids of W_emb, (..., E)."""
    ids = _embedding_shapes("embedding", ids, W_emb)
    return W_emb.T[ids]


def one_hot_embedding(ids: np.ndarray, W_emb: np.ndarray) -> np.ndarray:
    """z = W_emb x̂ as the notes write it: one_hot(ids) @ W_emb^T, (..., E)."""
    ids = _embedding_shapes("one_hot_embedding", ids, W_emb)
    return mm(one_hot(ids, W_emb.shape[1], W_emb.dtype), T(W_emb))


def embedding_vjp(dz: np.ndarray, ids: np.ndarray, W_emb: np.ndarray) -> tuple[np.ndarray]:
    """dW_emb (E, V): column k receives the sum of dz over every position holding token k;
    columns of tokens that do not occur get 0 (spec.language.embedding_gradient_is_one_column)."""
    ids = _embedding_vjp_shapes("embedding_vjp", dz, ids, W_emb)
    E, V = W_emb.shape
    dW_T = np.zeros((V, E), dtype=W_emb.dtype)
    np.add.at(dW_T, ids.reshape(-1), dz.reshape(-1, E).astype(W_emb.dtype))
    return (dW_T.T.copy(),)


def _embedding_vjp_shapes(name: str, dz, ids, W_emb) -> np.ndarray:
    ids = _embedding_shapes(name, ids, W_emb)
    if dz.shape != (*ids.shape, W_emb.shape[0]):
        raise ValueError(
            f"{name}: expected dz {(*ids.shape, W_emb.shape[0])}; got "
            + shapes_text(dz=dz, ids=ids)
        )
    return ids


def one_hot_embedding_vjp(dz, ids, W_emb) -> tuple[np.ndarray]:
    """dW_emb = dz^T x̂ summed over positions, as the notes' product (x̂^T dz)^T: the same
    columns as embedding_vjp, but through a matmul, as a library computes it (with TF32 on, the
    matmul reads dz in TF32; the lookup's scatter-add does not)."""
    ids = _embedding_vjp_shapes("one_hot_embedding_vjp", dz, ids, W_emb)
    E, V = W_emb.shape
    x_hat = one_hot(ids.reshape(-1), V, W_emb.dtype)  # (N, V)
    return (T(mm(T(x_hat), dz.reshape(-1, E).astype(W_emb.dtype))).copy(),)  # (E, V)


# -- LM head and cross-entropy --------------------------------------------------------------------


def _head_shapes(h, W_d, b_d) -> None:
    if (
        np.ndim(W_d) != 2
        or np.shape(b_d) != (np.shape(W_d)[0],)
        or np.shape(h)[-1:] != (np.shape(W_d)[1],)
    ):
        raise ValueError(
            "lm_head: expected h (..., H), W_d (V, H), b_d (V,); got "
            + shapes_text(h=h, W_d=W_d, b_d=b_d)
        )


def lm_head(h: np.ndarray, W_d: np.ndarray, b_d: np.ndarray) -> np.ndarray:
    """x̂_{t+1} = W_d h_t + b_d for every position: (..., V) logits."""
    _head_shapes(h, W_d, b_d)
    check_finite("lm_head", h=h, W_d=W_d, b_d=b_d)
    return mm(h, T(W_d)) + b_d


def lm_head_vjp(dy, h, W_d, b_d) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dh, dW_d, db_d): dh = dy W_d, dW_d = Σ dy^T h, db_d = Σ dy over every position."""
    _head_shapes(h, W_d, b_d)
    V, H = W_d.shape
    flat_dy, flat_h = dy.reshape(-1, V), h.reshape(-1, H)
    return mm(dy, W_d), mm(T(flat_dy), flat_h), flat_dy.sum(axis=0)


def _ce_inputs(logits, targets, reduction, label_smoothing, ignore_index, smoothing):
    logits = np.asarray(logits)
    if logits.ndim < 1 or np.shape(targets) != logits.shape[:-1]:
        raise ValueError(
            "cross_entropy: expected logits (..., V) and targets (...) of the leading shape; "
            "got " + shapes_text(logits=logits, targets=targets)
        )
    if reduction not in REDUCTIONS:
        raise ValueError(f"cross_entropy: reduction {reduction!r} is not one of {REDUCTIONS}")
    if not 0 <= label_smoothing <= 1:
        raise ValueError(f"cross_entropy: label_smoothing {label_smoothing!r} not in [0, 1]")
    if smoothing not in ("uniform", "others"):
        raise ValueError(f"cross_entropy: smoothing {smoothing!r} is not 'uniform' or 'others'")
    check_finite("cross_entropy", logits=logits)
    V = logits.shape[-1]
    targets = check_ids("cross_entropy", targets, V, allow=ignore_index)
    kept = np.ones(targets.shape, bool) if ignore_index is None else targets != ignore_index
    onehot = (np.where(kept, targets, 0)[..., None] == np.arange(V)).astype(logits.dtype)
    eps = label_smoothing
    if eps == 0:
        q = onehot
    elif smoothing == "uniform" or V == 1:
        q = (1 - eps) * onehot + eps / V
    else:
        q = (1 - eps) * onehot + eps / (V - 1) * (1 - onehot)
    return targets, kept, q.astype(logits.dtype)


def _denominator(targets, kept, ignored: str, mean_over: str) -> float:
    if mean_over == "sequences":
        return float(np.prod(targets.shape[:-1]))  # Σ_t per sequence, mean over sequences
    if mean_over != "tokens":
        raise ValueError(f"cross_entropy: mean_over {mean_over!r} is not 'tokens' or 'sequences'")
    if ignored == "excluded":
        return float(kept.sum())
    if ignored == "counted":
        return float(kept.size)
    raise ValueError(f"cross_entropy: ignored {ignored!r} is not 'excluded' or 'counted'")


def cross_entropy(
    logits: np.ndarray,
    targets: np.ndarray,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    ignore_index: int | None = None,
    smoothing: str = "uniform",
    ignored: str = "excluded",
    mean_over: str = "tokens",
) -> np.ndarray:
    """-Σ_j q_j log softmax(logits)_j per token, reduced (see the module docstring)."""
    targets, kept, q = _ce_inputs(
        logits, targets, reduction, label_smoothing, ignore_index, smoothing
    )
    per_token = -(q * log_softmax(logits)).sum(axis=-1)  # (...)
    per_token = np.where(kept, per_token, 0).astype(logits.dtype)
    if reduction == "none":
        return per_token
    total = per_token.sum()
    if reduction == "sum":
        return np.asarray(total, dtype=logits.dtype)
    den = _denominator(targets, kept, ignored, mean_over)
    with np.errstate(invalid="ignore", divide="ignore"):  # nothing kept: 0/0 = NaN, as torch
        return np.asarray(total / den if den else np.nan, dtype=logits.dtype)


def cross_entropy_vjp(
    dL: np.ndarray,
    logits: np.ndarray,
    targets: np.ndarray,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    ignore_index: int | None = None,
    smoothing: str = "uniform",
    ignored: str = "excluded",
    mean_over: str = "tokens",
) -> tuple[np.ndarray]:
    """d/dlogits = (softmax(logits) - q) times each token's cotangent (0 where ignored):
    spec.language.cross_entropy_gradient, cross_entropy_soft_target_gradient."""
    targets, kept, q = _ce_inputs(
        logits, targets, reduction, label_smoothing, ignore_index, smoothing
    )
    dL = np.asarray(dL, dtype=logits.dtype)
    if reduction == "none":
        if dL.shape != targets.shape:
            raise ValueError(f"cross_entropy_vjp: dL {dL.shape}, expected {targets.shape}")
        per_token = dL
    elif reduction == "sum":
        per_token = np.broadcast_to(dL, targets.shape)
    else:
        den = _denominator(targets, kept, ignored, mean_over)
        per_token = np.broadcast_to(dL / den if den else np.nan * dL, targets.shape)
    s = store(softmax(logits))  # the forward's probabilities, as saved for backward
    return (((s - q) * np.where(kept, per_token, 0)[..., None]).astype(logits.dtype),)


# -- language models ---------------------------------------------------------------------------


def rnn_lm(ids, h0, W_emb, W, U, b, W_d, b_d, nonlinearity: str = "tanh") -> np.ndarray:
    """Embedding -> vanilla RNN (reference.rnn) -> LM head: logits (B, T, V)."""
    x = embedding(check_ids("rnn_lm", ids, np.shape(W_emb)[-1]), W_emb)
    if x.ndim != 3:
        raise ValueError(f"rnn_lm: expected ids (B, T); got ids {np.shape(ids)}")
    hs, _ = rnn(x, h0, W, U, b, nonlinearity)
    return lm_head(hs, W_d, b_d)


def rnn_lm_vjp(dlogits, ids, h0, W_emb, W, U, b, W_d, b_d, nonlinearity: str = "tanh"):
    """(dh0 if h0 is given, dW_emb, dW, dU, db, dW_d, db_d)."""
    x = embedding(check_ids("rnn_lm", ids, np.shape(W_emb)[-1]), W_emb)
    hs, _ = rnn(x, h0, W, U, b, nonlinearity)
    dhs, dW_d, db_d = lm_head_vjp(dlogits, hs, W_d, b_d)
    dx, *grads = rnn_vjp(dhs, x, h0, W, U, b, nonlinearity)
    dh0 = [grads.pop(0)] if h0 is not None else []
    (dW_emb,) = embedding_vjp(dx, ids, W_emb)
    return (*dh0, dW_emb, *grads, dW_d, db_d)


def _lstm_lm_hidden(op, ids, h0, c0, W_emb, W, b):
    ids = check_ids(op, ids, np.shape(W_emb)[-1])
    if ids.ndim != 2:
        raise ValueError(f"{op}: expected ids (B, T); got ids {ids.shape}")
    x = embedding(ids, W_emb)  # (B, T, E)
    hs, _, _ = lstm(x, h0, c0, W, b)
    return x, hs


def lstm_lm(ids, h0, c0, W_emb, W, b, W_d, b_d) -> np.ndarray:
    """z_t = W_emb x̂_t, h_t = LSTM(z_t, h_{t-1}, c_{t-1}), logits_t = W_d h_t + b_d: (B, T, V)."""
    _, hs = _lstm_lm_hidden("lstm_lm", ids, h0, c0, W_emb, W, b)
    return lm_head(hs, W_d, b_d)


def lstm_lm_vjp(dlogits, ids, h0, c0, W_emb, W, b, W_d, b_d) -> tuple[np.ndarray, ...]:
    """(dh0, dc0 where given, dW_emb, dW, db, dW_d, db_d): LM head, then BPTT (reference.lstm),
    then the embedding's column-wise scatter."""
    x, hs = _lstm_lm_hidden("lstm_lm_vjp", ids, h0, c0, W_emb, W, b)
    dhs, dW_d, db_d = lm_head_vjp(dlogits, hs, W_d, b_d)
    dx, *grads = lstm_vjp(dhs, x, h0, c0, W, b)
    dW, db = grads[-2:]
    (dW_emb,) = embedding_vjp(dx, ids, W_emb)
    return (*grads[:-2], dW_emb, dW, db, dW_d, db_d)


def _lm_split(ids):
    ids = np.asarray(ids)
    if ids.ndim != 2 or ids.shape[1] < 2:
        raise ValueError(f"lm_loss: expected ids (B, T) with T >= 2; got ids {ids.shape}")
    return ids[:, :-1], ids[:, 1:]  # the model reads x_1..x_{T-1}, predicts x_2..x_T


def lm_loss(ids, h0, c0, W_emb, W, b, W_d, b_d, reduction="mean", mean_over="tokens"):
    """Σ_t L(x̂_{t+1}, x_{t+1}) (cross-entropy), reduced: teacher forcing with the targets shifted
    by one position."""
    inputs, targets = _lm_split(ids)
    logits = lstm_lm(inputs, h0, c0, W_emb, W, b, W_d, b_d)
    return cross_entropy(logits, targets, reduction, mean_over=mean_over)


def lm_loss_vjp(dL, ids, h0, c0, W_emb, W, b, W_d, b_d, reduction="mean", mean_over="tokens"):
    inputs, targets = _lm_split(ids)
    logits = store(lstm_lm(inputs, h0, c0, W_emb, W, b, W_d, b_d))
    (dlogits,) = cross_entropy_vjp(dL, logits, targets, reduction, mean_over=mean_over)
    return lstm_lm_vjp(dlogits, inputs, h0, c0, W_emb, W, b, W_d, b_d)


# -- decoding ----------------------------------------------------------------------------------


def greedy_pick(logits: np.ndarray) -> np.ndarray:
    """argmax over the last axis; among tied maxima the lowest index (numpy.argmax's rule)."""
    check_finite("greedy_pick", logits=logits)
    return np.argmax(logits, axis=-1)


def sampling_distribution(
    logits: np.ndarray, temperature: float = 1.0, top_k: int | None = None
) -> np.ndarray:
    """softmax(logits / T) over the last axis; with top_k, logits below the k-th largest get
    probability 0 (ties with the k-th are kept)."""
    check_temperature("sampling", temperature)
    check_finite("sampling", logits=logits)
    z = logits / np.asarray(temperature, dtype=logits.dtype)
    V = z.shape[-1]
    if top_k is not None:
        if not (isinstance(top_k, int | np.integer) and top_k >= 1):
            raise ValueError(f"sampling: top_k must be a positive integer, got {top_k!r}")
        if top_k < V:
            kth = np.sort(z, axis=-1)[..., V - top_k, None]
            z = np.where(z >= kth, z, -np.inf)
    return softmax(z)


def sample_pick(
    logits: np.ndarray,
    rng: np.random.Generator,
    temperature: float = 1.0,
    top_k: int | None = None,
    uniforms: np.ndarray | None = None,
) -> np.ndarray:
    """One draw per row by the inverse CDF: the first token whose cumulative probability
    exceeds a uniform u in [0, 1) (u from rng unless given). (...) int64."""
    p = sampling_distribution(logits, temperature, top_k).astype(np.float64)
    cdf = np.cumsum(p, axis=-1)
    u = rng.random(p.shape[:-1]) if uniforms is None else uniforms
    idx = np.sum(cdf <= (u * cdf[..., -1])[..., None], axis=-1)
    # u * total rounding up to the total: the last token with a nonzero probability.
    last = p.shape[-1] - 1 - np.argmax((p > 0)[..., ::-1], axis=-1)
    return np.minimum(idx, last).astype(np.int64)


def sample_tokens(logits, n: int, temperature: float = 1.0, top_k=None, seed: int = 0):
    """n independent draws per row of logits (B, V) -> (B, n) int64."""
    if np.ndim(logits) != 2 or not (isinstance(n, int | np.integer) and n >= 1):
        raise ValueError(
            f"sample_tokens: expected logits (B, V) and n >= 1; got {np.shape(logits)}, n={n!r}"
        )
    rng = np.random.default_rng(seed)
    u = rng.random((np.shape(logits)[0], n))
    return sample_pick(np.asarray(logits)[:, None, :], rng, temperature, top_k, uniforms=u)


Step = Callable[[np.ndarray, Any], tuple[np.ndarray, Any]]


def _decode(step: Step, state, first, max_len: int, pick, eos, pad) -> np.ndarray:
    if not (isinstance(max_len, int | np.integer) and max_len >= 1):
        raise ValueError(f"decode: max_len must be a positive integer, got {max_len!r}")
    tokens = np.asarray(first)
    if tokens.ndim != 1 or tokens.size == 0:
        raise ValueError(f"decode: expected first tokens (B,) with B >= 1; got {tokens.shape}")
    pad = eos if pad is None else pad
    done = np.zeros(tokens.shape, bool)
    out = []
    for _ in range(max_len):
        logits, state = step(tokens, state)
        chosen = pick(logits)
        if eos is not None:
            chosen = np.where(done, pad, chosen)  # finished rows hold the pad id
            done = done | (chosen == eos)
        out.append(chosen.astype(np.int64))
        if done.all():
            break
        tokens = chosen
    return np.stack(out, axis=1)


def greedy_decode(step: Step, state, first, max_len: int, eos=None, pad=None) -> np.ndarray:
    """Greedy decoding: x_t = argmax of step's logits (lowest index on ties); (B, n) int64."""
    return _decode(step, state, first, max_len, greedy_pick, eos, pad)


def sample_decode(
    step: Step,
    state,
    first,
    max_len: int,
    rng: np.random.Generator,
    temperature=1.0,
    top_k=None,
    eos=None,
    pad=None,
) -> np.ndarray:
    """Stochastic decoding: x_t ~ softmax(logits / T) (top-k optional) from rng; (B, n) int64."""
    check_temperature("sample_decode", temperature)
    return _decode(
        step, state, first, max_len, lambda z: sample_pick(z, rng, temperature, top_k), eos, pad
    )


def _lstm_step(W_emb, W, b, W_d, b_d) -> Step:
    """The LSTM LM one token at a time: state (h, c)."""

    def step(tokens, state):
        h, c = state
        x = embedding(tokens[:, None], W_emb)  # (B, 1, E)
        hs, h, c = lstm(x, h, c, W, b)
        return lm_head(hs[:, 0], W_d, b_d), (h, c)

    return step


def _prime(op, prompt, h0, c0, W_emb, W, b):
    """State after reading prompt[:, :-1]; the last prompt token is the decoder's first input."""
    prompt = check_ids(op, prompt, np.shape(W_emb)[-1])
    if prompt.ndim != 2:
        raise ValueError(f"{op}: expected prompt (B, P) with P >= 1; got {prompt.shape}")
    h, c = h0, c0
    if prompt.shape[1] > 1:
        _, h, c = lstm(embedding(prompt[:, :-1], W_emb), h0, c0, W, b)
    return prompt, (h, c)


def _check_special(op, V, eos, pad):
    for name, t in (("eos", eos), ("pad", pad)):
        if t is not None and not (isinstance(t, int | np.integer) and 0 <= t < V):
            raise ValueError(f"{op}: {name} id {t!r} out of range [0, {V})")


def lstm_greedy(prompt, h0, c0, W_emb, W, b, W_d, b_d, max_new_tokens, eos=None, pad=None):
    """Greedy continuation of prompt by the LSTM LM: (B, n) int64, n <= max_new_tokens."""
    _check_special("lstm_greedy", np.shape(W_emb)[-1], eos, pad)
    prompt, state = _prime("lstm_greedy", prompt, h0, c0, W_emb, W, b)
    step = _lstm_step(W_emb, W, b, W_d, b_d)
    return greedy_decode(step, state, prompt[:, -1], max_new_tokens, eos, pad)


def lstm_sample(
    prompt,
    h0,
    c0,
    W_emb,
    W,
    b,
    W_d,
    b_d,
    max_new_tokens,
    temperature=1.0,
    top_k=None,
    eos=None,
    pad=None,
    seed=0,
):
    """Sampled continuation of prompt by the LSTM LM (NumPy Generator seeded with seed)."""
    _check_special("lstm_sample", np.shape(W_emb)[-1], eos, pad)
    check_temperature("lstm_sample", temperature)
    prompt, state = _prime("lstm_sample", prompt, h0, c0, W_emb, W, b)
    step = _lstm_step(W_emb, W, b, W_d, b_d)
    rng = np.random.default_rng(seed)
    return sample_decode(
        step, state, prompt[:, -1], max_new_tokens, rng, temperature, top_k, eos, pad
    )


# -- a seeded model, for decoders that bring their own model (an adapter's own LM) ---------------

SEEDED_VOCAB = 16


def _seeded_params(model: int):
    """A small LSTM LM (V = 16, E = 4, H = 8) with N(0, 1) / sqrt(fan-in) weights from seed."""
    rng = np.random.default_rng([model, 7])
    V, E, H = SEEDED_VOCAB, 4, 8
    return (
        rng.standard_normal((E, V)),
        rng.standard_normal((4 * H, H + E)) / np.sqrt(H + E),
        rng.standard_normal(4 * H) * 0.5,
        rng.standard_normal((V, H)) * 2 / np.sqrt(H),
        rng.standard_normal(V),
    )


def lm_next_logits(tokens, model: int = 0, dtype: str = "float64"):
    """The logits (B, V) of the token after tokens (B, n >= 1), from the seeded model run in
    dtype: the step function of the decoders that bring their own model."""
    return lstm_lm(tokens, None, None, *_seeded(model, dtype))[:, -1]


def _seeded(model, dtype):
    return [p.astype(np.dtype(dtype)) for p in _seeded_params(model)]


def lm_generate_greedy(prompt, max_new_tokens, eos=None, pad=None, model=0, dtype="float64"):
    """Greedy continuation of prompt by the seeded model (lstm_greedy on its weights)."""
    return lstm_greedy(prompt, None, None, *_seeded(model, dtype), max_new_tokens, eos, pad)


def lm_generate_sample(
    prompt,
    max_new_tokens,
    temperature=1.0,
    top_k=None,
    eos=None,
    pad=None,
    model=0,
    seed=0,
    dtype="float64",
):
    """Sampled continuation of prompt by the seeded model (lstm_sample on its weights)."""
    return lstm_sample(
        prompt,
        None,
        None,
        *_seeded(model, dtype),
        max_new_tokens,
        temperature,
        top_k,
        eos,
        pad,
        seed,
    )
