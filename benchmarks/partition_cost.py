"""Partitioning cost, and how many items move when a unit joins or leaves.

Times ``hashring.assign`` for 10,000 items over 100 units, median of several runs:
"fresh" empties the ring cache before every run, so each run hashes the items, builds
the ring for the membership and places the items (what a hook pays, since every hook
is a new process); "same membership" keeps the ring from the previous run and still
hashes and places every item. Then the share of items that changes owner on a join or
a leave, next to the ideal, and the balance of the loads. Goal: under 50 ms fresh;
at most about 1.2 times the ideal moves. Prints figures, asserts nothing.

    python benchmarks/partition_cost.py [--items 10000] [--units 100] [--runs 15]
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import time
from collections import Counter
from collections.abc import Callable

from charm_coordinator import hashring


def units(n: int, app: str = "app") -> list[str]:
    return [f"{app}/{i}" for i in range(n)]


def timed(fn: Callable[[], object], runs: int, before: Callable[[], None]) -> tuple[float, float]:
    """Median wall and CPU milliseconds of ``fn``, calling ``before`` untimed each run."""
    wall, cpu = [], []
    for _ in range(runs):
        before()
        w, c = time.perf_counter(), time.process_time()
        fn()
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - w)
    return statistics.median(wall) * 1e3, statistics.median(cpu) * 1e3


def rendezvous(items: list[str], members: list[str]) -> dict[str, str]:
    """Plain highest-random-weight hashing, for its cost: one hash per (item, unit)."""
    return {
        item: max(members, key=lambda m: hashlib.blake2b(f"{item}\0{m}".encode()).digest())
        for item in items
    }


def moved(items: list[str], before: list[str], after: list[str]) -> float:
    a, b = hashring.assign(items, before), hashring.assign(items, after)
    return sum(a[i] != b[i] for i in items) / len(items)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--units", type=int, default=100)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--trials", type=int, default=100, help="random joins for the spread")
    args = parser.parse_args()
    items = [f"item-{i}" for i in range(args.items)]
    members = units(args.units)

    print(f"{args.items} items over {args.units} units, {hashring.POINTS} points per unit")
    print(f"{'':44} {'wall ms':>8} {'CPU ms':>8}  (median of {args.runs})")
    rows = [
        ("assign, fresh membership (nothing cached)", hashring._ring.cache_clear),
        ("assign, same membership (ring cached)", lambda: None),
    ]
    for label, before in rows:
        wall, cpu = timed(lambda: hashring.assign(items, members), args.runs, before)
        print(f"{label:44} {wall:8.1f} {cpu:8.1f}")
    wall, cpu = timed(
        lambda: hashring.owned(items, members, members[0]), args.runs, hashring._ring.cache_clear
    )
    print(f"{'owned, fresh membership':44} {wall:8.1f} {cpu:8.1f}")
    wall, cpu = timed(
        lambda: hashring.assign(items, members, replicas=3),
        args.runs,
        hashring._ring.cache_clear,
    )
    print(f"{'assign, replicas=3, fresh membership':44} {wall:8.1f} {cpu:8.1f}")
    sample = items[: max(1, len(items) // 20)]
    wall, cpu = timed(lambda: rendezvous(sample, members), 3, lambda: None)
    scale = len(items) / len(sample)
    label = "rendezvous hashing (from 1/20 of the items)"
    print(f"{label:44} {wall * scale:8.0f} {cpu * scale:8.0f}")
    print("goal: under 50 ms fresh")

    print()
    print(f"moved on a join or leave ({args.items} items)   moved    ideal   moved/ideal")
    for n in (5, 100):
        small, big = units(n), units(n + 1)
        cases = [
            (f"{n} -> {n + 1} (join)", small, big, 1 / (n + 1)),
            (f"{n + 1} -> {n} (the last unit leaves)", big, small, 1 / (n + 1)),
            (f"{n} -> {n - 1} (the first unit leaves)", small, small[1:], 1 / n),
        ]
        for label, before, after, ideal in cases:
            share = moved(items, before, after)
            print(f"  {label:38} {share:7.2%} {ideal:8.2%} {share / ideal:10.3f}")

    if args.trials > 0:
        rng = random.Random(0)
        ratios = []
        for trial in range(args.trials):
            n = rng.randint(2, 16)
            names = units(n + 1, app=f"app{trial}")
            ratios.append(moved(items, names[:-1], names) * (n + 1))
        ratios.sort()
        p99 = ratios[min(len(ratios) - 1, int(0.99 * len(ratios)))]
        print(
            f"  {args.trials} random joins (2..16 units): moved/ideal mean "
            f"{statistics.mean(ratios):.3f}, sd {statistics.pstdev(ratios):.3f}, "
            f"p99 {p99:.3f}, max {ratios[-1]:.3f}"
        )

    print()
    print("balance: primary items per unit         max/mean  min/mean")
    for n, count in ((args.units, args.items), (10, args.items), (10, min(1000, args.items))):
        loads = Counter(o[0] for o in hashring.assign(items[:count], units(n)).values())
        per = [loads[u] for u in units(n)]
        mean = count / n
        print(
            f"  {count:6} items over {n:3} units ({mean:5.0f} each)"
            f"   {max(per) / mean:8.3f} {min(per) / mean:9.3f}"
        )


if __name__ == "__main__":
    main()
