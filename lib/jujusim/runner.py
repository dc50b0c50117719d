"""Run one scenario end to end and summarise it with the JSON keys of DESIGN.md."""

from __future__ import annotations

import collections
import dataclasses
import gc
import os
import time
from collections.abc import Callable, Hashable, Mapping
from typing import Any

from jujusim.charmspec import CharmSpec, load_charm_spec
from jujusim.context import Runtime
from jujusim.engine import HookRecord, ParallelOrderError, SimConfig, Simulator
from jujusim.faults import FaultSpec
from jujusim.invariants import Verdict, bounds, check, operations
from jujusim.model import Model
from jujusim.scenarios import SCENARIOS

__all__ = ["DeployCache", "RunResult", "default_max_hooks", "make_runtime", "run_scenario"]


def make_runtime(name: str, charm_dir: str, workdir: str) -> Runtime:
    """Build a runtime by name; ``process`` is imported lazily (another module owns it)."""
    if name == "inprocess":
        from jujusim.inprocess import InProcessRuntime

        return InProcessRuntime(charm_dir, workdir)
    if name == "direct":
        from jujusim.direct import DirectRuntime

        return DirectRuntime(charm_dir, workdir)
    if name == "process":
        try:
            from jujusim import process  # type: ignore[attr-defined, unused-ignore]
        except ImportError as e:
            raise RuntimeError(
                "the process runtime (jujusim/process.py) is not available: "
                f"{e}; use --runtime inprocess"
            ) from e
        runtime: Runtime = process.ProcessRuntime(charm_dir, workdir)
        return runtime
    if name == "fork":
        from jujusim.fork import ForkRuntime

        return ForkRuntime(charm_dir, workdir)
    raise ValueError(f"unknown runtime {name!r} (process, fork, inprocess or direct)")


def default_max_hooks(units: int) -> int:
    """Hook budget per phase before the run is called a hook storm."""
    return 30 * units * units + 300


class DeployCache:
    """Settled deployments to start runs from, keyed by all that shapes a deployment.

    A run given a ``deploy_seed`` deploys with that seed, then draws everything from
    the trigger on from its own ``seed``: runs that share the deploy seed (and units,
    charm config, simulator config, faults and runtime) share the deployment too. The
    first such run deploys and leaves a snapshot here; the others restore it instead
    of running the same deployment hooks again, and run exactly as they would have
    (``tests/sim/test_shared_deploy.py`` checks it). Only the ``size`` most recent
    deployments are kept.
    """

    def __init__(self, size: int = 4) -> None:
        self.size = size
        self._entries: collections.OrderedDict[Hashable, tuple[bytes, bytes]] = (
            collections.OrderedDict()
        )
        self.hits = 0

    def get(self, key: Hashable) -> tuple[bytes, bytes] | None:
        """The (simulator, runtime) snapshots of ``key``'s deployment, if kept."""
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
            self.hits += 1
        return entry

    def put(self, key: Hashable, entry: tuple[bytes, bytes]) -> None:
        """Keep a deployment's snapshots (the oldest goes past ``size``)."""
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)


@dataclasses.dataclass
class RunResult:
    """Everything a run produced: the summary, and the records reports are drawn from."""

    units: int
    runtime: str
    scenario: str
    seed: int
    faults: str
    verdict: Verdict
    hooks: int
    hooks_total: int
    rounds: int
    hook_tool_calls: int
    hook_tool_calls_exact: bool
    databag_bytes_max: int
    wall_s: float
    logical_s: float
    end: str
    failed_hooks: int
    leader_changes: int
    removed_units: list[str]
    added_units: list[str]
    final_leader: str | None
    trigger_time: float
    records: list[HookRecord] = dataclasses.field(repr=False)
    unit_names: list[str] = dataclasses.field(default_factory=list)
    hostile_units: list[str] = dataclasses.field(default_factory=list)
    """Units whose bag a ``hostile`` fault overwrote (exempt from their own requests)."""
    upgraded_units: list[str] = dataclasses.field(default_factory=list)
    model: Model | None = dataclasses.field(default=None, repr=False)
    """The model as the run left it (databags, leader settings), for inspection."""
    deploy_seed: int | None = None
    """The seed the deployment was drawn from, when not ``seed`` (``run --deploy-seed``)."""
    hooks_restored: int = 0
    """Hooks of ``hooks_total`` that a restored deployment brought, not run again."""

    @property
    def completed(self) -> bool:
        """Quiet, and every required operation done."""
        return self.verdict.completed

    @property
    def violations(self) -> list[str]:
        """Invariant violations, as readable strings."""
        return list(self.verdict.violations)

    def to_json(self) -> dict[str, Any]:
        """The ``run --json`` object (keys are a contract: extend, never rename)."""
        ops = [o for o in self.verdict.operations if o.end is not None]
        return {
            "units": self.units,
            "runtime": self.runtime,
            "scenario": self.scenario,
            "seed": self.seed,
            "deploy_seed": self.deploy_seed,
            "faults": self.faults,
            "completed": self.completed,
            "operations": len(ops),
            "max_concurrent": self.verdict.max_concurrent,
            "violations": self.violations,
            "lost_requests": self.verdict.lost_requests,
            "hooks": self.hooks,
            "hooks_total": self.hooks_total,
            "rounds": self.rounds,
            "hook_tool_calls": self.hook_tool_calls,
            "hook_tool_calls_exact": self.hook_tool_calls_exact,
            "databag_bytes_max": self.databag_bytes_max,
            "wall_s": round(self.wall_s, 3),
            "logical_s": round(self.logical_s, 3),
            "end": self.end,
            "failed_hooks": self.failed_hooks,
            "leader_changes": self.leader_changes,
            "removed_units": self.removed_units,
            "added_units": self.added_units,
            "upgraded_units": self.upgraded_units,
            "hostile_units": self.hostile_units,
        }


def run_scenario(
    charm_dir: str,
    *,
    units: int,
    scenario: str = "rolling-restart",
    runtime: str | Runtime = "inprocess",
    seed: int = 0,
    faults: FaultSpec | None = None,
    config: SimConfig | None = None,
    max_hooks: int | None = None,
    workdir: str | None = None,
    progress: Callable[[Simulator, str], None] | None = None,
    spec: CharmSpec | None = None,
    upgrade_to: str | None = None,
    charm_config: Mapping[str, Any] | None = None,
    deploy_seed: int | None = None,
    deploys: DeployCache | None = None,
) -> RunResult:
    """Deploy ``units`` units, settle, trigger ``scenario``, settle, check invariants.

    Hooks may execute concurrently in wall time (``SimConfig.workers``); in the rare
    case that this could not keep the sequential run (a juju-exec due before where
    the engine already was), the run is redone with one worker.
    """
    kwargs: dict[str, Any] = dict(
        units=units, scenario=scenario, seed=seed, faults=faults, max_hooks=max_hooks,
        progress=progress, spec=spec, upgrade_to=upgrade_to, charm_config=charm_config,
        deploy_seed=deploy_seed, deploys=deploys,
    )  # fmt: skip
    # A run allocates many short-lived objects per hook while holding every record:
    # the default gen-0 threshold (700) makes the cyclic GC cost ~15% of an in-process
    # hook. A larger one for the duration of the run, put back after.
    thresholds = gc.get_threshold()
    gc.set_threshold(max(thresholds[0], 20_000), *thresholds[1:])
    try:
        return _run_scenario(
            charm_dir, runtime=runtime, config=config, workdir=workdir, **kwargs
        )
    except ParallelOrderError:
        if not isinstance(runtime, str):
            raise  # a runtime object cannot be rebuilt: the caller must retry
        sequential = dataclasses.replace(config or SimConfig(), workers=1)
        retry_dir = None if workdir is None else os.path.join(workdir, "sequential")
        return _run_scenario(
            charm_dir, runtime=runtime, config=sequential, workdir=retry_dir, **kwargs
        )
    finally:
        gc.set_threshold(*thresholds)


def _run_scenario(
    charm_dir: str,
    *,
    units: int,
    scenario: str = "rolling-restart",
    runtime: str | Runtime = "inprocess",
    seed: int = 0,
    faults: FaultSpec | None = None,
    config: SimConfig | None = None,
    max_hooks: int | None = None,
    workdir: str | None = None,
    progress: Callable[[Simulator, str], None] | None = None,
    spec: CharmSpec | None = None,
    upgrade_to: str | None = None,
    charm_config: Mapping[str, Any] | None = None,
    deploy_seed: int | None = None,
    deploys: DeployCache | None = None,
) -> RunResult:
    """Deploy ``units`` units, settle, trigger ``scenario``, settle, check invariants.

    ``charm_config`` overrides the charm's config defaults from deploy on (``juju
    deploy --config``). With a ``deploy_seed`` other than ``seed``, the deployment is
    drawn from ``deploy_seed`` and the rest of the run from ``seed``; ``deploys`` lets
    runs with one deployment share it (see :class:`DeployCache`).
    """
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r} (known: {', '.join(sorted(SCENARIOS))})")
    if units < 1:
        raise ValueError("--units must be at least 1")
    started = time.perf_counter()
    spec = spec or load_charm_spec(charm_dir)
    first_seed = seed if deploy_seed is None else deploy_seed
    config = dataclasses.replace(config or SimConfig(), seed=first_seed)
    faults = faults or FaultSpec()
    budget = max_hooks or default_max_hooks(units)
    sim_holder: list[Simulator] = []

    def on_hook(rec: HookRecord) -> None:
        if progress is not None and sim_holder:
            progress(sim_holder[0], "run")

    # The runtime gets the simulator's scratch directory; build the simulator first.
    sim = Simulator(spec, _NullRuntime(), config, faults, workdir, on_hook=on_hook)
    sim_holder.append(sim)
    try:
        rt = (
            make_runtime(runtime, spec.charm_dir, sim.workdir)
            if isinstance(runtime, str)
            else runtime
        )
        sim.runtime = rt
        runtime_name = rt.name
        sim.upgrade_target = upgrade_to  # the upgrade scenarios' new charm directory
        if charm_config:
            sim.model.config.update(charm_config)
        end, restored = _deploy(sim, units, budget, deploys)
        deploy_hooks = len(sim.records)
        if first_seed != seed:
            sim.reseed(seed)
        required: list[str] = []
        if end == "quiet":
            sim.mark_trigger()
            required = SCENARIOS[scenario].trigger(sim)
            trigger = sim.trigger_time

            def done() -> bool:
                ops = operations(sim.records, trigger)
                exempt = {*sim.removed, *sim.hostile}
                last_end: dict[str, float] = {}
                for o in ops:
                    if o.end is not None:
                        last_end[o.unit] = max(last_end.get(o.unit, o.end), o.end)
                if not all(u in last_end or u in exempt for u in required):
                    return False
                if any(o.end is None and o.unit not in exempt for o in ops):
                    return False
                # every request logged since the trigger (units added mid-run included)
                # must be followed by an end; until then update-status keeps running
                return not _unserved_requests(sim.records, trigger, last_end, exempt)

            end = sim.run_until_quiet(budget, done)
        else:
            sim.mark_trigger()
        hooks_after = len(sim.records) - deploy_hooks
        verdict = check(
            sim.records,
            since=sim.trigger_time,
            required_units=required,
            removed_units=[*sim.removed, *sim.hostile],
            phase_end=end,
            hooks_run=hooks_after,
        )
        size_and_cost = bounds(
            units_ever=len(sim.agents),
            databag_bytes_max=sim.model.databag_bytes_max,
            hooks=hooks_after,
            operations_done=sum(1 for o in verdict.operations if o.end is not None),
        )
        if size_and_cost and end == "quiet":
            verdict = dataclasses.replace(
                verdict, violations=(*verdict.violations, *size_and_cost)
            )
        if deploy_hooks and not required:
            verdict = dataclasses.replace(
                verdict,
                violations=(*verdict.violations, f"deploy did not settle ({end})"),
                completed=False,
            )
        ended = [o for o in verdict.operations if o.end is not None]
        rounds = max(ended, key=lambda o: o.end or 0.0).end_depth or 0 if ended else 0
        after = sim.records[deploy_hooks:]
        return RunResult(
            units=units,
            runtime=runtime_name,
            scenario=scenario,
            seed=seed,
            faults=str(faults),
            verdict=verdict,
            hooks=hooks_after,
            hooks_total=len(sim.records),
            rounds=rounds,
            hook_tool_calls=sum(r.tool_calls for r in after),
            hook_tool_calls_exact=runtime_name in ("process", "fork"),
            databag_bytes_max=sim.model.databag_bytes_max,
            wall_s=time.perf_counter() - started,
            logical_s=sim.now - (sim.trigger_time or 0.0),
            end=end,
            failed_hooks=sum(1 for r in after if not r.ok and r.hook.action is None),
            leader_changes=sim.leader_changes,
            removed_units=list(sim.removed),
            added_units=list(sim.added),
            final_leader=sim.model.leader,
            trigger_time=sim.trigger_time or 0.0,
            records=sim.records,
            unit_names=list(sim.agents),
            hostile_units=list(sim.hostile),
            upgraded_units=list(sim.upgraded),
            model=sim.model,
            deploy_seed=None if first_seed == seed else first_seed,
            hooks_restored=deploy_hooks if restored else 0,
        )
    finally:
        sim.close()


def _unserved_requests(
    records: list[HookRecord],
    since: float | None,
    last_end: Mapping[str, float],
    exempt: set[str],
) -> bool:
    """Whether some unit logged a request after ``since`` with no end after it."""
    for rec in reversed(records):
        if since is not None and rec.start < since:
            break
        for line in rec.journal:
            if (
                line.event == "request"
                and line.unit not in exempt
                and last_end.get(line.unit, -1.0) < rec.start
            ):
                return True
    return False


def _deploy(
    sim: Simulator,
    units: int,
    budget: int,
    deploys: DeployCache | None,
) -> tuple[str, bool]:
    """Deploy and settle, or restore the same deployment from ``deploys`` (then True)."""
    runtime: Any = sim.runtime
    if deploys is None or not hasattr(runtime, "snapshot"):
        sim.deploy(units)
        return sim.run_until_quiet(budget), False
    key = (
        sim.charm.charm_dir, str(sim.faults), budget, units, sim.config, runtime.name,
        tuple(sorted(sim.model.config.items())),
    )  # fmt: skip
    saved = deploys.get(key)
    if saved is not None:
        sim.restore(saved[0])
        runtime.restore(saved[1])
        return "quiet", True
    sim.deploy(units)
    end = sim.run_until_quiet(budget)
    if end == "quiet":
        deploys.put(key, (sim.snapshot(), runtime.snapshot()))
    return end, False


class _NullRuntime:
    """Placeholder until the real runtime is built in the simulator's workdir."""

    name = "none"

    def run(self, invocation: Any, ctx: Any) -> Any:
        raise RuntimeError("no runtime")

    def close(self) -> None:
        pass
