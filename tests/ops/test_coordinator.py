"""The ops API, driven through real ops.testing (Scenario) with the demo charm.

Each test is one hook of one unit: a State in, a State out, asserting the databags
written and the events emitted. Multi-unit behaviour is the simulator's job.
"""

from __future__ import annotations

import dataclasses
import json

import pytest

from charm_coordinator import framework
from ops import testing
from tests.ops.helpers import adoc, context, granted_locks, read, udoc, unit


def peers(
    local: dict[str, str] | None = None,
    app: dict[str, str] | None = None,
    others: dict[int, dict[str, str]] | None = None,
) -> testing.PeerRelation:
    return testing.PeerRelation(
        "cluster",
        local_unit_data=local or {},
        local_app_data=app or {},
        peers_data=others if others is not None else {1: {}, 2: {}},
    )


def test_non_leader_request_is_published_in_its_own_bag_only() -> None:
    ctx = context(unit_id=1)
    rel = peers(others={0: {}, 2: {}})
    state = testing.State(leader=False, relations={rel}, config={"restart-token": "t1"})
    out = ctx.run(ctx.on.config_changed(), state)
    mine = read(out.get_relation(rel.id).local_unit_data)
    assert mine["locks"]["restart"]["id"] == 1
    assert mine["locks"]["restart"]["released"] == 0
    assert out.get_relation(rel.id).local_app_data == {}
    assert granted_locks(ctx) == []


def test_leader_queues_its_own_request_and_asks_a_peer_to_wake_it() -> None:
    ctx = context(unit_id=0)
    rel = peers()
    state = testing.State(leader=True, relations={rel}, config={"restart-token": "t1"})
    out = ctx.run(ctx.on.config_changed(), state)
    app = read(out.get_relation(rel.id).local_app_data)
    assert app["queues"]["restart"] == [[1, unit(0), 1, "x"]]
    assert app["wake"] == [unit(1), 1]
    # Rule 1: the leader does not act on a queue it has not committed.
    assert granted_locks(ctx) == []


def test_leader_appends_a_peer_request_seen_in_relation_changed() -> None:
    ctx = context(unit_id=0)
    rel = peers(others={1: udoc({"restart": {"id": 3, "released": 2}}), 2: {}})
    state = testing.State(leader=True, relations={rel})
    out = ctx.run(ctx.on.relation_changed(rel, remote_unit=1), state)
    app = read(out.get_relation(rel.id).local_app_data)
    assert app["seq"] == 1
    assert app["queues"]["restart"] == [[1, unit(1), 3, "x"]]
    assert "wake" not in app


def test_unit_at_the_head_is_granted_restarts_and_releases_in_the_same_hook() -> None:
    ctx = context(unit_id=1)
    rel = peers(
        local=udoc({"restart": {"id": 1, "released": 0}}),
        app=adoc(1, [[1, unit(1), 1, "x"]]),
        others={0: {}, 2: {}},
    )
    state = testing.State(leader=False, relations={rel}, config={"restart-token": "t1"})
    out = ctx.run(ctx.on.relation_changed(rel, remote_unit=0), state)
    assert granted_locks(ctx) == ["restart"]
    mine = read(out.get_relation(rel.id).local_unit_data)
    assert mine["locks"]["restart"] == {"id": 1, "released": 1}
    stored = next(s for s in out.stored_states if s.owner_path == "CoordinatedAppCharm")
    assert stored.content["applied_token"] == "t1"


def test_unit_behind_a_live_holder_waits_and_says_why() -> None:
    ctx = context(unit_id=2)
    rel = peers(
        local=udoc({"restart": {"id": 1, "released": 0}}),
        app=adoc(2, [[1, unit(1), 1, "x"], [2, unit(2), 1, "x"]]),
        others={0: {}, 1: udoc({"restart": {"id": 1, "released": 0}})},
    )
    state = testing.State(leader=False, relations={rel})
    out = ctx.run(ctx.on.relation_changed(rel, remote_unit=0), state)
    assert granted_locks(ctx) == []
    assert out.unit_status == testing.MaintenanceStatus(
        f"restart: 2nd in queue, waiting for {unit(1)}"
    )


def test_handoff_needs_no_leader_the_next_unit_sees_the_release() -> None:
    ctx = context(unit_id=2)
    rel = peers(
        local=udoc({"restart": {"id": 1, "released": 0}}),
        app=adoc(2, [[1, unit(1), 1, "x"], [2, unit(2), 1, "x"]]),
        others={0: {}, 1: udoc({"restart": {"id": 1, "released": 1}})},
    )
    state = testing.State(leader=False, relations={rel})
    ctx.run(ctx.on.relation_changed(rel, remote_unit=1), state)
    assert granted_locks(ctx) == ["restart"]


def test_absence_is_not_evidence_a_queued_peer_without_a_visible_request_blocks() -> None:
    ctx = context(unit_id=2)
    rel = peers(
        local=udoc({"restart": {"id": 1, "released": 0}}),
        app=adoc(2, [[1, unit(1), 1, "x"], [2, unit(2), 1, "x"]]),
        others={0: {}, 1: {}},  # this unit's cache of unit 1 predates its request
    )
    ctx.run(ctx.on.relation_changed(rel, remote_unit=0), testing.State(relations={rel}))
    assert granted_locks(ctx) == []


def test_request_before_the_relation_exists_is_kept_and_published_later() -> None:
    ctx = context(unit_id=1)
    state = testing.State(leader=False, config={"restart-token": "t1"})
    out = ctx.run(ctx.on.config_changed(), state)
    rel = peers(others={0: {}})
    out2 = ctx.run(ctx.on.relation_created(rel), dataclasses.replace(out, relations={rel}))
    mine = read(out2.get_relation(rel.id).local_unit_data)
    assert mine["locks"]["restart"]["id"] == 1


def test_new_leader_continues_the_queue_and_queues_requests_it_finds() -> None:
    ctx = context(unit_id=2)
    rel = peers(
        local={},
        app=adoc(4, [[4, unit(0), 2, "x"]]),
        others={
            0: udoc({"restart": {"id": 2, "released": 1}}),
            1: udoc({"restart": {"id": 1, "released": 0}}),
        },
    )
    out = ctx.run(ctx.on.leader_elected(), testing.State(leader=True, relations={rel}))
    app = read(out.get_relation(rel.id).local_app_data)
    assert app["seq"] == 5
    assert app["queues"]["restart"] == [[4, unit(0), 2, "x"], [5, unit(1), 1, "x"]]


def test_departure_of_the_holder_frees_the_next_unit() -> None:
    ctx = context(unit_id=2)
    rel = peers(
        local=udoc({"restart": {"id": 1, "released": 0}}),
        app=adoc(2, [[1, unit(1), 1, "x"], [2, unit(2), 1, "x"]]),
        others={0: {}, 1: udoc({"restart": {"id": 1, "released": 0}})},
    )
    ctx.run(
        ctx.on.relation_departed(rel, remote_unit=1, departing_unit=1),
        testing.State(relations={rel}),
    )
    assert granted_locks(ctx) == ["restart"]


def test_departing_unit_withdraws_its_requests() -> None:
    ctx = context(unit_id=1)
    rel = peers(local=udoc({"restart": {"id": 1, "released": 0}}), others={0: {}})
    out = ctx.run(
        ctx.on.relation_departed(rel, remote_unit=0, departing_unit=1),
        testing.State(relations={rel}),
    )
    assert read(out.get_relation(rel.id).local_unit_data)["locks"]["restart"]["released"] == 1


def test_a_failed_hook_commits_nothing_and_the_retry_is_granted_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ctx = context(unit_id=1)
    rel = peers(
        local=udoc({"restart": {"id": 1, "released": 0}}),
        app=adoc(1, [[1, unit(1), 1, "x"]]),
        others={0: {}},
    )
    state = testing.State(relations={rel}, config={"restart-token": "t1"})

    import charm

    def boom(unit: str, event: str, **fields: object) -> None:
        if event == "end":
            raise RuntimeError("restart failed")

    monkeypatch.setattr(charm, "journal", boom)
    with pytest.raises(testing.errors.UncaughtCharmError):
        ctx.run(ctx.on.relation_changed(rel, remote_unit=0), state)
    monkeypatch.undo()
    # Juju discards everything from the failed hook: the retry runs on the same state.
    retry = context(unit_id=1)
    out = retry.run(retry.on.relation_changed(rel, remote_unit=0), state)
    assert granted_locks(retry) == ["restart"]
    assert read(out.get_relation(rel.id).local_unit_data)["locks"]["restart"]["released"] == 1


def test_malformed_peer_data_is_named_in_the_log_and_never_queued() -> None:
    ctx = context(unit_id=0)
    rel = peers(others={1: {"coordinator": "{not json"}, 2: {}})
    out = ctx.run(
        ctx.on.relation_changed(rel, remote_unit=1), testing.State(leader=True, relations={rel})
    )
    assert read(out.get_relation(rel.id).local_app_data) == {}
    logs = [line.message for line in ctx.juju_log if line.level == "WARNING"]
    assert any(unit(1) in m and "malformed" in m for m in logs), logs
    assert "bad coordinator data from coordinated-app/1" in out.unit_status.message


def test_malformed_data_ahead_blocks_conservatively_without_crashing() -> None:
    ctx = context(unit_id=2)
    rel = peers(
        local=udoc({"restart": {"id": 1, "released": 0}}),
        app=adoc(2, [[1, unit(1), 1, "x"], [2, unit(2), 1, "x"]]),
        others={0: {}, 1: {"coordinator": '{"v": 99}'}},
    )
    out = ctx.run(ctx.on.relation_changed(rel, remote_unit=1), testing.State(relations={rel}))
    assert granted_locks(ctx) == []
    assert "format version 99" in out.unit_status.message


def test_malformed_app_doc_is_not_overwritten_by_the_leader() -> None:
    ctx = context(unit_id=0)
    rel = peers(
        app={"coordinator": "[1, 2"}, others={1: udoc({"restart": {"id": 1, "released": 0}})}
    )
    out = ctx.run(
        ctx.on.relation_changed(rel, remote_unit=1), testing.State(leader=True, relations={rel})
    )
    assert out.get_relation(rel.id).local_app_data == {"coordinator": "[1, 2"}


def test_wake_target_acknowledges_so_the_leader_runs_a_hook() -> None:
    ctx = context(unit_id=1)
    rel = peers(app=adoc(1, [[1, unit(0), 1, "x"]], wake=[unit(1), 1]), others={0: {}})
    out = ctx.run(ctx.on.relation_changed(rel, remote_unit=0), testing.State(relations={rel}))
    assert read(out.get_relation(rel.id).local_unit_data)["ack"] == 1


def test_leader_with_a_stale_lease_does_not_write_the_queue(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(framework, "LEASE_SAFE_SECONDS", -1.0)
    ctx = context(unit_id=0)
    rel = peers(others={1: udoc({"restart": {"id": 1, "released": 0}})})
    out = ctx.run(
        ctx.on.relation_changed(rel, remote_unit=1), testing.State(leader=True, relations={rel})
    )
    assert out.get_relation(rel.id).local_app_data == {}


def test_lock_status_action_reports_queue_and_holders() -> None:
    ctx = context(unit_id=0)
    rel = peers(
        app=adoc(2, [[1, unit(1), 1, "x"], [2, unit(2), 1, "x"]]),
        others={
            1: udoc({"restart": {"id": 1, "released": 0}}),
            2: udoc({"restart": {"id": 1, "released": 0}}),
        },
    )
    ctx.run(ctx.on.action("lock-status"), testing.State(relations={rel}))
    assert ctx.action_results is not None
    results = ctx.action_results
    assert json.loads(results["holders"]) == [{"unit": unit(1), "since": None}]
    assert [q["holding"] for q in json.loads(results["queue"])] == [True, False]
    assert results["standing"] == "idle" and results["paused"] == "false"


def test_missing_peer_relation_is_reported_not_raised() -> None:
    import charm
    from tests.ops.helpers import ACTIONS, CONFIG

    meta = {"name": "coordinated-app"}
    ctx = testing.Context(charm.CoordinatedAppCharm, meta=meta, config=CONFIG, actions=ACTIONS)
    out = ctx.run(ctx.on.config_changed(), testing.State(config={"restart-token": "x"}))
    assert "declares no peer relation" in out.unit_status.message


@pytest.mark.parametrize("n", [5, 30])
def test_far_back_unit_reads_few_peer_bags_and_remembers_releases(
    n: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[str] = []
    from charm_coordinator._evidence import BagEvidence

    original = BagEvidence.read

    def counting(self: BagEvidence, who: str) -> object:
        if who not in self.docs and who not in self.problems:
            reads.append(who)
        return original(self, who)

    monkeypatch.setattr(BagEvidence, "read", counting)
    me = n - 1
    entries = [[i + 1, unit(i), 1, "x"] for i in range(n)]
    others = {i: udoc({"restart": {"id": 1, "released": 1 if i < 3 else 0}}) for i in range(n - 1)}
    rel = testing.PeerRelation(
        "cluster",
        local_unit_data=udoc({"restart": {"id": 1, "released": 0}}),
        local_app_data=adoc(n, entries),
        peers_data=others,
    )
    ctx = context(unit_id=me)
    out = ctx.run(ctx.on.update_status(), testing.State(relations={rel}))
    # three released heads and the first live one
    assert reads == [unit(0), unit(1), unit(2), unit(3)]
    reads.clear()
    ctx.run(ctx.on.update_status(), out)
    # the releases are remembered: only the first live entry is read again
    assert reads == [unit(3)]
