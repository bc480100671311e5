"""Adapter loading (good and bad specs) and how faulty adapters become rows."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable

from conformance.adapters import AdapterLoadError, load
from conformance.adapters.base import refused_options
from conformance.adapters.numpy_reference import NumpyReference
from conformance.check import REFUSALS_BEFORE_NOT_COVERED, Check, CheckFailed
from conformance.plugin import _with_notes

F = "tests/faults/adapters.py"


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("tests/faults/missing.py:X", "does not exist"),
        (f"{F}:Nope", "has no attribute 'Nope'"),
        ("no_such_pkg.sub:X", "no module named 'no_such_pkg'"),
        ("tests/faults/import_fails.py:X", "importing tests/faults/import_fails.py failed"),
        (f"{F}:NotAnAdapter", "is not an nnspec adapter"),
        ("just-a-name", "not a built-in or installed adapter name"),
    ],
)
def test_bad_spec_is_one_line_error(spec, expected):
    with pytest.raises(AdapterLoadError) as err:
        load(spec)
    assert expected in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("spec", [f"{F}:OnlySoftmax", "tests.faults.adapters:OnlySoftmax"])
def test_good_specs_load(spec):
    assert load(spec).name == "partial"


def test_bad_adapter_on_command_line_is_one_line_no_traceback(suite):
    run = suite("--adapter", f"{F}:Nope")
    assert run.proc.returncode != 0
    assert "has no attribute 'Nope'" in run.output
    assert "Traceback" not in run.output


def test_faults_become_rows_and_the_run_goes_on(suite):
    names = ["Raises", "ReturnsNaN", "WrongShape", "WrongDtype", "ReturnsList", "Unavailable"]
    args = [a for n in names for a in ("--adapter", f"{F}:{n}")]
    run = suite(
        *args,
        "--adapter",
        f"{F}:OnlySoftmax",
        "-k",
        "test_values or test_vjp",
        "--stems",
        "softmax,attention",  # what the assertions read: the other stems only cost time
        "--hypothesis-profile=fast",  # the rows, not the shrunk examples
    )

    def one(adapter, check_id):
        rows = run.rows(adapter, check_id=check_id)
        assert len(rows) == 1, (adapter, check_id, run.output[-3000:])
        return rows[0]

    raised = one("fault-raises", "softmax/values/float64")
    assert raised["status"] == "error"
    assert "RuntimeError: kernel exploded" in raised["message"]
    assert "non-finite output" in one("fault-nan", "softmax/values/float64")["message"]
    assert "shape" in one("fault-shape", "softmax/values/float64")["message"]
    assert (
        "dtype float16, expected float64" in one("fault-dtype", "softmax/values/float64")["message"]
    )
    assert "returned list" in one("fault-list", "softmax/values/float32")["message"]
    for adapter in ("fault-nan", "fault-shape", "fault-dtype", "fault-list"):
        assert one(adapter, "softmax/values/float32")["status"] == "fail"
    skipped = one("fault-unavailable", "softmax/values/float64")
    assert skipped["status"] == "skip" and "mylib is not installed" in skipped["message"]
    # The same broken adapters still pass the ops they did not break.
    assert one("fault-raises", "attention/values/float64")["status"] == "pass"
    partial = one("partial", "attention/values/float64")
    assert partial["status"] == "not_covered" and "no 'sdpa'" in partial["message"]
    assert one("partial", "softmax/values/float64")["status"] == "pass"
    assert one("partial", "softmax/vjp/float64")["status"] == "not_covered"
    for row in run.records:
        assert row["repro"].startswith("python -m pytest ") and row["case"] in row["repro"]


def test_refused_inputs_are_dropped_and_the_others_judged(suite):
    args = ["--adapter", f"{F}:RefusesOddWidths", "--adapter", f"{F}:RefusesEveryInput"]
    run = suite(*args, "--stems", "softmax", "-k", "test_values", "--dtypes", "float64")
    (some,) = run.rows("refuses-odd", check_id="softmax/values/float64")
    assert some["status"] == "pass", some
    assert some["message"].startswith("judged on the inputs it accepts; "), some
    assert "refuses-odd refuses 'softmax': width " in some["message"]
    assert some["margin"] is not None  # judged: the accepted inputs were compared
    (none,) = run.rows("refuses-all", check_id="softmax/values/float64")
    assert none["status"] == "not_covered", none
    assert none["message"] == (
        "refuses-all refuses 'softmax': no kernel for this dtype (and every other input: "
        f"{REFUSALS_BEFORE_NOT_COVERED} examples)"
    )
    assert run.proc.returncode == 0, run.output[-3000:]


def test_a_hanging_op_becomes_a_timeout_error_row(suite):
    run = suite("--adapter", f"{F}:Hangs", "-k", "test_values", "--call-timeout=2", timeout=300)
    rows = run.rows("fault-hangs", check_id="softmax/values/float64")
    assert len(rows) == 1 and rows[0]["status"] == "error", run.output[-2000:]
    assert rows[0]["message"].startswith("timeout")
    assert run.rows("fault-hangs", check_id="attention/values/float64")[0]["status"] == "pass"


def test_options_an_op_does_not_declare_are_refused_not_passed():
    # An option newer than an adapter makes the check "not covered", not a TypeError.
    class Old:
        def mha(self, x_q, x_kv, *params, n_heads=1, mask=None):
            return x_q

        def anything(self, x, **options):
            return x

    assert refused_options(Old(), "mha", {"n_heads": 2, "attn_bias": 0, "mask": None}) == [
        "attn_bias"
    ]
    assert refused_options(Old(), "anything", {"attn_bias": 0}) == []


def test_every_example_refused_before_hypothesis_gave_up_is_not_covered():
    # Hypothesis ends a check whose every example was rejected with Unsatisfiable (a search
    # space smaller than REFUSALS_BEFORE_NOT_COVERED): the row says not covered, with the reason.
    check = Check(NumpyReference(), "float64")
    check.refusals["reference refuses 'softmax': odd"] += 3
    report = SimpleNamespace(outcome="failed", longrepr="...", location=("t.py", 1, "t"))
    call = SimpleNamespace(excinfo=SimpleNamespace(value=Unsatisfiable("no valid example")))
    status, message = _with_notes(check, "error", "raised Unsatisfiable", report, call)
    assert (status, message) == ("not_covered", "reference refuses 'softmax': odd")
    assert report.outcome == "skipped"
    judged = _with_notes(check, "pass", None, report, SimpleNamespace(excinfo=None))
    assert judged == (
        "pass",
        "judged on the inputs it accepts; 3 refused (reference refuses 'softmax': odd)",
    )


def test_an_exact_output_beyond_the_dtypes_range_drops_the_input():
    # A 1x1 convolution of 300 by 300 is 90000: the inputs are float16 numbers, the exact output
    # is beyond float16's 65504, so there is no float16 answer to judge and the example is
    # rejected and counted; within range the same wrong adapter is judged and fails.
    class Wrong(NumpyReference):
        name = "wrong"

        def conv2d(self, x, weight, bias, **options):
            with np.errstate(over="ignore"):  # float16 arithmetic overflows, as it should
                return NumpyReference().conv2d(x, weight, bias, **options) + np.float16(1)

    def args(value):
        return np.full((1, 1, 2, 2), value), np.full((1, 1, 1, 1), 300.0), np.zeros(1)

    check = Check(Wrong(), "float16")

    @settings(max_examples=3, database=None)
    @given(st.just(300.0))
    def beyond(value):
        check.compare("conv2d", *args(value))

    with pytest.raises(Unsatisfiable):
        beyond()
    assert list(check.refusals) == ["float16 cannot hold the exact output of 'conv2d'"]
    with pytest.raises(CheckFailed, match="conv2d"):
        check.compare("conv2d", *args(0.5))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_the_adapter_gets_c_contiguous_inputs_whatever_the_tests_layout(dtype):
    # A library may pick another kernel for a strided tensor (torch's bfloat16 encoder layer:
    # 0.023 apart); the suite hands every float input over C-contiguous.
    seen = []

    class Records(NumpyReference):
        name = "records"

        def softmax(self, x, axis=-1):
            seen.append(x.flags["C_CONTIGUOUS"])
            return NumpyReference().softmax(x, axis=axis)

    x = np.arange(24.0).reshape(2, 3, 4)[:, [2, 0, 1], :].transpose(0, 2, 1) / 10
    assert not x.flags["C_CONTIGUOUS"]
    Check(Records(), dtype).compare("softmax", x)
    assert seen == [True]
