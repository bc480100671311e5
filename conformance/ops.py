"""Which reference function defines each adapter op: one row per op, nothing else."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from reference import activation as ref_activation
from reference import attention, softmax
from reference import captioning as ref_captioning
from reference import equivariance as ref_equivariance
from reference import gru as ref_gru
from reference import language as ref_language
from reference import linear_attention as ref_linear_attention
from reference import lstm as ref_lstm
from reference import norm as ref_norm
from reference import positional as ref_positional
from reference import rnn as ref_rnn
from reference import squeeze_excitation as ref_se
from reference import swin as ref_swin
from reference import transformer as ref_transformer
from reference import vit as ref_vit


@dataclass(frozen=True)
class Op:
    stem: str
    forward: Callable
    vjp: Callable | None
    variants: tuple[str, ...] = ()  # keys of conformance.variants.VARIANTS this op honours
    # (forward output, pullback) from one forward, its activations saved for the pullback, as a
    # training step runs (jax.vjp's shape); vjp(dy, *a) is with_vjp(*a)[1](dy) where given
    with_vjp: Callable | None = None


OPS: dict[str, Op] = {
    "softmax": Op(
        "softmax", softmax.softmax, softmax.softmax_vjp, with_vjp=softmax.softmax_with_vjp
    ),
    "log_softmax": Op("softmax", softmax.log_softmax, softmax.log_softmax_vjp),
    "sdpa": Op(
        "attention",
        attention.sdpa,
        attention.sdpa_vjp,
        ("attention.scale", "attention.masked_rows", "attention.causal_alignment"),
        with_vjp=attention.sdpa_with_vjp,
    ),
    # attention family (reference/attention.py mha, positional.py, transformer.py,
    # linear_attention.py)
    "mha": Op(
        "attention",
        attention.mha,
        attention.mha_vjp,
        ("attention.scale", "attention.masked_rows", "attention.causal_alignment"),
        with_vjp=attention.mha_with_vjp,
    ),
    "positional": Op(
        "positional",
        ref_positional.positional,
        ref_positional.positional_vjp,
        ("positional.layout",),
    ),
    "encoder_layer": Op(
        "transformer",
        ref_transformer.encoder_layer,
        ref_transformer.encoder_layer_vjp,
        ("transformer.norm_first", "attention.scale"),
        with_vjp=ref_transformer.encoder_layer_with_vjp,
    ),
    "pre_ln_encoder_layer": Op(
        "transformer",
        ref_transformer.pre_ln_encoder_layer,
        ref_transformer.pre_ln_encoder_layer_vjp,
        ("attention.scale",),
        with_vjp=ref_transformer.pre_ln_encoder_layer_with_vjp,
    ),
    "decoder_layer": Op(
        "transformer",
        ref_transformer.decoder_layer,
        ref_transformer.decoder_layer_vjp,
        ("transformer.norm_first", "attention.scale"),
        with_vjp=ref_transformer.decoder_layer_with_vjp,
    ),
    "pre_ln_decoder_layer": Op(
        "transformer",
        ref_transformer.pre_ln_decoder_layer,
        ref_transformer.pre_ln_decoder_layer_vjp,
        ("attention.scale",),
        with_vjp=ref_transformer.pre_ln_decoder_layer_with_vjp,
    ),
    "linear_attention": Op(
        "linear_attention",
        ref_linear_attention.linear_attention,
        ref_linear_attention.linear_attention_vjp,
        ("linear_attention.eps",),
    ),
    "linear_attention_quadratic": Op(
        "linear_attention",
        ref_linear_attention.linear_attention_quadratic,
        ref_linear_attention.linear_attention_quadratic_vjp,
        ("linear_attention.eps",),
    ),
    "linear_attention_causal": Op(
        "linear_attention",
        ref_linear_attention.linear_attention_causal,
        ref_linear_attention.linear_attention_causal_vjp,
        ("linear_attention.eps",),
    ),
    # recurrent family (reference/rnn.py, lstm.py, gru.py)
    "rnn": Op("rnn", ref_rnn.rnn, ref_rnn.rnn_vjp),
    "rnn_loss": Op("rnn", ref_rnn.rnn_loss, ref_rnn.rnn_loss_vjp),
    "rnn_tbptt": Op("rnn", ref_rnn.rnn_tbptt, None),
    "clip_grad_norm": Op("rnn", ref_rnn.clip_grad_norm, None, ("clip_grad_norm.eps",)),
    "rnn_bidirectional": Op("rnn", ref_rnn.rnn_bidirectional, ref_rnn.rnn_bidirectional_vjp),
    "rnn_layers": Op("rnn", ref_rnn.rnn_layers, ref_rnn.rnn_layers_vjp),
    "lstm": Op("lstm", ref_lstm.lstm, ref_lstm.lstm_vjp),
    "lstm_bidirectional": Op("lstm", ref_lstm.lstm_bidirectional, ref_lstm.lstm_bidirectional_vjp),
    "lstm_layers": Op("lstm", ref_lstm.lstm_layers, ref_lstm.lstm_layers_vjp),
    "gru": Op("gru", ref_gru.gru, ref_gru.gru_vjp, ("gru.reset",)),
    "gru_bidirectional": Op(
        "gru", ref_gru.gru_bidirectional, ref_gru.gru_bidirectional_vjp, ("gru.reset",)
    ),
    "gru_layers": Op("gru", ref_gru.gru_layers, ref_gru.gru_layers_vjp, ("gru.reset",)),
    # normalization (reference/norm.py); running statistics are keyword state, not inputs
    "batch_norm": Op(
        "norm", ref_norm.batch_norm, ref_norm.batch_norm_vjp, with_vjp=ref_norm.batch_norm_with_vjp
    ),
    "batch_norm_train": Op(
        "norm", ref_norm.batch_norm_train, None, ("batch_norm.running_var", "batch_norm.momentum")
    ),
    "batch_norm_eval": Op("norm", ref_norm.batch_norm_eval, ref_norm.batch_norm_eval_vjp),
    "layer_norm": Op(
        "norm", ref_norm.layer_norm, ref_norm.layer_norm_vjp, with_vjp=ref_norm.layer_norm_with_vjp
    ),
    "group_norm": Op("norm", ref_norm.group_norm, ref_norm.group_norm_vjp),
    "instance_norm": Op("norm", ref_norm.instance_norm, ref_norm.instance_norm_vjp),
    "instance_norm_train": Op(
        "norm",
        ref_norm.instance_norm_train,
        None,
        ("batch_norm.running_var", "batch_norm.momentum"),
    ),
    "instance_norm_eval": Op("norm", ref_norm.instance_norm_eval, ref_norm.instance_norm_eval_vjp),
    "rms_norm": Op("norm", ref_norm.rms_norm, ref_norm.rms_norm_vjp),
    # activations (reference/activation.py)
    "tanh": Op("activation", ref_activation.tanh, ref_activation.tanh_vjp),
    "sigmoid": Op("activation", ref_activation.sigmoid, ref_activation.sigmoid_vjp),
    "gelu": Op("activation", ref_activation.gelu, ref_activation.gelu_vjp, ("activation.gelu",)),
    "gelu_tanh": Op("activation", ref_activation.gelu_tanh, ref_activation.gelu_tanh_vjp),
    # squeeze-and-excitation (reference/squeeze_excitation.py)
    "squeeze_excitation": Op(
        "squeeze_excitation", ref_se.squeeze_excitation, ref_se.squeeze_excitation_vjp
    ),
    # vision: vit, equivariance, swin (reference/vit.py, equivariance.py, swin.py)
    "patch_embedding": Op("vit", ref_vit.patch_embedding, ref_vit.patch_embedding_vjp),
    "vit_embed": Op("vit", ref_vit.vit_embed, ref_vit.vit_embed_vjp),
    "vit_block": Op(
        "vit", ref_vit.vit_block, ref_vit.vit_block_vjp, with_vjp=ref_vit.vit_block_with_vjp
    ),
    "vit": Op("vit", ref_vit.vit, ref_vit.vit_vjp, with_vjp=ref_vit.vit_with_vjp),
    "conv2d": Op("equivariance", ref_equivariance.conv2d, ref_equivariance.conv2d_vjp),
    "avg_pool2d": Op("equivariance", ref_equivariance.avg_pool2d, ref_equivariance.avg_pool2d_vjp),
    "max_pool2d": Op("equivariance", ref_equivariance.max_pool2d, None),
    "global_avg_pool": Op(
        "equivariance", ref_equivariance.global_avg_pool, ref_equivariance.global_avg_pool_vjp
    ),
    "window_attention": Op(
        "swin",
        ref_swin.window_attention,
        ref_swin.window_attention_vjp,
        ("swin.pad_order", "swin.shift_rule"),
        with_vjp=ref_swin.window_attention_with_vjp,
    ),
    "swin_block": Op(
        "swin",
        ref_swin.swin_block,
        ref_swin.swin_block_vjp,
        ("swin.pad_order", "swin.shift_rule"),
        with_vjp=ref_swin.swin_block_with_vjp,
    ),
    "patch_merging": Op(
        "swin",
        ref_swin.patch_merging,
        ref_swin.patch_merging_vjp,
        with_vjp=ref_swin.patch_merging_with_vjp,
    ),
    "msa_macs": Op("swin", ref_swin.msa_layer_macs, None),
    "w_msa_macs": Op("swin", ref_swin.w_msa_layer_macs, None),
    # language models (reference/language.py); the decoders return int64 tokens (no vjp)
    "embedding": Op("language", ref_language.embedding, ref_language.embedding_vjp),
    "one_hot_embedding": Op(
        "language", ref_language.one_hot_embedding, ref_language.one_hot_embedding_vjp
    ),
    "lm_head": Op("language", ref_language.lm_head, ref_language.lm_head_vjp),
    "cross_entropy": Op(
        "language",
        ref_language.cross_entropy,
        ref_language.cross_entropy_vjp,
        ("cross_entropy.label_smoothing", "cross_entropy.ignore_index", "cross_entropy.mean"),
    ),
    "rnn_lm": Op("language", ref_language.rnn_lm, ref_language.rnn_lm_vjp),
    "lstm_lm": Op("language", ref_language.lstm_lm, ref_language.lstm_lm_vjp),
    "lm_loss": Op(
        "language", ref_language.lm_loss, ref_language.lm_loss_vjp, ("cross_entropy.mean",)
    ),
    "lstm_greedy": Op("language", ref_language.lstm_greedy, None),
    "lstm_sample": Op("language", ref_language.lstm_sample, None),
    "sample_tokens": Op("language", ref_language.sample_tokens, None),
    # decoders over an adapter's own model (the reference's: a seeded LSTM LM; HF: GPT-2)
    "lm_next_logits": Op("language", ref_language.lm_next_logits, None),
    "lm_generate_greedy": Op("language", ref_language.lm_generate_greedy, None),
    "lm_generate_sample": Op("language", ref_language.lm_generate_sample, None),
    # image captioning (reference/captioning.py)
    "show_and_tell": Op(
        "captioning",
        ref_captioning.show_and_tell,
        ref_captioning.show_and_tell_vjp,
        ("captioning.image_input",),
    ),
    "attention_weights": Op(
        "captioning", ref_captioning.attention_weights, ref_captioning.attention_weights_vjp
    ),
    "soft_attention": Op(
        "captioning", ref_captioning.soft_attention, ref_captioning.soft_attention_vjp
    ),
    "show_attend_tell": Op(
        "captioning", ref_captioning.show_attend_tell, ref_captioning.show_attend_tell_vjp
    ),
}
