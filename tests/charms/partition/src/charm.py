#!/usr/bin/env python3
"""Shares ``item-0 .. item-N`` among its units with ``charm_coordinator.hashring``.

Every hook recomputes this unit's items from the membership it sees (itself and its
peers) and records them: a journal line ``{"unit", "event": "owns", "items", "members",
"planned", "hook"}`` in ``$JUJUSIM_JOURNAL`` (``planned``: the units Juju plans, from
goal-state), and the unit's status. A unit on its way out (the
departing unit of a relation-departed, or in stop and remove) owns nothing, so that it
does not claim its peers' items once it no longer sees them.
"""

from __future__ import annotations

import json
import os

import ops
from charm_coordinator.hashring import owned

PEERS = "peers"


class PartitionCharm(ops.CharmBase):
    """Records, in every hook, the items this unit owns."""

    def __init__(self, framework: ops.Framework) -> None:
        super().__init__(framework)
        for event in (
            self.on.install,
            self.on.start,
            self.on.config_changed,
            self.on.update_status,
            self.on.leader_elected,
            self.on.leader_settings_changed,
            self.on.upgrade_charm,
            self.on.stop,
            self.on.remove,
            self.on[PEERS].relation_created,
            self.on[PEERS].relation_joined,
            self.on[PEERS].relation_changed,
            self.on[PEERS].relation_departed,
        ):
            framework.observe(event, self._record)

    def _leaving(self, event: ops.EventBase) -> bool:
        if isinstance(event, (ops.StopEvent, ops.RemoveEvent)):
            return True
        return isinstance(event, ops.RelationDepartedEvent) and event.departing_unit == self.unit

    def _record(self, event: ops.EventBase) -> None:
        items = [f"item-{i}" for i in range(int(self.config.get("items", 60)))]
        rel = self.model.get_relation(PEERS)
        members = sorted(
            {self.unit.name, *(u.name for u in rel.units)} if rel else {self.unit.name}
        )
        mine = [] if self._leaving(event) else owned(items, members, self.unit.name)
        # Juju's plan (goal-state): fewer members seen than planned means a join or a
        # leave is still on its way to this unit, so its answer is about to change.
        planned = self.app.planned_units()
        self._journal(
            {
                "unit": self.unit.name,
                "event": "owns",
                "items": mine,
                "members": members,
                "planned": planned,
                "hook": os.environ.get("JUJU_DISPATCH_PATH", "").rsplit("/", 1)[-1],
            }
        )
        settled = "" if len(members) == planned else f", sees {len(members)} of {planned} units"
        self.unit.status = ops.ActiveStatus(f"owns {len(mine)} of {len(items)} items{settled}")

    def _journal(self, record: dict[str, object]) -> None:
        path = os.environ.get("JUJUSIM_JOURNAL")
        if path:
            with open(path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")


if __name__ == "__main__":  # pragma: nocover
    ops.main(PartitionCharm)
