"""The ``--faults`` spec: which faults to inject, how often, and for how long.

Grammar (documented in docs/simulator.md)::

    none | all | campaign | all,<item>,... | <item>[,<item>...]
    item := leader-change=P     probability, at each step (hook start or commit), of
                                moving leadership to another live unit
          | hook-fail=P         probability that a hook fails (exit 1) after its code ran
          | fail=UNIT:HOOK[*N]  fail the first N (default 1) runs of HOOK (a glob) on UNIT
                                (a unit name, or "leader" for whichever unit leads then)
          | delay=P             probability that a hook takes 10-120 s longer (logical)
          | remove=N            remove N units (gracefully) at random times in the window
          | add=N               add N units at random times in the window
          | persist=N           N episodes, each: one random unit fails every hook for a
                                seeded 60-600 s (a persistent hook failure)
          | leader-error=S      once: the unit leading then fails every hook for S seconds
          | slow=N              N random units take 30-300 s longer for every hook
          | burst=N             N bursts of 2-5 restart-token changes a few seconds apart
                                (they coalesce into fewer config-changed hooks)
          | hostile=N           N times, overwrite the coordinator key of one unit's
                                committed bag with garbage (a buggy revision): that unit
                                is then "hostile" and exempt from its own invariants
          | window=S            faults are active for S logical seconds after the trigger

Faults stop when the window closes; the model must then settle.
"""

from __future__ import annotations

import dataclasses

__all__ = ["ALL", "CAMPAIGN", "FaultSpec", "TargetedFailure", "parse_faults"]


@dataclasses.dataclass(frozen=True)
class TargetedFailure:
    """Fail the first ``count`` runs of ``hook`` (glob) on ``unit`` (or the leader)."""

    unit: str
    hook: str
    count: int = 1

    def __str__(self) -> str:
        return f"fail={self.unit}:{self.hook}*{self.count}"


@dataclasses.dataclass(frozen=True)
class FaultSpec:
    """Parsed fault injection settings; the default injects nothing."""

    leader_change: float = 0.0
    hook_fail: float = 0.0
    delay: float = 0.0
    remove: int = 0
    add: int = 0
    window: float = 300.0
    targeted: tuple[TargetedFailure, ...] = ()
    persist: int = 0
    leader_error: float = 0.0
    slow: int = 0
    burst: int = 0
    hostile: int = 0

    @property
    def enabled(self) -> bool:
        """Whether any fault is injected at all."""
        return bool(
            self.leader_change
            or self.hook_fail
            or self.delay
            or self.remove
            or self.add
            or self.persist
            or self.leader_error
            or self.slow
            or self.burst
            or self.hostile
        ) or bool(self.targeted)

    def __str__(self) -> str:
        if not self.enabled:
            return "none"
        parts = []
        for key, value in (
            ("leader-change", self.leader_change),
            ("hook-fail", self.hook_fail),
            ("delay", self.delay),
            ("remove", self.remove),
            ("add", self.add),
            ("persist", self.persist),
            ("leader-error", self.leader_error),
            ("slow", self.slow),
            ("burst", self.burst),
            ("hostile", self.hostile),
        ):
            if value:
                parts.append(f"{key}={value:g}")
        parts.extend(str(t) for t in self.targeted)
        parts.append(f"window={self.window:g}")
        return ",".join(parts)


ALL = FaultSpec(
    leader_change=0.02,
    hook_fail=0.03,
    delay=0.05,
    remove=1,
    add=1,
    targeted=(TargetedFailure("leader", "*-relation-changed", 1),),
)
"""Every fault class at once (what ``--faults all`` means)."""


CAMPAIGN = FaultSpec(
    leader_change=0.02,
    hook_fail=0.03,
    delay=0.05,
    remove=1,
    add=1,
    targeted=(TargetedFailure("leader", "*-relation-changed", 1),),
    persist=1,
    leader_error=240.0,
    slow=1,
    burst=1,
)
"""Every fault class of the reliability campaign (``--faults campaign``): ``all`` plus a
persistent failure, the leader in error for 4 minutes, a slow unit and a burst."""


def _probability(key: str, value: str) -> float:
    p = float(value)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"--faults: {key} must be a probability in [0, 1], got {value}")
    return p


def _count(key: str, value: str) -> int:
    n = int(value)
    if n < 0:
        raise ValueError(f"--faults: {key} must be >= 0, got {value}")
    return n


def parse_faults(spec: str | None) -> FaultSpec:
    """Parse a ``--faults`` value; raises ValueError with a readable message."""
    if spec is None or spec.strip() in ("", "none"):
        return FaultSpec()
    items = [s.strip() for s in spec.split(",") if s.strip()]
    out = FaultSpec()
    targeted: list[TargetedFailure] = []
    for item in items:
        if item == "all":
            out = dataclasses.replace(ALL, window=out.window)
            targeted.extend(ALL.targeted)
            continue
        if item == "campaign":
            out = dataclasses.replace(CAMPAIGN, window=out.window)
            targeted.extend(CAMPAIGN.targeted)
            continue
        if item == "none":
            continue
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--faults: expected KEY=VALUE, got {item!r}")
        if key == "leader-change":
            out = dataclasses.replace(out, leader_change=_probability(key, value))
        elif key == "hook-fail":
            out = dataclasses.replace(out, hook_fail=_probability(key, value))
        elif key == "delay":
            out = dataclasses.replace(out, delay=_probability(key, value))
        elif key == "remove":
            out = dataclasses.replace(out, remove=_count(key, value))
        elif key == "add":
            out = dataclasses.replace(out, add=_count(key, value))
        elif key == "persist":
            out = dataclasses.replace(out, persist=_count(key, value))
        elif key == "slow":
            out = dataclasses.replace(out, slow=_count(key, value))
        elif key == "burst":
            out = dataclasses.replace(out, burst=_count(key, value))
        elif key == "hostile":
            out = dataclasses.replace(out, hostile=_count(key, value))
        elif key == "leader-error":
            seconds = float(value)
            if seconds < 0:
                raise ValueError("--faults: leader-error must be >= 0 seconds")
            out = dataclasses.replace(out, leader_error=seconds)
        elif key == "window":
            window = float(value)
            if window <= 0:
                raise ValueError("--faults: window must be > 0")
            out = dataclasses.replace(out, window=window)
        elif key == "fail":
            unit, colon, hook = value.partition(":")
            if not colon or not unit or not hook:
                raise ValueError(f"--faults: fail=UNIT:HOOK[*N], got {value!r}")
            count = 1
            if "*" in hook and hook.rsplit("*", 1)[1].isdigit():
                hook, n = hook.rsplit("*", 1)
                count = int(n)
            targeted.append(TargetedFailure(unit, hook, count))
        else:
            raise ValueError(
                f"--faults: unknown fault {key!r} (known: leader-change, hook-fail, fail, "
                "delay, remove, add, persist, leader-error, slow, burst, hostile, window, "
                "all, campaign, none)"
            )
    return dataclasses.replace(out, targeted=tuple(dict.fromkeys(targeted)))
