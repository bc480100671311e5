"""GRU mutants: the reset placement swapped (a declared variant: the suite must name it)."""

from conformance.adapters.numpy_reference import NumpyReference
from reference import gru as ref


class ResetAfter(NumpyReference):
    """Computes the cuDNN/PyTorch placement (reset after the recurrent matmul) but declares no
    variant, so it is held to nnspec's canonical "before": the check must fail and name
    gru.reset=after."""

    name = "mutant-gru-reset-swapped"

    def gru(self, x, h0, W, b, reverse=False):
        return ref.gru(x, h0, W, b, reverse, reset="after")

    def gru_vjp(self, dhs, x, h0, W, b, reverse=False, dh_T=None):
        return ref.gru_vjp(dhs, x, h0, W, b, reverse, reset="after", dh_T=dh_T)
