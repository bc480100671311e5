"""softmax mutants."""

import numpy as np

from conformance.adapters.numpy_reference import NumpyReference
from reference import softmax as ref


class NoMaxSubtraction(NumpyReference):
    """exp(x) / sum(exp(x)) without subtracting the row max: overflows for large logits."""

    name = "mutant-softmax-no-max"

    def softmax(self, x, axis=-1):
        e = np.exp(x)
        return e / e.sum(axis=axis, keepdims=True)

    def log_softmax(self, x, axis=-1):
        return x - np.log(np.exp(x).sum(axis=axis, keepdims=True))


class SilentHalf(NumpyReference):
    """Declares float32 but computes in float16 inside: a silent downcast."""

    name = "mutant-softmax-silent-half"

    def softmax(self, x, axis=-1):
        return ref.softmax(x.astype(np.float16), axis).astype(x.dtype)
