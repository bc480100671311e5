"""An adapter that returns the hidden sequence in the wrong layout is a fail naming the expected
and the actual shape (the issue's "bad input" clause, adapter side); the reference itself
refuses inconsistent weights with one ValueError naming them."""

from __future__ import annotations

import numpy as np
import pytest

from conformance.check import Check, CheckFailed
from conformance.strategies import RecurrentCase
from tests.mutants.rnn import SeqFirst


def test_seq_first_hidden_sequence_is_a_fail_naming_both_shapes():
    case = RecurrentCase(batch=2, steps=5, inputs=3, hidden=4, initial=True, scale=1.0, seed=0)
    W, U, b = case.rnn_weights()
    check = Check(SeqFirst(), "float64")
    with pytest.raises(CheckFailed) as info:
        check.compare("rnn", case.x(), case.state(), W, U, b)
    message = str(info.value)
    assert "shape (5, 2, 4)" in message and "expected (2, 5, 4)" in message


def test_reference_names_the_shapes_of_inconsistent_weights():
    from reference import lstm

    x = np.zeros((2, 5, 3))
    with pytest.raises(ValueError) as info:
        lstm.lstm(x, None, None, np.zeros((16, 6)), np.zeros(16))  # H = 4 needs W (16, 7)
    assert "W (16, 6)" in str(info.value) and "x (2, 5, 3)" in str(info.value)


# -- torch's seq-first module (batch_first=False) mapped in the adapter -------------------------


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("packed", [False, True])
def test_torch_seq_first_module_is_the_batch_first_op(kind, bidirectional, packed):
    # The adapter runs the stacked-layer ops on torch's default seq-first module and maps the
    # layout itself: the seq-first module on the transposed input gives the batch-first
    # module's outputs (and gradients), so the mapping loses nothing.
    torch = pytest.importorskip("torch")
    from conformance.adapters import torch_recurrent as tr

    B, T, D, H = 3, 6, 2, 4
    rng = np.random.default_rng(0)
    gates = {"rnn": 1, "lstm": 4, "gru": 3}[kind]
    dirs = 2 if bidirectional else 1

    def t(*shape):
        return torch.tensor(rng.standard_normal(shape), requires_grad=True)

    params = {
        (k, d): (
            t(gates * H, D if k == 0 else dirs * H),
            t(gates * H, H),
            t(gates * H),
            t(gates * H),
        )
        for k in range(2)
        for d in range(dirs)
    }
    x = t(B, T, D)
    h = tuple(t(2 * dirs, B, H) for _ in range(2 if kind == "lstm" else 1))
    lengths = torch.tensor([6, 2, 4]) if packed else None
    results = []
    for batch_first in (True, False):
        out, states = tr._torch_layer(kind, x, h, params, 2, bidirectional, lengths, batch_first)
        grads = torch.autograd.grad(
            out.sum() + sum(s.sum() for s in states), [x, *h, *params[(1, 0)]]
        )
        results.append((out, *states, *grads))
    assert results[0][0].shape == (B, T, dirs * H)
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
