"""Activation mutants."""

from conformance.adapters.numpy_reference import NumpyReference
from reference import activation


class GeluTanhAsExact(NumpyReference):
    """Declares the exact GELU x Φ(x) (canonical) but computes the tanh approximation."""

    name = "mutant-activation-gelu-tanh"

    def gelu(self, x):
        return activation.gelu(x, approximation="tanh")
