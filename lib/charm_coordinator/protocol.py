"""The coordination protocol: pure, deterministic rules with no I/O.

Theory of operation
-------------------
Rule 1: everything that decides who holds a lock lives here; adapters only read
databags, call these functions, and write what they return.
Rule 2: no clocks decide anything. Order comes from the leader's sequence numbers.

* A unit requests a lock by raising its record's ``id`` in its own databag
  (:func:`request`); it releases or cancels by raising ``released`` to that id
  (:func:`release`). Ids only grow, and the next id is derived from the doc itself.
* The leader appends requests it sees to the lock's queue with a fresh sequence number
  (:func:`sequence`) and prunes entries that are dead, but only when it writes anyway
  (or in a full scan, such as update-status), because a prune-only write reaches other
  units before the release that caused it and would cost a round per handoff.
* Whether an entry holds is a function every unit evaluates on its own view
  (:func:`standing`). An entry is *dead* only on positive evidence: its unit's doc
  shows that id released, or the unit is known to have left. Absence is never
  evidence: Juju may show a unit a queue entry before the request behind it.
* Why a stale view is safe: queues only grow at the tail, pruning removes only dead
  entries, and a dead entry never lives again (ids are never reused; released ids only
  grow). So any view counts at least as many live entries ahead of an entry as there
  truly are, and a unit that concludes it holds is right, whatever its view's age.
* The leader never acts on a queue it has not committed. When it appends its own
  request and that request would hold, nothing else is due to run a hook on it, so it
  names a peer in ``wake``; the peer acknowledges in its own databag (:func:`acknowledge`)
  and that write wakes the leader.

An :class:`Evidence` object answers "is this entry dead?"; adapters implement it over
databags (reading lazily, remembering deaths, since a death is forever) and tests over
plain dicts (:class:`StaticEvidence`).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import NamedTuple, Protocol

from .documents import AppDoc, Entry, LockRecord, Mode, UnitDoc, Wake, check_lock_name

__all__ = [
    "Evidence",
    "LockSpec",
    "Standing",
    "State",
    "StaticEvidence",
    "acknowledge",
    "holders",
    "live_entries",
    "overdue",
    "prune",
    "release",
    "request",
    "revoke",
    "revoke_overdue",
    "sequence",
    "standing",
]


class LockSpec:
    """A named lock: how many exclusive holders at once, and how many shared ones.

    Args:
        name: the lock's name (letters, digits, ``_.:-``; up to 63 characters).
        limit: exclusive holders at once: 1 is a mutex, k a rolling operation k at a time.
        shared_limit: shared holders at once; ``None`` for no limit. Shared requests
            never hold alongside exclusive ones.

    Raises:
        ValueError: a bad name or limit.
    """

    __slots__ = ("limit", "name", "shared_limit", "timeout")

    def __init__(
        self,
        name: str,
        limit: int = 1,
        shared_limit: int | None = None,
        *,
        timeout: float | None = None,
    ) -> None:
        check_lock_name(name)
        if type(limit) is not int or limit < 1:
            raise ValueError(f"lock {name!r}: limit must be a whole number >= 1")
        if shared_limit is not None and (type(shared_limit) is not int or shared_limit < 1):
            raise ValueError(f"lock {name!r}: shared_limit must be None or >= 1")
        if timeout is not None and not (isinstance(timeout, (int, float)) and timeout > 0):
            raise ValueError(f"lock {name!r}: timeout must be None or a positive number")
        self.name = name
        self.limit = limit
        self.shared_limit = shared_limit
        self.timeout = None if timeout is None else float(timeout)
        """Seconds after which the leader revokes a holder (off by default): this trades
        safety for liveness, since a revoked holder that is still working overlaps the
        next one. Only for operations that can be abandoned."""

    def _key(self) -> tuple[str, int, int | None, float | None]:
        return (self.name, self.limit, self.shared_limit, self.timeout)

    def __repr__(self) -> str:
        extra = f", timeout={self.timeout}" if self.timeout is not None else ""
        return (
            f"LockSpec({self.name!r}, limit={self.limit}, shared_limit={self.shared_limit}{extra})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LockSpec):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())


class Evidence(Protocol):
    """Positive evidence that an entry is dead."""

    def is_dead(self, lock: str, entry: Entry, *, cheap: bool = False) -> bool:
        """True only if ``entry`` is known released or its unit known gone.

        With ``cheap``, answer from what is already known, without reading anything new
        (unknown counts as live).
        """
        ...


class StaticEvidence(NamedTuple):
    """Evidence from plain values: released ids per (unit, lock) and departed units."""

    released: Mapping[tuple[str, str], int] = MappingProxyType({})
    departed: frozenset[str] = frozenset()

    def is_dead(self, lock: str, entry: Entry, *, cheap: bool = False) -> bool:
        """See :class:`Evidence`."""
        if entry.unit in self.departed:
            return True
        return self.released.get((entry.unit, lock), 0) >= entry.id

    @classmethod
    def from_docs(
        cls, docs: Mapping[str, UnitDoc], departed: Iterable[str] = ()
    ) -> StaticEvidence:
        """Evidence as it follows from a set of unit docs."""
        released = {
            (unit, lock): rec.released
            for unit, doc in docs.items()
            for lock, rec in doc.locks.items()
        }
        return cls(released=released, departed=frozenset(departed))


# -- a unit's own doc ---------------------------------------------------------------------


def request(
    doc: UnitDoc, lock: str, mode: Mode = Mode.EXCLUSIVE, at: str | None = None
) -> UnitDoc:
    """Request ``lock``; a no-op while a request for it is already pending."""
    rec = doc.record(lock)
    if rec.pending:
        return doc
    return doc.with_record(
        lock, LockRecord(id=rec.next_id, released=rec.released, mode=mode, at=at)
    )


def release(doc: UnitDoc, lock: str) -> UnitDoc:
    """Release (if held) or cancel (if waiting) the pending request; else a no-op."""
    rec = doc.record(lock)
    if not rec.pending:
        return doc
    return doc.with_record(lock, rec._replace(released=rec.id, at=None))


def acknowledge(doc: UnitDoc, app: AppDoc, me: str) -> UnitDoc:
    """Answer the leader's wake-up call if it names this unit."""
    if app.wake is not None and app.wake.unit == me and doc.ack != app.wake.token:
        return doc._replace(ack=app.wake.token)
    return doc


# -- who holds ----------------------------------------------------------------------------


class State(enum.Enum):
    """Where a unit stands with one lock."""

    IDLE = "idle"
    """No pending request."""
    REQUESTED = "requested"
    """Requested, not yet in the committed queue this unit sees."""
    WAITING = "waiting"
    """Queued behind live entries."""
    HOLDING = "holding"
    """Queued, and the rule says it holds."""
    REVOKED = "revoked"
    """The leader revoked this request after the lock's timeout; it must not act."""


class Standing(NamedTuple):
    """A unit's standing for one lock, in its view."""

    lock: str
    state: State
    entry: Entry | None = None
    blockers: tuple[str, ...] = ()
    """Units whose live entries keep a waiting request from holding (the first few)."""


def _holds(entry: Entry, ahead: Iterable[Entry], spec: LockSpec) -> tuple[bool, tuple[str, ...]]:
    """The holder rule for ``entry`` given the LIVE entries ahead of it (lazy)."""
    exclusive = shared = 0
    for other in ahead:
        if other.mode is Mode.EXCLUSIVE:
            exclusive += 1
            if entry.mode is Mode.SHARED or exclusive + shared >= spec.limit:
                return False, (other.unit,)
        else:
            shared += 1
            if entry.mode is Mode.EXCLUSIVE:
                return False, (other.unit,)
            if spec.shared_limit is not None and shared >= spec.shared_limit:
                return False, (other.unit,)
    return True, ()


def live_entries(
    queue: Sequence[Entry], lock: str, evidence: Evidence, *, cheap: bool = False
) -> Iterable[Entry]:
    """The queue's entries not known dead, oldest first, evaluated lazily."""
    return (e for e in queue if not evidence.is_dead(lock, e, cheap=cheap))


def standing(
    app: AppDoc, me: str, my_doc: UnitDoc, spec: LockSpec, evidence: Evidence
) -> Standing:
    """Where ``me`` stands for ``spec.name`` according to ``app`` (as committed).

    Reads evidence only for entries ahead of ``me``, and stops at the first one that
    decides the answer, so a unit far back in a queue costs a few reads, not N.
    """
    rec = my_doc.record(spec.name)
    if not rec.pending:
        return Standing(spec.name, State.IDLE)
    if app.revoked_id(spec.name, me) >= rec.id:
        return Standing(spec.name, State.REVOKED)
    queue = app.queue(spec.name)
    mine = next((e for e in queue if e.unit == me and e.id == rec.id), None)
    if mine is None:
        return Standing(spec.name, State.REQUESTED)
    ahead = (e for e in queue if e.seq < mine.seq and not evidence.is_dead(spec.name, e))
    holds, blockers = _holds(mine, ahead, spec)
    return Standing(spec.name, State.HOLDING if holds else State.WAITING, mine, blockers)


def holders(app: AppDoc, spec: LockSpec, evidence: Evidence) -> tuple[Entry, ...]:
    """Every entry that holds in this view (reads evidence for the whole queue)."""
    live = list(live_entries(app.queue(spec.name), spec.name, evidence))
    return tuple(e for i, e in enumerate(live) if _holds(e, live[:i], spec)[0])


# -- the leader ---------------------------------------------------------------------------


def prune(app: AppDoc, evidence: Evidence, *, cheap: bool = True) -> AppDoc:
    """Drop dead entries, empty queues, and revocations their unit has acknowledged.

    By default only from what is already known (``cheap``): no new reads.
    """
    queues: dict[str, tuple[Entry, ...]] = {}
    for lock, queue in app.queues.items():
        kept = tuple(live_entries(queue, lock, evidence, cheap=cheap))
        if kept:
            queues[lock] = kept
    revoked: dict[str, dict[str, int]] = {}
    for lock, units in app.revoked.items():
        left = {
            unit: rid
            for unit, rid in units.items()
            if not evidence.is_dead(lock, Entry(0, unit, rid), cheap=cheap)
        }
        if left:
            revoked[lock] = left
    return app._replace(queues=queues, revoked=revoked)


def revoke(app: AppDoc, lock: str, entries: Iterable[Entry]) -> AppDoc:
    """Take ``entries`` out of ``lock``'s queue for good (grant timeouts).

    The revocation is recorded so that no leader queues those requests again and their
    units see it before they act; the units behind them move up.
    """
    gone = {(e.unit, e.id) for e in entries}
    if not gone:
        return app
    queue = tuple(e for e in app.queue(lock) if (e.unit, e.id) not in gone)
    revoked = {k: dict(v) for k, v in app.revoked.items()}
    mine = revoked.setdefault(lock, {})
    for unit, rid in gone:
        mine[unit] = max(mine.get(unit, 0), rid)
    queues = dict(app.queues)
    queues[lock] = queue
    return app._replace(queues={k: v for k, v in queues.items() if v}, revoked=revoked)


def revoke_overdue(
    app: AppDoc,
    specs: Mapping[str, LockSpec],
    evidence: Evidence,
    since: Mapping[str, Mapping[tuple[str, int], float]],
    now: float,
) -> tuple[AppDoc, dict[str, dict[tuple[str, int], float]]]:
    """The leader's timeout step for every lock that has a ``timeout``.

    Returns the app doc with overdue holders revoked (``app`` itself if none) and the
    updated first-seen times to keep for the next hook.
    """
    timers: dict[str, dict[tuple[str, int], float]] = {}
    for lock, spec in specs.items():
        if spec.timeout is None:
            continue
        seen, late = overdue(app, spec, evidence, since.get(lock, {}), now, spec.timeout)
        timers[lock] = {k: t for k, t in seen.items() if all(k != (e.unit, e.id) for e in late)}
        app = revoke(app, lock, late)
    return app, timers


def overdue(
    app: AppDoc,
    spec: LockSpec,
    evidence: Evidence,
    since: Mapping[tuple[str, int], float],
    now: float,
    timeout: float,
) -> tuple[dict[tuple[str, int], float], list[Entry]]:
    """Holders of ``spec`` held longer than ``timeout`` by one observer's clock.

    ``since`` maps (unit, id) to when this observer first saw the entry hold; the
    result is the updated map (only current holders) and the entries now overdue.
    Only differences of one clock are used, so skew between units cannot matter.
    """
    current = {(e.unit, e.id): e for e in holders(app, spec, evidence)}
    seen = {key: since.get(key, now) for key in current}
    late = [current[key] for key, t in seen.items() if now - t > timeout]
    return seen, late


def sequence(
    app: AppDoc,
    me: str,
    candidates: Mapping[str, UnitDoc],
    evidence: Evidence,
    specs: Mapping[str, LockSpec],
    *,
    peers: Sequence[str] = (),
    wake_needed: bool = True,
) -> AppDoc:
    """The leader's step: queue new requests, prune when writing anyway, ask for a wake.

    A queue whose entries are all dead is left for the next full scan (:func:`prune`).

    ``candidates`` are the unit docs this hook has read (at least the leader's own and
    the one the event is about); requests already queued, or known dead, are skipped.
    Units are taken in name order so the result depends on nothing but the inputs.
    Returns ``app`` itself when nothing needs writing.

    ``peers`` are the other units the leader knows; the first is asked to wake it when
    its own new request would hold at once (unless ``wake_needed`` is false because
    Juju is known to tell the leader about its own app-data writes).
    """
    queues = {lock: list(q) for lock, q in app.queues.items()}
    seq = app.seq
    appended: list[tuple[str, Entry]] = []
    for unit in sorted(candidates):
        doc = candidates[unit]
        for lock in sorted(doc.locks):
            rec = doc.locks[lock]
            if lock not in specs or not rec.pending:
                continue
            queue = queues.setdefault(lock, [])
            if any(e.unit == unit and e.id >= rec.id for e in queue):
                continue
            if app.revoked_id(lock, unit) >= rec.id:
                continue
            entry = Entry(seq=seq + 1, unit=unit, id=rec.id, mode=rec.mode)
            if evidence.is_dead(lock, entry, cheap=True):
                continue
            seq += 1
            queue.append(entry)
            appended.append((lock, entry))
    if not appended:
        # No prune-only writes: Juju delivers app-level changes before unit-level ones,
        # so such a write reaches the next unit before the release that caused it and
        # costs a round per hand-off. Drained queues are pruned in full scans instead.
        return app
    new = prune(
        AppDoc(
            seq=seq,
            queues={k: tuple(v) for k, v in queues.items()},
            wake=None,
            revoked=app.revoked,
        ),
        evidence,
    )
    others = [p for p in peers if p != me]
    if wake_needed and others and _own_entry_holds(new, me, appended, evidence, specs):
        new = new._replace(wake=Wake(unit=sorted(others)[0], token=new.seq))
    elif app.wake is not None and not appended:
        new = new._replace(wake=app.wake)
    return new


def _own_entry_holds(
    app: AppDoc,
    me: str,
    appended: Sequence[tuple[str, Entry]],
    evidence: Evidence,
    specs: Mapping[str, LockSpec],
) -> bool:
    for lock, entry in appended:
        if entry.unit != me:
            continue
        queue = app.queue(lock)
        ahead = (
            e for e in queue if e.seq < entry.seq and not evidence.is_dead(lock, e, cheap=True)
        )
        if _holds(entry, ahead, specs[lock])[0]:
            return True
    return False
