"""charm_coordinator.classic driven by real charmhelpers.core.hookenv against real hook tools.

Every hook is a subprocess of the test charm tests/charms/proc_classic, served by
jujusim's process runtime. Test names cite the charmhelpers weakness they show, by its
number in the anchor study (reference/anchor-charmhelpers-tooz.md 1.4).
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from harness import CHARM, KEY, Cluster, result
from memcontext import MemContext

from jujusim.context import HookInvocation
from jujusim.process import ProcessRuntime

ACQ = ["acquire", "restart"]
GRANTED = ["granted", "restart"]


@pytest.fixture
def out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "report.jsonl"
    monkeypatch.setenv("PROC_TEST_OUT", str(path))
    return path


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[ProcessRuntime]:
    runtime = ProcessRuntime(str(CHARM), str(tmp_path / "work"), timeout=60)
    try:
        yield runtime
    finally:
        runtime.close()


@pytest.fixture
def cluster(rt: ProcessRuntime, out: Path) -> Cluster:
    return Cluster(rt, out, n=3)


def queued(c: Cluster, *units: str) -> None:
    """Each unit requests in config-changed, then the leader hears of each in turn."""
    for unit in units:
        assert c.hook(unit, "config-changed", ACQ)["exit_code"] == 0
    for unit in units:
        if unit != c.leader:
            assert c.hook(c.leader, "cluster-relation-changed", remote=unit)["exit_code"] == 0


# --- import and construction ------------------------------------------------------------


def test_module_imports_without_charmhelpers_and_fails_clearly_when_used() -> None:
    code = (
        "import sys; sys.modules['charmhelpers'] = None\n"
        "from charm_coordinator import classic\n"
        "assert 'ops' not in sys.modules\n"
        "try:\n    classic.Serial()\nexcept ImportError as e:\n    print(e)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "charm_coordinator.classic needs charmhelpers" in done.stdout


def test_import_does_not_load_hookenv() -> None:
    code = (
        "import sys\nfrom charm_coordinator import classic\n"
        "print('charmhelpers.core.hookenv' in sys.modules, 'ops' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.split() == ["False", "False"], done.stderr


def test_weakness14_instances_are_independent() -> None:
    from charmhelpers.core import hookenv

    from charm_coordinator import classic

    try:
        a = classic.Serial()
        b = classic.Serial("other", release_all_granted=True)
        assert a is not b
        assert (a.key, a.release_all_granted) == ("coordinator", False)
        assert (b.key, b.release_all_granted) == ("other", True)
    finally:
        del hookenv._atstart[:]  # the constructors registered initialize/handle


# --- requests, sequencing, grants -------------------------------------------------------


def test_request_goes_to_own_unit_bag(cluster: Cluster) -> None:
    before = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    seen = cluster.hook("cls/1", "config-changed", ACQ, ["requested", "restart"],
                        ["request_timestamp", "restart"], ["requested", "other"])  # fmt: skip
    assert seen["exit_code"] == 0, seen["stderr"]
    assert result(seen, *ACQ) is False
    assert result(seen, "requested", "restart") is True
    assert result(seen, "requested", "other") is False
    stamp = datetime.datetime.fromisoformat(result(seen, "request_timestamp", "restart"))
    assert stamp.tzinfo is None and abs((stamp - before).total_seconds()) < 30
    doc = cluster.doc("cls/1")
    assert doc is not None
    assert doc["v"] == 1 and doc["locks"]["restart"]["id"] == 1
    assert doc["locks"]["restart"]["released"] == 0
    assert cluster.app_bag == {}  # a non-leader never writes the queue


def test_leader_sequences_into_the_app_bag_not_leader_settings(cluster: Cluster) -> None:
    queued(cluster, "cls/2", "cls/1")
    assert cluster.queue() == [("cls/2", 1), ("cls/1", 1)]
    assert cluster.last is not None and cluster.last.leader_settings == {}
    app = cluster.app_doc()
    assert app is not None and app["seq"] == 2


def test_weakness5_order_is_the_leaders_not_the_unit_clocks(cluster: Cluster) -> None:
    cluster.hook("cls/1", "config-changed", ACQ)
    cluster.hook("cls/2", "config-changed", ACQ, clock_offset=-3600)  # an hour behind
    cluster.hook("cls/0", "cluster-relation-changed", remote="cls/1")
    cluster.hook("cls/0", "cluster-relation-changed", remote="cls/2")
    assert cluster.queue() == [("cls/1", 1), ("cls/2", 1)]
    assert result(cluster.hook("cls/2", "update-status", GRANTED), *GRANTED) is False
    assert result(cluster.hook("cls/1", "update-status", GRANTED), *GRANTED) is True


def test_head_is_granted_and_the_handoff_needs_no_leader(cluster: Cluster) -> None:
    queued(cluster, "cls/1", "cls/2")
    first = cluster.hook("cls/1", "cluster-relation-changed", GRANTED, remote="cls/0")
    assert result(first, *GRANTED) is True
    assert first["released"][0][:2] == ["cls/1", "restart"]
    doc = cluster.doc("cls/1")
    assert doc is not None and doc["locks"]["restart"]["released"] == 1
    # cls/2 learns of the release from cls/1's own bag: no leader hook in between.
    second = cluster.hook("cls/2", "cluster-relation-changed", GRANTED, remote="cls/1")
    assert result(second, *GRANTED) is True
    assert cluster.queue() == [("cls/1", 1), ("cls/2", 1)]  # pruned lazily


def test_weakness13_released_gets_the_hold_time_on_the_holder(cluster: Cluster) -> None:
    cluster.hook("cls/1", "config-changed", ACQ, clock_offset=-3600)  # asked an hour ago
    cluster.hook("cls/0", "cluster-relation-changed", remote="cls/1")
    seen = cluster.hook("cls/1", "update-status", GRANTED)
    [[unit, lock, held]] = seen["released"]
    assert (unit, lock) == ("cls/1", "restart")
    assert 0 <= held < 60  # from when it saw the grant; charmhelpers said over an hour


def test_weakness3_a_grant_no_hook_looked_at_is_kept(cluster: Cluster) -> None:
    queued(cluster, "cls/1", "cls/2")
    idle = cluster.hook("cls/1", "update-status")  # the charm does not look
    assert idle["released"] == []
    doc = cluster.doc("cls/1")
    assert doc is not None and doc["locks"]["restart"]["released"] == 0
    assert result(cluster.hook("cls/2", "update-status", GRANTED), *GRANTED) is False
    assert result(cluster.hook("cls/1", "config-changed", GRANTED), *GRANTED) is True
    doc = cluster.doc("cls/1")
    assert doc is not None and doc["locks"]["restart"]["released"] == 1


def test_release_all_granted_flag_keeps_charmhelpers_behaviour(cluster: Cluster) -> None:
    queued(cluster, "cls/1", "cls/2")
    idle = cluster.hook("cls/1", "update-status", old=True)
    assert [r[:2] for r in idle["released"]] == [["cls/1", "restart"]]
    doc = cluster.doc("cls/1")
    assert doc is not None and doc["locks"]["restart"]["released"] == 1
    assert result(cluster.hook("cls/2", "update-status", GRANTED), *GRANTED) is True


def test_require_decorator_with_guard(cluster: Cluster) -> None:
    req = ["require", "restart"]
    no = cluster.hook("cls/1", "config-changed", [*req, False], ["requested", "restart"])
    assert result(no, *req, False) is False and result(no, "requested", "restart") is False
    yes = cluster.hook("cls/1", "config-changed", [*req, True], ["requested", "restart"])
    assert result(yes, *req, True) is False  # requested, not granted yet
    assert result(yes, "requested", "restart") is True
    cluster.hook("cls/0", "cluster-relation-changed", remote="cls/1")
    ran = cluster.hook("cls/1", "cluster-relation-changed", [*req, False], remote="cls/0")
    assert result(ran, *req, False) is True  # granted: runs whatever the guard says
    doc = cluster.doc("cls/1")
    assert doc is not None and doc["locks"]["restart"]["released"] == 1


def test_custom_grant_policy_two_at_a_time(rt: ProcessRuntime, out: Path) -> None:
    c = Cluster(rt, out, n=4)
    for unit in ("cls/1", "cls/2", "cls/3"):
        c.hook(unit, "config-changed", ACQ, kind="pair")
        c.hook("cls/0", "cluster-relation-changed", remote=unit, kind="pair")
    assert [u for u, _ in c.queue()] == ["cls/1", "cls/2", "cls/3"]
    holders = ["holders", "restart"]
    third = c.hook("cls/3", "update-status", GRANTED, holders, ["grant", "restart", "cls/2"],
                   kind="pair")  # fmt: skip
    assert result(third, *GRANTED) is False
    assert result(third, *holders) == ["cls/1", "cls/2"]
    assert result(third, "grant", "restart", "cls/2") is True
    assert result(c.hook("cls/2", "update-status", GRANTED, kind="pair"), *GRANTED) is True
    assert result(c.hook("cls/1", "update-status", GRANTED, kind="pair"), *GRANTED) is True
    # both released at the end of their hooks: cls/3 now holds, alone
    third = c.hook("cls/3", "update-status", GRANTED, holders, kind="pair")
    assert result(third, *GRANTED) is True and result(third, *holders) == ["cls/3"]


def test_leader_self_request_wakes_through_a_peer_ack(cluster: Cluster) -> None:
    own = cluster.hook("cls/0", "config-changed", ACQ)
    assert result(own, *ACQ) is False  # never on a queue it has not committed (trap 1)
    app = cluster.app_doc()
    assert app is not None and app["queues"]["restart"] == [[1, "cls/0", 1, "x"]]
    assert app["wake"] == ["cls/1", 1]
    # the app-level change reaches cls/1 (no remote unit), which acknowledges ...
    cluster.hook("cls/1", "cluster-relation-changed")
    doc = cluster.doc("cls/1")
    assert doc is not None and doc["ack"] == 1
    # ... and that write wakes the leader, which now holds (weakness 4: no stall)
    woken = cluster.hook("cls/0", "cluster-relation-changed", GRANTED, remote="cls/1")
    assert result(woken, *GRANTED) is True


def test_weakness7_a_new_leader_continues_the_queue(cluster: Cluster) -> None:
    queued(cluster, "cls/1", "cls/2")
    cluster.leader = "cls/2"
    cluster.hook("cls/2", "leader-elected")
    assert [u for u, _ in cluster.queue()] == ["cls/1", "cls/2"]
    cluster.hook("cls/0", "config-changed", ACQ)
    cluster.hook("cls/2", "cluster-relation-changed", remote="cls/0")
    app = cluster.app_doc()
    assert app is not None and app["seq"] == 3
    assert cluster.queue() == [("cls/1", 1), ("cls/2", 1), ("cls/0", 1)]
    assert result(cluster.hook("cls/2", "update-status", GRANTED), *GRANTED) is False
    assert result(cluster.hook("cls/1", "update-status", GRANTED), *GRANTED) is True


def test_weakness11_departed_units_leave_no_data(rt: ProcessRuntime, out: Path) -> None:
    c = Cluster(rt, out, n=3)
    queued(c, "cls/2", "cls/1")
    c.remove("cls/2")  # the head holder is removed
    c.hook("cls/0", "cluster-relation-departed", remote="cls/2", departing="cls/2")
    assert c.queue() == [("cls/1", 1)]
    assert "cls/2" not in json.dumps(c.app_doc())
    assert result(c.hook("cls/1", "update-status", GRANTED), *GRANTED) is True
    c.hook("cls/0", "cluster-relation-changed", remote="cls/1")
    c.hook("cls/0", "update-status")  # the full scan prunes the drained queue
    assert c.app_doc() == {"v": 1, "seq": 2, "queues": {}}  # only the counter is kept
    # Deaths are remembered while the committed queue still lists them (the prune's
    # commit could fail); the next hook forgets them.
    c.hook("cls/0", "update-status")
    with open(c.state_file("cls/0")) as f:
        state = json.load(f)
    assert (state["released"], state["departed"], state["pending"]) == ({}, [], {})


def test_a_departed_unit_is_dead_by_goal_state_even_unseen(rt: ProcessRuntime, out: Path) -> None:
    c = Cluster(rt, out, n=3)
    queued(c, "cls/2", "cls/1")
    c.remove("cls/2")  # nobody ran relation-departed for it (rule 7)
    assert result(c.hook("cls/1", "update-status", GRANTED), *GRANTED) is True


def test_a_departing_unit_releases_everything(cluster: Cluster) -> None:
    queued(cluster, "cls/1")
    cluster.hook("cls/1", "cluster-relation-departed", remote="cls/0", departing="cls/1")
    doc = cluster.doc("cls/1")
    assert doc is not None and doc["locks"]["restart"]["released"] == 1


def test_failed_hook_publishes_nothing(cluster: Cluster) -> None:
    failed = cluster.hook("cls/1", "config-changed", ACQ, fail=True)
    assert failed["exit_code"] != 0
    assert cluster.doc("cls/1") is None
    assert not os.path.exists(cluster.state_file("cls/1"))


def test_weakness12_no_fake_unit_named_after_the_lock(cluster: Cluster) -> None:
    cluster.hook("cls/1", "config-changed", ["acquire", "cls"])
    cluster.hook("cls/0", "cluster-relation-changed", remote="cls/1")
    assert cluster.queue("cls") == [("cls/1", 1)]


def test_weakness15_made_inside_the_hook_still_works(cluster: Cluster) -> None:
    seen = cluster.hook("cls/1", "config-changed", ACQ, lazy=True)
    assert seen["exit_code"] == 0, seen["stderr"]
    doc = cluster.doc("cls/1")
    assert doc is not None and doc["locks"]["restart"]["id"] == 1


def test_two_keys_are_two_coordinators(cluster: Cluster) -> None:
    cluster.hook("cls/1", "config-changed", ACQ, key="other")
    assert set(cluster.bags["cls/1"]) >= {"other"} and KEY not in cluster.bags["cls/1"]


def test_request_before_the_peer_relation_is_kept_then_published(
    rt: ProcessRuntime, out: Path
) -> None:
    lonely = MemContext("cls/1", peers=(), endpoint="elsewhere", relation_id="elsewhere:9")
    env = {"CLASSIC_PLAN": json.dumps({"calls": [ACQ]})}
    outcome = rt.run(HookInvocation(unit="cls/1", kind="hook", name="install", env=env), lonely)
    assert outcome.exit_code == 0, outcome.stderr
    state = Path(rt.unit_charm_dir("cls/1"), f".charm_coordinator.{KEY}.json")
    assert json.loads(state.read_text())["pending"] == {"restart": "x"}
    c = Cluster(rt, out, n=2)
    c.hook("cls/1", "cluster-relation-joined", remote="cls/0")
    doc = c.doc("cls/1")
    assert doc is not None and doc["locks"]["restart"]["id"] == 1
    assert not state.exists()


# --- bad input ----------------------------------------------------------------------------


def test_malformed_peer_data_is_logged_and_never_queued(cluster: Cluster) -> None:
    cluster.bags["cls/2"][KEY] = "{not json"
    seen = cluster.hook("cls/0", "cluster-relation-changed", remote="cls/2")
    assert seen["exit_code"] == 0, seen["stderr"]
    assert cluster.queue() == []
    assert "cls/2" in seen["problems"]
    assert any(lvl == "WARNING" and "cls/2" in msg for lvl, msg in seen["logs"])


def test_malformed_data_of_a_queued_unit_blocks_never_grants(cluster: Cluster) -> None:
    queued(cluster, "cls/2", "cls/1")
    cluster.bags["cls/2"][KEY] = json.dumps({"v": 1, "locks": {"restart": {"id": -4}}})
    seen = cluster.hook("cls/1", "update-status", GRANTED)
    assert seen["exit_code"] == 0 and result(seen, *GRANTED) is False
    assert "cls/2" in seen["problems"]


@pytest.mark.parametrize("garbage", ["[]", '{"v": 99}', "x" * 2_000_000, '{"v":1,"seq":0}'])
def test_malformed_app_bag_grants_nothing_and_is_not_overwritten(
    cluster: Cluster, garbage: str
) -> None:
    queued(cluster, "cls/1")
    cluster.app_bag[KEY] = garbage
    seen = cluster.hook("cls/1", "update-status", GRANTED)
    assert seen["exit_code"] == 0 and result(seen, *GRANTED) is False
    assert any(lvl == "ERROR" and "cls" in msg for lvl, msg in seen["logs"])
    leader = cluster.hook("cls/0", "cluster-relation-changed", remote="cls/1")
    assert leader["exit_code"] == 0
    assert cluster.app_bag[KEY] == garbage


def test_charmhelpers_requests_are_converted(cluster: Cluster) -> None:
    cluster.bags["cls/1"][KEY] = json.dumps({"restart": "2024-01-01 00:00:01.000000Z"})
    seen = cluster.hook("cls/1", "upgrade-charm", ["requested", "restart"])
    assert result(seen, "requested", "restart") is True
    doc = cluster.doc("cls/1")
    assert doc is not None and doc["v"] == 1 and doc["locks"]["restart"]["id"] == 1
