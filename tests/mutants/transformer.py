"""Transformer layer mutants."""

from conformance.adapters.numpy_reference import NumpyReference
from reference import transformer


class LayerNormBeforeResidual(NumpyReference):
    """The encoder and decoder layers with each LayerNorm moved before its sublayer (on the
    residual branch's input) instead of after the residual sum: the pre-LN layout, where the
    notes (and the canonical post-LN op) put LN(h + Attn(h)). Diagnosed as the declared variant
    transformer.norm_first=True."""

    name = "mutant-transformer-ln-before-residual"

    def encoder_layer(self, x, *params, **options):
        return transformer.encoder_layer(x, *params, **options, norm_first=True)

    def decoder_layer(self, y, memory, *params, **options):
        return transformer.decoder_layer(y, memory, *params, **options, norm_first=True)
