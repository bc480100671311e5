"""Vision Transformer (ViT) as sympy expressions: patch embedding, the token sequence, the
pre-LN encoder block.

Lecture notes (ViT):
    the image is cut into N patches (patching), each flattened and mapped by E:
        Z_0 = [x_cls; x_p^1 E; ...; x_p^N E] + E_pos
        Z'_l = MSA(LN(Z_{l-1})) + Z_{l-1}
        Z_l  = MLP(LN(Z'_l)) + Z'_l
    GELU = x Φ(x) (Φ the standard normal CDF)

Layout (reference.vit's): an image is (C, H, W) (channels first, as a convolution takes it);
patches are numbered row-major over the (H/p) x (W/p) patch grid; a patch is flattened in the
order (c, dy, dx), which is how a convolution weight (D, C, p, p) reshapes to (D, C p²). E is
(C p², D), the notes' x_p E with one patch per row. Tokens are rows: [cls; patches], (N+1, D).
"""

from __future__ import annotations

import sympy as sp

from spec import Identity
from spec.activation import gelu
from spec.attention import matrix, multi_head
from spec.transformer import Params, encoder_layer, feed_forward, layer_norm


def image(name: str, c: int, h: int, w: int) -> list[list[list[sp.Symbol]]]:
    """A symbolic image x[c][y][x]."""
    return [
        [[sp.Symbol(f"{name}_{ci}_{y}_{x}", real=True) for x in range(w)] for y in range(h)]
        for ci in range(c)
    ]


def patches(x, p: int) -> sp.Matrix:
    """(N, C p²): row n is patch n (row-major over the patch grid) flattened as (c, dy, dx)."""
    c, h, w = len(x), len(x[0]), len(x[0][0])
    rows = []
    for py in range(h // p):
        for px in range(w // p):
            rows.append(
                [
                    x[ci][py * p + dy][px * p + dx]
                    for ci in range(c)
                    for dy in range(p)
                    for dx in range(p)
                ]
            )
    return sp.Matrix(rows)


def conv2d_strided(x, kernel, bias, stride: int) -> sp.Matrix:
    """Convolution (cross-correlation, as every library computes it) with no padding, written
    per output entry; output as tokens (row-major over the output grid) x channels:
    out[(i, j), o] = b_o + Σ_{c, dy, dx} kernel[o][c][dy][dx] x[c][stride i + dy][stride j + dx]."""
    c, h, w = len(x), len(x[0]), len(x[0][0])
    k = len(kernel[0][0])
    oh, ow = (h - k) // stride + 1, (w - k) // stride + 1
    return sp.Matrix(
        oh * ow,
        len(kernel),
        lambda t, o: (
            bias[o]
            + sum(
                kernel[o][ci][dy][dx] * x[ci][stride * (t // ow) + dy][stride * (t % ow) + dx]
                for ci in range(c)
                for dy in range(k)
                for dx in range(k)
            )
        ),
    )


def patch_embedding(x, E: sp.MatrixBase, b: sp.MatrixBase, p: int) -> sp.Matrix:
    """x_p^n E + b for every patch n: (N, D)."""
    P = patches(x, p)
    return P * E + sp.ones(P.rows, 1) * b


def tokens(x, E, b, cls: sp.MatrixBase, pos: sp.MatrixBase, p: int) -> sp.Matrix:
    """Z_0 = [x_cls; x_p^1 E; ...; x_p^N E] + E_pos: (N + 1, D)."""
    return sp.Matrix.vstack(cls, patch_embedding(x, E, b, p)) + pos


# -- identities ---------------------------------------------------------------------------------


def patch_embedding_is_strided_conv(
    c: int = 2, h: int = 4, w: int = 2, p: int = 2, d: int = 2
) -> Identity:
    """Notes: "patching" then x_p E: flattening p x p patches and mapping them by E equals a
    convolution with kernel = stride = p whose kernel is
    kernel[o][c][dy][dx] = E[(c p + dy) p + dx, o] (the conv weight
    (D, C, p, p) reshaped to (D, C p²) is E^T)."""
    x = image("x", c, h, w)
    E, b = matrix("E", c * p * p, d), matrix("b", 1, d)
    kernel = [
        [[[E[(ci * p + dy) * p + dx, o] for dx in range(p)] for dy in range(p)] for ci in range(c)]
        for o in range(d)
    ]
    return patch_embedding(x, E, b, p), conv2d_strided(x, kernel, b, p)


def token_sequence_definition(
    c: int = 1, h: int = 2, w: int = 4, p: int = 2, d: int = 2
) -> Identity:
    """Notes: Z_0 = [x_cls; x_p^1 E; ...; x_p^N E] + E_pos: row 0 is the class token plus
    E_pos[0]; row n (1..N) is patch n's embedding plus E_pos[n]."""
    x = image("x", c, h, w)
    E, b = matrix("E", c * p * p, d), matrix("b", 1, d)
    cls, pos = matrix("cls", 1, d), matrix("pos", (h // p) * (w // p) + 1, d)
    P = patches(x, p)
    rows = [cls + pos.row(0)]
    rows += [P.row(n) * E + b + pos.row(n + 1) for n in range(P.rows)]
    return tokens(x, E, b, cls, pos, p), sp.Matrix.vstack(*rows)


def vit_block_definition(n: int = 2, e: int = 2) -> Identity:
    """Notes: Z' = MSA(LN(Z)) + Z, Z'' = MLP(LN(Z')) + Z' with the MLP's GELU = x Φ(x):
    spec.transformer's pre-LN encoder layer with GELU is the notes' two lines."""
    Z, p = matrix("Z", n, e), Params(e)
    p.act = gelu
    (g1, b1), (g2, b2) = p.ln[0], p.ln[1]
    N1 = layer_norm(Z, g1, b1, p.eps)
    Z1 = multi_head(N1, N1, *p.attn, 1) + Z
    rhs = feed_forward(layer_norm(Z1, g2, b2, p.eps), *p.ffn, gelu) + Z1
    return encoder_layer(Z, p, norm_first=True), rhs
