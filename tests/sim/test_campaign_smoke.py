"""The CI smoke of the reliability campaign: 500 schedules under every fault class.

Selected with ``-m campaign`` (``tox -e campaign-smoke``); the full campaign is ``tox -e
campaign``. 2..6 units drawn with weight 1/N^2, four schedules per deployment (as ``tox -e
campaign``), keep it at about a minute on 2 cores.
Runs on the ``direct`` runtime (the faster in-process one; ``JUJUSIM_SMOKE_RUNTIME``
to change). ``JUJUSIM_SMOKE_SCHEDULES`` changes the count (and selects the test without ``-m``); a
plain ``pytest`` run skips it.
"""

from __future__ import annotations

import os

import pytest
from simkit import CHARMS

from jujusim.campaign import default_workers, run_campaign
from jujusim.faults import parse_faults

pytestmark = pytest.mark.campaign


def test_campaign_smoke(request):
    if "campaign" not in (request.config.getoption("-m") or "") and not os.environ.get(
        "JUJUSIM_SMOKE_SCHEDULES"
    ):
        pytest.skip("minutes long: run with -m campaign (tox -e campaign-smoke)")
    schedules = int(os.environ.get("JUJUSIM_SMOKE_SCHEDULES", "500"))
    result = run_campaign(
        str(CHARMS / "campaign"),
        schedules=schedules,
        units=(2, 6),
        faults=parse_faults("campaign"),
        seed=500,
        workers=default_workers(),
        unit_weights="cost",
        share_deploys=4,  # as tox -e campaign
        runtime=os.environ.get("JUJUSIM_SMOKE_RUNTIME", "direct"),
    )
    replays = "\n".join(f["replay"] + "  # " + "; ".join(f["violations"]) for f in result.failing)
    assert not result.failing, replays
    assert result.violations == 0
    assert result.lost_requests == 0
    assert result.stalled == 0
    assert result.storms == 0
    if schedules >= 100:  # limits above 1 and shared holds were exercised
        assert result.max_concurrent >= 2
