#!/usr/bin/env python3
"""Runs the coordinator calls listed in $CLASSIC_PLAN (JSON) and reports what it saw."""

import json
import os
import sys
import time

from charmhelpers.core import hookenv

from charm_coordinator import classic

PLAN = json.loads(os.environ.get("CLASSIC_PLAN") or "{}")
RELEASED = []


class Recording(classic.Serial):
    def released(self, unit, lock, timestamp):
        held = (classic._utcnow(self._clock) - timestamp).total_seconds()
        RELEASED.append([unit, lock, held])
        super().released(unit, lock, timestamp)


class Pair(Recording):
    def grant_restart(self, lock, unit, granted, queue):
        """Two at a time: monotone, more live entries ahead never turn a refusal into a grant."""
        return len(granted) < 2


def make():
    cls = {"serial": Recording, "pair": Pair, "base": classic.BaseCoordinator}[
        PLAN.get("kind", "serial")
    ]
    offset = float(PLAN.get("clock_offset", 0))
    return cls(
        PLAN.get("key", "coordinator"),
        release_all_granted=PLAN.get("old", False),
        clock=lambda: time.time() + offset,
    )


coord = None if PLAN.get("lazy") else make()
hooks = hookenv.Hooks()
results = []


def report():
    path = os.environ.get("PROC_TEST_OUT")
    if path:
        with open(path, "a") as f:
            line = {"hook": hookenv.hook_name(), "results": results, "released": RELEASED,
                    "problems": coord.problems if coord else {}}  # fmt: skip
            f.write(json.dumps(line, sort_keys=True) + "\n")


hookenv.atexit(report)  # registered first, so it runs after the coordinator's save


def call(name, *args):
    if name == "require":
        lock, guard = args
        ran = []

        @coord.require(lock, lambda: guard)
        def body():
            ran.append(1)

        body()
        return bool(ran)
    if name == "request_timestamp":
        stamp = coord.request_timestamp(*args)
        return None if stamp is None else stamp.isoformat()
    if name == "holders":
        return list(coord.holders(*args))
    return getattr(coord, name)(*args)


@hooks.hook(
    "install",
    "config-changed",
    "update-status",
    "leader-elected",
    "upgrade-charm",
    "cluster-relation-joined",
    "cluster-relation-changed",
    "cluster-relation-departed",
)
def any_hook():  # fmt: skip
    global coord
    if coord is None:
        coord = make()
    for name, *args in PLAN.get("calls", []):
        results.append([name, *args, call(name, *args)])
    if PLAN.get("fail"):
        raise RuntimeError("failing as planned")


if __name__ == "__main__":
    hooks.execute(sys.argv)
