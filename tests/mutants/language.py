"""Language-model mutants: cross-entropy on probabilities (a double softmax), the LM loss
without the one-step target shift, greedy decoding that ignores EOS, and a sampler that
ignores the temperature."""

import numpy as np

from conformance.adapters.numpy_reference import NumpyReference
from reference import language as ref
from reference.softmax import softmax


class DoubleSoftmax(NumpyReference):
    """Feeds softmax(logits) to a cross-entropy that applies log_softmax again (a model whose
    forward already ends in a softmax, passed to F.cross_entropy)."""

    name = "mutant-language-double-softmax"

    def cross_entropy(self, logits, targets, **options):
        return ref.cross_entropy(softmax(logits), targets, **options)

    def lm_loss(self, ids, h0, c0, W_emb, W, b, W_d, b_d, reduction="mean"):
        logits = ref.lstm_lm(ids[:, :-1], h0, c0, W_emb, W, b, W_d, b_d)
        return ref.cross_entropy(softmax(logits), ids[:, 1:], reduction)


class TargetNotShifted(NumpyReference):
    """LM training with an off-by-one target: the logits after reading x_t are scored against
    x_t itself instead of x_{t+1} (the model learns to copy its input)."""

    name = "mutant-language-target-not-shifted"

    def lm_loss(self, ids, h0, c0, W_emb, W, b, W_d, b_d, reduction="mean"):
        logits = ref.lstm_lm(ids[:, :-1], h0, c0, W_emb, W, b, W_d, b_d)
        return ref.cross_entropy(logits, ids[:, :-1], reduction)

    def lm_loss_vjp(self, dL, ids, h0, c0, W_emb, W, b, W_d, b_d, reduction="mean"):
        inputs = ids[:, :-1]
        logits = ref.lstm_lm(inputs, h0, c0, W_emb, W, b, W_d, b_d)
        (dlogits,) = ref.cross_entropy_vjp(dL, logits, inputs, reduction)
        return ref.lstm_lm_vjp(dlogits, inputs, h0, c0, W_emb, W, b, W_d, b_d)


class GreedyPastEos(NumpyReference):
    """Greedy decoding that checks for EOS only to report it: every row keeps generating for
    max_new_tokens steps."""

    name = "mutant-language-greedy-past-eos"

    def lstm_greedy(
        self, prompt, h0, c0, W_emb, W, b, W_d, b_d, max_new_tokens, eos=None, pad=None
    ):
        return ref.lstm_greedy(prompt, h0, c0, W_emb, W, b, W_d, b_d, max_new_tokens)


class SamplingIgnoresTemperature(NumpyReference):
    """Samples from softmax(logits): the temperature argument is accepted and dropped."""

    name = "mutant-language-sampling-ignores-temperature"

    def sample_tokens(self, logits, n, temperature=1.0, top_k=None, seed=0):
        return ref.sample_tokens(logits, n, 1.0, top_k, seed)

    def lstm_sample(self, *args, temperature=1.0, **options):
        return ref.lstm_sample(*args, temperature=1.0, **options)


class GreedySampler(NumpyReference):
    """'Sampling' that returns the argmax every time (do_sample silently off)."""

    name = "mutant-language-greedy-sampler"

    def sample_tokens(self, logits, n, temperature=1.0, top_k=None, seed=0):
        return np.repeat(ref.greedy_pick(logits)[:, None], n, axis=1)
