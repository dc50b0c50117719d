"""Invariants checked against the workload's own journal, placed in logical time.

An operation lasts from the start of the hook that logged ``begin`` to the end (commit
or failure) of the hook that logged ``end``: the most the workload could have been
inside it. Checked: per lock, never more than ``limit`` exclusive operations at once,
never more than ``per_zone`` of them in one availability zone (zone-aware locks; the
journal line says which zone the workload runs in), and never a shared one alongside
an exclusive one; every required operation done;
the model went quiet (no hook storm, no stall).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

from jujusim.engine import HookRecord
from jujusim.journal import JournalRecord

__all__ = [
    "Operation",
    "Verdict",
    "bounds",
    "check",
    "databag_bound",
    "hooks_per_operation_bound",
    "operations",
]


@dataclasses.dataclass(frozen=True)
class Operation:
    """One workload operation of one unit, with the hooks that began and ended it."""

    unit: str
    op: str
    lock: str
    mode: str
    limit: int
    start: float
    end: float | None
    """None: never ended."""
    begin_hook: int
    end_hook: int | None
    end_depth: int | None
    shared_limit: int = 0
    """Shared holders allowed at once (0: no limit), from the journal's ``shared_limit``."""
    per_zone: int = 0
    """Exclusive holders allowed at once per zone (0: no zone rule), from ``per_zone``."""
    zone: str = ""
    """The availability zone the workload ran in, from the journal's ``zone``."""


@dataclasses.dataclass(frozen=True)
class Verdict:
    """What the invariants say about one run."""

    operations: tuple[Operation, ...]
    max_concurrent: int
    violations: tuple[str, ...]
    lost_requests: int
    completed: bool


def operations(records: Iterable[HookRecord], since: float | None = None) -> list[Operation]:
    """Pair begin/end lines per unit and op, in logical time; ``since`` filters by begin."""
    open_ops: dict[tuple[str, str], tuple[HookRecord, JournalRecord]] = {}
    out: list[Operation] = []

    def operation(began: HookRecord, line: JournalRecord, ended: HookRecord | None) -> Operation:
        extra = dict(line.extra)
        per_zone = extra.get("per_zone", 0)
        return Operation(
            line.unit,
            line.op,
            line.lock,
            line.mode,
            line.limit,
            began.start,
            None if ended is None else ended.end,
            began.index,
            None if ended is None else ended.index,
            None if ended is None else ended.depth,
            _shared_limit(line),
            per_zone if isinstance(per_zone, int) and per_zone > 0 else 0,
            str(extra.get("zone", "")),
        )

    for rec in records:
        for line in rec.journal:
            key = (line.unit, line.op)
            if line.event == "begin":
                if key in open_ops:
                    # begun again without an end (e.g. a hook retried): keep the first begin
                    continue
                open_ops[key] = (rec, line)
            elif line.event == "end" and key in open_ops:
                began, first = open_ops.pop(key)
                out.append(operation(began, first, rec))
    for began, first in open_ops.values():
        out.append(operation(began, first, None))
    if since is not None:
        out = [o for o in out if o.start >= since]
    out.sort(key=lambda o: (o.start, o.unit))
    return out


def _shared_limit(line: JournalRecord) -> int:
    value = dict(line.extra).get("shared_limit", 0)
    return value if isinstance(value, int) and value > 0 else 0


def _exclusion(ops: Sequence[Operation]) -> tuple[int, list[str]]:
    """Sweep over begin/end points per lock; returns max concurrency and violations."""
    inf = float("inf")
    by_lock: dict[str, list[Operation]] = {}
    for o in ops:
        by_lock.setdefault(o.lock, []).append(o)
    max_concurrent = 0
    violations: list[str] = []
    for lock, lock_ops in sorted(by_lock.items()):
        points: list[tuple[float, int, Operation]] = []
        for o in lock_ops:
            points.append((o.start, 1, o))
            points.append((o.end if o.end is not None else inf, 0, o))
        points.sort(key=lambda p: (p[0], p[1]))  # ends before begins at equal times
        inside: list[Operation] = []
        reported = False
        for t, is_begin, o in points:
            if not is_begin:
                if o in inside:
                    inside.remove(o)
                continue
            inside.append(o)
            max_concurrent = max(max_concurrent, len(inside))
            exclusive = [x for x in inside if x.mode == "exclusive"]
            shared = [x for x in inside if x.mode == "shared"]
            limit = min(x.limit for x in inside)
            shared_limits = [x.shared_limit for x in inside if x.shared_limit > 0]
            shared_limit = min(shared_limits) if shared_limits else 0
            per_zone = min((x.per_zone for x in inside if x.per_zone > 0), default=0)
            crowded = per_zone > 0 and any(
                sum(1 for x in exclusive if x.zone == o.zone) > per_zone for o in exclusive
            )
            bad = (
                len(exclusive) > limit
                or bool(exclusive and shared)
                or (shared_limit > 0 and len(shared) > shared_limit)
                or crowded
            )
            if bad and not reported:
                who = ", ".join(sorted(f"{x.unit}({x.mode})" for x in inside))
                if crowded:
                    who = ", ".join(sorted(f"{x.unit}({x.zone})" for x in exclusive))
                violations.append(
                    f"exclusion: {len(inside)} inside lock {lock!r} (limit {limit}"
                    f"{f', shared limit {shared_limit}' if shared_limit else ''}"
                    f"{f', {per_zone} per zone' if per_zone else ''}) "
                    f"at t={t:.1f}s: {who}"
                )
                reported = True  # one report per lock is enough to fail the run
    return max_concurrent, violations


def check(
    records: Sequence[HookRecord],
    *,
    since: float | None,
    required_units: Iterable[str],
    removed_units: Iterable[str],
    phase_end: str,
    hooks_run: int,
) -> Verdict:
    """Evaluate every invariant; ``required_units`` must each complete an operation."""
    ops = operations(records, since)
    max_concurrent, violations = _exclusion(ops)
    removed = set(removed_units)
    done_units = {o.unit for o in ops if o.end is not None}
    lost = 0
    for unit in sorted(set(required_units) - removed):
        if unit not in done_units:
            lost += 1
            violations.append(f"lost request: {unit} never completed its operation")
    # requests the workload itself logged must each be followed by an end of that op
    ends: dict[tuple[str, str], float] = {}
    for o in ops:
        if o.end is not None:
            for key in ((o.unit, o.op), (o.unit, "lock:" + o.lock)):
                ends[key] = max(ends.get(key, o.end), o.end)
    for rec in records:
        if since is not None and rec.start < since:
            continue
        for line in rec.journal:
            if line.event != "request" or line.unit in removed:
                continue
            done_at = max(
                ends.get((line.unit, line.op), -1.0),
                ends.get((line.unit, "lock:" + line.lock), -1.0),
            )
            if done_at < rec.start:
                lost += 1
                violations.append(
                    f"lost request: {line.unit} requested {line.op!r} at t={rec.start:.1f}s "
                    "and never completed it"
                )
    for o in ops:
        if o.end is None and o.unit not in removed:
            violations.append(f"unfinished: {o.unit} began {o.op!r} at t={o.start:.1f}s")
    if phase_end == "storm":
        violations.append(f"hook storm: the model was not quiet after {hooks_run} hooks")
    elif phase_end == "stalled":
        violations.append("stalled: the model stopped making progress with work outstanding")
    completed = phase_end == "quiet" and not lost and all(
        o.end is not None or o.unit in removed for o in ops
    )
    return Verdict(tuple(ops), max_concurrent, tuple(dict.fromkeys(violations)), lost, completed)


def databag_bound(units_ever: int) -> int:
    """Largest honest peer databag allowed: fixed overhead plus a constant per unit.

    A unit document holds one small record per lock (about 60 bytes), the application
    document about 30 bytes per queued request; the default address keys add about
    100. 64 bytes per unit that ever existed and 1 KiB of slack bound both.
    """
    return 1024 + 64 * units_ever


def hooks_per_operation_bound(units_ever: int) -> float:
    """Most hooks the model may run per completed operation, faults included.

    Fault-free, a rolling restart of N units costs about 3N hooks per operation
    (every unit-bag commit wakes every peer); retries, update-status while a unit is
    in error, leader changes and bursts add a constant factor. 12N + 60 bounds it.
    """
    return 12.0 * units_ever + 60.0


def bounds(
    *,
    units_ever: int,
    databag_bytes_max: int,
    hooks: int,
    operations_done: int,
) -> list[str]:
    """Violations of the size and cost bounds (bounded databags, hooks per operation)."""
    out: list[str] = []
    limit = databag_bound(units_ever)
    if databag_bytes_max > limit:
        out.append(
            f"databag size: {databag_bytes_max} bytes > bound {limit} for {units_ever} units"
        )
    per_op = hooks / max(operations_done, 1)
    bound = hooks_per_operation_bound(units_ever)
    if per_op > bound:
        out.append(
            f"hooks per operation: {hooks} hooks for {operations_done} operations "
            f"({per_op:.1f} > bound {bound:.0f} for {units_ever} units)"
        )
    return out
