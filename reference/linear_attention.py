"""Linear attention (Katharopoulos et al. 2020) in its three forms, forward and vjp.

Lecture notes ("Linearization: softmax(QK^T/√d_k) is too big!"):
    sim(q, k) = exp(q^T k / √D)  ->  sim(q, k) = φ(q)^T φ(k)
    V'_i = Σ_j sim(Q_i, K_j) V_j / Σ_j sim(Q_i, K_j)
         = φ(Q_i)^T Σ_j φ(K_j) V_j^T / (φ(Q_i)^T Σ_j φ(K_j))
    the sums Σ_j φ(K_j) V_j^T (d_k x d_v) and Σ_j φ(K_j) (d_k) are computed once ("미리 계산")

Three forms of the same function:
  linear_attention_quadratic  the kernel form: the N x N matrix A = φ(Q) φ(K)^T, then
                              (A V) / (A 1); O(N^2 d). causal: A_ij = 0 for j > i.
  linear_attention            the associativity form: S = φ(K)^T V, z = φ(K)^T 1 once, then
                              φ(Q) S / (φ(Q) z); O(N d^2). Not causal.
  linear_attention_causal     the recurrence S_i = S_{i-1} + φ(K_i) V_i^T, z_i = z_{i-1} + φ(K_i),
                              V'_i = φ(Q_i)^T S_i / (φ(Q_i)^T z_i): an RNN over positions,
                              O(N d^2), the causal (decoder) form.

Shapes: q (..., Nq, d_k), k (..., Nk, d_k), v (..., Nk, d_v); out (..., Nq, d_v). Causal forms
need Nq = Nk. feature_map: "elu+1" (φ(x) = elu(x) + 1 > 0, the paper's) or "relu".
Variant (conformance/variants.py) eps: added to the normalizer, 0 (the formula) or 1e-6 (the
reference implementation of the paper, fast-transformers). With relu a normalizer can be 0; the
formula is then 0/0 and so is this kernel (NaN), unless eps > 0.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from reference.common import T, mm, store, sum_of_products, unbroadcast

FEATURE_MAPS = ("elu+1", "relu")


def phi(x: np.ndarray, kind: str = "elu+1") -> np.ndarray:
    """φ(x), elementwise."""
    if kind == "elu+1":  # elu(x) + 1 = x + 1 for x > 0, exp(x) otherwise
        # = exp(min(x, 0)) + max(x, 0): 1 + x or exp(x) + 0, the roundings of a select
        # without np.where's branch per element (4x slower on random signs)
        out = np.exp(np.minimum(x, 0))
        out += np.maximum(x, 0)
        return out
    if kind == "relu":
        return np.maximum(x, 0).astype(x.dtype, copy=False)
    raise ValueError(f"linear attention: feature_map {kind!r} is not one of {FEATURE_MAPS}")


def phi_grad(x: np.ndarray, kind: str = "elu+1") -> np.ndarray:
    """dφ/dx, elementwise."""
    if kind == "elu+1":
        return np.where(x > 0, 1, np.exp(np.minimum(x, 0))).astype(x.dtype)
    if kind == "relu":
        return (x > 0).astype(x.dtype)
    raise ValueError(f"linear attention: feature_map {kind!r} is not one of {FEATURE_MAPS}")


def _check(where: str, q, k, v, causal: bool, feature: str) -> None:
    shapes = f"q {q.shape}, k {k.shape}, v {v.shape}"
    if feature not in FEATURE_MAPS:
        raise ValueError(f"{where}: feature_map {feature!r} is not one of {FEATURE_MAPS}")
    if q.ndim < 2 or k.ndim < 2 or v.ndim < 2:
        raise ValueError(f"{where}: inputs need (..., N, d): {shapes}")
    if q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise ValueError(
            f"{where}: need q (..., Nq, d_k), k (..., Nk, d_k), v (..., Nk, d_v): {shapes}"
        )
    if causal and q.shape[-2] != k.shape[-2]:
        raise ValueError(f"{where}: causal needs as many queries as keys: {shapes}")
    try:
        np.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    except ValueError:
        raise ValueError(f"{where}: batch dims do not broadcast: {shapes}") from None


def _plus_eps(den: np.ndarray, eps: float) -> np.ndarray:
    """den + eps in den's dtype: a Python float would promote ml_dtypes' bfloat16 to float32."""
    return den + den.dtype.type(eps)


def _causal_mask(n: int, dtype) -> np.ndarray:
    return np.tri(n, n, dtype=bool).astype(dtype)  # 1 where key j <= query i


# -- the quadratic (kernel) form -------------------------------------------------------------


def linear_attention_quadratic(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    causal: bool = False,
    feature_map: str = "elu+1",
    eps: float = 0.0,
) -> np.ndarray:
    """V'_i = Σ_j A_ij V_j / Σ_j A_ij with A = φ(Q) φ(K)^T (masked j > i when causal)."""
    _check("linear_attention_quadratic", q, k, v, causal, feature_map)
    A = mm(phi(q, feature_map), T(phi(k, feature_map)))  # (.., Nq, Nk)
    if causal:
        A = A * _causal_mask(q.shape[-2], A.dtype)
    A = store(A)  # materialised: the N x N matrix this form costs
    return mm(A, v) / _plus_eps(A.sum(axis=-1, keepdims=True), eps)


def linear_attention_quadratic_vjp(
    dout, q, k, v, causal: bool = False, feature_map: str = "elu+1", eps: float = 0.0
):
    """(dq, dk, dv)."""
    _check("linear_attention_quadratic", q, k, v, causal, feature_map)
    P, R = phi(q, feature_map), phi(k, feature_map)
    A = mm(P, T(R))
    if causal:
        A = A * _causal_mask(q.shape[-2], A.dtype)
    A = store(A)
    # The normalizer and the output are what the forward saves for backward: stored.
    den = store(_plus_eps(A.sum(axis=-1, keepdims=True), eps))  # (..., Nq, 1)
    out = store(mm(A, v) / den)
    # out = num / den: dnum = dout / den, dden = -Σ_c dout_c out_c / den
    dnum = dout / den
    dden = -(dout * out).sum(axis=-1, keepdims=True) / den
    dA = mm(dnum, T(v)) + dden  # (..., Nq, Nk); den = A 1 adds dden to every column
    if causal:
        dA = dA * _causal_mask(q.shape[-2], dA.dtype)
    dv = mm(T(A), dnum)
    dq = mm(dA, R) * phi_grad(q, feature_map)
    dk = mm(T(dA), P) * phi_grad(k, feature_map)
    return unbroadcast(dq, q.shape), unbroadcast(dk, k.shape), unbroadcast(dv, v.shape)


# -- the linear (associativity) form -----------------------------------------------------------


def linear_attention(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    feature_map: str = "elu+1",
    eps: float = 0.0,
) -> np.ndarray:
    """V' = φ(Q) S / (φ(Q) z) with S = φ(K)^T V (d_k x d_v) and z = φ(K)^T 1 (d_k) computed once."""
    _check("linear_attention", q, k, v, False, feature_map)
    P, R = phi(q, feature_map), phi(k, feature_map)
    S = store(mm(T(R), v))  # (..., d_k, d_v)
    z = store(R.sum(axis=-2)[..., :, None])  # (..., d_k, 1)
    return mm(P, S) / _plus_eps(mm(P, z), eps)


def linear_attention_vjp(dout, q, k, v, feature_map: str = "elu+1", eps: float = 0.0):
    """(dq, dk, dv)."""
    _check("linear_attention", q, k, v, False, feature_map)
    P, R = phi(q, feature_map), phi(k, feature_map)
    S = store(mm(T(R), v))
    z = store(R.sum(axis=-2)[..., :, None])
    den = store(_plus_eps(mm(P, z), eps))  # (..., Nq, 1), saved by the forward
    out = store(mm(P, S) / den)
    dnum = dout / den
    dden = -(dout * out).sum(axis=-1, keepdims=True) / den
    dP = mm(dnum, T(S)) + mm(dden, T(z))  # (..., Nq, d_k)
    dS = mm(T(P), dnum)  # (..., d_k, d_v)
    dz = mm(T(P), dden)  # (..., d_k, 1)
    dR = mm(v, T(dS)) + T(dz)  # (..., Nk, d_k): z = R^T 1 gives every row dz^T
    dv = mm(R, dS)
    dq = dP * phi_grad(q, feature_map)
    dk = dR * phi_grad(k, feature_map)
    return unbroadcast(dq, q.shape), unbroadcast(dk, k.shape), unbroadcast(dv, v.shape)


# -- the causal recurrent form -------------------------------------------------------------------


def _running_states(R: np.ndarray, v: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(S_i, z_i) for i = 1 .. N: S_i = S_{i-1} + φ(K_i) V_i^T, z_i = z_{i-1} + φ(K_i), from
    S_0 = 0, z_0 = 0; the states are carried from step to step, so they are stored. One buffer
    each, updated in place: the next step overwrites the state yielded (a forward reads each
    state once; N states of (..., d_k, d_v) are 537 MB at B = 32, 4 heads, N = 128, d = 64)."""
    lead = np.broadcast_shapes(R.shape[:-2], v.shape[:-2])
    S = np.zeros((*lead, R.shape[-1], v.shape[-1]), dtype=np.result_type(R, v))  # (.., d_k, d_v)
    z = np.zeros((*lead, R.shape[-1]), dtype=R.dtype)  # (..., d_k)
    for i in range(R.shape[-2]):
        # the outer product φ(k_i) v_i^T (..., d_k, d_v) as an einsum: 20% faster than a
        # multiply of two broadcasts (a sum of one product each: the same values)
        kv = sum_of_products("...k,...v->...kv", R[..., i, :], v[..., i, :])
        S = store(np.add(S, kv, out=S))
        z = store(np.add(z, R[..., i, :], out=z))
        yield S, z


def _states(R: np.ndarray, v: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Every (S_i, z_i) of _running_states, kept (what the backward reads)."""
    states, norms = [], []
    for S, z in _running_states(R, v):
        states.append(S.copy())
        norms.append(z.copy())
    return states, norms


def linear_attention_causal(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    feature_map: str = "elu+1",
    eps: float = 0.0,
) -> np.ndarray:
    """V'_i = φ(Q_i)^T S_i / (φ(Q_i)^T z_i + eps), one position at a time."""
    _check("linear_attention_causal", q, k, v, True, feature_map)
    P, R = phi(q, feature_map), phi(k, feature_map)
    outs = []
    for i, (S, z) in enumerate(_running_states(R, v)):  # each state read as it is made
        p = P[..., i, :]  # (..., d_k)
        num = mm(p[..., None, :], S)[..., 0, :]  # (..., d_v)
        den = _plus_eps((p * z).sum(axis=-1, keepdims=True), eps)
        outs.append(num / den)
    if not outs:  # N = 0: no position, an empty output
        lead = np.broadcast_shapes(P.shape[:-2], R.shape[:-2], v.shape[:-2])
        return np.zeros((*lead, 0, v.shape[-1]), dtype=np.result_type(P, R, v))
    return np.stack(outs, axis=-2)


def linear_attention_causal_vjp(dout, q, k, v, feature_map: str = "elu+1", eps: float = 0.0):
    """(dq, dk, dv), backward through time: position i's state S_i feeds outputs i, i+1, ...,
    so dφ(K_i) and dV_i see G_S = Σ_{t>=i} φ(Q_t) dnum_t^T and G_z = Σ_{t>=i} φ(Q_t) dden_t."""
    _check("linear_attention_causal", q, k, v, True, feature_map)
    P, R = phi(q, feature_map), phi(k, feature_map)
    states, norms = _states(R, v)
    lead = np.broadcast_shapes(P.shape[:-2], R.shape[:-2], v.shape[:-2], dout.shape[:-2])
    dP = np.zeros((*lead, *P.shape[-2:]), dtype=P.dtype)
    dR = np.zeros((*lead, *R.shape[-2:]), dtype=R.dtype)
    dv = np.zeros((*lead, *v.shape[-2:]), dtype=v.dtype)
    G_S = np.zeros(states[0].shape if states else (0,), dtype=dout.dtype)
    G_z = np.zeros(norms[0].shape if norms else (0,), dtype=dout.dtype)
    for i in reversed(range(P.shape[-2])):
        S, z, p = states[i], norms[i], P[..., i, :]
        # (..., 1), saved by the forward
        den = store(_plus_eps((p * z).sum(axis=-1, keepdims=True), eps))
        out = store(mm(p[..., None, :], S)[..., 0, :] / den)
        dnum = dout[..., i, :] / den  # (..., d_v)
        dden = -(dout[..., i, :] * out).sum(axis=-1, keepdims=True) / den  # (..., 1)
        dP[..., i, :] = mm(S, dnum[..., :, None])[..., 0] + z * dden
        G_S = G_S + p[..., :, None] * dnum[..., None, :]  # (..., d_k, d_v)
        G_z = G_z + p * dden
        # S_i gained φ(k_i) v_i^T and z_i gained φ(k_i)
        dR[..., i, :] = mm(G_S, v[..., i, :, None])[..., 0] + G_z
        dv[..., i, :] = mm(T(G_S), R[..., i, :, None])[..., 0]
    dq = dP * phi_grad(q, feature_map)
    dk = dR * phi_grad(k, feature_map)
    return unbroadcast(dq, q.shape), unbroadcast(dk, k.shape), unbroadcast(dv, v.shape)
