"""Squeeze-and-excitation mutants."""

import numpy as np

from conformance.adapters.numpy_reference import NumpyReference
from reference.common import T, mm


class SoftmaxGate(NumpyReference):
    """Channel gates from a softmax over the channels instead of one sigmoid per channel:
    the gates compete and sum to 1."""

    name = "mutant-se-softmax-gate"

    def squeeze_excitation(self, x, w1, b1, w2, b2):
        z = x.mean(axis=(2, 3))
        u = mm(np.maximum(mm(z, T(w1)) + b1, 0), T(w2)) + b2
        e = np.exp(u - u.max(axis=1, keepdims=True))
        s = e / e.sum(axis=1, keepdims=True)
        return (x * s[:, :, None, None]).astype(x.dtype)
