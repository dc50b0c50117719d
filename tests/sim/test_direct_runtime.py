"""The ``direct`` runtime (ops' own dispatch in-process) runs the same runs as the others."""

from __future__ import annotations

import pytest
from simkit import CHARMS, ROOT

from jujusim.faults import parse_faults
from jujusim.runner import run_scenario


def _trace(result):  # type: ignore[no-untyped-def]
    return [(r.unit, r.hook.about, r.ok, r.start) for r in result.records]


@pytest.mark.parametrize(("charm", "seed"), [("ordered", 2), ("unsafe", 3), ("campaign", 1)])
def test_direct_agrees_with_inprocess_under_faults(charm, seed, tmp_path):
    results = {
        rt: run_scenario(
            str(CHARMS / charm),
            units=4,
            runtime=rt,
            seed=seed,
            faults=parse_faults("all"),
            workdir=str(tmp_path / rt),
        )
        for rt in ("inprocess", "direct")
    }
    a, b = results["inprocess"], results["direct"]
    assert _trace(a) == _trace(b)
    assert a.violations == b.violations
    assert a.completed == b.completed
    assert b.runtime == "direct" and not b.hook_tool_calls_exact


def test_direct_runs_the_demo_charm(tmp_path):
    result = run_scenario(str(ROOT), units=3, runtime="direct", seed=1, workdir=str(tmp_path))
    assert result.completed and not result.violations
    # ops' real hook-tool calls go through the simulator's hook tools.
    assert all(r.tool_calls > 0 for r in result.records)


def test_unit_numbers_are_never_reused(tmp_path):
    """An added unit takes the next never-used number, even after removals.

    A unit that appears in both ``removed_units`` and ``added_units`` was added by a
    fault and then removed by another: the same unit, not a name given out twice.
    """
    result = run_scenario(
        str(CHARMS / "campaign"),
        units=3,
        runtime="direct",
        seed=49,
        faults=parse_faults("all,remove=2,add=2"),
        workdir=str(tmp_path),
    )
    installs = [r.unit for r in result.records if r.hook.kind == "install"]
    assert len(installs) == len(set(installs)) == 3 + len(result.added_units)
    numbers = [int(u.rsplit("/", 1)[1]) for u in installs[3:]]
    assert numbers == sorted(numbers) and min(numbers, default=3) >= 3
