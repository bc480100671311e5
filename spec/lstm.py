"""LSTM as sympy expressions: the cell, dc_{t+1}/dc_t derived in full, and the notes'
"uninterrupted gradient flow".

Lecture notes:
    (i, f, o, g) = (sigma, sigma, sigma, tanh) W [h_{t-1}; x_t]       (nnspec adds one bias b)
    c_t = f ⊙ c_{t-1} + i ⊙ g,    h_t = o ⊙ tanh(c_t)
    dL/dc_t = dL/dc_{t+1} dc_{t+1}/dc_t,   dc_{t+1}/dc_t = f_{t+1} + (...)
    dL/dc_t ≈ dL/dc_{t+1} f_{t+1}   "uninterrupted grad flow"

The notes' "(...)" are the paths from c_t through h_t = o_t ⊙ tanh(c_t) into the gates of step
t+1 (`cell_jacobian_closed_form`): they vanish when the recurrent weights are zero, and also when
f = 1, i = 0 (saturated gates), where the cell state and its gradient pass through unchanged.

Layout (reference.lstm's): W (4H, H + D) on [h; x], row blocks i, f, o, g; b (4H,). Vectors are
columns. Identities return (lhs, rhs); nothing is built at import time.
"""

from __future__ import annotations

import sympy as sp

from spec import Identity
from spec.rnn import gradient, matrix, vector

GATES = ("i", "f", "o", "g")


def sigmoid(a: sp.Expr) -> sp.Expr:
    return 1 / (1 + sp.exp(-a))


def blocks(W: sp.MatrixBase, H: int) -> dict[str, sp.Matrix]:
    """Row blocks of W (or b) by gate name."""
    return {name: W[k * H : (k + 1) * H, :] for k, name in enumerate(GATES)}


def gates(W, b, h_prev, x) -> dict[str, sp.Matrix]:
    """Notes: (i, f, o, g) = (sigma, sigma, sigma, tanh)(W [h_{t-1}; x_t] + b)."""
    H = len(h_prev)
    a = W * sp.Matrix.vstack(h_prev, x) + b
    pre = blocks(a, H)
    out = {k: pre[k].applyfunc(sigmoid) for k in ("i", "f", "o")}
    out["g"] = pre["g"].applyfunc(sp.tanh)
    return out


def lstm_step(W, b, h_prev, c_prev, x) -> tuple[sp.Matrix, sp.Matrix]:
    """Notes: c_t = f ⊙ c_{t-1} + i ⊙ g,  h_t = o ⊙ tanh(c_t); returns (h_t, c_t)."""
    G = gates(W, b, h_prev, x)
    c = G["f"].multiply_elementwise(c_prev) + G["i"].multiply_elementwise(G["g"])
    h = G["o"].multiply_elementwise(c.applyfunc(sp.tanh))
    return h, c


def peephole_lstm_step(W, b, P, h_prev, c_prev, x) -> tuple[sp.Matrix, sp.Matrix]:
    """The peephole LSTM (Gers & Schmidhuber 2000; ONNX LSTM's P input): P (3H,) holds the
    blocks (p_i, p_f, p_o) in nnspec's order (ONNX orders them [Pi, Po, Pf]);
        i = sigma(W_i [h; x] + p_i ⊙ c_{t-1} + b_i),   f = sigma(W_f [h; x] + p_f ⊙ c_{t-1} + b_f)
        c_t = f ⊙ c_{t-1} + i ⊙ g,                      o = sigma(W_o [h; x] + p_o ⊙ c_t + b_o)
        h_t = o ⊙ tanh(c_t).   Returns (h_t, c_t)."""
    H = len(h_prev)
    pre = blocks(W * sp.Matrix.vstack(h_prev, x) + b, H)
    p_i, p_f, p_o = (P[k * H : (k + 1) * H, :] for k in range(3))
    i = (pre["i"] + p_i.multiply_elementwise(c_prev)).applyfunc(sigmoid)
    f = (pre["f"] + p_f.multiply_elementwise(c_prev)).applyfunc(sigmoid)
    g = pre["g"].applyfunc(sp.tanh)
    c = f.multiply_elementwise(c_prev) + i.multiply_elementwise(g)
    o = (pre["o"] + p_o.multiply_elementwise(c)).applyfunc(sigmoid)
    return o.multiply_elementwise(c.applyfunc(sp.tanh)), c


def params(H: int = 1, D: int = 1) -> tuple[sp.Matrix, sp.Matrix]:
    return matrix("W", 4 * H, H + D), vector("b", 4 * H)


def cell_jacobian_closed_form(W_h: dict, f, i, g, o, c) -> sp.Matrix:
    """dc_{t+1}/dc_t written with gate VALUES (f, i, g of step t+1; o, c of step t) and the
    recurrent blocks W_h[k] = W_k[:, :H]:

        diag(f) + [diag(c ⊙ f(1-f)) W_fh + diag(g ⊙ i(1-i)) W_ih + diag(i ⊙ (1-g^2)) W_gh]
                  · diag(o ⊙ (1 - tanh^2 c))

    the first term is the direct path c_{t+1} = f ⊙ c_t + ...; the bracket is the notes' "(...)":
    c_t moves h_t = o ⊙ tanh(c_t), which moves the pre-activations of f, i and g at t+1 (o_{t+1}
    does not enter c_{t+1}). sigma' = sigma (1 - sigma), tanh' = 1 - tanh^2."""

    def d(v):
        return sp.diag(*v)

    one = sp.ones(len(c), 1)
    through_h = (
        d(c.multiply_elementwise(f).multiply_elementwise(one - f)) * W_h["f"]
        + d(g.multiply_elementwise(i).multiply_elementwise(one - i)) * W_h["i"]
        + d(i.multiply_elementwise(one - g.multiply_elementwise(g))) * W_h["g"]
    )
    dh_dc = d(o.multiply_elementwise(one - c.applyfunc(lambda v: sp.tanh(v) ** 2)))
    return d(f) + through_h * dh_dc


def _cell_problem(H: int, D: int, recurrent: bool = True):
    W, b = params(H, D)
    if not recurrent:
        W = sp.Matrix.hstack(sp.zeros(4 * H, H), W[:, H:])
    c, o, x = vector("c", H), vector("o", H), vector("x", D)
    h = o.multiply_elementwise(c.applyfunc(sp.tanh))  # h_t = o_t ⊙ tanh(c_t)
    G = gates(W, b, h, x)  # the gates of step t+1
    c_next = G["f"].multiply_elementwise(c) + G["i"].multiply_elementwise(G["g"])
    return W, c, o, G, c_next


# -- identities ----------------------------------------------------------------------------------


def lstm_cell_definition(H: int = 2, D: int = 1) -> Identity:
    """Notes: (i, f, o, g) = (sigma, sigma, sigma, tanh) W [h_{t-1}; x_t];
    c_t = f ⊙ c_{t-1} + i ⊙ g;  h_t = o ⊙ tanh(c_t).

    The builder equals the per-entry formulas with gate k of unit j reading row k*H + j of W
    (blocks i, f, o, g: the layout every adapter maps to)."""
    W, b = params(H, D)
    h, c, x = vector("h", H), vector("c", H), vector("x", D)
    hx = list(h) + list(x)

    def pre(k: int, j: int) -> sp.Expr:
        row = k * H + j
        return sum(W[row, m] * hx[m] for m in range(H + D)) + b[row]

    c_new = [sigmoid(pre(1, j)) * c[j] + sigmoid(pre(0, j)) * sp.tanh(pre(3, j)) for j in range(H)]
    h_new = [sigmoid(pre(2, j)) * sp.tanh(c_new[j]) for j in range(H)]
    h_t, c_t = lstm_step(W, b, h, c, x)
    return sp.Matrix.vstack(h_t, c_t), sp.Matrix(h_new + c_new)


def sigmoid_derivative() -> Identity:
    """Notes: (i, f, o) = sigma(...) (implied): sigma'(a) = sigma(a) (1 - sigma(a)), the form the
    backward pass uses (no exp needed: the saved gate value suffices)."""
    a = sp.Symbol("a", real=True)
    return sp.diff(sigmoid(a), a), sigmoid(a) * (1 - sigmoid(a))


def cell_jacobian(H: int = 1, D: int = 1) -> Identity:
    """Notes: dc_{t+1}/dc_t = f_{t+1} + (...), derived in full.

    sympy's Jacobian of c_{t+1} = f_{t+1} ⊙ c_t + i_{t+1} ⊙ g_{t+1}, whose gates read
    h_t = o_t ⊙ tanh(c_t), equals `cell_jacobian_closed_form`."""
    W, c, o, G, c_next = _cell_problem(H, D)
    W_h = {k: v[:, :H] for k, v in blocks(W, H).items()}
    closed = cell_jacobian_closed_form(W_h, G["f"], G["i"], G["g"], o, c)
    return c_next.jacobian(c), closed


def cell_jacobian_without_recurrent_weights(H: int = 2, D: int = 1) -> Identity:
    """Notes: dL/dc_t ≈ dL/dc_{t+1} f_{t+1}: exact when the recurrent weights are zero.

    With W_h = 0 the gates do not see h_t, the "(...)" vanish and dc_{t+1}/dc_t = diag(f_{t+1})."""
    _, c, _, G, c_next = _cell_problem(H, D, recurrent=False)
    return c_next.jacobian(c), sp.diag(*G["f"])


def uninterrupted_gradient_flow(H: int = 2) -> Identity:
    """Notes: "uninterrupted grad flow": with f = 1 and i = 0 the cell passes c and its gradient
    unchanged: c_{t+1} = 1 ⊙ c_t + 0 ⊙ g = c_t and dc_{t+1}/dc_t = I, whatever g, o, c and the
    recurrent weights.

    The closed form is evaluated at the gate values f = 1, i = 0 (saturated sigmoids; the closed
    form is continuous in the gate values and `cell_jacobian` proves it for every finite
    pre-activation): f(1 - f) = 0 and i = 0 kill every path through h_t."""
    W_h = {k: matrix(f"W{k}", H, H) for k in ("i", "f", "g")}
    g, o, c = vector("g", H), vector("o", H), vector("c", H)
    f, i = sp.ones(H, 1), sp.zeros(H, 1)
    c_next = f.multiply_elementwise(c) + i.multiply_elementwise(g)
    J = cell_jacobian_closed_form(W_h, f, i, g, o, c)
    return sp.Matrix.vstack(c_next, J.reshape(H * H, 1)), sp.Matrix.vstack(
        c, sp.eye(H).reshape(H * H, 1)
    )


def lstm_backward_step(H: int = 1, D: int = 1) -> Identity:
    """Notes: dL/dc_t = dL/dc_{t+1} dc_{t+1}/dc_t (backward through one cell).

    With L = <dh, h_t> + <dc, c_t> for one step, sympy's gradients with respect to W, b, h_{t-1},
    x_t and c_{t-1} equal the formulas of reference.lstm.lstm_vjp:
        dc' = dc + dh ⊙ o ⊙ (1 - tanh^2 c_t);  do = dh ⊙ tanh c_t;  di = dc' ⊙ g;  dg = dc' ⊙ i;
        df = dc' ⊙ c_{t-1};  da = [di i(1-i); df f(1-f); do o(1-o); dg (1-g^2)];
        dW = da [h_{t-1}; x_t]^T;  db = da;  [dh_{t-1}; dx_t] = W^T da;  dc_{t-1} = dc' ⊙ f."""
    W, b = params(H, D)
    h, c, x = vector("h", H), vector("c", H), vector("x", D)
    dh, dc = vector("dh", H), vector("dc", H)
    h_t, c_t = lstm_step(W, b, h, c, x)
    L = (dh.T * h_t)[0] + (dc.T * c_t)[0]
    derived = [gradient(L, M) for M in (W, b, h, x, c)]

    G = gates(W, b, h, x)
    i, f, o, g = G["i"], G["f"], G["o"], G["g"]
    one = sp.ones(H, 1)

    def m(*vs):
        out = vs[0]
        for v in vs[1:]:
            out = out.multiply_elementwise(v)
        return out

    tanh_c = c_t.applyfunc(sp.tanh)
    dc_total = dc + m(dh, o, one - m(tanh_c, tanh_c))
    da = sp.Matrix.vstack(
        m(dc_total, g, i, one - i),
        m(dc_total, c, f, one - f),
        m(dh, tanh_c, o, one - o),
        m(dc_total, i, one - m(g, g)),
    )
    dhx = W.T * da
    closed = [da * sp.Matrix.vstack(h, x).T, da, dhx[:H, :], dhx[H:, :], m(dc_total, f)]
    flat = [sp.Matrix(M).reshape(len(M), 1) for M in derived]
    flat_closed = [sp.Matrix(M).reshape(len(M), 1) for M in closed]
    return sp.Matrix.vstack(*flat), sp.Matrix.vstack(*flat_closed)


def peephole_cell_definition(H: int = 2, D: int = 1) -> Identity:
    """Notes: the notes' cell c_t = f ⊙ c_{t-1} + i ⊙ g, h_t = o ⊙ tanh(c_t), with peephole
    connections (not in the notes; a declared option of the reference, ONNX LSTM's P):
    i, f read c_{t-1} and o reads c_t through the diagonal weights p_i, p_f, p_o.

    The builder equals the per-entry formulas, unit j of gate k reading row k*H + j of W and
    entry k*H + j of P (blocks p_i, p_f, p_o)."""
    W, b = params(H, D)
    P = vector("p", 3 * H)
    h, c, x = vector("h", H), vector("c", H), vector("x", D)
    hx = list(h) + list(x)

    def pre(k: int, j: int) -> sp.Expr:
        row = k * H + j
        return sum(W[row, m] * hx[m] for m in range(H + D)) + b[row]

    c_new = [
        sigmoid(pre(1, j) + P[H + j] * c[j]) * c[j]
        + sigmoid(pre(0, j) + P[j] * c[j]) * sp.tanh(pre(3, j))
        for j in range(H)
    ]
    h_new = [sigmoid(pre(2, j) + P[2 * H + j] * c_new[j]) * sp.tanh(c_new[j]) for j in range(H)]
    h_t, c_t = peephole_lstm_step(W, b, P, h, c, x)
    return sp.Matrix.vstack(h_t, c_t), sp.Matrix(h_new + c_new)


def zero_peepholes_are_the_lstm(H: int = 2, D: int = 1) -> Identity:
    """Notes: (i, f, o, g) = (sigma, sigma, sigma, tanh) W [h_{t-1}; x_t]; c_t = f ⊙ c_{t-1} +
    i ⊙ g; h_t = o ⊙ tanh(c_t): the peephole LSTM with P = 0 is exactly this cell, so
    peepholes=None (canonical) and peepholes = 0 are the same layer."""
    W, b = params(H, D)
    h, c, x = vector("h", H), vector("c", H), vector("x", D)
    h_p, c_p = peephole_lstm_step(W, b, sp.zeros(3 * H, 1), h, c, x)
    h_t, c_t = lstm_step(W, b, h, c, x)
    return sp.Matrix.vstack(h_p, c_p), sp.Matrix.vstack(h_t, c_t)
