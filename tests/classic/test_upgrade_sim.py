"""Upgrading from charmhelpers.coordinator to the drop-in in the middle of a rolling restart.

The old revision (examples/charmhelpers-rolling-restart) runs the real charmhelpers 1.2.1
``Serial``; the new one (examples/classic-rolling-restart) runs charm_coordinator.classic.
Each run deploys the old revision in the process runtime, triggers a rolling restart, and
upgrades the units one by one while requests and grants are outstanding. Checked: the
run completes (every unit restarted after the trigger), never two units operating at once,
and nothing of charmhelpers' format is left at the end.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jujusim.runner import RunResult, run_scenario

ROOT = Path(__file__).resolve().parent.parent.parent
OLD = ROOT / "examples" / "charmhelpers-rolling-restart"
NEW = ROOT / "examples" / "classic-rolling-restart"
KEY = "coordinator"


def upgrade(scenario: str, units: int, seed: int, tmp_path: Path) -> RunResult:
    return run_scenario(
        str(OLD),
        units=units,
        scenario=scenario,
        runtime="process",
        seed=seed,
        upgrade_to=str(NEW),
        workdir=str(tmp_path / "sim"),
    )


def assert_upgraded_cleanly(result: RunResult) -> None:
    """Completed, exclusive, every unit upgraded, and only the protocol's data left."""
    assert result.violations == []
    assert result.completed, result.end
    assert result.verdict.max_concurrent == 1
    assert result.failed_hooks == 0
    assert sorted(result.upgraded_units) == sorted(result.unit_names)
    done = [o for o in result.verdict.operations if o.end is not None]
    assert sorted(o.unit for o in done) == sorted(result.unit_names)  # each once
    # The upgrade really happened mid-restart: some unit upgraded before its restart.
    upgraded_at = {r.unit: r.start for r in result.records if r.hook.kind == "upgrade-charm"}
    assert any(upgraded_at[o.unit] < o.start for o in done)
    model = result.model
    assert model is not None
    assert KEY not in model.leader_settings and f"{KEY}-wake" not in model.leader_settings
    (rel,) = model.relations.values()
    app = json.loads(rel.app_bag[KEY])  # the protocol is in force
    assert app["v"] == 1
    released: dict[tuple[str, str], int] = {}
    for unit in result.unit_names:
        bag = rel.unit_bags[unit]
        assert f"{KEY}-version" not in bag and f"{KEY}-ack" not in bag, (unit, bag)
        raw = bag.get(KEY)
        if raw:  # converted: a v1 doc with nothing pending
            doc = json.loads(raw)
            assert doc["v"] == 1, (unit, raw)
            assert all(r["released"] >= r["id"] for r in doc["locks"].values()), (unit, raw)
            released.update({(unit, lock): r["released"] for lock, r in doc["locks"].items()})
    # Entries left in the queue are dead (released); the leader prunes them lazily, in
    # its next hook that writes anyway or in update-status (docs/protocol.md, rule 5).
    for lock, queue in app["queues"].items():
        for _seq, unit, rid, _mode in queue:
            assert released.get((unit, lock), 0) >= rid, (lock, unit, rid)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("scenario", "units", "seed"),
    [
        ("upgrade-leader-first", 3, 1),
        ("upgrade-leader-last", 3, 2),
        ("upgrade-mid-restart", 4, 3),
    ],
)
def test_upgrade_from_charmhelpers_mid_restart(
    scenario: str, units: int, seed: int, tmp_path: Path
) -> None:
    result = upgrade(scenario, units, seed, tmp_path)
    assert_upgraded_cleanly(result)
    if scenario != "upgrade-mid-restart":
        leader_at = result.upgraded_units.index(result.final_leader or "")
        assert leader_at == (0 if scenario == "upgrade-leader-first" else units - 1)
