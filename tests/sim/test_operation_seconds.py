"""Simulator.operation_seconds: a hook that begins an operation lasts that much longer.

skew-ahead-1m sets it to 30 s; the invariants then see operations with a length of
their own, so overlapping holders would be caught (ours must show none).
"""

from __future__ import annotations

from simkit import ROOT

import jujusim.bench_scenarios  # noqa: F401  (registers the comparison's scenarios)
from jujusim.runner import run_scenario


def test_hooks_that_begin_a_restart_last_thirty_seconds_more() -> None:
    r = run_scenario(str(ROOT), units=4, scenario="skew-ahead-1m", runtime="direct", seed=0)
    assert r.verdict.completed and not r.verdict.violations
    after = [rec for rec in r.records if rec.start >= r.trigger_time and rec.ok]
    begins = [rec for rec in after if any(x.event == "begin" for x in rec.journal)]
    others = [rec for rec in after if rec not in begins]
    assert len(begins) == 4
    assert all(rec.end - rec.start >= 30.0 for rec in begins)
    assert all(rec.end - rec.start < 30.0 for rec in others)


def test_plain_scenarios_keep_operations_within_an_ordinary_hook() -> None:
    r = run_scenario(str(ROOT), units=3, scenario="skew-ahead", runtime="direct", seed=0)
    assert all(rec.end - rec.start < 30.0 for rec in r.records)
