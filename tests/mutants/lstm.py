"""LSTM mutants: gate order swapped, forget gate on the new cell, one of torch's two biases
dropped, ONNX's peephole order read as nnspec's, bidirectional halves swapped."""

import numpy as np

from conformance.adapters.base import Unsupported
from conformance.adapters.numpy_reference import NumpyReference
from reference import lstm as ref

# The canonical blocks are i, f, o, g; a port from torch reads them as i, f, g, o.
SWAP_O_G = (0, 1, 3, 2)


def _blocks(a, order, H):
    return np.concatenate([a[k * H : (k + 1) * H] for k in order])


class GateOrderSwapped(NumpyReference):
    """Reads nnspec's i, f, o, g blocks as torch's i, f, g, o: the output gate and the cell
    candidate trade places."""

    name = "mutant-lstm-gate-order"

    def lstm(self, x, h0, c0, W, b, reverse=False, **options):
        H = W.shape[0] // 4
        Wp, bp = _blocks(W, SWAP_O_G, H), _blocks(b, SWAP_O_G, H)
        return ref.lstm(x, h0, c0, Wp, bp, reverse, **options)

    def lstm_vjp(self, dhs, x, h0, c0, W, b, reverse=False, dh_T=None, dc_T=None, **options):
        H = W.shape[0] // 4
        Wp, bp = _blocks(W, SWAP_O_G, H), _blocks(b, SWAP_O_G, H)
        *rest, dW, db = ref.lstm_vjp(dhs, x, h0, c0, Wp, bp, reverse, dh_T, dc_T, **options)
        return (*rest, _blocks(dW, SWAP_O_G, H), _blocks(db, SWAP_O_G, H))  # swap is its inverse


class ForgetOnNewCell(NumpyReference):
    """c_t = f * (c_{t-1} + i * g): the forget gate applied to the updated cell instead of to
    c_{t-1} alone."""

    name = "mutant-lstm-forget-on-new-cell"

    def lstm(self, x, h0, c0, W, b, reverse=False, lengths=None, peepholes=None):
        if lengths is not None or peepholes is not None:
            raise Unsupported("this mutant has no sequence_lens or peepholes")
        B, T, _ = x.shape
        H = W.shape[0] // 4
        h = np.zeros((B, H), x.dtype) if h0 is None else h0
        c = np.zeros((B, H), x.dtype) if c0 is None else c0
        hs = np.zeros((B, T, H), x.dtype)
        for t in range(T - 1, -1, -1) if reverse else range(T):
            a = np.concatenate([h, x[:, t]], axis=1) @ W.T + b
            i, f, o = (ref.sigmoid(a[:, k * H : (k + 1) * H]) for k in range(3))
            g = np.tanh(a[:, 3 * H :])
            c = f * (c + i * g)  # the bug
            h = o * np.tanh(c)
            hs[:, t] = h
        return hs, h.astype(x.dtype), c.astype(x.dtype)


class MissingBias(NumpyReference):
    """A torch port that sets only b_ih (or only b_hh) from a checkpoint: with nnspec's bias
    split in halves, the layer runs with half the bias."""

    name = "mutant-lstm-missing-bias"

    def lstm(self, x, h0, c0, W, b, reverse=False, **options):
        return ref.lstm(x, h0, c0, W, b / 2, reverse, **options)

    def lstm_vjp(self, dhs, x, h0, c0, W, b, reverse=False, dh_T=None, dc_T=None, **options):
        *rest, db = ref.lstm_vjp(dhs, x, h0, c0, W, b / 2, reverse, dh_T, dc_T, **options)
        return (*rest, db / 2)


class PeepholesInOnnxOrder(NumpyReference):
    """Hands ONNX's P = [Pi, Po, Pf] to a cell that reads (p_i, p_f, p_o): the forget and
    output peepholes trade places (an ONNX import without the remapping)."""

    name = "mutant-lstm-peephole-order"

    def lstm(self, x, h0, c0, W, b, reverse=False, lengths=None, peepholes=None):
        if peepholes is not None:
            H = peepholes.shape[-1] // 3
            peepholes = _blocks(peepholes, (0, 2, 1), H)
        return ref.lstm(x, h0, c0, W, b, reverse, lengths, peepholes)


class BidirectionalHalvesSwapped(NumpyReference):
    """Concatenates a bidirectional layer's outputs as [reverse | forward]: the halves of hs
    (B, T, 2H) trade places (ONNX's Y (T, 2, B, H) unpacked in the wrong direction order)."""

    name = "mutant-lstm-bidirectional-halves"

    def lstm_bidirectional(self, x, h0, c0, W, b, lengths=None, peepholes=None):
        hs, h_T, c_T = ref.lstm_bidirectional(x, h0, c0, W, b, lengths, peepholes)
        H = hs.shape[-1] // 2
        return np.concatenate([hs[..., H:], hs[..., :H]], axis=-1), h_T, c_T
