"""GRU as sympy expressions, with both published reset placements, which are variants of each
other (conformance/variants.py: gru.reset).

Lecture notes: "LSTM / GRU" (the notes name the GRU next to the LSTM as the fix for vanishing
gradients; the formulas are Cho et al. 2014's and cuDNN's):

    r = sigma(W_r [h; x] + b_r),   z = sigma(W_z [h; x] + b_z)
    n = tanh(W_nh (r ⊙ h) + W_nx x + b_n)        reset "before" (Cho et al.; ONNX lbr=0)
    n = tanh(W_nx x + b_n + r ⊙ (W_nh h))        reset "after"  (cuDNN, PyTorch; ONNX lbr=1)
    h_t = (1 - z) ⊙ n + z ⊙ h

Layout (reference.gru's): W (3H, H + D) on [h; x], row blocks r, z, n; W_nh = W_n[:, :H].
The two placements agree when W_nh is diagonal (diag(r) commutes with it) and differ otherwise
(`reset_placements_differ`). The update gate is the GRU's copy path: z = 1 gives h_t = h_{t-1}
and dh_t/dh_{t-1} = I, the counterpart of the LSTM's f = 1, i = 0.
"""

from __future__ import annotations

import sympy as sp

from spec import Identity
from spec.lstm import sigmoid
from spec.rnn import gradient, matrix, vector

RESETS = ("before", "after")


def params(H: int = 1, D: int = 1) -> tuple[sp.Matrix, sp.Matrix]:
    return matrix("W", 3 * H, H + D), vector("b", 3 * H)


def _m(*vs: sp.MatrixBase) -> sp.Matrix:
    out = vs[0]
    for v in vs[1:]:
        out = out.multiply_elementwise(v)
    return out


def gates(W, b, h, x) -> tuple[sp.Matrix, sp.Matrix]:
    """(r, z) = sigma(W_{r,z} [h; x] + b_{r,z})."""
    H = len(h)
    a = W[: 2 * H, :] * sp.Matrix.vstack(h, x) + b[: 2 * H, :]
    return a[:H, :].applyfunc(sigmoid), a[H:, :].applyfunc(sigmoid)


def candidate(W, b, h, x, r, reset: str) -> sp.Matrix:
    """n, with the reset applied before or after the recurrent matmul."""
    H = len(h)
    W_nh, W_nx, b_n = W[2 * H :, :H], W[2 * H :, H:], b[2 * H :, :]
    if reset == "before":
        a = W_nh * _m(r, h) + W_nx * x + b_n
    elif reset == "after":
        a = W_nx * x + b_n + _m(r, W_nh * h)
    else:
        raise ValueError(f"reset {reset!r} is not one of {RESETS}")
    return a.applyfunc(sp.tanh)


def gru_step(W, b, h, x, reset: str = "before") -> sp.Matrix:
    """h_t = (1 - z) ⊙ n + z ⊙ h_{t-1}."""
    r, z = gates(W, b, h, x)
    n = candidate(W, b, h, x, r, reset)
    return _m(sp.ones(len(h), 1) - z, n) + _m(z, h)


def jacobian_closed_form(W, h, r, z, n, reset: str) -> sp.Matrix:
    """dh_t/dh_{t-1} with gate VALUES r, z, n:

    diag(z) + diag((h - n) ⊙ z(1-z)) W_zh + diag((1-z) ⊙ (1-n^2)) dA_n/dh
    dA_n/dh = W_nh (diag(r) + diag(h ⊙ r(1-r)) W_rh)                    (before)
            = diag(r) W_nh + diag((W_nh h) ⊙ r(1-r)) W_rh               (after)
    """
    H = len(h)
    one = sp.ones(H, 1)
    W_rh, W_zh, W_nh = W[:H, :H], W[H : 2 * H, :H], W[2 * H :, :H]
    d = sp.diag
    if reset == "before":
        dA = W_nh * (d(*r) + d(*_m(h, r, one - r)) * W_rh)
    else:
        dA = d(*r) * W_nh + d(*_m(W_nh * h, r, one - r)) * W_rh
    return d(*z) + d(*_m(h - n, z, one - z)) * W_zh + d(*_m(one - z, one - _m(n, n))) * dA


def _problem(H: int, D: int):
    W, b = params(H, D)
    return W, b, vector("h", H), vector("x", D)


# -- identities ----------------------------------------------------------------------------------


def _per_entry(W, b, h, x, reset: str) -> sp.Matrix:
    H, D = len(h), len(x)
    hx = list(h) + list(x)

    def pre(row: int, use_h: bool = True, use_x: bool = True) -> sp.Expr:
        terms = [W[row, m] * hx[m] for m in range(H + D) if (m < H and use_h) or (m >= H and use_x)]
        return sum(terms, sp.Integer(0))

    out = []
    for j in range(H):
        r = [sigmoid(pre(k) + b[k]) for k in range(H)]
        z = sigmoid(pre(H + j) + b[H + j])
        row = 2 * H + j
        if reset == "before":
            a = sum(W[row, m] * r[m] * h[m] for m in range(H)) + pre(row, use_h=False) + b[row]
        else:
            a = pre(row, use_h=False) + b[row] + r[j] * pre(row, use_x=False)
        out.append((1 - z) * sp.tanh(a) + z * h[j])
    return sp.Matrix(out)


def gru_reset_before(H: int = 2, D: int = 1) -> Identity:
    """Notes: GRU (Cho et al. 2014): n = tanh(W_nh (r ⊙ h) + W_nx x + b_n), h_t = (1-z) ⊙ n + z ⊙ h.

    The builder equals the per-entry formulas, blocks r, z, n of W in that order."""
    W, b, h, x = _problem(H, D)
    return gru_step(W, b, h, x, "before"), _per_entry(W, b, h, x, "before")


def gru_reset_after(H: int = 2, D: int = 1) -> Identity:
    """Notes: GRU (cuDNN, PyTorch): n = tanh(W_nx x + b_n + r ⊙ (W_nh h)), h_t = (1-z) ⊙ n + z ⊙ h.

    The builder equals the per-entry formulas, blocks r, z, n of W in that order."""
    W, b, h, x = _problem(H, D)
    return gru_step(W, b, h, x, "after"), _per_entry(W, b, h, x, "after")


def reset_placements_agree_for_diagonal(H: int = 2, D: int = 1) -> Identity:
    """Notes: GRU (implied): the two reset placements are one model when W_nh is diagonal:
    diag(r) W_nh h = W_nh diag(r) h. Otherwise they are different functions (declared variants
    of each other, never interchangeable): see reset_placements_differ."""
    W, b, h, x = _problem(H, D)
    W = W.copy()
    for i in range(H):
        for j in range(H):
            if i != j:
                W[2 * H + i, j] = 0
    return gru_step(W, b, h, x, "before"), gru_step(W, b, h, x, "after")


def reset_placements_differ() -> tuple[sp.Expr, sp.Expr]:
    """h_t under both placements at one concrete point (H = 2, D = 1, W_nh not diagonal):
    (before, after), two different numbers. A check that passes for one placement therefore
    fails for the other, which is how the suite names the variant an adapter implements."""
    W = sp.Matrix([[1, -1, 0], [0, 1, 1], [1, 0, 0], [0, 1, 0], [1, 2, 1], [-1, 1, 0]])
    b = sp.Matrix([0, 1, 0, 0, 0, 0])
    h, x = sp.Matrix([1, -1]), sp.Matrix([1])
    return gru_step(W, b, h, x, "before")[0], gru_step(W, b, h, x, "after")[0]


def gru_jacobian(H: int = 1, D: int = 1) -> Identity:
    """Notes: GRU, its BPTT Jacobian dh_t/dh_{t-1} (implied), both placements (stacked):
    sympy's Jacobian equals `jacobian_closed_form`."""
    W, b, h, x = _problem(H, D)
    r, z = gates(W, b, h, x)
    derived, closed = [], []
    for reset in RESETS:
        n = candidate(W, b, h, x, r, reset)
        derived.append(gru_step(W, b, h, x, reset).jacobian(h).reshape(H * H, 1))
        closed.append(jacobian_closed_form(W, h, r, z, n, reset).reshape(H * H, 1))
    return sp.Matrix.vstack(*derived), sp.Matrix.vstack(*closed)


def update_gate_copies(H: int = 2) -> Identity:
    """Notes: GRU, the counterpart of the LSTM's "uninterrupted grad flow": with z = 1,
    h_t = (1 - 1) n + 1 h = h_{t-1} and dh_t/dh_{t-1} = I in both placements, whatever r, n and
    the weights (closed form at the gate value z = 1: z(1-z) = 0 and 1-z = 0)."""
    W = matrix("W", 3 * H, H + 1)
    h, r, n = vector("h", H), vector("r", H), vector("n", H)
    z = sp.ones(H, 1)
    h_next = _m(sp.ones(H, 1) - z, n) + _m(z, h)
    lhs = [h_next]
    rhs = [h]
    for reset in RESETS:
        lhs.append(jacobian_closed_form(W, h, r, z, n, reset).reshape(H * H, 1))
        rhs.append(sp.eye(H).reshape(H * H, 1))
    return sp.Matrix.vstack(*lhs), sp.Matrix.vstack(*rhs)


def gru_backward_step(H: int = 1, D: int = 1) -> Identity:
    """Notes: GRU, backward through one step (implied), both placements (stacked).

    With L = <dh, h_t>, sympy's gradients with respect to W, b, h_{t-1} and x_t equal the formulas
    of reference.gru.gru_vjp: dn = dh (1-z), dz = dh (h - n), da_n = dn (1 - n^2);
    before: d(r h) = W_nh^T da_n, dr = d(r h) h;  after: dq = da_n r, dr = da_n q (q = W_nh h);
    da_r = dr r(1-r), da_z = dz z(1-z); dW, db, dh_{t-1}, dx_t by the chain rule."""
    W, b, h, x = _problem(H, D)
    dh = vector("dh", H)
    one = sp.ones(H, 1)
    W_rz, W_nh, W_nx = W[: 2 * H, :], W[2 * H :, :H], W[2 * H :, H:]
    hx = sp.Matrix.vstack(h, x)
    derived, closed = [], []
    for reset in RESETS:
        L = (dh.T * gru_step(W, b, h, x, reset))[0]
        derived += [gradient(L, M).reshape(len(M), 1) for M in (W, b, h, x)]
        r, z = gates(W, b, h, x)
        n = candidate(W, b, h, x, r, reset)
        dn, dz = _m(dh, one - z), _m(dh, h - n)
        da_n = _m(dn, one - _m(n, n))
        if reset == "before":
            d_rh = W_nh.T * da_n
            dW_nh = da_n * _m(r, h).T
            dr, dh_prev = _m(d_rh, h), _m(dh, z) + _m(d_rh, r)
        else:
            q = W_nh * h
            dq = _m(da_n, r)
            dW_nh, dr = dq * h.T, _m(da_n, q)
            dh_prev = _m(dh, z) + W_nh.T * dq
        da_rz = sp.Matrix.vstack(_m(dr, r, one - r), _m(dz, z, one - z))
        dW = sp.Matrix.vstack(da_rz * hx.T, sp.Matrix.hstack(dW_nh, da_n * x.T))
        db = sp.Matrix.vstack(da_rz, da_n)
        dhx = W_rz.T * da_rz
        grads = [dW, db, dh_prev + dhx[:H, :], W_nx.T * da_n + dhx[H:, :]]
        closed += [sp.Matrix(M).reshape(len(M), 1) for M in grads]
    return sp.Matrix.vstack(*derived), sp.Matrix.vstack(*closed)
