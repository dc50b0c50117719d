#!/usr/bin/env python3
"""Rolling restart with charmhelpers.coordinator.Serial, as the module's docstring says.

Every hook runs the guarded restart: it runs when this unit holds the lock, and requests
the lock when the configured token differs from the one last applied.
"""

import json
import os
import sys

from charmhelpers.coordinator import Serial  # the only line that differs between the two
from charmhelpers.core import hookenv, unitdata

RESTART = "restart"

serial = Serial()  # before hooks.execute(): it wires itself to atstart/atexit
hooks = hookenv.Hooks()


def journal(event, **fields):
    """Report what the workload did to the simulator, when one is listening."""
    path = os.environ.get("JUJUSIM_JOURNAL")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"unit": hookenv.local_unit(), "event": event, **fields}) + "\n")


def wanted_token():
    return str(hookenv.config("restart-token") or "")


def needs_restart():
    due = wanted_token() != (unitdata.kv().get("applied-token") or "")
    if due and not serial.requested(RESTART):
        journal("request", lock=RESTART)
    return due


@serial.require(RESTART, needs_restart)
def restart():
    token = wanted_token()
    journal("granted", lock=RESTART)
    journal("begin", op="restart", lock=RESTART)
    journal("end", op="restart", lock=RESTART)
    kv = unitdata.kv()
    kv.set("applied-token", token)
    kv.flush()
    journal("release", lock=RESTART)


@hooks.hook(
    "install", "start", "config-changed", "upgrade-charm", "update-status", "leader-elected",
    "leader-settings-changed", "cluster-relation-joined", "cluster-relation-changed",
    "cluster-relation-departed",
)
def any_hook():
    restart()


if __name__ == "__main__":
    hooks.execute(sys.argv)
