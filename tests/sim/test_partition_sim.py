"""The partition test charm in jujusim: once quiet, the units agree on who owns what,
and a join or a leave moves only the items it must."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest
from simkit import CHARMS

from charm_coordinator.hashring import assign
from jujusim.charmspec import load_charm_spec
from jujusim.direct import DirectRuntime
from jujusim.engine import SimConfig, Simulator

ITEMS = [f"item-{i}" for i in range(60)]  # the charm's default "items" config


def lines(sim: Simulator) -> list[dict[str, Any]]:
    path = pathlib.Path(sim.journal.path)
    return [r for r in map(json.loads, path.read_text().splitlines()) if r["event"] == "owns"]


def ownership(sim: Simulator) -> dict[str, str]:
    """item -> owner, from each live unit's latest line; every item exactly once."""
    latest = {r["unit"]: r for r in lines(sim)}
    alive = sorted(sim.model.alive)
    claims: dict[str, list[str]] = {}
    for unit in alive:
        assert latest[unit]["members"] == alive, unit  # it saw the final membership
        for item in latest[unit]["items"]:
            claims.setdefault(item, []).append(unit)
    assert sorted(claims) == sorted(ITEMS)
    assert {item: units for item, units in claims.items() if len(units) > 1} == {}
    expected = assign(ITEMS, alive)
    assert {item: (units[0],) for item, units in claims.items()} == expected
    return {item: units[0] for item, units in claims.items()}


@pytest.mark.parametrize("seed", [1, 2])
def test_units_agree_and_joins_and_leaves_move_only_their_items(tmp_path, seed):
    spec = load_charm_spec(str(CHARMS / "partition"))
    runtime = DirectRuntime(spec.charm_dir, str(tmp_path / "runtime"))
    sim = Simulator(spec, runtime, SimConfig(seed=seed), workdir=str(tmp_path))
    try:
        sim.deploy(4)
        assert sim.run_until_quiet(10_000) == "quiet"
        four = ownership(sim)
        assert len(set(four.values())) == 4

        before = len(lines(sim))
        newcomer = sim.add_unit()
        assert sim.run_until_quiet(10_000) == "quiet"
        five = ownership(sim)
        moved = [item for item in ITEMS if five[item] != four[item]]
        assert moved, "the newcomer took nothing"
        assert all(five[item] == newcomer for item in moved)
        # Whatever order the hooks ran in, a join never left an item without an owner:
        # the newcomer claims its items from its first hook (alone, it claims them all).
        claims = {r["unit"]: r["items"] for r in lines(sim)[:before]}
        for record in lines(sim)[before:]:
            claims[record["unit"]] = record["items"]
            assert {item for items in claims.values() for item in items} == set(ITEMS)

        leaver = sim.model.leader if seed == 1 else sorted(sim.model.alive)[1]
        assert leaver is not None
        sim.remove_unit(leaver)
        assert sim.run_until_quiet(10_000) == "quiet"
        after = ownership(sim)
        moved = [item for item in ITEMS if after[item] != five[item]]
        assert sorted(moved) == sorted(item for item in ITEMS if five[item] == leaver)
        # On its way out, the leaver gave its items up rather than claim everything.
        assert [r for r in lines(sim) if r["unit"] == leaver][-1]["items"] == []
    finally:
        sim.close()
