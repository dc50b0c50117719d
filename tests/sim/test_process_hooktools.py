"""Hook tools driven with the exact argv forms of ops 3.9 and charmhelpers 1.2.1."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import pytest
import yaml

sys.path.insert(0, os.path.dirname(__file__))

from memcontext import MemContext

from jujusim.context import HookInvocation
from jujusim.hooktools import ToolResult, ToolSession, call_tool

PEER_ENV = {
    "JUJU_RELATION": "peer",
    "JUJU_RELATION_ID": "peer:1",
    "JUJU_REMOTE_UNIT": "proc/1",
    "JUJU_REMOTE_APP": "proc",
}


def session(
    ctx: MemContext | None = None, env: dict[str, str] | None = None, kind: str = "hook"
) -> ToolSession:
    ctx = ctx or MemContext()
    invocation = HookInvocation(unit=ctx.unit_name, kind=kind, name="x")  # type: ignore[arg-type]
    return ToolSession(ctx, invocation, PEER_ENV if env is None else env, ["peer"])


def ok(s: ToolSession, *argv: str, stdin: str = "", cwd: str = ".") -> str:
    result = call_tool(s, argv[0], argv[1:], stdin, cwd)
    assert result.code == 0, result
    return result.stdout


def js(s: ToolSession, *argv: str, stdin: str = "") -> Any:
    return json.loads(ok(s, *argv, stdin=stdin))


def fail(s: ToolSession, *argv: str) -> ToolResult:
    result = call_tool(s, argv[0], argv[1:])
    assert result.code != 0, result
    assert result.stderr.startswith("ERROR "), result
    return result


# --- relations: ops forms -----------------------------------------------------------------


def test_ops_relation_ids_and_list():
    s = session()
    assert js(s, "relation-ids", "peer", "--format=json") == ["peer:1"]
    assert js(s, "relation-ids", "other", "--format=json") == []
    assert js(s, "relation-list", "--format=json", "-r", "peer:1") == ["proc/1"]
    assert js(s, "relation-list", "--format=json", "--app", "-r", "peer:1") == "proc"


def test_ops_relation_get_bags_and_keys():
    ctx = MemContext()
    ctx.unit_bags["proc/1"]["value"] = "42"
    ctx.app_bag["lock"] = "free"
    s = session(ctx)
    bag = js(s, "relation-get", "--format=json", "-r", "peer:1", "-", "proc/1")
    assert bag["value"] == "42"
    assert js(s, "relation-get", "--format=json", "-r", "peer:1", "--app", "-", "proc") == {
        "lock": "free"
    }
    assert js(s, "relation-get", "--format=json", "-r", "peer:1", "value", "proc/1") == "42"
    assert js(s, "relation-get", "--format=json", "-r", "peer:1", "nope", "proc/1") is None


def test_ops_relation_set_json_on_stdin_buffers_and_deletes():
    ctx = MemContext()
    ctx.unit_bags["proc/0"]["old"] = "x"
    s = session(ctx)
    ok(s, "relation-set", "-r", "peer:1", "--file", "-", stdin='{"seen": "2", "old": ""}')
    assert ctx.pending_unit == {"seen": "2", "old": ""}
    assert ctx.unit_bags["proc/0"]["old"] == "x"  # nothing committed yet
    own = js(s, "relation-get", "--format=json", "-r", "peer:1", "-", "proc/0")
    assert own["seen"] == "2" and "old" not in own


def test_ops_app_relation_set_leader_and_non_leader():
    leader = MemContext(leader=True)
    ok(session(leader), "relation-set", "-r", "peer:1", "--app", "--file", "-",
       stdin='{"lock": "held"}')  # fmt: skip
    assert leader.pending_app == {"lock": "held"}
    follower = MemContext()
    result = call_tool(
        session(follower), "relation-set", ["-r", "peer:1", "--app", "--file", "-"],
        '{"lock": "held"}',
    )  # fmt: skip
    assert result.code == 1
    assert result.stderr == "ERROR cannot write relation settings\n"
    assert follower.pending_app == {}


def test_relation_refs_bare_id_default_and_unknown():
    ctx = MemContext()
    ctx.unit_bags["proc/1"]["value"] = "v"
    s = session(ctx)
    assert js(s, "relation-get", "--format=json", "-r", "1", "value", "proc/1") == "v"
    # relation and remote unit default to the hook's JUJU_RELATION_ID / JUJU_REMOTE_UNIT
    assert js(s, "relation-get", "--format=json", "value") == "v"
    assert (
        js(s, "relation-get", "--format=json", "--relation=peer:1", "-") == ctx.unit_bags["proc/1"]
    )
    outside = session(ctx, env={})
    assert js(outside, "relation-get", "--format=json", "-r", "1", "value", "proc/1") == "v"
    bad = fail(outside, "relation-get", "--format=json", "-r", "peer:9", "-", "proc/1")
    assert bad.code == 2 and "relation not found" in bad.stderr
    assert "no relation id specified" in fail(outside, "relation-list", "--format=json").stderr
    assert "relation not found" in fail(outside, "relation-list", "-r", "nope:1").stderr


# --- relations: charmhelpers forms --------------------------------------------------------


def test_charmhelpers_relation_set_help_mentions_file():
    assert "--file" in ok(session(), "relation-set", "--help")


def test_charmhelpers_relation_set_yaml_file(tmp_path):
    ctx = MemContext(leader=True)
    s = session(ctx)
    settings = {"seen": "7", "gone": None, "doc": json.dumps({"a": [1, 2]}) * 5, "n": "2"}
    path = tmp_path / "settings.yaml"
    path.write_text(yaml.safe_dump(settings))
    ok(s, "relation-set", "-r", "peer:1", "--file", str(path))
    assert ctx.pending_unit == {"seen": "7", "gone": "", "doc": settings["doc"], "n": "2"}
    # charmhelpers puts --app before -r; relative paths resolve against the tool's cwd
    (tmp_path / "app.yaml").write_text("lock: held\n")
    ok(s, "relation-set", "--app", "-r", "peer:1", "--file", "app.yaml", cwd=str(tmp_path))
    assert ctx.pending_app == {"lock": "held"}


def test_charmhelpers_relation_set_key_value_args():
    ctx = MemContext()
    s = session(ctx)
    ok(s, "relation-set", "-r", "peer:1", "a=1", "b=", "c=x=y")
    assert ctx.pending_unit == {"a": "1", "b": "", "c": "x=y"}
    assert fail(s, "relation-set", "novalue").code == 2


def test_charmhelpers_relation_get_forms():
    ctx = MemContext()
    ctx.unit_bags["proc/1"]["value"] = "42"
    ctx.app_bag["k"] = "v"
    s = session(ctx)
    assert js(s, "relation-get", "--format=json", "-")["value"] == "42"  # remote unit default
    assert js(s, "relation-get", "--format=json", "-r", "peer:1", "value", "proc/1") == "42"
    assert js(s, "relation-get", "--format=json", "--app", "-r", "peer:1", "-", "proc") == {
        "k": "v"
    }
    assert js(s, "relation-get", "--format=json", "--app", "-r", "peer:1", "k", "proc") == "v"
    assert js(s, "relation-ids", "--format=json", "peer") == ["peer:1"]
    assert js(s, "relation-list", "--format=json", "-r", "peer:1") == ["proc/1"]
    assert js(s, "relation-list", "--format=json") == ["proc/1"]


def test_relation_get_unknown_unit_is_an_error():
    result = fail(session(), "relation-get", "--format=json", "-r", "peer:1", "-", "proc/9")
    assert result.code == 1 and "settings not found" in result.stderr


# --- leadership, config, status, logs -----------------------------------------------------


def test_is_leader_formats():
    assert js(session(MemContext(leader=True)), "is-leader", "--format=json") is True
    assert js(session(), "is-leader", "--format=json") is False
    assert ok(session(MemContext(leader=True)), "is-leader") == "True\n"


def test_leader_get_set():
    ctx = MemContext(leader=True)
    s = session(ctx)
    ok(s, "leader-set", "grant=proc/1", "old=")
    assert js(s, "leader-get", "--format=json", "-") == {"grant": "proc/1"}
    assert js(s, "leader-get", "--format=json", "grant") == "proc/1"
    assert js(s, "leader-get", "--format=json", "missing") is None
    assert ok(s, "leader-get", "grant") == "proc/1\n"
    result = fail(session(MemContext()), "leader-set", "a=1")
    assert "not the leader" in result.stderr


def test_config_get_forms():
    ctx = MemContext(config={"greeting": "hi", "count": 3, "unset": None})
    s = session(ctx)
    assert js(s, "config-get", "--format=json") == {"greeting": "hi", "count": 3}
    assert js(s, "config-get", "--all", "--format=json") == {
        "greeting": "hi", "count": 3, "unset": None,
    }  # fmt: skip
    assert js(s, "config-get", "--format=json", "count") == 3
    assert js(s, "config-get", "--format=json", "missing") is None
    assert ok(s, "config-get", "greeting") == "hi\n"
    assert yaml.safe_load(ok(s, "config-get")) == {"greeting": "hi", "count": 3}


def test_status_set_forms():
    ctx = MemContext(leader=True)
    s = session(ctx)
    ok(s, "status-set", "--application=False", "active", "--", "ok")
    assert ctx.statuses["unit"] == ("active", "ok")
    ok(s, "status-set", "--application=True", "blocked", "--", "--weird message")
    assert ctx.statuses["app"] == ("blocked", "--weird message")
    ok(s, "status-set", "maintenance", "installing")  # charmhelpers
    assert ctx.statuses["unit"] == ("maintenance", "installing")
    ok(s, "status-set", "--application", "waiting", "w")  # charmhelpers, application=True
    assert ctx.statuses["app"] == ("waiting", "w")
    ok(s, "status-set", "--application=False", "active")  # ops with message None
    assert ctx.statuses["unit"] == ("active", "")
    assert fail(s, "status-set", "bogus").code == 2
    assert "not the leader" in fail(session(MemContext()), "status-set", "--application",
                                    "active", "x").stderr  # fmt: skip


def test_status_get_forms():
    ctx = MemContext(leader=True)
    ctx.statuses["unit"] = ("active", "fine")
    ctx.statuses["app"] = ("blocked", "app msg")
    s = session(ctx)
    unit = js(s, "status-get", "--include-data", "--format=json", "--application=false")
    assert unit == {"status": "active", "message": "fine", "status-data": {}}
    app = js(s, "status-get", "--include-data", "--format=json", "--application=true")
    assert app["application-status"]["status"] == "blocked"
    assert app["application-status"]["message"] == "app msg"
    assert "units" in app
    assert js(s, "status-get", "--format=json", "--include-data")["status"] == "active"
    assert ok(s, "status-get") == "active\n"


def test_juju_log_forms():
    ctx = MemContext()
    s = session(ctx)
    ok(s, "juju-log", "--log-level", "DEBUG", "--", "-starts with a dash")
    ok(s, "juju-log", "-l", "WARNING", "charmhelpers message")
    ok(s, "juju-log", "plain", "words")
    ok(s, "juju-log", "--debug", "dbg")
    assert ctx.logs == [
        ("DEBUG", "-starts with a dash"),
        ("WARNING", "charmhelpers message"),
        ("INFO", "plain words"),
        ("DEBUG", "dbg"),
    ]
    assert fail(s, "juju-log").code == 2


def test_version_goal_state_network_unit_get():
    ctx = MemContext()
    s = session(ctx)
    ok(s, "application-version-set", "--", "-1.0")
    assert ctx.app_version == "-1.0"
    ok(s, "application-version-set", "2.0")
    assert ctx.app_version == "2.0"
    goal = js(s, "goal-state", "--format=json")
    assert set(goal["units"]) == {"proc/0", "proc/1"}
    assert yaml.safe_load(ok(s, "goal-state")) == goal  # default format is yaml
    net = js(s, "network-get", "--format=json", "peer")
    assert net["ingress-addresses"] == ["10.0.0.1"]
    assert js(s, "network-get", "--format=json", "-r", "1", "peer") == net
    assert yaml.safe_load(ok(s, "network-get", "peer", "--format", "yaml", "-r", "peer:1")) == net
    assert ok(s, "network-get", "--primary-address", "peer") == "10.0.0.1\n"
    assert ok(s, "network-get", "--ingress-address", "peer") == "10.0.0.1\n"
    assert js(s, "unit-get", "--format=json", "private-address") == "10.0.0.1"
    assert fail(s, "unit-get", "bogus").code == 2
    assert js(s, "relation-model-get", "--format=json", "-r", "peer:1") == {"uuid": ctx.model_uuid}


# --- actions -----------------------------------------------------------------------------------


def test_action_tools():
    ctx = MemContext(action_params={"value": "v", "nested": {"deep": 1}})
    s = session(ctx, kind="action")
    assert js(s, "action-get", "--format=json") == ctx.action_params
    assert js(s, "action-get", "--format=json", "nested.deep") == 1
    assert js(s, "action-get", "nested.deep", "--format=json") == 1  # charmhelpers order
    assert js(s, "action-get", "--format=json", "missing") is None
    ok(s, "action-set", "echo=v", "nested.key=deep", "eq=a=b")
    assert ctx.action_results == {"echo": "v", "nested.key": "deep", "eq": "a=b"}
    assert fail(s, "action-set", "Bad=1").code == 2
    assert fail(s, "action-set", "stdout=1").code == 2
    ok(s, "action-log", "--", "progress")
    assert ctx.action_logs == ["progress"]
    ok(s, "action-fail", "--", "broken")
    assert ctx.action_failed == "broken"
    ok(s, "action-fail")
    assert ctx.action_failed == "action failed without reason given"
    in_hook = fail(session(ctx), "action-get", "--format=json")
    assert "not running an action" in in_hook.stderr


# --- state, ports, errors -------------------------------------------------------------------


def test_state_tools():
    ctx = MemContext()
    s = session(ctx)
    ok(s, "state-set", "--file", "-", stdin='{"a": "1", "b": "2"}')
    ok(s, "state-set", "c=3", "b=")
    assert js(s, "state-get", "--format=json") == {"a": "1", "c": "3"}
    assert js(s, "state-get", "--format=json", "a") == "1"
    assert ok(s, "state-get", "a") == "1\n"  # ops JujuStorage form
    assert ok(s, "state-get", "missing") == ""  # empty means KeyError to ops
    assert fail(s, "state-get", "--strict", "missing").code == 1
    ok(s, "state-delete", "a")
    assert js(s, "state-get", "--format=json") == {"c": "3"}
    assert ctx.state == {}  # buffered until commit


def test_ports():
    s = session()
    ok(s, "open-port", "8080/tcp")
    ok(s, "open-port", "--endpoints", "peer", "1000-2000/udp")
    ok(s, "open-port", "icmp")
    ok(s, "open-port", "53")
    assert js(s, "opened-ports", "--format=json") == ["1000-2000/udp", "53/tcp", "8080/tcp",
                                                      "icmp"]  # fmt: skip
    assert "8080/tcp (*)" in js(s, "opened-ports", "--endpoints", "--format=json")
    ok(s, "close-port", "8080/tcp")
    assert "8080/tcp" not in js(s, "opened-ports", "--format=json")
    assert fail(s, "open-port", "99999/tcp").code == 2


def test_errors_help_and_counting():
    s = session()
    assert fail(s, "relation-get", "--bogus").stderr == (
        "ERROR flag provided but not defined: --bogus\n"
    )
    assert fail(s, "is-leader", "--format=xml").code == 2
    assert fail(s, "relation-get", "-r").stderr == "ERROR flag needs an argument: -r\n"
    assert fail(s, "secret-get", "x").code == 1
    assert fail(s, "no-such-tool").code == 127
    assert "Usage: is-leader" in ok(s, "is-leader", "-h")
    assert s.calls == 6


def test_output_file_option(tmp_path):
    s = session(MemContext(leader=True))
    assert ok(s, "is-leader", "--format=json", "-o", "out.json", cwd=str(tmp_path)) == ""
    assert json.loads((tmp_path / "out.json").read_text()) is True


@pytest.mark.parametrize("doc", ["", "null", "{}"])
def test_empty_settings_documents_are_noops(doc):
    ctx = MemContext()
    ok(session(ctx), "relation-set", "-r", "peer:1", "--file", "-", stdin=doc)
    assert ctx.pending_unit == {}
