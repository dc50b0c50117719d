"""Scenarios: what happens to the model after deploy, and what must then be done.

A scenario deploys, triggers something at logical time T (depth 0), and names the
units that must each complete an operation afterwards. Register new ones with
:func:`register`; the CLI's ``--scenario`` picks from :data:`SCENARIOS`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from jujusim.engine import Simulator

__all__ = ["SCENARIOS", "Scenario", "register"]


@dataclasses.dataclass(frozen=True)
class Scenario:
    """A named trigger; ``trigger`` returns the units that must complete an operation."""

    name: str
    description: str
    trigger: Callable[[Simulator], list[str]]


SCENARIOS: dict[str, Scenario] = {}


def register(scenario: Scenario) -> Scenario:
    """Add a scenario to the registry (its name must be new)."""
    if scenario.name in SCENARIOS:
        raise ValueError(f"scenario {scenario.name!r} already registered")
    SCENARIOS[scenario.name] = scenario
    return scenario


def _rolling_restart(sim: Simulator) -> list[str]:
    token = f"jujusim-{sim.rng.randrange(16**8):08x}"
    sim.set_config({"restart-token": token}, depth=0)
    return list(sim.model.alive)


register(
    Scenario(
        name="rolling-restart",
        description="set config restart-token to a new value on all units at once; "
        "every unit must restart, within the lock's limit",
        trigger=_rolling_restart,
    )
)
