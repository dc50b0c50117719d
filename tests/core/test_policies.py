"""Ordering policies, zone-aware holding, pause/resume and forced release, by example.

The property test in test_protocol_properties.py checks that none of these can break
the holder rule under stale views; these examples pin down what each one does.
"""

from __future__ import annotations

import pytest

from charm_coordinator import protocol as p
from charm_coordinator.documents import AppDoc, UnitDoc

LOCK = "restart"
LEADER = "app/0"


def docs(*units: int, priority: dict[int, int] | None = None, zone: dict[int, str] | None = None):
    priority = priority or {}
    zone = zone or {}
    return {
        f"app/{u}": p.request(UnitDoc(zone=zone.get(u)), LOCK, priority=priority.get(u, 0))
        for u in units
    }


def lead(app: AppDoc, cands: dict[str, UnitDoc], spec: p.LockSpec, **kw) -> AppDoc:
    peers = kw.pop("peers", [f"app/{i}" for i in range(6)])
    ev = kw.pop("evidence", p.StaticEvidence.from_docs(cands))
    return p.sequence(app, LEADER, cands, ev, {LOCK: spec}, peers=peers, **kw)


def queued(app: AppDoc) -> list[str]:
    return [e.unit for e in app.queue(LOCK)]


def holders(app: AppDoc, spec: p.LockSpec, cands: dict[str, UnitDoc]) -> list[str]:
    return [e.unit for e in p.holders(app, spec, p.StaticEvidence.from_docs(cands))]


def released(cands: dict[str, UnitDoc], unit: str) -> dict[str, UnitDoc]:
    return {**cands, unit: p.release(cands[unit], LOCK)}


def test_fifo_queues_everything_it_sees_at_once() -> None:
    spec = p.LockSpec(LOCK)
    app = lead(AppDoc(), docs(3, 1, 2), spec)
    assert queued(app) == ["app/1", "app/2", "app/3"]


def test_priority_queues_the_best_holder_and_one_on_deck_then_the_next_best() -> None:
    spec = p.LockSpec(LOCK, order="priority")
    cands = docs(1, 2, 3, 4, priority={1: 0, 2: 5, 3: 1, 4: 9})
    app = lead(AppDoc(), cands, spec)
    assert queued(app) == ["app/4", "app/2"]  # 4 holds, 2 on deck; 3 and 1 wait unqueued
    assert holders(app, spec, cands) == ["app/4"]
    # A better request seen later still goes before the ones not yet queued.
    cands = released({**cands, **docs(5, priority={5: 3})}, "app/4")
    app = lead(app, cands, spec)
    assert queued(app) == ["app/2", "app/5"]
    cands = released(cands, "app/2")
    app = lead(app, cands, spec)
    assert queued(app) == ["app/5", "app/3"]


def test_priority_with_a_limit_queues_every_holder_plus_one() -> None:
    spec = p.LockSpec(LOCK, limit=2, order="priority")
    cands = docs(1, 2, 3, 4, priority={1: 1, 2: 2, 3: 3, 4: 4})
    app = lead(AppDoc(), cands, spec)
    assert queued(app) == ["app/4", "app/3", "app/2"]
    assert holders(app, spec, cands) == ["app/4", "app/3"]


def test_leader_last_queues_the_leader_once_nobody_else_is_queued_or_waiting() -> None:
    spec = p.LockSpec(LOCK, order="leader-last")
    cands = docs(0, 1, 2)
    app = lead(AppDoc(), cands, spec)
    assert queued(app) == ["app/1", "app/2"]
    cands = released(cands, "app/1")
    assert queued(lead(app, cands, spec)) == ["app/1", "app/2"]  # app/2 still to go
    cands = released(cands, "app/2")
    app = lead(app, cands, spec)
    assert queued(app) == [LEADER]  # the dead entries are pruned with the append
    assert holders(app, spec, cands) == [LEADER]
    # not in a hook that only reports the leader's own write (peers' bags are stale)
    assert queued(lead(AppDoc(), docs(0), spec, hold_own=[LOCK])) == []


def test_leader_last_holds_back_a_fresh_request_for_a_round_and_asks_for_a_wake() -> None:
    spec = p.LockSpec(LOCK, order="leader-last")
    cands = docs(0)
    app = lead(AppDoc(seq=7), cands, spec, fresh=[LOCK])
    assert queued(app) == []
    assert app.wake is not None and app.wake.unit == "app/1" and app.wake.token == 8
    # Next hook (the ack woke it), nobody else asked: the leader queues itself.
    app = lead(app, cands, spec)
    assert queued(app) == [LEADER]
    assert app.queue(LOCK)[0].seq == 9  # the token's number is never reused


def test_leader_last_alone_in_the_application_does_not_wait() -> None:
    spec = p.LockSpec(LOCK, order="leader-last")
    app = lead(AppDoc(), docs(0), spec, fresh=[LOCK], peers=[LEADER])
    assert queued(app) == [LEADER]


def test_zone_aware_holds_at_most_one_per_zone_and_skips_a_blocked_zone() -> None:
    spec = p.LockSpec(LOCK, limit=2, per_zone=1)
    cands = docs(1, 2, 3, 4, zone={1: "a", 2: "a", 3: "b", 4: "c"})
    app = lead(AppDoc(), cands, spec)
    assert [e.zone for e in app.queue(LOCK)] == ["a", "a", "b", "c"]
    # app/2 waits for its zone; app/3 in zone b goes past it; the limit stops app/4.
    assert holders(app, spec, cands) == ["app/1", "app/3"]
    s = p.standing(app, "app/2", cands["app/2"], spec, p.StaticEvidence.from_docs(cands))
    assert s.state is p.State.WAITING and s.blockers == ("app/1",)
    cands = released(cands, "app/1")
    assert holders(app, spec, cands) == ["app/2", "app/3"]


def test_units_without_a_zone_share_one_unknown_zone() -> None:
    spec = p.LockSpec(LOCK, limit=3, per_zone=1)
    cands = docs(1, 2, 3, zone={3: "b"})
    app = lead(AppDoc(), cands, spec)
    assert holders(app, spec, cands) == ["app/1", "app/3"]


def test_zone_is_only_recorded_for_zone_aware_locks() -> None:
    app = lead(AppDoc(), docs(1, zone={1: "a"}), p.LockSpec(LOCK))
    assert app.queue(LOCK)[0].zone is None


def test_pause_stops_new_holders_not_started_ones_and_resume_lets_them_go() -> None:
    spec = p.LockSpec(LOCK)
    cands = docs(1, 2)
    app = p.pause(lead(AppDoc(), cands, spec), LOCK)
    ev = p.StaticEvidence.from_docs(cands)
    assert p.standing(app, "app/1", cands["app/1"], spec, ev).state is p.State.PAUSED
    started = p.standing(app, "app/1", cands["app/1"], spec, ev, started=True)
    assert started.state is p.State.HOLDING
    # a paused would-be holder still blocks those behind it
    assert p.standing(app, "app/2", cands["app/2"], spec, ev).state is p.State.WAITING
    app = p.resume(app, LOCK)
    assert p.standing(app, "app/1", cands["app/1"], spec, ev).state is p.State.HOLDING
    assert p.resume(app, LOCK) is app and p.pause(p.pause(app, LOCK), LOCK).paused == {LOCK}


def test_force_release_fences_the_holder_and_moves_the_queue_up() -> None:
    spec = p.LockSpec(LOCK)
    cands = docs(1, 2)
    app = lead(AppDoc(), cands, spec)
    forced = p.force_release(app, LOCK, "app/1")
    ev = p.StaticEvidence.from_docs(cands)
    assert p.standing(forced, "app/1", cands["app/1"], spec, ev).state is p.State.REVOKED
    assert p.standing(forced, "app/2", cands["app/2"], spec, ev).state is p.State.HOLDING
    # the revoked request is never queued again; a new request is
    assert queued(lead(forced, cands, spec)) == ["app/2"]
    again = {**cands, "app/1": p.request(p.release(cands["app/1"], LOCK), LOCK)}
    assert queued(lead(forced, again, spec)) == ["app/2", "app/1"]
    assert p.force_release(app, LOCK, "app/5") is app


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"order": "random"}, "order must be one of fifo, priority, leader-last"),
        ({"per_zone": 0}, "per_zone must be None or a whole number >= 1"),
    ],
)
def test_bad_policies_are_refused_with_the_reason(kw: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        p.LockSpec(LOCK, **kw)  # type: ignore[arg-type]
