"""The coordinator observes only the event Juju dispatched; grants must still arrive.

Scenario sets JUJU_DISPATCH_PATH as Juju does; a peer relation with a dash in its name
checks the mapping from the hook name to the ops event name.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

import ops
from charm_coordinator import Coordinator, LockGrantedEvent
from charm_coordinator.framework import _dispatched_event
from ops import testing

META = {"name": "dashed", "peers": {"my-peers": {"interface": "dashed_peers"}}}


class DashedCharm(ops.CharmBase):
    def __init__(self, framework: ops.Framework) -> None:
        super().__init__(framework)
        self.coordinator = Coordinator(self, ["restart"])
        framework.observe(self.coordinator.on.lock_granted, self._on_granted)

    def _on_granted(self, event: LockGrantedEvent) -> None:
        self.coordinator.release(event.lock)


def _bag(doc: dict[str, Any]) -> dict[str, str]:
    return {"coordinator": json.dumps({"v": 1, **doc})}


def _peers(app_seq: int) -> testing.PeerRelation:
    return testing.PeerRelation(
        "my-peers",
        local_app_data=_bag({"seq": app_seq, "queues": {"restart": [[1, "dashed/0", 1, "x"]]}}),
        local_unit_data=_bag({"locks": {"restart": {"id": 1, "released": 0}}}),
        peers_data={1: {}},
    )


@pytest.mark.parametrize("event", ["changed", "joined"])
def test_a_grant_arrives_in_a_dashed_peer_relation_hook(event: str) -> None:
    ctx = testing.Context(DashedCharm, meta=META)
    rel = _peers(1)
    on = ctx.on.relation_changed if event == "changed" else ctx.on.relation_joined
    out = ctx.run(on(rel, remote_unit=1), testing.State(relations={rel}))
    granted = [e for e in ctx.emitted_events if isinstance(e, LockGrantedEvent)]
    assert [e.lock for e in granted] == ["restart"]
    mine = json.loads(out.get_relation(rel.id).local_unit_data["coordinator"])
    assert mine["locks"]["restart"]["released"] == 1


def test_an_unrelated_hook_emits_no_grant_and_changes_nothing() -> None:
    ctx = testing.Context(DashedCharm, meta=META)
    rel = _peers(1)
    out = ctx.run(ctx.on.install(), testing.State(relations={rel}))
    assert not [e for e in ctx.emitted_events if isinstance(e, LockGrantedEvent)]
    after = out.get_relation(rel.id).local_unit_data["coordinator"]
    assert json.loads(after) == json.loads(rel.local_unit_data["coordinator"])  # still waiting


def test_dispatch_path_maps_to_the_ops_event_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUJU_DISPATCH_PATH", "hooks/my-peers-relation-changed")
    assert _dispatched_event() == "my_peers_relation_changed"
    monkeypatch.setenv("JUJU_DISPATCH_PATH", "actions/lock-status")
    assert _dispatched_event() == ""
    monkeypatch.delenv("JUJU_DISPATCH_PATH")
    assert _dispatched_event() is None  # unknown (events emitted by hand): observe all
