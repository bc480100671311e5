"""Proofs of the normalization identities in spec/norm.py, the link to reference/norm.py at
tiny sizes, and proof that the prover rejects the near misses the mutants make."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from reference import norm as ref
from spec import identity_holds, unproved_entries
from spec import norm as N


def assert_identity(lhs, rhs) -> None:
    bad = unproved_entries(lhs, rhs)
    assert not bad, f"not proved equal at flat entries: {bad[:3]}"


@pytest.mark.parametrize(
    "identity",
    [
        N.batch_norm_statistics,
        N.layer_norm_cnn_statistics,
        N.layer_norm_transformer_statistics,
        N.instance_norm_statistics,
        N.group_norm_statistics,
        N.group_norm_one_group_is_layer_norm,
        N.group_norm_channel_groups_is_instance_norm,
        N.affine_statistics,
        N.batch_norm_backward,
        N.layer_norm_backward,
        N.rms_norm_statistics,
        N.rms_norm_of_centred_is_layer_norm,
        N.rms_norm_backward,
        N.unbiased_running_variance,
        N.momentum_conventions,
        N.eval_with_batch_statistics,
        N.eval_is_affine,
    ],
    ids=lambda f: f.__name__,
)
def test_identity(identity) -> None:
    assert_identity(*identity())


def test_statistics_at_other_sizes() -> None:
    assert_identity(*N.batch_norm_statistics((3, 1, 1, 2)))
    assert_identity(*N.layer_norm_transformer_statistics((2, 1, 4)))
    assert_identity(*N.group_norm_statistics((1, 6, 1, 1), groups=3))
    assert_identity(*N.batch_norm_backward((3, 1)))


# -- the prover must reject the mutants' formulas ------------------------------------------


def _stats_identity(xhat, x, axes):
    e = N.eps()
    return N._stats(xhat, x, axes, e)


def test_prover_rejects_eps_outside_the_root() -> None:
    x, e = N.tensor("x", (3,)), N.eps()
    mu = N.mean(x, (0,))
    sigma = np.vectorize(sp.sqrt, otypes=[object])(N.variance(x, (0,)))
    wrong = (x - mu) / (sigma + e)
    assert not identity_holds(N._matrix(wrong), N._matrix(N.normalize(x, (0,), e)))


def test_prover_rejects_statistics_over_the_wrong_axes() -> None:
    # LayerNorm per channel (BatchNorm's axes) does not give per-sample statistics, and
    # BatchNorm per sample does not give per-channel ones.
    x, e = N.tensor("x", (2, 2, 1, 2)), N.eps()
    bn_axes, ln_axes = N.batch_norm_axes(4), N.layer_norm_cnn_axes(4)
    assert not identity_holds(*N._stats(N.normalize(x, bn_axes, e), x, ln_axes, e))
    assert not identity_holds(*N._stats(N.normalize(x, ln_axes, e), x, bn_axes, e))


def test_prover_rejects_the_notes_beta_as_scale() -> None:
    # β · x̂ (the notes' typo) has mean 0, not β.
    x = N.tensor("x", (3,))
    e = N.eps()
    gamma, beta = sp.symbols("gamma beta", real=True)
    y = beta * N.normalize(x, (0,), e)
    var = N.variance(x, (0,))[0]
    lhs = sp.Matrix([N.mean(y, (0,))[0], N.variance(y, (0,))[0]])
    assert not identity_holds(lhs, sp.Matrix([beta, gamma**2 * var / (var + e)]))


def test_prover_rejects_biased_as_unbiased_and_swapped_momentum() -> None:
    x = N.tensor("x", (4,))
    sample = sum((x - N.mean(x, (0,))) ** 2) / 3
    assert not identity_holds(N.variance(x, (0,))[0], sample)
    r, b, m = sp.symbols("r b m", real=True)
    assert not identity_holds((1 - m) * r + m * b, m * r + (1 - m) * b)


def test_prover_rejects_backward_without_the_variance_path() -> None:
    shape = (2, 1, 2)
    x, dy, e = N.tensor("x", shape), N.tensor("dy", shape), N.eps()
    axes = N.batch_norm_axes(3)
    y = N.normalize(x, axes, e)
    derived = N._derived(y, dy, x)
    inv = np.vectorize(lambda v: 1 / sp.sqrt(v + e), otypes=[object])(N.variance(x, axes))
    wrong = inv * (dy - N.mean(dy, axes))  # forgets the path through σ²
    assert not identity_holds(N._matrix(derived), N._matrix(wrong))


# -- spec <-> reference at tiny sizes -------------------------------------------------------


def _evaluate(expr_array: np.ndarray, symbols: dict, values: dict) -> np.ndarray:
    """Lambdify an object array of expressions over named symbol arrays and evaluate it."""
    names = list(symbols)
    flat_symbols = [s for n in names for s in np.asarray(symbols[n]).ravel()]
    f = sp.lambdify(flat_symbols, list(np.asarray(expr_array).ravel()), modules="numpy")
    flat_values = [v for n in names for v in np.asarray(values[n], dtype=np.float64).ravel()]
    return np.asarray(f(*flat_values), dtype=np.float64).reshape(np.shape(expr_array))


TOL = {"rtol": 1e-12, "atol": 1e-13}
EPS = 1e-3


@pytest.mark.parametrize("seed", range(2))
def test_normalizations_match_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    shape = (2, 4, 1, 2)
    x = N.tensor("x", shape)
    e = N.eps()
    xv = rng.standard_normal(shape) * 2 + 1
    values = {"x": xv, "e": EPS}
    symbols = {"x": x, "e": e}
    ones, zeros = np.ones(4), np.zeros(4)
    cases = {
        "batch": (N.normalize(x, N.batch_norm_axes(4), e), ref.batch_norm(xv, ones, zeros, EPS)),
        "layer_cnn": (
            N.normalize(x, N.layer_norm_cnn_axes(4), e),
            ref.layer_norm(xv, np.ones(shape[1:]), np.zeros(shape[1:]), EPS),
        ),
        "instance": (N.normalize(x, N.instance_norm_axes(4), e), ref.instance_norm(xv, eps=EPS)),
        "group": (N.group_norm(x, 2, e), ref.group_norm(xv, ones, zeros, groups=2, eps=EPS)),
        "rms": (N.rms_norm(x, (3,), e), ref.rms_norm(xv, np.ones(2), EPS)),
    }
    for name, (spec_expr, kernel) in cases.items():
        np.testing.assert_allclose(
            _evaluate(spec_expr, symbols, values), kernel, **TOL, err_msg=name
        )


def test_transformer_layer_norm_and_backward_match_reference() -> None:
    rng = np.random.default_rng(5)
    shape = (1, 2, 3)
    x, dy, e = N.tensor("x", shape), N.tensor("dy", shape), N.eps()
    gamma, beta = N.tensor("gamma", (3,)), N.tensor("beta", (3,))
    y = N.affine(N.normalize(x, N.TRANSFORMER_AXES, e), gamma, beta)
    v = {
        "x": rng.standard_normal(shape),
        "dy": rng.standard_normal(shape),
        "gamma": rng.standard_normal(3),
        "beta": rng.standard_normal(3),
        "e": EPS,
    }
    symbols = {"x": x, "dy": dy, "gamma": gamma, "beta": beta, "e": e}
    np.testing.assert_allclose(
        _evaluate(y, symbols, v), ref.layer_norm(v["x"], v["gamma"], v["beta"], EPS), **TOL
    )
    dx, dgamma, dbeta = ref.layer_norm_vjp(v["dy"], v["x"], v["gamma"], v["beta"], EPS)
    np.testing.assert_allclose(_evaluate(N._derived(y, dy, x), symbols, v), dx, **TOL)
    np.testing.assert_allclose(_evaluate(N._derived(y, dy, gamma), symbols, v), dgamma, **TOL)
    np.testing.assert_allclose(_evaluate(N._derived(y, dy, beta), symbols, v), dbeta, **TOL)


def test_batch_norm_backward_matches_reference() -> None:
    rng = np.random.default_rng(6)
    shape = (3, 1, 2)
    x, dy, e = N.tensor("x", shape), N.tensor("dy", shape), N.eps()
    g = sp.Symbol("g", real=True)
    y = g * N.normalize(x, N.batch_norm_axes(3), e)
    v = {"x": rng.standard_normal(shape), "dy": rng.standard_normal(shape), "g": 1.7, "e": EPS}
    symbols = {"x": x, "dy": dy, "g": g, "e": e}
    (dx, _, _) = ref.batch_norm_vjp(v["dy"], v["x"], np.array([1.7]), np.zeros(1), EPS)
    np.testing.assert_allclose(_evaluate(N._derived(y, dy, x), symbols, v), dx, **TOL)
