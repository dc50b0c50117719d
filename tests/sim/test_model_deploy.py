"""Deploy order, one hook at a time per unit, overlapping hooks across units."""

from __future__ import annotations

import itertools

from simkit import observer_sim


def test_deploy_order_leader_and_minions(tmp_path, monkeypatch):
    sim, seen = observer_sim(tmp_path, monkeypatch, 3, seed=4)
    leader = sim.model.leader
    for unit in sim.model.alive:
        hooks = seen.hooks(unit)
        middle = "leader-elected" if unit == leader else "leader-settings-changed"
        assert hooks[:5] == [
            "install",
            "peer-relation-created",
            middle,
            "config-changed",
            "start",
        ], hooks
        # then joined/changed for every other unit, changed right after joined
        rest = hooks[5:]
        assert sorted(rest) == sorted(["peer-relation-joined", "peer-relation-changed"] * 2)
        records = [r for r in seen.of(unit)[5:]]
        for i, r in enumerate(records):
            if r["hook"] == "peer-relation-joined":
                assert records[i + 1]["hook"] == "peer-relation-changed"
                assert records[i + 1]["remote"] == r["remote"]
    assert sum(h == "leader-elected" for u in sim.model.alive for h in seen.hooks(u)) == 1


def test_is_leader_true_in_relation_created_for_the_leader(tmp_path, monkeypatch):
    sim, seen = observer_sim(tmp_path, monkeypatch, 2, seed=1)
    created = [r for r in seen.all() if r["hook"] == "peer-relation-created"]
    assert {r["unit"]: r["leader"] for r in created} == {
        u: u == sim.model.leader for u in sim.model.alive
    }


def test_one_hook_at_a_time_per_unit_but_units_overlap(tmp_path, monkeypatch):
    sim, _ = observer_sim(tmp_path, monkeypatch, 4, seed=2)
    by_unit: dict[str, list[tuple[float, float]]] = {}
    for r in sim.records:
        by_unit.setdefault(r.unit, []).append((r.start, r.end))
    for intervals in by_unit.values():
        for (s1, e1), (s2, _) in itertools.pairwise(intervals):
            assert s1 < e1 <= s2
    overlapping = 0
    units = list(by_unit)
    for i, a in enumerate(units):
        for b in units[i + 1 :]:
            for s1, e1 in by_unit[a]:
                overlapping += sum(1 for s2, e2 in by_unit[b] if s1 < e2 and s2 < e1)
    assert overlapping > 0


def test_relation_created_fires_for_a_single_unit_without_joined(tmp_path, monkeypatch):
    sim, seen = observer_sim(tmp_path, monkeypatch, 1)
    assert seen.hooks(sim.model.alive[0]) == [
        "install",
        "peer-relation-created",
        "leader-elected",
        "config-changed",
        "start",
    ]


def test_same_seed_same_schedule(tmp_path, monkeypatch):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a, _ = observer_sim(tmp_path / "a", monkeypatch, 3, seed=9)
    b, _ = observer_sim(tmp_path / "b", monkeypatch, 3, seed=9)
    key = [(r.unit, r.hook.about, r.start, r.end) for r in a.records]
    assert key == [(r.unit, r.hook.about, r.start, r.end) for r in b.records]
