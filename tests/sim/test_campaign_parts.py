"""The campaign's parts: plans, fault specs, --config replays, bounds, the report."""

from __future__ import annotations

import json

import pytest
from simkit import CHARMS

from jujusim.campaign import run_campaign, schedule_plan
from jujusim.charmspec import load_charm_spec
from jujusim.cli import main
from jujusim.faults import CAMPAIGN, parse_faults
from jujusim.invariants import bounds
from jujusim.reliability import markdown

CHARM = str(CHARMS / "campaign")


def test_plan_is_seeded_and_draws_lock_rules_for_the_campaign_charm():
    options = load_charm_spec(CHARM).config["options"]
    a = schedule_plan(7, 200, (2, 12), options=options, unit_weights="cost")
    assert a == schedule_plan(7, 200, (2, 12), options=options, unit_weights="cost")
    limits = {dict(s.config)["restart-limit"] for s in a}
    shared = {dict(s.config)["shared-units"] for s in a}
    assert limits == {1, 2, 3}
    assert {"none", "odd", "even", "all"} <= shared
    counts = [s.units for s in a]
    assert min(counts) == 2 and counts.count(2) > counts.count(6) > 0
    assert schedule_plan(7, 3, (2, 5))[0].config == ()  # no options, no rule
    # every ordering policy, zone-aware holding, and zones to be aware of
    assert {dict(s.config)["restart-order"] for s in a} == {"fifo", "priority", "leader-last"}
    assert {dict(s.config)["per-zone"] for s in a} == {0, 1, 2}
    assert {s.zones for s in a if dict(s.config)["per-zone"]} == {1, 2, 3}
    zoned = next(s for s in a if s.zones > 1)
    assert f"--zones {zoned.zones} " in zoned.config_args() + " "


def test_campaign_fault_spec_round_trips():
    spec = parse_faults("campaign")
    assert spec == CAMPAIGN
    assert parse_faults(str(spec)) == spec
    assert parse_faults("hostile=2,window=60").hostile == 2
    with pytest.raises(ValueError):
        parse_faults("persist=-1")


def test_run_takes_the_config_a_replay_passes(tmp_path):
    out = tmp_path / "r.json"
    code = main(
        [
            "run", CHARM, "--units", "3", "--runtime", "inprocess", "--seed", "2",
            "--config", "restart-limit=2", "--config", "shared-units=odd",
            "--no-timeline", "--json", str(out),
        ]
    )  # fmt: skip
    assert code == 0
    assert json.loads(out.read_text())["violations"] == []
    assert main(["run", CHARM, "--units", "2", "--config", "nope=1"]) == 2


def test_bounds_report_oversized_bags_and_hook_storms_per_operation():
    assert bounds(units_ever=3, databag_bytes_max=100, hooks=30, operations_done=3) == []
    bad = bounds(units_ever=3, databag_bytes_max=10**6, hooks=10**4, operations_done=1)
    assert len(bad) == 2 and "databag size" in bad[0] and "hooks per operation" in bad[1]


def test_campaign_figures_and_report(tmp_path):
    result = run_campaign(
        CHARM, schedules=4, units=(2, 3), faults=parse_faults("campaign"), seed=1, workers=2
    )
    assert result.failing == [] and result.completed == 4
    data = result.to_json()
    assert data["schedules"] == 4 and data["workers"] == 2 and data["hooks_per_s"] > 0
    text = markdown(result, command="python -m jujusim campaign ...")
    assert "## Fault model" in text and "## Invariants" in text and "verdict: **OK**" in text


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        ("persist=1", "injected failure (persistent)"),
        ("leader-error=200", "injected failure (persistent)"),
    ],
)
def test_persistent_failures_strike_and_the_model_recovers(spec, error):
    from jujusim.runner import run_scenario

    result = run_scenario(CHARM, units=3, seed=5, faults=parse_faults(spec))
    assert any(r.error == error for r in result.records), "the fault never struck"
    assert result.violations == [] and result.completed


def test_a_burst_coalesces_and_every_unit_restarts_for_the_last_token():
    from jujusim.runner import run_scenario

    result = run_scenario(CHARM, units=3, seed=6, faults=parse_faults("burst=1,window=5"))
    assert result.violations == [] and result.completed
    assert result.model is not None
    assert str(result.model.config["restart-token"]).startswith("burst-")
    configs = [r for r in result.records if r.hook.name == "config-changed"]
    assert configs  # coalescing: fewer config-changed hooks than token changes per unit


def test_a_slow_unit_is_slow():
    from jujusim.runner import run_scenario

    result = run_scenario(CHARM, units=3, seed=8, faults=parse_faults("slow=1"))
    assert result.violations == [] and result.completed
    longest = max(r.end - r.start for r in result.records if r.end >= 0)
    assert longest >= 30.0
