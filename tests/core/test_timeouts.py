"""Grant timeouts: the leader revokes an overdue holder, timed by its own clock alone."""

from __future__ import annotations

from charm_coordinator import protocol as p
from charm_coordinator.documents import AppDoc, UnitDoc

SPEC = p.LockSpec("restart", timeout=60)
SPECS = {"restart": SPEC}


def queued(n: int) -> tuple[AppDoc, dict[str, UnitDoc]]:
    docs = {f"app/{i}": p.request(UnitDoc(), "restart") for i in range(n)}
    return p.sequence(AppDoc(), "app/0", docs, p.StaticEvidence(), SPECS), docs


def test_timers_start_when_the_leader_first_sees_a_holder() -> None:
    app, docs = queued(3)
    ev = p.StaticEvidence.from_docs(docs)
    app2, timers = p.revoke_overdue(app, SPECS, ev, {}, now=1000.0)
    assert app2 == app
    assert timers == {"restart": {("app/0", 1): 1000.0}}
    app3, timers = p.revoke_overdue(app, SPECS, ev, timers, now=1059.0)
    assert app3 == app


def test_an_overdue_holder_is_revoked_and_the_next_unit_holds() -> None:
    app, docs = queued(3)
    ev = p.StaticEvidence.from_docs(docs)
    revoked, timers = p.revoke_overdue(app, SPECS, ev, {"restart": {("app/0", 1): 0.0}}, 61.0)
    assert [e.unit for e in revoked.queue("restart")] == ["app/1", "app/2"]
    assert revoked.revoked_id("restart", "app/0") == 1
    assert timers == {"restart": {}}
    assert p.standing(revoked, "app/1", docs["app/1"], SPEC, ev).state is p.State.HOLDING
    # The frozen holder, when it wakes, checks before it acts.
    assert p.standing(revoked, "app/0", docs["app/0"], SPEC, ev).state is p.State.REVOKED


def test_a_revoked_request_is_never_queued_again_and_is_forgotten_once_withdrawn() -> None:
    app, docs = queued(2)
    revoked = p.revoke(app, "restart", [app.queue("restart")[0]])
    ev = p.StaticEvidence.from_docs(docs)
    again = p.sequence(revoked, "app/1", docs, ev, SPECS)
    assert [e.unit for e in again.queue("restart")] == ["app/1"]
    # app/0 withdraws (released = id) and asks again with a new id.
    docs["app/0"] = p.request(p.release(docs["app/0"], "restart"), "restart")
    ev = p.StaticEvidence.from_docs(docs)
    after = p.sequence(revoked, "app/1", docs, ev, SPECS)
    assert [(e.unit, e.id) for e in after.queue("restart")] == [("app/1", 1), ("app/0", 2)]
    assert after.revoked == {}


def test_locks_without_timeout_are_never_revoked() -> None:
    spec = p.LockSpec("restart")
    app, docs = queued(2)
    out, timers = p.revoke_overdue(
        app, {"restart": spec}, p.StaticEvidence.from_docs(docs), {}, now=1e12
    )
    assert out == app and timers == {}
