#!/usr/bin/env python3
"""The OLD revision of examples/classic-rolling-restart: real charmhelpers.coordinator.

Identical to the new revision but for the import line (and no lib/charm_coordinator).
Upgrading a deployed application from this directory to examples/classic-rolling-restart
is the upgrade path tests/classic/test_upgrade_sim.py drives, mid rolling restart.
"""

import glob
import json
import os
import pathlib
import sys
import time

from charmhelpers import coordinator
from charmhelpers.core import hookenv, unitdata

if not glob.glob("/var/lib/juju/tools/machine-*/jujud"):
    # charmhelpers asks jujud for the Juju version (anchor weakness 16); a machine
    # without it (Kubernetes, a simulator without its machine shim) has JUJU_VERSION.
    hookenv.juju_version = lambda: os.environ.get("JUJU_VERSION", "3.6.8")

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
