"""What each ordering policy costs a rolling restart of the demo charm, side by side.

Runs the demo charm in the simulator (``direct`` runtime: real ops dispatch in-process)
with each policy's scenario and prints the median rounds and hooks after the trigger
over a few seeds, next to the plain fifo ``rolling-restart``. Never asserts.

    python benchmarks/policy_cost.py [--units 5,10] [--seeds 3]
"""

from __future__ import annotations

import argparse
import pathlib
import statistics

from jujusim.runner import run_scenario

ROOT = pathlib.Path(__file__).resolve().parent.parent
SCENARIOS = (
    ("rolling-restart", "fifo (default)", {}),
    ("leader-last-restart", "leader-last", {}),
    ("rolling-restart", "fifo, restarts of 3 hooks", {"restart-hooks": 3}),
    ("priority-restart", "priority, restarts of 3 hooks", {}),
    (
        "rolling-restart",
        "fifo, limit 3, restarts of 3 hooks",
        {"restart-hooks": 3, "restart-concurrency": 3},
    ),
    ("zone-restart", "3 zones, 1 per zone, limit 3, 3 hooks", {}),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", default="5,10")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    print(f"{'scenario':22} {'policy':40} {'N':>3} {'rounds':>7} {'hooks':>6} {'ok':>4}")
    for n in (int(x) for x in args.units.split(",")):
        for scenario, label, config in SCENARIOS:
            runs = [
                run_scenario(
                    str(ROOT),
                    units=n,
                    scenario=scenario,
                    runtime="direct",
                    seed=s,
                    charm_config=config,
                )
                for s in range(args.seeds)
            ]
            ok = sum(1 for r in runs if r.verdict.completed and not r.verdict.violations)
            rounds = statistics.median(r.rounds for r in runs)
            hooks = statistics.median(r.hooks for r in runs)
            print(f"{scenario:22} {label:40} {n:>3} {rounds:>7} {hooks:>6} {ok:>2}/{len(runs)}")


if __name__ == "__main__":
    main()
