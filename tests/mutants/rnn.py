"""Vanilla RNN mutants: the notes' BPTT Jacobian, clipping per element, truncated BPTT that
does not stop the gradient, the hidden sequence returned seq-first, and sequence_lens ignored."""

import numpy as np

from conformance.adapters.base import Unsupported
from conformance.adapters.numpy_reference import NumpyReference
from reference import rnn as ref


class NotesBpttJacobian(NumpyReference):
    """BPTT with the lecture notes' dh_t/dh_{t-1} = (1 - h_{t-1}^2) W: tanh' taken one step too
    early (the right factor is 1 - h_t^2)."""

    name = "mutant-rnn-notes-jacobian"

    def rnn_vjp(
        self, dhs, x, h0, W, U, b, nonlinearity="tanh", reverse=False, dh_T=None, lengths=None
    ):
        if lengths is not None:
            raise Unsupported("this mutant has no sequence_lens")
        hs, _ = ref.rnn(x, h0, W, U, b, nonlinearity, reverse)
        B, T, H = hs.shape
        initial = np.zeros((B, H), dtype=x.dtype) if h0 is None else h0
        order = list(ref.steps(T, reverse))
        dx = np.zeros_like(x)
        dW, dU, db = np.zeros_like(W), np.zeros_like(U), np.zeros_like(b)
        dh = np.zeros((B, H), dtype=x.dtype) if dh_T is None else dh_T
        for k in range(T - 1, -1, -1):
            t = order[k]
            h_prev = hs[:, order[k - 1]] if k > 0 else initial
            dh = dh + dhs[:, t]
            da = dh * ref.activation_derivative(h_prev, nonlinearity)  # the bug: h_{t-1}
            dW, dU, db = dW + da.T @ h_prev, dU + da.T @ x[:, t], db + da.sum(axis=0)
            dx[:, t] = da @ U
            dh = da @ W
        grads = (dx, dh, dW, dU, db) if h0 is not None else (dx, dW, dU, db)
        return tuple(g.astype(x.dtype) for g in grads)


class ClipPerElement(NumpyReference):
    """Clips every entry to [-max_norm, max_norm] instead of scaling by the global norm: the
    direction changes and the norm is not bounded."""

    name = "mutant-rnn-clip-per-element"

    def clip_grad_norm(self, *grads, max_norm):
        return tuple(np.clip(g, -max_norm, max_norm).astype(g.dtype) for g in grads)


class TbpttNoStop(NumpyReference):
    """Truncated BPTT that forgets to detach the carried state: the gradient flows across chunk
    boundaries, i.e. it returns full BPTT whatever the chunk."""

    name = "mutant-rnn-tbptt-no-stop"

    def rnn_tbptt(self, x, h0, W, U, b, V, c, z, chunk, nonlinearity="tanh"):
        L = ref.rnn_loss(x, h0, W, U, b, V, c, z, nonlinearity)
        grads = ref.rnn_loss_vjp(np.ones((), x.dtype), x, h0, W, U, b, V, c, z, nonlinearity)
        first = 1 if h0 is None else 2  # skip dx (and dh0)
        return (L, *grads[first : first + 5])


class SeqFirst(NumpyReference):
    """Returns the hidden sequence seq-first (T, B, H), torch's default layout, where nnspec's
    is batch-first (B, T, H)."""

    name = "mutant-rnn-seq-first"

    def rnn(self, x, h0, W, U, b, nonlinearity="tanh", reverse=False, lengths=None):
        hs, h_T = ref.rnn(x, h0, W, U, b, nonlinearity, reverse, lengths)
        return np.ascontiguousarray(hs.transpose(1, 0, 2)), h_T


class IgnoresSequenceLens(NumpyReference):
    """Runs every row for all T steps whatever sequence_lens says (what onnx.reference 1.23.2
    does): outputs past a row's length are not zero and h_T is the state after step T-1."""

    name = "mutant-rnn-ignores-sequence-lens"

    def rnn(self, x, h0, W, U, b, nonlinearity="tanh", reverse=False, lengths=None):
        return ref.rnn(x, h0, W, U, b, nonlinearity, reverse)

    def rnn_vjp(self, dhs, x, h0, W, U, b, nonlinearity="tanh", reverse=False, dh_T=None, **_):
        return ref.rnn_vjp(dhs, x, h0, W, U, b, nonlinearity, reverse, dh_T)

    def rnn_bidirectional(self, x, h0, W, U, b, nonlinearity="tanh", lengths=None):
        return ref.rnn_bidirectional(x, h0, W, U, b, nonlinearity)
