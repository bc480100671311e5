"""Language models: one-hot embeddings, the LM head, cross-entropy (and its declared variants),
RNN/LSTM language models and their gradients, greedy decoding (tie rule, EOS) and sampling
(tested statistically). reference/language.py states the op signatures.

Decoders return integer tokens, which the float comparison of `impl.compare` does not cover:
- greedy: every choice must be a maximal logit of the REFERENCE model teacher-forced along the
  adapter's own tokens, up to the derived tolerance of those logits (a near-tie may go either
  way in low precision), exact ties must go to the lowest index, and the EOS rule must hold.
- sampling: a chi-square goodness-of-fit test of many draws against softmax(logits / T) at a
  false-alarm rate ALPHA = 1e-6 per check, with a fixed sampler seed per example (so a correct
  sampler passes reproducibly); draws of a zero-probability token (outside top-k) fail outright.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance import tolerance
from conformance.adapters.base import Unsupported, covers
from conformance.check import CheckFailed, NotCovered, time_limit
from conformance.ops import OPS
from conformance.strategies import language_cases
from reference import language as ref

ALPHA = 1e-6  # chi-square false-alarm rate per sampling check
DRAWS = 20_000  # draws per row of sample_tokens
REPLICAS = 4_000  # rows of one prompt for the decoders' sampling check


# -- helpers: discrete outputs -----------------------------------------------------------------


def run_tokens(impl, op, *args, **kwargs) -> np.ndarray:
    """The adapter's integer output for op (inputs rounded to the check's dtype)."""
    impl._note(op)
    if not covers(impl.adapter, op):
        raise NotCovered(f"{impl.adapter.name} has no {op!r}")
    impl._accepts(op, kwargs)  # an option the adapter's op does not take: not covered
    a, k = tolerance.rounded_inputs(args, kwargs, impl.dtype)
    try:
        with time_limit(impl.call_timeout, f"{impl.adapter.name}.{op}"):
            out = getattr(impl.adapter, op)(*a, **k)
    except Unsupported as exc:
        raise NotCovered(f"{impl.adapter.name} refuses {op!r}: {exc}") from None
    if not isinstance(out, np.ndarray) or out.dtype.kind not in "iu":
        raise CheckFailed(
            f"{op}: returned {type(out).__name__} {getattr(out, 'dtype', '')}, "
            "expected an integer numpy.ndarray"
        )
    return out.astype(np.int64)


def chi_square_sf(x: float, df: int) -> float:
    """P(X >= x) for X ~ chi-square(df), df a positive integer: the closed forms of the
    regularized upper incomplete gamma Q(df/2, x/2) (Abramowitz & Stegun 26.4.4 / 26.4.5):
    even df = 2m: e^{-x/2} Σ_{i<m} (x/2)^i / i!;  odd df = 2m+1: erfc(sqrt(x/2)) +
    e^{-x/2} Σ_{i=1..m} (x/2)^{i-1/2} / Γ(i + 1/2). Terms are summed in log space."""
    if x <= 0:
        return 1.0
    h = x / 2
    if df % 2 == 0:
        logs = [-h + i * math.log(h) - math.lgamma(i + 1) for i in range(df // 2)]
        return min(1.0, sum(math.exp(t) for t in logs))
    logs = [-h + (i - 0.5) * math.log(h) - math.lgamma(i + 0.5) for i in range(1, df // 2 + 1)]
    return min(1.0, math.erfc(math.sqrt(h)) + sum(math.exp(t) for t in logs))


def frequency_test(draws: np.ndarray, p: np.ndarray) -> tuple[float, float, int, str | None]:
    """Chi-square goodness of fit of draws (N,) to p (V,): (statistic, p-value, df, problem).
    Bins with an expected count below 5 are pooled (the usual validity rule)."""
    V = p.shape[0]
    counts = np.bincount(draws, minlength=V)
    if counts.shape[0] > V or np.any(draws < 0):
        return math.inf, 0.0, 0, f"drew token ids outside [0, {V})"
    impossible = counts[p == 0].sum()
    if impossible:
        return math.inf, 0.0, 0, f"{impossible} draws of tokens with probability 0"
    n = draws.shape[0]
    expected = n * p
    big = expected >= 5
    obs = list(counts[big])
    exp = list(expected[big])
    if (~big).any() and expected[~big].sum() > 0:
        obs.append(counts[~big].sum())
        exp.append(expected[~big].sum())
    obs, exp = np.array(obs, float), np.array(exp, float)
    if len(exp) < 2:
        return 0.0, 1.0, 0, None
    stat = float(np.sum((obs - exp) ** 2 / exp))
    df = len(exp) - 1
    return stat, chi_square_sf(stat, df), df, None


def judge_frequencies(impl, label: str, draws: np.ndarray, p: np.ndarray) -> None:
    stat, pval, df, problem = frequency_test(draws, p)
    # The record: error = the statistic, allowed = the chi-square quantile at ALPHA is not
    # needed for the verdict; the margin shows how far the p-value is from ALPHA (log scale).
    margin_err = -math.log10(max(pval, 1e-300))
    impl.worst.update(margin_err, -math.log10(ALPHA), stat, None)
    if problem:
        raise CheckFailed(f"{label} [{impl.dtype}]: {problem}")
    if pval < ALPHA:
        raise CheckFailed(
            f"{label} [{impl.dtype}]: draws do not follow softmax(logits / T): chi-square "
            f"{stat:.4g} on {df} df, p-value {pval:.3g} < {ALPHA:g}"
        )


def target_distribution(impl, logits, temperature, top_k=None) -> np.ndarray:
    """softmax(logits / T) in float64 over the tokens top-k keeps when z = logits / T is computed
    in the check's dtype: rounding z may tie a logit with the k-th largest, and ties are kept
    (reference/language.py), so the kept set is decided in the dtype the sampler works in."""
    x = np.asarray(logits, dtype=np.float64)
    if top_k is None:
        return ref.sampling_distribution(x, temperature)
    low = tolerance.cast(x, impl.dtype)
    kept = ref.sampling_distribution(low, temperature, top_k).astype(np.float64) > 0
    z = np.where(kept, x / temperature, -np.inf)
    return ref.softmax(z)


def check_eos_rule(label, out, B, max_new, eos, pad):
    """The EOS rule of reference/language.py on the adapter's tokens; returns each row's number
    of meaningful steps (up to and including its EOS)."""
    if out.ndim != 2 or out.shape[0] != B or not 1 <= out.shape[1] <= max_new:
        raise CheckFailed(f"{label}: tokens of shape {out.shape}, expected ({B}, n <= {max_new})")
    n = out.shape[1]
    if eos is None:
        if n != max_new:
            raise CheckFailed(f"{label}: {n} tokens without an EOS id, expected {max_new}")
        return np.full(B, n)
    pad_id = eos if pad is None else pad
    is_eos = out == eos
    finished = is_eos.any(axis=1)
    first = np.where(finished, is_eos.argmax(axis=1), n)
    after = np.arange(n)[None, :] > first[:, None]
    wrong = after & (out != pad_id)
    if wrong.any():
        r, t = np.argwhere(wrong)[0]
        raise CheckFailed(
            f"{label}: row {r} emitted EOS at step {first[r]} but holds token {out[r, t]} at "
            f"step {t} (expected the pad id {pad_id})"
        )
    if n < max_new and not finished.all():
        raise CheckFailed(f"{label}: stopped after {n} < {max_new} steps with unfinished rows")
    if finished.all() and n != first.max() + 1:
        raise CheckFailed(
            f"{label}: every row emitted EOS by step {first.max()}, yet {n} steps were generated"
        )
    return np.minimum(first + 1, n)


def check_greedy_choices(impl, label, prompt, params, out, steps) -> None:
    """Each choice is a maximal reference logit (teacher-forced along out) up to the derived
    tolerance, and exact ties go to the lowest index."""
    P = prompt.shape[1]
    path = np.concatenate([prompt, out[:, :-1]], axis=1)
    fn = OPS["lstm_lm"].forward
    args = (path, *params)
    truth = np.asarray(tolerance.truth(fn, args, {})[0])[:, P - 1 :]
    models = [np.asarray(m[0], dtype=np.float64)[:, P - 1 :] for m in impl.models(fn, args, {})]
    t64 = truth.astype(np.float64)
    spread = np.max([np.abs(m - t64).max(axis=-1) for m in models], axis=0)  # (B, n)
    floor = tolerance.floor(impl.dtype, impl.read) * np.abs(t64).max(axis=-1)
    tol = tolerance.K * spread + floor
    chosen = np.take_along_axis(truth, out[..., None], axis=-1)[..., 0]
    best = truth.max(axis=-1)
    lowest = truth.argmax(axis=-1)
    gap = (best - chosen).astype(np.float64)
    active = np.arange(out.shape[1])[None, :] < steps[:, None]
    worst = np.unravel_index(
        np.argmax(np.where(active, gap / np.maximum(tol, 1e-300), -1)), gap.shape
    )
    impl.worst.update(float(gap[worst]), float(tol[worst]), float(gap[worst]), None)
    bad = active & (gap > tol)
    if bad.any():
        r, t = np.argwhere(bad)[0]
        raise CheckFailed(
            f"{label} [{impl.dtype}]: step {t} of row {r} chose token {out[r, t]} whose logit is "
            f"{gap[r, t]:.3g} below the maximum (token {lowest[r, t]}), allowed {tol[r, t]:.3g}"
        )
    tie = active & (chosen == best) & (out != lowest)
    if tie.any():
        r, t = np.argwhere(tie)[0]
        raise CheckFailed(
            f"{label} [{impl.dtype}]: step {t} of row {r}: exact tie between tokens "
            f"{lowest[r, t]} and {out[r, t]} broken toward the higher index (rule: lowest index)"
        )


# -- embedding -----------------------------------------------------------------------------------


@given(case=language_cases())
def test_embedding_values(impl, case):
    impl.compare("embedding", case.ids(), case.W_emb())


@given(case=language_cases())
def test_embedding_vjp(impl, case):
    dz = case.cotangent(case.batch, case.steps, case.embed)
    impl.compare_vjp("embedding", dz, case.ids(), case.W_emb())


@given(case=language_cases())
def test_one_hot_embedding_values(impl, case):
    impl.compare("one_hot_embedding", case.ids(), case.W_emb())


@given(case=language_cases())
def test_one_hot_embedding_vjp(impl, case):
    dz = case.cotangent(case.batch, case.steps, case.embed)
    impl.compare_vjp("one_hot_embedding", dz, case.ids(), case.W_emb())


@given(case=language_cases())
def test_one_hot_product_is_lookup(impl, case):
    # z = W_emb x̂ for one-hot x̂ selects column k (spec.language.embedding_is_column_lookup):
    # the matmul form and the lookup agree.
    ids, (W,) = case.ids(), impl.inputs(case.W_emb())
    (product,) = impl.run("one_hot_embedding", ids, W)
    (lookup,) = impl.run("embedding", ids, W)
    columns = W.T[ids]
    # The product's models are exact in float32 and float64, but not where the matmul reads W
    # in TF32 (a documented TF32 effect: a one-hot or identity product rounds its operand).
    impl.relation(
        "one_hot(ids) @ W_emb^T vs W_emb[:, ids]",
        product,
        columns,
        lambda: (impl.baseline("one_hot_embedding", ids, W), columns),
    )
    impl.relation("nn.Embedding lookup vs W_emb[:, ids]", lookup, columns, columns, columns)


@given(case=language_cases(min_vocab=4))
def test_embedding_gradient_columns(impl, case):
    # The gradient of a lookup touches only the looked-up columns; an absent token's column
    # gets exactly 0 (spec.language.embedding_gradient_is_one_column).
    ids = case.ids()
    absent = np.setdiff1d(np.arange(case.vocab), ids)
    if absent.size == 0:
        ids = np.where(ids == case.vocab - 1, 0, ids)
        absent = np.setdiff1d(np.arange(case.vocab), ids)
    dz = case.cotangent(case.batch, case.steps, case.embed)
    for op in ("embedding", "one_hot_embedding"):
        (dW,) = impl.run_vjp(op, dz, ids, case.W_emb())
        zeros = np.zeros((case.embed, absent.size))
        impl.relation(
            f"{op}: gradient of absent tokens' columns", dW[:, absent], zeros, zeros, zeros
        )


# -- LM head and cross-entropy -----------------------------------------------------------------


@given(case=language_cases())
def test_lm_head_values(impl, case):
    h = case.cotangent(case.batch, case.steps, case.hidden, k=3)
    impl.compare("lm_head", h, *case.head())


@given(case=language_cases())
def test_lm_head_vjp(impl, case):
    h = case.cotangent(case.batch, case.steps, case.hidden, k=3)
    dy = case.cotangent(case.batch, case.steps, case.vocab)
    impl.compare_vjp("lm_head", dy, h, *case.head())


def _ce_options(data, case):
    options = {
        "reduction": data.draw(st.sampled_from(ref.REDUCTIONS), label="reduction"),
        "label_smoothing": data.draw(st.sampled_from((0.0, 0.1, 0.3)), label="label_smoothing"),
    }
    ignore = data.draw(st.sampled_from((None, 0)), label="ignore_index")
    return options if ignore is None else {**options, "ignore_index": ignore}


def _targets(case, options):
    targets = case.ids(k=1)
    if "ignore_index" in options:
        targets.flat[0] = 1 % case.vocab if targets.flat[0] == 0 else targets.flat[0]  # one kept
    return targets


@given(case=language_cases(), data=st.data())
def test_cross_entropy_values(impl, case, data):
    options = _ce_options(data, case)
    impl.compare("cross_entropy", case.logits(), _targets(case, options), **options)


@given(case=language_cases(), data=st.data())
def test_cross_entropy_vjp(impl, case, data):
    options = _ce_options(data, case)
    targets = _targets(case, options)
    shape = targets.shape if options["reduction"] == "none" else ()
    dL = case.cotangent(*shape, k=2) if shape else np.asarray(case.cotangent(1, k=2)[0])
    impl.compare_vjp("cross_entropy", dL, case.logits(), targets, **options)


@given(case=language_cases(min_steps=4))  # 4+ tokens: a 1-token norm error is rounding luck
def test_cross_entropy_is_negative_log_softmax(impl, case):
    # -Σ p(i) log f(i) with one-hot p = -log softmax(logits)[target]
    # (spec.language.cross_entropy_one_hot).
    (x,) = impl.inputs(case.logits())
    targets = case.ids(k=1)
    (loss,) = impl.run("cross_entropy", x, targets, reduction="none")
    wide = ref.log_softmax(x.astype(tolerance.truth_dtype()))  # exact up to long double
    expected = -np.take_along_axis(wide, targets[..., None], axis=-1)[..., 0].astype(np.float64)
    impl.relation(
        "cross-entropy vs -log_softmax[target]",
        loss,
        expected,
        lambda: (impl.baseline("cross_entropy", x, targets, reduction="none"), expected),
    )


@given(case=language_cases(min_steps=4), margin=st.sampled_from((6.0, 9.0)))
def test_cross_entropy_confident(impl, case, margin):
    # Confident predictions: every target's logit leads the others by `margin`, so each loss is
    # log(1 + Σ_j e^{z_j - z_k}) ~ 1e-4..1e-2, the log1p regime where a kernel that rounds the
    # sum of exponentials to a low-precision dtype before the log loses most digits.
    x = case.logits()
    targets = case.ids(k=1)
    x = np.where(
        np.arange(case.vocab) == targets[..., None], x.max(axis=-1, keepdims=True) + margin, x
    )
    impl.compare("cross_entropy", x, targets, reduction="none")


@given(case=language_cases())
def test_cross_entropy_gradient_is_softmax_minus_onehot(impl, case):
    # d/dlogits of the summed cross-entropy = softmax(logits) - onehot(target)
    # (spec.language.cross_entropy_gradient).
    (x,) = impl.inputs(case.logits())
    targets = case.ids(k=1)
    (g,) = impl.run_vjp("cross_entropy", np.asarray(1.0), x, targets, reduction="sum")
    expected = ref.softmax(x) - np.eye(case.vocab)[targets]

    def models():
        vjp_models = impl.models(
            OPS["cross_entropy"].vjp, (np.asarray(1.0), x, targets), {"reduction": "sum"}
        )
        return np.stack([m[0] for m in vjp_models]), expected

    impl.relation("d CE / d logits vs softmax - onehot", g, expected, models)


# -- language models ---------------------------------------------------------------------------


def _rnn_lm_args(case):
    W, U, b = case.rnn()
    return (case.ids(), case.state(0), case.W_emb(), W, U, b, *case.head())


@given(case=language_cases())
def test_rnn_lm_values(impl, case):
    impl.compare("rnn_lm", *_rnn_lm_args(case))


@given(case=language_cases())
def test_rnn_lm_vjp(impl, case):
    dy = case.cotangent(case.batch, case.steps, case.vocab)
    impl.compare_vjp("rnn_lm", dy, *_rnn_lm_args(case))


@given(case=language_cases())
def test_lstm_lm_values(impl, case):
    impl.compare("lstm_lm", case.ids(), *case.lm_params())


@given(case=language_cases())
def test_lstm_lm_vjp(impl, case):
    dy = case.cotangent(case.batch, case.steps, case.vocab)
    impl.compare_vjp("lstm_lm", dy, case.ids(), *case.lm_params())


@given(case=language_cases(min_steps=2), reduction=st.sampled_from(("mean", "sum")))
def test_lm_loss_values(impl, case, reduction):
    # Teacher forcing: logits after reading ids[:, t] are scored against ids[:, t + 1].
    impl.compare("lm_loss", case.ids(), *case.lm_params(), reduction=reduction)


@given(case=language_cases(min_steps=2), reduction=st.sampled_from(("mean", "sum")))
def test_lm_loss_vjp(impl, case, reduction):
    dL = np.asarray(case.cotangent(1, k=2)[0])
    impl.compare_vjp("lm_loss", dL, case.ids(), *case.lm_params(), reduction=reduction)


# -- greedy decoding ---------------------------------------------------------------------------


def _prompt(case, data):
    steps = data.draw(st.integers(1, min(4, case.steps)), label="prompt length")
    return case.ids(steps, k=3)


@given(case=language_cases(max_steps=6), data=st.data())
def test_greedy_choices(impl, case, data):
    prompt = _prompt(case, data)
    params = case.lm_params()
    max_new = data.draw(st.integers(1, 12 - prompt.shape[1]), label="max_new_tokens")
    out = run_tokens(impl, "lstm_greedy", prompt, *params, max_new)
    steps = check_eos_rule("lstm_greedy", out, case.batch, max_new, None, None)
    check_greedy_choices(impl, "lstm_greedy", prompt, _rounded(impl, params), out, steps)


def _rounded(impl, params):
    return tuple(None if p is None else impl.inputs(p)[0] for p in params)


def _eos_params(case, eos: int, boost: float):
    """The case's LM with the EOS logit raised by `boost`: rows end at different steps."""
    h0, c0, W_emb, W, b, W_d, b_d = case.lm_params()
    b_d = b_d.copy()
    b_d[eos] += boost
    return h0, c0, W_emb, W, b, W_d, b_d


@given(case=language_cases(max_steps=6, min_vocab=3), data=st.data())
def test_greedy_stops_at_eos(impl, case, data):
    # EOS is emitted and kept; a finished row then holds the pad id; decoding stops once every
    # row has emitted EOS (reference/language.py). The EOS logit is raised so that rows finish
    # at different steps.
    prompt = _prompt(case, data)
    eos = data.draw(st.integers(0, case.vocab - 1), label="eos")
    pad = data.draw(st.sampled_from((None, (eos + 1) % case.vocab)), label="pad")
    boost = data.draw(st.sampled_from((0.5, 1.0, 2.0)), label="EOS logit boost")
    params = _eos_params(case, eos, boost * case.logit_scale)
    max_new = 12 - prompt.shape[1]
    out = run_tokens(impl, "lstm_greedy", prompt, *params, max_new, eos=eos, pad=pad)
    steps = check_eos_rule("lstm_greedy", out, case.batch, max_new, eos, pad)
    check_greedy_choices(impl, "lstm_greedy", prompt, _rounded(impl, params), out, steps)


@given(case=language_cases(max_steps=6, min_vocab=3), data=st.data())
def test_greedy_tie_lowest_index(impl, case, data):
    # Two tokens whose logits are exactly equal and maximal at every step (zero rows of W_d, the
    # same power-of-two bias above every other logit: exact in any dtype and any summation
    # order); greedy must pick the lower id (numpy.argmax, torch.argmax), never the higher one.
    prompt = _prompt(case, data)
    lo = data.draw(st.integers(0, case.vocab - 2), label="tied token")
    hi = data.draw(st.integers(lo + 1, case.vocab - 1), label="its twin")
    h0, c0, W_emb, W, b, W_d, b_d = case.lm_params()
    W_d, b_d = W_d.copy(), b_d.copy()
    bound = np.abs(W_d).sum(axis=1).max() + np.abs(b_d).max() + 1.0  # |h| <= 1 (h = o tanh c)
    W_d[[lo, hi]] = 0.0
    b_d[[lo, hi]] = 2.0 ** np.ceil(np.log2(bound))
    params = (h0, c0, W_emb, W, b, W_d, b_d)
    out = run_tokens(impl, "lstm_greedy", prompt, *params, 3)
    steps = check_eos_rule("lstm_greedy", out, case.batch, 3, None, None)
    check_greedy_choices(impl, "lstm_greedy", prompt, _rounded(impl, params), out, steps)


# -- sampling ----------------------------------------------------------------------------------


TEMPERATURES = (0.5, 0.8, 1.5, 2.0)


@given(
    case=language_cases(scales=(0.5, 1.0, 2.0)),
    temperature=st.sampled_from(TEMPERATURES),
    seed=st.integers(0, 2**31 - 1),
)
def test_sample_distribution(impl, case, temperature, seed):
    # x ~ softmax(logits / T): the draws' frequencies against the distribution, chi-square at
    # ALPHA. A sampler that ignores T, or takes the argmax, fails by a wide margin.
    (x,) = impl.inputs(case.logits(rows=case.batch))
    draws = run_tokens(impl, "sample_tokens", x, DRAWS, temperature=temperature, seed=seed)
    if draws.shape != (case.batch, DRAWS):
        raise CheckFailed(f"sample_tokens: shape {draws.shape}, expected {(case.batch, DRAWS)}")
    p = ref.sampling_distribution(x, temperature)
    for r in range(case.batch):
        judge_frequencies(impl, f"sample_tokens row {r} (T={temperature})", draws[r], p[r])


@given(
    case=language_cases(min_vocab=3, scales=(0.5, 1.0, 2.0)),
    temperature=st.sampled_from(TEMPERATURES),
    data=st.data(),
)
def test_sample_top_k(impl, case, temperature, data):
    # top-k: only the k largest logits can be drawn, in proportion to softmax over them.
    top_k = data.draw(st.integers(1, case.vocab - 1), label="top_k")
    (x,) = impl.inputs(case.logits(rows=case.batch))
    draws = run_tokens(
        impl,
        "sample_tokens",
        x,
        DRAWS,
        temperature=temperature,
        top_k=top_k,
        seed=case.seed % 2**31,
    )
    p = target_distribution(impl, x, temperature, top_k)
    for r in range(case.batch):
        judge_frequencies(impl, f"sample_tokens row {r} (top_k={top_k})", draws[r], p[r])


@given(case=language_cases(max_steps=6), temperature=st.sampled_from(TEMPERATURES), data=st.data())
def test_decoder_sample_distribution(impl, case, temperature, data):
    # The LSTM LM's sampled first token, over REPLICAS copies of one prompt, against
    # softmax(logits / T) of the reference model after reading the prompt.
    prompt = np.repeat(_prompt(case, data)[:1], REPLICAS, axis=0)
    h0, c0, *rest = _rounded(impl, case.lm_params())
    h0 = None if h0 is None else np.repeat(h0[:1], REPLICAS, axis=0)
    c0 = None if c0 is None else np.repeat(c0[:1], REPLICAS, axis=0)
    out = run_tokens(
        impl,
        "lstm_sample",
        prompt,
        h0,
        c0,
        *rest,
        1,
        temperature=temperature,
        seed=case.seed % 2**31,
    )
    check_eos_rule("lstm_sample", out, REPLICAS, 1, None, None)
    logits = ref.lstm_lm(
        prompt[:1], None if h0 is None else h0[:1], None if c0 is None else c0[:1], *rest
    )[0, -1]
    p = ref.sampling_distribution(logits, temperature)
    judge_frequencies(impl, f"lstm_sample first token (T={temperature})", out[:, 0], p)


@given(case=language_cases(max_steps=6, min_vocab=3), data=st.data())
def test_sample_stops_at_eos(impl, case, data):
    # The EOS rule holds for sampled sequences too.
    prompt = _prompt(case, data)
    eos = data.draw(st.integers(0, case.vocab - 1), label="eos")
    params = _eos_params(case, eos, 2.0)
    max_new = 12 - prompt.shape[1]
    out = run_tokens(impl, "lstm_sample", prompt, *params, max_new, eos=eos, seed=case.seed % 97)
    check_eos_rule("lstm_sample", out, case.batch, max_new, eos, None)


# -- decoders over the adapter's own model (HF: generate() of a tiny random GPT-2) ----------------


def _own_step(impl, model):
    """The adapter's own next-token logits as a step function; the state is the prefix."""

    def step(tokens, prefix):
        prefix = np.concatenate([prefix, tokens[:, None]], axis=1)
        logits = impl.adapter.lm_next_logits(prefix, model=model, dtype=impl.dtype)
        return np.asarray(logits, dtype=np.float64), prefix

    return step


@settings(max_examples=5)  # generate() costs ~0.1 s a call
@given(
    prompt_len=st.integers(1, 4),
    batch=st.integers(1, 3),
    max_new=st.integers(1, 8),
    eos=st.sampled_from((None, 3, 15)),
    seed=st.integers(0, 2**16),
)
def test_generate_greedy_matches_reference_decoder(impl, prompt_len, batch, max_new, eos, seed):
    # The library's own greedy generation must give exactly the tokens of the reference greedy
    # decoder (argmax, lowest index on ties, the EOS rule) driven by the library's own
    # next-token logits as the step function.
    prompt = np.random.default_rng(seed).integers(0, ref.SEEDED_VOCAB, (batch, prompt_len))
    model = seed % 5
    out = run_tokens(
        impl, "lm_generate_greedy", prompt, max_new, eos=eos, model=model, dtype=impl.dtype
    )
    check_eos_rule("lm_generate_greedy", out, batch, max_new, eos, None)
    expected = ref.greedy_decode(
        _own_step(impl, model), prompt[:, :-1], prompt[:, -1], max_new, eos
    )
    impl.worst.update(
        float(np.sum(out != expected)) if out.shape == expected.shape else 1.0, 0.5, 0.0, None
    )
    if out.shape != expected.shape or np.any(out != expected):
        raise CheckFailed(
            f"lm_generate_greedy [{impl.dtype}]: generated {out.tolist()}, the reference greedy "
            f"decoder on the same logits gives {expected.tolist()}"
        )


@settings(max_examples=5)  # generate() costs ~0.1 s a call
@given(
    prompt_len=st.integers(1, 4),
    temperature=st.sampled_from(TEMPERATURES),
    top_k=st.sampled_from((None, 4)),
    seed=st.integers(0, 2**16),
)
def test_generate_sample_distribution(impl, prompt_len, temperature, top_k, seed):
    # The library's sampled first token over REPLICAS copies of one prompt against
    # softmax(own logits / T) (top-k applied), chi-square at ALPHA.
    prompt = np.random.default_rng(seed).integers(0, ref.SEEDED_VOCAB, (1, prompt_len))
    model = seed % 5
    out = run_tokens(
        impl,
        "lm_generate_sample",
        np.repeat(prompt, REPLICAS, axis=0),
        1,
        temperature=temperature,
        top_k=top_k,
        model=model,
        seed=seed,
        dtype=impl.dtype,
    )
    check_eos_rule("lm_generate_sample", out, REPLICAS, 1, None, None)
    logits = impl.adapter.lm_next_logits(prompt, model=model, dtype=impl.dtype)
    p = target_distribution(impl, logits, temperature, top_k)[0]
    judge_frequencies(impl, f"lm_generate_sample (T={temperature}, top_k={top_k})", out[:, 0], p)
