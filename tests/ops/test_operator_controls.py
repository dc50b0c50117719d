"""Operator controls, policies and membership through the demo charm and real ops.testing.

One hook of one unit per test, State in and State out; what the controls do across
units is asserted in the simulator (tests/sim/test_policies_sim.py).
"""

from __future__ import annotations

import json

import pytest

from ops import testing
from tests.ops.helpers import adoc, context, granted_locks, read, udoc, unit

QUEUED = adoc(2, [[1, unit(1), 1, "x"], [2, unit(2), 1, "x"]])
PENDING = {"restart": {"id": 1, "released": 0}}


def peers(app=None, local=None, others=None) -> testing.PeerRelation:
    return testing.PeerRelation(
        "cluster",
        local_app_data=app or {},
        local_unit_data=local or {},
        peers_data=others if others is not None else {1: udoc(PENDING), 2: udoc(PENDING)},
    )


def emitted(ctx: testing.Context, name: str) -> list:
    return [e for e in ctx.emitted_events if type(e).__name__ == name]


def test_pause_on_the_leader_records_it_and_resume_clears_it() -> None:
    ctx = context(0)
    rel = peers(app=QUEUED)
    out = ctx.run(ctx.on.action("pause"), testing.State(leader=True, relations={rel}))
    assert read(out.get_relation(rel.id).local_app_data)["paused"] == ["restart"]
    rel = out.get_relation(rel.id)
    out = ctx.run(ctx.on.action("resume"), testing.State(leader=True, relations={rel}))
    assert "paused" not in read(out.get_relation(rel.id).local_app_data)


@pytest.mark.parametrize("action", ["pause", "resume", "force-release"])
def test_operator_actions_fail_clearly_off_the_leader_and_change_nothing(action: str) -> None:
    ctx = context(0)
    rel = peers(app=QUEUED)
    params = {"unit": unit(1)} if action == "force-release" else {}
    with pytest.raises(testing.ActionFailed, match="run it on the leader unit"):
        ctx.run(ctx.on.action(action, params=params), testing.State(relations={rel}))


def test_a_paused_unit_next_in_line_is_not_granted_until_resumed() -> None:
    ctx = context(1)
    paused = json.loads(QUEUED["coordinator"]) | {"paused": ["restart"]}
    rel = peers(
        app={"coordinator": json.dumps(paused)}, local=udoc(PENDING), others={2: udoc(PENDING)}
    )
    state = testing.State(relations={rel}, config={"restart-token": "t1"})
    out = ctx.run(ctx.on.relation_changed(rel, remote_unit=2), state)
    assert granted_locks(ctx) == []
    assert "paused" in out.unit_status.message
    rel = out.get_relation(rel.id)
    resumed = testing.PeerRelation(
        "cluster",
        id=rel.id,
        local_app_data=QUEUED,
        local_unit_data=dict(rel.local_unit_data),
        peers_data=dict(rel.peers_data),
    )
    ctx.run(ctx.on.relation_changed(resumed), testing.State(relations={resumed}))
    assert granted_locks(ctx) == ["restart"]


def test_force_release_revokes_the_holder_and_the_holder_is_fenced() -> None:
    leader = context(0)
    rel = peers(app=QUEUED)
    action = leader.on.action("force-release", params={"unit": unit(1)})
    out = leader.run(action, testing.State(leader=True, relations={rel}))
    app = read(out.get_relation(rel.id).local_app_data)
    assert app["revoked"] == {"restart": {unit(1): 1}}
    assert [e[1] for e in app["queues"]["restart"]] == [unit(2)]
    # The holder's next hook: revoked, not granted; it withdraws its request.
    holder = context(1)
    rel1 = testing.PeerRelation(
        "cluster",
        local_app_data=dict(out.get_relation(rel.id).local_app_data),
        local_unit_data=udoc(PENDING),
        peers_data={2: udoc(PENDING)},
    )
    out1 = holder.run(holder.on.relation_changed(rel1), testing.State(relations={rel1}))
    assert granted_locks(holder) == []
    assert len(emitted(holder, "LockRevokedEvent")) == 1
    assert read(out1.get_relation(rel1.id).local_unit_data)["locks"]["restart"]["released"] == 1


def test_force_release_of_a_unit_not_in_the_queue_names_who_is() -> None:
    ctx = context(0)
    rel = peers(app=QUEUED)
    action = ctx.on.action("force-release", params={"unit": unit(5)})
    with pytest.raises(testing.ActionFailed, match=r"coordinated-app/5 has no request.*queued: "):
        ctx.run(action, testing.State(leader=True, relations={rel}))


def test_concurrency_and_order_come_from_config() -> None:
    ctx = context(0)
    config = {"restart-concurrency": 3, "restart-order": "leader-last", "restart-per-zone": 1}
    with ctx(ctx.on.update_status(), testing.State(config=config)) as mgr:
        spec = mgr.charm.coordinator.specs["restart"]
        assert (spec.limit, spec.order, spec.per_zone) == (3, "leader-last", 1)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"restart-concurrency": 0}, "limit must be a whole number >= 1"),
        ({"restart-order": "random"}, "order must be one of fifo, priority, leader-last"),
        ({"restart-per-zone": -1}, "restart-per-zone must be 0 or more"),
        ({"restart-priorities": "1=high"}, "'1=high' is not UNIT-NUMBER=PRIORITY"),
    ],
)
def test_bad_config_blocks_with_the_reason_and_requests_nothing(config, message) -> None:
    ctx = context(3)
    rel = peers()
    state = testing.State(relations={rel}, config={"restart-token": "t1", **config})
    out = ctx.run(ctx.on.config_changed(), state)
    assert out.unit_status.name == "blocked" and message in out.unit_status.message
    assert read(out.get_relation(rel.id).local_unit_data) == {}


def test_priority_and_zone_are_published_with_the_request(monkeypatch) -> None:
    monkeypatch.setenv("JUJU_AVAILABILITY_ZONE", "az-2")
    ctx = context(3)
    rel = peers()
    config = {
        "restart-token": "t1",
        "restart-order": "priority",
        "restart-per-zone": 1,
        "restart-priorities": "1=4 3=7",
    }
    out = ctx.run(ctx.on.config_changed(), testing.State(relations={rel}, config=config))
    doc = read(out.get_relation(rel.id).local_unit_data)
    assert doc["zone"] == "az-2" and doc["locks"]["restart"]["priority"] == 7


def test_a_bad_zone_name_counts_the_unit_as_zoneless(monkeypatch) -> None:
    monkeypatch.setenv("JUJU_AVAILABILITY_ZONE", "zone with spaces")
    ctx = context(3)
    rel = peers()
    config = {"restart-token": "t1", "restart-per-zone": 1}
    out = ctx.run(ctx.on.config_changed(), testing.State(relations={rel}, config=config))
    assert "zone" not in read(out.get_relation(rel.id).local_unit_data)


def test_members_joining_and_leaving_are_events() -> None:
    ctx = context(0)
    rel = peers()
    ctx.run(ctx.on.relation_joined(rel, remote_unit=2), testing.State(relations={rel}))
    assert [e.member for e in emitted(ctx, "MemberEvent")] == [unit(2)]
    ctx = context(0)
    ctx.run(
        ctx.on.relation_departed(rel, remote_unit=2, departing_unit=2),
        testing.State(relations={rel}),
    )
    events = [(e.handle.kind, e.member) for e in emitted(ctx, "MemberEvent")]
    assert events == [("member_left", unit(2))]


def test_members_lists_this_unit_and_the_peers_it_sees_by_number() -> None:
    ctx = context(10)
    rel = testing.PeerRelation("cluster", peers_data={2: {}, 9: {}})
    with ctx(ctx.on.update_status(), testing.State(relations={rel})) as mgr:
        assert mgr.charm.coordinator.members == (unit(2), unit(9), unit(10))


def test_leadership_gained_then_lost_once_each() -> None:
    ctx = context(0)
    out = ctx.run(ctx.on.leader_elected(), testing.State(leader=True))
    assert [e.handle.kind for e in emitted(ctx, "LeadershipEvent")] == ["leadership_gained"]
    ctx = context(0)
    out = ctx.run(ctx.on.update_status(), out)
    assert emitted(ctx, "LeadershipEvent") == []
    ctx = context(0)
    out = ctx.run(
        ctx.on.update_status(), testing.State(leader=False, stored_states=out.stored_states)
    )
    assert [e.handle.kind for e in emitted(ctx, "LeadershipEvent")] == ["leadership_lost"]


def test_partition_splits_items_over_the_members_this_unit_sees() -> None:
    from charm_coordinator.hashring import assign

    items = [f"node-{i}" for i in range(60)]
    owned: dict[int, list[str]] = {}
    for me in (0, 1, 2):
        ctx = context(me)
        rel = testing.PeerRelation("cluster", peers_data={i: {} for i in (0, 1, 2) if i != me})
        with ctx(ctx.on.update_status(), testing.State(relations={rel})) as mgr:
            owned[me] = mgr.charm.coordinator.partition(items)
    assert sorted(i for mine in owned.values() for i in mine) == sorted(items)  # once each
    expected = assign(items, [unit(0), unit(1), unit(2)])
    assert owned[1] == [i for i in items if expected[i] == (unit(1),)]
    assert all(owned.values())
