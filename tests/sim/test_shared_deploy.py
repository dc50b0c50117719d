"""One deployment, several schedules: a restored deployment runs as a fresh one would.

A campaign with ``--share-deploys K`` deploys once per K schedules, snapshots the
settled model (engine and direct runtime), and restores it for the others. That is
only sound if a schedule run from the restored snapshot is the very run ``run --seed S
--deploy-seed D`` makes from scratch, hook for hook: these tests compare whole records.
"""

from __future__ import annotations

import json

import pytest
from simkit import CHARMS

from jujusim.campaign import run_campaign, run_schedule, schedule_plan
from jujusim.charmspec import load_charm_spec
from jujusim.cli import main
from jujusim.engine import Simulator
from jujusim.faults import parse_faults
from jujusim.reliability import markdown
from jujusim.runner import DeployCache, _NullRuntime, run_scenario

CHARM = str(CHARMS / "campaign")
FAULTS = parse_faults("campaign")
RULE = {"restart-limit": 2, "shared-units": "odd", "restart-order": "priority"}


def _run(seed: int, deploys: DeployCache | None, deploy_seed: int | None = 99):
    return run_scenario(
        CHARM,
        units=4,
        runtime="direct",
        seed=seed,
        deploy_seed=deploy_seed,
        faults=FAULTS,
        charm_config=RULE,
        deploys=deploys,
    )


def test_runs_from_a_restored_deployment_are_the_runs_from_scratch():
    cache = DeployCache()
    shared = [_run(seed, cache) for seed in (1, 2, 3)]
    assert cache.hits == 2  # deployed once, restored twice
    for seed, got in zip((1, 2, 3), shared, strict=True):
        fresh = _run(seed, None)
        assert got.records == fresh.records  # every hook: unit, times, outcome, journal
        assert got.violations == fresh.violations == []
        assert got.deploy_seed == fresh.deploy_seed == 99
    # the schedules share the deployment and differ after it
    deployed = shared[0].records[: _deploy_hooks(shared[0])]
    assert all(r.records[: len(deployed)] == deployed for r in shared)
    assert len({tuple((h.unit, h.start) for h in r.records) for r in shared}) == 3
    # what the restored ones did not run again is said
    assert [r.hooks_restored for r in shared] == [0, len(deployed), len(deployed)]


def _deploy_hooks(result) -> int:
    return sum(1 for r in result.records if r.start < result.trigger_time)


def test_a_deploy_seed_equal_to_the_seed_is_the_plain_run():
    plain = _run(5, None, deploy_seed=None)
    same = _run(5, None, deploy_seed=5)
    assert same.records == plain.records
    assert same.deploy_seed is None and same.to_json()["deploy_seed"] is None


def test_the_cache_keys_on_what_shapes_a_deployment():
    cache = DeployCache()
    _run(1, cache)
    other_rule = run_scenario(
        CHARM, units=4, runtime="direct", seed=1, deploy_seed=99, faults=FAULTS,
        charm_config={**RULE, "restart-limit": 3}, deploys=cache,
    )  # fmt: skip
    other_units = run_scenario(
        CHARM, units=3, runtime="direct", seed=1, deploy_seed=99, faults=FAULTS,
        charm_config=RULE, deploys=cache,
    )  # fmt: skip
    assert cache.hits == 0
    assert other_rule.violations == other_units.violations == []


def test_a_snapshot_is_refused_once_the_trigger_has_happened():
    sim = Simulator(load_charm_spec(CHARM), _NullRuntime())
    sim.mark_trigger()
    with pytest.raises(RuntimeError, match="before its trigger"):
        sim.snapshot()


def test_a_plan_shares_deployments_in_groups_and_replays_with_the_deploy_seed():
    options = load_charm_spec(CHARM).config["options"]
    plan = schedule_plan(3, 10, (2, 12), options=options, share_deploys=4)
    assert [s.index for s in plan] == list(range(10))
    groups = [plan[0:4], plan[4:8], plan[8:10]]
    for group in groups:
        shape = {(s.units, s.config, s.zones, s.deploy_seed) for s in group}
        assert len(shape) == 1
        assert len({s.seed for s in group}) == len(group)
    assert len({g[0].deploy_seed for g in groups}) == 3
    assert f"--deploy-seed {plan[0].deploy_seed}" in plan[0].config_args()
    # one per deployment is the plan as it always was
    assert all(s.deploy_seed is None for s in schedule_plan(3, 10, (2, 12), options=options))
    with pytest.raises(ValueError):
        schedule_plan(3, 10, (2, 12), share_deploys=0)


def test_a_shared_schedule_replays_from_the_command_line(tmp_path):
    options = load_charm_spec(CHARM).config["options"]
    plan = schedule_plan(11, 2, (3, 3), options=options, share_deploys=2)
    cache = DeployCache()
    results = [
        run_schedule(CHARM, s, runtime="direct", faults=FAULTS, deploys=cache) for s in plan
    ]
    assert cache.hits == 1
    second = plan[1]
    out = tmp_path / "replay.json"
    argv = [
        "run", CHARM, "--units", str(second.units), "--runtime", "direct",
        "--seed", str(second.seed), "--faults", str(FAULTS), "--no-timeline",
        "--json", str(out), *second.config_args().split(),
    ]  # fmt: skip
    assert main([a.strip("'") for a in argv]) == 0
    replay = json.loads(out.read_text())
    assert replay["deploy_seed"] == second.deploy_seed
    assert replay["hooks_total"] == results[1].hooks_total
    assert replay["hooks"] == results[1].hooks


def test_a_campaign_with_shared_deployments_adds_up_alike_in_workers_and_in_process():
    common = dict(
        schedules=6, units=(2, 4), runtime="direct", seed=8, faults=FAULTS, share_deploys=3
    )
    pooled = run_campaign(CHARM, workers=2, **common)
    alone = run_campaign(CHARM, workers=1, **common)
    assert pooled.to_json()["share_deploys"] == 3
    assert pooled.failing == alone.failing == []
    assert (pooled.hooks, pooled.hooks_total) == (alone.hooks, alone.hooks_total)
    assert 0 < pooled.hooks_restored == alone.hooks_restored < pooled.hooks_total - pooled.hooks
    data = pooled.to_json()
    assert data["hooks_run"] == data["hooks_total"] - data["hooks_restored"]
    assert "restored for the others" in markdown(pooled, command="python -m jujusim campaign")
