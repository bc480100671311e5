"""The mutant zoo: deliberately wrong adapters, each a bug people really make. The suite must
catch every one (tests/test_mutants.py); where the bug equals a declared variant, the diagnosis
must name it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mutant:
    spec: str  # --adapter spec
    stem: str  # component whose checks must catch it
    diagnosis: str | None = None  # a fail row must carry this diagnosis
    # The dtype the zoo runs it in: a logic bug shows in float64, where the derived tolerance
    # is tightest (measured: float64 alone catches every logic mutant; float32 as well doubled
    # the zoo's time); a precision bug runs in the dtype it cheats in.
    dtype: str = "float64"


MUTANTS: dict[str, Mutant] = {
    "softmax-no-max": Mutant("tests/mutants/softmax.py:NoMaxSubtraction", "softmax"),
    "softmax-silent-half": Mutant(
        "tests/mutants/softmax.py:SilentHalf", "softmax", dtype="float32"
    ),
    # a "GPU" that claims float32 and computes in float16 (issue: GPU conformance)
    "gpu-silent-half": Mutant("tests/mutants/gpu.py:FakeGPUHalf", "attention", dtype="float32"),
    "attention-scale-1/d": Mutant(
        "tests/mutants/attention.py:ScaleOneOverD",
        "attention",
        diagnosis="matches variant attention.scale=1/d",
    ),
    "attention-mask-after-softmax": Mutant(
        "tests/mutants/attention.py:MaskAfterSoftmax", "attention"
    ),
    "attention-causal-sees-next": Mutant("tests/mutants/attention.py:CausalSeesNext", "attention"),
    "attention-causal-hides-diagonal": Mutant(
        "tests/mutants/attention.py:CausalHidesDiagonal", "attention"
    ),
    # attention family: multi-head attention (stem attention), positional, transformer,
    # linear attention
    "attention-mha-heads-wrong-axis": Mutant("tests/mutants/mha.py:HeadsWrongAxis", "attention"),
    "attention-mha-key-mask-inverted": Mutant("tests/mutants/mha.py:KeyMaskInverted", "attention"),
    "attention-float-mask-as-boolean": Mutant(
        "tests/mutants/mha.py:FloatMaskAsBoolean", "attention"
    ),
    "positional-sin-cos-swapped": Mutant("tests/mutants/positional.py:SinCosSwapped", "positional"),
    "positional-frequency-wrong-index": Mutant(
        "tests/mutants/positional.py:FrequencyWrongIndex", "positional"
    ),
    "transformer-ln-before-residual": Mutant(
        "tests/mutants/transformer.py:LayerNormBeforeResidual",
        "transformer",
        diagnosis="matches variant transformer.norm_first=True",
    ),
    "linear-attention-causal-sum-twice": Mutant(
        "tests/mutants/linear_attention.py:CausalSumTwice", "linear_attention"
    ),
    "linear-attention-causal-omits-current": Mutant(
        "tests/mutants/linear_attention.py:CausalSumOmitsCurrent", "linear_attention"
    ),
    "linear-attention-no-normalizer": Mutant(
        "tests/mutants/linear_attention.py:NoNormalizer", "linear_attention"
    ),
    # normalization, activations, squeeze-excitation
    "norm-layer-norm-per-channel": Mutant("tests/mutants/norm.py:LayerNormPerChannel", "norm"),
    "norm-batch-norm-per-sample": Mutant("tests/mutants/norm.py:BatchNormPerSample", "norm"),
    "norm-eps-outside-sqrt": Mutant("tests/mutants/norm.py:EpsOutsideSqrt", "norm"),
    "norm-running-var-biased": Mutant(
        "tests/mutants/norm.py:RunningVarBiased",
        "norm",
        diagnosis="matches variant batch_norm.running_var=biased",
    ),
    "norm-momentum-old-weight": Mutant(
        "tests/mutants/norm.py:MomentumOldWeight",
        "norm",
        diagnosis="matches variant batch_norm.momentum=old_weight",
    ),
    "norm-eval-uses-batch-statistics": Mutant(
        "tests/mutants/norm.py:EvalUsesBatchStatistics", "norm"
    ),
    "norm-gamma-beta-swapped": Mutant("tests/mutants/norm.py:GammaBetaSwapped", "norm"),
    "activation-gelu-tanh": Mutant(
        "tests/mutants/activation.py:GeluTanhAsExact",
        "activation",
        diagnosis="matches variant activation.gelu=tanh",
    ),
    "se-softmax-gate": Mutant(
        "tests/mutants/squeeze_excitation.py:SoftmaxGate", "squeeze_excitation"
    ),
    # recurrent family: rnn (BPTT, clipping, truncated BPTT), lstm, gru
    "rnn-notes-bptt-jacobian": Mutant("tests/mutants/rnn.py:NotesBpttJacobian", "rnn"),
    "rnn-clip-per-element": Mutant("tests/mutants/rnn.py:ClipPerElement", "rnn"),
    "rnn-tbptt-no-stop-gradient": Mutant("tests/mutants/rnn.py:TbpttNoStop", "rnn"),
    "rnn-hidden-sequence-seq-first": Mutant("tests/mutants/rnn.py:SeqFirst", "rnn"),
    "lstm-gate-order-swapped": Mutant("tests/mutants/lstm.py:GateOrderSwapped", "lstm"),
    "lstm-forget-on-new-cell": Mutant("tests/mutants/lstm.py:ForgetOnNewCell", "lstm"),
    "lstm-missing-torch-bias": Mutant("tests/mutants/lstm.py:MissingBias", "lstm"),
    "rnn-ignores-sequence-lens": Mutant("tests/mutants/rnn.py:IgnoresSequenceLens", "rnn"),
    "lstm-peephole-order": Mutant("tests/mutants/lstm.py:PeepholesInOnnxOrder", "lstm"),
    "lstm-bidirectional-halves-swapped": Mutant(
        "tests/mutants/lstm.py:BidirectionalHalvesSwapped", "lstm"
    ),
    "gru-layer-states-top-first": Mutant("tests/mutants/gru.py:LayerStatesTopFirst", "gru"),
    "gru-reset-placement-swapped": Mutant(
        "tests/mutants/gru.py:ResetAfter", "gru", diagnosis="matches variant gru.reset=after"
    ),
    # language models and captioning
    "language-cross-entropy-double-softmax": Mutant(
        "tests/mutants/language.py:DoubleSoftmax", "language"
    ),
    "language-lm-target-not-shifted": Mutant(
        "tests/mutants/language.py:TargetNotShifted", "language"
    ),
    "language-greedy-past-eos": Mutant("tests/mutants/language.py:GreedyPastEos", "language"),
    "language-sampling-ignores-temperature": Mutant(
        "tests/mutants/language.py:SamplingIgnoresTemperature", "language"
    ),
    "language-greedy-sampler": Mutant("tests/mutants/language.py:GreedySampler", "language"),
    "captioning-attention-over-batch": Mutant(
        "tests/mutants/captioning.py:AttentionOverBatch", "captioning"
    ),
    "captioning-image-every-step": Mutant(
        "tests/mutants/captioning.py:ImageEveryStep",
        "captioning",
        diagnosis="matches variant captioning.image_input=every_step",
    ),
    # vision: swin, vit
    "swin-shift-wrong-direction": Mutant("tests/mutants/swin.py:ShiftWrongDirection", "swin"),
    "swin-shift-not-undone": Mutant("tests/mutants/swin.py:ShiftNotUndone", "swin"),
    "swin-missing-mask": Mutant("tests/mutants/swin.py:MissingMask", "swin"),
    "swin-mask-on-unshifted-grid": Mutant("tests/mutants/swin.py:MaskOnUnshiftedGrid", "swin"),
    "swin-relative-index-transposed": Mutant(
        "tests/mutants/swin.py:RelativeIndexTransposed", "swin"
    ),
    "swin-merging-neighbour-order": Mutant("tests/mutants/swin.py:MergingNeighbourOrder", "swin"),
    "vit-cls-appended": Mutant("tests/mutants/vit.py:ClsAppended", "vit"),
    "vit-pos-after-first-block": Mutant("tests/mutants/vit.py:PositionAfterFirstBlock", "vit"),
}
