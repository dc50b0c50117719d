"""What both adapters (ops and classic) share: evidence over databags, the leader's step.

The protocol core is pure; an adapter reads databags through Juju and must answer
"is this entry dead?" from them. :class:`BagEvidence` does that the same way for every
adapter: it reads a unit's doc only when an answer needs it (each read is a hook tool
call), remembers every death it learns (a death is forever), never treats absence as
death, and reports malformed docs once, naming the unit. :func:`lead` is the leader's
step at the end of a hook, given what the hook has read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from . import protocol
from .documents import AppDoc, Entry, UnitDoc, parse_unit_doc
from .errors import MalformedDataError
from .protocol import LockSpec

__all__ = ["LEASE_SAFE_SECONDS", "BagEvidence", "lead"]

LEASE_SAFE_SECONDS = 20.0
"""Juju guarantees leadership for 30 s after is-leader; write app data well inside that."""


class BagEvidence:
    """Protocol evidence over peer databags: lazy reads, and memory of deaths.

    Args:
        me: this unit's name (its own doc is learnt, never read through ``read_raw``).
        members: the peers this hook can read (``relation-list``).
        read_raw: reads a peer's raw doc; may return None (no doc).
        goal_units: unit names in goal-state, or None when Juju cannot tell.
        report: told once per malformed doc.
    """

    def __init__(
        self,
        me: str,
        members: Iterable[str],
        read_raw: Callable[[str], str | None],
        goal_units: Callable[[], set[str] | None],
        report: Callable[[MalformedDataError], None],
    ) -> None:
        self.me = me
        self._members = frozenset(members)
        self._read_raw = read_raw
        self._goal_units = goal_units
        self._report = report
        self.docs: dict[str, UnitDoc] = {}
        self.problems: dict[str, str] = {}
        self.released: dict[tuple[str, str], int] = {}
        self.departed: set[str] = set()
        self.reads = 0
        self._goal: set[str] | None = None
        self._goal_read = False

    def restore(self, released: Mapping[str, Mapping[str, int]], departed: Iterable[str]) -> None:
        """Take back deaths remembered from earlier hooks."""
        for unit, locks in released.items():
            for lock, rid in locks.items():
                key = (unit, lock)
                self.released[key] = max(self.released.get(key, 0), int(rid))
        self.departed.update(departed)

    def remembered(self, *apps: AppDoc) -> tuple[dict[str, dict[str, int]], list[str]]:
        """Deaths worth keeping: those of units still queued in ``apps`` (bounded memory)."""
        queued = {e.unit for app in apps for q in app.queues.values() for e in q}
        released: dict[str, dict[str, int]] = {}
        for (unit, lock), rid in self.released.items():
            if unit in queued and unit != self.me:
                released.setdefault(unit, {})[lock] = rid
        return released, sorted(u for u in self.departed if u in queued)

    def learn(self, unit: str, doc: UnitDoc) -> None:
        """Record ``unit``'s doc and the releases it shows."""
        self.docs[unit] = doc
        for lock, rec in doc.locks.items():
            if rec.released > self.released.get((unit, lock), 0):
                self.released[(unit, lock)] = rec.released

    def read(self, unit: str) -> UnitDoc | None:
        """The unit's doc as this hook sees it; None if unreadable or malformed."""
        if unit in self.docs:
            return self.docs[unit]
        if unit in self.problems or unit not in self._members:
            return None
        self.reads += 1
        try:
            doc = parse_unit_doc(self._read_raw(unit), unit)
        except MalformedDataError as e:
            self.problems[unit] = e.reason
            self._report(e)
            return None
        self.learn(unit, doc)
        return doc

    def members(self) -> list[str]:
        """The peers this hook can read, sorted."""
        return sorted(self._members)

    def goal_units(self) -> set[str] | None:
        """Goal-state's units, asked at most once per hook."""
        if not self._goal_read:
            self._goal_read = True
            self._goal = self._goal_units()
        return self._goal

    def is_dead(self, lock: str, entry: Entry, *, cheap: bool = False) -> bool:
        """See :class:`~charm_coordinator.protocol.Evidence`."""
        if entry.unit in self.departed:
            return True
        if self.released.get((entry.unit, lock), 0) >= entry.id:
            return True
        if cheap or entry.unit == self.me:
            return False
        if entry.unit in self._members:
            self.read(entry.unit)
            return self.released.get((entry.unit, lock), 0) >= entry.id
        goal = self.goal_units()
        if goal is not None and entry.unit not in goal:
            # Rule 7: a unit absent from goal-state is gone, whoever saw it leave.
            self.departed.add(entry.unit)
            return True
        return False


def lead(
    app: AppDoc,
    doc: UnitDoc | None,
    evidence: BagEvidence,
    specs: Mapping[str, LockSpec],
    *,
    full_scan: bool,
    wake_needed: bool,
    fresh: Iterable[str] = (),
    hold_own: Iterable[str] = (),
) -> AppDoc:
    """The leader's step at the end of a hook: queue, prune, ask for a wake.

    ``doc`` is the leader's own doc as it will be committed, or None when its own bag
    is malformed: then its requests are never published, so they must not be queued.
    With ``full_scan`` (after a departure, a new leader, update-status) every peer's doc
    is read and dead entries are pruned for sure; otherwise only the docs this hook has
    read are considered.
    Returns ``app`` itself when nothing needs writing.
    """
    if full_scan:
        for unit in evidence.members():
            evidence.read(unit)
    candidates = {u: d for u, d in evidence.docs.items() if u not in evidence.problems}
    candidates.pop(evidence.me, None)
    if doc is not None:
        candidates[evidence.me] = doc
    new = protocol.sequence(
        app,
        evidence.me,
        candidates,
        evidence,
        specs,
        peers=evidence.members(),
        wake_needed=wake_needed,
        fresh=fresh,
        hold_own=hold_own,
    )
    if full_scan:
        pruned = protocol.prune(new, evidence, cheap=False)
        if pruned != new:
            new = pruned
    return _revoke_unreadable(new, evidence)


def _revoke_unreadable(app: AppDoc, evidence: BagEvidence) -> AppDoc:
    """Take out the queued entries of units whose bag this hook found malformed.

    Such a unit cannot be shown released, so its entries would block everyone behind
    them forever. It cannot be holding through this library either: its own doc no
    longer parses, so it sees no pending request and does not act. The revocation is
    recorded, so when its bag is repaired it withdraws that request and asks anew.
    """
    for lock, queue in app.queues.items():
        bad = [e for e in queue if e.unit in evidence.problems and e.unit != evidence.me]
        if bad:
            app = protocol.revoke(app, lock, bad)
    return app
