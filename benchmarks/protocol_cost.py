"""Protocol CPU per hook with 100 queued units, and the peer bags a hook must read.

Measures the pure core as an adapter uses it in one hook: parse the app doc and the bags
it needs, decide standing (a unit at the back of the queue, and the next in line after
a release), and the leader's sequencing step. Goal: under 1 ms per hook.

    python benchmarks/protocol_cost.py [--units 100]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from charm_coordinator import protocol as p
from charm_coordinator.documents import (
    AppDoc,
    Entry,
    UnitDoc,
    dump_app_doc,
    dump_unit_doc,
    parse_app_doc,
    parse_unit_doc,
)


class CountingEvidence:
    """Reads a bag only when asked, like the ops adapter, and counts the reads."""

    def __init__(self, raw: dict[str, str]) -> None:
        self.raw = raw
        self.docs: dict[str, UnitDoc] = {}
        self.reads = 0

    def is_dead(self, lock: str, entry: Entry, *, cheap: bool = False) -> bool:
        if entry.unit not in self.docs:
            if cheap:
                return False
            self.reads += 1
            self.docs[entry.unit] = parse_unit_doc(self.raw[entry.unit], entry.unit)
        return self.docs[entry.unit].record(lock).released >= entry.id


def per_call(fn: Callable[[], object], repeat: int = 300) -> float:
    fn()
    start = time.process_time()
    for _ in range(repeat):
        fn()
    return (time.process_time() - start) / repeat


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--units", type=int, default=100)
    args = parser.parse_args()
    n = args.units
    spec = p.LockSpec("restart")
    names = [f"coordinated-app/{i}" for i in range(n)]
    docs = {u: p.request(UnitDoc(), "restart", at="2026-11-21T00:00:00Z") for u in names}
    app = p.sequence(AppDoc(), names[0], docs, p.StaticEvidence(), {"restart": spec})
    app_raw = dump_app_doc(app)
    raw = {u: dump_unit_doc(d) for u, d in docs.items()}
    last = names[-1]

    def back_of_queue() -> int:
        ev = CountingEvidence(raw)
        a = parse_app_doc(app_raw, "coordinated-app")
        mine = parse_unit_doc(raw[last], last)
        p.standing(a, last, mine, spec, ev)
        return ev.reads

    released = dict(raw)
    released[names[0]] = dump_unit_doc(p.release(docs[names[0]], "restart"))

    def next_in_line() -> int:
        ev = CountingEvidence(released)
        a = parse_app_doc(app_raw, "coordinated-app")
        mine = parse_unit_doc(released[names[1]], names[1])
        assert p.standing(a, names[1], mine, spec, ev).state is p.State.HOLDING
        return ev.reads

    def leader_step() -> None:
        a = parse_app_doc(app_raw, "coordinated-app")
        newcomer = p.request(UnitDoc(), "restart")
        cands = {names[0]: docs[names[0]], "coordinated-app/999": newcomer}
        new = p.sequence(a, names[0], cands, p.StaticEvidence(), {"restart": spec})
        dump_app_doc(new)

    print(f"{n} units queued on one lock; app doc {len(app_raw)} bytes")
    print(f"{'hook':34} {'CPU us':>8} {'peer bags read':>15}")
    for label, fn in (
        ("unit at the back: standing", back_of_queue),
        ("next in line after a release", next_in_line),
    ):
        print(f"{label:34} {per_call(fn) * 1e6:8.1f} {fn():>15}")
    print(f"{'leader: queue a new request':34} {per_call(leader_step) * 1e6:8.1f} {'-':>15}")
    print("goal: under 1000 us per hook; reads do not grow with N")


if __name__ == "__main__":
    main()
