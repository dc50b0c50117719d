"""charmhelpers.coordinator's wire format, spoken during an upgrade from it (pure, no I/O).

While units of an application still run ``charmhelpers.coordinator`` (the old revision),
the classic adapter must not write anything those units misread, and must keep the
exclusion their rules give. charmhelpers keeps each unit's requests in its peer bag
under the key as ``{lock: timestamp}`` and the leader's grants in leader settings under
the same key as ``{unit: {lock: timestamp}}``; a unit holds a lock while its grant equals
its request. A v1 document under that key would be read by an old leader as requests for
locks named ``v`` and ``locks``, and crash its hooks later (``strptime`` of a dict).

So in the *bridge* period the adapter reads and writes exactly these shapes, and grants
exactly as ``Serial`` does (:func:`lead`). Two extra keys, which old code never reads,
carry what the switch to the new protocol needs: ``<key>-version`` in a unit's bag says
it runs the new code; ``<key>-ack`` answers a leader's wake-up named in the leader
setting ``<key>-wake``. See docs/classic.md, "Upgrading from charmhelpers.coordinator".
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable, Iterable, Mapping

from .documents import check_lock_name

__all__ = [
    "TIMESTAMP_FORMAT",
    "VERSION",
    "Grants",
    "Policy",
    "Requests",
    "dump_grants",
    "dump_requests",
    "lead",
    "live_grants",
    "parse_grants",
    "parse_requests",
    "parse_wake",
    "timestamp",
]

TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%fZ"
"""charmhelpers' request time format; its leader parses grants back with it."""
VERSION = "1"
"""What a unit running this library writes under ``<key>-version`` in the bridge period."""
_MAX_BYTES = 1024 * 1024

Requests = dict[str, str]
"""One unit's requests: lock -> timestamp."""
Grants = dict[str, dict[str, str]]
"""The leader's grants: unit -> lock -> the granted request's timestamp."""
Policy = Callable[[str, str, set[str], list[str]], bool]
"""``grant_<lock>(lock, unit, granted, queue)``, as charmhelpers calls it."""


def timestamp(now: datetime.datetime) -> str:
    """A request time in charmhelpers' format (naive UTC)."""
    return now.strftime(TIMESTAMP_FORMAT)


def parse_requests(raw: str | None) -> Requests | None:
    """A charmhelpers request doc (``{lock: ts}``), ``{}`` for none, None if not one."""
    if not raw:
        return {}
    if len(raw) > _MAX_BYTES:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, dict) or "v" in data:
        return None
    out: Requests = {}
    for lock, ts in data.items():
        if not isinstance(ts, str):
            return None
        try:
            out[check_lock_name(lock)] = ts
        except ValueError:
            return None
    return out


def dump_requests(requests: Mapping[str, str]) -> str:
    """Byte for byte what charmhelpers writes (``json.dumps(..., sort_keys=True)``)."""
    return json.dumps(dict(requests), sort_keys=True)


def parse_grants(raw: str | None) -> Grants | None:
    """The grants charmhelpers keeps in leader settings; ``{}`` for none, None if garbage."""
    if not raw:
        return {}
    if len(raw) > _MAX_BYTES:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    out: Grants = {}
    for unit, locks in data.items():
        if not isinstance(unit, str) or not isinstance(locks, dict):
            return None
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in locks.items()):
            return None
        out[unit] = dict(locks)
    return out


def dump_grants(grants: Grants) -> str:
    """Byte for byte what charmhelpers' leader writes."""
    return json.dumps(grants, sort_keys=True)


def parse_wake(raw: str | None) -> tuple[str, int] | None:
    """The leader setting ``<key>-wake``: ``"<unit> <token>"``."""
    unit, _, token = (raw or "").partition(" ")
    if not unit or not token.isdigit():
        return None
    return unit, int(token)


def live_grants(grants: Grants) -> int:
    """How many (unit, lock) grants are outstanding."""
    return sum(len(locks) for locks in grants.values())


def lead(
    grants: Grants,
    requests: Mapping[str, Requests],
    *,
    readable: Iterable[str],
    gone: Callable[[str], bool],
    policy: Callable[[str], Policy],
) -> Grants:
    """The leader's step: ``Serial``'s ``handle()``, more careful about what it clears.

    charmhelpers clears a grant whose unit's request differs from it in the leader's
    view, including when the leader cannot read that unit at all (a peer it has not yet
    seen join, trap 3 of DESIGN.md), and then may grant another unit while the first
    still holds. Here a grant is cleared only on evidence: the unit's bag is readable
    and shows another request (or none), or the unit is gone. Granting is then exactly
    ``BaseCoordinator.grant``: ``granted`` = units with a grant for the lock, ``queue``
    = the others' requests by (timestamp, unit). Units with no grant left are dropped
    (charmhelpers keeps ``"app/N": {}`` forever, weakness 11).

    ``requests`` holds only *committed* requests (the leader's own included): the leader
    never grants itself a request a new leader could not see.
    """
    can_read = set(readable)
    out: Grants = {}
    for unit, locks in grants.items():
        kept = {}
        for lock, ts in locks.items():
            if gone(unit):
                continue
            if unit in can_read and requests.get(unit, {}).get(lock) != ts:
                continue  # released (or re-requested: the old grant is void)
            kept[lock] = ts
        if kept:
            out[unit] = kept
    for unit in sorted(requests):
        for lock in sorted(requests[unit]):
            granted = {u for u, locks in out.items() if lock in locks}
            if unit in granted:
                continue
            waiting = sorted(
                (reqs[lock], u)
                for u, reqs in requests.items()
                if lock in reqs and u not in granted
            )
            queue = [u for _, u in waiting]
            if policy(lock)(lock, unit, granted, queue):
                out.setdefault(unit, {})[lock] = requests[unit][lock]
    return out
