"""The process runtime running real charms (ops, charmhelpers, shell) as Juju would."""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from memcontext import MemContext

from jujusim.context import HookInvocation, HookOutcome
from jujusim.fork import ForkRuntime
from jujusim.process import ProcessRuntime

CHARMS = Path(__file__).resolve().parent.parent / "charms"
PEER_ENV = {
    "JUJU_RELATION": "peer",
    "JUJU_RELATION_ID": "peer:1",
    "JUJU_REMOTE_UNIT": "proc/1",
    "JUJU_REMOTE_APP": "proc",
}


@pytest.fixture
def out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "report.jsonl"
    monkeypatch.setenv("PROC_TEST_OUT", str(path))
    return path


def reports(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def make_runtime(
    charm: str | Path, tmp_path: Path, kind: type[ProcessRuntime] = ProcessRuntime
) -> Iterator[ProcessRuntime]:
    runtime = kind(str(charm), str(tmp_path / "work"), timeout=60)
    try:
        yield runtime
        if isinstance(runtime, ForkRuntime):  # its Python hooks were all forked
            assert not runtime.fallbacks
    finally:
        runtime.close()


# Every test of a fixture runtime runs in the process runtime and in the fork runtime
# (the same, but Python hooks are forked from a server that imported their libraries).
RUNTIMES = {"process": ProcessRuntime, "fork": ForkRuntime}


@pytest.fixture(params=list(RUNTIMES))
def ops_rt(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[ProcessRuntime]:
    yield from make_runtime(CHARMS / "proc_ops", tmp_path, RUNTIMES[request.param])


@pytest.fixture(params=list(RUNTIMES))
def hooks_rt(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[ProcessRuntime]:
    yield from make_runtime(CHARMS / "proc_hooks", tmp_path, RUNTIMES[request.param])


@pytest.fixture
def shell_rt(tmp_path: Path) -> Iterator[ProcessRuntime]:
    yield from make_runtime(CHARMS / "proc_shell", tmp_path)


def hook(
    rt: ProcessRuntime, ctx: MemContext, name: str, env: dict[str, str] | None = None
) -> HookOutcome:
    outcome = rt.run(
        HookInvocation(unit=ctx.unit_name, kind="hook", name=name, env=env or {}), ctx
    )
    if outcome.exit_code == 0:
        ctx.commit()
    else:
        ctx.discard()
    return outcome


# --- ops -----------------------------------------------------------------------------------


def test_ops_environment(ops_rt: ProcessRuntime, out: Path) -> None:
    ctx = MemContext()
    outcome = hook(ops_rt, ctx, "install")
    assert outcome.exit_code == 0, outcome.stderr
    [seen] = reports(out)
    env = seen["env"]
    charm_dir = ops_rt.unit_charm_dir("proc/0")
    assert seen["cwd"] == charm_dir
    assert env["JUJU_CHARM_DIR"] == env["CHARM_DIR"] == charm_dir
    assert env["JUJU_UNIT_NAME"] == "proc/0"
    assert env["JUJU_MODEL_NAME"] == "sim-model"
    assert env["JUJU_MODEL_UUID"] == ctx.model_uuid
    assert env["JUJU_VERSION"] == "3.6.8"
    assert env["JUJU_HOOK_NAME"] == "install"
    assert env["JUJU_DISPATCH_PATH"] == "hooks/install"
    assert env["JUJU_AVAILABILITY_ZONE"] == "zone-1"
    assert env["JUJU_MACHINE_ID"] == "0"
    assert env["JUJU_PRINCIPAL_UNIT"] == ""
    assert env["JUJU_CONTEXT_ID"].startswith("proc/0-install-")
    assert env["JUJU_AGENT_SOCKET_NETWORK"] == "tcp"
    assert env["JUJU_API_ADDRESSES"]
    assert "JUJU_RELATION" not in env
    path = seen["path"].split(os.pathsep)
    assert path[0] == ops_rt.tools_dir
    # then the machine shim (its python3 wrapper), then the simulator's interpreter
    rest = [p for p in path[1:] if not p.startswith(str(ops_rt.machine_root))]
    assert rest[0] == os.path.dirname(sys.executable)


def test_ops_relation_event_env_and_data(ops_rt: ProcessRuntime, out: Path) -> None:
    ctx = MemContext(leader=True)
    ctx.unit_bags["proc/1"]["value"] = "42"
    outcome = hook(ops_rt, ctx, "peer-relation-changed", PEER_ENV)
    assert outcome.exit_code == 0, outcome.stderr
    [seen] = reports(out)
    assert seen["remote"]["value"] == "42"
    assert seen["units"] == ["proc/1"]
    assert seen["app"] == "proc"
    assert seen["mine"]["seen"] == "42"
    assert seen["app_data"] == {"lock": "held"}
    assert ctx.unit_bags["proc/0"]["seen"] == "42"
    assert ctx.app_bag == {"lock": "held"}
    # ops' calls: relation-ids, relation-list, relation-get x2, relation-set x2, is-leader,
    # plus its juju-log lines: all of them go through real executables and are counted.
    assert outcome.tool_calls >= 8


def test_ops_non_leader_app_write_fails_the_hook(ops_rt: ProcessRuntime, out: Path) -> None:
    ctx = MemContext(leader=False, config={"greeting": "hey"})
    outcome = hook(ops_rt, ctx, "config-changed")
    assert outcome.exit_code != 0
    # ops reports an uncaught exception through juju-log in hooks (stderr only in actions)
    assert any("RelationDataAccessError" in message for _, message in ctx.logs)
    assert ctx.app_bag == {}
    leader = MemContext(leader=True, config={"greeting": "hey"})
    assert hook(ops_rt, leader, "config-changed").exit_code == 0
    assert leader.app_bag == {"greeting": "hey"}
    assert reports(out)[-1]["config"] == {"greeting": "hey"}


def test_ops_status_log_version_and_stored_state(ops_rt: ProcessRuntime, out: Path) -> None:
    ctx = MemContext(config={"greeting": "yo"})
    first = hook(ops_rt, ctx, "update-status")
    second = hook(ops_rt, ctx, "update-status")
    assert first.exit_code == second.exit_code == 0, first.stderr
    assert [r["hooks"] for r in reports(out)] == [1, 2]  # StoredState persisted between hooks
    assert ctx.statuses["unit"] == ("active", "ok yo")
    assert ctx.app_version == "1.2.3"
    assert ("DEBUG", "Emitting Juju event update_status.") in ctx.logs
    assert first.tool_calls > second.tool_calls > 0  # the first also logs storage set-up
    # state lives in the unit's own charm dir, never in the source tree
    assert os.path.isfile(os.path.join(ops_rt.unit_charm_dir("proc/0"), ".unit-state.db"))
    assert not (CHARMS / "proc_ops" / ".unit-state.db").exists()


def test_ops_units_have_separate_state(ops_rt: ProcessRuntime, out: Path) -> None:
    a = MemContext("proc/0", config={"greeting": "a"})
    b = MemContext("proc/1", peers=("proc/0",), config={"greeting": "b"})
    for ctx in (a, a, b):
        assert hook(ops_rt, ctx, "update-status").exit_code == 0
    assert [r["hooks"] for r in reports(out)] == [1, 2, 1]


def test_ops_failed_hook_rolls_back_stored_state(ops_rt: ProcessRuntime, out: Path) -> None:
    follower = MemContext(config={"greeting": "x"})
    assert hook(ops_rt, follower, "config-changed").exit_code != 0  # increments, then fails
    assert hook(ops_rt, follower, "update-status").exit_code == 0
    assert reports(out)[-1]["hooks"] == 1


def test_ops_goal_state_network_and_ports(ops_rt: ProcessRuntime, out: Path) -> None:
    ctx = MemContext(peers=("proc/1", "proc/2"))
    assert hook(ops_rt, ctx, "start").exit_code == 0
    [seen] = reports(out)
    assert seen["planned"] == 3
    assert seen["address"] == "10.0.0.1"
    assert seen["ports"] == [8080]
    assert ops_rt.unit_ports("proc/0") == {"8080/tcp": ("*",)}


def test_ops_actions(ops_rt: ProcessRuntime, out: Path) -> None:
    ctx = MemContext(action_params={"value": "abc"})
    invocation = HookInvocation(unit="proc/0", kind="action", name="do-thing")
    outcome = ops_rt.run(invocation, ctx)
    assert outcome.exit_code == 0, outcome.stderr
    assert ctx.action_results == {"echo": "abc", "nested.key": "deep"}
    assert ctx.action_logs == ["working on abc"]
    assert ctx.action_failed is None

    failing = MemContext(action_params={"value": "fail"})
    assert ops_rt.run(invocation, failing).exit_code == 0  # event.fail() is not a crash
    assert failing.action_failed == "asked to fail"


def test_action_env(tmp_path: Path, out: Path) -> None:
    charm = tmp_path / "charm"
    (charm / "actions").mkdir(parents=True)
    script = charm / "actions" / "go"
    script.write_text(
        '#!/bin/sh\nenv | grep -E "^JUJU_(ACTION|HOOK_NAME|DISPATCH)" | sort >> "$PROC_TEST_OUT"\n'
    )
    script.chmod(0o755)
    for rt in make_runtime(charm, tmp_path):
        invocation = HookInvocation(
            unit="proc/0", kind="action", name="go", env={"JUJU_ACTION_UUID": "u-1"}
        )
        assert rt.run(invocation, MemContext()).exit_code == 0
    lines = out.read_text().splitlines()
    assert "JUJU_ACTION_NAME=go" in lines
    assert "JUJU_ACTION_UUID=u-1" in lines
    assert "JUJU_ACTION_TAG=action-u-1" in lines
    assert "JUJU_DISPATCH_PATH=actions/go" in lines
    assert "JUJU_HOOK_NAME=" in lines


def test_journal_passthrough(
    ops_rt: ProcessRuntime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = tmp_path / "journal.jsonl"
    monkeypatch.setenv("JUJUSIM_JOURNAL", str(journal))
    invocation = HookInvocation(unit="proc/0", kind="action", name="restart")
    assert ops_rt.run(invocation, MemContext()).exit_code == 0
    other = tmp_path / "other.jsonl"
    invocation = HookInvocation(
        unit="proc/1", kind="action", name="restart", env={"JUJUSIM_JOURNAL": str(other)}
    )
    assert ops_rt.run(invocation, MemContext("proc/1")).exit_code == 0
    assert [json.loads(x)["event"] for x in journal.read_text().splitlines()] == ["begin", "end"]
    assert json.loads(other.read_text().splitlines()[0])["unit"] == "proc/1"


# --- charmhelpers ----------------------------------------------------------------------------

CLUSTER_ENV = {
    "JUJU_RELATION": "cluster",
    "JUJU_RELATION_ID": "cluster:3",
    "JUJU_REMOTE_UNIT": "proch/1",
    "JUJU_REMOTE_APP": "proch",
}


def cluster_ctx(**kw: Any) -> MemContext:
    ctx = MemContext("proch/0", endpoint="cluster", relation_id="cluster:3",
                     peers=("proch/1",), **kw)  # fmt: skip
    ctx.unit_bags["proch/1"]["value"] = "v1"
    return ctx


def test_charmhelpers_relation_hook(hooks_rt: ProcessRuntime, out: Path) -> None:
    ctx = cluster_ctx(leader=True)
    outcome = hook(hooks_rt, ctx, "cluster-relation-changed", CLUSTER_ENV)
    assert outcome.exit_code == 0, outcome.stderr
    [seen] = reports(out)
    assert seen["rid"] == "cluster:3"
    assert seen["ids"] == ["cluster:3"]
    assert seen["units"] == ["proch/1"]
    assert seen["remote"]["value"] == "v1"
    assert seen["one"] == "v1"
    assert seen["missing"] is None
    assert seen["mine"]["seen"] == "v1" and seen["mine"]["n"] == "2"
    assert seen["leader"] is True
    assert seen["leader_get"] == {"grant": "proch/1"}
    assert seen["grant"] == "proch/1"
    assert seen["app_data"] == {"queue": json.dumps({"a": [1, 2]})}
    assert ctx.unit_bags["proch/0"]["seen"] == "v1"
    assert "gone" not in ctx.unit_bags["proch/0"]
    assert ctx.app_bag == {"queue": '{"a": [1, 2]}'}


def test_charmhelpers_install_state_and_status(hooks_rt: ProcessRuntime, out: Path) -> None:
    ctx = cluster_ctx(config={"greeting": "hi"})
    for _ in range(2):
        outcome = hook(hooks_rt, ctx, "install")
        assert outcome.exit_code == 0, outcome.stderr
    assert [r["installs"] for r in reports(out)] == [1, 2]  # unitdata.kv() per unit
    assert reports(out)[0]["config"] == {"greeting": "hi"}
    assert ctx.statuses["unit"] == ("maintenance", "installing")
    assert ("DEBUG", "installed") in ctx.logs
    unit_dir = Path(hooks_rt.unit_charm_dir("proch/0"))
    assert (unit_dir / ".unit-state.db").is_file()
    assert (unit_dir / ".juju-persistent-config").is_file()
    assert not (CHARMS / "proc_hooks" / ".unit-state.db").exists()
    assert not (CHARMS / "proc_hooks" / ".juju-persistent-config").exists()


def test_charmhelpers_update_status(hooks_rt: ProcessRuntime, out: Path) -> None:
    ctx = cluster_ctx(config={"greeting": "there"})
    outcome = hook(hooks_rt, ctx, "update-status")
    assert outcome.exit_code == 0, outcome.stderr
    [seen] = reports(out)
    assert seen["status"] == ["active", "ready there"]
    assert set(seen["goal"]["units"]) == {"proch/0", "proch/1"}
    assert ctx.app_version == "9.9"


def test_charmhelpers_tool_error_fails_hook(hooks_rt: ProcessRuntime, out: Path) -> None:
    outcome = hook(hooks_rt, cluster_ctx(leader=False), "leader-elected")
    assert outcome.exit_code == 1
    assert "not the leader" in outcome.stderr
    assert reports(out) == []


def test_missing_hook_is_skipped(hooks_rt: ProcessRuntime, out: Path) -> None:
    outcome = hook(hooks_rt, cluster_ctx(), "stop")
    assert outcome == HookOutcome(exit_code=0)
    action = hooks_rt.run(HookInvocation(unit="proch/0", kind="action", name="x"), cluster_ctx())
    assert action.exit_code != 0 and "not implemented" in action.stderr


# --- shell ---------------------------------------------------------------------------------------


def test_shell_charm(shell_rt: ProcessRuntime, out: Path) -> None:
    ctx = MemContext("procsh/0", leader=True, config={"greeting": "hello world"})
    outcome = hook(shell_rt, ctx, "install")
    assert outcome.exit_code == 0, outcome.stderr
    assert out.read_text().splitlines() == [
        "leader=True",
        "greeting=hello world",
        "ids=peer:1",
        "mine=yes",
        "state=1",
    ]
    assert ctx.unit_bags["procsh/0"]["note"] == "two words"
    assert ctx.state == {"counter": "1"}
    assert ctx.statuses["unit"] == ("maintenance", "installing")
    assert ctx.logs == [("INFO", "installing from sh")]
    assert outcome.tool_calls == 10


def test_shell_exit_codes_and_output(shell_rt: ProcessRuntime) -> None:
    ctx = MemContext("procsh/0")
    start = hook(shell_rt, ctx, "start")
    assert (start.exit_code, start.stdout, start.stderr) == (3, "to stdout\n", "to stderr\n")
    changed = hook(shell_rt, ctx, "config-changed")
    assert changed.exit_code == 7  # the charm's own reaction to leader-set failing
    assert changed.tool_calls == 1
    assert "ERROR cannot write leadership settings" in changed.stderr


# --- dispatch selection, per-unit directories ---------------------------------------------------


def write_exe(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_dispatch_preferred_over_hooks(tmp_path: Path, out: Path) -> None:
    charm = tmp_path / "charm"
    write_exe(
        charm / "dispatch",
        '#!/bin/sh\necho "dispatch $JUJU_DISPATCH_PATH $0" >> "$PROC_TEST_OUT"\n',
    )
    write_exe(charm / "hooks" / "install", '#!/bin/sh\necho hooks >> "$PROC_TEST_OUT"\n')
    for rt in make_runtime(charm, tmp_path):
        assert hook(rt, MemContext(), "install").exit_code == 0
        assert hook(rt, MemContext(), "stop").exit_code == 0  # dispatch handles every hook
        unit_dir = rt.unit_charm_dir("proc/0")
    assert out.read_text().splitlines() == [
        f"dispatch hooks/install {unit_dir}/dispatch",
        f"dispatch hooks/stop {unit_dir}/dispatch",
    ]


def test_unit_dir_links_code_but_not_state(tmp_path: Path) -> None:
    charm = tmp_path / "charm"
    write_exe(charm / "hooks" / "install", "#!/bin/sh\n")
    (charm / "metadata.yaml").write_text("name: x\n")
    (charm / ".unit-state.db").write_text("stale")
    (charm / ".juju-persistent-config").write_text("{}")
    (charm / ".charmhelpers.coordinator.Serial").write_text("{}")
    for rt in make_runtime(charm, tmp_path):
        unit_dir = Path(rt.unit_charm_dir("x/3"))
        assert unit_dir == tmp_path / "work" / "units" / "x-3" / "charm"
        assert sorted(p.name for p in unit_dir.iterdir()) == ["hooks", "metadata.yaml"]
        assert (unit_dir / "hooks").resolve() == (charm / "hooks").resolve()


def test_unexecutable_hook_fails(tmp_path: Path) -> None:
    charm = tmp_path / "charm"
    (charm / "hooks").mkdir(parents=True)
    (charm / "hooks" / "install").write_text("#!/bin/sh\n")
    for rt in make_runtime(charm, tmp_path):
        outcome = hook(rt, MemContext(), "install")
        assert outcome.exit_code == 126 and "cannot run" in outcome.stderr


def test_python_fallback_client(tmp_path: Path, out: Path) -> None:
    rt = ProcessRuntime(str(CHARMS / "proc_shell"), str(tmp_path / "w"), prefer_bash=False)
    try:
        assert rt.client_kind == "python"
        ctx = MemContext("procsh/0", leader=True, config={"greeting": "g"})
        outcome = hook(rt, ctx, "install")
        assert outcome.exit_code == 0, outcome.stderr
        assert "mine=yes" in out.read_text()
    finally:
        rt.close()


def test_stale_context_id_is_rejected(ops_rt: ProcessRuntime) -> None:
    import subprocess

    result = subprocess.run(
        [os.path.join(ops_rt.tools_dir, "is-leader")],
        env={"JUJU_CONTEXT_ID": "gone", "PATH": os.environ["PATH"]},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert "unknown hook context" in result.stderr


def test_stdin_with_newlines_and_unicode_round_trips(shell_rt: ProcessRuntime) -> None:
    import subprocess

    from jujusim.hooktools import ToolSession

    ctx = MemContext("procsh/0")
    session = ToolSession(ctx, HookInvocation(unit="procsh/0", kind="hook", name="x"), PEER_ENV)
    shell_rt._server.register("ctx-1", session)
    value = 'line1\nline2\n\n  é ☃ \\n "quoted"\n'
    env = dict(os.environ, JUJU_CONTEXT_ID="ctx-1")
    tool = os.path.join(shell_rt.tools_dir, "relation-set")
    subprocess.run([tool, "-r", "peer:1", "--file", "-"], input=json.dumps({"k": value}),
                   env=env, check=True, text=True)  # fmt: skip
    got = subprocess.run([os.path.join(shell_rt.tools_dir, "relation-get"), "--format=json",
                          "-r", "peer:1", "k", "procsh/0"],
                         env=env, check=True, text=True, capture_output=True)  # fmt: skip
    assert json.loads(got.stdout) == value
    assert ctx.pending_unit == {"k": value}


def test_concurrent_hooks_of_different_units(ops_rt: ProcessRuntime, out: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    contexts = [MemContext(f"proc/{n}", config={"greeting": str(n)}) for n in range(4)]
    with ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(lambda c: hook(ops_rt, c, "update-status"), contexts))
    assert [o.exit_code for o in outcomes] == [0, 0, 0, 0]
    assert all(o.tool_calls > 0 for o in outcomes)
    assert [c.statuses["unit"] for c in contexts] == [("active", f"ok {n}") for n in range(4)]


def test_large_values_round_trip(shell_rt: ProcessRuntime) -> None:
    import subprocess

    from jujusim.hooktools import ToolSession

    ctx = MemContext("procsh/0")
    session = ToolSession(ctx, HookInvocation(unit="procsh/0", kind="hook", name="x"), PEER_ENV)
    shell_rt._server.register("ctx-big", session)
    env = dict(os.environ, JUJU_CONTEXT_ID="ctx-big")
    value = "0123456789" * 50_000
    subprocess.run([os.path.join(shell_rt.tools_dir, "relation-set"), "--file=-"],
                   input=json.dumps({"k": value}), env=env, check=True, text=True)  # fmt: skip
    got = subprocess.run([os.path.join(shell_rt.tools_dir, "relation-get"), "--format=json",
                          "-", "procsh/0"],
                         env=env, check=True, text=True, capture_output=True)  # fmt: skip
    assert json.loads(got.stdout)["k"] == value


def test_forget_unit_resets_its_state(ops_rt: ProcessRuntime, out: Path) -> None:
    ctx = MemContext(config={"greeting": "a"})
    assert hook(ops_rt, ctx, "update-status").exit_code == 0
    ops_rt.forget_unit("proc/0")
    assert not os.path.exists(ops_rt.unit_charm_dir("proc/0") + "/.unit-state.db")
    assert hook(ops_rt, ctx, "update-status").exit_code == 0
    assert [r["hooks"] for r in reports(out)] == [1, 1]
