"""Scaled dot-product attention mutants."""

import numpy as np

from conformance.adapters.numpy_reference import NumpyReference
from reference import attention, softmax


class ScaleOneOverD(NumpyReference):
    """Scores scaled by 1/d_k instead of 1/sqrt(d_k)."""

    name = "mutant-attention-scale-1/d"

    def sdpa(self, q, k, v, mask=None, causal=False):
        return attention.sdpa(q, k, v, mask=mask, causal=causal, scale_rule="1/d")


class MaskAfterSoftmax(NumpyReference):
    """Softmax over all keys, then hidden keys zeroed: the weights no longer sum to 1."""

    name = "mutant-attention-mask-after-softmax"

    def sdpa(self, q, k, v, mask=None, causal=False):
        scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1]).astype(q.dtype)
        alpha = softmax.softmax(scores, axis=-1)
        alpha = alpha * attention.visible(q.shape[-2], k.shape[-2], mask, causal)
        return (alpha @ v).astype(q.dtype)


class _CausalOffset(NumpyReference):
    offset = 0

    def sdpa(self, q, k, v, mask=None, causal=False):
        if causal:
            tq, tk = q.shape[-2], k.shape[-2]
            band = np.arange(tk)[None, :] <= np.arange(tq)[:, None] + self.offset
            mask = band if mask is None else mask & band
        return attention.sdpa(q, k, v, mask=mask)


class CausalSeesNext(_CausalOffset):
    """Causal mask off by one: query i also sees key i + 1."""

    name = "mutant-attention-causal-sees-next"
    offset = 1


class CausalHidesDiagonal(_CausalOffset):
    """Causal mask off by one the other way: query i does not see itself."""

    name = "mutant-attention-causal-hides-diagonal"
    offset = -1
