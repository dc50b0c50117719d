"""Many seeded schedules of one scenario: the search for a failing interleaving.

Each schedule is an ordinary run with its own seed and unit count, so any failing
one replays exactly with ``run --seed S --units N --faults SPEC``.
"""

from __future__ import annotations

import dataclasses
import random
import shlex
import time
from collections.abc import Callable
from typing import Any

from jujusim.engine import SimConfig
from jujusim.faults import FaultSpec
from jujusim.runner import RunResult, run_scenario

__all__ = ["CampaignResult", "run_campaign"]


@dataclasses.dataclass
class CampaignResult:
    """Totals over all schedules, and the ones that failed."""

    schedules: int
    units: tuple[int, int]
    runtime: str
    scenario: str
    seed: int
    faults: str
    violations: int
    lost_requests: int
    stalled: int
    storms: int
    hooks: int
    wall_s: float
    failing: list[dict[str, Any]]
    max_concurrent: int
    rounds_max: int
    completed: int

    def to_json(self) -> dict[str, Any]:
        """The ``campaign --json`` object (keys are a contract: extend, never rename)."""
        return {
            "schedules": self.schedules,
            "units": list(self.units),
            "runtime": self.runtime,
            "scenario": self.scenario,
            "seed": self.seed,
            "faults": self.faults,
            "completed": self.completed,
            "violations": self.violations,
            "lost_requests": self.lost_requests,
            "stalled": self.stalled,
            "storms": self.storms,
            "hooks": self.hooks,
            "max_concurrent": self.max_concurrent,
            "rounds_max": self.rounds_max,
            "wall_s": round(self.wall_s, 3),
            "failing_seeds": [f["seed"] for f in self.failing],
            "failing": self.failing,
        }


def schedule_plan(seed: int, schedules: int, units: tuple[int, int]) -> list[tuple[int, int]]:
    """(seed, unit count) of each schedule, derived from the campaign seed."""
    rng = random.Random(seed)
    return [(rng.randrange(2**31), rng.randint(units[0], units[1])) for _ in range(schedules)]


def run_campaign(
    charm_dir: str,
    *,
    schedules: int,
    units: tuple[int, int] = (2, 5),
    scenario: str = "rolling-restart",
    runtime: str = "inprocess",
    seed: int = 0,
    faults: FaultSpec | None = None,
    config: SimConfig | None = None,
    on_schedule: Callable[[int, RunResult], None] | None = None,
) -> CampaignResult:
    """Run ``schedules`` seeded runs and add them up."""
    started = time.perf_counter()
    faults = faults or FaultSpec()
    totals = dict(violations=0, lost=0, stalled=0, storms=0, hooks=0, conc=0, rounds=0, ok=0)
    failing: list[dict[str, Any]] = []
    for i, (run_seed, n) in enumerate(schedule_plan(seed, schedules, units)):
        result = run_scenario(
            charm_dir,
            units=n,
            scenario=scenario,
            runtime=runtime,
            seed=run_seed,
            faults=faults,
            config=config,
        )
        totals["violations"] += len(result.violations)
        totals["lost"] += result.verdict.lost_requests
        totals["stalled"] += result.end == "stalled"
        totals["storms"] += result.end == "storm"
        totals["hooks"] += result.hooks
        totals["conc"] = max(totals["conc"], result.verdict.max_concurrent)
        totals["rounds"] = max(totals["rounds"], result.rounds)
        totals["ok"] += result.completed
        if result.violations or not result.completed:
            failing.append(
                {
                    "seed": run_seed,
                    "units": n,
                    "violations": result.violations,
                    "replay": f"python -m jujusim run {shlex.quote(charm_dir)} --units {n} "
                    f"--scenario {scenario} --runtime {runtime} --seed {run_seed} "
                    f"--faults {shlex.quote(str(faults))}",
                }
            )
        if on_schedule is not None:
            on_schedule(i, result)
    return CampaignResult(
        schedules=schedules,
        units=units,
        runtime=runtime,
        scenario=scenario,
        seed=seed,
        faults=str(faults),
        violations=totals["violations"],
        lost_requests=totals["lost"],
        stalled=totals["stalled"],
        storms=totals["storms"],
        hooks=totals["hooks"],
        wall_s=time.perf_counter() - started,
        failing=failing,
        max_concurrent=totals["conc"],
        rounds_max=totals["rounds"],
        completed=totals["ok"],
    )
