#!/usr/bin/env python3
"""jujusim's campaign workload: a rolling restart whose lock rule is set by config.

``restart-limit``, ``shared-limit``, ``restart-order`` and ``per-zone`` make the lock,
``shared-units`` says which units ask for a shared hold, ``clock-skew`` offsets each
unit's clock (the library must not care); priorities come from unit names. Every
journal line carries ``lock``, ``limit``, ``mode`` (and ``shared_limit``, ``per_zone``,
``zone``) so the invariant checker knows the rule each operation ran under.
"""

from __future__ import annotations

import hashlib
import json
import os
import time

import ops
from charm_coordinator import Coordinator, LockGrantedEvent, LockSpec

RESTART = "restart"


def _skew(unit: str, skew: float) -> float:
    """A fixed offset in [-skew, skew] derived from the unit's name."""
    if skew <= 0:
        return 0.0
    frac = int(hashlib.sha256(unit.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return (2 * frac - 1) * skew


def _shared(unit: str, rule: str) -> bool:
    number = int(unit.rsplit("/", 1)[1])
    rule = rule.strip()
    if rule == "all":
        return True
    if rule == "odd":
        return number % 2 == 1
    if rule == "even":
        return number % 2 == 0
    if rule in ("", "none"):
        return False
    return str(number) in {p.strip() for p in rule.split(",")}


class CampaignCharm(ops.CharmBase):
    """Restarts under a lock whose limit and mode come from config."""

    _stored = ops.StoredState()

    def __init__(self, framework: ops.Framework) -> None:
        super().__init__(framework)
        config = dict(self.config)  # one copy: every hook reads all of it
        self.token = str(config.get("restart-token", ""))
        self.limit = max(1, int(config.get("restart-limit", 1)))
        shared_limit = int(config.get("shared-limit", 0))
        self.shared_limit = shared_limit if shared_limit > 0 else None
        self.mode = (
            "shared" if _shared(self.unit.name, str(config.get("shared-units"))) else "exclusive"
        )
        offset = _skew(self.unit.name, float(config.get("clock-skew", 0.0)))
        self.per_zone = max(0, int(config.get("per-zone", 0)))
        spec = LockSpec(
            RESTART,
            limit=self.limit,
            shared_limit=self.shared_limit,
            order=str(config.get("restart-order", "fifo")),
            per_zone=self.per_zone or None,
        )
        self.priority = int(hashlib.sha256(self.unit.name.encode()).hexdigest()[:4], 16) % 10
        self.coordinator = Coordinator(self, [spec], clock=lambda: time.time() + offset)
        framework.observe(self.on.config_changed, self._on_config_changed)
        framework.observe(self.coordinator.on.lock_granted, self._on_lock_granted)
        framework.observe(self.on.collect_unit_status, self._on_collect_status)

    @property
    def _applied(self) -> str:
        """The token of the last restart (stored state is read only by hooks that need it)."""
        self._stored.set_default(applied_token="")
        return str(self._stored.applied_token)

    def _journal(self, event: str, **fields: object) -> None:
        path = os.environ.get("JUJUSIM_JOURNAL")
        if not path:
            return
        record = {
            "unit": self.unit.name,
            "event": event,
            "lock": RESTART,
            "limit": self.limit,
            "mode": self.mode,
            "shared_limit": self.shared_limit or 0,
            "per_zone": self.per_zone,
            "zone": os.environ.get("JUJU_AVAILABILITY_ZONE", ""),
            **fields,
        }
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    def _on_config_changed(self, _: ops.ConfigChangedEvent) -> None:
        if self.token != self._applied:
            if not self.coordinator.requested(RESTART):
                self._journal("request")
            self.coordinator.acquire(
                RESTART, shared=self.mode == "shared", priority=self.priority
            )

    def _on_lock_granted(self, event: LockGrantedEvent) -> None:
        if event.lock != RESTART:
            return
        self._journal("granted")
        self._journal("begin", op="restart")
        self._journal("end", op="restart")
        self._stored.applied_token = self.token
        self._journal("release")

    def _on_collect_status(self, event: ops.CollectStatusEvent) -> None:
        message = self.coordinator.status_message()
        if message:
            event.add_status(ops.MaintenanceStatus(message))
        event.add_status(ops.ActiveStatus())


if __name__ == "__main__":  # pragma: nocover
    ops.main(CampaignCharm)
