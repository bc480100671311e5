"""The object a conformance test talks to: runs an adapter op, validates what came back,
compares it with the reference under the derived tolerance, and keeps the worst case for the
results record."""

from __future__ import annotations

import inspect
import signal
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NoReturn

import numpy as np
import pytest
from hypothesis import reject

from conformance import tolerance
from conformance.adapters.base import (
    Adapter,
    Unsupported,
    call_vjp,
    covers,
    covers_vjp,
    refused_options,
)
from conformance.ops import OPS
from conformance.variants import alternatives, reference_options


class CheckFailed(AssertionError):
    """The implementation computed something wrong (a `fail` row, not an `error`)."""


class NotCovered(pytest.skip.Exception):
    """The adapter does not implement the op: reported as not covered, never a failure. A skip
    is a BaseException, so Hypothesis stops at once instead of shrinking it."""

    def __init__(self, msg: str) -> None:
        super().__init__(msg=msg)


class CallTimeout(pytest.skip.Exception):
    """An adapter call ran past the per-call limit. Raised as a skip only so that Hypothesis
    (which re-runs and shrinks ordinary failures) stops at once instead of replaying the hang;
    the plugin reports it as an `error` row and a failed test."""

    def __init__(self, msg: str) -> None:
        super().__init__(msg=msg)


DEFAULT_CALL_TIMEOUT_S = 60.0
# Refused examples in a row, none accepted, before a check is "not covered" (see Check._refused):
# a backend that takes half the inputs refuses the first 10 with probability 1/1024.
REFUSALS_BEFORE_NOT_COVERED = 10


@contextmanager
def time_limit(seconds: float, what: str) -> Iterator[None]:
    """SIGALRM-based limit on one adapter call (main thread on POSIX; elsewhere no limit, and
    pytest-timeout's whole-check limit is the backstop)."""
    usable = (
        seconds
        and seconds > 0
        and hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
    )
    if not usable:
        yield
        return

    def on_alarm(signum, frame):
        raise CallTimeout(f"timeout: {what} did not return within {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class Worst:
    error: float | None = None
    allowed: float | None = None
    margin: float | None = None
    max_abs_error: float | None = None
    diagnosis: str | None = None

    def update(self, error: float, allowed: float, max_abs: float, diagnosis: str | None) -> None:
        margin = error / allowed if allowed > 0 else float("inf")
        if self.margin is None or margin > self.margin:
            self.error, self.allowed, self.margin = error, allowed, margin
            self.max_abs_error, self.diagnosis = max_abs, diagnosis


class Check:
    def __init__(
        self, adapter: Adapter, dtype: str, call_timeout: float = DEFAULT_CALL_TIMEOUT_S
    ) -> None:
        self.adapter = adapter
        self.dtype = dtype
        self.call_timeout = call_timeout
        self.ops: list[str] = []  # what the check called, for the record
        # The precision the library reads float32 matmul operands in ("tfloat32" where it
        # enables TF32): the honest-kernel models then round theirs the same way.
        self.operands = (getattr(adapter, "matmul_precision", None) or {}).get(dtype)
        self.read: str | None = None  # "tfloat32" once a model of this check read TF32
        self.worst = Worst()  # the case closest to (or furthest past) its allowed error
        # The models() gives where its caller names none (relation's callables build theirs
        # through baseline()): None for every usual model; draws=() for the baseline alone
        # (relation's first evaluation); ESCALATION for a case that fails the usual ones.
        self.which: dict[str, Any] | None = None
        self.escalated = 0  # examples judged under tolerance.ESCALATED draws (for the record)
        self.accepted = 0  # adapter calls that returned (an input it did not refuse)
        self.refusals: Counter[str] = Counter()  # refused examples by reason (see _refused)

    def __repr__(self) -> str:  # shown in Hypothesis' falsifying examples: keep it short
        return f"<{self.adapter.name} {self.dtype}>"

    # -- running the adapter -------------------------------------------------------------

    def _options(self, op: str) -> dict[str, Any]:
        return reference_options(OPS[op].variants, getattr(self.adapter, "variants", {}) or {})

    def _note(self, op: str) -> None:
        if op not in self.ops:
            self.ops.append(op)

    def _accepts(self, op: str, options: dict[str, Any]) -> None:
        refused = refused_options(self.adapter, op, options)
        if refused:
            raise NotCovered(f"{self.adapter.name}.{op} takes no option {', '.join(refused)}")

    def _accepts_vjp(self, op: str, options: dict[str, Any]) -> None:
        """_accepts for a gradient: an adapter's own <op>_vjp is read for its options; else the
        forward op is, less the cotangents of further outputs (the keywords of the reference vjp
        that its forward lacks, e.g. rnn's dh_T), which the generic vjp(op, ...) path hands to a
        function that takes them (the reference's OPS[op].vjp; autograd adapters' forward)."""
        if callable(getattr(self.adapter, f"{op}_vjp", None)):
            self._accepts(f"{op}_vjp", options)
            return
        forward = inspect.signature(OPS[op].forward).parameters
        cotangents = set(inspect.signature(OPS[op].vjp).parameters) - set(forward)
        self._accepts(op, {k: v for k, v in options.items() if k not in cotangents})

    def run(self, op: str, *args: Any, **kwargs: Any) -> tuple[np.ndarray, ...]:
        """The adapter's outputs for op, validated against the reference's structure, as float64."""
        return self._call(op, args, kwargs)[0]

    def run_vjp(self, op: str, cotangent: np.ndarray, *args: Any, **kwargs: Any):
        return self._call_vjp(op, (cotangent, *args), kwargs)[0]

    def _call(self, op: str, args: tuple, kwargs: dict[str, Any]) -> tuple[tuple, tuple]:
        """(the adapter's validated outputs, the truth they are validated against)."""
        self._note(op)
        if not covers(self.adapter, op):
            raise NotCovered(f"{self.adapter.name} has no {op!r}")
        self._accepts(op, kwargs)
        a, k = tolerance.rounded_inputs(args, kwargs, self.dtype)
        try:
            with time_limit(self.call_timeout, f"{self.adapter.name}.{op}"):
                out = getattr(self.adapter, op)(*a, **k)
        except Unsupported as exc:
            self._refused(f"{op!r}", exc)
        self.accepted += 1
        expected = tolerance.truth(OPS[op].forward, args, {**kwargs, **self._options(op)})
        self._representable(f"{op!r}", expected)
        return self._validate(op, out, expected, gradients=False), expected

    def _call_vjp(self, op: str, full: tuple, kwargs: dict[str, Any]) -> tuple[tuple, tuple]:
        self._note(f"{op}_vjp")
        if not covers_vjp(self.adapter, op) or OPS[op].vjp is None:
            raise NotCovered(f"{self.adapter.name} has no gradient for {op!r}")
        self._accepts_vjp(op, kwargs)
        a, k = tolerance.rounded_inputs(full, kwargs, self.dtype)
        try:
            with time_limit(self.call_timeout, f"the gradient of {self.adapter.name}.{op}"):
                out = call_vjp(self.adapter, op, *a, **k)
        except Unsupported as exc:
            self._refused(f"the gradient of {op!r}", exc)
        self.accepted += 1
        expected = tolerance.truth(OPS[op].vjp, full, {**kwargs, **self._options(op)})
        self._representable(f"the gradient of {op!r}", expected)
        return self._validate(f"{op}_vjp", out, expected, gradients=True), expected

    def _representable(self, what: str, expected: tuple) -> None:
        """Drop an input whose exact output is finite but beyond the dtype's range: its
        correctly rounded value is ±inf, and a recurrence carried past that point gives
        inf - inf = NaN in any kernel of that dtype (a relu RNN over 34 steps in float16:
        thorough profile, seed 9), so there is no answer in the dtype to judge. Counted with
        the refusals (the record's note says how many)."""
        if any(tolerance.overflows(e, self.dtype) for e in expected):
            self.refusals[f"{self.dtype} cannot hold the exact output of {what}"] += 1
            reject()

    def _refused(self, what: str, exc: Unsupported) -> NoReturn:
        """The adapter refused this input (Unsupported): the example is dropped and the check
        judges the inputs the adapter accepts (a fused attention kernel takes some head sizes
        and masks, not others). An adapter that has accepted none of the first
        REFUSALS_BEFORE_NOT_COVERED makes the check "not covered" with its reason, so that a
        refusal of every input (a dtype) does not spin through Hypothesis' example budget."""
        reason = f"{self.adapter.name} refuses {what}: {exc}"
        self.refusals[reason] += 1
        refused = sum(self.refusals.values())
        if self.accepted == 0 and refused >= REFUSALS_BEFORE_NOT_COVERED:
            raise NotCovered(f"{reason} (and every other input: {refused} examples)")
        reject()

    def refusal_note(self) -> str | None:
        """For the record: how many examples the adapter refused, and the commonest reason."""
        if not self.refusals:
            return None
        reason, _ = self.refusals.most_common(1)[0]
        n = sum(self.refusals.values())
        return f"judged on the inputs it accepts; {n} refused ({reason})"

    def escalation_note(self) -> str | None:
        """For the record: how many examples were judged under the escalated draws (their
        error past the usual draws' bound), so a report shows a check that passes only there."""
        if not self.escalated:
            return None
        n = self.escalated
        return (
            f"{n} example{'s' * (n > 1)} past the bound of {tolerance.PERTURBED} Monte Carlo "
            f"draws judged under {tolerance.ESCALATED}"
        )

    def _validate(self, what: str, out: Any, expected: tuple, gradients: bool):
        """Protocol: a gradient is a tuple with one array per float input; a forward op returns
        an array, or a tuple where it has several outputs."""
        several = gradients or len(expected) > 1
        if several and not isinstance(out, tuple):
            raise CheckFailed(f"{what}: returned {type(out).__name__}, expected a tuple of arrays")
        outs = out if several else (out,)
        if len(outs) != len(expected):
            raise CheckFailed(f"{what}: returned {len(outs)} outputs, expected {len(expected)}")
        want_dtype = tolerance.DTYPES[self.dtype]
        result = []
        for i, (y, e) in enumerate(zip(outs, expected, strict=True)):
            label = f"{what} output {i}" if len(expected) > 1 else what
            if not isinstance(y, np.ndarray):
                raise CheckFailed(f"{label}: returned {type(y).__name__}, expected numpy.ndarray")
            if y.shape != e.shape:
                raise CheckFailed(f"{label}: shape {y.shape}, expected {e.shape}")
            if y.dtype != want_dtype:
                raise CheckFailed(f"{label}: dtype {y.dtype}, expected {want_dtype}")
            y64 = y.astype(np.float64)
            result.append(y64)
        return tuple(result)

    # -- comparing -------------------------------------------------------------------------

    def compare(self, op: str, *args: Any, **kwargs: Any) -> tuple[np.ndarray, ...]:
        """Adapter op vs the reference, every output, under the derived tolerance."""
        actual, truth = self._call(op, args, kwargs)
        self._compare_outputs(op, OPS[op].forward, actual, truth, args, kwargs)
        return actual

    def compare_vjp(self, op: str, cotangent: np.ndarray, *args: Any, **kwargs: Any):
        full = (cotangent, *args)
        actual, truth = self._call_vjp(op, full, kwargs)
        self._compare_outputs(f"{op}_vjp", OPS[op].vjp, actual, truth, full, kwargs, op)
        return actual

    def _compare_outputs(self, label, fn, actual, truth, args, kwargs, op=None) -> None:
        op = op or label
        full = {**kwargs, **self._options(op)}
        models = self.models(fn, args, full, draws=())
        cases = self._cases(models, actual, truth)
        if not self._settled(cases):
            models += self.models(fn, args, full, unperturbed=False)
            cases = self._cases(models, actual, truth)
            if not _passes(cases):
                self.escalated += 1
                models += self.models(fn, args, full, **ESCALATION)
                cases = self._cases(models, actual, truth)
        for i, (y, t, (_, allowed)) in enumerate(zip(actual, truth, cases, strict=True)):
            name = label if len(actual) == 1 else f"{label} output {i}"
            self._record(
                name,
                y,
                t,
                allowed,
                lambda allowed, i=i, y=y: self._diagnose(op, fn, args, kwargs, i, y, allowed),
            )

    def _cases(self, models: tolerance.Models, actual: tuple, truth: tuple) -> list:
        """(error, allowed under these models) per output."""
        return [
            (tolerance.error(y, t), self._allowed_by(models, i, t))
            for i, (y, t) in enumerate(zip(actual, truth, strict=True))
        ]

    def _allowed_by(self, models: tolerance.Models, i: int, truth: np.ndarray) -> float:
        error = tolerance.worst_error(tolerance.rel_error(m[i], truth) for m in models)
        return tolerance.allowed(error, self.dtype, models.operands)

    def _settled(self, cases: list[tuple[float, float]]) -> bool:
        """Whether the baseline model alone settles every (error, allowed under the baseline)
        case: each passes and lies no closer to its allowed error than the check's worst case
        so far. The Monte Carlo models can only raise the allowed error, so they could change
        neither the verdict nor the recorded worst case (margins and all), and are skipped:
        most of a check's examples are far from its worst, and the models were most of its
        time."""
        worst = self.worst.margin
        return worst is not None and all(e <= a and e / a <= worst for e, a in cases)

    def relation(self, label: str, lhs, rhs, lhs_models, rhs_models=None) -> None:
        """A metamorphic property lhs == rhs, judged by the same derived tolerance: the honest
        models' own residuals ||lhs_m - rhs_m|| / ||rhs_m|| set the allowed error. *_models
        are stacked model outputs from baseline() (rhs_models may lack the model axis when the
        right-hand side is exact, e.g. ones); or lhs_models is a callable returning both, which
        is first evaluated under the baseline model alone, again under every model only
        where the baseline does not settle the case (see _settled), and under
        tolerance.ESCALATED draws only where those fail it: for expensive models."""
        self._note(label)
        if not callable(lhs_models):
            self._record(label, lhs, rhs, self.allowed(_residual(lhs_models, rhs_models)))
            return
        with self._drawing(draws=()):
            allowed = self.allowed(_residual(*lhs_models()))
        error = tolerance.error(lhs, rhs)
        if not self._settled([(error, allowed)]):
            allowed = self.allowed(_residual(*lhs_models()))
        if not _passes([(error, allowed)]):
            self.escalated += 1
            with self._drawing(**ESCALATION):  # allowed() grows with the model error: max
                allowed = max(allowed, self.allowed(_residual(*lhs_models())))
        self._record(label, lhs, rhs, allowed)

    @contextmanager
    def _drawing(self, **which: Any) -> Iterator[None]:
        """models() gives these models where its caller names none."""
        self.which = which
        try:
            yield
        finally:
            self.which = None

    def allowed(self, model_error: float) -> float:
        """The allowed error for a model error of this check (its floor in TF32 units once a
        model of this check read TF32 operands)."""
        return tolerance.allowed(model_error, self.dtype, self.read)

    def models(self, fn: Any, args: Any, kwargs: dict[str, Any], **which: Any) -> tolerance.Models:
        """tolerance.models for this check's dtype and the adapter's matmul precision."""
        if self.which is not None:
            which = {**self.which, **which}
        models = tolerance.models(fn, args, kwargs, self.dtype, self.operands, **which)
        self.read = self.read or models.operands
        return models

    def baseline(self, op: str, *args: Any, **kwargs: Any) -> np.ndarray:
        """Outputs of op under every honest-kernel model, stacked on a leading axis, as float64
        (single-output ops; for relation())."""
        full = {**kwargs, **self._options(op)}
        outs = [m[0] for m in self.models(OPS[op].forward, args, full)]
        return np.stack([np.asarray(y).astype(np.float64) for y in outs])

    def inputs(self, *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
        """Arrays as the adapter sees them (rounded to the dtype), back in float64."""
        return tuple(tolerance.cast(tolerance.cast(a, self.dtype), np.float64) for a in arrays)

    def _record(self, name, actual, expected, allowed, diagnose=None) -> None:
        """Judge one output, note it in the check's worst case, raise CheckFailed if it fails
        (with diagnose(allowed)'s words: a variant it matches, or "imprecise")."""
        err = tolerance.error(actual, expected)
        diagnosis = diagnose(allowed) if diagnose is not None and err > allowed else None
        max_abs = tolerance.max_abs_error(actual, expected)
        self.worst.update(err, allowed, max_abs, diagnosis)
        if err <= allowed:
            return
        bad = tolerance.nonfinite_mismatch(actual, expected)
        if bad:
            msg = (
                f"{name} [{self.dtype}]: non-finite output at {bad} of {np.size(actual)} "
                "positions where the reference is finite (or finite where it declares NaN)"
            )
        else:
            msg = (
                f"{name} [{self.dtype}]: error {err:.3g} > allowed {allowed:.3g} "
                f"(margin {err / allowed:.3g}, max abs error {max_abs:.3g})"
            )
        raise CheckFailed(f"{msg}; {diagnosis}" if diagnosis else msg)

    def _diagnose(self, op, fn, args, kwargs, index, actual, allowed) -> str | None:
        declared = getattr(self.adapter, "variants", {}) or {}
        for key, value, options in alternatives(OPS[op].variants, declared):
            alt = tolerance.truth(fn, args, {**kwargs, **options})[index]
            if tolerance.error(actual, alt) <= allowed:
                return f"matches variant {key}={value}"
        if self.dtype in tolerance.LOW:
            full = {**kwargs, **self._options(op)}
            truth = tolerance.truth(fn, args, full)[index]
            naive = tolerance.naive(fn, args, full, self.dtype)[index]
            if tolerance.error(actual, truth) <= tolerance.K * tolerance.rel_error(naive, truth):
                return f"imprecise: within the error of a kernel that accumulates in {self.dtype}"
        return None


# The models a failing case adds to the usual ones: the later perturbed draws alone.
ESCALATION: dict[str, Any] = {
    "unperturbed": False,
    "draws": range(tolerance.PERTURBED, tolerance.ESCALATED),
    "with_forms": False,
}


def _passes(cases: list[tuple[float, float]]) -> bool:
    """Every (error, allowed) case within its allowed error; else the check escalates to
    tolerance.ESCALATED draws before judging."""
    return all(e <= a for e, a in cases)


def _residual(lhs_models: Any, rhs_models: Any) -> float:
    """The largest residual ||lhs_m - rhs_m|| / ||rhs_m|| over the stacked models."""
    lhs_models = np.asarray(lhs_models)
    rhs_models = np.broadcast_to(rhs_models, lhs_models.shape)
    pairs = zip(lhs_models, rhs_models, strict=True)
    return tolerance.worst_error(tolerance.rel_error(lhs_m, rhs_m) for lhs_m, rhs_m in pairs)
