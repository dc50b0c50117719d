"""The ``--faults`` spec: which faults to inject, how often, and for how long.

Grammar (documented in docs/simulator.md)::

    none | all | all,<item>,... | <item>[,<item>...]
    item := leader-change=P     probability, at each step (hook start or commit), of
                                moving leadership to another live unit
          | hook-fail=P         probability that a hook fails (exit 1) after its code ran
          | fail=UNIT:HOOK[*N]  fail the first N (default 1) runs of HOOK (a glob) on UNIT
                                (a unit name, or "leader" for whichever unit leads then)
          | delay=P             probability that a hook takes 10-120 s longer (logical)
          | remove=N            remove N units (gracefully) at random times in the window
          | add=N               add N units at random times in the window
          | window=S            faults are active for S logical seconds after the trigger

Faults stop when the window closes; the model must then settle.
"""

from __future__ import annotations

import dataclasses

__all__ = ["ALL", "FaultSpec", "TargetedFailure", "parse_faults"]


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

    @property
    def enabled(self) -> bool:
        """Whether any fault is injected at all."""
        return bool(
            self.leader_change or self.hook_fail or self.delay or self.remove or self.add
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
                "delay, remove, add, window, all, none)"
            )
    return dataclasses.replace(out, targeted=tuple(dict.fromkeys(targeted)))
