"""Vanilla RNN, backprop through time, gradient clipping and truncated BPTT as sympy expressions.

Lecture notes:
    h_t = sigma(W h_{t-1} + U x_t + b),  y_t = V h_t + c,  L_t = 1/2 (y_t - z_t)^2,  L = Σ L_t
    dL/dV = Σ_t (y_t - z_t) h_t,   dL/dc = Σ_t (y_t - z_t)
    dL/dw = dL_1/dh_1 dh_1/dw + dL_2/dh_2 dh_2/dw + dL_2/dh_2 dh_2/dh_1 dh_1/dw   (BPTT, T = 2)
    dh_t/dh_{t-1} = (1 - h_{t-1}^2) W,   dh_t/dw = (1 - h_{t-1}^2) h_{t-1}        <- WRONG index
    (tanh x)' = 1 - tanh^2 x
    |dh_t/dh_{t-1}| > 1 then clipping: threshold * g / ||g||;  < 1 then clipping: 0 -> 0
    Vanilla RSTM: h_t = tanh(W [h_{t-1}; x_t])

sigma is tanh. The notes' Jacobian has the wrong time index: h_t = tanh(a_t) with
a_t = W h_{t-1} + U x_t + b, so dh_t/dh_{t-1} = diag(tanh'(a_t)) W = diag(1 - h_t^2) W, the
derivative taken at step t, not t-1 (and likewise dh_t/dW_ij = (1 - h_t,i^2) h_{t-1,j}).
`bptt_jacobian` proves the right form; `notes_jacobian_counterexample` evaluates both at a point
where they differ; the wrong form is a mutant of the suite (tests/mutants/rnn.py).

Conventions: vectors are columns (reference/ uses batch rows: the same formulas transposed).
Identities return (lhs, rhs); nothing is built at import time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import sympy as sp

from spec import Identity

# -- builders --------------------------------------------------------------------------------------


def matrix(name: str, rows: int, cols: int) -> sp.Matrix:
    """rows x cols Matrix of real symbols name_i_j (same name -> same symbols)."""
    return sp.Matrix(rows, cols, lambda i, j: sp.Symbol(f"{name}_{i}_{j}", real=True))


def vector(name: str, n: int) -> sp.Matrix:
    """Column of n real symbols name_0 .. name_{n-1}."""
    return sp.Matrix([sp.Symbol(f"{name}_{i}", real=True) for i in range(n)])


def params(H: int = 2, D: int = 1) -> tuple[sp.Matrix, sp.Matrix, sp.Matrix]:
    """Symbolic W (H, H), U (H, D), b (H, 1)."""
    return matrix("W", H, H), matrix("U", H, D), vector("b", H)


def tanh_vec(a: sp.MatrixBase) -> sp.Matrix:
    return a.applyfunc(sp.tanh)


def rnn_step(W, U, b, h_prev, x) -> sp.Matrix:
    """Notes: h_t = tanh(W h_{t-1} + U x_t + b)."""
    return tanh_vec(W * h_prev + U * x + b)


def unroll(W, U, b, h0, xs: Sequence[sp.MatrixBase]) -> list[sp.Matrix]:
    """[h_1, ..., h_T] from h0 and inputs x_1 .. x_T."""
    hs, h = [], h0
    for x in xs:
        h = rnn_step(W, U, b, h, x)
        hs.append(h)
    return hs


def output(V, c, h) -> sp.Matrix:
    """Notes: y_t = V h_t + c."""
    return V * h + c


def step_loss(y, z) -> sp.Expr:
    """Notes: L_t = 1/2 (y_t - z_t)^2, summed over the output's entries."""
    e = y - z
    return (e.T * e)[0] / 2


def jacobian_closed_form(W: sp.MatrixBase, h_t: sp.MatrixBase) -> sp.Matrix:
    """dh_t/dh_{t-1} = diag(1 - h_t^2) W: tanh' taken at step t."""
    return sp.diag(*[1 - v**2 for v in h_t]) * W


def notes_jacobian(W: sp.MatrixBase, h_prev: sp.MatrixBase) -> sp.Matrix:
    """MUTANT, not the spec: the notes' (1 - h_{t-1}^2) W."""
    return sp.diag(*[1 - v**2 for v in h_prev]) * W


def gradient(expr: sp.Expr, M: sp.MatrixBase) -> sp.Matrix:
    """d expr / dM, same shape as M."""
    return M.applyfunc(lambda m: sp.diff(expr, m))


# -- the recurrence and its Jacobian ---------------------------------------------------------------


def rnn_step_definition(H: int = 2, D: int = 2) -> Identity:
    """Notes: h_t = sigma(W h_{t-1} + U x_t + b), sigma = tanh.

    The Matrix builder equals the per-entry formula h_i = tanh(Σ_j W_ij h_j + Σ_k U_ik x_k + b_i)
    (H != D would catch a transposed U)."""
    W, U, b = params(H, D)
    h, x = vector("h", H), vector("x", D)
    entries = [
        sp.tanh(
            sum(W[i, j] * h[j] for j in range(H)) + sum(U[i, k] * x[k] for k in range(D)) + b[i]
        )
        for i in range(H)
    ]
    return rnn_step(W, U, b, h, x), sp.Matrix(entries)


def tanh_derivative() -> Identity:
    """Notes: (tanh(x))' = 1 - tanh^2(x)."""
    a = sp.Symbol("a", real=True)
    return sp.diff(sp.tanh(a), a), 1 - sp.tanh(a) ** 2


def tanh_derivative_at_most_one() -> Identity:
    """Notes: (tanh(x))' = 1 - tanh^2(x) (implied: it lies in (0, 1], maximum 1 at x = 0).

    The factor max|tanh'| of the Jacobian-product bound is 1: tanh can only shrink a gradient."""
    a = sp.Symbol("a", real=True)
    from sympy.calculus.util import maximum

    return maximum(sp.diff(sp.tanh(a), a), a, sp.Reals), sp.Integer(1)


def bptt_jacobian(H: int = 2, D: int = 1) -> Identity:
    """Notes: dh_t/dh_{t-1}, corrected: = diag(1 - h_t^2) W (the notes write (1 - h_{t-1}^2) W).

    sympy's Jacobian of h_t = tanh(W h_{t-1} + U x_t + b) with respect to h_{t-1}, against the
    closed form with h_t substituted."""
    W, U, b = params(H, D)
    h_prev, x = vector("h", H), vector("x", D)
    h_t = rnn_step(W, U, b, h_prev, x)
    return h_t.jacobian(h_prev), jacobian_closed_form(W, h_t)


def notes_jacobian_counterexample() -> tuple[sp.Expr, sp.Expr]:
    """The notes' dh_t/dh_{t-1} = (1 - h_{t-1}^2) W at one concrete point, against the true one.

    H = D = 1, W = U = 1, b = 0, h_{t-1} = 0, x_t = 1: h_t = tanh(1), so the true derivative is
    1 - tanh(1)^2 ≈ 0.42 while the notes' formula gives 1 - 0^2 = 1. Returns (true, notes')."""
    W, U, b = sp.Matrix([[1]]), sp.Matrix([[1]]), sp.Matrix([0])
    h_prev, x = sp.Matrix([0]), sp.Matrix([1])
    s = sp.Symbol("s", real=True)
    true = sp.diff(rnn_step(W, U, b, sp.Matrix([s]), x)[0], s).subs(s, 0)
    return sp.simplify(true), notes_jacobian(W, h_prev)[0]


def local_weight_derivative(H: int = 2, D: int = 1) -> Identity:
    """Notes: dh_t/dw = (1 - h_{t-1}^2) h_{t-1}, corrected: dh_t,i/dW_ij = (1 - h_t,i^2) h_{t-1,j}
    with h_{t-1} held fixed (the "local" derivative of one step; again tanh' is at step t)."""
    W, U, b = params(H, D)
    h_prev, x = vector("h", H), vector("x", D)
    h_t = rnn_step(W, U, b, h_prev, x)
    derived = [sp.diff(h_t[i], W[i, j]) for i in range(H) for j in range(H)]
    closed = [(1 - h_t[i] ** 2) * h_prev[j] for i in range(H) for j in range(H)]
    return sp.Matrix(derived), sp.Matrix(closed)


def jacobian_product(H: int = 2, D: int = 1) -> Identity:
    """Notes: dh_t/dw = Σ (dh_{t+1}/dh_t ... dh_t/dh_{t-1}) ...: a product of Jacobians.

    Two steps: dh_{t+2}/dh_t = diag(1 - h_{t+2}^2) W diag(1 - h_{t+1}^2) W (chain rule). Hence
    ||dh_T/dh_t|| <= Π ||diag(1 - h_k^2)|| ||W|| <= (||W|| max|tanh'|)^(T - t) = ||W||^(T-t):
    the gradient vanishes when ||W|| < 1 and can explode when ||W|| > 1."""
    W, U, b = params(H, D)
    h0, x1, x2 = vector("h", H), vector("x", D), vector("u", D)
    h1, h2 = unroll(W, U, b, h0, [x1, x2])
    closed = jacobian_closed_form(W, h2) * jacobian_closed_form(W, h1)
    return h2.jacobian(h0), closed


def rstm_equals_rnn(H: int = 2, D: int = 2) -> Identity:
    """Notes: Vanilla RSTM h_t = tanh(W [h_{t-1}; x_t]).

    With the block matrix W' = [W U] (H, H + D) on the concatenation [h; x] (and the bias as one
    more column on a constant 1), the RSTM form is the RNN h_t = tanh(W h_{t-1} + U x_t + b):
    the layout the LSTM and GRU of this suite use for all their gates."""
    W, U, b = params(H, D)
    h, x = vector("h", H), vector("x", D)
    W_block = sp.Matrix.hstack(W, U, b)
    hx1 = sp.Matrix.vstack(h, x, sp.Matrix([1]))
    return tanh_vec(W_block * hx1), rnn_step(W, U, b, h, x)


# -- output layer and BPTT -------------------------------------------------------------------------


def _output_problem(T: int, H: int, O: int):
    V, c = matrix("V", O, H), vector("c", O)
    hs = [vector(f"h{t}", H) for t in range(1, T + 1)]
    zs = [vector(f"z{t}", O) for t in range(1, T + 1)]
    L = sum(step_loss(output(V, c, h), z) for h, z in zip(hs, zs, strict=True))
    return V, c, hs, zs, L


def output_gradient_V(T: int = 2, H: int = 2, O: int = 3) -> Identity:
    """Notes: dL/dV = Σ_t (y_t - z_t) h_t^T, i.e. dL_t/dy_t = y_t - z_t times dy_t/dV = h_t."""
    V, c, hs, zs, L = _output_problem(T, H, O)
    rhs = sum(((output(V, c, h) - z) * h.T for h, z in zip(hs, zs, strict=True)), sp.zeros(O, H))
    return gradient(L, V), rhs


def output_gradient_c(T: int = 2, H: int = 2, O: int = 3) -> Identity:
    """Notes: dL/dc = Σ_t (y_t - z_t) · 1."""
    V, c, hs, zs, L = _output_problem(T, H, O)
    rhs = sum(((output(V, c, h) - z) for h, z in zip(hs, zs, strict=True)), sp.zeros(O, 1))
    return gradient(L, c), rhs


def _two_step_problem(H: int, D: int, O: int):
    W, U, b = params(H, D)
    V, c = matrix("V", O, H), vector("c", O)
    h0, x1, x2 = vector("h", H), vector("x", D), vector("u", D)
    z1, z2 = vector("z", O), vector("y", O)
    return W, U, b, V, c, h0, x1, x2, z1, z2


def _local(W, U, b, h_prev, x, w: sp.Symbol) -> sp.Matrix:
    """dh_t/dw with h_{t-1} held fixed: differentiate with a fresh symbol for h_{t-1}."""
    free = vector("free", len(h_prev))
    step = rnn_step(W, U, b, free, x)
    return step.diff(w).subs(dict(zip(free, h_prev, strict=True)))


def bptt_two_steps(H: int = 1, D: int = 1, O: int = 1) -> Identity:
    """Notes: dL/dw = (dL_1/dh_1 · dh_1/dw) + (dL_2/dh_2 · dh_2/dw)
    + (dL_2/dh_2 · dh_2/dh_1 · dh_1/dw)   (BPTT over two steps, w any weight).

    The left side differentiates the unrolled loss; the right side is the notes' three terms, with
    dh_t/dw the local derivative (h_{t-1} held fixed) and dh_2/dh_1 = diag(1 - h_2^2) W. Proved
    for w = W_00, U_00 and b_0 (stacked)."""
    W, U, b, V, c, h0, x1, x2, z1, z2 = _two_step_problem(H, D, O)
    h1, h2 = unroll(W, U, b, h0, [x1, x2])
    L1, L2 = step_loss(output(V, c, h1), z1), step_loss(output(V, c, h2), z2)
    # dL_t/dh_t as rows, at the unrolled states.
    hv = vector("hv", H)
    g1 = sp.Matrix([[sp.diff(step_loss(output(V, c, hv), z1), v) for v in hv]])
    g2 = sp.Matrix([[sp.diff(step_loss(output(V, c, hv), z2), v) for v in hv]])
    g1 = g1.subs(dict(zip(hv, h1, strict=True)))
    g2 = g2.subs(dict(zip(hv, h2, strict=True)))
    lhs, rhs = [], []
    for w in (W[0, 0], U[0, 0], b[0]):
        d1, d2 = _local(W, U, b, h0, x1, w), _local(W, U, b, h1, x2, w)
        J21 = jacobian_closed_form(W, h2)
        lhs.append(sp.diff(L1 + L2, w))
        rhs.append((g1 * d1)[0] + (g2 * d2)[0] + (g2 * J21 * d1)[0])
    return sp.Matrix(lhs), sp.Matrix(rhs)


# -- truncated BPTT --------------------------------------------------------------------------------


def tbptt_loss_gradient(
    T: int, chunk: int, H: int = 1, D: int = 1, O: int = 1, wrt: Callable | None = None
) -> tuple[sp.Expr, sp.Matrix]:
    """Truncated BPTT, as reference.rnn.rnn_tbptt defines it: (L, dL/dθ truncated).

    The forward state is carried across chunks; the gradient stops at chunk boundaries. Written
    exactly: the state entering chunk k is a fresh symbol s_k (a constant to the derivative),
    the chunk's loss is differentiated with s_k fixed, and s_k is then replaced by the value the
    forward pass carries. θ = (W_00, U_00, b_0) unless `wrt` picks others from (W, U, b)."""
    W, U, b = params(H, D)
    V, c = matrix("V", O, H), vector("c", O)
    h0 = vector("h", H)
    xs = [vector(f"x{t}", D) for t in range(T)]
    zs = [vector(f"z{t}", O) for t in range(T)]
    theta = [W[0, 0], U[0, 0], b[0]] if wrt is None else wrt(W, U, b)
    carried, total, grad = h0, sp.Integer(0), sp.zeros(len(theta), 1)
    for k, start in enumerate(range(0, T, chunk)):
        s = vector(f"s{k}", H)  # the chunk's starting state, a constant inside the chunk
        hs = unroll(W, U, b, s, xs[start : start + chunk])
        L = sum(
            (step_loss(output(V, c, h), z) for h, z in zip(hs, zs[start:], strict=False)),
            sp.Integer(0),
        )
        at = dict(zip(s, carried, strict=True))
        grad += sp.Matrix([sp.diff(L, w) for w in theta]).subs(at)
        total += L.subs(at)
        carried = hs[-1].subs(at)
    return total, grad


def _full_loss(T: int, H: int, D: int, O: int) -> tuple[sp.Expr, list]:
    W, U, b = params(H, D)
    V, c = matrix("V", O, H), vector("c", O)
    h0 = vector("h", H)
    xs = [vector(f"x{t}", D) for t in range(T)]
    zs = [vector(f"z{t}", O) for t in range(T)]
    hs = unroll(W, U, b, h0, xs)
    L = sum(step_loss(output(V, c, h), z) for h, z in zip(hs, zs, strict=True))
    return L, [W[0, 0], U[0, 0], b[0]]


def tbptt_full_chunk_is_bptt(T: int = 2, H: int = 1) -> Identity:
    """Notes: Truncated Backprop. (implied): with one chunk covering the sequence there is no
    boundary to stop at, and truncated BPTT is full BPTT (loss and gradient)."""
    L_tb, g_tb = tbptt_loss_gradient(T, T, H)
    L, theta = _full_loss(T, H, 1, 1)
    return sp.Matrix([L_tb, *g_tb]), sp.Matrix([L, *[sp.diff(L, w) for w in theta]])


def tbptt_drops_cross_chunk_terms(H: int = 1) -> Identity:
    """Notes: Truncated Backprop., over the notes' two-step BPTT sum.

    T = 2 in chunks of 1: the forward is unchanged (same L), and the gradient keeps the notes'
    first two terms and drops the one that crosses the boundary, dL_2/dh_2 · dh_2/dh_1 · dh_1/dw:
    full - truncated = that term."""
    W, U, b, V, c, h0, _, _, _, _ = _two_step_problem(H, 1, 1)
    x1, x2 = vector("x0", 1), vector("x1", 1)  # the names tbptt_loss_gradient uses
    z2 = vector("z1", 1)
    _, h2 = unroll(W, U, b, h0, [x1, x2])
    hv = vector("hv", H)
    g2 = sp.Matrix([[sp.diff(step_loss(output(V, c, hv), z2), v) for v in hv]])
    g2 = g2.subs(dict(zip(hv, h2, strict=True)))
    J21 = jacobian_closed_form(W, h2)
    cross = [(g2 * J21 * _local(W, U, b, h0, x1, w))[0] for w in (W[0, 0], U[0, 0], b[0])]
    L_tb, g_tb = tbptt_loss_gradient(2, 1, H)
    L, theta = _full_loss(2, H, 1, 1)
    full = sp.Matrix([sp.diff(L, w) for w in theta])
    return sp.Matrix([L_tb - L, *(full - g_tb)]), sp.Matrix([0, *cross])


# -- clipping by norm ------------------------------------------------------------------------------


def norm(g: sp.MatrixBase) -> sp.Expr:
    return sp.sqrt(sum(v**2 for v in g))


def clip(g: sp.MatrixBase, threshold: sp.Expr) -> sp.Matrix:
    """Notes: clipping: threshold * g / ||g|| when ||g|| > threshold, else g.

    The norm is simplified before the branch is chosen, so that sympy decides the condition
    whenever it can (e.g. ||threshold * u / ||u|| || > threshold is False)."""
    n = sp.simplify(norm(g))
    scaled = g * (threshold / n)
    return sp.Matrix(
        [sp.Piecewise((s, n > threshold), (v, True)) for s, v in zip(scaled, g, strict=True)]
    )


def _clipping(n: int):
    g = vector("g", n)
    theta = sp.Symbol("theta", positive=True)
    return g, theta, g * theta / norm(g)  # the clipped branch, written out


def clip_norm_is_threshold(n: int = 3) -> Identity:
    """Notes: clipping: threshold · g / ||g|| (when ||g|| > threshold): the clipped gradient has
    norm exactly the threshold."""
    _, theta, clipped = _clipping(n)
    return sp.simplify(norm(clipped)), theta


def clip_keeps_direction(n: int = 3) -> Identity:
    """Notes: clipping: threshold · g / ||g||: the direction g / ||g|| is kept (only the length
    changes), and the unclipped branch is g itself."""
    g, _, clipped = _clipping(n)
    unit = g / norm(g)
    return sp.simplify(clipped / norm(clipped)), unit


def clip_idempotent(n: int = 3) -> Identity:
    """Notes: clipping: threshold · g / ||g|| (implied: clipping twice = clipping once).

    The clipped gradient has norm = threshold, which is not > threshold: the second clip leaves
    it alone (sympy decides the branch of `clip` on the simplified norm)."""
    _, theta, clipped = _clipping(n)
    return clip(clipped, theta), clipped


def clip_leaves_small_gradients(n: int = 3) -> Identity:
    """Notes: |dh_t/dh_{t-1}| < 1 then clipping: 0 -> 0.

    A gradient below the threshold (threshold = ||g|| + eps, eps > 0) is returned unchanged:
    clipping bounds exploding gradients but cannot revive vanishing ones (0 stays 0)."""
    g = vector("g", n)
    eps = sp.Symbol("eps", positive=True)
    return clip(g, norm(g) + eps), g


def clip_by_global_norm(sizes: Sequence[int] = (2, 1)) -> Identity:
    """Notes: clipping: threshold · g / ||g||, with g all the gradients together (implied).

    Clipping a list of gradients by their global norm = clipping their concatenation, split
    back (reference.rnn.clip_grad_norm): every gradient is scaled by the same factor."""
    grads = [vector(f"g{k}", n) for k, n in enumerate(sizes)]
    theta = sp.Symbol("theta", positive=True)
    whole = sp.Matrix.vstack(*grads)
    total = norm(whole)
    per_gradient = sp.Matrix.vstack(*[g * theta / total for g in grads])
    return per_gradient, whole * theta / norm(whole)
