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
