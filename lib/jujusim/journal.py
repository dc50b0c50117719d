"""Workload truth: the JSON lines a charm appends to ``$JUJUSIM_JOURNAL``.

A charm under test reports what its workload does (``{"unit", "event": "begin"|"end",
"op", "lock"?, "limit"?, "mode"?}``, and optionally ``request``/``granted``/``release``
for the timeline). The engine reads the lines each hook appended and places them in
that hook's logical interval; invariants are checked against them, never against what
the charm claims in its databags.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

__all__ = ["EVENTS", "JOURNAL_ENV", "JournalReader", "JournalRecord"]

JOURNAL_ENV = "JUJUSIM_JOURNAL"
EVENTS = ("begin", "end", "request", "granted", "release", "revoked")


@dataclasses.dataclass(frozen=True)
class JournalRecord:
    """One workload event, as logged by the charm."""

    unit: str
    event: str
    op: str
    lock: str
    limit: int = 1
    mode: str = "exclusive"
    extra: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def parse(cls, line: str, default_unit: str) -> JournalRecord | None:
        """Parse one line; None for garbage (a workload may write anything)."""
        try:
            data = json.loads(line)
        except ValueError:
            return None
        if not isinstance(data, dict) or data.get("event") not in EVENTS:
            return None
        op = str(data.get("op") or data.get("lock") or "op")
        limit = data.get("limit", 1)
        mode = data.get("mode", "exclusive")
        known = {"unit", "event", "op", "lock", "limit", "mode"}
        return cls(
            unit=str(data.get("unit") or default_unit),
            event=str(data["event"]),
            op=op,
            lock=str(data.get("lock") or op),
            limit=limit if isinstance(limit, int) and limit > 0 else 1,
            mode="shared" if mode == "shared" else "exclusive",
            extra=tuple(sorted((k, v) for k, v in data.items() if k not in known)),
        )


class JournalReader:
    """Reads the lines appended to the journal file since the last read.

    With hooks executed one at a time, whatever was appended while a hook ran belongs
    to that hook; hooks executed concurrently each get a journal file of their own.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._offset = 0
        with open(path, "w", encoding="utf-8"):
            pass

    def save(self) -> tuple[bytes, int]:
        """The journal's bytes and how far they were read (what a snapshot carries)."""
        with open(self.path, "rb") as f:
            return f.read(), self._offset

    def load(self, saved: tuple[bytes, int]) -> None:
        """Start over from what :meth:`save` returned."""
        data, self._offset = saved
        with open(self.path, "wb") as f:
            f.write(data)

    def read_new(self, default_unit: str) -> list[JournalRecord]:
        """Records appended since the previous call (partial last lines are kept for later)."""
        try:
            size = os.path.getsize(self.path)
        except OSError:
            return []
        if size <= self._offset:
            return []
        with open(self.path, "rb") as f:
            f.seek(self._offset)
            data = f.read()
        end = data.rfind(b"\n")
        if end < 0:
            return []
        self._offset += end + 1
        out: list[JournalRecord] = []
        for raw in data[: end + 1].decode("utf-8", "replace").splitlines():
            rec = JournalRecord.parse(raw, default_unit)
            if rec is not None:
                out.append(rec)
        return out
