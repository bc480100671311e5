"""Squeeze-and-excitation: values and gradients against the reference, and the invariance of
the channel gate to spatial permutations (out(P x) = P out(x)).

Layout: x (N, C, H, W), W1 (C_r, C), b1 (C_r,), W2 (C, C_r), b2 (C,); torchvision's and timm's
1x1-convolution weights (C_r, C, 1, 1) are the adapter's to map.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from conformance.strategies import se_cases


@given(case=se_cases())
def test_values(impl, case):
    impl.compare("squeeze_excitation", *case.inputs())


@given(case=se_cases())
def test_vjp(impl, case):
    impl.compare_vjp("squeeze_excitation", case.cotangent(), *case.inputs())


@given(case=se_cases(), data=st.data())
def test_spatial_permutation(impl, case, data):
    # The gate s = σ(W2 relu(W1 z + b1) + b2) sees x only through its spatial mean z, so it is
    # invariant to any reordering of the H·W positions, and out = x * s is equivariant.
    x, *params = impl.inputs(*case.inputs())
    h, w = x.shape[-2:]
    perm = np.array(data.draw(st.permutations(range(h * w)), label="spatial permutation"))

    def permute(a):
        return a.reshape(*a.shape[:-2], h * w)[..., perm].reshape(a.shape)

    (out,) = impl.run("squeeze_excitation", x, *params)
    (out_p,) = impl.run("squeeze_excitation", permute(x), *params)
    impl.relation(
        "out(P x) vs P out(x)",
        out_p,
        permute(out),
        lambda: (
            impl.baseline("squeeze_excitation", permute(x), *params),
            permute(impl.baseline("squeeze_excitation", x, *params)),
        ),
    )
