"""Linear attention mutants."""

import numpy as np

from conformance.adapters.numpy_reference import NumpyReference
from reference import linear_attention as la


def _causal(q, k, v, feature_map, current: float):
    """The recurrence with the current step counted `current` times instead of once in the
    state the output reads: 0 reads S_{i-1} (an exclusive prefix sum), 2 adds it twice."""
    P, R = la.phi(q, feature_map), la.phi(k, feature_map)
    lead = np.broadcast_shapes(P.shape[:-2], R.shape[:-2], v.shape[:-2])
    S = np.zeros((*lead, R.shape[-1], v.shape[-1]), dtype=v.dtype)
    z = np.zeros((*lead, R.shape[-1]), dtype=R.dtype)
    outs = []
    with np.errstate(invalid="ignore", divide="ignore"):  # position 0 of "omits" is 0/0
        for i in range(P.shape[-2]):
            step_S = R[..., i, :, None] * v[..., i, None, :]
            step_z = R[..., i, :]
            read_S, read_z = S + (current * step_S), z + (current * step_z)
            p = P[..., i, :]
            num = (p[..., None, :] @ read_S)[..., 0, :]
            outs.append(num / (p * read_z).sum(axis=-1, keepdims=True))
            S, z = S + step_S, z + step_z
    return np.stack(outs, axis=-2).astype(v.dtype)


class CausalSumTwice(NumpyReference):
    """The causal recurrence reads S_{i-1} + 2 φ(K_i) V_i^T: the current step added twice
    (the state was updated, then the step was added again)."""

    name = "mutant-linear-attention-causal-sum-twice"

    def linear_attention_causal(self, q, k, v, feature_map="elu+1"):
        return _causal(q, k, v, feature_map, current=2.0)


class CausalSumOmitsCurrent(NumpyReference):
    """The causal recurrence reads S_{i-1}: an exclusive prefix sum, so position i cannot see
    itself (and position 0 sees nothing: 0/0)."""

    name = "mutant-linear-attention-causal-omits-current"

    def linear_attention_causal(self, q, k, v, feature_map="elu+1"):
        return _causal(q, k, v, feature_map, current=0.0)


class NoNormalizer(NumpyReference):
    """Every form returns φ(Q_i)^T Σ_j φ(K_j) V_j^T without dividing by φ(Q_i)^T Σ_j φ(K_j)."""

    name = "mutant-linear-attention-no-normalizer"

    def linear_attention(self, q, k, v, feature_map="elu+1"):
        P, R = la.phi(q, feature_map), la.phi(k, feature_map)
        return (P @ (np.swapaxes(R, -1, -2) @ v)).astype(v.dtype)

    def linear_attention_quadratic(self, q, k, v, causal=False, feature_map="elu+1"):
        A = la.phi(q, feature_map) @ np.swapaxes(la.phi(k, feature_map), -1, -2)
        if causal:
            A = A * np.tri(*A.shape[-2:], dtype=A.dtype)
        return (A @ v).astype(v.dtype)

    def linear_attention_causal(self, q, k, v, feature_map="elu+1"):
        return self.linear_attention_quadratic(q, k, v, causal=True, feature_map=feature_map)
