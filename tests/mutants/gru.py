"""GRU mutants: the reset placement swapped (a declared variant: the suite must name it), and
the final states of stacked layers returned top layer first."""

from conformance.adapters.numpy_reference import NumpyReference
from reference import gru as ref


class ResetAfter(NumpyReference):
    """Computes the cuDNN/PyTorch placement (reset after the recurrent matmul) but declares no
    variant, so it is held to nnspec's canonical "before": the check must fail and name
    gru.reset=after."""

    name = "mutant-gru-reset-swapped"

    def gru(self, x, h0, W, b, reverse=False, lengths=None):
        return ref.gru(x, h0, W, b, reverse, reset="after", lengths=lengths)

    def gru_vjp(self, dhs, x, h0, W, b, reverse=False, dh_T=None, lengths=None):
        return ref.gru_vjp(dhs, x, h0, W, b, reverse, reset="after", dh_T=dh_T, lengths=lengths)


class LayerStatesTopFirst(NumpyReference):
    """Returns the final states of stacked layers top layer first, where torch's h_n (and
    nnspec's h_T (L, B, H)) put layer 0 first."""

    name = "mutant-gru-layer-states-top-first"

    def gru_layers(self, x, h0, *weights, lengths=None):
        hs, h_T = ref.gru_layers(x, h0, *weights, lengths=lengths)
        return hs, h_T[::-1].copy()
