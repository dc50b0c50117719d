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
    "ORDERS",
    "Evidence",
    "LockSpec",
    "Standing",
    "State",
    "StaticEvidence",
    "acknowledge",
    "force_release",
    "holders",
    "live_entries",
    "overdue",
    "pause",
    "prune",
    "release",
    "request",
    "resume",
    "revoke",
    "revoke_overdue",
    "sequence",
    "standing",
    "unqueued",
]


ORDERS = ("fifo", "priority", "leader-last")
"""The ordering policies a :class:`LockSpec` accepts."""


class LockSpec:
    """A named lock: how many exclusive holders at once, and how many shared ones.

    Args:
        name: the lock's name (letters, digits, ``_.:-``; up to 63 characters).
        limit: exclusive holders at once: 1 is a mutex, k a rolling operation k at a time.
        shared_limit: shared holders at once; ``None`` for no limit. Shared requests
            never hold alongside exclusive ones.

        timeout: seconds after which the leader revokes a holder; ``None`` (default): never.
        order: which waiting request the leader queues first: ``"fifo"`` (default, in
            the order the leader sees them), ``"priority"`` (highest ``priority`` first)
            or ``"leader-last"`` (the leader's own request after everyone else's).
        per_zone: zone-aware locks: at most this many exclusive holders in one
            availability zone at once (units publish ``JUJU_AVAILABILITY_ZONE``).

    Raises:
        ValueError: a bad name, limit, timeout, order or per_zone.
    """

    __slots__ = ("limit", "name", "order", "per_zone", "shared_limit", "timeout")

    def __init__(
        self,
        name: str,
        limit: int = 1,
        shared_limit: int | None = None,
        *,
        timeout: float | None = None,
        order: str = "fifo",
        per_zone: int | None = None,
    ) -> None:
        check_lock_name(name)
        if type(limit) is not int or limit < 1:
            raise ValueError(f"lock {name!r}: limit must be a whole number >= 1")
        if shared_limit is not None and (type(shared_limit) is not int or shared_limit < 1):
            raise ValueError(f"lock {name!r}: shared_limit must be None or >= 1")
        if timeout is not None and not (isinstance(timeout, (int, float)) and timeout > 0):
            raise ValueError(f"lock {name!r}: timeout must be None or a positive number")
        if order not in ORDERS:
            raise ValueError(f"lock {name!r}: order must be one of {', '.join(ORDERS)}")
        if per_zone is not None and (type(per_zone) is not int or per_zone < 1):
            raise ValueError(f"lock {name!r}: per_zone must be None or a whole number >= 1")
        self.name = name
        self.limit = limit
        self.shared_limit = shared_limit
        self.timeout = None if timeout is None else float(timeout)
        """Seconds after which the leader revokes a holder (off by default): this trades
        safety for liveness, since a revoked holder that is still working overlaps the
        next one. Only for operations that can be abandoned."""
        self.order = order
        self.per_zone = per_zone

    def _key(self) -> tuple[str, int, int | None, float | None, str, int | None]:
        return (self.name, self.limit, self.shared_limit, self.timeout, self.order, self.per_zone)

    def __repr__(self) -> str:
        extra = f", timeout={self.timeout}" if self.timeout is not None else ""
        if self.order != "fifo":
            extra += f", order={self.order!r}"
        if self.per_zone is not None:
            extra += f", per_zone={self.per_zone}"
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
    doc: UnitDoc,
    lock: str,
    mode: Mode = Mode.EXCLUSIVE,
    at: str | None = None,
    priority: int = 0,
) -> UnitDoc:
    """Request ``lock``; a no-op while a request for it is already pending."""
    rec = doc.record(lock)
    if rec.pending:
        return doc
    return doc.with_record(
        lock,
        LockRecord(id=rec.next_id, released=rec.released, mode=mode, at=at, priority=priority),
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
    """The leader revoked this request (timeout, or forced release); it must not act."""
    PAUSED = "paused"
    """Would hold, but an operator paused the lock's queue: it must not start yet."""


class Standing(NamedTuple):
    """A unit's standing for one lock, in its view."""

    lock: str
    state: State
    entry: Entry | None = None
    blockers: tuple[str, ...] = ()
    """Units whose live entries keep a waiting request from holding (the first few)."""


def _holds(entry: Entry, ahead: Iterable[Entry], spec: LockSpec) -> tuple[bool, tuple[str, ...]]:
    """The holder rule for ``entry`` given the LIVE entries ahead of it (lazy).

    Every clause only gets harder to pass as live entries are added ahead, which is
    what makes a stale view (a superset of the live entries) safe. For zone-aware
    locks, an exclusive entry holds when the live exclusive entries ahead neither fill
    its zone nor, counting at most ``per_zone`` per zone, fill the ``limit``: the
    greedy rule of a partition matroid truncated to ``limit``, whose span only grows
    with the set, so no unit ever jumps a holder of its own zone.
    """
    exclusive = shared = 0
    per_zone = spec.per_zone
    zones: dict[str | None, int] = {}
    for other in ahead:
        if other.mode is Mode.EXCLUSIVE:
            if entry.mode is Mode.SHARED:
                return False, (other.unit,)
            if per_zone is not None:
                n = zones[other.zone] = zones.get(other.zone, 0) + 1
                if n <= per_zone:
                    exclusive += 1
                if (other.zone == entry.zone and n >= per_zone) or exclusive >= spec.limit:
                    return False, (other.unit,)
                continue
            exclusive += 1
            if exclusive + shared >= spec.limit:
                return False, (other.unit,)
        else:
            shared += 1
            if entry.mode is Mode.EXCLUSIVE:
                return False, (other.unit,)
            if spec.shared_limit is not None and shared >= spec.shared_limit:
                return False, (other.unit,)
    return True, ()


def unqueued(app: AppDoc, lock: str, unit: str, rec: LockRecord) -> bool:
    """Whether ``unit``'s record ``rec`` is a request the leader has yet to queue.

    Pending, not queued (an entry with that id or a later one), and not revoked.
    """
    return (
        rec.pending
        and not any(e.unit == unit and e.id >= rec.id for e in app.queue(lock))
        and app.revoked_id(lock, unit) < rec.id
    )


def live_entries(
    queue: Sequence[Entry], lock: str, evidence: Evidence, *, cheap: bool = False
) -> Iterable[Entry]:
    """The queue's entries not known dead, oldest first, evaluated lazily."""
    return (e for e in queue if not evidence.is_dead(lock, e, cheap=cheap))


def standing(
    app: AppDoc,
    me: str,
    my_doc: UnitDoc,
    spec: LockSpec,
    evidence: Evidence,
    *,
    started: bool = False,
) -> Standing:
    """Where ``me`` stands for ``spec.name`` according to ``app`` (as committed).

    Reads evidence only for entries ahead of ``me``, and stops at the first one that
    decides the answer, so a unit far back in a queue costs a few reads, not N.
    ``started``: this unit already acted on this request, so a pause does not stop it.
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
    if holds and spec.name in app.paused and not started:
        return Standing(spec.name, State.PAUSED, mine)
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


def pause(app: AppDoc, lock: str) -> AppDoc:
    """Stop new holders of ``lock`` from starting; current holders carry on.

    Safe at any age of view: a pause only withholds grants. Units that have not seen it
    yet may still start, so a pause takes effect within a round, not at once.
    """
    return app if lock in app.paused else app._replace(paused=app.paused | {lock})


def resume(app: AppDoc, lock: str) -> AppDoc:
    """Undo :func:`pause`: the leader's write wakes every unit, and those that hold start."""
    return app._replace(paused=app.paused - {lock}) if lock in app.paused else app


def force_release(app: AppDoc, lock: str, unit: str) -> AppDoc:
    """Revoke ``unit``'s queued requests for ``lock`` (an operator's unsticking).

    Fenced like a timeout: the revocation is recorded, the unit sees it before it acts
    and withdraws; the units behind move up. Returns ``app`` itself when ``unit`` has
    nothing queued. If the unit is still working, it overlaps the next holder: this is
    for holders that are known dead or stuck.
    """
    return revoke(app, lock, [e for e in app.queue(lock) if e.unit == unit])


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
    fresh: Iterable[str] = (),
    hold_own: Iterable[str] = (),
) -> AppDoc:
    """The leader's step: queue new requests, prune when writing anyway, ask for a wake.

    A queue whose entries are all dead is left for the next full scan (:func:`prune`).

    ``candidates`` are the unit docs this hook has read (at least the leader's own and
    the one the event is about); requests already queued, or known dead, are skipped.
    The lock's ``order`` decides which requests join its queue, and in which order:
    ``fifo`` queues all of them, by unit name; ``priority`` and ``leader-last`` keep at
    most one request waiting beyond those that hold (so that a better request seen
    later can still go first) and pick by priority, or the leader's own last. The
    result depends on nothing but the inputs. Returns ``app`` itself when nothing needs
    writing.

    ``peers`` are the other units the leader knows; the first is asked to wake it when
    its own new request would hold at once (unless ``wake_needed`` is false because
    Juju is known to tell the leader about its own app-data writes). ``fresh`` names
    the locks for which the leader's own request is new in this hook: under
    ``leader-last`` it waits one round, for the peers' requests made at the same time.
    ``hold_own`` names locks for which the leader must not queue itself in this hook
    without asking for a wake (a hook that only reports the leader's own write, where
    every peer's bag is as stale as before).
    """
    wanted: dict[str, list[tuple[str, LockRecord]]] = {}
    for unit in sorted(candidates):
        doc = candidates[unit]
        for lock in sorted(doc.locks):
            rec = doc.locks[lock]
            if lock not in specs or not unqueued(app, lock, unit, rec):
                continue
            if evidence.is_dead(lock, Entry(0, unit, rec.id, rec.mode), cheap=True):
                continue
            wanted.setdefault(lock, []).append((unit, rec))
    others = sorted(p for p in peers if p != me)
    fresh = frozenset(fresh)
    hold_own = frozenset(hold_own)
    queues = dict(app.queues)
    seq = app.seq
    appended: list[tuple[str, Entry]] = []
    lonely_deferral = False
    for lock in sorted(wanted):
        spec = specs[lock]
        reqs = wanted[lock]
        queue = list(queues.get(lock, ()))
        if spec.order == "fifo":
            chosen = reqs
        elif spec.order == "priority":
            reqs.sort(key=lambda r: (-r[1].priority, r[0]))
            chosen = _admit(queue, reqs, lock, spec, evidence, candidates)
        else:
            mine = [r for r in reqs if r[0] == me] if others else []
            theirs = [r for r in reqs if r not in mine]
            chosen = _admit(queue, theirs, lock, spec, evidence, candidates)
            alone = not theirs and all(e.unit == me for e in live_entries(queue, lock, evidence))
            if mine and lock in fresh:
                lonely_deferral |= alone
            elif mine and alone and lock not in hold_own:
                # Last means after every request it has seen: none queued, none waiting.
                chosen = _admit(queue, mine, lock, spec, evidence, candidates)
        for entry in _entries(chosen, seq, spec, candidates):
            queue.append(entry)
            appended.append((lock, entry))
        seq += len(chosen)
        queues[lock] = tuple(queue)
    if not appended and not lonely_deferral:
        # No prune-only writes: Juju delivers app-level changes before unit-level ones,
        # so such a write reaches the next unit before the release that caused it and
        # costs a round per hand-off. Drained queues are pruned in full scans instead.
        return app
    new = prune(app._replace(seq=seq, queues=queues, wake=None), evidence)
    if lonely_deferral and not appended:
        # The leader holds its own request back for one round; a peer's ack brings it
        # back. A fresh number makes the token one no peer has acknowledged yet.
        return new._replace(seq=seq + 1, wake=Wake(unit=others[0], token=seq + 1))
    if wake_needed and others and _own_entry_holds(new, me, appended, evidence, specs):
        new = new._replace(wake=Wake(unit=others[0], token=new.seq))
    return new


def _entries(
    chosen: Sequence[tuple[str, LockRecord]],
    seq: int,
    spec: LockSpec,
    candidates: Mapping[str, UnitDoc],
) -> list[Entry]:
    """Queue entries for ``chosen`` requests, numbered from ``seq + 1``."""
    return [
        Entry(
            seq=seq + i,
            unit=unit,
            id=rec.id,
            mode=rec.mode,
            zone=candidates[unit].zone if spec.per_zone is not None else None,
        )
        for i, (unit, rec) in enumerate(chosen, start=1)
    ]


def _admit(
    queue: Sequence[Entry],
    reqs: Sequence[tuple[str, LockRecord]],
    lock: str,
    spec: LockSpec,
    evidence: Evidence,
    candidates: Mapping[str, UnitDoc],
) -> list[tuple[str, LockRecord]]:
    """The requests, in the given order, that may join the queue now.

    A request joins if it would hold at once, or if no live entry is waiting yet: one
    on deck, so that a hand-off needs no leader hook, and no more, so that the order
    is decided as late as possible.
    """
    live = list(live_entries(queue, lock, evidence))
    waiting = any(not _holds(e, live[:i], spec)[0] for i, e in enumerate(live))
    chosen: list[tuple[str, LockRecord]] = []
    for req in reqs:
        (entry,) = _entries([req], 0, spec, candidates)
        if _holds(entry, live, spec)[0]:
            pass
        elif waiting:
            continue
        else:
            waiting = True
        chosen.append(req)
        live.append(entry)
    return chosen


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
