"""A unit far back in a queue reads a bounded number of peer bags, whatever N is."""

from __future__ import annotations

import pytest

from charm_coordinator import protocol as p
from charm_coordinator.documents import AppDoc, Entry, UnitDoc


class Counting:
    def __init__(self, docs: dict[str, UnitDoc]) -> None:
        self.docs = docs
        self.reads: list[str] = []

    def is_dead(self, lock: str, entry: Entry, *, cheap: bool = False) -> bool:
        if cheap:
            return False
        self.reads.append(entry.unit)
        return self.docs[entry.unit].record(lock).released >= entry.id


@pytest.mark.parametrize("n", [3, 10, 40, 200])
def test_back_of_the_queue_reads_one_bag(n: int) -> None:
    spec = p.LockSpec("restart")
    docs = {f"app/{i}": p.request(UnitDoc(), "restart") for i in range(n)}
    app = p.sequence(AppDoc(), "app/0", docs, p.StaticEvidence(), {"restart": spec})
    ev = Counting(docs)
    s = p.standing(app, f"app/{n - 1}", docs[f"app/{n - 1}"], spec, ev)
    assert s.state is p.State.WAITING
    assert ev.reads == ["app/0"]


@pytest.mark.parametrize("n", [10, 40])
def test_k_limited_lock_reads_at_most_k_live_bags(n: int) -> None:
    spec = p.LockSpec("upgrade", limit=3)
    docs = {f"app/{i}": p.request(UnitDoc(), "upgrade") for i in range(n)}
    app = p.sequence(AppDoc(), "app/0", docs, p.StaticEvidence(), {"upgrade": spec})
    ev = Counting(docs)
    p.standing(app, f"app/{n - 1}", docs[f"app/{n - 1}"], spec, ev)
    assert len(ev.reads) == 3
