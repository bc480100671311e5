"""Swin Transformer as sympy expressions: windows, shifted windows with their mask, relative
position bias, patch merging, and the MSA vs W-MSA complexity.

Lecture notes (Swin):
    ① MSA vs W-MSA, window-based attention:
        Ω(MSA)   = 4hwC² + 2(hw)²C
        Ω(W-MSA) = 4hwC² + 2M²hwC
    ② Shifted window: window size fixed, windows overlap by M/2
    ③ Patch Merging: "like pooling"

Layout: an h x w grid of tokens is a Matrix with one token per row, row-major (token (r, c) is
row r*w + c), features along the columns (reference.swin's (B, H, W, C) with B = 1). Windows
are the M x M blocks of the grid, numbered row-major, their tokens row-major inside the window
(timm's, torchvision's and HF's window_partition). An additive mask holds 0 or -oo (a hidden
key gets weight exactly 0); implementations fill -100 (exp(-100) ≈ 4e-44, zero in float64
next to the visible weights), see shared CONVENTIONS.

Shifted windows (Liu et al. 2021): the grid is rolled by -s = -floor(M/2) on both axes
(torch.roll(x, (-s, -s))), cut into windows, and inside each window a token attends only to
tokens of its own region (Swin's img_mask: on the rolled grid the rows [0, h-M), [h-M, h-s),
[h-s, h) are regions, the same for the columns); the result is rolled back by +s. The spec
also states the same layer without any roll: full attention on the original grid under a mask
built from region ids (shifted_region_ids), and proves the two equal. (Maps with more than one
window along each axis: along an axis that holds a single window, Swin, timm and torchvision
do not shift at all; reference.swin.axis_shifts.)

Counting convention (complexity): one multiply-add (MAC) per term of each dot product: a matrix
product (m x k)(k x n) costs m*k*n MACs. Softmax, the 1/sqrt(d) scale, biases, the relative
position bias and masks are not counted (lower order, as in the paper). The Swin paper's
"FLOPs" are these MACs; torch.utils.flop_counter counts 2 FLOPs per MAC.
"""

from __future__ import annotations

from collections.abc import Sequence

import sympy as sp

from spec import Identity
from spec.attention import attention, matrix

# -- grids and windows ---------------------------------------------------------------------------


def roll(X: sp.MatrixBase, h: int, w: int, sy: int, sx: int) -> sp.Matrix:
    """torch.roll(x, shifts=(sy, sx), dims=(H, W)) on a row-major token grid:
    out[r, c] = x[(r - sy) mod h, (c - sx) mod w]."""
    rows = [X.row(((r - sy) % h) * w + (c - sx) % w) for r in range(h) for c in range(w)]
    return sp.Matrix.vstack(*rows)


def window_tokens(h: int, w: int, m: int) -> list[list[int]]:
    """Token indices of each M x M window: windows row-major, tokens row-major inside."""
    return [
        [(wr * m + i) * w + wc * m + j for i in range(m) for j in range(m)]
        for wr in range(h // m)
        for wc in range(w // m)
    ]


def window_partition(X: sp.MatrixBase, h: int, w: int, m: int) -> list[sp.Matrix]:
    """The grid cut into (h/M)(w/M) windows of M² tokens each."""
    return [sp.Matrix.vstack(*[X.row(t) for t in ts]) for ts in window_tokens(h, w, m)]


def window_reverse(windows: Sequence[sp.MatrixBase], h: int, w: int, m: int) -> sp.Matrix:
    """window_partition^-1: each token back at its grid position."""
    rows: list = [None] * (h * w)
    for win, ts in zip(windows, window_tokens(h, w, m), strict=True):
        for k, t in enumerate(ts):
            rows[t] = win.row(k)
    return sp.Matrix.vstack(*rows)


def block_diagonal_mask(h: int, w: int, m: int) -> sp.Matrix:
    """Additive (hw, hw) mask of W-MSA on the whole grid: 0 between tokens of one window."""
    window_of = {t: k for k, ts in enumerate(window_tokens(h, w, m)) for t in ts}
    n = h * w
    return sp.Matrix(n, n, lambda i, j: 0 if window_of[i] == window_of[j] else -sp.oo)


# -- relative position bias ----------------------------------------------------------------------


def relative_position_index(m: int) -> list[list[int]]:
    """Swin's index into the (2M-1)² table for query token i and key token j of a window
    (row-major inside the window, i = (y_i, x_i)): (y_i - y_j + M - 1)(2M - 1) + x_i - x_j + M - 1.
    The offsets y_i - y_j, x_i - x_j lie in [-(M-1), M-1]: shifted by M - 1 they are the two
    digits of a base-(2M-1) number, so each offset pair has its own row of the table."""
    coords = [(i // m, i % m) for i in range(m * m)]
    return [
        [(yi - yj + m - 1) * (2 * m - 1) + (xi - xj + m - 1) for (yj, xj) in coords]
        for (yi, xi) in coords
    ]


def bias_table(m: int, name: str = "B") -> sp.Matrix:
    """One head's table: (2M-1)² real symbols."""
    return matrix(name, (2 * m - 1) ** 2, 1)


def window_bias(table: sp.MatrixBase, m: int) -> sp.Matrix:
    """(M², M²) bias of one window: table[relative_position_index]."""
    idx = relative_position_index(m)
    return sp.Matrix(m * m, m * m, lambda i, j: table[idx[i][j]])


def grid_bias(table: sp.MatrixBase, h: int, w: int, m: int) -> sp.Matrix:
    """(hw, hw) bias on the original grid from the tokens' own coordinates: the table row of
    the offset (y_i - y_j, x_i - x_j) where both offsets are within ±(M-1), else 0 (such pairs
    are masked). No window and no roll is involved."""

    def entry(i: int, j: int) -> sp.Expr:
        dy, dx = i // w - j // w, i % w - j % w
        if abs(dy) > m - 1 or abs(dx) > m - 1:
            return sp.Integer(0)
        return table[(dy + m - 1) * (2 * m - 1) + dx + m - 1]

    return sp.Matrix(h * w, h * w, entry)


# -- shifted windows ------------------------------------------------------------------------------


def swin_img_mask_regions(h: int, w: int, m: int, s: int) -> list[int]:
    """Region id of each token of the ROLLED grid, as Swin's img_mask builds it: rows split at
    h - M and h - s, columns at w - M and w - s, nine regions numbered row-major."""

    def band(r: int, n: int) -> int:
        return 0 if r < n - m else (1 if r < n - s else 2)

    return [band(r, h) * 3 + band(c, w) for r in range(h) for c in range(w)]


def shifted_region_ids(h: int, w: int, m: int, s: int) -> list[tuple[int, int, int, int]]:
    """Region id of each token of the ORIGINAL grid, written without any roll: token (y, x)
    lies in shifted window ((y - s) mod h) // M, ((x - s) mod w) // M, and it wrapped around
    the border (y < s, x < s) or not. Two tokens may attend to each other iff their ids are
    equal: same shifted window, and contiguous in the image."""
    return [
        (((y - s) % h) // m, int(y < s), ((x - s) % w) // m, int(x < s))
        for y in range(h)
        for x in range(w)
    ]


def region_mask(ids: Sequence) -> sp.Matrix:
    """Additive mask: 0 between tokens with the same region id, -oo elsewhere."""
    n = len(ids)
    return sp.Matrix(n, n, lambda i, j: 0 if ids[i] == ids[j] else -sp.oo)


def w_msa(Q, K, V, h: int, w: int, m: int, table=None) -> sp.Matrix:
    """W-MSA (one head, projections given): attention inside each window, plus the relative
    position bias when a table is given."""
    bias = sp.zeros(m * m, m * m) if table is None else window_bias(table, m)
    parts = zip(*(window_partition(A, h, w, m) for A in (Q, K, V)), strict=True)
    return window_reverse([attention(q, k, v, mask=bias) for q, k, v in parts], h, w, m)


def sw_msa_roll(Q, K, V, h: int, w: int, m: int, table=None, shift: int | None = None):
    """SW-MSA the way implementations compute it: roll by -s, window attention masked by
    Swin's regions (and biased), window_reverse, roll back by +s."""
    s = m // 2 if shift is None else shift
    Qs, Ks, Vs = (roll(A, h, w, -s, -s) for A in (Q, K, V))
    regions = swin_img_mask_regions(h, w, m, s)
    bias = sp.zeros(m * m, m * m) if table is None else window_bias(table, m)
    outs = []
    tokens = window_tokens(h, w, m)
    parts = zip(*(window_partition(A, h, w, m) for A in (Qs, Ks, Vs)), tokens, strict=True)
    for q, k, v, ts in parts:
        mask = region_mask([regions[t] for t in ts])
        outs.append(attention(q, k, v, mask=bias + mask))
    return roll(window_reverse(outs, h, w, m), h, w, s, s)


def sw_msa_explicit(Q, K, V, h: int, w: int, m: int, table=None, shift: int | None = None):
    """SW-MSA as full attention over the original grid under the region-id mask (and the bias
    from the tokens' own coordinates): no roll, no windows."""
    s = m // 2 if shift is None else shift
    mask = region_mask(shifted_region_ids(h, w, m, s))
    bias = sp.zeros(h * w, h * w) if table is None else grid_bias(table, h, w, m)
    return attention(Q, K, V, mask=bias + mask)


# -- patch merging --------------------------------------------------------------------------------


def patch_merging_concat(X: sp.MatrixBase, h: int, w: int) -> sp.Matrix:
    """Swin's 2x2 neighbours of output token (i, j), concatenated to 4C in the order
    x(2i, 2j), x(2i+1, 2j), x(2i, 2j+1), x(2i+1, 2j+1) (x0..x3 of the paper's code)."""
    rows = []
    for i in range(h // 2):
        for j in range(w // 2):
            nb = [(2 * i, 2 * j), (2 * i + 1, 2 * j), (2 * i, 2 * j + 1), (2 * i + 1, 2 * j + 1)]
            rows.append(sp.Matrix.hstack(*[X.row(r * w + c) for r, c in nb]))
    return sp.Matrix.vstack(*rows)


def conv2x2_stride2(X: sp.MatrixBase, h: int, w: int, kernel) -> sp.Matrix:
    """Convolution with kernel = stride = 2 written per output entry:
    out[(i, j), o] = Σ_{c, dy, dx} kernel(o, c, dy, dx) x[(2i + dy, 2j + dx), c]."""
    c_in, n_out = X.cols, len(kernel)
    return sp.Matrix(
        (h // 2) * (w // 2),
        n_out,
        lambda t, o: sum(
            kernel[o][c][dy][dx] * X[(2 * (t // (w // 2)) + dy) * w + 2 * (t % (w // 2)) + dx, c]
            for c in range(c_in)
            for dy in range(2)
            for dx in range(2)
        ),
    )


# -- identities -----------------------------------------------------------------------------------


def window_partition_roundtrip(h: int = 4, w: int = 6, m: int = 2) -> Identity:
    """Notes: (implied) window_reverse(window_partition(x)) = x, and window k holds the M x M block
    of the grid at block row k // (w/M), block column k mod (w/M)."""
    X = matrix("X", h * w, 1)
    windows = window_partition(X, h, w, m)
    blocks = []
    for k in range(len(windows)):
        br, bc = divmod(k, w // m)
        blocks.append(
            sp.Matrix.vstack(
                *[X.row((br * m + i) * w + bc * m + j) for i in range(m) for j in range(m)]
            )
        )
    lhs = sp.Matrix.vstack(window_reverse(windows, h, w, m), *windows)
    return lhs, sp.Matrix.vstack(X, *blocks)


def w_msa_is_block_diagonal_attention(h: int = 2, w: int = 4, m: int = 2) -> Identity:
    """Notes: ① "window-based attention": W-MSA equals full attention over all hw tokens with
    a block-diagonal mask (a token sees exactly the tokens of its own window)."""
    Q, K, V = matrix("Q", h * w, 1), matrix("K", h * w, 1), matrix("V", h * w, 1)
    return w_msa(Q, K, V, h, w, m), attention(Q, K, V, mask=block_diagonal_mask(h, w, m))


def sw_msa_is_region_masked_attention(h: int = 4, w: int = 4, m: int = 2) -> Identity:
    """Notes: ② shifted window: roll by -floor(M/2), window attention with Swin's region mask and
    the relative position bias, roll back, equals full attention on the original grid under
    the region-id mask with the bias of the tokens' own offsets (no roll in the right side)."""
    Q, K, V = matrix("Q", h * w, 1), matrix("K", h * w, 1), matrix("V", h * w, 1)
    table = bias_table(m)
    return (
        sw_msa_roll(Q, K, V, h, w, m, table),
        sw_msa_explicit(Q, K, V, h, w, m, table),
    )


def relative_index_range() -> Identity:
    """Notes: (implied) relative position bias: the index
    (y_i - y_j + M - 1)(2M - 1) + x_i - x_j + M - 1 runs from 0 (both offsets -(M-1)) to
    (2M-1)² - 1 (both +(M-1)): the table has (2M-1)² rows, every one reachable (base-(2M-1)
    digits; tests/spec checks the bijection for small M)."""
    M = sp.Symbol("M", positive=True, integer=True)

    def index(dy, dx):
        return (dy + M - 1) * (2 * M - 1) + dx + M - 1

    lhs = sp.Matrix([index(-(M - 1), -(M - 1)), index(M - 1, M - 1) + 1])
    return lhs, sp.Matrix([0, (2 * M - 1) ** 2])


def relative_bias_is_translation_invariant(m: int = 3) -> Identity:
    """Notes: (implied) the bias of a query/key pair depends only on their offset: the window's bias
    equals the grid bias (built from the offsets alone) restricted to the window."""
    table = bias_table(m)
    return window_bias(table, m), grid_bias(table, m, m, m)


def patch_merging_linear_is_strided_conv(
    h: int = 4, w: int = 2, c: int = 2, c_out: int = 2
) -> Identity:
    """Notes: ③ patch merging, "like pooling": before its LayerNorm, the reduction of the
    concatenated 2x2 neighbours, concat(x0..x3) W_red, is a convolution with kernel = stride = 2
    whose kernel is kernel(o, c, dy, dx) = W_red[(2 dx + dy) C + c, o] (the neighbour order fixes
    where each weight goes; the LayerNorm over 4C then follows)."""
    X = matrix("X", h * w, c)
    W_red = matrix("R", 4 * c, c_out)
    kernel = [
        [
            [[W_red[(2 * dx + dy) * c + ci, o] for dx in range(2)] for dy in range(2)]
            for ci in range(c)
        ]
        for o in range(c_out)
    ]
    return patch_merging_concat(X, h, w) * W_red, conv2x2_stride2(X, h, w, kernel)


# -- complexity ---------------------------------------------------------------------------------

h, w, C, M = sp.symbols("h w C M", positive=True, integer=True)


def matmul_macs(m: sp.Expr, k: sp.Expr, n: sp.Expr) -> sp.Expr:
    """(m x k)(k x n): m n outputs of k multiply-adds each."""
    return m * k * n


def msa_matmuls(h=h, w=w, C=C, n_heads: int | sp.Expr = 1) -> list[tuple[str, sp.Expr]]:
    """The matrix products of multi-head self-attention over N = hw tokens of width C, as
    (what, MACs). Each of the n_heads heads works on C / n_heads features."""
    N, d = h * w, C / n_heads
    return [
        ("Q = X W_Q", matmul_macs(N, C, C)),
        ("K = X W_K", matmul_macs(N, C, C)),
        ("V = X W_V", matmul_macs(N, C, C)),
        ("Q_h K_h^T", n_heads * matmul_macs(N, d, N)),
        ("A_h V_h", n_heads * matmul_macs(N, N, d)),
        ("concat W_O", matmul_macs(N, C, C)),
    ]


def w_msa_matmuls(h=h, w=w, C=C, M=M, n_heads: int | sp.Expr = 1) -> list[tuple[str, sp.Expr]]:
    """W-MSA: the same projections over all hw tokens; attention inside each of the hw/M²
    windows of M² tokens."""
    N, d, windows = h * w, C / n_heads, h * w / M**2
    return [
        ("Q = X W_Q", matmul_macs(N, C, C)),
        ("K = X W_K", matmul_macs(N, C, C)),
        ("V = X W_V", matmul_macs(N, C, C)),
        ("Q_h K_h^T per window", windows * n_heads * matmul_macs(M**2, d, M**2)),
        ("A_h V_h per window", windows * n_heads * matmul_macs(M**2, M**2, d)),
        ("concat W_O", matmul_macs(N, C, C)),
    ]


def omega_msa(h=h, w=w, C=C, n_heads=1) -> sp.Expr:
    return sp.expand(sum(macs for _, macs in msa_matmuls(h, w, C, n_heads)))


def omega_w_msa(h=h, w=w, C=C, M=M, n_heads=1) -> sp.Expr:
    return sp.expand(sum(macs for _, macs in w_msa_matmuls(h, w, C, M, n_heads)))


def msa_complexity() -> Identity:
    """Notes: ①: Ω(MSA) = 4hwC² + 2(hw)²C, derived from the matrix shapes (MACs)."""
    return omega_msa(), 4 * h * w * C**2 + 2 * (h * w) ** 2 * C


def w_msa_complexity() -> Identity:
    """Notes: ①: Ω(W-MSA) = 4hwC² + 2M²hwC, derived from the matrix shapes (MACs)."""
    return omega_w_msa(), 4 * h * w * C**2 + 2 * M**2 * h * w * C


def complexity_ratio() -> Identity:
    """Notes: (implied) Ω(MSA) / Ω(W-MSA) = (2C + hw) / (2C + M²): quadratic vs linear in the number
    of tokens hw; the two are equal when the window is the whole map (M² = hw)."""
    return sp.simplify(omega_msa() / omega_w_msa()), (2 * C + h * w) / (2 * C + M**2)


def complexity_difference() -> Identity:
    """Notes: (implied) Ω(MSA) - Ω(W-MSA) = 2hwC(hw - M²): W-MSA saves only in the attention
    products."""
    return omega_msa() - omega_w_msa(), 2 * h * w * C * (h * w - M**2)


def heads_do_not_change_complexity(n_heads: int = 4) -> Identity:
    """Notes: (implied) splitting C into n_heads heads of C / n_heads features leaves both counts
    unchanged."""
    lhs = sp.Matrix([omega_msa(n_heads=n_heads), omega_w_msa(n_heads=n_heads)])
    return lhs, sp.Matrix([omega_msa(), omega_w_msa()])
