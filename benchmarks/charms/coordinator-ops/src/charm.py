#!/usr/bin/env python3
"""Rolling restart with charm_coordinator's ops API (benchmark charm)."""

import json
import os

import ops
from charm_coordinator import Coordinator, LockGrantedEvent, LockSpec

RESTART = "restart"


def journal(unit: str, event: str, **fields: object) -> None:
    """Report what the workload did to the simulator, when one is listening."""
    path = os.environ.get("JUJUSIM_JOURNAL")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"unit": unit, "event": event, **fields}) + "\n")


class BenchCharm(ops.CharmBase):
    _stored = ops.StoredState()

    def __init__(self, framework: ops.Framework) -> None:
        super().__init__(framework)
        self._stored.set_default(applied_token="")
        self.coordinator = Coordinator(self, [LockSpec(RESTART, limit=1)])
        framework.observe(self.on.config_changed, self._on_config_changed)
        framework.observe(self.coordinator.on.lock_granted, self._on_lock_granted)

    def _on_config_changed(self, _: ops.ConfigChangedEvent) -> None:
        if str(self.config.get("restart-token", "")) != self._stored.applied_token:
            if not self.coordinator.requested(RESTART):
                journal(self.unit.name, "request", lock=RESTART)
            self.coordinator.acquire(RESTART)

    def _on_lock_granted(self, event: LockGrantedEvent) -> None:
        if event.lock != RESTART:
            return
        journal(self.unit.name, "granted", lock=RESTART)
        journal(self.unit.name, "begin", op="restart", lock=RESTART)
        journal(self.unit.name, "end", op="restart", lock=RESTART)
        self._stored.applied_token = str(self.config.get("restart-token", ""))
        journal(self.unit.name, "release", lock=RESTART)


if __name__ == "__main__":
    ops.main(BenchCharm)
