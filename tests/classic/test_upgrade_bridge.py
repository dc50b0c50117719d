"""The bridge from charmhelpers.coordinator, hook by hook (see docs/classic.md, upgrading).

While charmhelpers' grants are in leader settings, the drop-in must write only what old
units read correctly, hold only by charmhelpers' rule, grant as Serial, and switch to
the protocol once every unit runs it and no grant is out.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import CHARM, KEY, Cluster, result

from jujusim.process import ProcessRuntime

T1 = "2024-01-01 00:00:01.000000Z"
T2 = "2024-01-01 00:00:02.000000Z"
GRANTED = ["granted", "restart"]
REQUESTED = ["requested", "restart"]


@pytest.fixture
def out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "report.jsonl"
    monkeypatch.setenv("PROC_TEST_OUT", str(path))
    return path


@pytest.fixture
def cluster(tmp_path: Path, out: Path) -> Iterator[Cluster]:
    runtime = ProcessRuntime(str(CHARM), str(tmp_path / "work"), timeout=60)
    try:
        yield Cluster(runtime, out, n=3)
    finally:
        runtime.close()


def old(cluster: Cluster, unit: str, **requests: str) -> None:
    """``unit`` as charmhelpers left it: its requests in its bag, no version key."""
    cluster.bags[unit][KEY] = json.dumps(requests, sort_keys=True)


def grants(cluster: Cluster) -> dict[str, dict[str, str]] | None:
    raw = cluster.leader_settings.get(KEY)
    return json.loads(raw) if raw else None


def test_a_new_unit_keeps_charmhelpers_format_while_its_grants_are_in_force(
    cluster: Cluster,
) -> None:
    cluster.leader_settings[KEY] = json.dumps({"cls/0": {}})
    old(cluster, "cls/1", restart=T1)
    seen = cluster.hook("cls/1", "upgrade-charm", REQUESTED, GRANTED)
    assert result(seen, *REQUESTED) is True and result(seen, *GRANTED) is False
    assert cluster.bags["cls/1"][KEY] == json.dumps({"restart": T1})  # untouched
    assert cluster.bags["cls/1"][f"{KEY}-version"] == "1"
    assert cluster.app_bag == {}


def test_a_new_unit_holds_by_the_old_grant_and_releases_as_charmhelpers(
    cluster: Cluster,
) -> None:
    cluster.leader_settings[KEY] = json.dumps({"cls/1": {"restart": T1}})
    old(cluster, "cls/1", restart=T1)
    old(cluster, "cls/2", restart=T2)
    assert result(cluster.hook("cls/2", "upgrade-charm", GRANTED), *GRANTED) is False
    assert result(cluster.hook("cls/1", "upgrade-charm", GRANTED), *GRANTED) is True
    assert cluster.bags["cls/1"][KEY] == "{}"  # released, as charmhelpers writes it


def test_a_new_leader_grants_in_leader_settings_as_serial(cluster: Cluster) -> None:
    cluster.leader_settings[KEY] = "{}"
    old(cluster, "cls/1", restart=T2)
    old(cluster, "cls/2", restart=T1)  # earlier: first in Serial's queue
    cluster.hook("cls/0", "upgrade-charm")
    assert grants(cluster) == {"cls/2": {"restart": T1}}
    assert cluster.app_bag == {}  # old units remain: no switch


def test_the_leader_switches_when_every_unit_is_new_and_no_grant_is_out(
    cluster: Cluster,
) -> None:
    cluster.leader_settings[KEY] = json.dumps({"cls/2": {"restart": T1}})
    old(cluster, "cls/1", restart=T2)
    old(cluster, "cls/2", restart=T1)
    for unit in ("cls/1", "cls/2"):
        cluster.bags[unit][f"{KEY}-version"] = "1"
    # cls/2 still holds by the old grant: no switch, and nothing new granted.
    cluster.hook("cls/0", "upgrade-charm")
    assert grants(cluster) == {"cls/2": {"restart": T1}} and cluster.app_bag == {}
    assert result(cluster.hook("cls/2", "update-status", GRANTED), *GRANTED)
    # Its release reaches the leader, which clears the grant and switches.
    cluster.hook("cls/0", "cluster-relation-changed", remote="cls/2")
    assert KEY not in cluster.leader_settings
    app = cluster.app_doc()
    assert app is not None and app["v"] == 1
    # cls/1's request carries over: converted in its next hook, then queued.
    seen = cluster.hook("cls/1", "cluster-relation-changed", REQUESTED)
    assert result(seen, *REQUESTED) is True
    doc = cluster.doc("cls/1")
    assert doc is not None and doc["v"] == 1 and doc["locks"]["restart"]["id"] == 1
    assert f"{KEY}-version" not in cluster.bags["cls/1"]
    cluster.hook("cls/0", "cluster-relation-changed", remote="cls/1")
    assert cluster.queue() == [("cls/1", 1)]
    assert result(cluster.hook("cls/1", "cluster-relation-changed", GRANTED), *GRANTED)
