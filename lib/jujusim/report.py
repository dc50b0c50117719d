"""Readable output of a run: a text timeline (a lane per unit) and a summary."""

from __future__ import annotations

import math
import shlex
import sys
import time
from typing import TextIO

from jujusim.engine import Simulator
from jujusim.lanes import Lane, build_lanes
from jujusim.runner import RunResult

__all__ = ["Progress", "summary", "text_timeline"]

_WORK_MARK = {"waiting": ".", "holding": "=", "operating": "#"}
_HOOK_LETTER = {
    "install": "i",
    "start": "s",
    "stop": "S",
    "remove": "R",
    "config-changed": "c",
    "update-status": "u",
    "leader-elected": "L",
    "leader-settings-changed": "l",
    "relation-created": "+",
    "relation-joined": "j",
    "relation-changed": "r",
    "relation-departed": "d",
    "action": "a",
}


def result_lanes(result: RunResult) -> tuple[list[Lane], float, float]:
    """Lanes from the trigger to the end of the run."""
    since = result.trigger_time
    ends = [r.end for r in result.records if r.end >= 0]
    until = max([since + 1.0, *ends])
    lanes = build_lanes(result.records, result.unit_names, since, until, result.final_leader)
    return lanes, since, until


def text_timeline(result: RunResult, width: int = 72) -> str:
    """A lane per unit: workload state on one row, hooks (by kind letter) on the next."""
    lanes, since, until = result_lanes(result)
    span = until - since
    step = span / width
    label_w = max([len(ln.unit) for ln in lanes] + [8]) + 2

    def col(t: float) -> int:
        return min(width - 1, max(0, int((t - since) / step)))

    lines = [
        f"timeline from the trigger (t=0) to t={span:.1f}s; one column = {step:.2f}s",
        "  work: '.' waiting  '=' holding  '#' operating   "
        "hooks: c config-changed, r relation-changed, j joined, d departed,",
        "        l leader-settings-changed, L leader-elected, u update-status, "
        "a action, x failed, - running",
    ]
    axis = [" "] * width
    ticks = _ticks(span)
    for t in ticks:
        label = f"{t:g}s"
        c = col(since + t)
        if c + len(label) <= width:
            axis[c : c + len(label)] = list(label)
    lines.append(" " * label_w + "".join(axis))
    for lane in lanes:
        work = [" "] * width
        for state in ("waiting", "holding", "operating"):
            for s in lane.work:
                if s.state == state:
                    for c in range(col(s.start), col(s.end) + 1):
                        work[c] = _WORK_MARK[state]
        hooks = [" "] * width
        for h in lane.hooks:
            a, b = col(h.start), col(h.end)
            for c in range(a + 1, b + 1):
                if hooks[c] == " ":
                    hooks[c] = "-"
            kind = h.label.split("(")[0]
            letter = _HOOK_LETTER.get(kind, "")
            if not letter:
                for suffix, mark in _HOOK_LETTER.items():
                    if kind.endswith(suffix):
                        letter = mark
                        break
            hooks[a] = "x" if h.state == "failed" else (letter or "a")
        name = lane.unit + ("*" if lane.leader_at_end else "")
        removed = " (removed)" if lane.unit in result.removed_units else ""
        lines.append(f"{name:<{label_w}}" + "".join(work).rstrip() + removed)
        lines.append(f"{'':<{label_w}}" + "".join(hooks).rstrip() + f"  [{len(lane.hooks)} hooks]")
    lines.append("(* = leader at the end)")
    return "\n".join(lines)


def _ticks(span: float) -> list[float]:
    if span <= 0:
        return [0.0]
    raw = span / 6
    mag = 10 ** math.floor(math.log10(raw))
    unit = min((m * mag for m in (1, 2, 5, 10)), key=lambda m: abs(m - raw))
    return [i * unit for i in range(int(span / unit) + 1)]


def summary(result: RunResult) -> str:
    """A few lines: the verdict and the figures of the JSON."""
    data = result.to_json()
    verdict = "OK" if result.completed and not result.violations else "FAILED"
    lines = [
        f"{verdict}: {data['scenario']} of {data['units']} units, runtime {data['runtime']}, "
        f"seed {data['seed']}, faults {data['faults']}",
        f"  operations {data['operations']}, max concurrent {data['max_concurrent']}, "
        f"hooks {data['hooks']} after the trigger ({data['hooks_total']} in all), "
        f"rounds {data['rounds']}, failed hooks {data['failed_hooks']}",
        f"  hook-tool calls {data['hook_tool_calls']}"
        f"{'' if data['hook_tool_calls_exact'] else ' (approximate)'}, "
        f"largest databag {data['databag_bytes_max']} B, logical {data['logical_s']:.1f}s, "
        f"wall {data['wall_s']:.2f}s, end: {data['end']}",
    ]
    if result.leader_changes or result.removed_units or result.added_units:
        lines.append(
            f"  leader changes {result.leader_changes}, removed {result.removed_units or '-'}, "
            f"added {result.added_units or '-'}"
        )
    if result.violations:
        lines.append("  violations:")
        lines.extend(f"    - {v}" for v in result.violations)
    else:
        lines.append("  violations: none")
    lines.append(
        f"  replay: python -m jujusim run CHARM_DIR --units {data['units']} "
        f"--scenario {data['scenario']} --runtime {data['runtime']} --seed {data['seed']} "
        f"--faults {shlex.quote(data['faults'])}"
        + (f" --deploy-seed {result.deploy_seed}" if result.deploy_seed is not None else "")
    )
    return "\n".join(lines)


class Progress:
    r"""A ``\r`` progress line on stderr, at most a few times a second; silent if disabled."""

    def __init__(self, stream: TextIO | None = None, enabled: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self._last = 0.0
        self._shown = False

    def __call__(self, sim: Simulator, phase: str) -> None:
        """Called after each hook; redraws when enough wall time has passed."""
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < 0.2:
            return
        self._last = now
        busy = sum(1 for a in sim.agents.values() if a.busy)
        failed = sum(1 for a in sim.agents.values() if a.failed is not None)
        phase = "deploy" if sim.trigger_time is None else "after trigger"
        self.stream.write(
            f"\r[jujusim] {phase}: t={sim.now:8.1f}s hooks={len(sim.records):6d} "
            f"units={len(sim.model.alive)} busy={busy} in-error={failed}   "
        )
        self.stream.flush()
        self._shown = True

    def done(self) -> None:
        """Clear the line."""
        if self.enabled and self._shown:
            self.stream.write("\r" + " " * 78 + "\r")
            self.stream.flush()
