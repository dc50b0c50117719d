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


def _upgrade_mid_restart(order: str) -> Callable[[Simulator], list[str]]:
    """Trigger a rolling restart, then upgrade every unit, one by one, while it runs.

    Units are upgraded at seeded times 0.5-4 s (logical) apart after the trigger,
    when requests and grants are outstanding; ``order`` puts the leader first, last,
    or anywhere (seeded).
    """

    def trigger(sim: Simulator) -> list[str]:
        target = sim.upgrade_target
        if target is None:
            raise ValueError("this scenario needs the new charm directory (--upgrade-to DIR)")
        required = _rolling_restart(sim)
        units = sorted(sim.model.alive)
        sim.rng.shuffle(units)
        leader = sim.model.leader
        if leader in units and order != "random":
            units.remove(leader)
            units.insert(0 if order == "leader-first" else len(units), leader)
        at = sim.now
        for unit in units:
            at += sim.rng.uniform(0.5, 4.0)
            sim.schedule_upgrade(unit, target, at)
        return required

    return trigger


for _order, _what in (
    ("random", "in a seeded order"),
    ("leader-first", "the leader first"),
    ("leader-last", "the leader last"),
):
    register(
        Scenario(
            name="upgrade-mid-restart" if _order == "random" else f"upgrade-{_order}",
            description="rolling-restart, and meanwhile upgrade the units one by one to "
            f"the --upgrade-to charm directory, {_what}; every unit must restart, "
            "within the lock's limit",
            trigger=_upgrade_mid_restart(_order),
        )
    )


# The anchor comparison's scenarios (benchmarks/compare.py) register themselves.
from jujusim import bench_scenarios as _bench_scenarios  # noqa: E402, F401

# The demo charm's policies and operator controls (docs/simulator.md) register themselves.
from jujusim import policy_scenarios as _policy_scenarios  # noqa: E402, F401
