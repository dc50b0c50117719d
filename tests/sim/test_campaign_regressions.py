"""Schedules the campaign found failing, kept as named regression tests.

Each names its seed; ``python -m jujusim run tests/charms/campaign --units N
--runtime inprocess --seed S --faults campaign --config ...`` replays it.
"""

from __future__ import annotations

import json

import pytest
from simkit import CHARMS

from jujusim.agent import HookInfo
from jujusim.charmspec import load_charm_spec
from jujusim.engine import Simulator
from jujusim.faults import parse_faults
from jujusim.hookctx import SimHookContext
from jujusim.runner import run_scenario
from ops import hookcmds

CHARM = str(CHARMS / "campaign")


@pytest.mark.parametrize("runtime", ["inprocess", "direct"])
def test_a_unit_removed_before_a_later_leader_joined_it_does_not_block_that_leader(runtime):
    """Seed 2, 5 units, limit 2, odd units shared (trap 7).

    campaign/2 is removed while queued; campaign/5 is added, becomes leader while in
    error, and never joins campaign/2, so it cannot read its release nor saw it leave.
    Only goal-state says campaign/2 is gone, and the simulator's goal-state was
    unusable from ops ("since": "" is not a timestamp; the in-process runtime had no
    goal-state at all): campaign/5's own request was never served (stalled). The run
    also used to end "quiet" before the added unit's request was checked.
    """
    result = run_scenario(
        CHARM,
        units=5,
        seed=2,
        runtime=runtime,
        faults=parse_faults("campaign"),
        charm_config={"restart-limit": 2, "shared-units": "odd"},
    )
    assert "campaign/2" in result.removed_units and "campaign/5" in result.added_units
    assert result.violations == [], result.violations
    assert result.end == "quiet"


def test_goal_state_reaches_an_ops_charm_in_process():
    """ops parses goal-state's ``since`` as RFC 3339; the in-process runtime serves it."""
    spec = load_charm_spec(CHARM)
    sim = Simulator(spec, None)  # type: ignore[arg-type]
    sim.deploy(2)
    unit = sim.model.alive[0]
    ctx = SimHookContext(sim.model, sim.agents[unit], HookInfo("update-status"), sim, CHARM)
    raw = ctx.goal_state()
    state = hookcmds.GoalState._from_dict(json.loads(json.dumps(raw)))
    assert set(state.units) == set(sim.model.alive)


def test_a_leader_whose_hook_outlived_its_lease_does_not_overwrite_the_queue():
    """Seed 1167990245, 7 units over 2 zones, limit 3, 1 per zone, priority (trap 5).

    campaign/1, leader, starts a config-changed that lasts 330 s (a slow unit); it
    loses leadership, another leader queues and grants campaign/6, and campaign/1 is
    leader again when its hook commits: its queue, built from a read 330 s old, wiped
    campaign/6's entry while campaign/6 was restarting, and campaign/0 of the same zone
    was granted. The library skips such a write (its lease check), but the direct
    runtime ran the charm's code at the hook's start with the real clock, so no time
    had passed for it. The runtime now shows the hook's length to the charm's clock
    as ops commits; without that, this schedule breaks exclusion.
    """
    from jujusim.engine import SimConfig

    faults = (
        "leader-change=0.02,hook-fail=0.03,delay=0.05,remove=1,add=1,persist=1,"
        "leader-error=240,slow=1,burst=1,fail=leader:*-relation-changed*1,window=300"
    )
    result = run_scenario(
        CHARM,
        units=7,
        seed=1167990245,
        runtime="direct",
        faults=parse_faults(faults),
        config=SimConfig(zones=2),
        charm_config={
            "clock-skew": 30,
            "per-zone": 1,
            "restart-limit": 3,
            "restart-order": "priority",
            "shared-limit": 1,
            "shared-units": "none",
        },
    )
    assert result.leader_changes >= 2
    assert result.verdict.violations == ()
    assert result.verdict.completed
