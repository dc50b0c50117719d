#!/usr/bin/env python3
"""coordinated-app: rolling restarts, one unit at a time, with charm-coordinator.

The whole of the coordination is three lines: make a Coordinator, ``acquire`` when a
restart is needed, restart when ``lock_granted`` arrives. The lock is released at the end
of the dispatch that handled the grant.
"""

from __future__ import annotations

import json
import logging
import os
import pathlib
import time

import ops
from charm_coordinator import Coordinator, LockGrantedEvent, LockSpec

logger = logging.getLogger(__name__)

RESTART = "restart"


class CoordinatedAppCharm(ops.CharmBase):
    """A stand-in service whose restarts must never overlap."""

    _stored = ops.StoredState()

    def __init__(self, framework: ops.Framework) -> None:
        super().__init__(framework)
        self._stored.set_default(applied_token="")
        self.coordinator = Coordinator(self, [LockSpec(RESTART, limit=1)])
        framework.observe(self.on.config_changed, self._on_config_changed)
        framework.observe(self.coordinator.on.lock_granted, self._on_lock_granted)
        framework.observe(self.on.lock_status_action, self._on_lock_status)
        framework.observe(self.on.collect_unit_status, self._on_collect_status)

    def _wanted_token(self) -> str:
        return str(self.config.get("restart-token", ""))

    def _on_config_changed(self, _: ops.ConfigChangedEvent) -> None:
        if self._wanted_token() != self._stored.applied_token:
            if not self.coordinator.requested(RESTART):
                journal(self.unit.name, "request", lock=RESTART)
            self.coordinator.acquire(RESTART)

    def _on_lock_granted(self, event: LockGrantedEvent) -> None:
        if event.lock != RESTART:
            return
        journal(self.unit.name, "granted", lock=RESTART)
        token = self._wanted_token()
        journal(self.unit.name, "begin", op="restart", lock=RESTART)
        workload = pathlib.Path(self.charm_dir, ".workload")
        workload.write_text(json.dumps({"token": token, "restarted_at": time.time()}))
        journal(self.unit.name, "end", op="restart", lock=RESTART)
        self._stored.applied_token = token
        journal(self.unit.name, "release", lock=RESTART)

    def _on_lock_status(self, event: ops.ActionEvent) -> None:
        standing = self.coordinator.standing(RESTART)
        event.set_results(
            {
                "standing": standing.state.value,
                "holders": ",".join(self.coordinator.holders(RESTART)) or "none",
                "queue": json.dumps(
                    [
                        {"unit": q.unit, "seq": q.seq, "holding": q.holding}
                        for q in self.coordinator.queue(RESTART)
                    ]
                ),
                "message": self.coordinator.status_message() or "idle",
            }
        )

    def _on_collect_status(self, event: ops.CollectStatusEvent) -> None:
        message = self.coordinator.status_message()
        if message:
            event.add_status(ops.MaintenanceStatus(message))
        event.add_status(ops.ActiveStatus())


def journal(unit: str, event: str, **fields: object) -> None:
    """Report what the workload did to the simulator, when one is listening."""
    path = os.environ.get("JUJUSIM_JOURNAL")
    if not path:
        return
    record = {"unit": unit, "event": event, **fields}
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


if __name__ == "__main__":  # pragma: nocover
    ops.main(CoordinatedAppCharm)
