"""Per-unit lanes of a run: what the workload was doing when, and which hooks ran.

Shared by the text timeline and the SVG picture so both show the same thing. A unit
is *waiting* from a ``request`` until ``granted`` (or ``begin``), *holding* from
``granted`` until ``release`` (or the end of its operation), and *operating* from
``begin`` to ``end``; a line counts from its hook's start (begin, request, granted)
or end (end, release), the widest the truth could be.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from jujusim.engine import HookRecord
from jujusim.model import unit_number

__all__ = ["Lane", "Span", "build_lanes"]


@dataclasses.dataclass(frozen=True)
class Span:
    """An interval of logical time in one state."""

    state: str
    """``waiting``, ``holding``, ``operating``, or a hook outcome ``hook``/``failed``."""
    start: float
    end: float
    label: str = ""


@dataclasses.dataclass
class Lane:
    """One unit's row."""

    unit: str
    leader_at_end: bool
    work: list[Span]
    hooks: list[Span]


def build_lanes(
    records: Sequence[HookRecord],
    units: Sequence[str],
    since: float,
    until: float,
    leader: str | None,
) -> list[Lane]:
    """Lanes for every unit from ``since`` to ``until`` (hooks ending before are skipped)."""
    lanes = {u: Lane(u, u == leader, [], []) for u in units}
    state: dict[str, dict[str, float]] = {u: {} for u in units}
    for rec in records:
        if rec.end < since and rec.end >= 0:
            continue
        lane = lanes.get(rec.unit)
        if lane is None:
            continue
        end = rec.end if rec.end >= 0 else until
        lane.hooks.append(
            Span("hook" if rec.ok else "failed", max(rec.start, since), end, rec.hook.about)
        )
        for line in rec.journal:
            st = state.setdefault(line.unit, {})
            target = lanes.get(line.unit)
            if target is None:
                continue
            if line.event == "request":
                st.setdefault("waiting", rec.start)
            elif line.event in ("granted", "begin"):
                w = st.pop("waiting", None)
                if w is not None:
                    target.work.append(Span("waiting", w, rec.start))
                st.setdefault("holding", rec.start)
                if line.event == "begin":
                    st.setdefault("operating", rec.start)
            elif line.event == "end":
                o = st.pop("operating", None)
                if o is not None:
                    target.work.append(Span("operating", o, end))
            elif line.event == "release":
                h = st.pop("holding", None)
                if h is not None:
                    target.work.append(Span("holding", h, end))
    for unit, st in state.items():
        lane = lanes.get(unit)
        if lane is None:
            continue
        for name, t in st.items():
            if name == "holding" and "operating" not in st and _ended_holding(lane, t):
                continue
            lane.work.append(Span(name, t, until))
    out = []
    for lane in lanes.values():
        # a hold without an explicit release ends with its operation
        lane.work = _close_holds(lane.work)
        lane.work = [
            dataclasses.replace(s, start=max(s.start, since)) for s in lane.work if s.end >= since
        ]
        out.append(lane)
    out.sort(key=lambda ln: unit_number(ln.unit))
    return out


def _ended_holding(lane: Lane, start: float) -> bool:
    """A hold that began with an operation which has ended (no ``release`` logged)."""
    return any(s.state == "operating" and s.start >= start for s in lane.work)


def _close_holds(spans: list[Span]) -> list[Span]:
    out: list[Span] = []
    for s in spans:
        out.append(s)
    ops = [s for s in spans if s.state == "operating"]
    holds = [s for s in spans if s.state == "holding"]
    for op in ops:
        if not any(h.start <= op.start and h.end >= op.end for h in holds):
            out.append(Span("holding", op.start, op.end))
    out.sort(key=lambda s: (s.start, s.state))
    return out
