#!/usr/bin/env python3
"""Restart in unit-number order: unit k waits for every lower-numbered peer's ``done``.

Safe by construction: a unit writes ``done`` only after its restart ended, and that
write is visible to others only when the hook commits.
"""

import json
import os

import ops


def journal(unit, event, op="restart"):
    path = os.environ.get("JUJUSIM_JOURNAL")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"unit": unit, "event": event, "op": op}) + "\n")


class OrderedCharm(ops.CharmBase):
    _stored = ops.StoredState()

    def __init__(self, framework):
        super().__init__(framework)
        self._stored.set_default(requested="")
        for event in (
            self.on.config_changed,
            self.on.peer_relation_changed,
            self.on.peer_relation_joined,
            self.on.peer_relation_departed,
            self.on.update_status,
        ):
            framework.observe(event, self._reconcile)

    def _reconcile(self, event):
        token = str(self.config.get("restart-token", ""))
        rel = self.model.get_relation("peer")
        if not token or rel is None:
            return
        mine = rel.data[self.unit]
        if mine.get("done") == token:
            return
        me = int(self.unit.name.split("/")[1])
        if self._stored.requested != token:
            self._stored.requested = token
            journal(self.unit.name, "request")
        for unit in sorted(rel.units, key=lambda u: u.name):
            if int(unit.name.split("/")[1]) < me and rel.data[unit].get("done") != token:
                self.unit.status = ops.WaitingStatus(f"waiting for {unit.name}")
                return
        journal(self.unit.name, "granted")
        journal(self.unit.name, "begin")
        journal(self.unit.name, "end")
        journal(self.unit.name, "release")
        mine["done"] = token
        self.unit.status = ops.ActiveStatus("restarted")


if __name__ == "__main__":
    ops.main(OrderedCharm)
