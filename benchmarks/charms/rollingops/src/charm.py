#!/usr/bin/env python3
"""Rolling restart with charmlibs-rollingops in peer mode (benchmark charm)."""

import json
import os

from charmlibs import pathops
from charmlibs.rollingops import OperationResult, RollingOpsManager

import ops

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
        self.rollingops = RollingOpsManager(
            charm=self,
            peer_relation_name="cluster",
            callback_targets={RESTART: self._restart},
            # One machine per unit in Juju; here units share a host, so each keeps its
            # worker log in its own charm directory instead of /var/lib/rollingops.
            base_dir=pathops.LocalPath(str(self.charm_dir / ".rollingops")),
        )
        framework.observe(self.on.config_changed, self._on_config_changed)

    def _on_config_changed(self, _: ops.ConfigChangedEvent) -> None:
        due = str(self.config.get("restart-token", "")) != self._stored.applied_token
        if due and not self.rollingops.is_waiting_callback(RESTART):
            journal(self.unit.name, "request", lock=RESTART)
            self.rollingops.request_async_lock(RESTART)

    def _restart(self) -> OperationResult:
        journal(self.unit.name, "granted", lock=RESTART)
        journal(self.unit.name, "begin", op="restart", lock=RESTART)
        journal(self.unit.name, "end", op="restart", lock=RESTART)
        self._stored.applied_token = str(self.config.get("restart-token", ""))
        journal(self.unit.name, "release", lock=RESTART)
        return OperationResult.RELEASE


if __name__ == "__main__":
    ops.main(BenchCharm)
