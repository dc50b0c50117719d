"""What the direct runtime keeps between hooks and runs, and why each hook still starts clean.

A campaign builds thousands of runtimes of one charm and runs millions of hooks in one
process, so the direct runtime keeps some things: the parsed charm directory (until a
file of it changes), the wrapper classes (reset after each dispatch), the environment
(replaced hook by hook) and parsed hook-tool arguments. These tests check each one's
invalidation or reset.
"""

from __future__ import annotations

import gc
import inspect
import os
import shutil

import pytest
from simkit import CHARMS

from jujusim import direct, hooktools
from jujusim.charmspec import load_charm_spec
from jujusim.engine import SimConfig, Simulator
from jujusim.hooktools_args import UsageError


def _copy_charm(tmp_path):  # type: ignore[no-untyped-def]
    dst = tmp_path / "observer"
    shutil.copytree(CHARMS / "observer", dst)
    return dst


def test_charm_spec_is_read_again_when_a_yaml_file_changes(tmp_path):
    charm = _copy_charm(tmp_path)
    first = load_charm_spec(str(charm))
    first.meta["peers"]["mangled"] = {"interface": "x"}  # the caller's copy, not the cache's
    again = load_charm_spec(str(charm))
    assert "mangled" not in again.meta["peers"]
    assert direct._charm_setup(str(charm)).meta.peers.keys() == {"peer"}

    meta = (charm / "metadata.yaml").read_text()
    (charm / "metadata.yaml").write_text(meta + "\n# edited\n")
    assert load_charm_spec(str(charm)).meta == again.meta  # same documents, re-read
    (charm / "metadata.yaml").write_text(
        meta.replace("peers:", "peers:\n  second:\n    interface: second-peers", 1)
    )
    changed = load_charm_spec(str(charm))
    assert set(changed.peer_endpoints) == {"peer", "second"}
    setup = direct._charm_setup(str(charm))
    assert set(setup.meta.peers) == {"peer", "second"}
    assert "second" in dict(setup.files)["metadata.yaml"]


def _observer_sim(tmp_path, monkeypatch, units):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("OBSERVER_LOG", str(tmp_path / "observer.jsonl"))
    spec = load_charm_spec(str(CHARMS / "observer"))
    runtime = direct.DirectRuntime(spec.charm_dir, str(tmp_path / "runtime"))
    return Simulator(spec, runtime, SimConfig(seed=3), workdir=str(tmp_path)), runtime


def test_each_hook_sees_exactly_its_own_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("JUJU_SLA", "the process's own")  # one the hooks set too
    monkeypatch.delenv("OPERATOR_DISPATCH", raising=False)
    before = {k: v for k, v in os.environ.items() if k.startswith(("JUJU", "OPERATOR"))}
    wanted: list[dict[str, str]] = []
    seen: list[dict[str, str]] = []
    environment = direct.DirectRuntime._environment

    def record_wanted(self, invocation, ctx):  # type: ignore[no-untyped-def]
        env = environment(self, invocation, ctx)
        wanted.append(dict(env))
        return env

    run = direct._Manager.run

    def record_seen(self):  # type: ignore[no-untyped-def]
        seen.append({k: v for k, v in os.environ.items() if k.startswith("JUJU")})
        return run(self)

    monkeypatch.setattr(direct.DirectRuntime, "_environment", record_wanted)
    monkeypatch.setattr(direct._Manager, "run", record_seen)
    sim, _ = _observer_sim(tmp_path, monkeypatch, 3)
    try:
        sim.deploy(3)
        assert sim.run_until_quiet(10_000) == "quiet"
        sim.remove_unit(sorted(sim.model.alive)[0])
        assert sim.run_until_quiet(10_000) == "quiet"
    finally:
        sim.close()
    assert len(seen) == len(wanted) > 20
    kinds = set()
    for env, got in zip(wanted, seen, strict=True):
        assert got == {k: v for k, v in env.items() if k.startswith("JUJU")}
        kinds.add("JUJU_REMOTE_UNIT" in env)
    assert kinds == {True, False}  # relation hooks and others, one after another
    after = {k: v for k, v in os.environ.items() if k.startswith(("JUJU", "OPERATOR"))}
    assert after == before


def test_wrapper_classes_are_reset_after_each_dispatch(tmp_path, monkeypatch):
    sim, runtime = _observer_sim(tmp_path, monkeypatch, 2)
    try:
        sim.deploy(2)
        assert sim.run_until_quiet(10_000) == "quiet"
    finally:
        sim.close()
    (wrapper,) = direct._wrappers[runtime.charm_type]
    assert not wrapper.busy
    # define_event added the peer relation's events during each dispatch; all gone now.
    assert not any(k.startswith("peer_") for k in vars(wrapper.events_cls))
    assert set(vars(wrapper.cls)) == wrapper._keys
    # A dispatch nested in another (the wrapper busy) gets classes of its own.
    wrapper.busy = True
    try:
        nested = direct._take_wrapper(runtime.charm_type)
        assert nested is not wrapper and nested.cls is not wrapper.cls
        nested.busy = False
    finally:
        wrapper.busy = False


def test_a_dispatch_leaves_nothing_for_the_cyclic_gc(tmp_path, monkeypatch):
    # Under Juju the process ends with the dispatch; here what ops built for it (the
    # framework, model, charm and their objects refer to one another) must be freed by
    # reference counting when the hook returns, not left to the cyclic GC.
    sim, _ = _observer_sim(tmp_path, monkeypatch, 3)
    gc.collect()
    gc.disable()
    try:
        sim.deploy(3)
        assert sim.run_until_quiet(10_000) == "quiet"
        hooks = len(sim.records)
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        left = [o for o in gc.garbage if type(o).__module__.split(".")[0] == "ops"]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
        sim.close()
    assert hooks > 20
    assert left == []


def test_remembered_tool_arguments_are_copies_and_errors_are_not_remembered():
    spec = hooktools._TOOLS["relation-get"]
    argv = ["--format=json", "-r", "peer:0", "-", "app/1"]
    first = hooktools._parse("relation-get", spec, argv)
    first.opts["relation"] = "mangled"
    first.args.append("mangled")
    again = hooktools._parse("relation-get", spec, argv)
    assert again.opts["relation"] == "peer:0" and again.args == ["-", "app/1"]
    for _ in range(2):
        with pytest.raises(UsageError):
            hooktools._parse("relation-get", spec, ["--bogus"])


def test_observer_signatures_bind_like_inspect():
    class Charm:
        def good(self, event):  # type: ignore[no-untyped-def]
            pass

        def bad(self):  # type: ignore[no-untyped-def]
            pass

    direct._install_fast_paths()
    from ops import framework

    obj = Charm()
    good = framework.inspect.signature(obj.good, follow_wrapped=False)
    assert good.bind(object()) is None and good.bind(object()) is None
    assert good.parameters == inspect.signature(obj.good).parameters
    bad = framework.inspect.signature(obj.bad, follow_wrapped=False)
    for _ in range(2):
        with pytest.raises(TypeError):
            bad.bind(object())


def test_juju_contexts_are_shared_between_runtimes_with_their_own_charm_dir(tmp_path):
    from ops.jujucontext import JujuContext

    charm = str(CHARMS / "observer")
    first = direct.DirectRuntime(charm, str(tmp_path / "one"))
    second = direct.DirectRuntime(charm, str(tmp_path / "two"))
    try:
        for runtime in (first, second, first):
            env = {
                "JUJU_UNIT_NAME": "observer/1",
                "JUJU_MODEL_NAME": "m",
                "JUJU_MODEL_UUID": "u",
                "JUJU_VERSION": "3.6.8",
                "JUJU_CHARM_DIR": runtime.charm_root,
                "JUJU_HOOK_NAME": "peer-relation-changed",
                "JUJU_DISPATCH_PATH": "hooks/peer-relation-changed",
                "JUJU_RELATION": "peer",
                "JUJU_RELATION_ID": "peer:0",
                "JUJU_REMOTE_UNIT": "observer/0",
                "JUJUSIM_NOW": str(len(runtime._contexts)),
            }
            for _ in range(2):
                assert runtime._juju_context(env) == JujuContext._from_dict(env)
            assert (
                runtime._juju_context(env).charm_dir
                == (tmp_path / ("one" if runtime is first else "two") / "charm-root").resolve()
            )
    finally:
        first.close()
        second.close()
