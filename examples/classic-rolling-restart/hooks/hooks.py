#!/usr/bin/env python3
"""A classic charmhelpers charm doing rolling restarts with charm_coordinator.classic.

It is written as a charm using charmhelpers.coordinator would be; the only change is the
import line. Every hook runs the guarded restart: it runs when this unit holds the lock,
and requests the lock when the configured token differs from the one last applied.
"""

import json
import os
import pathlib
import sys
import time

CHARM_DIR = os.environ.get("JUJU_CHARM_DIR") or os.path.dirname(os.path.dirname(__file__))
sys.path.insert(0, os.path.join(CHARM_DIR, "lib"))  # the charm ships lib/charm_coordinator

from charmhelpers.core import hookenv, unitdata  # noqa: E402

from charm_coordinator import classic as coordinator  # noqa: E402  (was charmhelpers')

RESTART = "restart"

serial = coordinator.Serial()  # before hooks.execute(): it wires itself to atstart/atexit
hooks = hookenv.Hooks()


def journal(event, **fields):
    """Report what the workload did to the simulator, when one is listening."""
    path = os.environ.get("JUJUSIM_JOURNAL")
    if not path:
        return
    record = {"unit": hookenv.local_unit(), "event": event, **fields}
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def wanted_token():
    return str(hookenv.config("restart-token") or "")


def needs_restart():
    """The guard: request the lock only when a restart is due and not yet requested."""
    due = wanted_token() != (unitdata.kv().get("applied-token") or "")
    if due and not serial.requested(RESTART):
        journal("request", lock=RESTART)
    return due


@serial.require(RESTART, needs_restart)
def restart():
    """Runs only while this unit holds the lock; released at the end of the hook."""
    token = wanted_token()
    journal("granted", lock=RESTART)
    journal("begin", op="restart", lock=RESTART)
    workload = pathlib.Path(hookenv.charm_dir(), ".workload")
    workload.write_text(json.dumps({"token": token, "restarted_at": time.time()}))
    journal("end", op="restart", lock=RESTART)
    kv = unitdata.kv()
    kv.set("applied-token", token)
    kv.flush()
    journal("release", lock=RESTART)


@hooks.hook(
    "install",
    "start",
    "config-changed",
    "upgrade-charm",
    "update-status",
    "leader-elected",
    "leader-settings-changed",
    "cluster-relation-joined",
    "cluster-relation-changed",
    "cluster-relation-departed",
)
def any_hook():
    restart()
    if serial.requested(RESTART) and not serial.granted(RESTART):
        hookenv.status_set("waiting", "waiting for the restart lock")
    else:
        hookenv.status_set("active", "ready")


if __name__ == "__main__":
    hooks.execute(sys.argv)
