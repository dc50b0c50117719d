"""Many seeded schedules of one scenario: the search for a failing interleaving.

Each schedule is an ordinary run with its own seed, unit count and charm config, so
any failing one replays exactly with ``run --seed S --units N --faults SPEC
[--config KEY=VALUE ...]``. Schedules run in a pool of worker processes
(``workers``); each returns a small summary, never its records.

When the charm has the campaign options (``restart-limit``, ``shared-limit``,
``shared-units``, ``clock-skew``, ``restart-order``, ``per-zone``; see
``tests/charms/campaign``), each schedule also draws its lock rule from its seed: limit
1 to 3, exclusive and shared mixed, a per-unit clock skew of up to an hour, an ordering
policy (fifo, priority, leader-last), and zone-aware holding over 1 to 3 zones.
"""

from __future__ import annotations

import dataclasses
import gc
import multiprocessing
import os
import random
import shlex
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from jujusim.charmspec import load_charm_spec
from jujusim.engine import SimConfig
from jujusim.faults import FaultSpec, parse_faults
from jujusim.invariants import hooks_per_operation_bound
from jujusim.runner import DeployCache, run_scenario

__all__ = [
    "CampaignResult",
    "Schedule",
    "ScheduleResult",
    "run_campaign",
    "run_schedule",
    "schedule_plan",
]

UNIT_WEIGHTS = ("uniform", "cost")
"""How unit counts are drawn: ``uniform`` over the range, or ``cost``: weight 1/N², so
every unit count gets about the same compute (a schedule of N units costs ~N² hooks)."""


@dataclasses.dataclass(frozen=True)
class Schedule:
    """One schedule of a campaign: everything needed to replay it."""

    index: int
    seed: int
    units: int
    config: tuple[tuple[str, Any], ...] = ()
    """Charm config overrides (``--config KEY=VALUE``), sorted by key."""
    zones: int = 1
    """Availability zones the units are spread over (``--zones``)."""
    deploy_seed: int | None = None
    """The seed of the deployment, shared with other schedules (``--deploy-seed``)."""

    def config_args(self) -> str:
        """The ``--config``, ``--zones`` and ``--deploy-seed`` options of the replay command."""
        zones = f" --zones {self.zones}" if self.zones != 1 else ""
        deploy = f" --deploy-seed {self.deploy_seed}" if self.deploy_seed is not None else ""
        configs = "".join(f" --config {shlex.quote(f'{k}={v}')}" for k, v in self.config)
        return deploy + zones + configs

    def rule(self) -> str:
        """A short label of the lock rule, for the figures (``limit 2, odd shared``)."""
        cfg = dict(self.config)
        if "restart-limit" not in cfg:
            return "charm default"
        shared = cfg.get("shared-units", "none")
        text = f"limit {cfg['restart-limit']}"
        if shared != "none":
            sl = cfg.get("shared-limit", 0)
            text += f", {shared} shared" + (f" (max {sl})" if sl else "")
        if cfg.get("restart-order", "fifo") != "fifo":
            text += f", {cfg['restart-order']}"
        if cfg.get("per-zone", 0):
            text += f", {cfg['per-zone']} per zone"
        return text


@dataclasses.dataclass(frozen=True)
class ScheduleResult:
    """What one schedule produced, small enough to send back from a worker."""

    schedule: Schedule
    completed: bool
    violations: tuple[str, ...]
    lost_requests: int
    end: str
    hooks: int
    hooks_total: int
    operations: int
    max_concurrent: int
    rounds: int
    databag_bytes_max: int
    failed_hooks: int
    leader_changes: int
    removed: int
    added: int
    hostile: int
    units_ever: int
    wall_s: float
    error: str = ""
    cpu_s: float = 0.0
    """CPU seconds the worker spent on the schedule (``time.process_time``)."""
    hooks_restored: int = 0
    """Hooks of ``hooks_total`` from a restored (shared) deployment, not run again."""

    @property
    def seed(self) -> int:
        """The schedule's seed (what ``run --seed`` takes)."""
        return self.schedule.seed

    @property
    def units(self) -> int:
        """Units deployed at the start."""
        return self.schedule.units

    @property
    def ok(self) -> bool:
        """Completed with no violation."""
        return self.completed and not self.violations and not self.error

    @property
    def hooks_per_op_ratio(self) -> float:
        """Hooks per operation as a fraction of its bound (1.0 = at the bound)."""
        per_op = self.hooks / max(self.operations, 1)
        return per_op / hooks_per_operation_bound(self.units_ever)


@dataclasses.dataclass
class CampaignResult:
    """Totals over all schedules, and the ones that failed."""

    schedules: int
    units: tuple[int, int]
    runtime: str
    scenario: str
    seed: int
    faults: str
    violations: int
    lost_requests: int
    stalled: int
    storms: int
    hooks: int
    wall_s: float
    failing: list[dict[str, Any]]
    max_concurrent: int
    rounds_max: int
    completed: int
    workers: int = 1
    unit_weights: str = "uniform"
    share_deploys: int = 1
    """Schedules per deployment."""
    hooks_total: int = 0
    hooks_restored: int = 0
    """Of ``hooks_total``: hooks of shared deployments, run once and restored after."""
    databag_bytes_max: int = 0
    hooks_per_op_ratio_max: float = 0.0
    failed_hooks: int = 0
    leader_changes: int = 0
    removed_units: int = 0
    added_units: int = 0
    hostile_units: int = 0
    cpu_s: float = 0.0
    """CPU seconds the schedules took in the workers (the parent's own not included)."""
    load_average: tuple[float, float] = (0.0, 0.0)
    """The machine's 1-minute load average when the campaign started and ended."""
    by_units: dict[int, dict[str, int]] = dataclasses.field(default_factory=dict)
    by_rule: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)

    @property
    def hooks_run(self) -> int:
        """Hooks the workers ran (restored deployments' hooks ran once, in another)."""
        return self.hooks_total - self.hooks_restored

    def to_json(self) -> dict[str, Any]:
        """The ``campaign --json`` object (keys are a contract: extend, never rename)."""
        return {
            "schedules": self.schedules,
            "units": list(self.units),
            "runtime": self.runtime,
            "scenario": self.scenario,
            "seed": self.seed,
            "faults": self.faults,
            "completed": self.completed,
            "violations": self.violations,
            "lost_requests": self.lost_requests,
            "stalled": self.stalled,
            "storms": self.storms,
            "hooks": self.hooks,
            "max_concurrent": self.max_concurrent,
            "rounds_max": self.rounds_max,
            "wall_s": round(self.wall_s, 3),
            "failing_seeds": [f["seed"] for f in self.failing],
            "failing": self.failing,
            "workers": self.workers,
            "unit_weights": self.unit_weights,
            "share_deploys": self.share_deploys,
            "hooks_total": self.hooks_total,
            "hooks_per_s": round(self.hooks_run / self.wall_s, 1) if self.wall_s else 0.0,
            "cpu_s": round(self.cpu_s, 1),
            "hooks_restored": self.hooks_restored,
            "hooks_run": self.hooks_run,
            "cpu_ms_per_hook": round(1000 * self.cpu_s / self.hooks_run, 3)
            if self.hooks_run
            else 0.0,
            "load_average": list(self.load_average),
            "databag_bytes_max": self.databag_bytes_max,
            "hooks_per_op_ratio_max": round(self.hooks_per_op_ratio_max, 3),
            "failed_hooks": self.failed_hooks,
            "leader_changes": self.leader_changes,
            "removed_units": self.removed_units,
            "added_units": self.added_units,
            "hostile_units": self.hostile_units,
            "by_units": {str(k): v for k, v in sorted(self.by_units.items())},
            "by_rule": dict(sorted(self.by_rule.items())),
        }


def _draw_units(rng: random.Random, units: tuple[int, int], weights: str) -> int:
    lo, hi = units
    if weights == "cost":
        counts = list(range(lo, hi + 1))
        return rng.choices(counts, weights=[1.0 / (n * n) for n in counts])[0]
    return rng.randint(lo, hi)


def _draw_config(rng: random.Random, options: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    """The lock rule of one schedule, for a charm with the campaign options."""
    out: dict[str, Any] = {}
    if "restart-limit" in options:
        out["restart-limit"] = rng.randint(1, 3)
    if "shared-units" in options:
        out["shared-units"] = rng.choice(("none", "none", "odd", "even", "all"))
    if "shared-limit" in options:
        out["shared-limit"] = rng.choice((0, 1, 2))
    if "clock-skew" in options:
        out["clock-skew"] = rng.choice((0, 0, 30, 3600))
    if "restart-order" in options:
        out["restart-order"] = rng.choice(("fifo", "fifo", "priority", "leader-last"))
    if "per-zone" in options:
        out["per-zone"] = rng.choice((0, 0, 1, 2))
    return tuple(sorted(out.items()))


def schedule_plan(
    seed: int,
    schedules: int,
    units: tuple[int, int],
    *,
    options: Mapping[str, Any] | None = None,
    unit_weights: str = "uniform",
    share_deploys: int = 1,
) -> list[Schedule]:
    """Every schedule of a campaign, derived from the campaign seed alone.

    With ``share_deploys`` k > 1, schedules come in groups of k with one unit count,
    config and deploy seed (one deployment) and a seed each for what follows it.
    """
    if unit_weights not in UNIT_WEIGHTS:
        raise ValueError(f"unit weights must be one of {', '.join(UNIT_WEIGHTS)}")
    if share_deploys < 1:
        raise ValueError(f"--share-deploys must be at least 1, not {share_deploys}")
    rng = random.Random(seed)
    plan: list[Schedule] = []
    while len(plan) < schedules:
        run_seed = rng.randrange(2**31)
        n = _draw_units(rng, units, unit_weights)
        config = _draw_config(rng, options or {})
        zones = rng.randint(1, 3) if dict(config).get("per-zone") else 1
        if share_deploys == 1:
            plan.append(Schedule(len(plan), run_seed, n, config, zones))
            continue
        for _ in range(min(share_deploys, schedules - len(plan))):
            own = rng.randrange(2**31)
            plan.append(Schedule(len(plan), own, n, config, zones, deploy_seed=run_seed))
    return plan


@dataclasses.dataclass(frozen=True)
class _Job:
    charm_dir: str
    scenario: str
    runtime: str
    faults: str
    config: SimConfig
    schedules: tuple[Schedule, ...]
    """Schedules run one after the other in one worker: those of one deployment."""


def _jobs(plan: Sequence[Schedule], **common: Any) -> list[_Job]:
    """One job per deployment: consecutive schedules with one deploy seed go together."""
    groups: list[list[Schedule]] = []
    for s in plan:
        last = groups[-1][-1] if groups else None
        if last is not None and s.deploy_seed is not None and s.deploy_seed == last.deploy_seed:
            groups[-1].append(s)
        else:
            groups.append([s])
    return [_Job(schedules=tuple(g), **common) for g in groups]


def run_schedule(
    charm_dir: str,
    schedule: Schedule,
    *,
    scenario: str = "rolling-restart",
    runtime: str = "inprocess",
    faults: FaultSpec | str | None = None,
    config: SimConfig | None = None,
    deploys: DeployCache | None = None,
) -> ScheduleResult:
    """Run one schedule and summarise it (what each worker does).

    ``deploys`` keeps the schedule's deployment for the next schedule that shares it.
    """
    spec = faults if isinstance(faults, FaultSpec) else parse_faults(faults)
    started = time.perf_counter()
    cpu_started = time.process_time()
    try:
        r = run_scenario(
            charm_dir,
            units=schedule.units,
            scenario=scenario,
            runtime=runtime,
            seed=schedule.seed,
            faults=spec,
            config=dataclasses.replace(config or SimConfig(), zones=schedule.zones),
            charm_config=dict(schedule.config),
            deploy_seed=schedule.deploy_seed,
            deploys=deploys,
        )
    except Exception as e:  # a crash is a finding too: report it with its seed
        return ScheduleResult(
            schedule,
            False,
            (f"crash: {e!r}",),
            0,
            "crash",
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            schedule.units,
            time.perf_counter() - started,
            error=repr(e),
            cpu_s=time.process_time() - cpu_started,
        )
    hostile = getattr(r, "hostile_units", [])
    return ScheduleResult(
        schedule=schedule,
        completed=r.completed,
        violations=tuple(r.violations),
        lost_requests=r.verdict.lost_requests,
        end=r.end,
        hooks=r.hooks,
        hooks_total=r.hooks_total,
        operations=sum(1 for o in r.verdict.operations if o.end is not None),
        max_concurrent=r.verdict.max_concurrent,
        rounds=r.rounds,
        databag_bytes_max=r.databag_bytes_max,
        failed_hooks=r.failed_hooks,
        leader_changes=r.leader_changes,
        removed=len(r.removed_units),
        added=len(r.added_units),
        hostile=len(hostile),
        units_ever=len(r.unit_names),
        wall_s=r.wall_s,
        cpu_s=time.process_time() - cpu_started,
        hooks_restored=r.hooks_restored,
    )


def _work(job: _Job) -> list[ScheduleResult]:
    deploys = DeployCache(size=1)
    return [
        run_schedule(
            job.charm_dir,
            schedule,
            scenario=job.scenario,
            runtime=job.runtime,
            faults=job.faults,
            config=job.config,
            deploys=deploys,
        )
        for schedule in job.schedules
    ]


def _results(jobs: Sequence[_Job], workers: int) -> Iterator[ScheduleResult]:
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            yield from _work(job)
        return
    per_job = max(1, max(len(j.schedules) for j in jobs))
    # fork keeps the parent's imports (ops, the charm) warm; each worker runs whole
    # schedules, so nothing but the small summaries crosses processes.
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    ctx = multiprocessing.get_context(method)
    if method == "fork":
        _warm(jobs[0])
    try:
        # Workers are replaced now and then: what a charm's modules keep from one
        # dispatch to the next (nothing, under Juju) cannot pile up for a whole campaign.
        tasks = max(1, 100 // per_job)
        with ctx.Pool(workers, maxtasksperchild=tasks) as pool:
            for results in pool.imap_unordered(_work, jobs, chunksize=max(1, 4 // per_job)):
                yield from results
    finally:
        gc.unfreeze()  # replacement workers fork from this process until the pool ends


def _warm(job: _Job) -> None:
    """Before forking the workers: import and set up what every schedule needs.

    Otherwise each worker imports ops, the charm and its libraries itself (~0.5 s) and
    builds its own charm setup. Everything alive then is frozen out of the cyclic GC
    (``gc.freeze``, until the pool ends): workers never scan those objects, nor copy the
    pages they live in by touching their GC headers.
    """
    from jujusim import runner  # noqa: F401  (the engine, invariants, scenarios)

    if job.runtime == "direct":
        from jujusim.direct import prepare

        prepare(job.charm_dir)
    elif job.runtime == "inprocess":
        from jujusim.inprocess import load_charm_class

        load_charm_class(load_charm_spec(job.charm_dir))
    gc.collect()
    gc.freeze()


def default_workers() -> int:
    """One worker per CPU this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def run_campaign(
    charm_dir: str,
    *,
    schedules: int,
    units: tuple[int, int] = (2, 5),
    scenario: str = "rolling-restart",
    runtime: str = "inprocess",
    seed: int = 0,
    faults: FaultSpec | None = None,
    config: SimConfig | None = None,
    on_schedule: Callable[[int, ScheduleResult], None] | None = None,
    workers: int = 1,
    unit_weights: str = "uniform",
    share_deploys: int = 1,
) -> CampaignResult:
    """Run ``schedules`` seeded runs (in ``workers`` processes) and add them up.

    ``share_deploys``: schedules per deployment (see :func:`schedule_plan`).
    """
    started = time.perf_counter()
    load_started = _load_average()
    faults = faults or FaultSpec()
    spec = load_charm_spec(charm_dir)
    options = spec.config.get("options") or {}
    plan = schedule_plan(
        seed,
        schedules,
        units,
        options=options,
        unit_weights=unit_weights,
        share_deploys=share_deploys,
    )
    jobs = _jobs(
        plan,
        charm_dir=charm_dir,
        scenario=scenario,
        runtime=runtime,
        faults=str(faults),
        config=config or SimConfig(),
    )
    out = CampaignResult(
        schedules=schedules,
        units=units,
        runtime=runtime,
        scenario=scenario,
        seed=seed,
        faults=str(faults),
        violations=0,
        lost_requests=0,
        stalled=0,
        storms=0,
        hooks=0,
        wall_s=0.0,
        failing=[],
        max_concurrent=0,
        rounds_max=0,
        completed=0,
        workers=workers,
        unit_weights=unit_weights,
        share_deploys=share_deploys,
    )
    for done, result in enumerate(_results(jobs, workers)):
        _add(out, result, charm_dir, scenario, runtime, faults)
        if on_schedule is not None:
            on_schedule(done, result)
    out.failing.sort(key=lambda f: f["index"])
    out.wall_s = time.perf_counter() - started
    out.load_average = (load_started, _load_average())
    return out


def _load_average() -> float:
    """The 1-minute load average (0.0 where the OS has none): how busy the machine was."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:  # pragma: no cover - not Unix
        return 0.0


def _add(
    out: CampaignResult,
    r: ScheduleResult,
    charm_dir: str,
    scenario: str,
    runtime: str,
    faults: FaultSpec,
) -> None:
    out.violations += len(r.violations)
    out.lost_requests += r.lost_requests
    out.stalled += r.end == "stalled"
    out.storms += r.end == "storm"
    out.hooks += r.hooks
    out.hooks_total += r.hooks_total
    out.hooks_restored += r.hooks_restored
    out.cpu_s += r.cpu_s
    out.max_concurrent = max(out.max_concurrent, r.max_concurrent)
    out.rounds_max = max(out.rounds_max, r.rounds)
    out.completed += r.completed
    out.databag_bytes_max = max(out.databag_bytes_max, r.databag_bytes_max)
    out.hooks_per_op_ratio_max = max(out.hooks_per_op_ratio_max, r.hooks_per_op_ratio)
    out.failed_hooks += r.failed_hooks
    out.leader_changes += r.leader_changes
    out.removed_units += r.removed
    out.added_units += r.added
    out.hostile_units += r.hostile
    for row in (
        out.by_units.setdefault(r.units, {"schedules": 0, "failing": 0, "hooks": 0}),
        out.by_rule.setdefault(r.schedule.rule(), {"schedules": 0, "failing": 0, "hooks": 0}),
    ):
        row["schedules"] += 1
        row["failing"] += not r.ok
        row["hooks"] += r.hooks_total
    if not r.ok:
        s = r.schedule
        out.failing.append(
            {
                "seed": s.seed,
                "deploy_seed": s.deploy_seed,
                "units": s.units,
                "index": s.index,
                "config": dict(s.config),
                "end": r.end,
                "violations": list(r.violations),
                "replay": f"python -m jujusim run {shlex.quote(charm_dir)} --units {s.units} "
                f"--scenario {scenario} --runtime {runtime} --seed {s.seed} "
                f"--faults {shlex.quote(str(faults))}{s.config_args()}",
            }
        )
