"""The ops adapter: a :class:`Coordinator` attached to a charm.

It is a thin shell around :mod:`charm_coordinator.protocol`: it reads the peer databags
lazily, remembers what it has learnt for good (released ids, departures), calls the
pure rules, emits :class:`LockGrantedEvent`, and writes both documents once, at the end
of the dispatch (ops' ``pre_commit``), only when they changed.

What it does not do: set the charm's status (it offers :meth:`Coordinator.status_message`),
or use leader settings (the queue lives in the peer application databag).
"""

from __future__ import annotations

import datetime
import logging
import os
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

import ops

from . import _evidence, protocol
from ._evidence import BagEvidence
from .documents import (
    MAX_PRIORITY,
    AppDoc,
    Mode,
    UnitDoc,
    check_zone,
    dump_app_doc,
    dump_unit_doc,
    parse_app_doc,
    parse_unit_doc,
)
from .errors import LocalUsageError, MalformedDataError, NotLeaderError, UnknownLockError
from .protocol import LockSpec, Standing, State

__all__ = [
    "Coordinator",
    "CoordinatorEvents",
    "LeadershipEvent",
    "LockGrantedEvent",
    "LockRevokedEvent",
    "MemberEvent",
    "QueuedRequest",
]

logger = logging.getLogger(__name__)

LEASE_SAFE_SECONDS = _evidence.LEASE_SAFE_SECONDS
"""Juju guarantees leadership for 30 s after is-leader; write app data well inside that."""

_REGISTRY: weakref.WeakKeyDictionary[
    ops.Framework, weakref.WeakValueDictionary[str, Coordinator]
] = weakref.WeakKeyDictionary()


class _LockEvent(ops.EventBase):
    """An event about one request of this unit for one lock."""

    def __init__(self, handle: ops.Handle, lock: str, request_id: int, coordinator: str) -> None:
        super().__init__(handle)
        self.lock = lock
        self.request_id = request_id
        self._coordinator = coordinator

    def snapshot(self) -> dict[str, Any]:
        """Serialise for deferral."""
        return {"lock": self.lock, "id": self.request_id, "coordinator": self._coordinator}

    def restore(self, snapshot: dict[str, Any]) -> None:
        """Restore a deferred event."""
        self.lock = str(snapshot["lock"])
        self.request_id = int(snapshot["id"])
        self._coordinator = str(snapshot["coordinator"])

    def _owner(self) -> Coordinator:
        return _REGISTRY[self.framework][self._coordinator]


class LockGrantedEvent(_LockEvent):
    """This unit now holds ``lock``.

    The lock is released at the end of the dispatch that handled this event, unless
    the handler calls :meth:`keep` (hold across hooks, then call
    :meth:`Coordinator.release`) or defers the event (it stays held until the deferred
    event is handled).
    """

    def keep(self) -> None:
        """Keep holding after this dispatch; release later with ``Coordinator.release``."""
        self._owner().kept(self.lock, self.request_id)

    def defer(self) -> None:
        """Defer, holding the lock until the deferred event is handled."""
        super().defer()
        self._owner().kept(self.lock, self.request_id)

    def restore(self, snapshot: dict[str, Any]) -> None:
        """Restore a deferred event; it counts as delivered in this dispatch."""
        super().restore(snapshot)
        self._owner().delivered(self.lock, self.request_id)


class LockRevokedEvent(_LockEvent):
    """The leader revoked this unit's request (lock ``timeout``, or ``force_release``).

    The request is withdrawn at the end of this dispatch. A unit that was holding must
    stop: another unit may already hold the lock. Call ``acquire`` again to queue anew.
    """


class MemberEvent(ops.EventBase):
    """A peer unit joined or left the application's peer relation (``member``)."""

    def __init__(self, handle: ops.Handle, member: str) -> None:
        super().__init__(handle)
        self.member = member

    def snapshot(self) -> dict[str, Any]:
        """Serialise for deferral."""
        return {"member": self.member}

    def restore(self, snapshot: dict[str, Any]) -> None:
        """Restore a deferred event."""
        self.member = str(snapshot["member"])


class LeadershipEvent(ops.EventBase):
    """This unit became, or stopped being, the leader."""


class CoordinatorEvents(ops.ObjectEvents):
    """Events a :class:`Coordinator` emits."""

    lock_granted = ops.EventSource(LockGrantedEvent)
    lock_revoked = ops.EventSource(LockRevokedEvent)
    member_joined = ops.EventSource(MemberEvent)
    """A peer joined (its relation-joined ran on this unit): it is in :attr:`members`."""
    member_left = ops.EventSource(MemberEvent)
    """A peer left (its relation-departed ran on this unit)."""
    leadership_gained = ops.EventSource(LeadershipEvent)
    """This unit is now the leader (at leader-elected, or the first hook that shows it)."""
    leadership_lost = ops.EventSource(LeadershipEvent)
    """This unit was the leader and is not any more. Juju sends no hook for this, so it
    comes with the first hook this unit runs afterwards (at worst its update-status)."""


class QueuedRequest(NamedTuple):
    """One request in a lock's queue, for introspection (``lock-status`` actions)."""

    unit: str
    request_id: int
    seq: int
    shared: bool
    holding: bool
    zone: str | None = None
    requested_at: str | None = None
    """When the unit made the request (its own clock, informational), if known."""


class _View:
    """What one dispatch has read and decided so far."""

    __slots__ = (
        "app",
        "app_problem",
        "app_raw",
        "doc",
        "doc_problem",
        "doc_raw",
        "evidence",
        "full_scan",
        "leader",
        "leader_checked_at",
        "my_doc",
        "own_app_event",
        "relation",
        "seen",
        "standings",
    )

    def __init__(self, relation: ops.Relation, evidence: BagEvidence, leader: bool) -> None:
        self.relation = relation
        self.evidence = evidence
        self.leader = leader
        self.leader_checked_at = 0.0
        self.app = AppDoc()
        self.app_raw = ""
        self.app_problem: str | None = None
        self.doc = UnitDoc()
        self.doc_raw = ""
        self.doc_problem: str | None = None
        self.full_scan = False
        self.my_doc: tuple[tuple[int, bool], UnitDoc] | None = None
        self.standings: dict[tuple[str, int, bool, int | None], Standing] = {}
        self.own_app_event = False
        """This hook is the leader's relation-changed for its own app-data write."""
        self.seen: set[str] = set()
        """Peers whose unit-level relation event this hook is about."""


class Coordinator(ops.Object):
    """Named locks shared by the units of this application, over the peer relation.

    Example::

        self.coordinator = Coordinator(self, [LockSpec("restart")])
        framework.observe(self.coordinator.on.lock_granted, self._on_lock_granted)

    Args:
        charm: the charm this coordinator belongs to.
        locks: lock names or :class:`LockSpec` objects (a name is a mutex).
        relation_name: the peer relation; default: the only (or first) one in metadata.
        key: databag key for the coordinator's documents; also names this object.
        clock: wall clock for informational request timestamps.
    """

    on = CoordinatorEvents()  # pyright: ignore[reportAssignmentType]
    _stored = ops.StoredState()  # type: ignore[no-untyped-call]

    def __init__(
        self,
        charm: ops.CharmBase,
        locks: Iterable[LockSpec | str] = ("restart",),
        *,
        relation_name: str | None = None,
        key: str = "coordinator",
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(charm, key)
        self.key = key
        self.unit_name = charm.unit.name
        self.specs: dict[str, LockSpec] = {}
        for lock in locks:
            spec = LockSpec(lock) if isinstance(lock, str) else lock
            self.specs[spec.name] = spec
        self._clock = clock
        self._stored.set_default(
            pending={},
            handed={},
            released={},
            departed=[],
            self_app_events=False,
            written=0,
            since={},
            leader=False,
            unqueued=[],
            seen={},
        )
        self.relation_name, self.setup_problem = _peer_relation_name(charm.meta, relation_name)
        self._view: _View | None = None
        self._delivered: dict[str, int] = {}
        self._kept: dict[str, int] = {}
        self._intents: list[tuple[str, Mode | None, int]] = []
        """This dispatch's acquire/release calls, in order (mode None: release)."""
        self._operator: list[Callable[[AppDoc], AppDoc]] = []
        """This dispatch's pause/resume/force-release calls (leader only)."""
        self._leadership_checked = False
        self._stamp: str | None = None
        self._committing = False
        """Set in the pre-commit step, where ``handed`` changes: cached standings expire."""
        self.zone = (
            _zone_from_env() if any(s.per_zone is not None for s in self.specs.values()) else None
        )
        # Weak both ways: a Coordinator refers to its framework, so a plain dict here
        # would keep every dispatch's framework alive in a long-lived process.
        _REGISTRY.setdefault(self.framework, weakref.WeakValueDictionary())[key] = self
        if self.setup_problem:
            logger.error("coordinator %s: %s", key, self.setup_problem)
            return
        assert self.relation_name is not None
        rel = self.relation_name.replace("-", "_") + "_relation_"
        tracked = ("leader_settings_changed", "config_changed", "start")
        acted = ("created", "joined", "changed", "departed")
        scanned = ("leader_elected", "upgrade_charm", "update_status")
        # Only this dispatch's Juju event can reach these handlers (they never defer), so
        # observing just that one spares ~15 observe() calls per hook; all of them when
        # the event is unknown (a unit test emitting events by hand).
        now = _dispatched_event()
        for name in (*tracked, *(rel + a for a in acted[1:]), *scanned):
            if now is None or name == now:
                self.framework.observe(getattr(charm.on, name), self._track_leadership)
        for name in (*(rel + a for a in acted), *scanned):
            if now is None or name == now:
                self.framework.observe(getattr(charm.on, name), self._on_event)
        self.framework.observe(self.framework.on.pre_commit, self._on_pre_commit)

    # -- public API ---------------------------------------------------------------------

    def acquire(self, lock: str, *, shared: bool = False, priority: int = 0) -> bool:
        """Request ``lock`` (idempotent while pending); True if this unit holds it now.

        A new request is published at the end of the dispatch; the grant arrives later
        as :attr:`CoordinatorEvents.lock_granted`. Before the peer relation exists the
        request is kept and published as soon as it does. ``priority`` (0 to 1,000,000,
        higher first) matters for locks with ``order="priority"``.
        """
        self._spec(lock)
        if type(priority) is not int or not 0 <= priority <= MAX_PRIORITY:
            raise ValueError(f"priority must be a whole number from 0 to {MAX_PRIORITY}")
        self._intents.append((lock, Mode.SHARED if shared else Mode.EXCLUSIVE, priority))
        view = self._load()
        if view is None:
            return False
        return self.standing(lock).state is State.HOLDING

    def release(self, lock: str) -> None:
        """Release ``lock`` if held, or withdraw the request if waiting; else nothing."""
        self._spec(lock)
        self._intents.append((lock, None, 0))
        self._kept.pop(lock, None)

    def granted(self, lock: str) -> bool:
        """Whether this unit holds ``lock`` now."""
        return self.standing(lock).state is State.HOLDING

    def requested(self, lock: str) -> bool:
        """Whether this unit has a pending request for ``lock`` (waiting or holding)."""
        return self.standing(lock).state is not State.IDLE

    def standing(self, lock: str) -> Standing:
        """Where this unit stands with ``lock``: idle, requested, waiting, paused, holding."""
        spec = self._spec(lock)
        view = self._load()
        if view is None:
            pending = self._pending_without_relation().get(lock)
            return Standing(lock, State.REQUESTED if pending else State.IDLE)
        doc = self._my_doc(view)
        rid = doc.record(lock).id
        key = (lock, len(self._intents), self._committing, self._delivered.get(lock))
        cached = view.standings.get(key)
        if cached is not None:
            return cached
        started = rid in (self._stored.handed.get(lock), self._delivered.get(lock))
        view.standings[key] = s = protocol.standing(
            view.app, self.unit_name, doc, spec, view.evidence, started=started
        )
        return s

    def queue(self, lock: str) -> tuple[QueuedRequest, ...]:
        """The committed queue for ``lock`` without dead entries, oldest first."""
        spec = self._spec(lock)
        view = self._load()
        if view is None:
            return ()
        holding = set(protocol.holders(view.app, spec, view.evidence))
        docs = {**view.evidence.docs, self.unit_name: self._my_doc(view)}

        def at(unit: str, rid: int) -> str | None:
            doc = docs.get(unit)
            rec = doc.record(lock) if doc is not None else None
            return rec.at if rec is not None and rec.id == rid else None

        return tuple(
            QueuedRequest(
                e.unit, e.id, e.seq, e.mode is Mode.SHARED, e in holding, e.zone, at(e.unit, e.id)
            )
            for e in protocol.live_entries(view.app.queue(lock), lock, view.evidence)
        )

    def unqueued(self, lock: str) -> tuple[str, ...]:
        """Units with a request for ``lock`` the leader has not queued yet.

        Under the ``priority`` and ``leader-last`` orders the leader queues requests
        only as places open, so these are waiting too. Reads every peer's bag: for
        actions and status pages, not for every hook.
        """
        self._spec(lock)
        view = self._load()
        if view is None:
            return (self.unit_name,) if self._pending_without_relation().get(lock) else ()
        for unit in view.evidence.members():
            view.evidence.read(unit)
        docs = {**view.evidence.docs, self.unit_name: self._my_doc(view)}
        return tuple(
            unit
            for unit, doc in sorted(docs.items(), key=lambda kv: _unit_key(kv[0]))
            if protocol.unqueued(view.app, lock, unit, doc.record(lock))
        )

    def paused(self, lock: str) -> bool:
        """Whether an operator paused ``lock``'s queue (in this unit's view)."""
        self._spec(lock)
        view = self._load()
        return view is not None and lock in view.app.paused

    def pause(self, lock: str) -> None:
        """Stop new holders of ``lock`` from starting (leader only; for an action).

        Units that already hold carry on; the others see the pause at the leader's write
        at the end of this dispatch (within a round, so one may still start meanwhile).

        Raises:
            NotLeaderError: this unit is not the leader.
            LocalUsageError: no peer relation yet, or the queue's data is malformed.
        """
        self._operate("pause", lock, lambda app: protocol.pause(app, lock))

    def resume(self, lock: str) -> None:
        """Undo :meth:`pause` (leader only); the units next in line start."""
        self._operate("resume", lock, lambda app: protocol.resume(app, lock))

    def force_release(self, lock: str, unit: str) -> None:
        """Take ``unit``'s request out of ``lock``'s queue for good (leader only).

        For a holder that is gone or stuck. Fenced: the revocation is recorded in the
        leader's data, and the unit, if it runs again, gets ``lock_revoked`` instead of
        acting. If it is in fact still working, the next holder overlaps it.

        Raises:
            NotLeaderError: this unit is not the leader.
            LocalUsageError: ``unit`` has no request in the queue, no peer relation, or
                malformed queue data.
        """

        def queued(app: AppDoc) -> None:
            if not any(e.unit == unit for e in app.queue(lock)):
                who = ", ".join(e.unit for e in app.queue(lock)) or "nobody"
                raise LocalUsageError(
                    f"force-release: {unit} has no request in the {lock!r} queue (queued: {who})"
                )

        self._operate(
            "force-release", lock, lambda app: protocol.force_release(app, lock, unit), queued
        )

    @property
    def members(self) -> tuple[str, ...]:
        """This unit and the peers it sees (joined and not departed), by unit number."""
        relation = self.model.get_relation(self.relation_name) if self.relation_name else None
        units = {self.unit_name}
        if relation is not None:
            units.update(u.name for u in relation.units)
        return tuple(sorted(units, key=_unit_key))

    def partition(
        self,
        items: Iterable[str],
        *,
        replicas: int = 1,
        weights: Mapping[str, float] | None = None,
        keep: Mapping[str, str] | None = None,
    ) -> list[str]:
        """The ``items`` this unit owns among :attr:`members` (consistent hashing).

        Units that see the same members get the same answer; when a unit joins or
        leaves, only about its share of the items moves. ``keep`` maps items to the
        unit already working on them, to leave them there while it stays (pass data
        every unit sees alike, such as the app databag). See docs/partitioning.md.
        """
        from .hashring import owned

        return list(
            owned(
                items, self.members, self.unit_name, replicas=replicas, weights=weights, keep=keep
            )
        )

    def holders(self, lock: str) -> tuple[str, ...]:
        """Units holding ``lock`` in this unit's view."""
        return tuple(q.unit for q in self.queue(lock) if q.holding)

    def request_timestamp(self, lock: str) -> datetime.datetime | None:
        """When this unit's pending request was made (informational), else None."""
        view = self._load()
        if view is None:
            return None
        rec = self._my_doc(view).record(lock)
        if not rec.pending or rec.at is None:
            return None
        return datetime.datetime.fromisoformat(rec.at.replace("Z", "+00:00"))

    @property
    def problems(self) -> dict[str, str]:
        """Owners of malformed coordinator data seen in this dispatch, with the reason."""
        view = self._load()
        out: dict[str, str] = {}
        if self.setup_problem:
            out[self.unit_name] = self.setup_problem
        if view is not None:
            out.update(view.evidence.problems)
            if view.app_problem:
                out[self.model.app.name] = view.app_problem
            if view.doc_problem:
                out[self.unit_name] = view.doc_problem
        return out

    def status_message(self, lock: str | None = None) -> str:
        """A short message the charm may show, e.g. ``restart: 2nd in queue, after app/1``."""
        names = [lock] if lock is not None else list(self.specs)
        parts: list[str] = []
        for name in names:
            s = self.standing(name)
            if s.state is State.IDLE:
                continue
            if s.state is State.HOLDING:
                parts.append(f"{name}: holding")
            elif s.state is State.PAUSED:
                parts.append(f"{name}: next, but the queue is paused")
            elif s.state is State.REVOKED:
                parts.append(f"{name}: revoked by the leader")
            elif s.state is State.REQUESTED:
                parts.append(f"{name}: requested, not yet queued by the leader")
            else:
                # Cheap on purpose (charms call this in every hook): the position counts
                # entries not yet known to be released, and reads no further bags.
                view = self._load()
                assert view is not None and s.entry is not None
                ahead = sum(
                    1
                    for e in protocol.live_entries(
                        view.app.queue(name), name, view.evidence, cheap=True
                    )
                    if e.seq < s.entry.seq
                )
                who = s.blockers[0] if s.blockers else "?"
                paused = " (paused)" if name in view.app.paused else ""
                parts.append(f"{name}: {_ordinal(ahead + 1)} in queue, waiting for {who}{paused}")
        for owner, reason in sorted(self.problems.items()):
            parts.append(f"bad coordinator data from {owner}: {reason}")
        return "; ".join(parts)

    # -- bookkeeping used by LockGrantedEvent ---------------------------------------------

    def kept(self, lock: str, request_id: int) -> None:
        """Record that the grant of ``request_id`` must outlive this dispatch."""
        self._kept[lock] = request_id

    def delivered(self, lock: str, request_id: int) -> None:
        """Record that a granted event for ``request_id`` ran in this dispatch."""
        self._delivered[lock] = request_id
        self._kept.pop(lock, None)

    # -- internals ----------------------------------------------------------------------

    def _spec(self, lock: str) -> LockSpec:
        try:
            return self.specs[lock]
        except KeyError:
            raise UnknownLockError(lock, tuple(self.specs)) from None

    def _my_doc(self, view: _View) -> UnitDoc:
        """Own doc with this dispatch's intents applied (ops reads own bag locally).

        Kept until the next intent or the pre-commit step (charms ask in every hook).
        """
        key = (len(self._intents), self._committing)
        if view.my_doc is not None and view.my_doc[0] == key:
            return view.my_doc[1]
        doc = self._apply_intents(view)
        view.my_doc = (key, doc)
        return doc

    def _apply_intents(self, view: _View) -> UnitDoc:
        doc = view.doc
        for lock, (mode, priority) in self._stored_pending().items():
            if lock in self.specs:
                doc = protocol.request(doc, lock, Mode(mode), self._now(), priority)
        for lock, want, priority in self._intents:
            doc = (
                protocol.release(doc, lock)
                if want is None
                else protocol.request(doc, lock, want, self._now(), priority)
            )
        if self.zone != doc.zone and self.zone is not None:
            doc = doc._replace(zone=self.zone)
        return doc

    def _stored_pending(self) -> dict[str, tuple[str, int]]:
        """Requests kept from before the peer relation existed: lock -> (mode, priority)."""
        out: dict[str, tuple[str, int]] = {}
        stored: Mapping[str, Any] = self._stored.pending
        for lock, value in stored.items():
            if isinstance(value, str):  # written by 0.1, before priorities
                out[lock] = (value, 0)
            else:
                out[lock] = (str(value[0]), int(value[1]))
        return out

    def _pending_without_relation(self) -> dict[str, list[str | int]]:
        """Requests kept until the peer relation exists (lock -> [mode, priority])."""
        pending: dict[str, list[str | int]] = {
            lock: [mode, prio] for lock, (mode, prio) in self._stored_pending().items()
        }
        for lock, mode, priority in self._intents:
            if mode is None:
                pending.pop(lock, None)
            else:
                pending[lock] = [mode.value, priority]
        return pending

    def _operate(
        self,
        what: str,
        lock: str,
        change: Callable[[AppDoc], AppDoc],
        check: Callable[[AppDoc], None] | None = None,
    ) -> None:
        """Check that an operator's change can be made here, and queue it for the write.

        ``check`` may refuse it, given the committed queue (raise ``LocalUsageError``).
        """
        self._spec(lock)
        view = self._load()
        if view is None:
            raise LocalUsageError(
                f"{what}: there is no {self.relation_name or 'peer'} relation yet"
                if not self.setup_problem
                else f"{what}: {self.setup_problem}"
            )
        if not view.leader:
            raise NotLeaderError(what, self.unit_name)
        if view.app_problem:
            raise LocalUsageError(
                f"{what}: the queue data in the application databag is malformed "
                f"({view.app_problem}); nothing was changed"
            )
        if check is not None:
            check(view.app)
        self._operator.append(change)

    def _track_leadership(self, _: ops.EventBase) -> None:
        """Emit leadership_gained/lost once per dispatch when leadership differs."""
        if self._leadership_checked:
            return
        self._leadership_checked = True
        now = self.model.unit.is_leader()
        if now != bool(self._stored.leader):
            self._stored.leader = now
            (self.on.leadership_gained if now else self.on.leadership_lost).emit()

    def _now(self) -> str:
        if self._stamp is None:  # once per dispatch: it is informational only
            stamp = datetime.datetime.fromtimestamp(self._clock(), datetime.timezone.utc)
            self._stamp = stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
        return self._stamp

    def _goal_state_units(self) -> set[str] | None:
        """Unit names in goal-state, or None if Juju cannot tell us."""
        try:
            from ops import hookcmds

            return set(hookcmds.goal_state().units)
        except Exception as e:  # a missing tool, an old Juju: no evidence, not an error
            logger.debug("goal-state unavailable: %s", e)
            return None

    def _load(self) -> _View | None:
        if self._view is not None or self.setup_problem:
            return self._view
        assert self.relation_name is not None
        relation = self.model.get_relation(self.relation_name)
        if relation is None:
            return None
        leader = self.model.unit.is_leader()
        backend = getattr(self.model, "_backend", None)
        checked = getattr(backend, "_leader_check_time", None)
        leader_checked_at = checked if isinstance(checked, float) else time.monotonic()
        members = {u.name: u for u in relation.units}
        key = self.key

        def read_raw(unit: str) -> str | None:
            return relation.data[members[unit]].get(key)

        evidence = BagEvidence(
            self.unit_name, members, read_raw, self._goal_state_units, _report_malformed
        )
        view = _View(relation, evidence, leader)
        view.leader_checked_at = leader_checked_at
        stored_released: Mapping[str, Mapping[str, int]] = self._stored.released
        evidence.restore(stored_released, self._stored.departed)
        view.app_raw = relation.data[self.model.app].get(self.key, "")
        try:
            view.app = parse_app_doc(view.app_raw, self.model.app.name)
        except MalformedDataError as e:
            logger.error("%s; the queue is left as it is and nothing is granted", e)
            view.app_problem = e.reason
        view.doc_raw = relation.data[self.model.unit].get(self.key, "")
        try:
            view.doc = parse_unit_doc(view.doc_raw, self.unit_name)
        except MalformedDataError as e:
            logger.error("%s; this unit will not overwrite it", e)
            view.doc_problem = e.reason
        evidence.learn(self.unit_name, view.doc)
        self._view = view
        return view

    def _on_event(self, event: ops.EventBase) -> None:
        view = self._load()
        if view is None:
            return
        ev = view.evidence
        if isinstance(event, ops.RelationDepartedEvent):
            gone = event.departing_unit
            if gone is not None and gone.name == self.unit_name:
                self._leaving()
            elif gone is not None:
                ev.departed.add(gone.name)
                self.on.member_left.emit(gone.name)
            view.full_scan = True
        elif isinstance(event, ops.RelationEvent):
            if event.unit is not None:
                ev.read(event.unit.name)
                view.seen.add(event.unit.name)
                if isinstance(event, ops.RelationJoinedEvent):
                    self.on.member_joined.emit(event.unit.name)
            elif isinstance(event, ops.RelationChangedEvent) and view.leader:
                view.own_app_event = True
                if view.app.seq and view.app.seq == self._stored.written:
                    # Juju told the leader about its own app write: no wake-ups needed.
                    self._stored.self_app_events = True
        else:
            view.full_scan = True
        if view.app_problem:
            return
        for lock in self.specs:
            s = self.standing(lock)
            if s.state is State.REVOKED:
                rid = self._my_doc(view).record(lock).id
                logger.warning(
                    "the leader revoked this unit's %s request %d (timeout or forced release)",
                    lock,
                    rid,
                )
                self._intents.append((lock, None, 0))
                self.on.lock_revoked.emit(lock, rid, self.key)
            elif (
                s.state is State.HOLDING
                and s.entry is not None
                and self._delivered.get(lock) != s.entry.id
                and self._stored.handed.get(lock) != s.entry.id
            ):
                self._delivered[lock] = s.entry.id
                self.on.lock_granted.emit(lock, s.entry.id, self.key)

    def _leaving(self) -> None:
        """Rule 4: a departing unit gives up everything before it is gone."""
        for lock in self.specs:
            self._intents.append((lock, None, 0))
        self._stored.pending = {}

    def _on_pre_commit(self, _: ops.EventBase) -> None:
        self._committing = True
        view = self._load()
        if view is None:
            self._stored.pending = self._pending_without_relation()
            return
        for lock, rid in self._delivered.items():
            if self._kept.get(lock) != rid:
                rec = self._my_doc(view).record(lock)
                if rec.pending and rec.id == rid:
                    self._intents.append((lock, None, 0))
        doc = self._my_doc(view)
        doc = protocol.acknowledge(doc, view.app, self.unit_name)
        self._stored.pending = {}
        self._stored.handed = {
            lock: rid
            for lock, rid in {**dict(self._stored.handed), **self._kept}.items()
            if doc.record(lock).pending and doc.record(lock).id == rid
        }
        view.evidence.learn(self.unit_name, doc)
        app = view.app
        if view.leader and not view.app_problem:
            app = self._lead(view, doc)
        if not view.doc_problem:
            raw = dump_unit_doc(doc)
            if raw != view.doc_raw:
                view.relation.data[self.model.unit][self.key] = raw
        self._remember(view, app)

    def _lead(self, view: _View, doc: UnitDoc) -> AppDoc:
        age = time.monotonic() - view.leader_checked_at
        if age > LEASE_SAFE_SECONDS:
            logger.warning(
                "leadership last confirmed %.0fs ago; not writing the queue this hook", age
            )
            if self._operator:
                logger.error("an operator's pause/resume/force-release was NOT applied; retry")
            return view.app
        fresh = [
            lock
            for lock in self.specs
            if doc.record(lock).pending and doc.record(lock).id != view.doc.record(lock).id
        ]
        windowed = [lock for lock, spec in self.specs.items() if spec.order != "fifo"]
        members = set(view.evidence.members())
        for unit in self._stored.unqueued if windowed else ():
            if unit in members:  # requests left unqueued last time: a place may be open
                view.evidence.read(str(unit))
        app = _evidence.lead(
            view.app,
            None if view.doc_problem else doc,
            view.evidence,
            self.specs,
            full_scan=view.full_scan,
            wake_needed=not self._stored.self_app_events,
            fresh=fresh,
            hold_own=self._hold_own(view, doc, windowed, members),
        )
        if any(spec.timeout is not None for spec in self.specs.values()):
            app = self._revoke_overdue(view, app)
        for change in self._operator:
            app = change(app)
        if windowed or self._stored.unqueued:
            self._stored.unqueued = sorted(
                {
                    unit
                    for unit, d in view.evidence.docs.items()
                    for lock in windowed
                    if unit != self.unit_name
                    and protocol.unqueued(app, lock, unit, d.record(lock))
                }
            )
        raw = dump_app_doc(app)
        if raw != view.app_raw:
            view.relation.data[self.model.app][self.key] = raw
            self._stored.written = app.seq
        return app

    def _hold_own(
        self, view: _View, doc: UnitDoc, windowed: list[str], members: set[str]
    ) -> set[str]:
        """Locks for which the leader must not queue its own request in this hook.

        Under ``leader-last`` the leader goes last among the requests it has seen, and
        it sees a peer's request only in that peer's relation-changed (bags are cached
        until then). So it waits until it has run one for every peer since its own
        request, or a full scan (update-status) has come.
        """
        hold = set(windowed) if view.own_app_event else set()
        if not windowed:
            return hold
        stored: Mapping[str, Any] = self._stored.seen
        seen: dict[str, list[Any]] = {}
        for lock in windowed:
            rec = doc.record(lock)
            if self.specs[lock].order != "leader-last" or not rec.pending:
                continue
            rid, units = stored.get(lock, [rec.id, []])
            known = (set(units) if rid == rec.id else set()) | view.seen
            if not (view.full_scan or members <= known):
                hold.add(lock)
            seen[lock] = [rec.id, sorted(known & members)]
        self._stored.seen = seen
        return hold

    def _revoke_overdue(self, view: _View, app: AppDoc) -> AppDoc:
        """Grant timeouts, timed by this leader's clock alone (a new leader starts anew)."""
        stored: Mapping[str, Any] = self._stored.since
        since = {
            lock: {(str(u), int(i)): float(t) for u, i, t in rows} for lock, rows in stored.items()
        }
        app, timers = protocol.revoke_overdue(app, self.specs, view.evidence, since, self._clock())
        self._stored.since = {
            lock: [[u, i, t] for (u, i), t in sorted(rows.items())]
            for lock, rows in timers.items()
        }
        return app

    def _remember(self, view: _View, app: AppDoc) -> None:
        """Keep deaths learnt, for units still queued only (bounded memory)."""
        released, departed = view.evidence.remembered(app, view.app)
        self._stored.released = released
        self._stored.departed = departed


def _report_malformed(e: MalformedDataError) -> None:
    logger.warning("%s; its requests are treated as live and none is queued", e)


def _peer_relation_name(meta: ops.CharmMeta, wanted: str | None) -> tuple[str | None, str]:
    """The peer relation to use, or a problem that says exactly what is wrong."""
    peers = sorted(meta.peers)
    if wanted is not None:
        if wanted in meta.peers:
            return wanted, ""
        return None, (
            f"no peer relation {wanted!r} in metadata.yaml (peers: {', '.join(peers) or 'none'})"
        )
    if not peers:
        return None, "metadata.yaml declares no peer relation; add one under 'peers:'"
    return peers[0], ""


def _dispatched_event() -> str | None:
    """The Juju event this dispatch is for, as ops names it (``db_relation_changed``).

    ``""`` for an action or a workload event; None when Juju did not say.
    """
    path = os.environ.get("JUJU_DISPATCH_PATH")
    if path is None:
        return None
    return path[len("hooks/") :].replace("-", "_") if path.startswith("hooks/") else ""


def _zone_from_env() -> str | None:
    """This unit's availability zone, as Juju tells charms; None if unknown or unusable."""
    zone = os.environ.get("JUJU_AVAILABILITY_ZONE") or None
    if zone is None:
        logger.info("no JUJU_AVAILABILITY_ZONE: zone-aware locks count this unit as zoneless")
        return None
    try:
        return check_zone(zone)
    except ValueError as e:
        logger.warning("%s; zone-aware locks count this unit as zoneless", e)
        return None


def _unit_key(unit: str) -> tuple[str, int]:
    app, _, number = unit.rpartition("/")
    return (app, int(number)) if number.isdigit() else (unit, -1)


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
