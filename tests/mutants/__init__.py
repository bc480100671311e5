"""The mutant zoo: deliberately wrong adapters, each a bug people really make. The suite must
catch every one (tests/test_mutants.py); where the bug equals a declared variant, the diagnosis
must name it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mutant:
    spec: str  # --adapter spec
    stem: str  # component whose checks must catch it
    diagnosis: str | None = None  # a fail row must carry this diagnosis


MUTANTS: dict[str, Mutant] = {
    "softmax-no-max": Mutant("tests/mutants/softmax.py:NoMaxSubtraction", "softmax"),
    "softmax-silent-half": Mutant("tests/mutants/softmax.py:SilentHalf", "softmax"),
    "attention-scale-1/d": Mutant(
        "tests/mutants/attention.py:ScaleOneOverD",
        "attention",
        diagnosis="matches variant attention.scale=1/d",
    ),
    "attention-mask-after-softmax": Mutant(
        "tests/mutants/attention.py:MaskAfterSoftmax", "attention"
    ),
    "attention-causal-sees-next": Mutant("tests/mutants/attention.py:CausalSeesNext", "attention"),
    "attention-causal-hides-diagonal": Mutant(
        "tests/mutants/attention.py:CausalHidesDiagonal", "attention"
    ),
}
