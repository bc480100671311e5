"""reference.captioning: hand-written vjps against finite differences (float64), and the
attention's defining properties on concrete numbers."""

from __future__ import annotations

import numpy as np
import pytest

from reference import captioning as C
from reference.softmax import softmax
from tests.gradcheck import check_gradient_entries, check_vjp

B, L, D, A, H, E, V, F, T = 2, 4, 3, 2, 2, 3, 5, 3, 3


def rng(seed=0):
    return np.random.default_rng(seed)


def attention_args(seed=0):
    r = rng(seed)
    return [
        r.standard_normal((B, L, D)),
        r.standard_normal((B, H)),
        r.standard_normal((A, D)),
        r.standard_normal((A, H)),
        r.standard_normal(A),
    ]


@pytest.mark.parametrize(
    ("fn", "vjp"),
    [
        (C.attention_scores, C.attention_scores_vjp),
        (C.attention_weights, C.attention_weights_vjp),
        (C.soft_attention, C.soft_attention_vjp),
    ],
)
def test_attention_vjps(fn, vjp):
    args = attention_args(1)
    check_vjp(fn, vjp, args)
    check_gradient_entries(fn, vjp, args)


def test_weights_are_a_softmax_over_locations_and_context_in_the_hull():
    a, h, W_a, W_h, w = attention_args(2)
    e = np.tanh(a @ W_a.T + (h @ W_h.T)[:, None, :]) @ w
    alpha = C.attention_weights(a, h, W_a, W_h, w)
    np.testing.assert_allclose(alpha, softmax(e, axis=1), rtol=1e-14)
    np.testing.assert_allclose(alpha.sum(axis=1), 1, rtol=1e-14)
    z = C.soft_attention(a, h, W_a, W_h, w)
    assert np.all(z <= a.max(axis=1) + 1e-12) and np.all(z >= a.min(axis=1) - 1e-12)


def show_and_tell_args(seed, h0=True):
    r = rng(seed)
    return [
        r.standard_normal((B, F)),
        r.integers(0, V, (B, T)),
        r.standard_normal((B, H)) if h0 else None,
        r.standard_normal((B, H)) if h0 else None,
        r.standard_normal((E, F)),
        r.standard_normal((E, V)),
        r.standard_normal((4 * H, H + E)) * 0.7,
        r.standard_normal(4 * H) * 0.5,
        r.standard_normal((V, H)),
        r.standard_normal(V),
    ]


def _without(args, index):
    """fn over the float args, the int/None args at their places held fixed."""
    fixed = {
        i: a for i, a in enumerate(args) if not isinstance(a, np.ndarray) or a.dtype.kind != "f"
    }
    floats = [a for i, a in enumerate(args) if i not in fixed]

    def assemble(fl):
        it = iter(fl)
        return [fixed[i] if i in fixed else next(it) for i in range(len(args))]

    return floats, assemble


@pytest.mark.parametrize("image_input", C.IMAGE_INPUTS)
@pytest.mark.parametrize("h0", [True, False])
def test_show_and_tell_vjp(image_input, h0):
    args = show_and_tell_args(3, h0)
    floats, assemble = _without(args, None)
    check_vjp(
        lambda *fl: C.show_and_tell(*assemble(fl), image_input=image_input),
        lambda dy, *fl: C.show_and_tell_vjp(dy, *assemble(fl), image_input=image_input),
        floats,
    )


def test_image_is_the_first_input_only():
    # With no recurrent weights and a closed forget gate (f = sigma(-50) ~ 0), step t >= 1
    # depends only on its own input: the word, never the image (image_input="first").
    args = show_and_tell_args(4)
    args[6] = args[6].copy()
    args[6][:, :H] = 0
    args[7] = args[7].copy()
    args[7][H : 2 * H] = -50.0
    first = C.show_and_tell(*args)
    moved = list(args)
    moved[0] = args[0] + 1
    second = C.show_and_tell(*moved)
    assert first.shape == (B, T + 1, V)
    assert not np.allclose(first[:, 0], second[:, 0])
    np.testing.assert_allclose(first[:, 1:], second[:, 1:], rtol=1e-15, atol=1e-15)
    every = C.show_and_tell(*moved, image_input="every_step")
    assert not np.allclose(every[:, 1:], second[:, 1:])


def sat_args(seed, h0=True):
    r = rng(seed)
    return [
        r.standard_normal((B, L, D)),
        r.integers(0, V, (B, T)),
        r.standard_normal((B, H)) if h0 else None,
        r.standard_normal((B, H)) if h0 else None,
        r.standard_normal((E, V)),
        r.standard_normal((A, D)),
        r.standard_normal((A, H)),
        r.standard_normal(A),
        r.standard_normal((4 * H, H + E + D)) * 0.7,
        r.standard_normal(4 * H) * 0.5,
        r.standard_normal((V, H)),
        r.standard_normal(V),
    ]


@pytest.mark.parametrize("h0", [True, False])
def test_show_attend_tell_vjp(h0):
    args = sat_args(5, h0)
    floats, assemble = _without(args, None)
    fn = lambda *fl: C.show_attend_tell(*assemble(fl))  # noqa: E731
    vjp = lambda dy, *fl: C.show_attend_tell_vjp(dy, *assemble(fl))  # noqa: E731
    check_vjp(fn, vjp, floats)
    check_gradient_entries(fn, vjp, floats)


@pytest.mark.parametrize(
    "call",
    [
        lambda: C.soft_attention(np.zeros((B, 0, D)), np.zeros((B, H)), *attention_args()[2:]),
        lambda: C.soft_attention(np.zeros((B, L, D + 1)), *attention_args()[1:]),
        lambda: C.show_attend_tell(
            *[np.full((B, 2), V) if i == 1 else a for i, a in enumerate(sat_args(0))]
        ),
        lambda: C.show_and_tell(
            *[np.zeros((B, 0), int) if i == 1 else a for i, a in enumerate(show_and_tell_args(0))]
        ),
        lambda: C.show_and_tell(*show_and_tell_args(0), image_input="always"),
    ],
)
def test_bad_input_raises_one_value_error(call):
    with pytest.raises(ValueError):
        call()
