"""Consistent partitioning of work items among units: pure, deterministic, no I/O.

Every unit that passes the same items, members, weights and ``keep`` gets the same
answer, in any process and on any Python version: positions come from ``hashlib``
(SHAKE-256 for the units' points, BLAKE2b for the items), never from ``hash()``.

Why a ring with virtual nodes, not rendezvous (HRW) hashing
-----------------------------------------------------------
Rendezvous hashing gives every unit exactly its ideal expected share, so a join or a
leave moves the ideal share on average with no spread but the items' own, but it
scores every (item, unit) pair: 10,000 items over 100 units is a million hashes, half
a second to a second of pure Python here, against a budget of 50 ms. A ring costs one
sort of the units' points and one bisect per item: 20 to 35 ms of CPU here for a fresh
membership of 100 units and 10,000 items. Its flaw is that a unit's share of the ring
is random around the ideal, with a relative spread of about ``1/sqrt(points)``: 5 % at
:data:`POINTS` = 400 points per unit of weight. So a join moves the ideal share on
average, and rarely more than 1.2 times it (over 100 random joins of 10,000 items:
standard deviation 0.06 of the ideal, largest 1.13); a leave moves exactly the
leaver's items, its share within the same spread. ``benchmarks/partition_cost.py``
measures all this; more points would be fairer, and slower to build.

How items move
--------------
A unit's points depend on its name and weight alone, so a join adds points and a
leave removes them, and nothing else on the ring changes: an item changes owners only
to the unit that joined, or only because its owner left. With replicas, an item's
owners are the first distinct units met walking clockwise from its position, so the
same holds for every replica. A unit's points are a prefix of one stream, so a weight
change adds or removes points of that unit only, and moves only items to or from it.

Encoding
--------
A point is a float holding an exact integer, ``2**52 + position * 2**16 + member``
(``member``: the index of its unit in sorted order), assembled for all points at once
from the hash bytes; the ring is then one sort of floats, CPython's fastest, and a
point's owner is in its low 16 bits. Equal positions order by unit name, which every
unit agrees on.
"""

from __future__ import annotations

import array
import functools
import hashlib
import sys
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence

__all__ = ["MAX_MEMBERS", "MAX_WEIGHT", "POINTS", "assign", "owned"]

POINTS = 400
"""Points on the ring per unit of weight: more is fairer, and slower to build."""

MAX_WEIGHT = 100
"""The largest weight accepted: the ring's size, and its cost, grow with the weights."""

MAX_MEMBERS = 1 << 16
"""Members are numbered in the low 16 bits of a point."""

_POINT_DOMAIN = b"charm-coordinator/hashring/point\0"
_ITEM_HASH = hashlib.blake2b(digest_size=4, person=b"cc-hashring/item")
_BASE = float(1 << 52)
_EXPONENT = (b"\x30", b"\x43")
"""Bytes 6 and 7 of a little-endian double in [2**52, 2**53): exponent 1075 and the top
four bits of the mantissa, which stay 0 (positions take bytes 2 to 5, members 0 and 1)."""


class _Ring:
    """Everything that depends on the membership: the points, sorted, and the names.

    ``owners[i]`` is the member of point ``values[i]``. ``low[b]`` and ``high[b]`` bound
    the points whose position starts with byte ``b``, so a lookup bisects about 1/256
    of the ring.
    """

    __slots__ = ("high", "low", "names", "owners", "size", "values")

    def __init__(self, names: tuple[str, ...], values: list[float]) -> None:
        self.names = names
        self.values = values
        self.size = len(values)
        # The owners are the values' two low bytes: sliced out, not decoded one by one.
        raw = _to_bytes(values)
        pairs = bytearray(2 * self.size)
        pairs[0::2] = raw[0::8]
        pairs[1::2] = raw[1::8]
        owners = array.array("H")
        owners.frombytes(pairs)
        if sys.byteorder == "big":  # pragma: no cover
            owners.byteswap()
        self.owners = owners.tolist()
        bounds = [bisect_left(values, _BASE + b * 2.0**40) for b in range(256)]
        self.low = bounds
        self.high = [*bounds[1:], self.size]


def _to_bytes(values: list[float]) -> bytes:
    """``values`` as little-endian doubles, on any host."""
    out = array.array("d", values)
    if sys.byteorder == "big":  # pragma: no cover
        out.byteswap()
    return out.tobytes()


def _doubles(raw: bytes | bytearray) -> list[float]:
    """The little-endian doubles in ``raw``, on any host."""
    out = array.array("d")
    out.frombytes(raw)
    if sys.byteorder == "big":  # pragma: no cover - every host we test on is little-endian
        out.byteswap()
    return out.tolist()


def _pack(buf: bytearray, at: int, count: int, position: bytes, member: int) -> None:
    """Write ``count`` doubles at byte ``at``: 4 position bytes each, and ``member``."""
    end = at + 8 * count
    buf[at:end:8] = bytes((member & 0xFF,)) * count
    buf[at + 1 : end : 8] = bytes((member >> 8,)) * count
    for k in range(4):
        buf[at + 2 + k : end : 8] = position[k::4]
    buf[at + 6 : end : 8] = _EXPONENT[0] * count
    buf[at + 7 : end : 8] = _EXPONENT[1] * count


@functools.lru_cache(maxsize=8)
def _ring(spec: tuple[tuple[str, int], ...]) -> _Ring:
    """The ring of members ``(name, points)``, sorted by name; kept for the next call."""
    buf = bytearray(8 * sum(count for _, count in spec))
    at = 0
    for member, (name, count) in enumerate(spec):
        stream = hashlib.shake_256(_POINT_DOMAIN + name.encode()).digest(4 * count)
        _pack(buf, at, count, stream, member)
        at += 8 * count
    values = _doubles(buf)
    values.sort()
    return _Ring(tuple(name for name, _ in spec), values)


def _item_keys(items: Sequence[str]) -> tuple[list[float], bytes]:
    """Each item's position as a point of member 0, and the position's first byte.

    Member 0 sorts first, so an item exactly on a point belongs to that point.
    """
    fresh = _ITEM_HASH.copy  # half the cost of building a hasher with its parameters
    digests = []
    try:
        for data in map(str.encode, items):
            h = fresh()
            h.update(data)
            digests.append(h.digest())
    except (TypeError, UnicodeEncodeError):
        for n, item in enumerate(items):
            if not isinstance(item, str):
                raise ValueError(f"items[{n}] is not a string: {item!r}") from None
        raise ValueError("items must be strings that encode as UTF-8") from None
    joined = b"".join(digests)
    buf = bytearray(8 * len(items))
    _pack(buf, 0, len(items), joined, 0)
    return _doubles(buf), joined[3::4]


def _points(weight: object, member: str) -> int:
    if isinstance(weight, bool) or not isinstance(weight, (int, float)):
        raise ValueError(f"weight of {member!r} must be a number, not {weight!r}")
    if not 0 <= weight <= MAX_WEIGHT:  # also rejects NaN
        raise ValueError(f"weight of {member!r} must be from 0 to {MAX_WEIGHT}, not {weight}")
    if weight == 0:
        return 0
    return max(1, round(weight * POINTS))


def _spec(
    members: Iterable[str], weights: Mapping[str, float] | None
) -> tuple[tuple[str, int], ...]:
    """Eligible members and their number of points, sorted by name."""
    if isinstance(members, str):
        raise ValueError(f"members must be a collection of unit names, not {members!r}")
    names = set()
    for member in members:
        if not isinstance(member, str) or not member:
            raise ValueError(f"members must be non-empty strings, not {member!r}")
        names.add(member)
    if len(names) > MAX_MEMBERS:
        raise ValueError(f"at most {MAX_MEMBERS} members, not {len(names)}")
    spec = []
    for name in sorted(names):
        count = POINTS if weights is None else _points(weights.get(name, 1), name)
        if count:
            spec.append((name, count))
    return tuple(spec)


def _check(replicas: int, keep: Mapping[str, str] | None) -> None:
    if type(replicas) is not int or replicas < 1:
        raise ValueError(f"replicas must be a whole number >= 1, not {replicas!r}")
    for item, member in (keep or {}).items():
        if not isinstance(member, str):
            raise ValueError(f"keep[{item!r}] must be a unit name, not {member!r}")


def assign(
    items: Iterable[str],
    members: Iterable[str],
    *,
    replicas: int = 1,
    weights: Mapping[str, float] | None = None,
    keep: Mapping[str, str] | None = None,
) -> dict[str, tuple[str, ...]]:
    """Each item's owners among ``members``, the primary first.

    Args:
        items: the work to share out (strings; a repeated item counts once).
        members: the units sharing it (Juju unit names); their order and repeats do
            not matter.
        replicas: owners per item; every eligible member, if there are fewer.
        weights: member -> weight from 0 to :data:`MAX_WEIGHT`, 1 if absent: a member
            of weight 2 gets about twice the items of one of weight 1, a member of
            weight 0 none. Names that are not in ``members`` are ignored.
        keep: item -> the member already working on it. While that member is in
            ``members`` with a weight above 0, it stays the item's primary owner (the
            other replicas follow the hashing); otherwise the hashing decides. Units
            agree only if they all pass the same ``keep``: build it from data every
            unit sees, such as the application databag, never from a unit's own state.

    Returns:
        item -> its owners, in the order the items came; an empty tuple for every item
        when no member has a weight above 0.

    Raises:
        ValueError: a member or item that is not a string, a bad weight or replicas,
            a ``keep`` value that is not a string, more than :data:`MAX_MEMBERS` members.
    """
    _check(replicas, keep)
    spec = _spec(members, weights)
    items = list(dict.fromkeys(items))
    keys, tops = _item_keys(items)
    if not spec:
        return dict.fromkeys(items, ())
    ring = _ring(spec)
    names, values, owners, size = ring.names, ring.values, ring.owners, ring.size
    low, high = ring.low, ring.high
    want = min(replicas, len(names))
    if want == 1 and not keep:
        # owners[i - size] is owners[i], and owners[0] for i == size: the ring wraps.
        return {
            item: (names[owners[bisect_left(values, key, low[t], high[t]) - size]],)
            for item, key, t in zip(items, keys, tops)  # noqa: B905 - equal lengths
        }
    index = {name: i for i, name in enumerate(names)}
    kept = keep or {}
    out = {}
    for item, key, t in zip(items, keys, tops):  # noqa: B905 - equal lengths
        # The kept member if eligible, then distinct owners clockwise: the walk. Inline,
        # because a function call per item costs a quarter of the time here.
        first = index.get(kept.get(item, ""), -1)
        found = [first] if first >= 0 else []
        at = bisect_left(values, key, low[t], high[t]) - size  # negative: wraps for free
        while len(found) < want:
            owner = owners[at]
            if owner not in found:
                found.append(owner)
            at = at + 1 if at < -1 else -size
        out[item] = tuple([names[i] for i in found])
    return out


def owned(
    items: Iterable[str],
    members: Iterable[str],
    me: str,
    *,
    replicas: int = 1,
    weights: Mapping[str, float] | None = None,
    keep: Mapping[str, str] | None = None,
) -> list[str]:
    """The items ``me`` owns, as any of the ``replicas``, in the order they came.

    The rule of :func:`assign` seen from one unit, which should be among ``members``
    (a unit that is not owns nothing). Units that pass the same arguments, their own
    name aside, each get their part of one assignment.

    Raises:
        ValueError: as :func:`assign`.
    """
    assigned = assign(items, members, replicas=replicas, weights=weights, keep=keep)
    return [item for item, owners in assigned.items() if me in owners]
