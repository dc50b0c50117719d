"""Scenarios of the anchor comparison (``benchmarks/compare.py``), in the registry.

Each starts as ``rolling-restart`` does (a new ``restart-token`` for every unit at once)
and adds one thing that coordination libraries are known to get wrong. They watch the run
through the simulator's per-hook callback and act at the moment they describe.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping

from jujusim.context import HookContext, HookInvocation, HookOutcome, RuntimeWrapper
from jujusim.engine import HookRecord, Simulator
from jujusim.scenarios import Scenario, register

__all__ = ["LEADER_ERROR_S", "read_by_leader", "skewed_unit"]

LEADER_ERROR_S = 1800.0
"""How long (logical s) the leader stays broken in ``leader-error`` before it is fixed."""


def _new_token(sim: Simulator) -> None:
    sim.set_config({"restart-token": f"jujusim-{sim.rng.randrange(16**8):08x}"}, depth=0)


def _events(rec: HookRecord, event: str) -> bool:
    return any(line.event == event for line in rec.journal)


def _leader_mid_queue(sim: Simulator) -> list[str]:
    """The leader's agent learns of the change once half of the others have requested."""
    leader = sim.model.leader
    _new_token(sim)
    if leader is None or leader not in sim.agents:
        return list(sim.model.alive)
    agent = sim.agents[leader]
    agent.config_version = sim.model.config_version  # as if delivered: not yet run
    others = len(sim.model.alive) - 1
    requested: set[str] = set()
    fired: list[bool] = []

    def watch(rec: HookRecord) -> None:
        if rec.unit != leader and _events(rec, "request"):
            requested.add(rec.unit)
        if not fired and len(requested) >= (others + 1) // 2:
            fired.append(True)  # once: the leader's config-changed then runs as usual
            agent.config_version -= 1  # the watcher fires now: config-changed is due
            sim._wake(leader)

    sim.watch(watch)
    return list(sim.model.alive)


class _BrokenUnit(RuntimeWrapper):
    """Wraps a runtime: one unit's hooks fail at once (its charm is broken) for a while.

    ``after`` is called after every hook that ran.
    """

    def __init__(self, sim: Simulator, unit: str) -> None:
        self.sim = sim
        self.unit = unit
        super().__init__(sim.runtime)
        self.since: float | None = None
        self.after: Callable[[HookInvocation], None] | None = None

    def run(self, invocation: HookInvocation, ctx: HookContext) -> HookOutcome:
        if (
            invocation.unit == self.unit
            and self.since is not None
            and self.sim.now < self.since + LEADER_ERROR_S
        ):
            return HookOutcome(exit_code=1, stderr="jujusim: leader-error scenario\n")
        outcome = self.inner.run(invocation, ctx)
        if self.after is not None:
            self.after(invocation)
        return outcome



def read_by_leader(rec: HookRecord, asked: Mapping[str, float]) -> str | None:
    """The unit whose request this hook showed the leader, if it did.

    A committed hook of the unit leading at its start, about a unit (a relation hook,
    which re-reads that unit's bag), started after that unit's request was committed at
    ``asked[unit]``: a fact of the run, whatever the library keeps.
    """
    remote = rec.hook.remote_unit
    if remote is None or not (rec.leader and rec.ok) or remote not in asked:
        return None
    return remote if rec.start >= asked[remote] else None


def _break_leader(sim: Simulator) -> tuple[str, _BrokenUnit] | None:
    """Change the token and wrap the runtime so that the leader can be broken later."""
    leader = sim.model.leader
    _new_token(sim)
    if leader is None:
        return None
    broken = _BrokenUnit(sim, leader)
    sim.runtime = broken
    return leader, broken


def _leader_error(to_other: bool) -> Callable[[Simulator], list[str]]:
    def trigger(sim: Simulator) -> list[str]:
        """From just after a grant, every hook of the leader fails, for 30 min.

        The grant is the first one (``to_other`` false), or the first one to a unit
        other than the leader (``to_other``): once requests are queued and a hand-off
        between units is due.
        """
        got = _break_leader(sim)
        if got is None:
            return list(sim.model.alive)
        leader, broken = got

        def watch(rec: HookRecord) -> None:
            if broken.since is not None or not _events(rec, "granted"):
                return
            if to_other and all(line.unit == leader for line in rec.journal
                                if line.event == "granted"):  # fmt: skip
                return
            broken.since = sim.now

        sim.watch(watch)
        return list(sim.model.alive)

    return trigger


def _leader_error_late(sim: Simulator) -> list[str]:
    """Every hook of the leader fails for 30 min once it has done its part of the rollout.

    That is: it has restarted, and since each other unit logged its request, it has run
    a hook about that unit (so it has read every request). What is left of the rollout
    is hand-offs between the other units; a library that needs the leader for each grant
    stalls until the leader is fixed.
    """
    got = _break_leader(sim)
    if got is None:
        return list(sim.model.alive)
    leader, broken = got
    others = {u for u in sim.model.alive if u != leader}
    asked: dict[str, float] = {}
    read: set[str] = set()
    restarted: list[bool] = []

    def watch(rec: HookRecord) -> None:
        if broken.since is not None:
            return
        if rec.ok:
            for line in rec.journal:
                if line.event == "request" and line.unit in others:
                    asked.setdefault(line.unit, rec.end)
                elif line.event == "end" and line.unit == leader:
                    restarted.append(True)
        remote = read_by_leader(rec, asked)
        if remote is not None:
            read.add(remote)
        if restarted and read >= {u for u in others if u in sim.model.alive}:
            broken.since = sim.now

    sim.watch(watch)
    return list(sim.model.alive)


def _holder_removed(sim: Simulator) -> list[str]:
    """The first non-leader unit to begin its restart is removed while it holds the lock.

    The removal happens at the logical start of the hook in which the operation began
    (the hook is still running): the unit then runs its departure hooks and goes.
    """
    _new_token(sim)
    hooked = _BrokenUnit(sim, "")
    sim.runtime = hooked
    offset = [os.path.getsize(sim.journal.path) if os.path.exists(sim.journal.path) else 0]
    done: list[str] = []

    def after(invocation: HookInvocation) -> None:
        if done or not os.path.exists(sim.journal.path):
            return
        with open(sim.journal.path, encoding="utf-8") as f:
            f.seek(offset[0])
            text = f.read()
            offset[0] = f.tell()
        for line in text.splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            unit = record.get("unit", invocation.unit)
            if record.get("event") == "begin" and unit != sim.model.leader and not done:
                done.append(unit)
                sim.remove_unit(unit)

    hooked.after = after
    return list(sim.model.alive)


def _late_config(sim: Simulator, units: list[str]) -> Callable[[str], None]:
    """Hold back the pending config change from ``units``' agents; returns a releaser.

    As in ``leader-mid-queue``: the agent is marked as having seen the current config
    (nothing is due), and releasing it makes config-changed due again, as a slow agent's
    watcher firing late would. Call after the change.
    """
    held = {u for u in units if u in sim.agents}
    for unit in held:
        sim.agents[unit].config_version = sim.model.config_version

    def release(unit: str) -> None:
        if unit in held:
            held.discard(unit)
            sim.agents[unit].config_version -= 1
            sim._wake(unit)

    return release


def _paused(sim: Simulator, units: list[str]) -> Callable[[str], None]:
    """Stop ``units``' agents from running any hook until released; returns a releaser.

    As an agent that is down for a while (its machine busy, the agent restarting): the
    changes pile up and it runs them once back. Call before the change.
    """
    paused = {u for u in units if u in sim.agents}
    for unit in paused:
        sim.agents[unit].dispatch_scheduled = True  # the engine then never schedules one

    def release(unit: str) -> None:
        if unit in paused:
            paused.discard(unit)
            sim.agents[unit].dispatch_scheduled = False
            sim._wake(unit)

    return release


def _skewed(seconds: float, operation_seconds: float = 0.0) -> Callable[[Simulator], list[str]]:
    def trigger(sim: Simulator) -> list[str]:
        """One non-leader unit's machine clock is off by ``seconds``.

        It is the middle one by unit number, and the run makes it ask where the skew
        decides something. Behind: its agent is down until every other unit has logged
        its request and half of them have finished their restarts, so it asks long after
        the others, while some still queue: a queue ordered by the requesters' clocks
        puts it first. Ahead: the agents of
        the non-leader units numbered after it are down until it begins its restart
        (with ``operation_seconds``: until 15 s after it finished its restart), so
        they ask while a holder restarts and the time of the skewed unit's completion,
        read on its clock, is still in the future.
        """
        leader = sim.model.leader
        alive = list(sim.model.alive)
        units = sorted((u for u in alive if u != leader), key=_unit_number)
        skewed = skewed_unit(alive, leader)
        if skewed is None:
            _new_token(sim)
            return alive
        sim.clock_skew[skewed] = seconds
        sim.operation_seconds = operation_seconds
        others = [u for u in alive if u != skewed]
        if seconds < 0:
            resume = _paused(sim, [skewed])
            _new_token(sim)
            requested: set[str] = set()
            ended: set[str] = set()

            def watch(rec: HookRecord) -> None:
                requested.update(x.unit for x in rec.journal if x.event == "request")
                ended.update(x.unit for x in rec.journal if x.event == "end")
                if requested >= set(others) and 2 * len(ended) >= len(others):
                    resume(skewed)

            sim.watch(watch)
        else:
            later = units[units.index(skewed) + 1 :]
            resume = _paused(sim, later)
            _new_token(sim)

            def resume_all() -> None:
                for unit in later:
                    resume(unit)

            def watch(rec: HookRecord) -> None:
                # They ask while the skewed unit restarts or, when restarts take time,
                # 15 s after it finished: while the unit after it restarts, and the
                # skewed unit's completion time still lies ahead of the leader's clock.
                if not operation_seconds:
                    if any(x.unit == skewed and x.event == "begin" for x in rec.journal):
                        resume_all()
                elif any(x.unit == skewed and x.event == "end" for x in rec.journal):
                    sim.call_at(sim.now + 15.0, resume_all)

            sim.watch(watch)
        return alive

    return trigger


def _unit_number(unit: str) -> int:
    return int(unit.rsplit("/", 1)[1])


def skewed_unit(alive: list[str], leader: str | None) -> str | None:
    """The unit whose clock ``skew-behind``/``skew-ahead`` skew: the middle non-leader."""
    units = sorted((u for u in alive if u != leader), key=_unit_number)
    return units[len(units) // 2] if units else None


register(
    Scenario(
        "leader-mid-queue",
        "rolling-restart, but the leader's agent sees the new config only once half of "
        "the other units have requested: its own request queues in the middle",
        _leader_mid_queue,
    )
)
register(
    Scenario(
        "leader-error",
        "rolling-restart; from just after the first grant every hook of the leader fails "
        f"(its charm is broken) until it is fixed {LEADER_ERROR_S:.0f} s later",
        _leader_error(to_other=False),
    )
)
register(
    Scenario(
        "leader-error-queued",
        "rolling-restart; from just after the first grant to a unit other than the leader "
        "(requests are queued, a hand-off between units is due) every hook of the leader "
        f"fails until it is fixed {LEADER_ERROR_S:.0f} s later",
        _leader_error(to_other=True),
    )
)
register(
    Scenario(
        "leader-error-late",
        "rolling-restart; once the leader has restarted and has read every other unit's "
        "request, every hook of the leader fails (its charm is broken) until it is fixed "
        f"{LEADER_ERROR_S:.0f} s later",
        _leader_error_late,
    )
)
register(
    Scenario(
        "holder-removed",
        "rolling-restart; the first non-leader unit to begin its restart is removed "
        "(juju remove-unit) while it holds the lock",
        _holder_removed,
    )
)
register(
    Scenario(
        "skew-behind",
        "rolling-restart with one non-leader unit's clock an hour behind; its agent is "
        "down until every other unit has requested and half of them have restarted "
        "(process and fork runtimes)",
        _skewed(-3600.0),
    )
)
register(
    Scenario(
        "skew-ahead",
        "rolling-restart with one non-leader unit's clock 5 s ahead; the agents of the "
        "units numbered after it are down until it begins its restart, so they ask while "
        "it restarts (process and fork runtimes)",
        _skewed(5.0),
    )
)
register(
    Scenario(
        "skew-ahead-1m",
        "as skew-ahead, with the clock 60 s ahead (more than the 10 s a grant can wait "
        "for a leader's background worker) and restarts that take 30 s; the later units "
        "ask 15 s after the skewed unit's restart ended (process and fork runtimes)",
        _skewed(60.0, operation_seconds=30.0),
    )
)
