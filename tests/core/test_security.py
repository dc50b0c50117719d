"""Security of the protocol against a malicious (or broken) non-leader unit.

Two claims, each proven over everything the unit could write into its own bag (the
only bag it can write):

1. A non-leader cannot make itself a holder by anything it writes: whatever its doc
   says, the queue the leader produces keeps every live entry where it was, puts any
   entry of the attacker behind all of them, and the attacker does not hold while a
   live honest exclusive entry is ahead of it.
2. No unit can release another unit's entry: released ids are per owner, so nothing
   in the attacker's doc makes an entry of another unit dead.

The attacker's raw text goes through the same parser and evidence code the adapters
use (``documents.parse_unit_doc`` via ``_evidence.BagEvidence``).
"""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from charm_coordinator import _evidence
from charm_coordinator import protocol as p
from charm_coordinator.documents import (
    AppDoc,
    Entry,
    LockRecord,
    Mode,
    UnitDoc,
    dump_unit_doc,
)

LOCK = "restart"
LEADER = "app/0"
HONEST = ["app/1", "app/2", "app/3"]
ATTACKER = "app/9"
SPEC = p.LockSpec(LOCK, limit=1)

ids = st.integers(min_value=-(2**70), max_value=2**70)
small_ids = st.integers(min_value=0, max_value=50)
lock_names = st.sampled_from([LOCK, "other", "restart ", "", "x" * 80, "../" + LOCK])
records = st.builds(
    LockRecord,
    id=st.one_of(small_ids, ids),
    released=st.one_of(small_ids, ids),
    mode=st.sampled_from(Mode),
    at=st.one_of(st.none(), st.just("2026-01-01T00:00:00Z")),
    priority=st.integers(0, 10),
)
valid_docs = st.builds(
    UnitDoc,
    locks=st.dictionaries(st.sampled_from([LOCK, "other"]), records, max_size=2),
    ack=st.one_of(small_ids, st.integers(0, 2**40)),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
# Documents an attacker might try: an app doc in its own bag naming itself first, a
# unit doc with extra keys (grant, unit, queues), released ids naming other units.
forged = st.one_of(
    st.builds(
        lambda seq, victim: json.dumps(
            {"v": 1, "seq": seq, "queues": {LOCK: [[0, ATTACKER, 1, "x"], [seq, victim, 1, "x"]]}}
        ),
        small_ids,
        st.sampled_from(HONEST),
    ),
    st.builds(
        lambda victim, rid: json.dumps(
            {"v": 1, "locks": {LOCK: {"id": 1, "released": 0}}, "released": {victim: rid}}
        ),
        st.sampled_from(HONEST),
        ids,
    ),
    st.builds(
        lambda victim: json.dumps(
            {"v": 1, "locks": {LOCK: {"id": 1, "released": 0}}, "grant": [ATTACKER, victim]}
        ),
        st.sampled_from(HONEST),
    ),
    st.builds(
        lambda victim, rid: json.dumps(
            {"v": 1, "locks": {LOCK: {"id": rid, "released": rid, "unit": victim}}}
        ),
        st.sampled_from(HONEST),
        small_ids,
    ),
)


def _raw(doc: UnitDoc) -> str:
    try:
        return dump_unit_doc(doc)
    except Exception:  # a doc the library would refuse to write; the attacker writes JSON
        return json.dumps(
            {
                "v": 1,
                "locks": {
                    k: {"id": r.id, "released": r.released, "mode": r.mode.value}
                    for k, r in doc.locks.items()
                },
                "ack": doc.ack,
            }
        )


attacker_raw = st.one_of(
    st.text(max_size=200),
    json_values.map(json.dumps),
    valid_docs.map(_raw),
    forged,
    st.sampled_from(["", "null", "{}", '{"v":2}', "[" * 5000 + "]" * 5000]),
)


def _honest_world(pending: list[bool], queued: int) -> tuple[AppDoc, dict[str, UnitDoc]]:
    """Honest units with requests (id 1); the first ``queued`` pending ones are queued."""
    docs: dict[str, UnitDoc] = {}
    entries: list[Entry] = []
    for unit, want in zip(HONEST, pending, strict=True):
        rec = LockRecord(id=1, released=0 if want else 1)
        docs[unit] = UnitDoc(locks={LOCK: rec})
        if want and len(entries) < queued:
            entries.append(Entry(len(entries) + 1, unit, 1))
    app = AppDoc(seq=len(entries), queues={LOCK: tuple(entries)} if entries else {})
    return app, docs


def _evidence_for(docs: dict[str, UnitDoc], raw: str) -> _evidence.BagEvidence:
    bags = {u: dump_unit_doc(d) for u, d in docs.items()}
    bags[ATTACKER] = raw
    problems: list[str] = []
    return _evidence.BagEvidence(
        LEADER,
        [*docs, ATTACKER],
        bags.get,
        lambda: {LEADER, *docs, ATTACKER},
        lambda e: problems.append(e.owner if hasattr(e, "owner") else str(e)),
    )


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    raw=attacker_raw,
    pending=st.lists(st.booleans(), min_size=3, max_size=3).filter(any),
    queued=st.integers(1, 3),
    full_scan=st.booleans(),
    wake_needed=st.booleans(),
)
def test_a_non_leader_cannot_make_itself_a_holder(raw, pending, queued, full_scan, wake_needed):
    app, docs = _honest_world(pending, queued)
    evidence = _evidence_for(docs, raw)
    evidence.read(ATTACKER)  # the leader's hook was about the attacker's change
    new = _evidence.lead(
        app,
        UnitDoc(),
        evidence,
        {LOCK: SPEC},
        full_scan=full_scan,
        wake_needed=wake_needed,
    )
    old_live = [e for e in app.queue(LOCK) if docs[e.unit].record(LOCK).pending]
    new_queue = new.queue(LOCK)
    # every live honest entry survives, with its place
    for e in old_live:
        assert e in new_queue, (e, new_queue)
    # the attacker is only ever appended behind everything that was there
    for e in new_queue:
        if e.unit == ATTACKER:
            assert all(e.seq > o.seq for o in app.queue(LOCK)), (e, app)
            assert e.seq > app.seq
    # and, whatever evidence its own doc gives, it does not hold while a live honest
    # exclusive entry is ahead of it
    if old_live:
        holding = {h.unit for h in p.holders(new, SPEC, _evidence_for(docs, raw))}
        assert ATTACKER not in holding
        assert holding <= {old_live[0].unit}


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=attacker_raw, victim=st.sampled_from(HONEST), rid=st.integers(1, 5))
def test_no_unit_can_release_another_units_entry(raw, victim, rid):
    docs = {u: UnitDoc(locks={LOCK: LockRecord(id=rid, released=rid - 1)}) for u in HONEST}
    evidence = _evidence_for(docs, raw)
    evidence.read(ATTACKER)
    for lock in (LOCK, "other"):
        assert not evidence.is_dead(lock, Entry(1, victim, rid))
        assert not evidence.is_dead(lock, Entry(1, victim, rid), cheap=True)
    # the pure rule agrees: releases are keyed by their owner
    static = p.StaticEvidence.from_docs({**docs})
    assert not static.is_dead(LOCK, Entry(1, victim, rid))


def test_a_forged_queue_in_a_unit_bag_is_rejected_and_the_owner_named():
    raw = json.dumps({"v": 1, "seq": 1, "queues": {LOCK: [[0, ATTACKER, 1, "x"]]}})
    app, docs = _honest_world([True, True, False], 2)
    evidence = _evidence_for(docs, raw)
    assert evidence.read(ATTACKER) is None
    assert ATTACKER in evidence.problems
    new = _evidence.lead(app, UnitDoc(), evidence, {LOCK: SPEC}, full_scan=True, wake_needed=False)
    assert [e.unit for e in new.queue(LOCK)] == ["app/1", "app/2"]
