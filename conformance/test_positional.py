"""Sinusoidal positional encodings: values, gradients, the rotation and norm identities, and the
loss of permutation equivariance they bring to self-attention."""

from __future__ import annotations

from functools import partial

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from conformance import tolerance
from conformance.check import CheckFailed
from conformance.ops import OPS
from conformance.strategies import mha_cases, normal, positional_cases
from conformance.variants import reference_options
from reference import positional as ref_positional


def _layout(impl) -> str:
    """The layout the adapter declares (positional.layout), which the rotation depends on."""
    return (getattr(impl.adapter, "variants", {}) or {}).get("positional.layout", "interleaved")


def _table(impl, case, offset):
    """The adapter's encoding alone: positional() of zeros, (T, D), and a zero-argument source
    of its honest models (for relation's lazy form)."""
    zeros = np.zeros((case.t, case.d))
    (pe,) = impl.run("positional", zeros, offset=offset)
    return pe, partial(impl.baseline, "positional", zeros, offset=offset)


@given(case=positional_cases())
def test_values(impl, case):
    # x + PE(offset .. offset + T - 1), or [x, PE] for combine="concat".
    impl.compare("positional", case.x(), offset=case.offset, combine=case.combine)


@given(case=positional_cases(combine=("add",)))
def test_table(impl, case):
    # The encoding itself (the input is zero), where no embedding hides its error.
    impl.compare("positional", np.zeros((case.t, case.d)), offset=case.offset)


@given(case=positional_cases())
def test_vjp(impl, case):
    x = case.x()
    width = 2 * case.d if case.combine == "concat" else case.d
    dout = normal(case.seed + 1, (*case.batch, case.t, width))
    impl.compare_vjp("positional", dout, x, offset=case.offset, combine=case.combine)


@given(case=positional_cases(combine=("add",)), shift=st.integers(1, 32))
def test_shift_is_rotation(impl, case, shift):
    # PE(pos + s) = R(s) PE(pos) with R(s) a rotation of each (sin, cos) pair by s w_k,
    # independent of pos (spec.positional.pe_shift_is_rotation): here R(s) is built by the
    # reference from the frequencies and the declared layout, and applied to the adapter's table.
    pe, b = _table(impl, case, case.offset)
    pe_s, b_s = _table(impl, case, case.offset + shift)
    R = ref_positional.shift_matrix(shift, case.d, _layout(impl))
    impl.relation("PE(pos + s) vs R(s) PE(pos)", pe_s, pe @ R.T, lambda: (b_s(), b() @ R.T))


@given(case=positional_cases(combine=("add",)))
def test_norm(impl, case):
    # ||PE(pos)||^2 = D/2 at every position (sin^2 + cos^2 = 1 per pair).
    pe, b = _table(impl, case, case.offset)
    half = np.full(case.t, case.d / 2)
    impl.relation(
        "||PE(pos)||^2 vs D/2", (pe**2).sum(axis=-1), half, lambda: ((b() ** 2).sum(axis=-1), half)
    )


@given(case=positional_cases(combine=("add",)), other=st.integers(0, 64))
def test_dot_depends_on_offset_only(impl, case, other):
    # PE(p) . PE(p + s) = Σ_k cos(s w_k): the same for every start p.
    pe, b = _table(impl, case, case.offset)
    pe2, b2 = _table(impl, case, other)

    def dots(table):  # PE(p) . PE(p + s) for s = 0 .. T-1, p the table's first position
        return table[..., :1, :] @ np.swapaxes(table, -1, -2)

    impl.relation(
        "PE(p).PE(p+s) at two starts p", dots(pe2), dots(pe), lambda: (dots(b2()), dots(b()))
    )


@given(
    case=mha_cases(masks=("none",), causal=False, self_attention=True, even_width=True, min_tq=2),
    data=st.data(),
)
def test_breaks_permutation_equivariance(impl, case, data):
    # Self-attention is permutation-equivariant (attention/mha_token_permutation); adding the
    # encodings makes position visible. Permuting the encodings with the tokens keeps
    # equivariance, MHA(P (X + PE)) = P MHA(X + PE) (a relation under the derived tolerance);
    # permuting the tokens alone, MHA(P X + PE) must differ from P MHA(X + PE) by more than
    # that tolerance allows an honest kernel for an equality.
    x, _, *params = impl.inputs(*case.x(), *case.params())
    perm = np.array(data.draw(st.permutations(range(case.tq)), label="token permutation"))
    if np.all(perm == np.arange(case.tq)):
        perm = np.roll(perm, 1)
    options = case.options()
    (xe,) = impl.run("positional", x)
    x_p = x[..., perm, :]
    (xpe,) = impl.run("positional", x_p)
    (out,) = impl.run("mha", xe, xe, *params, **options)
    (out_p,) = impl.run("mha", xpe, xpe, *params, **options)
    (out_pp,) = impl.run("mha", xe[..., perm, :], xe[..., perm, :], *params, **options)

    def mha_models(inputs):
        return np.stack([impl.baseline("mha", m, m, *params, **options)[0] for m in inputs])

    be = impl.baseline("positional", x)
    b, b_pp = mha_models(be), mha_models(be[..., perm, :])
    impl.relation(
        "MHA(P (X + PE)) vs P MHA(X + PE)", out_pp, out[..., perm, :], b_pp, b[..., perm, :]
    )
    residual = max(tolerance.rel_error(m, r[..., perm, :]) for m, r in zip(b_pp, b, strict=True))
    allowed = impl.allowed(residual)
    # Judged where the exact outputs differ by more than twice that: on tiny cases (2 tokens of
    # width 2) the encodings may move the output by less than bfloat16's floor, and no kernel
    # could show it (measured: an exact gap of 0.029 under an allowed 0.031, dev profile).
    mha = OPS["mha"].forward
    declared = getattr(impl.adapter, "variants", {}) or {}
    mha_options = {**options, **reference_options(OPS["mha"].variants, declared)}
    exact = [
        tolerance.truth(mha, (e, e, *params), mha_options)[0]
        for e in (tolerance.truth(OPS["positional"].forward, (a,), {})[0] for a in (x_p, x))
    ]
    if tolerance.rel_error(exact[0], exact[1][..., perm, :]) <= 2 * allowed:
        return
    gap = tolerance.rel_error(out_p, out[..., perm, :])
    if not gap > allowed:
        raise CheckFailed(
            f"MHA(P X + PE) is within {gap:.3g} (<= {allowed:.3g}) of P MHA(X + PE): the "
            "encodings did not make token order visible"
        )
