"""The emulator's seeded organisations by name: what ``emulator serve --org NAME`` loads.

``messy`` and ``clean`` are :mod:`~claudesec.emulator.org_fixtures`'s; ``clean+CHECK-ID`` is
the clean one with the defect of that check's variant (:mod:`~claudesec.emulator.org_variants`).
One entry point, so the CLI, the test fixtures and the drills accept the same names.
"""

from __future__ import annotations

from claudesec.emulator.org_fixtures import ORG_NAMES, SeededOrg, seed_clean, seed_messy
from claudesec.emulator.org_variants import seed_variant
from claudesec.emulator.state import EmulatorState

VARIANT_PREFIX = "clean+"


def seed_org(state: EmulatorState, name: str) -> SeededOrg:
    """Load the named organisation into ``state``; ValueError names the choices."""
    if name == "messy":
        return seed_messy(state)
    if name == "clean":
        return seed_clean(state)
    if name.startswith(VARIANT_PREFIX):
        return seed_variant(state, name.removeprefix(VARIANT_PREFIX))
    raise ValueError(
        f"unknown organisation {name!r}; expected {', '.join(ORG_NAMES)} or "
        f"{VARIANT_PREFIX}CHECK-ID"
    )
