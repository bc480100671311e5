"""Sinusoidal positional encoding mutants."""

import numpy as np

from conformance.adapters.numpy_reference import NumpyReference
from reference.common import store


def _encode(x, offset, combine, table):
    t, d = x.shape[-2:]
    wide = np.promote_types(x.dtype, np.float32)
    pe = store(table(np.arange(offset, offset + t).astype(wide)[:, None], d, wide).astype(x.dtype))
    if combine == "add":
        return x + pe
    return np.concatenate([x, np.broadcast_to(pe, x.shape)], axis=-1)


class SinCosSwapped(NumpyReference):
    """cos at the even features and sin at the odd ones: PE(pos, 2k) = cos(pos w_k)."""

    name = "mutant-positional-sin-cos-swapped"

    def positional(self, x, offset=0, combine="add"):
        def table(pos, d, dtype):
            w = 1 / np.power(dtype.type(10000), (2 * np.arange(d // 2) / d).astype(dtype))
            return np.stack([np.cos(pos * w), np.sin(pos * w)], axis=-1).reshape(len(pos), d)

        return _encode(x, offset, combine, table)


class FrequencyWrongIndex(NumpyReference):
    """w_k = 1 / 10000^(k/D): the notes' 10000^(k/d) with d read as the model width D instead of
    the number of (sin, cos) pairs D/2, so the frequencies decay only half as fast."""

    name = "mutant-positional-frequency-wrong-index"

    def positional(self, x, offset=0, combine="add"):
        def table(pos, d, dtype):
            w = 1 / np.power(dtype.type(10000), (np.arange(d // 2) / d).astype(dtype))
            return np.stack([np.sin(pos * w), np.cos(pos * w)], axis=-1).reshape(len(pos), d)

        return _encode(x, offset, combine, table)
