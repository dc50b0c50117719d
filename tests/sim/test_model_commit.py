"""Commit on exit 0, immediate tools, retries with backoff, the error state."""

from __future__ import annotations

import itertools

import pytest
from simkit import func_sim, hooks_of, names, observer_sim


def test_hooks_see_a_view_taken_at_start(tmp_path, monkeypatch):
    sim, seen = observer_sim(tmp_path, monkeypatch, 3, seed=3)
    t0 = sim.now
    sim.set_config({"bump": "v1"})
    assert sim.run_until_quiet(1000) == "quiet"
    configs = [r for r in sim.records if r.start >= t0 and r.hook.kind == "config-changed"]
    # all three config-changed hooks overlap in logical time ...
    assert max(r.start for r in configs) < min(r.end for r in configs)
    # ... and none of them saw another unit's write of that round
    seen_cc = [r for r in seen.all() if r["hook"] == "config-changed"][-3:]
    for r in seen_cc:
        assert all(v is None for v in r["peer_bump"].values()), r
    # each unit then gets relation-changed for each other unit, which sees the write
    for unit in sim.model.alive:
        changed = [r for r in seen.of(unit) if r["hook"] == "peer-relation-changed"][-2:]
        others = sorted(u for u in sim.model.alive if u != unit)
        assert sorted(r["remote"] for r in changed) == others
        for r in changed:
            assert r["peer_bump"][r["remote"]] == "v1"


def test_relation_changed_starts_only_after_the_writer_commits(tmp_path, monkeypatch):
    sim, _ = observer_sim(tmp_path, monkeypatch, 3, seed=5)
    t0 = sim.now
    sim.set_config({"bump": "v1"})
    sim.run_until_quiet(1000)
    commit = {
        r.unit: r.end for r in sim.records if r.start >= t0 and r.hook.kind == "config-changed"
    }
    for r in sim.records:
        if r.start >= t0 and r.hook.kind == "relation-changed" and r.hook.remote_unit:
            assert r.start > commit[r.hook.remote_unit]


def test_failed_hook_commits_nothing_and_is_retried_with_backoff(tmp_path, monkeypatch):
    sim, _seen = observer_sim(tmp_path, monkeypatch, 2, seed=1)
    victim = sorted(sim.model.alive)[0]
    other = sorted(sim.model.alive)[1]
    t0 = sim.now
    sim.set_config({"bump": "v1", "fail": f"{victim}:config-changed*4"})
    while sim.agents[victim].failed is None:
        sim.step()
    # status-set is immediate: it stands although the hook failed
    assert sim.model.unit_status[victim] == ("maintenance", "ran config-changed")
    assert sim.run_until_quiet(1000) == "quiet"
    mine = [r for r in hooks_of(sim, victim, t0) if r.hook.kind == "config-changed"]
    assert [r.ok for r in mine] == [False, False, False, False, True]
    gaps = [b.start - a.end for a, b in itertools.pairwise(mine)]
    for gap, expected in zip(gaps, (5, 10, 20, 40), strict=False):
        assert expected <= gap <= expected + 0.5  # retry timer, plus the dispatch delay
    # nothing from the failed attempts was published: the other unit got one changed,
    # after the successful attempt committed
    theirs = [r for r in hooks_of(sim, other, t0) if r.hook.remote_unit == victim]
    assert len(theirs) == 1 and theirs[0].start > mine[-1].end


def test_backoff_caps_at_five_minutes(tmp_path):
    def fn(inv, ctx):
        return 1 if inv.name == "config-changed" else 0

    sim = func_sim(tmp_path, fn, 1)
    for _ in range(3000):
        sim.step()
        if len([r for r in sim.records if r.hook.kind == "config-changed"]) >= 9:
            break
    cc = [r for r in sim.records if r.hook.kind == "config-changed"]
    gaps = [round(b.start - a.end) for a, b in itertools.pairwise(cc)]
    assert gaps[:8] == [5, 10, 20, 40, 80, 160, 300, 300]


def test_unit_in_error_runs_no_other_hooks_but_actions_run(tmp_path, monkeypatch):
    sim, _seen = observer_sim(tmp_path, monkeypatch, 2, seed=2)
    victim, other = sorted(sim.model.alive)
    t0 = sim.now
    sim.set_config({"bump": "v1", "fail": f"{victim}:config-changed*3"})
    # run until the victim is in error, then ask for an action on it
    while sim.agents[victim].failed is None:
        sim.step()
    sim.run_action(victim, "ping")
    assert sim.run_until_quiet(1000) == "quiet"
    mine = hooks_of(sim, victim, t0)
    first_ok = next(i for i, r in enumerate(mine) if r.hook.kind == "config-changed" and r.ok)
    before = mine[:first_ok]
    assert {r.hook.kind for r in before} <= {"config-changed", "action"}
    assert any(r.hook.kind == "action" and r.ok for r in before)
    # the other unit's write did reach the victim, but only after it recovered
    assert any(r.hook.remote_unit == other for r in mine[first_ok:])


def test_leader_set_status_and_log_are_immediate(tmp_path):
    def fn(inv, ctx):
        if inv.name == "config-changed" and ctx.is_leader():
            ctx.leader_set({"k": "v"})
            ctx.status_set("maintenance", "doing", application=False)
            ctx.juju_log("INFO", "hello")
            ctx.relation_set("peer:0", {"x": "1"}, app=False)
            return 1
        return 0

    sim = func_sim(tmp_path, fn, 2)
    leader = sim.model.leader
    while not any(r.unit == leader and r.hook.kind == "config-changed" for r in sim.records):
        sim.step()
    # the hook has run but not committed: leader-set and status-set already landed
    assert sim.model.leader_settings == {"k": "v"}
    assert sim.model.unit_status[leader] == ("maintenance", "doing")
    assert sim.logs >= 1
    run_hook = [r for r in sim.records if r.unit == leader][-1]
    while sim.agents[leader].busy:
        sim.step()
    assert not run_hook.ok
    assert "x" not in sim.model.relations[0].unit_bags.get(leader, {})
    assert sim.model.leader_settings == {"k": "v"}  # not rolled back


def test_leader_settings_changed_goes_to_minions_only_and_coalesces(tmp_path):
    def fn(inv, ctx):
        if inv.kind == "action" and ctx.is_leader():
            ctx.leader_set({"n": inv.action_params["n"]})
        return 0

    sim = func_sim(tmp_path, fn, 3)
    assert sim.run_until_quiet(1000) == "quiet"
    leader = sim.model.leader
    t0 = sim.now
    for n in ("1", "2", "3"):
        sim.run_action(leader, "ping", {"n": n})
    assert sim.run_until_quiet(1000) == "quiet"
    for unit in sim.model.alive:
        lsc = [r for r in hooks_of(sim, unit, t0) if r.hook.kind == "leader-settings-changed"]
        if unit == leader:
            assert lsc == []
        else:
            assert 1 <= len(lsc) <= 3  # coalesced when the minion was busy


@pytest.mark.parametrize("switch", [True, False])
def test_app_bag_commit_reaches_every_unit_and_the_leader_when_switched_on(
    tmp_path, monkeypatch, switch
):
    sim, seen = observer_sim(
        tmp_path, monkeypatch, 3, seed=6, leader_sees_own_app_changes=switch
    )
    leader = sim.model.leader
    t0 = sim.now
    sim.set_config({"app-bump": "a1"})
    assert sim.run_until_quiet(1000) == "quiet"
    for unit in sim.model.alive:
        app_level = [
            r for r in hooks_of(sim, unit, t0) if r.hook.about == "peer-relation-changed(app)"
        ]
        expected = 0 if (unit == leader and not switch) else 1
        assert len(app_level) == expected, (unit, names(hooks_of(sim, unit, t0)))
    for r in seen.all()[-10:]:
        if r["hook"] == "peer-relation-changed" and r["remote"] is None:
            assert r["app"] == {"bump": "a1"}


def test_non_leader_app_write_fails_the_hook(tmp_path, monkeypatch):
    sim, _ = observer_sim(tmp_path, monkeypatch, 2, seed=7)
    leader = sim.model.leader
    t0 = sim.now
    sim.set_config({"app-bump": "force:a1"})
    for _ in range(200):
        sim.step()
    cc = {r.unit: r for r in sim.records if r.start >= t0 and r.hook.kind == "config-changed"}
    assert cc[leader].ok
    minion = next(u for u in sim.model.alive if u != leader)
    assert not cc[minion].ok and "not leader" in cc[minion].error
    assert sim.agents[minion].failed is not None


def test_leadership_lost_mid_hook_fails_the_app_write_at_commit(tmp_path, monkeypatch):
    sim, _ = observer_sim(tmp_path, monkeypatch, 2, seed=8)
    leader = sim.model.leader
    minion = next(u for u in sim.model.alive if u != leader)
    t0 = sim.now
    sim.set_config({"app-bump": "a1"})
    while not sim.agents[leader].busy:
        sim.step()
    sim.set_leader(minion)  # the old leader's hook is running
    while sim.agents[leader].busy:
        sim.step()
    hook = next(r for r in sim.records if r.unit == leader and r.start >= t0)
    assert hook.hook.kind == "config-changed"
    assert not hook.ok and "not the leader" in hook.error
    assert sim.model.relations[0].app_bag == {}
