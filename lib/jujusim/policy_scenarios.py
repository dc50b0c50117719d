"""Scenarios that show the coordinator's policies and operator controls on the demo charm.

Each is a ``rolling-restart`` (a new ``restart-token`` for every unit at once) with the
demo charm's options for one policy, or with an operator acting mid-way through
``juju run`` actions. They need a charm with those options and actions (the demo charm,
``coordinated-app``); the tests in ``tests/sim/test_policies_sim.py`` assert what each
one must show.
"""

from __future__ import annotations

import json
import os
from typing import Any

from jujusim.context import HookContext, HookInvocation, HookOutcome, RuntimeWrapper
from jujusim.engine import HookRecord, Simulator
from jujusim.model import unit_number
from jujusim.scenarios import Scenario, register

__all__ = ["FORCE_AFTER_S", "PAUSE_S", "STUCK_S", "TIMEOUT_S", "ZONES"]

ZONES = 3
"""Zones the ``zone-restart`` scenario spreads units over when ``--zones`` is left at 1."""
PAUSE_S = 120.0
"""How long (logical s) ``pause-resume`` keeps the queue paused."""
STUCK_S = 900.0
"""How long (logical s) the stuck holder's charm stays broken in ``stuck-holder``."""
FORCE_AFTER_S = 60.0
"""How long (logical s) after the holder gets stuck the operator force-releases it."""
TIMEOUT_S = 120.0
"""The grant timeout (``restart-timeout``) of ``stuck-holder-timeout``."""


def _restart(sim: Simulator, **options: Any) -> list[str]:
    token = f"jujusim-{sim.rng.randrange(16**8):08x}"
    sim.set_config({"restart-token": token, **options}, depth=0)
    return list(sim.model.alive)


def _zone_restart(sim: Simulator) -> list[str]:
    if sim.model.zones == 1:
        sim.model.zones = ZONES
    return _restart(
        sim,
        **{"restart-per-zone": 1, "restart-concurrency": sim.model.zones, "restart-hooks": 3},
    )


def priorities(sim: Simulator) -> dict[str, int]:
    """Seeded distinct priorities for the units, as ``priority-restart`` sets them."""
    units = sorted(sim.model.alive, key=unit_number)
    ranks = list(range(1, len(units) + 1))
    sim.rng.shuffle(ranks)
    return dict(zip(units, ranks, strict=True))


def _priority_restart(sim: Simulator) -> list[str]:
    ranks = priorities(sim)
    spec = " ".join(f"{unit_number(u)}={p}" for u, p in ranks.items())
    options = {"restart-order": "priority", "restart-priorities": spec, "restart-hooks": 3}
    return _restart(sim, **options)


def _leader_last_restart(sim: Simulator) -> list[str]:
    return _restart(sim, **{"restart-order": "leader-last"})


def _pause_resume(sim: Simulator) -> list[str]:
    """Pause the queue on the leader after the first restart ends; resume later."""
    required = _restart(sim)
    fired: list[bool] = []

    def watch(rec: HookRecord) -> None:
        if fired or not any(line.event == "end" for line in rec.journal):
            return
        fired.append(True)
        leader = sim.model.leader
        if leader is None:
            return
        sim.run_action(leader, "pause")
        sim.call_at(sim.now + PAUSE_S, lambda: _on_leader(sim, "resume"))

    sim.watch(watch)
    return required


def _on_leader(sim: Simulator, action: str, **params: Any) -> None:
    if sim.model.leader is not None:
        sim.run_action(sim.model.leader, action, params)


class _StuckHolder(RuntimeWrapper):
    """Wraps a runtime: the first non-leader unit to restart gets stuck holding the lock.

    That hook fails (the charm crashes after the restart), and so does every hook of that
    unit for :data:`STUCK_S`: its release is never committed, so it holds the lock until
    an operator force-releases it.
    """

    def __init__(self, sim: Simulator, *, force: bool = True) -> None:
        self.sim = sim
        self.force = force
        super().__init__(sim.runtime)
        self.unit: str | None = None
        self.since = 0.0
        self._offset = 0

    def run(self, invocation: HookInvocation, ctx: HookContext) -> HookOutcome:
        sim = self.sim
        if invocation.unit == self.unit and sim.now < self.since + STUCK_S:
            return HookOutcome(exit_code=1, stderr="jujusim: stuck-holder scenario\n")
        outcome = self.inner.run(invocation, ctx)
        if self.unit is None and invocation.unit != sim.model.leader and self._began(invocation):
            self.unit, self.since = invocation.unit, sim.now
            if self.force:
                sim.call_at(sim.now + FORCE_AFTER_S, lambda: self._force_release())
            return HookOutcome(exit_code=1, tool_calls=outcome.tool_calls, stderr="crashed\n")
        return outcome

    def _began(self, invocation: HookInvocation) -> bool:
        path = self.sim.journal.path
        if not os.path.exists(path):
            return False
        with open(path, encoding="utf-8") as f:
            f.seek(self._offset)
            text = f.read()
            self._offset = f.tell()
        for line in text.splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("event") == "begin" and record.get("unit") == invocation.unit:
                return True
        return False

    def _force_release(self) -> None:
        _on_leader(self.sim, "force-release", unit=self.unit)



def _stuck_holder(sim: Simulator) -> list[str]:
    sim.runtime = _StuckHolder(sim)
    return _restart(sim)


def _stuck_holder_timeout(sim: Simulator) -> list[str]:
    sim.runtime = _StuckHolder(sim, force=False)
    return _restart(sim, **{"restart-timeout": TIMEOUT_S})


register(
    Scenario(
        "zone-restart",
        "rolling-restart with restart-per-zone=1 and restart-concurrency=K over K zones "
        f"(--zones, default {ZONES} here), restarts spanning 3 hooks: one unit per zone "
        "at once",
        _zone_restart,
    )
)
register(
    Scenario(
        "priority-restart",
        "rolling-restart with restart-order=priority, seeded distinct per-unit "
        "restart-priorities and restarts spanning 3 hooks: each place goes to the "
        "highest-priority request the leader has heard of",
        _priority_restart,
    )
)
register(
    Scenario(
        "leader-last-restart",
        "rolling-restart with restart-order=leader-last: the leader restarts last",
        _leader_last_restart,
    )
)
register(
    Scenario(
        "pause-resume",
        "rolling-restart; when the first restart ends the operator runs the pause action "
        f"on the leader, and resume {PAUSE_S:.0f} s later: no restart starts in between",
        _pause_resume,
    )
)
register(
    Scenario(
        "stuck-holder",
        "rolling-restart; the first non-leader unit to restart crashes after restarting "
        f"and stays broken for {STUCK_S:.0f} s, holding the lock; {FORCE_AFTER_S:.0f} s "
        "later the operator runs force-release on the leader and the others go on",
        _stuck_holder,
    )
)
register(
    Scenario(
        "stuck-holder-timeout",
        "stuck-holder without an operator: restart-timeout is "
        f"{TIMEOUT_S:.0f} s, so the leader revokes the stuck holder in its first hook "
        "after that (at worst its update-status); needs the process runtime, whose "
        "clocks follow logical time",
        _stuck_holder_timeout,
    )
)
