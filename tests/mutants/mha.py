"""Multi-head attention mutants (stem attention: caught by conformance/test_attention.py)."""

import numpy as np

from conformance.adapters.numpy_reference import NumpyReference
from reference import attention


class HeadsWrongAxis(NumpyReference):
    """Heads split along the wrong axis: (T, E) reshaped to (T, d_h, H) instead of (T, H, d_h),
    so head h takes the strided features h, h + H, h + 2H, ... (and the concatenation undoes it
    the same way). Equal to the spec only when H = 1 or d_h = 1."""

    name = "mutant-attention-heads-wrong-axis"

    def mha(self, x_q, x_kv, W_Q, W_K, W_V, W_O, b_q, b_v, b_o, n_heads=1, mask=None,
            key_mask=None, causal=False, b_k=None):  # fmt: skip
        def split(x):  # (..., T, E) -> (..., H, T, d_h), strided
            *lead, t, e = x.shape
            return np.moveaxis(x.reshape(*lead, t, e // n_heads, n_heads), -1, -3)

        def merge(x):  # (..., H, T, d_h) -> (..., T, E), the inverse of split
            *lead, h, t, d = x.shape
            return np.moveaxis(x, -3, -1).reshape(*lead, t, d * h)

        q = x_q @ W_Q + b_q
        k = x_kv @ W_K + (0 if b_k is None else b_k)
        v = x_kv @ W_V + b_v
        visible = attention.mha_visible(mask, key_mask)
        heads = attention.sdpa(split(q), split(k), split(v), mask=visible, causal=causal)
        return (merge(heads) @ W_O + b_o).astype(x_q.dtype)


class KeyMaskInverted(NumpyReference):
    """key_mask read with the opposite polarity (torch's key_padding_mask is True = padding):
    queries attend to the padding and ignore the real tokens."""

    name = "mutant-attention-key-mask-inverted"

    def mha(self, *args, key_mask=None, **options):
        inverted = None if key_mask is None else ~np.asarray(key_mask, dtype=bool)
        return attention.mha(*args, key_mask=inverted, **options)


class FloatMaskAsBoolean(NumpyReference):
    """A float attn_mask (added to the scores) read as a boolean one (True = may attend): every
    nonzero bias lets its key through and the bias itself is dropped, the bug of passing a
    float mask to an API that expects a boolean one."""

    name = "mutant-attention-float-mask-as-boolean"

    def mha(self, *args, attn_bias=None, mask=None, **options):
        if attn_bias is not None:
            as_bool = np.broadcast_to(np.asarray(attn_bias) != 0, np.shape(attn_bias))
            as_bool = as_bool.all(axis=-3) if as_bool.ndim >= 3 else as_bool  # one for all heads
            mask = as_bool if mask is None else mask & as_bool
        return attention.mha(*args, mask=mask, **options)
