"""The same scenario and seed give the same verdicts on both runtimes."""

from __future__ import annotations

import importlib.util

import pytest
from simkit import CHARMS

from jujusim.runner import run_scenario

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("jujusim.process") is None, reason="no process runtime"
)


@pytest.mark.parametrize("charm", ["ordered", "unsafe"])
def test_same_verdicts_on_process_and_inprocess(charm, tmp_path):
    results = {}
    for runtime in ("inprocess", "process"):
        results[runtime] = run_scenario(
            str(CHARMS / charm), units=3, runtime=runtime, seed=4, workdir=str(tmp_path / runtime)
        )
    a, b = results["inprocess"], results["process"]
    assert a.violations == b.violations
    assert a.completed == b.completed
    assert a.verdict.max_concurrent == b.verdict.max_concurrent
    assert [(r.unit, r.hook.about, r.ok) for r in a.records] == [
        (r.unit, r.hook.about, r.ok) for r in b.records
    ]
