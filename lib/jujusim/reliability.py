"""``docs/reliability.md``: the fault model, the invariants, and a campaign's figures.

Written by ``python -m jujusim campaign ... --markdown FILE`` so the figures are never
typed by hand.
"""

from __future__ import annotations

import datetime
import os
import platform

from jujusim.campaign import CampaignResult
from jujusim.invariants import databag_bound, hooks_per_operation_bound

__all__ = ["markdown"]

_FAULTS: tuple[tuple[str, str, str], ...] = (
    (
        "`leader-change=P`",
        "at each step (hook start or commit), leadership moves to another live unit with "
        "probability P, also while the old leader is mid-hook: its application-data write"
        " then fails at commit",
        "lease expiry, a controller moving leadership",
    ),
    (
        "`hook-fail=P`",
        "a hook fails (exit 1) after its code ran; nothing is committed; Juju retries "
        "with back-off",
        "a one-off bug, a transient error",
    ),
    (
        "`fail=leader:*-relation-changed*1`",
        "the leader's next relation-changed fails once",
        "a fault aimed at the sequencer",
    ),
    (
        "`persist=N`",
        "N times, one random unit fails every hook for 60-600 s",
        "a persistent hook failure until an operator fixes it",
    ),
    (
        "`leader-error=S`",
        "the unit leading at a random moment fails every hook for S seconds (it stays "
        "leader unless a leader change strikes)",
        "the leader in error for a long time",
    ),
    (
        "`remove=N`",
        "N units removed gracefully at random moments, preferring a unit inside its "
        "operation, else one waiting for the lock",
        "a unit removed while holding or waiting",
    ),
    (
        "`add=N`",
        "N units added at random moments (they join with the new token and request too)",
        "scale-out mid-queue",
    ),
    (
        "`delay=P`",
        "a hook takes 10-120 s longer with probability P",
        "a slow machine, a long hook",
    ),
    (
        "`slow=N`",
        "N units take 30-300 s longer for every hook during the window",
        "one unit far behind the others",
    ),
    (
        "`burst=N`",
        "N bursts of 2-5 `restart-token` changes 0.2-5 s apart; Juju coalesces them into "
        "fewer config-changed hooks; units that already restarted must restart again",
        "an operator (or automation) changing config repeatedly",
    ),
    (
        "clock skew (charm config `clock-skew`)",
        "each unit's wall clock is off by a fixed amount of up to 30 s or 1 h",
        "unsynchronised machines; no decision may read a clock",
    ),
    (
        "lock rule (charm config)",
        "limit 1-3, `shared-units` none/odd/even/all, shared limit none/1/2, drawn per schedule",
        "exclusive and shared holders mixed",
    ),
)
"""The fault table: item, what happens, what it models."""


_FAULT_MODEL = """\
## Fault model

Every schedule deploys N units, lets the model settle, then changes `restart-token`
(every unit must restart under the lock) and injects faults for a window of logical
time (`window`, default 300 s) after that trigger. Probabilistic faults apply at every
step of the window; each timed fault (removal, addition, persistent failure, leader in
error, burst) strikes at a seeded hook of the operation (the k-th hook after the
trigger, k up to 3N^2 + 3, about what a rolling restart takes) or at a seeded moment
of the window, whichever comes first, so that it meets the queue rather than a model
that has already finished. Once faults stop, the model must
settle with every invariant holding. One seed drives every choice, so a failing
schedule replays exactly with the `run` command printed next to it.

{fault_table}

`--faults campaign` is all of the above at once: `all` (leader change 0.02, hook failure
0.03, delay 0.05, one removal, one addition, the targeted leader failure) plus
`persist=1,leader-error=240,slow=1,burst=1`. Hostile data (`hostile=N`: garbage written
into a unit's coordinator key, as a buggy revision would) is exercised by its own tests
(`tests/sim/test_hostile_units.py`), not by this campaign.

Not modelled: forced removal (`remove-unit --force`, which no library can make safe;
see docs/protocol.md), network partitions between units and controller beyond leader
changes, and Juju's lease guarantee (the simulator may move leadership at *any* step,
which is harsher than Juju, whose is-leader answer holds for 30 s).
"""

_INVARIANTS = """\
## Invariants

Checked on every schedule from the workload journal (`$JUJUSIM_JOURNAL`: what the
workload did, never what the charm claims), placed in logical time; an operation lasts
from the start of the hook that began it to the end of the hook that ended it.

- **Exclusion**: per lock, never more exclusive operations at once than the lock's
  limit, never a shared one alongside an exclusive one, never more shared ones than the
  shared limit (each journal line carries `lock`, `limit`, `mode`, `shared_limit`).
- **No lost request**: every unit alive at the trigger and still there at the end
  completed an operation after it, and every `request` line of a unit that stays is
  followed by an `end` (removed units are exempt).
- **No stall**: the model never goes quiet with requests pending (update-status keeps
  firing for two intervals without progress = stalled).
- **No storm**: at most 30 N^2 + 300 hooks per phase.
- **Bounded databags**: no honest peer databag above {databag} bytes
  (1024 + 64 per unit that ever existed).
- **Bounded hooks per operation**: hooks after the trigger / operations done at most
  {per_op} (12 N + 60, N = units that ever existed).
"""


def _fault_table() -> str:
    rows = ["| Fault (`--faults` item) | What happens | Models |", "|---|---|---|"]
    rows += [f"| {item} | {what} | {models} |" for item, what, models in _FAULTS]
    return "\n".join(rows)


def markdown(result: CampaignResult, *, command: str) -> str:
    """The whole of docs/reliability.md for ``result``."""
    data = result.to_json()
    lo, hi = result.units
    ok = not result.failing
    lines = [
        "# Reliability: the lock under faults",
        "",
        "<!-- Generated by the campaign command below; do not edit by hand. -->",
        "",
        "A lock that fails once in a thousand rollouts is a lock operators cannot use. "
        "This page says what the simulator does to the lock, what it checks, and what "
        "the latest campaign found.",
        "",
        _FAULT_MODEL.format(fault_table=_fault_table()),
        _INVARIANTS.format(
            databag=f"{databag_bound(hi + 1)} (for {hi} units and one added)",
            per_op=f"{hooks_per_operation_bound(hi + 1):.0f} (for {hi} units and one added)",
        ),
        "## Latest campaign",
        "",
        "```",
        command,
        "```",
        "",
        f"- verdict: **{'OK' if ok else 'FAILED'}**",
        f"- schedules: {result.schedules} ({lo}..{hi} units, drawn {result.unit_weights}; "
        f"seed {result.seed}; runtime {result.runtime}; {result.workers} worker(s))",
        f"- faults: `{result.faults}`",
        f"- completed: {result.completed}; violations: {result.violations}; "
        f"lost requests: {result.lost_requests}; stalled: {result.stalled}; "
        f"storms: {result.storms}",
        f"- max concurrent holders seen: {result.max_concurrent}; "
        f"max causal rounds: {result.rounds_max}",
        f"- largest databag: {result.databag_bytes_max} bytes; worst hooks per operation: "
        f"{result.hooks_per_op_ratio_max:.0%} of its bound",
        f"- faults that struck: {result.leader_changes} leader changes, "
        f"{result.failed_hooks} failed hooks, {result.removed_units} units removed, "
        f"{result.added_units} added",
        f"- hooks: {result.hooks_total} in all ({result.hooks} after triggers); "
        f"wall {result.wall_s:.1f} s ({data['hooks_per_s']} hooks run a second)",
        *_shared_deploys(result),
        f"- CPU in the workers: {result.cpu_s:.0f} s ({data['cpu_ms_per_hook']} ms a hook run, "
        f"{result.cpu_s / max(result.schedules, 1):.3f} s a schedule); load average "
        f"{result.load_average[0]} at the start, {result.load_average[1]} at the end "
        f"(on {os.cpu_count()} CPUs; others' work slows the wall time, and the CPU time "
        "somewhat)",
        f"- machine: {platform.machine()}, Python {platform.python_version()}, "
        f"{datetime.date.today().isoformat()}",
        "",
        "| units | schedules | failing | hooks |",
        "|---:|---:|---:|---:|",
    ]
    for n, row in sorted(result.by_units.items()):
        lines.append(f"| {n} | {row['schedules']} | {row['failing']} | {row['hooks']} |")
    lines += ["", "| lock rule | schedules | failing |", "|---|---:|---:|"]
    for rule, row in sorted(result.by_rule.items()):
        lines.append(f"| {rule} | {row['schedules']} | {row['failing']} |")
    if result.failing:
        lines += ["", "### Failing schedules", ""]
        for f in result.failing[:50]:
            lines.append(f"- seed {f['seed']} ({f['units']} units): {'; '.join(f['violations'])}")
            lines.append(f"  `{f['replay']}`")
    lines.append("")
    return "\n".join(lines)


def _shared_deploys(result: CampaignResult) -> list[str]:
    """The line on shared deployments, when the schedules shared them."""
    if result.share_deploys <= 1:
        return []
    return [
        f"- deployments shared by up to {result.share_deploys} schedules each "
        f"(`--share-deploys`): each deployed once, snapshot, and restored for the others, "
        f"whose {result.hooks_restored} deployment hooks were not run again; every schedule "
        "draws its faults and everything after its trigger from its own seed"
    ]
