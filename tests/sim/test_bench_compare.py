"""benchmarks/compare.py: the queue-order measure, the per-cell aggregation, the goals."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import compare  # type: ignore[import-not-found]
from jujusim.agent import HookInfo
from jujusim.bench_scenarios import skewed_unit
from jujusim.engine import HookRecord
from jujusim.journal import JournalRecord


def _rec(index: int, unit: str, start: float, end: float, *events: str) -> HookRecord:
    lines = [JournalRecord(unit=unit, event=e, op="restart", lock="restart") for e in events]
    return HookRecord(
        index, unit, HookInfo("relation-changed"), start, end, ok=True, journal=lines
    )


def test_overtakes_count_pairs_served_against_commit_order() -> None:
    records = [
        _rec(0, "a/1", 1.0, 2.0, "request"),
        _rec(1, "a/2", 1.5, 2.5, "request"),  # overlaps a/1's request: no order between them
        _rec(2, "a/3", 3.0, 4.0, "request"),  # asked after both were committed
        _rec(3, "a/3", 5.0, 6.0, "begin", "end"),
        _rec(4, "a/2", 7.0, 8.0, "begin", "end"),
        _rec(5, "a/1", 9.0, 10.0, "begin", "end"),
    ]
    assert compare.overtakes(records, 0.0, set()) == ["a/3 before a/1", "a/3 before a/2"]
    assert compare.overtakes(records, 0.0, {"a/1"}) == ["a/3 before a/2"]


def _about(index: int, leader: str, remote: str, start: float, ok: bool = True) -> HookRecord:
    """A hook of the leader about ``remote`` (a relation-changed that reads its bag)."""
    return HookRecord(
        index,
        leader,
        HookInfo("relation-changed", remote_unit=remote),
        start,
        start + 0.5,
        ok=ok,
        leader=True,
    )


def test_seen_jumps_count_only_requests_the_leader_had_read() -> None:
    records = [
        _rec(0, "a/1", 1.0, 2.0, "request"),
        _rec(1, "a/2", 1.5, 2.5, "request"),
        _about(2, "a/0", "a/1", 3.0),  # the leader reads a/1's request, not a/2's
        _about(3, "a/0", "a/2", 3.0, ok=False),  # a failed hook read nothing that lasts
        _rec(4, "a/3", 5.0, 6.0, "request"),  # asks after a/1 was read
        _rec(5, "a/3", 7.0, 8.0, "begin", "end"),
        _rec(6, "a/2", 9.0, 10.0, "begin", "end"),
        _rec(7, "a/1", 11.0, 12.0, "begin", "end"),
    ]
    # a/3 overtook both, but only a/1's request was known to the leader when a/3 asked
    assert compare.overtakes(records, 0.0, set()) == ["a/3 before a/1", "a/3 before a/2"]
    assert compare.seen_jumps(records, 0.0, set()) == ["a/3 before a/1"]
    assert compare.seen_jumps(records, 0.0, {"a/3"}) == []


def test_a_leaders_own_request_counts_as_seen_when_committed() -> None:
    own = _rec(0, "a/0", 1.0, 2.0, "request")
    own.leader = True
    records = [
        own,
        _rec(1, "a/1", 3.0, 4.0, "request"),
        _rec(2, "a/1", 5.0, 6.0, "begin", "end"),
        _rec(3, "a/0", 7.0, 8.0, "begin", "end"),
    ]
    assert compare.seen_jumps(records, 0.0, set()) == ["a/1 before a/0"]


def test_skewed_unit_is_the_middle_non_leader_by_number() -> None:
    units = [f"app/{n}" for n in (0, 1, 2, 10, 11)]
    assert skewed_unit(units, "app/1") == "app/10"
    assert skewed_unit(["app/0"], "app/0") is None


def _row(impl: str, seed: int, **kw: Any) -> dict[str, Any]:
    base = {
        "impl": impl, "units": 3, "scenario": "rolling-restart", "seed": seed,
        "completed": True, "violations": 0, "overtakes": 0, "rounds": 4, "hooks": 24,
        "hook_tool_calls": 200, "tool_calls_per_hook": 8.3, "databag_bytes_max": 167,
        "hook_wall_median_ms": 50.0, "done_while_leader_error": None,
    }  # fmt: skip
    return {**base, **kw}


def test_aggregate_takes_medians_and_sums_failures() -> None:
    rows = [
        _row("charm_coordinator", 0, rounds=4, hooks=24),
        _row("charm_coordinator", 1, rounds=6, hooks=30, violations=1, completed=False),
        _row("charm_coordinator", 2, rounds=5, hooks=27, overtakes=2),
    ]
    (cell,) = compare.aggregate(rows)
    assert cell["seeds"] == 3 and cell["completed"] == "2/3"
    assert cell["rounds"] == 5 and cell["hooks"] == 27
    assert cell["violations"] == 1 and cell["overtakes"] == 2
    assert cell["failing_seeds"] == "1,2"


def test_goals_table_compares_with_charmhelpers(tmp_path: Path) -> None:
    rows = [
        _row("charm_coordinator", 0, hooks=24, rounds=4),
        _row("charm_coordinator.classic", 0, hooks=24, rounds=4),
        _row("charmhelpers", 0, hooks=18, rounds=5, tool_calls_per_hook=15.3),
        _row("rollingops", 0, hooks=28, rounds=5, tool_calls_per_hook=10.4),
    ]
    text = compare.goals(rows)
    assert "| 3 | 4 (met) | 24 vs 18 (**not met**) | 8.3 vs 10.4 | 167 | 0 in 2 runs |" in text
    readme = tmp_path / "README.md"
    readme.write_text("head\n<!-- compare:begin -->\nold\n<!-- compare:end -->\ntail\n")
    source = {"command": "c", "machine": "m", "date": "d", "runtime": "fork", "wall_s": 1}
    compare.update_readme(str(readme), compare.readme_block(rows, [source], "cmd", None))
    text = readme.read_text()
    assert text.startswith("head\n<!-- compare:begin -->\nGenerated by `cmd`")
    assert "old" not in text and text.endswith("<!-- compare:end -->\ntail\n")
    assert "| 3 | 4 (met) |" in text


def test_failures_table_sums_seen_jumps_and_shows_the_stall() -> None:
    rows = [
        _row("charm_coordinator", 0, scenario="skew-behind", seen_jumps=0),
        _row("charmhelpers", 0, scenario="skew-behind", seen_jumps=2),
        _row("charmhelpers", 1, scenario="skew-behind", seen_jumps=1),
        _row("charm_coordinator", 0, scenario="leader-error-late", done_while_leader_error=3),
        _row("rollingops", 0, scenario="leader-error-late", done_while_leader_error=1),
        _row("rollingops", 0, scenario="skew-behind"),  # recorded before the column
    ]
    lines = compare.failures(rows).splitlines()
    skew = next(line for line in lines if line.startswith("| skew-behind | 3 |"))
    cells = [c.strip() for c in skew.strip("|").split("|")][3:]
    assert cells == ["0", "3", ""]  # charm_coordinator, charmhelpers, rollingops
    late = next(line for line in lines if line.startswith("| leader-error-late | 3 |"))
    assert "| 3 of 3 |" in late and "| 1 of 3 |" in late
