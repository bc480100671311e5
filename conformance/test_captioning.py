"""Image captioning: the CNN feature as the decoder's first input (Show and Tell), additive soft
attention over the L locations of a feature grid, and the attention LSTM decoder (Show, Attend
and Tell), values and gradients; one property runs on the 7x7x512 grid of a torchvision
resnet18 (random weights, L = 49). reference/captioning.py states the op signatures."""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.adapters.base import covers
from conformance.check import NotCovered
from conformance.strategies import caption_cases


def _show_and_tell_args(case):
    W, b = case.lstm(case.embed)
    return (
        case.v(),
        case.captions(),
        case.state(0),
        case.state(1),
        case.W_img(),
        case.W_emb(),
        W,
        b,
        *case.head(),
    )


def _attention_args(case):
    return (case.a(), case.h(), *case.attention())


def _sat_args(case, a=None):
    a = case.a() if a is None else a
    W, b = case.lstm(case.embed + a.shape[-1])
    return (
        a,
        case.captions(),
        case.state(0),
        case.state(1),
        case.W_emb(),
        *case.attention(a.shape[-1]),
        W,
        b,
        *case.head(),
    )


# -- Show and Tell -------------------------------------------------------------------------------


@given(case=caption_cases())
def test_show_and_tell_values(impl, case):
    # Input sequence [W_img v, E y_0, ..., E y_{T-1}]: logits (B, T + 1, V).
    impl.compare("show_and_tell", *_show_and_tell_args(case))


@given(case=caption_cases())
def test_show_and_tell_vjp(impl, case):
    dy = case.cotangent(case.batch, case.steps + 1, case.vocab)
    impl.compare_vjp("show_and_tell", dy, *_show_and_tell_args(case))


@given(case=caption_cases())
def test_image_only_first(impl, case):
    # With no recurrent weights and a closed forget gate, step t >= 1 sees only its own input:
    # changing the image may change step 0's logits but not the later ones
    # (spec.captioning.image_is_only_the_first_input).
    v, y, h0, c0, W_img, W_emb, W, b, W_d, b_d = _show_and_tell_args(case)
    H = case.hidden
    W, b = W.copy(), b.copy()
    W[:, :H] = 0
    b[H : 2 * H] = -50.0
    args = impl.inputs(v, W_img, W_emb, W, b, W_d, b_d)
    v, W_img, W_emb, W, b, W_d, b_d = args
    (v2,) = impl.inputs(v + case.cotangent(*v.shape, k=5) + 1.0)
    h0, c0 = (None if s is None else impl.inputs(s)[0] for s in (h0, c0))
    (out,) = impl.run("show_and_tell", v, y, h0, c0, W_img, W_emb, W, b, W_d, b_d)
    (out2,) = impl.run("show_and_tell", v2, y, h0, c0, W_img, W_emb, W, b, W_d, b_d)
    impl.relation(
        "words' logits after changing the image",
        out2[:, 1:],
        out[:, 1:],
        lambda: (
            impl.baseline("show_and_tell", v2, y, h0, c0, W_img, W_emb, W, b, W_d, b_d)[:, :, 1:],
            impl.baseline("show_and_tell", v, y, h0, c0, W_img, W_emb, W, b, W_d, b_d)[:, :, 1:],
        ),
    )


# -- soft attention --------------------------------------------------------------------------------


@given(case=caption_cases())
def test_attention_weights_values(impl, case):
    impl.compare("attention_weights", *_attention_args(case))


@given(case=caption_cases())
def test_attention_weights_vjp(impl, case):
    dalpha = case.cotangent(case.batch, case.locations)
    impl.compare_vjp("attention_weights", dalpha, *_attention_args(case))


@given(case=caption_cases())
def test_soft_attention_values(impl, case):
    impl.compare("soft_attention", *_attention_args(case))


@given(case=caption_cases())
def test_soft_attention_vjp(impl, case):
    dz = case.cotangent(case.batch, case.features)
    impl.compare_vjp("soft_attention", dz, *_attention_args(case))


@given(case=caption_cases())
def test_weights_sum_to_one_over_locations(impl, case):
    # α = softmax(e) over the L locations of each image (spec.captioning
    # .attention_weights_sum_to_one), never over the batch.
    args = impl.inputs(*_attention_args(case))
    (alpha,) = impl.run("attention_weights", *args)
    ones = np.ones(case.batch)
    impl.relation(
        "Σ_i α_i per image",
        alpha.sum(axis=1),
        ones,
        lambda: (impl.baseline("attention_weights", *args).sum(axis=2), ones),
    )


@given(case=caption_cases(), data=st.data())
def test_context_of_equal_features(impl, case, data):
    # Every location holds the same feature c: z = c whatever the weights (a convex combination
    # of equal points; spec.captioning.context_of_equal_features).
    a, h, W_a, W_h, w = impl.inputs(*_attention_args(case))
    a = np.repeat(a[:, :1], case.locations, axis=1)
    (z,) = impl.run("soft_attention", a, h, W_a, W_h, w)
    impl.relation(
        "z of equal features vs the feature",
        z,
        a[:, 0],
        lambda: (impl.baseline("soft_attention", a, h, W_a, W_h, w), a[:, 0]),
    )


@given(case=caption_cases(), data=st.data())
def test_location_permutation(impl, case, data):
    # Attention is a weighted average over locations: permuting them permutes α and leaves z
    # unchanged.
    a, h, W_a, W_h, w = impl.inputs(*_attention_args(case))
    perm = np.array(data.draw(st.permutations(range(case.locations)), label="permutation"))
    (z,) = impl.run("soft_attention", a, h, W_a, W_h, w)
    (z_p,) = impl.run("soft_attention", a[:, perm], h, W_a, W_h, w)
    impl.relation(
        "z of permuted locations vs z",
        z_p,
        z,
        lambda: (
            impl.baseline("soft_attention", a[:, perm], h, W_a, W_h, w),
            impl.baseline("soft_attention", a, h, W_a, W_h, w),
        ),
    )


@given(case=caption_cases(), data=st.data())
def test_images_are_independent(impl, case, data):
    # Each image attends over its own locations: changing another image of the batch cannot
    # change its context.
    a, h, W_a, W_h, w = impl.inputs(*_attention_args(case))
    if case.batch == 1:
        a, h = np.concatenate([a, a[:, ::-1]]), np.concatenate([h, -h])
    (a2,) = impl.inputs(np.concatenate([a[:1], a[1:] + 2 * case.cotangent(*a[1:].shape, k=6)]))
    (z,) = impl.run("soft_attention", a, h, W_a, W_h, w)
    (z2,) = impl.run("soft_attention", a2, h, W_a, W_h, w)
    impl.relation(
        "image 0's context after changing the others",
        z2[:1],
        z[:1],
        lambda: (
            impl.baseline("soft_attention", a2, h, W_a, W_h, w)[:, :1],
            impl.baseline("soft_attention", a, h, W_a, W_h, w)[:, :1],
        ),
    )


# -- Show, Attend and Tell ---------------------------------------------------------------------


@given(case=caption_cases())
def test_show_attend_tell_values(impl, case):
    impl.compare("show_attend_tell", *_sat_args(case))


@given(case=caption_cases())
def test_show_attend_tell_vjp(impl, case):
    dy = case.cotangent(case.batch, case.steps, case.vocab)
    impl.compare_vjp("show_attend_tell", dy, *_sat_args(case))


@functools.cache
def resnet18_grid(seed: int, batch: int = 2) -> np.ndarray:
    """(batch, 49, 512): torchvision resnet18's last feature map (random weights from a fixed
    torch seed, eval mode) of random 224x224 images, as L = 7 x 7 locations of D = 512."""
    import torch
    from torchvision.models import resnet18

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = resnet18(weights=None).eval()
        images = torch.randn(batch, 3, 224, 224)
    trunk = torch.nn.Sequential(*list(model.children())[:-2])  # drop avgpool and fc
    with torch.no_grad():
        grid = trunk(images)  # (B, 512, 7, 7)
    return grid.flatten(2).transpose(1, 2).double().numpy()  # (B, 49, 512)


@settings(max_examples=6)  # a 49 x 512 grid: the reference's long-double truth is slow
@given(case=caption_cases(max_steps=2), seed=st.integers(0, 1))
def test_resnet18_grid(impl, case, seed):
    # The attention decoder on a real CNN grid: resnet18 features, 7x7 = 49 locations of 512.
    if not covers(impl.adapter, "show_attend_tell"):  # before the costly features
        raise NotCovered(f"{impl.adapter.name} has no 'show_attend_tell'")
    if importlib.util.find_spec("torchvision") is None:
        pytest.skip("torchvision is not installed")
    a = resnet18_grid(seed)[: min(case.batch, 2)]
    case = replace(case, batch=a.shape[0])
    a = a / np.sqrt(np.mean(a**2))  # unit RMS: random-init activations grow with depth
    impl.compare("show_attend_tell", *_sat_args(case, a))
