"""Property tests of the pure protocol against an adversarial model of Juju.

The model keeps every committed version of every unit's doc and of the app doc. Each
time a unit looks, it may see ANY committed version of the app doc and ANY version of
each peer's doc (a stronger adversary than Juju's caches, which only move forward).
Its own doc is always current (own bags are local). The leader reads the app doc as
last committed, peers' docs at any age. Units that conclude they hold start acting
and keep acting until their release is committed.
"""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from charm_coordinator import protocol as p
from charm_coordinator.documents import AppDoc, Entry, Mode, UnitDoc


@dataclasses.dataclass
class Model:
    n: int
    spec: p.LockSpec
    docs: list[list[UnitDoc]]
    apps: list[AppDoc]
    leader: int = 0
    departed: set[int] = dataclasses.field(default_factory=set)
    acting: dict[int, Entry] = dataclasses.field(default_factory=dict)
    served: set[tuple[int, int]] = dataclasses.field(default_factory=set)
    max_exclusive: int = 0
    max_shared: int = 0

    @classmethod
    def new(cls, n: int, spec: p.LockSpec, zones: int = 2) -> Model:
        docs = [[UnitDoc(zone=f"z{i % zones}")] for i in range(n)]
        return cls(n=n, spec=spec, docs=docs, apps=[AppDoc()])

    def name(self, i: int) -> str:
        return f"app/{i}"

    def alive(self) -> list[int]:
        return [i for i in range(self.n) if i not in self.departed]

    def evidence(self, data: st.DataObject | None, observer: int) -> p.StaticEvidence:
        """Released ids from a random (or, with data None, the latest) version of each doc."""
        released: dict[tuple[str, str], int] = {}
        for i in range(self.n):
            versions = self.docs[i]
            if i == observer or data is None:
                doc = versions[-1]
            else:
                doc = versions[data.draw(st.integers(0, len(versions) - 1), label="peer version")]
            for lock, rec in doc.locks.items():
                released[(self.name(i), lock)] = rec.released
        departed = {
            self.name(i)
            for i in self.departed
            if data is None or data.draw(st.booleans(), label="saw departure")
        }
        return p.StaticEvidence(released=released, departed=frozenset(departed))

    def check(self) -> None:
        modes = [e.mode for e in self.acting.values()]
        x = modes.count(Mode.EXCLUSIVE)
        s = modes.count(Mode.SHARED)
        self.max_exclusive = max(self.max_exclusive, x)
        self.max_shared = max(self.max_shared, s)
        assert x <= self.spec.limit, f"{x} exclusive holders, limit {self.spec.limit}"
        assert not (x and s), "shared and exclusive held together"
        if self.spec.shared_limit is not None:
            assert s <= self.spec.shared_limit
        if self.spec.per_zone is not None:
            for zone in {self.docs[i][0].zone for i in range(self.n)}:
                here = [
                    i
                    for i, e in self.acting.items()
                    if e.mode is Mode.EXCLUSIVE and self.docs[i][0].zone == zone
                ]
                assert len(here) <= self.spec.per_zone, f"{here} hold together in {zone}"

    # -- actions ------------------------------------------------------------------------

    def request(self, i: int, mode: Mode, priority: int = 0) -> None:
        doc = p.request(self.docs[i][-1], self.spec.name, mode, priority=priority)
        if doc != self.docs[i][-1]:
            self.docs[i].append(doc)

    def finish(self, i: int) -> None:
        """Release (if acting) or cancel; the release commits together with the end."""
        doc = p.release(self.docs[i][-1], self.spec.name)
        if doc != self.docs[i][-1]:
            self.docs[i].append(doc)
        self.acting.pop(i, None)

    def lead(self, data: st.DataObject | None) -> None:
        if self.leader in self.departed:
            return
        ev = self.evidence(data, self.leader)
        cands: dict[str, UnitDoc] = {}
        for i in self.alive():
            if data is None or i == self.leader:
                cands[self.name(i)] = self.docs[i][-1]
            elif data.draw(st.booleans(), label="leader reads"):
                versions = self.docs[i]
                cands[self.name(i)] = versions[data.draw(st.integers(0, len(versions) - 1))]
        fresh = () if data is None or not data.draw(st.booleans()) else (self.spec.name,)
        app = p.sequence(
            self.apps[-1],
            self.name(self.leader),
            cands,
            ev,
            {self.spec.name: self.spec},
            peers=[self.name(i) for i in self.alive()],
            fresh=fresh,
        )
        if app != self.apps[-1]:
            self.apps.append(app)

    def pause(self, on: bool) -> None:
        app = (p.pause if on else p.resume)(self.apps[-1], self.spec.name)
        if app != self.apps[-1]:
            self.apps.append(app)

    def observe(self, i: int, data: st.DataObject | None) -> None:
        if i in self.acting or i in self.departed:
            return
        app = (
            self.apps[-1]
            if data is None
            else self.apps[data.draw(st.integers(0, len(self.apps) - 1), label="app version")]
        )
        s = p.standing(app, self.name(i), self.docs[i][-1], self.spec, self.evidence(data, i))
        if s.state is p.State.HOLDING:
            assert s.entry is not None
            self.acting[i] = s.entry
            self.served.add((i, s.entry.id))
            self.check()

    def depart(self, i: int) -> None:
        # A departing unit finishes or aborts its operation in its own departing hooks.
        self.finish(i)
        self.departed.add(i)


specs = st.builds(
    p.LockSpec,
    name=st.just("restart"),
    limit=st.integers(1, 3),
    shared_limit=st.one_of(st.none(), st.integers(1, 3)),
    order=st.sampled_from(p.ORDERS),
    per_zone=st.one_of(st.none(), st.integers(1, 2)),
)

actions = st.lists(
    st.tuples(
        # weighted towards contention: many requests and looks, few releases
        st.sampled_from(
            ["request"] * 3
            + ["shared", "finish", "depart", "elect", "pause", "resume"]
            + ["lead"] * 3
            + ["observe"] * 6
        ),
        st.integers(0, 5),
    ),
    min_size=5,
    max_size=80,
)


def drain(m: Model) -> None:
    """Fair schedule with fresh views: holders finish, everyone looks, the leader leads."""
    for _ in range(6 * m.n + 6):
        m.lead(None)
        for i in m.alive():
            m.observe(i, None)
        for i in list(m.acting):
            m.finish(i)
        m.lead(None)


@settings(max_examples=300, deadline=None)
@given(n=st.integers(2, 6), spec=specs, script=actions, data=st.data())
def test_never_more_holders_than_the_rule_allows_and_every_request_is_served(
    n: int, spec: p.LockSpec, script: list[tuple[str, int]], data: st.DataObject
) -> None:
    m = Model.new(n, spec)
    for action, k in script:
        i = k % n
        if action in ("request", "shared") and i not in m.departed:
            m.request(i, Mode.SHARED if action == "shared" else Mode.EXCLUSIVE, priority=k % 3)
        elif action in ("pause", "resume"):
            m.pause(action == "pause")
        elif action == "finish":
            m.finish(i)
        elif action == "lead":
            m.lead(data)
        elif action == "observe":
            m.observe(i, data)
        elif action == "depart" and len(m.alive()) > 1 and i != m.leader:
            m.depart(i)
        elif action == "elect" and i not in m.departed:
            m.leader = i
    # Faults stop; fresh views from here on. Every pending request is served.
    pending = {
        (i, m.docs[i][-1].record(spec.name).id)
        for i in m.alive()
        if m.docs[i][-1].record(spec.name).pending
    }
    m.pause(False)
    drain(m)
    assert pending <= m.served, f"unserved: {sorted(pending - m.served)}"
    # The leader's full scan (update-status, leader-elected) prunes what is left.
    m.apps.append(p.prune(m.apps[-1], m.evidence(None, m.leader), cheap=False))
    # Nothing is kept for released requests or departed units once the queue drains.
    assert dump_len(m.apps[-1]) <= len('{"queues":{},"seq":0,"v":1}') + 20
    for entries in m.apps[-1].queues.values():
        assert not entries


def dump_len(app: AppDoc) -> int:
    from charm_coordinator.documents import dump_app_doc

    return len(dump_app_doc(app))


@settings(max_examples=100, deadline=None)
@given(n=st.integers(1, 200))
def test_app_doc_size_is_linear_in_queued_requests(n: int) -> None:
    from charm_coordinator.documents import dump_app_doc

    spec = p.LockSpec("restart")
    docs = {f"coordinated-app/{i}": p.request(UnitDoc(), "restart") for i in range(n)}
    app = p.sequence(AppDoc(), "coordinated-app/0", docs, p.StaticEvidence(), {"restart": spec})
    size = len(dump_app_doc(app))
    assert sum(len(q) for q in app.queues.values()) == n
    # about 30 bytes per entry with a 15-character app name, plus a constant
    assert size <= 60 + 40 * n
    assert size >= 20 * n


def test_mutual_exclusion_is_exercised() -> None:
    """Guard against a model so weak it never grants: a plain run reaches the limit."""
    spec = p.LockSpec("restart", limit=2)
    m = Model.new(4, spec)
    for i in range(4):
        m.request(i, Mode.EXCLUSIVE)
    m.lead(None)
    for i in range(4):
        m.observe(i, None)
    assert m.max_exclusive == 2
    assert len(m.acting) == 2
