"""Membership and leadership events of the Coordinator, in the simulator.

The members test charm journals every member_joined, member_left, leadership_gained
and leadership_lost event; these tests compare them with what the simulator did
(deploy, add-unit, remove-unit, a leadership move).
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

from simkit import CHARMS

from jujusim.charmspec import load_charm_spec
from jujusim.direct import DirectRuntime
from jujusim.engine import SimConfig, Simulator


def events(sim: Simulator, kind: str) -> list[dict[str, Any]]:
    path = pathlib.Path(sim.journal.path)
    if not path.exists():
        return []
    return [r for r in map(json.loads, path.read_text().splitlines()) if r["event"] == kind]


def pairs(sim: Simulator, kind: str) -> set[tuple[str, str]]:
    return {(r["unit"], r["member"]) for r in events(sim, kind)}


def test_members_join_leave_and_leadership_moves_are_events(tmp_path) -> None:
    spec = load_charm_spec(str(CHARMS / "members"))
    runtime = DirectRuntime(spec.charm_dir, str(tmp_path / "runtime"))
    sim = Simulator(spec, runtime, SimConfig(seed=3), workdir=str(tmp_path))
    try:
        units = sim.deploy(3)
        assert sim.run_until_quiet(10_000) == "quiet"
        # every unit heard of each other unit joining, once
        joined = [(r["unit"], r["member"]) for r in events(sim, "member_joined")]
        assert sorted(joined) == sorted((u, v) for u in units for v in units if u != v)
        first_leader = sim.model.leader
        gained = [r["unit"] for r in events(sim, "leadership_gained")]
        assert gained == [first_leader]

        new = sim.add_unit()
        assert sim.run_until_quiet(10_000) == "quiet"
        assert {(u, new) for u in units} <= pairs(sim, "member_joined")
        latest = {r["unit"]: r["members"] for r in events(sim, "member_joined")}
        assert latest[units[0]] == sorted([*units, new], key=lambda u: int(u.split("/")[1]))

        gone = next(u for u in units if u != first_leader)
        sim.remove_unit(gone)
        assert sim.run_until_quiet(10_000) == "quiet"
        left = pairs(sim, "member_left")
        stayed = [u for u in [*units, new] if u != gone]
        assert {(u, gone) for u in stayed} <= left
        assert all(member == gone for _, member in left)

        other = next(u for u in stayed if u != first_leader)
        sim.set_leader(other)
        assert sim.run_until_quiet(10_000) == "quiet"
        moves = [(r["unit"], r["event"]) for r in events(sim, "leadership_gained")]
        moves += [(r["unit"], r["event"]) for r in events(sim, "leadership_lost")]
        assert sorted(moves) == sorted(
            [
                (first_leader, "leadership_gained"),
                (other, "leadership_gained"),
                (first_leader, "leadership_lost"),
            ]
        )
        lost = events(sim, "leadership_lost")
        assert [r["leader"] for r in lost] == [False]
    finally:
        sim.close()
