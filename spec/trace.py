"""Traceability: each formula of the lecture notes -> its proof, its kernel, its checks.

One row per formula (the notes' words, or "(implied)" for an identity the notes rely on
without writing it): the stem, the spec function that proves it (``spec.<stem>.<name>``, returns
(lhs, rhs)), the reference function that implements it (``reference.<stem>.<name>``, or None),
and the conformance properties that check it ("<stem>/<property>" -> ``test_<property>`` in
``conformance/test_<stem>.py``). ``tests/spec/test_trace.py`` proves every row and checks that
every name resolves, so a formula without a proof or without a property fails the self-tests.

Plain data, no imports: the report generator can read it without sympy.
"""

from __future__ import annotations

TRACE: list[dict] = [
    # -- softmax: "softmax e^{z_j} / Σ e^{z_j}" ------------------------------------------------
    {
        "formula": "softmax(z)_j = e^{z_j} / Σ_k e^{z_k}",
        "stem": "softmax",
        "spec": "spec.softmax.softmax_definition",
        "reference": "reference.softmax.softmax",
        "properties": ("softmax/values",),
    },
    {
        "formula": "Σ_j softmax(z)_j = 1 (α = softmax(e) are weights) (implied)",
        "stem": "softmax",
        "spec": "spec.softmax.softmax_sums_to_one",
        "reference": "reference.softmax.softmax",
        "properties": ("softmax/sums_to_one",),
    },
    {
        "formula": "softmax(z + c) = softmax(z) (implied)",
        "stem": "softmax",
        "spec": "spec.softmax.softmax_shift_invariance",
        "reference": "reference.softmax.softmax",
        "properties": ("softmax/shift_invariance",),
    },
    {
        "formula": "softmax(z - max z) = softmax(z): exp never overflows (implied)",
        "stem": "softmax",
        "spec": "spec.softmax.softmax_stable_form",
        "reference": "reference.softmax.softmax",
        "properties": ("softmax/no_overflow",),
    },
    {
        "formula": "d softmax / dz = diag(s) - s s^T (backward)",
        "stem": "softmax",
        "spec": "spec.softmax.softmax_jacobian_identity",
        "reference": "reference.softmax.softmax_vjp",
        "properties": ("softmax/vjp",),
    },
    {
        "formula": "J^T dy = s * (dy - <dy, s>) (backward)",
        "stem": "softmax",
        "spec": "spec.softmax.softmax_vjp_identity",
        "reference": "reference.softmax.softmax_vjp",
        "properties": ("softmax/vjp",),
    },
    {
        "formula": "log softmax(z) = z - log Σ_k e^{z_k}",
        "stem": "softmax",
        "spec": "spec.softmax.log_softmax_definition",
        "reference": "reference.softmax.log_softmax",
        "properties": ("softmax/log_softmax_values", "softmax/log_softmax_no_overflow"),
    },
    {
        "formula": "d log softmax / dz = I - 1 s^T (backward)",
        "stem": "softmax",
        "spec": "spec.softmax.log_softmax_jacobian_identity",
        "reference": "reference.softmax.log_softmax_vjp",
        "properties": ("softmax/log_softmax_vjp",),
    },
    {
        "formula": "J^T dy = dy - s Σ_i dy_i (log-softmax backward)",
        "stem": "softmax",
        "spec": "spec.softmax.log_softmax_vjp_identity",
        "reference": "reference.softmax.log_softmax_vjp",
        "properties": ("softmax/log_softmax_vjp",),
    },
    # -- attention -------------------------------------------------------------------------
    {
        "formula": "Attention(Q, K, V) = softmax(QK^T / √d_k) · V",
        "stem": "attention",
        "spec": "spec.attention.attention_definition",
        "reference": "reference.attention.sdpa",
        "properties": ("attention/values",),
    },
    {
        "formula": "÷√d_k keeps the scores at unit variance (implied)",
        "stem": "attention",
        "spec": "spec.attention.score_variance",
        "reference": "reference.attention.sdpa",
        "properties": ("attention/values",),
    },
    {
        "formula": "Query = XW_Q, Key = XW_K, Value = XW_V; Self-Attention: Q, K, V ⇐ X",
        "stem": "attention",
        "spec": "spec.attention.self_attention_identity",
        "reference": "reference.attention.sdpa",
        "properties": ("attention/self_attention",),
    },
    {
        "formula": "Cross-Attention: Q ⇐ Y (decoder), K, V ⇐ X (encoder)",
        "stem": "attention",
        "spec": "spec.attention.cross_attention_identity",
        "reference": "reference.attention.sdpa",
        "properties": ("attention/cross_attention",),
    },
    {
        "formula": "Masked Self-Attention: i-th row < j-th column then -∞",
        "stem": "attention",
        "spec": "spec.attention.causal_weights",
        "reference": "reference.attention.attention_weights",
        "properties": ("attention/values", "attention/causal_ignores_future"),
    },
    {
        # A query with no visible key is 0/0 under this formula; nnspec's answer (zeros) is a
        # convention, checked by fully_masked_row, not something the notes state.
        "formula": "-∞ on hidden keys = softmax over the visible keys (any mask) (implied)",
        "stem": "attention",
        "spec": "spec.attention.masked_weights_are_visible_softmax",
        "reference": "reference.attention.attention_weights",
        "properties": ("attention/values", "attention/fully_masked_row"),
    },
    {
        "formula": "decoder를 training할 때에는 미래의 단어들을 가려야 한다",
        "stem": "attention",
        "spec": "spec.attention.causal_ignores_future",
        "reference": "reference.attention.sdpa",
        "properties": ("attention/causal_ignores_future",),
    },
    {
        "formula": "Masked row i = attention over the prefix 0..i (implied)",
        "stem": "attention",
        "spec": "spec.attention.causal_is_prefix_attention",
        "reference": "reference.attention.sdpa",
        "properties": ("attention/causal_ignores_future",),
    },
    {
        "formula": "softmax(Q(PK)^T)(PV) = softmax(QK^T)V: keys, values unordered (implied)",
        "stem": "attention",
        "spec": "spec.attention.key_permutation",
        "reference": "reference.attention.sdpa",
        "properties": ("attention/key_permutation",),
    },
    {
        "formula": "Self-Attention without positional encoding: Attn(PX) = P Attn(X) (implied)",
        "stem": "attention",
        "spec": "spec.attention.token_permutation",
        "reference": "reference.attention.sdpa",
        "properties": ("attention/token_permutation",),
    },
    {
        "formula": "dV = α^T dO, dS = α ∘ (dα - rowsum(dα ∘ α)), dQ = dS K / √d_k (backward)",
        "stem": "attention",
        "spec": "spec.attention.attention_vjp_identity",
        "reference": "reference.attention.sdpa_vjp",
        "properties": ("attention/vjp",),
    },
]
