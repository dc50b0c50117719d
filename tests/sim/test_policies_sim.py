"""The demo charm's ordering policies and operator controls, run in the simulator.

Each test runs one of the scenarios in ``jujusim.policy_scenarios`` on the demo charm
(direct runtime: real ops dispatch in-process) and asserts, from the workload's journal,
what the policy promises. The invariant checker covers exclusion (per zone too).
"""

from __future__ import annotations

import json

import pytest
from simkit import ROOT

from jujusim.policy_scenarios import FORCE_AFTER_S, PAUSE_S, TIMEOUT_S
from jujusim.runner import RunResult, run_scenario


def run(scenario: str, units: int = 5, seed: int = 0, **kw: object) -> RunResult:
    res = run_scenario(
        str(ROOT), units=units, scenario=scenario, runtime="direct", seed=seed, **kw
    )
    assert res.verdict.violations == (), res.verdict.violations
    assert res.verdict.completed
    return res


def lines(res: RunResult, event: str) -> list[tuple[float, object]]:
    """(hook start, journal line) for every ``event`` line after the trigger, in order."""
    return sorted(
        ((rec.start, line) for rec in res.records for line in rec.journal if line.event == event),
        key=lambda t: t[0],
    )


def order(res: RunResult) -> list[str]:
    return [line.unit for _, line in lines(res, "begin")]  # type: ignore[attr-defined]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_zone_restart_runs_units_of_different_zones_together_never_two_of_one(seed: int) -> None:
    res = run("zone-restart", units=9, seed=seed)
    zones = {line.unit: dict(line.extra)["zone"] for _, line in lines(res, "begin")}  # type: ignore[attr-defined]
    assert zones == {f"coordinated-app/{i}": f"zone-{i % 3 + 1}" for i in range(9)}
    # Overlaps happened (so the per-zone rule was exercised) and the checker found none
    # within one zone; the same run without the rule would be allowed 3 in one zone.
    assert res.verdict.max_concurrent >= 2


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_priority_restart_queues_the_best_request_the_leader_has_heard_of(seed: int) -> None:
    """The promise, checked at every queue write: no request the leader had heard of
    (its relation-changed for that unit ran after the request) beats the one queued.

    Requests it has not heard of cannot be ordered; Juju delivers one peer's change
    per hook, lowest unit name first, so at first the leader has heard of few.
    """
    committed: dict[str, float] = {}
    heard: set[str] = set()
    queued: set[str] = set()
    checked: list[str] = []
    prio: dict[str, int] = {}

    done: set[int] = set()

    def watch(sim, _phase) -> None:
        # called at each commit; the committed record is the one newly ended
        (rec,) = [r for r in sim.records[-64:] if r.end >= 0 and r.index not in done]
        done.add(rec.index)
        if not rec.ok:
            return
        for line in rec.journal:
            if line.event == "request":
                committed[line.unit] = rec.end
                prio[line.unit] = dict(line.extra)["priority"]
        about = rec.hook.remote_unit
        if rec.leader and about in committed and rec.start >= committed[about]:
            heard.add(about)
        (rel,) = sim.model.relations.values()
        doc = json.loads(rel.app_bag.get("coordinator") or "{}")
        new = [e[1] for e in doc.get("queues", {}).get("restart", []) if e[1] not in queued]
        for unit in new:
            rivals = heard - queued - {unit, rec.unit}
            assert all(prio[unit] >= prio[r] for r in rivals), (unit, prio[unit], rivals)
            queued.add(unit)
            checked.append(unit)

    res = run("priority-restart", units=7, seed=seed, progress=watch)
    assert len(checked) == 7
    assert len(order(res)) == 7


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_leader_last_restart_restarts_the_leader_after_everyone(seed: int) -> None:
    res = run("leader-last-restart", seed=seed)
    assert res.leader_changes == 0
    assert order(res)[-1] == res.final_leader
    assert len(order(res)) == 5


def test_pause_stops_new_restarts_until_resume() -> None:
    res = run("pause-resume", units=5)
    actions = {rec.hook.action.name: rec for rec in res.records if rec.hook.action is not None}
    paused, resumed = actions["pause"], actions["resume"]
    assert paused.ok and resumed.ok
    assert resumed.start - paused.start >= PAUSE_S / 2
    during = [start for start, _ in lines(res, "begin") if paused.end <= start < resumed.end]
    assert during == []
    after = [start for start, _ in lines(res, "begin") if start >= resumed.end]
    assert after, "nothing was left to resume: the pause came too late to show anything"


def test_stuck_holder_is_force_released_fenced_and_the_others_go_on() -> None:
    res = run("stuck-holder", units=5)
    revoked = lines(res, "revoked")
    assert len(revoked) == 1
    stuck = revoked[0][1].unit  # type: ignore[attr-defined]
    forced = next(
        rec
        for rec in res.records
        if rec.hook.action is not None and rec.hook.action.name == "force-release"
    )
    assert forced.ok and forced.leader
    stuck_began = min(start for start, line in lines(res, "begin") if line.unit == stuck)  # type: ignore[attr-defined]
    # Nobody restarted while the stuck unit held the lock, until the force-release...
    others = [(s, line.unit) for s, line in lines(res, "begin") if line.unit != stuck]  # type: ignore[attr-defined]
    assert not [s for s, _ in others if stuck_began < s < forced.end]
    assert forced.start - stuck_began >= FORCE_AFTER_S - 1
    # ...then everyone else did, and the stuck unit never restarted on its revoked grant.
    assert len({u for s, u in others if s > forced.end}) >= 1
    assert [s for s, line in lines(res, "begin") if line.unit == stuck and s > stuck_began] == []  # type: ignore[attr-defined]


def test_stuck_holder_timeout_revokes_within_the_timeout_and_an_update_status() -> None:
    """Real processes: the process runtime's clocks follow logical time, so the
    leader's timer runs as it would in a model."""
    res = run_scenario(
        str(ROOT), units=3, scenario="stuck-holder-timeout", runtime="process", seed=0
    )
    assert res.verdict.violations == () and res.verdict.completed
    (revoked,) = lines(res, "revoked")
    stuck = revoked[1].unit  # type: ignore[attr-defined]
    began = [(s, line.unit) for s, line in lines(res, "begin")]  # type: ignore[attr-defined]
    stuck_began = min(s for s, u in began if u == stuck)
    nxt = min(s for s, u in began if u != stuck and s > stuck_began)
    # the wait after the holder froze: the timeout, then the leader's next hook (at
    # worst its update-status, every 300 s), then a round
    assert TIMEOUT_S <= nxt - stuck_began <= TIMEOUT_S + 300 + 30
    assert [s for s, u in began if u == stuck and s > stuck_began] == []
