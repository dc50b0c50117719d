#!/usr/bin/env python3
"""A charmhelpers charm: hooks dispatched by basename(argv[0]), state in unitdata.kv()."""

import json
import os
import sys

from charmhelpers.core import hookenv, unitdata

hooks = hookenv.Hooks()


def report(**fields):
    path = os.environ.get("PROC_TEST_OUT")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps(fields, sort_keys=True) + "\n")


@hooks.hook("install")
def install():
    kv = unitdata.kv()
    kv.set("installs", (kv.get("installs") or 0) + 1)
    kv.flush()
    hookenv.log("installed", level=hookenv.DEBUG)
    hookenv.status_set("maintenance", "installing")
    report(hook="install", installs=kv.get("installs"), config=dict(hookenv.config()))


@hooks.hook("cluster-relation-changed")
def cluster_changed():
    rid = hookenv.relation_id()
    remote = hookenv.relation_get()
    one = hookenv.relation_get("value", hookenv.remote_unit(), rid)
    missing = hookenv.relation_get("nope", hookenv.remote_unit(), rid)
    hookenv.relation_set(rid, {"seen": remote.get("value"), "gone": None, "n": 2})
    mine = hookenv.relation_get(unit=hookenv.local_unit(), rid=rid)
    leader = hookenv.is_leader()
    if leader:
        hookenv.leader_set({"grant": "proch/1"})
        hookenv.relation_set(rid, {"queue": json.dumps({"a": [1, 2]})}, app=True)
    report(
        hook="cluster-relation-changed",
        rid=rid,
        ids=hookenv.relation_ids("cluster"),
        units=hookenv.related_units(rid),
        remote=remote,
        one=one,
        missing=missing,
        mine=mine,
        leader=leader,
        leader_get=hookenv.leader_get(),
        grant=hookenv.leader_get("grant"),
        app_data=hookenv.relation_get(rid=rid, app=hookenv.service_name()),
    )


@hooks.hook("update-status")
def update_status():
    hookenv.status_set("active", "ready " + hookenv.config("greeting"))
    hookenv.application_version_set("9.9")
    report(hook="update-status", status=hookenv.status_get(), goal=hookenv.goal_state())


@hooks.hook("leader-elected")
def leader_elected():
    hookenv.leader_set(grant="")  # a non-leader fails here
    report(hook="leader-elected")


if __name__ == "__main__":
    hooks.execute(sys.argv)
