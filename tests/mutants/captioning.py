"""Captioning mutants: attention weights normalised over the batch instead of the locations,
and the image feature fed at every step (a declared variant: captioning.image_input)."""

from conformance.adapters.numpy_reference import NumpyReference
from reference import captioning as ref
from reference.softmax import softmax


def _over_batch(a, h, W_a, W_h, w):
    e = ref.attention_scores(a, h, W_a, W_h, w)  # (B, L)
    alpha = softmax(e, axis=0)  # the bug: each location normalised across the images
    return alpha, (alpha[:, :, None] * a).sum(axis=1)


class AttentionOverBatch(NumpyReference):
    """softmax(e, axis=0) on scores (B, L): the weights of a location sum to one over the
    batch, those of an image do not."""

    name = "mutant-captioning-attention-over-batch"

    def attention_weights(self, a, h, W_a, W_h, w):
        return _over_batch(a, h, W_a, W_h, w)[0]

    def soft_attention(self, a, h, W_a, W_h, w):
        return _over_batch(a, h, W_a, W_h, w)[1]


class ImageEveryStep(NumpyReference):
    """The projected image added to every word's input, not only fed as the first one."""

    name = "mutant-captioning-image-every-step"

    def show_and_tell(self, *args, **options):
        return ref.show_and_tell(*args, image_input="every_step")

    def show_and_tell_vjp(self, *args, **options):
        return ref.show_and_tell_vjp(*args, image_input="every_step")
