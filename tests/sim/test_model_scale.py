"""Leadership changes, units added and removed."""

from __future__ import annotations

from simkit import func_sim, hooks_of, observer_sim


def test_new_leader_gets_leader_elected_others_leader_settings_changed(tmp_path, monkeypatch):
    sim, _ = observer_sim(tmp_path, monkeypatch, 3, seed=1)
    old = sim.model.leader
    new = next(u for u in sim.model.alive if u != old)
    t0 = sim.now
    sim.set_leader(new)
    assert sim.run_until_quiet(1000) == "quiet"
    for unit in sim.model.alive:
        kinds = [r.hook.kind for r in hooks_of(sim, unit, t0)]
        if unit == new:
            assert kinds == ["leader-elected"]
        else:
            assert kinds == ["leader-settings-changed"]  # the deposed leader too
    assert sim.agents[new].leader and not sim.agents[old].leader


def test_added_unit_deploys_and_joins_both_ways(tmp_path, monkeypatch):
    sim, seen = observer_sim(tmp_path, monkeypatch, 2, seed=2)
    t0 = sim.now
    new = sim.add_unit()
    assert sim.run_until_quiet(1000) == "quiet"
    hooks = seen.hooks(new)
    assert hooks[:5] == [
        "install",
        "peer-relation-created",
        "leader-settings-changed",
        "config-changed",
        "start",
    ]
    assert sorted(hooks[5:]) == sorted(["peer-relation-joined", "peer-relation-changed"] * 2)
    for unit in sim.model.alive:
        if unit != new:
            about_new = [r.hook.kind for r in hooks_of(sim, unit, t0) if r.hook.remote_unit == new]
            assert about_new == ["relation-joined", "relation-changed"]


def test_removed_unit_departs_both_ways_without_broken(tmp_path, monkeypatch):
    sim, seen = observer_sim(tmp_path, monkeypatch, 3, seed=3)
    units = sorted(sim.model.alive)
    gone = units[1]
    rest = [u for u in units if u != gone]
    sim.run_action(gone, "write", {"value": "last-words"})
    assert sim.run_until_quiet(1000) == "quiet"
    t0 = sim.now
    sim.remove_unit(gone)
    assert sim.run_until_quiet(1000) == "quiet"
    mine = [r for r in seen.of(gone) if r["hooks_before"] >= 0][-4:]
    assert [r["hook"] for r in mine] == [
        "peer-relation-departed",
        "peer-relation-departed",
        "stop",
        "remove",
    ]
    assert sorted(r["remote"] for r in mine[:2]) == rest
    assert all(r["departing"] == gone for r in mine[:2])
    last_departed_end = max(
        r.end for r in hooks_of(sim, gone, t0) if r.hook.kind == "relation-departed"
    )
    for unit in rest:
        departed = [r for r in hooks_of(sim, unit, t0) if r.hook.kind == "relation-departed"]
        assert len(departed) == 1 and departed[0].start > last_departed_end
        obs = [r for r in seen.of(unit) if r["hook"] == "peer-relation-departed"][-1]
        assert obs["remote"] == gone and obs["departing"] == gone
        assert gone not in obs["units"]  # already gone from relation-list
        assert obs["departed_bump"] == "no-access"  # ops hides a departed peer's bag
    assert all("broken" not in r["hook"] for r in seen.all())
    assert gone in sim.removed and gone not in sim.model.alive


def test_removing_the_leader_elects_another(tmp_path, monkeypatch):
    sim, _ = observer_sim(tmp_path, monkeypatch, 3, seed=4)
    old = sim.model.leader
    t0 = sim.now
    sim.remove_unit(old)
    assert sim.run_until_quiet(1000) == "quiet"
    assert sim.model.leader in sim.model.alive
    new = sim.model.leader
    assert [r.hook.kind for r in hooks_of(sim, new, t0)][-1] in (
        "leader-elected",
        "relation-departed",
    )
    assert any(r.hook.kind == "leader-elected" for r in hooks_of(sim, new, t0))


def test_departed_units_data_stays_readable_through_hook_tools(tmp_path):
    reads = {}

    def fn(inv, ctx):
        if inv.kind == "action":
            ctx.relation_set("peer:0", {"k": "last-words"}, app=False)
        if inv.name == "peer-relation-departed":
            remote = inv.env["JUJU_REMOTE_UNIT"]
            reads[ctx.unit_name] = (ctx.relation_get("peer:0", remote, app=False).get("k"),
                                    ctx.relation_list("peer:0"))
        return 0

    sim = func_sim(tmp_path, fn, 3)
    assert sim.run_until_quiet(1000) == "quiet"
    gone = sorted(sim.model.alive)[0]
    sim.run_action(gone, "write")
    assert sim.run_until_quiet(1000) == "quiet"
    sim.remove_unit(gone)
    assert sim.run_until_quiet(1000) == "quiet"
    for unit in sim.model.alive:
        value, listed = reads[unit]
        assert value == "last-words" and gone not in listed
