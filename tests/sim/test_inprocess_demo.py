"""The project's demo charm (repository root) under the in-process runtime."""

from __future__ import annotations

import pytest
from simkit import ROOT

from jujusim.runner import run_scenario

pytestmark = pytest.mark.skipif(
    not (ROOT / "metadata.yaml").exists() or not (ROOT / "charm" / "charm.py").exists(),
    reason="the demo charm is not in this checkout yet",
)


def test_demo_charm_rolling_restart_3_units():
    result = run_scenario(str(ROOT), units=3, runtime="inprocess", seed=1)
    assert result.completed, result.violations
    assert result.violations == []
    assert len([o for o in result.verdict.operations if o.end is not None]) == 3
    assert result.verdict.max_concurrent == 1


@pytest.mark.parametrize("seed", [1, 2])
def test_demo_charm_under_all_faults(seed):
    from jujusim.faults import parse_faults

    result = run_scenario(
        str(ROOT), units=4, runtime="inprocess", seed=seed, faults=parse_faults("all")
    )
    assert result.violations == [], result.violations
    assert result.completed
