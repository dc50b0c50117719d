"""Garbage a buggy charm revision (or a malicious unit) may leave in its peer databag.

The ``hostile=N`` fault writes one of these into the coordinator key of a unit's
committed bag, as if a revision of the charm had written it and exited 0. Each payload
is named, so a failing run says which one broke it.
"""

from __future__ import annotations

import json
from collections.abc import Callable

__all__ = ["HOSTILE_KEY", "PAYLOADS", "payload"]

HOSTILE_KEY = "coordinator"
"""The databag key the fault overwrites (charm_coordinator's default key)."""


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


def _victim_entries(unit: str, other: str) -> str:
    # An application document in a unit bag: queues naming other units, ahead of all.
    return json.dumps(
        {
            "v": 1,
            "seq": 1,
            "queues": {"restart": [[0, unit, 1, "x"], [1, other, 1, "x"]]},
        }
    )


_MAKERS: dict[str, Callable[[str, str], str]] = {
    "not-json": lambda unit, other: "{not json",
    "empty-object": lambda unit, other: "{}",
    "wrong-type-list": lambda unit, other: "[1, 2, 3]",
    "wrong-type-id": lambda unit, other: '{"v":1,"locks":{"restart":{"id":"3","released":0}}}',
    "negative-id": lambda unit, other: '{"v":1,"locks":{"restart":{"id":-5,"released":-9}}}',
    "float-id": lambda unit, other: '{"v":1,"locks":{"restart":{"id":1.5,"released":0}}}',
    "huge-id": lambda unit, other: '{"v":1,"locks":{"restart":{"id":' + "9" * 400 + "}}}",
    "unknown-version": lambda unit, other: '{"v":99,"locks":{}}',
    "unknown-key": lambda unit, other: '{"v":1,"locks":{},"grant":["' + unit + '"]}',
    "deep-nesting": lambda unit, other: _deep(100_000),
    "many-locks": lambda unit, other: json.dumps(
        {"v": 1, "locks": {f"l{i}": {"id": 1, "released": 0} for i in range(5000)}}
    ),
    "big-1mib": lambda unit, other: '"' + "x" * (1 << 20) + '"',
    "big-16mib": lambda unit, other: '{"v":1,"pad":"' + "x" * (16 << 20) + '"}',
    "bad-lock-name": lambda unit, other: '{"v":1,"locks":{"../../etc":{"id":1,"released":0}}}',
    "names-other-unit": _victim_entries,
    "nul-bytes": lambda unit, other: '{"v":1,"locks":{"restart\\u0000":{"id":1}}}',
    "null": lambda unit, other: "null",
}

PAYLOADS: tuple[str, ...] = tuple(_MAKERS)
"""Names of every payload, in a stable order (seeded choices index into it)."""


def payload(name: str, unit: str, other: str) -> str:
    """The garbage called ``name``, written by ``unit``; ``other`` is another unit."""
    return _MAKERS[name](unit, other)
