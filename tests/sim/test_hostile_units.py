"""Whole units with garbage in their peer databag, in the simulator.

A buggy revision (modelled by the engine's ``poison``: the garbage is committed as if
the charm had written it and exited 0) leaves one unit's coordinator key unreadable.
The honest units must finish their restarts, no exception may reach a hook, and the
bad unit must be named in juju-log and in the status message the library offers.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest
from simkit import CHARMS

from jujusim.charmspec import load_charm_spec
from jujusim.engine import SimConfig, Simulator
from jujusim.faults import parse_faults
from jujusim.hostile import HOSTILE_KEY, PAYLOADS, payload
from jujusim.inprocess import InProcessRuntime
from jujusim.invariants import check, operations
from jujusim.runner import run_scenario

CAMPAIGN = str(CHARMS / "campaign")

class Watch:
    """Everything the units logged and showed as status, per unit."""

    def __init__(self, sim: Simulator) -> None:
        self.logs: list[tuple[str, str, str]] = []
        self.statuses: list[tuple[str, str, str]] = []
        log, status = sim.juju_log, sim.status_set

        def juju_log(unit: str, level: str, message: str) -> None:
            self.logs.append((unit, level, message))
            log(unit, level, message)

        def status_set(unit: str, st: str, message: str, *, application: bool) -> None:
            if not application:
                self.statuses.append((unit, st, message))
            status(unit, st, message, application=application)

        sim.juju_log = juju_log  # type: ignore[method-assign]
        sim.status_set = status_set  # type: ignore[method-assign]

    def named_in_logs(self, bad: str) -> set[str]:
        return {u for u, _, m in self.logs if u != bad and bad in m}

    def named_in_status(self, bad: str) -> set[str]:
        needle = f"bad coordinator data from {bad}"
        return {u for u, _, m in self.statuses if u != bad and needle in m}


def _sim(tmp_path: pathlib.Path, units: int, seed: int, **cfg: Any) -> tuple[Simulator, Watch]:
    spec = load_charm_spec(CAMPAIGN)
    sim = Simulator(
        spec, InProcessRuntime(spec.charm_dir), SimConfig(seed=seed), workdir=str(tmp_path)
    )
    sim.model.config.update(cfg)
    watch = Watch(sim)
    sim.deploy(units)
    assert sim.run_until_quiet(20_000) == "quiet"
    return sim, watch


def _restart(sim: Simulator, honest: list[str], bad: str) -> tuple[str, Any]:
    sim.mark_trigger()
    sim.set_config({"restart-token": "t1"})
    trigger = sim.trigger_time

    def done() -> bool:
        ops = operations(sim.records, trigger)
        finished = {o.unit for o in ops if o.end is not None}
        return all(u in finished for u in honest)

    start = len(sim.records)
    end = sim.run_until_quiet(600, done)
    verdict = check(
        sim.records,
        since=trigger,
        required_units=honest,
        removed_units=[bad],
        phase_end=end,
        hooks_run=len(sim.records) - start,
    )
    return end, verdict


def _no_exception_reached_a_hook(sim: Simulator) -> None:
    failed = [r for r in sim.records if not r.ok and not r.error.startswith("injected")]
    assert failed == [], [(r.unit, r.hook.name, r.error[-400:]) for r in failed]


@pytest.mark.parametrize(
    ("who", "name"),
    [("minion", n) for n in PAYLOADS]
    # regression (found here, fixed in 66092e7): a leader whose own doc is garbage
    # queued its own request, which it could never publish nor release; the whole
    # application stalled (seed 3, 3 units).
    + [("leader", n) for n in ("not-json", "null", "unknown-version", "big-16mib")],
)
def test_honest_units_restart_around_a_unit_with_garbage(tmp_path, name, who):
    sim, watch = _sim(tmp_path, 3, seed=3)
    leader = sim.model.leader
    assert leader is not None
    bad = leader if who == "leader" else next(u for u in sim.model.alive if u != leader)
    other = next(u for u in sim.model.alive if u != bad)
    sim.poison(bad, HOSTILE_KEY, payload(name, bad, other), name)
    honest = [u for u in sim.model.alive if u != bad]
    end, verdict = _restart(sim, honest, bad)
    assert end == "quiet", (name, end, verdict.violations)
    assert verdict.violations == (), verdict.violations
    done = {o.unit for o in verdict.operations if o.end is not None}
    assert set(honest) <= done
    assert bad not in done  # its garbage is never a grant
    _no_exception_reached_a_hook(sim)
    assert watch.named_in_logs(bad), f"no honest unit logged {bad} ({name})"
    assert watch.named_in_status(bad), f"no honest unit's status names {bad} ({name})"


def test_the_bad_unit_itself_says_so_and_does_not_crash(tmp_path):
    sim, watch = _sim(tmp_path, 3, seed=5)
    bad = next(u for u in sim.model.alive if u != sim.model.leader)
    sim.poison(bad, HOSTILE_KEY, payload("unknown-version", bad, bad), "unknown-version")
    honest = [u for u in sim.model.alive if u != bad]
    end, verdict = _restart(sim, honest, bad)
    assert end == "quiet" and verdict.violations == ()
    _no_exception_reached_a_hook(sim)
    own = [m for u, _, m in watch.statuses if u == bad]
    assert any(f"bad coordinator data from {bad}" in m for m in own), own


def test_garbage_stays_bounded_in_the_model(tmp_path):
    """16 MiB of garbage is read, rejected by size, and never copied into the queue."""
    sim, _ = _sim(tmp_path, 3, seed=7)
    bad = next(u for u in sim.model.alive if u != sim.model.leader)
    sim.poison(bad, HOSTILE_KEY, payload("big-16mib", bad, bad), "big-16mib")
    honest = [u for u in sim.model.alive if u != bad]
    end, verdict = _restart(sim, honest, bad)
    assert end == "quiet" and verdict.violations == ()
    app = sim.model.relations[0].app_bag.get(HOSTILE_KEY, "")
    assert app, "the honest units' requests were queued, so the app doc exists"
    assert len(app) < 4096
    assert bad not in json.dumps(json.loads(app).get("queues", {}))


def test_garbage_written_by_a_queued_unit_does_not_stall_the_others(tmp_path):
    """Regression (seed 11, 3 units): the queued unit's entry blocked everyone behind it;
    the leader now revokes the entries of a unit whose bag it finds malformed."""
    sim, _ = _sim(tmp_path, 3, seed=11)
    sim.mark_trigger()
    sim.set_config({"restart-token": "t1"})
    # Run until some non-leader is queued but not yet granted, then poison it.
    leader = sim.model.leader
    bad = None
    for _ in range(3_000):
        app = sim.model.relations[0].app_bag.get(HOSTILE_KEY)
        if app:
            queue = json.loads(app).get("queues", {}).get("restart", [])
            if len(queue) >= 2 and queue[0][1] != leader:
                bad = queue[0][1]
                break
        assert sim.step()
    assert bad is not None
    sim.poison(bad, HOSTILE_KEY, payload("not-json", bad, bad), "not-json")
    honest = [u for u in sim.model.alive if u != bad]
    trigger = sim.trigger_time

    def done() -> bool:
        finished = {o.unit for o in operations(sim.records, trigger) if o.end is not None}
        return all(u in finished for u in honest)

    assert sim.run_until_quiet(400, done) == "quiet"


@pytest.mark.parametrize(
    "seed",
    [
        1,
        2,
        # regression: python -m jujusim run tests/charms/campaign --units 5
        #   --runtime inprocess --seed 3 --faults all,hostile=1 stalled (3 lost requests)
        #   until the leader revoked entries of units with malformed bags
        3,
    ],
)
def test_hostile_fault_in_a_faulty_run(seed):
    """The ``hostile`` fault among the others: honest units still all restart."""
    result = run_scenario(
        CAMPAIGN,
        units=5,
        seed=seed,
        faults=parse_faults("all,hostile=1"),
    )
    assert result.hostile_units, "the fault should have struck"
    assert result.violations == [], result.violations


def test_malicious_unit_cannot_jump_the_queue(tmp_path):
    """A unit that rewrites its own doc to a huge request id, forged fields and all,
    after the others are queued, is served after them, and the lock is never shared."""
    sim, _ = _sim(tmp_path, 4, seed=13)
    leader = sim.model.leader
    sim.mark_trigger()
    trigger = sim.trigger_time
    attacker = next(u for u in sorted(sim.model.alive) if u != leader)
    # keep the attacker quiet until the others are queued
    sim.set_config({"restart-token": "t1"})
    queued: list[str] = []
    for _ in range(3_000):
        app = sim.model.relations[0].app_bag.get(HOSTILE_KEY)
        queue = json.loads(app).get("queues", {}).get("restart", []) if app else []
        queued = [e[1] for e in queue]
        if [u for u in queued if u != attacker]:
            break
        assert sim.step()
    else:
        pytest.fail("no honest unit was ever queued")
    ahead = [u for u in queued if u != attacker]
    forged = json.dumps({"v": 1, "locks": {"restart": {"id": 10**9, "released": 0}}, "ack": 10**9})
    sim.poison(attacker, HOSTILE_KEY, forged, "forged-request")
    sim.hostile.remove(attacker)  # a valid doc: it must be served like anyone else
    end = sim.run_until_quiet(800)
    assert end == "quiet"
    verdict = check(
        sim.records,
        since=trigger,
        required_units=list(sim.model.alive),
        removed_units=[],
        phase_end=end,
        hooks_run=0,
    )
    assert verdict.violations == (), verdict.violations
    ops = {o.unit: o for o in verdict.operations if o.end is not None}
    for unit in ahead:
        assert ops[attacker].start >= ops[unit].end, (attacker, unit)
