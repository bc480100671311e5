"""Linear attention as sympy expressions: the kernel form, the associativity identity that
makes it linear in N, the causal recurrence, and the cost of each form.

Lecture notes ("Linearization: softmax(QK^T/√d_k) is too big!"):
    sim(q, k) = exp(q^T k / √D)  ->  sim(q, k) = φ(q)^T φ(k)
    V'_i = Σ_j sim(Q_i, K_j) V_j / Σ_j sim(Q_i, K_j)
         = φ(Q_i)^T Σ_j φ(K_j) V_j^T / (φ(Q_i)^T Σ_j φ(K_j))
    Σ_j φ(K_j) V_j^T (d_k x d_v) and Σ_j φ(K_j) (d_k) are computed once ("미리 계산")

The identities hold for any feature map: φ(Q) and φ(K) are matrices of positive symbols
(elu(x) + 1 > 0; with relu a row of zeros makes the formula 0/0). Rows are positions.
"""

from __future__ import annotations

import sympy as sp

from spec import Identity
from spec.attention import attention, causal_mask, matrix


def positive(name: str, rows: int, cols: int) -> sp.Matrix:
    """rows x cols Matrix of positive symbols: feature-mapped queries or keys."""
    return sp.Matrix(rows, cols, lambda i, j: sp.Symbol(f"{name}_{i}_{j}", positive=True))


def kernel_form(P: sp.MatrixBase, R: sp.MatrixBase, V: sp.MatrixBase, causal: bool = False):
    """V'_i = Σ_j sim_ij V_j / Σ_j sim_ij with sim = P R^T (P = φ(Q), R = φ(K)); the N x N
    matrix first: O(N^2 d). causal: sim_ij = 0 for j > i."""
    A = P * R.T
    if causal:
        A = A.multiply_elementwise(sp.Matrix(A.rows, A.cols, lambda i, j: 1 if j <= i else 0))
    numerator = A * V
    return sp.Matrix(A.rows, V.cols, lambda i, c: numerator[i, c] / sum(A.row(i)))


def linear_form(P: sp.MatrixBase, R: sp.MatrixBase, V: sp.MatrixBase) -> sp.Matrix:
    """V'_i = P_i S / (P_i z) with S = R^T V (d_k x d_v) and z = R^T 1 (d_k) computed once."""
    S = R.T * V
    z = R.T * sp.ones(R.rows, 1)
    num, den = P * S, P * z
    return sp.Matrix(num.rows, num.cols, lambda i, c: num[i, c] / den[i])


def recurrent_form(P: sp.MatrixBase, R: sp.MatrixBase, V: sp.MatrixBase) -> sp.Matrix:
    """S_i = S_{i-1} + R_i^T V_i, z_i = z_{i-1} + R_i^T, V'_i = P_i S_i / (P_i z_i)."""
    S = sp.zeros(R.cols, V.cols)
    z = sp.zeros(R.cols, 1)
    rows = []
    for i in range(P.rows):
        S = S + R.row(i).T * V.row(i)
        z = z + R.row(i).T
        rows.append((P.row(i) * S) / (P.row(i) * z)[0])
    return sp.Matrix.vstack(*rows)


def inputs(n: int = 3, n_keys: int | None = None, dk: int = 2, dv: int = 2):
    n_keys = n if n_keys is None else n_keys
    return positive("P", n, dk), positive("R", n_keys, dk), matrix("V", n_keys, dv)


# -- costs, from the shapes of the matmuls ---------------------------------------------------------

N, d_k, d_v = sp.symbols("N d_k d_v", positive=True, integer=True)


def matmul_cost(m: sp.Expr, n: sp.Expr, p: sp.Expr) -> sp.Expr:
    """Multiply-adds of an (m x n) @ (n x p) product: m p dot products of length n."""
    return m * n * p


# The products each form computes (one row of a matrix-vector product is an (m x n) @ (n x 1)).
QUADRATIC_MATMULS = (
    (N, d_k, N),  # A = φ(Q) φ(K)^T          (N x N)
    (N, N, d_v),  # A V
    (N, N, 1),  # A 1, the normalizer
)
LINEAR_MATMULS = (
    (d_k, N, d_v),  # S = φ(K)^T V            (d_k x d_v)
    (d_k, N, 1),  # z = φ(K)^T 1
    (N, d_k, d_v),  # φ(Q) S
    (N, d_k, 1),  # φ(Q) z
)


def form_cost(matmuls) -> sp.Expr:
    return sp.expand(sum(matmul_cost(*shape) for shape in matmuls))


# -- identities --------------------------------------------------------------------------------


def kernel_form_definition(n: int = 3, dk: int = 2, dv: int = 2) -> Identity:
    """Notes: Ṽ_i = Σ_j sim(Q_i, K_j) V_j / Σ_j sim(Q_i, K_j) with sim(q, k) = φ(q)^T φ(k): the
    matrix form equals the notes' sum written per entry."""
    P, R, V = inputs(n, dk=dk, dv=dv)

    def sim(i: int, j: int) -> sp.Expr:
        return sum(P[i, a] * R[j, a] for a in range(dk))

    rhs = sp.Matrix(
        n,
        dv,
        lambda i, c: sum(sim(i, j) * V[j, c] for j in range(n)) / sum(sim(i, j) for j in range(n)),
    )
    return kernel_form(P, R, V), rhs


def associativity(n: int = 3, n_keys: int = 4, dk: int = 2, dv: int = 2) -> Identity:
    """Notes: Σ_j φ(Q_i)^T φ(K_j) V_j / Σ_j φ(Q_i)^T φ(K_j) = φ(Q_i)^T Σ_j φ(K_j) V_j^T /
    (φ(Q_i)^T Σ_j φ(K_j)): (φ(Q) φ(K)^T) V = φ(Q) (φ(K)^T V), so the N x N matrix is never
    needed and the sums are computed once."""
    P, R, V = inputs(n, n_keys, dk, dv)
    return kernel_form(P, R, V), linear_form(P, R, V)


def softmax_is_exp_kernel(n: int = 2, dk: int = 2, dv: int = 2) -> Identity:
    """Notes: sim(q, k) = exp(q^T k / √D): with that similarity the kernel form is softmax
    attention, Attention(Q, K, V) = softmax(Q K^T / √d_k) V; linear attention only swaps sim."""
    Q, K, V = matrix("Q", n, dk), matrix("K", n, dk), matrix("V", n, dv)
    S = (Q * K.T / sp.sqrt(dk)).applyfunc(sp.exp)
    rhs = sp.Matrix(n, dv, lambda i, c: (S.row(i) * V.col(c))[0] / sum(S.row(i)))
    return attention(Q, K, V), rhs


def causal_recurrence(n: int = 3, dk: int = 2, dv: int = 2) -> Identity:
    """Notes: the pre-computed sums, causal: S_i = S_{i-1} + φ(K_i) V_i^T, z_i = z_{i-1} + φ(K_i),
    Ṽ_i = φ(Q_i)^T S_i / (φ(Q_i)^T z_i) equals the kernel form with sim_ij = 0 for j > i (the
    notes' masked attention, "i-th row < j-th column then -inf", with exp(-inf) = 0). Linear
    attention in a decoder is an RNN whose state is (S_i, z_i)."""
    P, R, V = inputs(n, dk=dk, dv=dv)
    return recurrent_form(P, R, V), kernel_form(P, R, V, causal=True)


def causal_kernel_is_masked_softmax_form(n: int = 3, dk: int = 2) -> Identity:
    """Notes: Masked Self-Attention, "-inf" on hidden keys (implied, for linear attention): the
    causal kernel form's weights sim_ij / Σ_{l<=i} sim_il are the softmax-style weights with
    exp replaced by sim; spec.attention's additive -oo mask applied to log(sim) gives them."""
    P, R = positive("P", n, dk), positive("R", n, dk)
    A = P * R.T
    logs = A.applyfunc(sp.log) + causal_mask(n)
    weights = sp.Matrix.vstack(
        *[logs.row(i).applyfunc(sp.exp) / sum(logs.row(i).applyfunc(sp.exp)) for i in range(n)]
    )
    return kernel_form(P, R, sp.eye(n), causal=True), weights


def normalizer_makes_weights_sum_to_one(n: int = 3, dk: int = 2) -> Identity:
    """Notes: the denominator Σ_j sim(Q_i, K_j): it makes the weights of each query sum to 1, so
    values that are all the same vector c come out as c (non-causal and causal alike)."""
    P, R = positive("P", n, dk), positive("R", n, dk)
    c = matrix("c", 1, 2)
    V = sp.ones(n, 1) * c
    lhs = sp.Matrix.hstack(linear_form(P, R, V), recurrent_form(P, R, V))
    return lhs, sp.Matrix.hstack(V, V)


def quadratic_cost(n: sp.Expr = N) -> Identity:
    """Notes: "softmax(QK^T/√d_k) is too big!": the kernel form costs
    N^2 (d_k + d_v + 1) multiply-adds, summed from the shapes of its three products."""
    return form_cost(QUADRATIC_MATMULS).subs(N, n), sp.expand(n**2 * (d_k + d_v + 1))


def linear_cost(n: sp.Expr = N) -> Identity:
    """Notes: 미리 계산 (d_k x d_v) and (d_k): computing Σ_j φ(K_j) V_j^T and Σ_j φ(K_j) once costs
    2 N d_k (d_v + 1) multiply-adds in all: O(N d^2), linear in the sequence length."""
    return form_cost(LINEAR_MATMULS).subs(N, n), sp.expand(2 * n * d_k * (d_v + 1))


def cost_ratio_grows_with_n() -> Identity:
    """Notes: softmax attention is O(N^2 d), linear attention O(N d^2): the ratio of the two
    costs is N (d_k + d_v + 1) / (2 d_k (d_v + 1)), linear in N, so the kernel form loses for
    N > 2 d_k (d_v + 1) / (d_k + d_v + 1) (about d for d_k = d_v = d)."""
    ratio = form_cost(QUADRATIC_MATMULS) / form_cost(LINEAR_MATMULS)
    return sp.simplify(ratio), N * (d_k + d_v + 1) / (2 * d_k * (d_v + 1))


def linear_attention_vjp_identity(n: int = 2, dk: int = 2, dv: int = 2) -> Identity:
    """Notes: φ(Q_i)^T S / (φ(Q_i)^T z), backward (the formulas of
    reference.linear_attention.linear_attention_vjp, with respect to P = φ(Q), R = φ(K), V):
        dnum = dO / den, dden = -rowsum(dO ∘ out) / den,
        dP = dnum S^T + dden z^T,  dS = P^T dnum,  dz = P^T dden,
        dR = V dS^T + 1 dz^T,  dV = R dS
    equal sympy's derivatives of L = Σ dO ∘ out."""
    P, R, V = inputs(n, dk=dk, dv=dv)
    dO = matrix("dO", n, dv)
    out = linear_form(P, R, V)
    L = sum(out.multiply_elementwise(dO))
    derived = [sp.diff(L, x) for M in (P, R, V) for x in M]
    S, z = R.T * V, R.T * sp.ones(n, 1)
    den = P * z
    dnum = sp.Matrix(n, dv, lambda i, c: dO[i, c] / den[i])
    dden = sp.Matrix(n, 1, lambda i, _: -sum(dO[i, c] * out[i, c] for c in range(dv)) / den[i])
    dS, dz = P.T * dnum, P.T * dden
    closed = [*(dnum * S.T + dden * z.T), *(V * dS.T + sp.ones(n, 1) * dz.T), *(R * dS)]
    return sp.Matrix(derived), sp.Matrix(closed)
