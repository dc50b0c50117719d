"""Fan-out, coalescing, unchanged writes, the agent cache, event order, timers, actions."""

from __future__ import annotations

import itertools

from simkit import hooks_of, observer_sim

from jujusim.agent import LocalRelation, UnitAgent, next_hook
from jujusim.model import Model, RelationData


def test_coalescing_several_commits_give_one_changed(tmp_path, monkeypatch):
    sim, seen = observer_sim(tmp_path, monkeypatch, 2, seed=3)
    writer, reader = sorted(sim.model.alive)
    t0 = sim.now
    # put the reader in error so it cannot run while the writer commits three times
    sim.set_config({"fail": f"{reader}:config-changed*2"})
    while sim.agents[reader].failed is None:
        sim.step()
    for value in ("w1", "w2", "w3"):
        sim.run_action(writer, "write", {"value": value})
    assert sim.run_until_quiet(1000) == "quiet"
    about_writer = [r for r in hooks_of(sim, reader, t0) if r.hook.remote_unit == writer]
    assert len(about_writer) == 1
    last = [r for r in seen.of(reader) if r["hook"] == "peer-relation-changed"][-1]
    assert last["peer_bump"][writer] == "w3"


def test_no_event_for_an_unchanged_write(tmp_path, monkeypatch):
    sim, _ = observer_sim(tmp_path, monkeypatch, 3, seed=4)
    writer = sorted(sim.model.alive)[0]
    sim.run_action(writer, "write", {"value": "same"})
    assert sim.run_until_quiet(1000) == "quiet"
    version = sim.model.relations[0].unit_versions[writer]
    t0 = sim.now
    sim.run_action(writer, "write", {"value": "same"})
    assert sim.run_until_quiet(1000) == "quiet"
    assert sim.model.relations[0].unit_versions[writer] == version
    assert [r.hook.kind for r in sim.records if r.start >= t0] == ["action"]


def test_agent_cache_keeps_a_stale_bag_until_the_next_changed(tmp_path, monkeypatch):
    sim, seen = observer_sim(tmp_path, monkeypatch, 2, seed=5)
    writer, reader = sorted(sim.model.alive)
    # the reader fails its config-changed once; when it retries, the writer's new
    # value is committed, but the reader's agent still serves its cached copy
    sim.set_config({"bump": "new", "fail": f"{reader}:config-changed*1"})
    assert sim.run_until_quiet(1000) == "quiet"
    cc = [r for r in seen.of(reader) if r["hook"] == "config-changed"][-2:]
    writer_commit = next(
        r.end for r in sim.records if r.unit == writer and r.hook.kind == "config-changed"
    )
    retry = [r for r in sim.records if r.unit == reader and r.hook.kind == "config-changed"][-1]
    assert retry.start > writer_commit  # committed before the retry started ...
    assert cc[-1]["peer_bump"][writer] is None  # ... yet the retry saw the cached bag
    changed = [r for r in seen.of(reader) if r["hook"] == "peer-relation-changed"][-1]
    assert changed["remote"] == writer and changed["peer_bump"][writer] == "new"


def test_relation_changed_for_every_other_unit_after_a_unit_bag_commit(tmp_path, monkeypatch):
    sim, _ = observer_sim(tmp_path, monkeypatch, 4, seed=6)
    writer = sorted(sim.model.alive)[2]
    t0 = sim.now
    sim.run_action(writer, "write", {"value": "x"})
    assert sim.run_until_quiet(1000) == "quiet"
    for unit in sim.model.alive:
        got = [r for r in hooks_of(sim, unit, t0) if r.hook.kind == "relation-changed"]
        if unit == writer:
            assert got == []  # no event for one's own unit-bag write
        else:
            assert [r.hook.remote_unit for r in got] == [writer]


def _resolver_fixture() -> tuple[Model, UnitAgent]:
    model = Model(app_name="app")
    rel = RelationData(0, "peer", "app")
    model.relations[0] = rel
    for u in ("app/0", "app/1", "app/2", "app/10", "app/3"):
        rel.enter_scope(u)
    model.leader = "app/0"
    agent = UnitAgent(
        "app/0",
        installed=True,
        started=True,
        leader=True,
        leader_settings_version=0,
        config_version=0,
    )
    # knows app/1 (changed since), app/2 and app/9 (gone); app/10, app/3 are new
    agent.relations[0] = LocalRelation(members={"app/1": 0, "app/2": 1, "app/9": 1})
    rel.unit_bags["app/9"] = {}
    rel.app_version = 4
    return model, agent


def test_per_relation_order_departed_app_joined_changed():
    model, agent = _resolver_fixture()
    order = []
    local = agent.relations[0]
    rel = model.relations[0]
    while (hook := next_hook(agent, model)) is not None:
        assert not isinstance(hook, str)
        order.append(hook.about)
        # commit it the way the engine does
        if hook.kind == "relation-departed":
            local.members.pop(hook.remote_unit or "")
        elif hook.kind == "relation-joined":
            local.members[hook.remote_unit or ""] = hook.version
            local.changed_pending = hook.remote_unit
        elif hook.kind == "relation-changed" and hook.remote_unit:
            local.members[hook.remote_unit] = rel.unit_versions[hook.remote_unit]
            if local.changed_pending == hook.remote_unit:
                local.changed_pending = None
        elif hook.kind == "relation-changed":
            local.app_version = hook.version
    assert order == [
        "peer-relation-departed(app/9)",
        "peer-relation-changed(app)",
        "peer-relation-joined(app/10)",  # sorted as strings, as Juju does
        "peer-relation-changed(app/10)",  # changed right after joined
        "peer-relation-joined(app/3)",
        "peer-relation-changed(app/3)",
        "peer-relation-changed(app/1)",  # unit-level changes last
    ]


def test_update_status_on_a_logical_timer(tmp_path, monkeypatch):
    sim, _ = observer_sim(tmp_path, monkeypatch, 2, seed=7)
    t0 = sim.now
    while sim.now < t0 + 1000:
        sim.step()
    for unit in sim.model.alive:
        us = [r.start for r in hooks_of(sim, unit, t0) if r.hook.kind == "update-status"]
        assert 2 <= len(us) <= 4
        gaps = [b - a for a, b in itertools.pairwise(us)]
        assert all(299 <= g <= 305 for g in gaps)


def test_actions_run_with_params_and_results(tmp_path, monkeypatch):
    sim, _seen = observer_sim(tmp_path, monkeypatch, 2, seed=8)
    unit = sim.model.alive[1]
    sim.run_action(unit, "write", {"value": "from-action"})
    assert sim.run_until_quiet(1000) == "quiet"
    action = [r for r in sim.records if r.hook.kind == "action"][-1]
    assert action.ok and action.hook.name == "write"
    assert sim.model.relations[0].unit_bags[unit]["bump"] == "from-action"
