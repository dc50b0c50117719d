"""The two coordinator documents, as immutable values, with strict bounded parsing.

A unit's peer databag holds a :class:`UnitDoc` under one key (default ``coordinator``):
for each lock, its latest request id and the highest id it has released. The peer
application databag holds an :class:`AppDoc`, written by the leader only: for each lock
a queue of :class:`Entry` ordered by a sequence number the leader hands out.

Any databag may hold garbage (a buggy revision, another library). Parsing never trusts
input: sizes, types, names and numbers are bounded, and every failure is a
:class:`~charm_coordinator.errors.MalformedDataError` naming the bag's owner.
Encoding is canonical (sorted keys, no spaces), so an unchanged document re-encodes to
the same string and costs no write, hence no event on other units.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

from .errors import MalformedDataError

__all__ = [
    "FORMAT_VERSION",
    "MAX_APP_DOC_BYTES",
    "MAX_PRIORITY",
    "MAX_UNIT_DOC_BYTES",
    "AppDoc",
    "Entry",
    "LockRecord",
    "Mode",
    "UnitDoc",
    "Wake",
    "check_lock_name",
    "check_zone",
    "dump_app_doc",
    "dump_unit_doc",
    "parse_app_doc",
    "parse_unit_doc",
]

FORMAT_VERSION = 1
MAX_UNIT_DOC_BYTES = 16 * 1024
"""A unit doc holds a few small records per lock; anything larger is not ours."""
MAX_APP_DOC_BYTES = 1024 * 1024
"""About 30 bytes per queued request: room for tens of thousands."""
MAX_LOCKS = 64
MAX_REVOKED = 10_000
MAX_ID = 2**53 - 1
"""Ids and sequence numbers stay exact in any JSON reader."""

_LOCK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,62}")
_UNIT_NAME = re.compile(r"[a-z][a-z0-9-]{0,62}/[0-9]{1,9}")
_TIMESTAMP = re.compile(r"[0-9T:.+Z-]{1,40}")
_ZONE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/-]{0,62}")
MAX_PRIORITY = 1_000_000


_NO_LOCKS: Mapping[str, Any] = MappingProxyType({})
_NO_QUEUES: Mapping[str, Any] = MappingProxyType({})
_NO_REVOKED: Mapping[str, Mapping[str, int]] = MappingProxyType({})


class Mode(enum.Enum):
    """How a request shares a lock.

    Exclusive requests hold up to the lock's ``limit`` at once (1: a mutex). Shared
    requests never hold alongside an exclusive one, and up to ``shared_limit`` at once.
    """

    EXCLUSIVE = "x"
    SHARED = "s"


class LockRecord(NamedTuple):
    """One lock in a unit's doc. A request is pending while ``id > released``."""

    id: int = 0
    released: int = 0
    mode: Mode = Mode.EXCLUSIVE
    at: str | None = None
    """When the request was made (ISO 8601, UTC), informational only: never orders."""
    priority: int = 0
    """Higher is served sooner under the ``priority`` order (0 to 1,000,000)."""

    @property
    def pending(self) -> bool:
        """Requested and neither released nor cancelled."""
        return self.id > self.released

    @property
    def next_id(self) -> int:
        """The id a new request takes; derived from the doc, never from local state."""
        return max(self.id, self.released) + 1


_EMPTY_RECORD = LockRecord()


class UnitDoc(NamedTuple):
    """What one unit publishes: its lock records, and the wake token it acknowledges.

    Treat ``locks`` as read-only; every change makes a new doc.
    """

    locks: Mapping[str, LockRecord] = _NO_LOCKS
    ack: int = 0
    zone: str | None = None
    """This unit's availability zone, copied by the leader into its queue entries."""

    def record(self, lock: str) -> LockRecord:
        """The record for ``lock``, empty if this unit never used it."""
        return self.locks.get(lock, _EMPTY_RECORD)

    def with_record(self, lock: str, record: LockRecord) -> UnitDoc:
        """A copy with ``lock``'s record replaced."""
        locks = dict(self.locks)
        locks[lock] = record
        return self._replace(locks=locks)


class Entry(NamedTuple):
    """A queued request: the leader's sequence number, who asked, which id, how."""

    seq: int
    unit: str
    id: int
    mode: Mode = Mode.EXCLUSIVE
    zone: str | None = None
    """The unit's availability zone when it was queued (zone-aware locks)."""


class Wake(NamedTuple):
    """The leader asks ``unit`` to acknowledge ``token`` so that the leader runs a hook."""

    unit: str
    token: int


class AppDoc(NamedTuple):
    """The leader's queues, one per lock, and the sequence counter they share.

    Treat ``queues`` as read-only; every change makes a new doc.
    """

    seq: int = 0
    queues: Mapping[str, tuple[Entry, ...]] = _NO_QUEUES
    wake: Wake | None = None
    revoked: Mapping[str, Mapping[str, int]] = _NO_REVOKED
    """Per lock, per unit, the highest request id the leader revoked (grant timeouts)."""
    paused: frozenset[str] = frozenset()
    """Locks whose queues an operator paused: no request starts holding until resumed."""

    def revoked_id(self, lock: str, unit: str) -> int:
        """The highest id of ``unit``'s requests for ``lock`` revoked by a leader."""
        per_unit = self.revoked.get(lock)
        return per_unit.get(unit, 0) if per_unit is not None else 0

    def queue(self, lock: str) -> tuple[Entry, ...]:
        """The queue for ``lock``, oldest first."""
        return self.queues.get(lock, ())


def check_lock_name(name: str) -> str:
    """Return ``name`` if it is a valid lock name, else raise ``ValueError``."""
    if not isinstance(name, str) or not _LOCK_NAME.fullmatch(name):
        raise ValueError(
            f"invalid lock name {name!r}: use 1-63 letters, digits, '_', '.', ':' or '-'"
        )
    return name


def check_zone(name: str) -> str:
    """Return ``name`` if it is a valid availability-zone name, else raise ``ValueError``."""
    if not isinstance(name, str) or not _ZONE.fullmatch(name):
        raise ValueError(
            f"invalid zone name {str(name)[:80]!r}: use 1-63 letters, digits, '_', '.', ':', "
            "'/' or '-'"
        )
    return name


# -- encoding ---------------------------------------------------------------------------


def dump_unit_doc(doc: UnitDoc) -> str:
    """Canonical JSON for a unit doc; the empty doc encodes to ``""`` (key deleted)."""
    if not doc.locks and not doc.ack and doc.zone is None:
        return ""
    locks: dict[str, dict[str, Any]] = {}
    for name, rec in doc.locks.items():
        item: dict[str, Any] = {"id": rec.id, "released": rec.released}
        if rec.mode is not Mode.EXCLUSIVE:
            item["mode"] = rec.mode.value
        if rec.at is not None and rec.pending:
            item["at"] = rec.at
        if rec.priority and rec.pending:
            item["priority"] = rec.priority
        locks[name] = item
    out: dict[str, Any] = {"v": FORMAT_VERSION, "locks": locks}
    if doc.ack:
        out["ack"] = doc.ack
    if doc.zone is not None:
        out["zone"] = doc.zone
    return json.dumps(out, sort_keys=True, separators=(",", ":"))


def dump_app_doc(doc: AppDoc) -> str:
    """Canonical JSON for the app doc; the empty doc encodes to ``""``."""
    queues = {name: q for name, q in doc.queues.items() if q}
    revoked = {lock: dict(units) for lock, units in doc.revoked.items() if units}
    if not queues and not doc.seq and doc.wake is None and not revoked and not doc.paused:
        return ""
    out: dict[str, Any] = {
        "v": FORMAT_VERSION,
        "seq": doc.seq,
        "queues": {name: [_dump_entry(e) for e in q] for name, q in queues.items()},
    }
    if doc.paused:
        out["paused"] = sorted(doc.paused)
    if doc.wake is not None:
        out["wake"] = [doc.wake.unit, doc.wake.token]
    if revoked:
        out["revoked"] = revoked
    return json.dumps(out, sort_keys=True, separators=(",", ":"))


def _dump_entry(e: Entry) -> list[Any]:
    if e.zone is None:
        return [e.seq, e.unit, e.id, e.mode.value]
    return [e.seq, e.unit, e.id, e.mode.value, e.zone]


# -- parsing ----------------------------------------------------------------------------


class _Bad(Exception):
    """Internal: a reason, turned into MalformedDataError with the owner attached."""


def parse_unit_doc(raw: str | None, owner: str) -> UnitDoc:
    """Parse a unit doc written by ``owner``; empty or missing means no records.

    Raises:
        MalformedDataError: the content is not a valid doc of a version we read.
    """
    try:
        data = _load(raw, MAX_UNIT_DOC_BYTES)
        if data is None:
            return UnitDoc()
        _check_keys(data, required={"v", "locks"}, optional={"ack", "zone"})
        locks_raw = _as_dict(data["locks"], "locks")
        if len(locks_raw) > MAX_LOCKS:
            raise _Bad(f"more than {MAX_LOCKS} locks")
        locks: dict[str, LockRecord] = {}
        for name, item in locks_raw.items():
            _lock_name(name)
            rec = _as_dict(item, f"locks.{name}")
            _check_keys(rec, required={"id", "released"}, optional={"mode", "at", "priority"})
            at = rec.get("at")
            if at is not None and (not isinstance(at, str) or not _TIMESTAMP.fullmatch(at)):
                raise _Bad(f"locks.{name}.at is not a timestamp")
            locks[name] = LockRecord(
                id=_count(rec["id"], f"locks.{name}.id"),
                released=_count(rec["released"], f"locks.{name}.released"),
                mode=_mode(rec.get("mode", "x"), f"locks.{name}.mode"),
                at=at,
                priority=_priority(rec.get("priority", 0), f"locks.{name}.priority"),
            )
        ack = _count(data.get("ack", 0), "ack")
        zone = _zone(data["zone"], "zone") if "zone" in data else None
        return UnitDoc(locks=locks, ack=ack, zone=zone)
    except _Bad as e:
        raise MalformedDataError(owner, str(e)) from None


def parse_app_doc(raw: str | None, owner: str) -> AppDoc:
    """Parse the leader's app doc; empty or missing means no queues.

    Raises:
        MalformedDataError: the content is not a valid doc of a version we read.
    """
    try:
        data = _load(raw, MAX_APP_DOC_BYTES)
        if data is None:
            return AppDoc()
        _check_keys(data, required={"v", "seq", "queues"}, optional={"wake", "revoked", "paused"})
        seq = _count(data["seq"], "seq")
        queues_raw = _as_dict(data["queues"], "queues")
        if len(queues_raw) > MAX_LOCKS:
            raise _Bad(f"more than {MAX_LOCKS} queues")
        queues: dict[str, tuple[Entry, ...]] = {}
        for name, items in queues_raw.items():
            _lock_name(name)
            if not isinstance(items, list):
                raise _Bad(f"queues.{name} is not a list")
            entries: list[Entry] = []
            seen: set[tuple[str, int]] = set()
            for i, item in enumerate(items):
                entry = _entry(item, f"queues.{name}[{i}]")
                if entry.seq > seq:
                    raise _Bad(f"queues.{name}[{i}] has seq {entry.seq} above counter {seq}")
                if entries and entry.seq <= entries[-1].seq:
                    raise _Bad(f"queues.{name} is not in increasing seq order")
                if (entry.unit, entry.id) in seen:
                    raise _Bad(f"queues.{name} holds {entry.unit} id {entry.id} twice")
                seen.add((entry.unit, entry.id))
                entries.append(entry)
            queues[name] = tuple(entries)
        wake = None
        if "wake" in data:
            w = data["wake"]
            if not (isinstance(w, list) and len(w) == 2):  # pyright: ignore[reportUnknownArgumentType]
                raise _Bad("wake is not [unit, token]")
            wake = Wake(unit=_unit_name(w[0], "wake[0]"), token=_count(w[1], "wake[1]"))
        revoked: dict[str, dict[str, int]] = {}
        for name, units in _as_dict(data.get("revoked", {}), "revoked").items():
            _lock_name(name)
            per_unit = _as_dict(units, f"revoked.{name}")
            if len(per_unit) > MAX_REVOKED:
                raise _Bad(f"revoked.{name} names more than {MAX_REVOKED} units")
            revoked[name] = {
                _unit_name(u, f"revoked.{name}"): _count(i, f"revoked.{name}.{u}")
                for u, i in per_unit.items()
            }
        paused_raw = data.get("paused", [])
        if not isinstance(paused_raw, list) or len(paused_raw) > MAX_LOCKS:  # pyright: ignore[reportUnknownArgumentType]
            raise _Bad(f"paused is not a list of at most {MAX_LOCKS} lock names")
        paused = frozenset(_lock_name(n) for n in paused_raw)  # pyright: ignore[reportUnknownVariableType]
        return AppDoc(seq=seq, queues=queues, wake=wake, revoked=revoked, paused=paused)
    except _Bad as e:
        raise MalformedDataError(owner, str(e)) from None


def _load(raw: str | None, limit: int) -> dict[str, Any] | None:
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        raise _Bad(f"not a string but {type(raw).__name__}")
    if len(raw) > limit:
        raise _Bad(f"{len(raw)} bytes, more than the {limit} this library accepts")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as e:
        raise _Bad(f"not JSON ({str(e)[:80]})") from None
    if not isinstance(data, dict):
        raise _Bad(f"top level is {type(data).__name__}, not an object")
    version = data.get("v")
    if version != FORMAT_VERSION:
        raise _Bad(f"format version {version!r}, this library reads {FORMAT_VERSION}")
    return data  # pyright: ignore[reportUnknownVariableType]


def _check_keys(data: dict[str, Any], *, required: set[str], optional: set[str]) -> None:
    missing = required - data.keys()
    if missing:
        raise _Bad(f"missing {', '.join(sorted(missing))}")
    extra = data.keys() - required - optional
    if extra:
        raise _Bad(f"unexpected {', '.join(sorted(str(k)[:40] for k in extra))}")


def _as_dict(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Bad(f"{where} is not an object")
    return value  # pyright: ignore[reportUnknownVariableType]


def _count(value: object, where: str) -> int:
    if type(value) is not int or not 0 <= value <= MAX_ID:
        raise _Bad(f"{where} is not a whole number in range")
    return value


def _mode(value: object, where: str) -> Mode:
    try:
        return Mode(value)
    except ValueError:
        raise _Bad(f"{where} is not 'x' or 's'") from None


def _lock_name(name: object) -> str:
    if not isinstance(name, str) or not _LOCK_NAME.fullmatch(name):
        raise _Bad(f"invalid lock name {str(name)[:40]!r}")
    return name


def _name(pattern: re.Pattern[str], what: str) -> Callable[[object, str], str]:
    def check(name: object, where: str) -> str:
        if not isinstance(name, str) or not pattern.fullmatch(name):
            raise _Bad(f"{where} is not a {what}")
        return name

    return check


_unit_name = _name(_UNIT_NAME, "unit name")
_zone = _name(_ZONE, "zone name")


def _priority(value: object, where: str) -> int:
    if type(value) is not int or not 0 <= value <= MAX_PRIORITY:
        raise _Bad(f"{where} is not a whole number from 0 to {MAX_PRIORITY}")
    return value


def _entry(item: object, where: str) -> Entry:
    if not isinstance(item, list) or len(item) not in (4, 5):  # pyright: ignore[reportUnknownArgumentType]
        raise _Bad(f"{where} is not [seq, unit, id, mode] or [seq, unit, id, mode, zone]")
    seq, unit, id_, mode = item[:4]  # pyright: ignore[reportUnknownVariableType]
    return Entry(
        seq=_count(seq, f"{where}.seq"),
        unit=_unit_name(unit, f"{where}.unit"),
        id=_count(id_, f"{where}.id"),
        mode=_mode(mode, f"{where}.mode"),
        zone=_zone(item[4], f"{where}.zone") if len(item) == 5 else None,  # pyright: ignore[reportUnknownArgumentType]
    )
