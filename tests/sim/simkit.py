"""Helpers for jujusim's own tests: build a simulator on a tiny charm, read what it saw."""

from __future__ import annotations

import json
import pathlib
from collections.abc import Callable
from typing import Any

from jujusim.charmspec import load_charm_spec
from jujusim.context import HookContext, HookInvocation, HookOutcome
from jujusim.engine import HookRecord, SimConfig, Simulator
from jujusim.inprocess import InProcessRuntime

CHARMS = pathlib.Path(__file__).resolve().parent.parent / "charms"
ROOT = CHARMS.parent.parent


class Observed:
    """The observer charm's log: one dict per hook it ran (failed ones included)."""

    def __init__(self, path: pathlib.Path) -> None:
        self.path = path

    def all(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line]

    def of(self, unit: str) -> list[dict[str, Any]]:
        return [r for r in self.all() if r["unit"] == unit]

    def hooks(self, unit: str) -> list[str]:
        return [r["hook"] for r in self.of(unit)]


def observer_sim(
    tmp_path: pathlib.Path,
    monkeypatch: Any,
    units: int,
    *,
    seed: int = 0,
    settle: bool = True,
    **config: Any,
) -> tuple[Simulator, Observed]:
    """A simulator running the observer charm in-process, deployed (and settled)."""
    log = tmp_path / "observer.jsonl"
    monkeypatch.setenv("OBSERVER_LOG", str(log))
    spec = load_charm_spec(str(CHARMS / "observer"))
    sim = Simulator(
        spec,
        InProcessRuntime(spec.charm_dir),
        SimConfig(seed=seed, **config),
        workdir=str(tmp_path),
    )
    sim.deploy(units)
    if settle:
        assert sim.run_until_quiet(10_000) == "quiet"
    return sim, Observed(log)


def hooks_of(sim: Simulator, unit: str, since: float = 0.0) -> list[HookRecord]:
    return [r for r in sim.records if r.unit == unit and r.start >= since]


def names(records: list[HookRecord]) -> list[str]:
    return [r.hook.about for r in records]


def run_until(sim: Simulator, pred: Callable[[], bool], limit: int = 100_000) -> None:
    """Step the simulator until ``pred()`` holds."""
    for _ in range(limit):
        if pred():
            return
        assert sim.step(), "simulation ran out of events"
    raise AssertionError("condition never met")


class FuncRuntime:
    """A runtime whose 'charm' is a Python function of (invocation, ctx): for engine tests."""

    name = "func"

    def __init__(self, fn: Callable[[HookInvocation, HookContext], int]) -> None:
        self.fn = fn

    def run(self, invocation: HookInvocation, ctx: HookContext) -> HookOutcome:
        return HookOutcome(exit_code=self.fn(invocation, ctx))

    def close(self) -> None:
        pass


def func_sim(
    tmp_path: pathlib.Path,
    fn: Callable[[HookInvocation, HookContext], int],
    units: int,
    **config: Any,
) -> Simulator:
    """A simulator whose hooks run ``fn`` (the observer charm's metadata)."""
    spec = load_charm_spec(str(CHARMS / "observer"))
    sim = Simulator(spec, FuncRuntime(fn), SimConfig(**config), workdir=str(tmp_path))
    sim.deploy(units)
    return sim
