"""jujusim speed figures: in-process hooks/s, a 100-unit rolling restart, the 5-unit demo.

Usage: python benchmarks/sim_speed.py [--units 100] [--skip-process] [--charm DIR]

Targets (issue): in-process >= 150 hooks/s on 2 cores; a 100-unit rolling restart in
<= 60 s; the process runtime runs the 5-unit demo in <= 30 s wall.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "lib"))

from jujusim.engine import SimConfig  # noqa: E402
from jujusim.runner import run_scenario  # noqa: E402


def figure(label: str, result, wall: float) -> None:  # type: ignore[no-untyped-def]
    hooks = result.hooks_total
    print(
        f"{label:<38} units={result.units:<4} hooks={hooks:<6} (after trigger {result.hooks}) "
        f"wall={wall:6.2f}s  {hooks / wall:7.1f} hooks/s  completed={result.completed} "
        f"violations={len(result.violations)} rounds={result.rounds}"
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--charm", default=str(ROOT))
    parser.add_argument("--units", type=int, default=100)
    parser.add_argument("--skip-process", action="store_true")
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument(
        "--large-runtime", default="direct", help="runtime of the large run (direct, inprocess)"
    )
    args = parser.parse_args()
    print(f"cpus={os.cpu_count()} python={sys.version.split()[0]} charm={args.charm}")

    for runtime in ("inprocess", "direct"):  # side by side: the machine is noisy
        for units in (5, 20):
            t = time.perf_counter()
            r = run_scenario(args.charm, units=units, runtime=runtime, seed=1)
            figure(f"{runtime} rolling-restart", r, time.perf_counter() - t)

    if not args.skip_large:
        t = time.perf_counter()
        r = run_scenario(args.charm, units=args.units, runtime=args.large_runtime, seed=1)
        wall = time.perf_counter() - t
        figure(f"{args.large_runtime} rolling-restart (target <=60s)", r, wall)

    if not args.skip_process:
        t = time.perf_counter()
        r = run_scenario(args.charm, units=5, runtime="process", seed=1)
        figure("process 5-unit demo (target <=30s)", r, time.perf_counter() - t)
        t = time.perf_counter()
        one = SimConfig(workers=1)
        r = run_scenario(args.charm, units=5, runtime="process", seed=1, config=one)
        figure("process 5-unit demo, 1 worker (before)", r, time.perf_counter() - t)
    return 0


if __name__ == "__main__":
    sys.exit(main())
