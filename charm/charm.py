#!/usr/bin/env python3
"""coordinated-app: rolling restarts, k units at a time, with charm-coordinator.

The whole of the coordination is three lines: make a Coordinator, ``acquire`` when a
restart is needed, restart when ``lock_granted`` arrives. The lock is released at the end
of the dispatch that handled the grant. The rest is what an operator asks for: how many
at once, in which order, zone by zone, and actions to look at the queue, pause it, and
unstick it.
"""

from __future__ import annotations

import json
import logging
import os
import pathlib
import time
from collections.abc import Callable

import ops
from charm_coordinator import (
    Coordinator,
    LocalUsageError,
    LockGrantedEvent,
    LockRevokedEvent,
    LockSpec,
)

logger = logging.getLogger(__name__)

RESTART = "restart"


def restart_lock(config: ops.ConfigData) -> tuple[LockSpec, str]:
    """The restart lock the config asks for, or a plain mutex and what is wrong."""
    try:
        limit = int(config.get("restart-concurrency", 1))
        per_zone = int(config.get("restart-per-zone", 0))
        order = str(config.get("restart-order", "fifo"))
        timeout = float(config.get("restart-timeout", 0))
        if per_zone < 0:
            raise ValueError(f"restart-per-zone must be 0 or more (got {per_zone})")
        if timeout < 0:
            raise ValueError(f"restart-timeout must be 0 (off) or more (got {timeout:g})")
        spec = LockSpec(
            RESTART, limit=limit, order=order, per_zone=per_zone or None, timeout=timeout or None
        )
        return spec, ""
    except ValueError as e:
        return LockSpec(RESTART), f"bad config: {e}".replace("lock 'restart': ", "")


def unit_priority(config: ops.ConfigData, unit: str) -> tuple[int, str]:
    """This unit's priority from ``restart-priorities``, or 0 and what is wrong."""
    number = unit.rsplit("/", 1)[1]
    for pair in str(config.get("restart-priorities", "")).split():
        key, _, value = pair.partition("=")
        if not (key.isdigit() and value.isdigit()):
            return 0, f"bad config: restart-priorities: {pair!r} is not UNIT-NUMBER=PRIORITY"
        if key == number:
            return min(int(value), 1_000_000), ""
    return 0, ""


class CoordinatedAppCharm(ops.CharmBase):
    """A stand-in service whose restarts must never overlap."""

    _stored = ops.StoredState()

    def __init__(self, framework: ops.Framework) -> None:
        super().__init__(framework)
        self._stored.set_default(applied_token="", restart_left=0)
        self._granted_now = False
        self.lock, self.config_problem = restart_lock(self.config)
        self.priority, problem = unit_priority(self.config, self.unit.name)
        self.config_problem = self.config_problem or problem
        self.coordinator = Coordinator(self, [self.lock])
        framework.observe(self.on.config_changed, self._on_config_changed)
        framework.observe(self.coordinator.on.lock_granted, self._on_lock_granted)
        framework.observe(self.coordinator.on.lock_revoked, self._on_lock_revoked)
        framework.observe(self.on.lock_status_action, self._on_lock_status)
        framework.observe(self.on.force_release_action, self._on_force_release)
        framework.observe(self.on.pause_action, self._on_pause)
        framework.observe(self.on.resume_action, self._on_resume)
        framework.observe(self.on.collect_unit_status, self._on_collect_status)
        progress = [self.on.update_status, self.on.config_changed]
        if "cluster" in self.meta.peers:
            progress.append(self.on["cluster"].relation_changed)
        for slow_restart_goes_on in progress:
            framework.observe(slow_restart_goes_on, self._on_restart_progress)

    def _wanted_token(self) -> str:
        return str(self.config.get("restart-token", ""))

    def _on_config_changed(self, _: ops.ConfigChangedEvent) -> None:
        if self.config_problem:
            logger.error("%s; not requesting restarts until it is fixed", self.config_problem)
            return
        if self._wanted_token() != self._stored.applied_token:
            if not self.coordinator.requested(RESTART):
                journal(self.unit.name, "request", lock=RESTART, priority=self.priority)
            self.coordinator.acquire(RESTART, priority=self.priority)

    def _on_lock_granted(self, event: LockGrantedEvent) -> None:
        if event.lock != RESTART:
            return
        journal(self.unit.name, "granted", lock=RESTART)
        token = self._wanted_token()
        zone = os.environ.get("JUJU_AVAILABILITY_ZONE", "")
        journal(
            self.unit.name,
            "begin",
            op="restart",
            lock=RESTART,
            limit=self.lock.limit,
            per_zone=self.lock.per_zone or 0,
            zone=zone,
        )
        hooks = int(self.config.get("restart-hooks", 1))
        if hooks > 1:
            event.keep()  # a slow restart: hold the lock across hooks
            self._stored.restart_left = hooks - 1
            self._granted_now = True
            return
        self._finish_restart(token)

    def _on_restart_progress(self, _: ops.EventBase) -> None:
        if self._granted_now or self._stored.restart_left <= 0:
            return
        if not self.coordinator.granted(RESTART):
            return  # revoked meanwhile: _on_lock_revoked ended it
        self._stored.restart_left -= 1
        if self._stored.restart_left == 0:
            self._finish_restart(self._wanted_token())
            self.coordinator.release(RESTART)

    def _finish_restart(self, token: str) -> None:
        workload = pathlib.Path(self.charm_dir, ".workload")
        workload.write_text(json.dumps({"token": token, "restarted_at": time.time()}))
        journal(self.unit.name, "end", op="restart", lock=RESTART)
        self._stored.applied_token = token
        journal(self.unit.name, "release", lock=RESTART)

    def _on_lock_revoked(self, event: LockRevokedEvent) -> None:
        # A revoked unit never restarts on that request; a later token asks anew.
        journal(self.unit.name, "revoked", lock=event.lock)
        if self._stored.restart_left > 0:  # a slow restart was cut short: stop it
            self._stored.restart_left = 0
            journal(self.unit.name, "end", op="restart", lock=RESTART, aborted=True)

    def _on_lock_status(self, event: ops.ActionEvent) -> None:
        c = self.coordinator
        standing = c.standing(RESTART)
        queue = c.queue(RESTART)
        event.set_results(
            {
                "standing": standing.state.value,
                "waiting-for": ",".join(standing.blockers) or "nobody",
                "holders": json.dumps(
                    [{"unit": q.unit, "since": q.requested_at} for q in queue if q.holding]
                ),
                "queue": json.dumps(
                    [
                        {
                            "unit": q.unit,
                            "seq": q.seq,
                            "holding": q.holding,
                            "requested-at": q.requested_at,
                            **({"zone": q.zone} if q.zone else {}),
                        }
                        for q in queue
                    ]
                ),
                "not-yet-queued": ",".join(c.unqueued(RESTART)) or "none",
                "paused": str(c.paused(RESTART)).lower(),
                "lock": repr(self.lock),
                "message": c.status_message() or "idle",
            }
        )

    def _on_force_release(self, event: ops.ActionEvent) -> None:
        unit = str(event.params["unit"])
        self._operator_action(event, lambda: self.coordinator.force_release(RESTART, unit))

    def _on_pause(self, event: ops.ActionEvent) -> None:
        self._operator_action(event, lambda: self.coordinator.pause(RESTART))

    def _on_resume(self, event: ops.ActionEvent) -> None:
        self._operator_action(event, lambda: self.coordinator.resume(RESTART))

    def _operator_action(self, event: ops.ActionEvent, change: Callable[[], None]) -> None:
        try:
            change()
        except LocalUsageError as e:
            event.fail(str(e))
            return
        event.set_results({"result": "done: the leader writes the queue as this action ends"})

    def _on_collect_status(self, event: ops.CollectStatusEvent) -> None:
        if self.config_problem:
            event.add_status(ops.BlockedStatus(self.config_problem))
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
