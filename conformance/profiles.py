"""Hypothesis profiles: `ci` (the default: fixed seed, bounded examples, reproducible),
`dev` (random seeds, more examples), `thorough` (for soak runs) and `fast` (ci's examples without
shrinking, for runs that only ask which checks fail, such as the mutant zoo: measured, shrinking
and replaying failures took three quarters of a zoo run's check time)."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, Phase, settings

DEFAULT = "ci"
# filter_too_much: an adapter may refuse some inputs (conformance.check.Check._refused), which
# Hypothesis counts as filtered examples; the check judges the others.
_SUPPRESS = [
    HealthCheck.function_scoped_fixture,
    HealthCheck.too_slow,
    HealthCheck.data_too_large,
    HealthCheck.filter_too_much,
]
PROFILES: dict[str, dict[str, Any]] = {
    "ci": {"max_examples": 25, "derandomize": True},
    "dev": {"max_examples": 60},
    "thorough": {"max_examples": 400},
    "fast": {
        "max_examples": 25,
        "derandomize": True,
        "phases": [p for p in Phase if p not in (Phase.shrink, Phase.explain)],
    },
}


def register() -> None:
    for name, options in PROFILES.items():
        settings.register_profile(
            name,
            deadline=None,
            print_blob=True,
            database=None,
            suppress_health_check=_SUPPRESS,
            **options,
        )


def name_of(config: Any) -> str:
    return config.getoption("hypothesis_profile", None) or DEFAULT


def load_default(config: Any) -> None:
    """Hypothesis loads --hypothesis-profile itself; without one, nnspec's default applies."""
    if not config.getoption("hypothesis_profile", None):
        settings.load_profile(DEFAULT)


def seed_of(config: Any) -> int | str | None:
    seed = config.getoption("hypothesis_seed", None)
    if seed is not None:
        return int(seed) if str(seed).isdigit() else str(seed)
    return "derandomized" if PROFILES.get(name_of(config), {}).get("derandomize") else None
