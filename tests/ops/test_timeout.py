"""Grant timeouts through the ops API (ops.testing), with an injected leader clock."""

from __future__ import annotations

import json

import ops
from charm_coordinator import Coordinator, LockSpec
from ops import testing
from tests.ops.helpers import adoc, udoc

NOW = [0.0]
META = {"name": "coordinated-app", "peers": {"cluster": {"interface": "x"}}}


class TimeoutCharm(ops.CharmBase):
    def __init__(self, framework: ops.Framework) -> None:
        super().__init__(framework)
        self.coordinator = Coordinator(
            self, [LockSpec("restart", timeout=60)], clock=lambda: NOW[0]
        )


def unit(i: int) -> str:
    return f"coordinated-app/{i}"


def test_leader_revokes_a_holder_after_the_timeout_by_its_own_clock() -> None:
    ctx = testing.Context(TimeoutCharm, meta=META, unit_id=0)
    rel = testing.PeerRelation(
        "cluster",
        local_app_data=adoc(2, [[1, unit(1), 1, "x"], [2, unit(2), 1, "x"]]),
        peers_data={
            1: udoc({"restart": {"id": 1, "released": 0}}),
            2: udoc({"restart": {"id": 1, "released": 0}}),
        },
    )
    NOW[0] = 1000.0
    out = ctx.run(ctx.on.update_status(), testing.State(leader=True, relations={rel}))
    app = json.loads(out.get_relation(rel.id).local_app_data["coordinator"])
    assert len(app["queues"]["restart"]) == 2  # timer started, nothing revoked yet
    NOW[0] = 1061.0
    out = ctx.run(ctx.on.update_status(), out)
    app = json.loads(out.get_relation(rel.id).local_app_data["coordinator"])
    assert app["queues"]["restart"] == [[2, unit(2), 1, "x"]]
    assert app["revoked"] == {"restart": {unit(1): 1}}


def test_the_revoked_holder_does_not_act_and_withdraws() -> None:
    ctx = testing.Context(TimeoutCharm, meta=META, unit_id=1)
    app = json.loads(adoc(2, [[2, unit(2), 1, "x"]])["coordinator"])
    app["revoked"] = {"restart": {unit(1): 1}}
    rel = testing.PeerRelation(
        "cluster",
        local_unit_data=udoc({"restart": {"id": 1, "released": 0}}),
        local_app_data={"coordinator": json.dumps(app)},
        peers_data={0: {}, 2: udoc({"restart": {"id": 1, "released": 0}})},
    )
    out = ctx.run(ctx.on.relation_changed(rel, remote_unit=0), testing.State(relations={rel}))
    names = [type(e).__name__ for e in ctx.emitted_events]
    assert "LockRevokedEvent" in names
    assert "LockGrantedEvent" not in names
    mine = json.loads(out.get_relation(rel.id).local_unit_data["coordinator"])
    assert mine["locks"]["restart"] == {"id": 1, "released": 1}
