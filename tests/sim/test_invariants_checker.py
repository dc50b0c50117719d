"""The invariant checker, on hand-made journals and on the ordered and unsafe charms."""

from __future__ import annotations

from simkit import CHARMS

from jujusim.agent import HookInfo
from jujusim.engine import HookRecord
from jujusim.invariants import check, operations
from jujusim.journal import JournalRecord
from jujusim.runner import run_scenario


def rec(i, unit, start, end, *events, ok=True, lock="l", limit=1, mode="exclusive"):
    lines = [JournalRecord(unit, e, "op", lock, limit, mode) for e in events]
    return HookRecord(i, unit, HookInfo("config-changed"), start, end, ok=ok, journal=lines)


def verdict(records, required=(), end="quiet"):
    return check(
        records, since=0.0, required_units=required, removed_units=(), phase_end=end,
        hooks_run=len(records),
    )


def test_operation_spans_from_begin_hook_start_to_end_hook_end():
    ops = operations([rec(0, "a/0", 1.0, 2.0, "begin"), rec(1, "a/0", 5.0, 6.0, "end")])
    assert [(o.start, o.end) for o in ops] == [(1.0, 6.0)]


def test_two_exclusive_overlapping_is_a_violation():
    v = verdict([rec(0, "a/0", 1, 3, "begin", "end"), rec(1, "a/1", 2, 4, "begin", "end")])
    assert v.max_concurrent == 2
    assert len(v.violations) == 1 and v.violations[0].startswith("exclusion")


def test_back_to_back_is_fine():
    v = verdict([rec(0, "a/0", 1, 3, "begin", "end"), rec(1, "a/1", 3, 4, "begin", "end")])
    assert v.violations == () and v.max_concurrent == 1


def test_limit_k_allows_k():
    records = [
        rec(0, "a/0", 1, 5, "begin", "end", limit=2),
        rec(1, "a/1", 2, 6, "begin", "end", limit=2),
    ]
    assert verdict(records).violations == ()
    records.append(rec(2, "a/2", 3, 7, "begin", "end", limit=2))
    assert verdict(records).violations


def test_shared_with_shared_ok_but_not_with_exclusive():
    shared = [
        rec(0, "a/0", 1, 5, "begin", "end", mode="shared", limit=5),
        rec(1, "a/1", 2, 6, "begin", "end", mode="shared", limit=5),
    ]
    assert verdict(shared).violations == ()
    mixed = [*shared, rec(2, "a/2", 3, 4, "begin", "end", limit=5)]
    assert verdict(mixed).violations


def test_different_locks_do_not_exclude_each_other():
    v = verdict(
        [rec(0, "a/0", 1, 3, "begin", "end", lock="x"), rec(1, "a/1", 2, 4, "begin", "end")]
    )
    assert v.violations == ()


def test_lost_requests_unfinished_and_storms():
    v = verdict([rec(0, "a/0", 1, 2, "request"), rec(1, "a/1", 1, 2, "begin")], required=["a/2"])
    text = " | ".join(v.violations)
    assert "a/2 never completed" in text
    assert "a/0 requested" in text
    assert "unfinished: a/1" in text
    assert not v.completed
    assert any("hook storm" in x for x in verdict([], end="storm").violations)
    assert any("stalled" in x for x in verdict([], end="stalled").violations)


def test_safe_charm_passes_and_unsafe_charm_is_caught():
    safe = run_scenario(str(CHARMS / "ordered"), units=4, seed=2)
    assert safe.completed and safe.violations == []
    assert safe.verdict.max_concurrent == 1 and len(safe.verdict.operations) == 4
    unsafe = run_scenario(str(CHARMS / "unsafe"), units=4, seed=2)
    assert unsafe.violations and unsafe.violations[0].startswith("exclusion")
    assert unsafe.verdict.max_concurrent > 1


def zoned(i, unit, start, end, zone):
    extra = (("per_zone", 1), ("zone", zone))
    lines = [JournalRecord(unit, e, "op", "l", 3, "exclusive", extra) for e in ("begin", "end")]
    return HookRecord(i, unit, HookInfo("config-changed"), start, end, ok=True, journal=lines)


def test_zone_aware_allows_one_per_zone_and_names_the_crowded_zone():
    records = [zoned(0, "a/0", 1, 5, "zone-1"), zoned(1, "a/1", 2, 6, "zone-2")]
    assert verdict(records).violations == ()
    records.append(zoned(2, "a/2", 3, 7, "zone-1"))
    (violation,) = verdict(records).violations
    assert "1 per zone" in violation and "a/0(zone-1)" in violation and "a/2(zone-1)" in violation
