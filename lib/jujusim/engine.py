"""The discrete-event engine: logical time, hook dispatch and commit, faults.

Each hook has a logical interval ``[start, end]``. The charm code runs at ``start``
(to completion, in wall time) against a view taken then; its buffered writes land at
``end`` when it exits 0. Other units' hooks start and commit in between, so hooks of
different units overlap in logical time; in wall time they execute one at a time, or
several at once for a concurrent runtime without changing the run (see ``_step``).
One ``random.Random(seed)`` drives every choice, so a seed replays the same run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fnmatch
import heapq
import os
import pickle
import random
import tempfile
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from jujusim.agent import HookInfo, LocalRelation, PendingAction, UnitAgent, next_hook
from jujusim.charmspec import CharmSpec
from jujusim.context import HOOK_SECONDS_ENV, HookInvocation, HookOutcome, Runtime
from jujusim.faults import FaultSpec
from jujusim.hookctx import SimHookContext
from jujusim.journal import JOURNAL_ENV, JournalReader, JournalRecord
from jujusim.model import Model, RelationData, unit_number

__all__ = ["HookRecord", "ParallelOrderError", "SimConfig", "Simulator"]

_DISPATCH, _COMMIT, _RETRY, _TICK, _FAULT, _ELECT = range(6)
_EXEC = 17
_UPGRADE = 16
_CALL = 18


@dataclasses.dataclass(frozen=True)
class SimConfig:
    """Knobs of the simulated model; the defaults follow Juju where Juju has a number."""

    seed: int = 0
    leader_sees_own_app_changes: bool = True
    """Juju 3.6 delivers app-level relation-changed to the leader too (juju#20178)."""
    dispatch_delay: tuple[float, float] = (0.01, 0.3)
    hook_duration: tuple[float, float] = (0.5, 3.0)
    update_status_interval: float = 300.0
    retry_min: float = 5.0
    retry_max: float = 300.0
    election_delay: tuple[float, float] = (1.0, 30.0)
    """From a leader's removal until another unit is elected (Juju: lease expiry)."""
    zones: int = 1
    """Availability zones the units are spread over (``JUJU_AVAILABILITY_ZONE``)."""
    workers: int | None = None
    """Hooks executed at once in wall time (never changes the run): None means
    ``os.cpu_count()`` for a runtime that declares ``concurrent = True`` (process), else 1."""


class ParallelOrderError(RuntimeError):
    """A concurrently executed hook asked for a juju-exec the engine had already passed.

    The run is no longer the sequential one; ``run_scenario`` reruns it with one worker.
    """


@dataclasses.dataclass
class HookRecord:
    """One hook or action as it ran: its logical interval, outcome and workload lines."""

    index: int
    unit: str
    hook: HookInfo
    start: float
    end: float = -1.0
    exit_code: int = 0
    ok: bool = False
    error: str = ""
    leader: bool = False
    attempt: int = 0
    tool_calls: int = 0
    journal: list[JournalRecord] = dataclasses.field(default_factory=list)
    depth: int = 0
    """Causal depth (the trigger is 0): one more than the deepest commit that caused
    this hook or whose data it read."""


@dataclasses.dataclass
class _Running:
    hook: HookInfo
    ctx: SimHookContext
    record: HookRecord
    injected: str
    future: Future[HookOutcome] | None = None
    """Set while the hook's code is still executing on a worker thread."""
    journal: JournalReader | None = None


class Simulator:
    """One simulated model running one charm as N units through one runtime."""

    def __init__(
        self,
        charm: CharmSpec,
        runtime: Runtime,
        config: SimConfig | None = None,
        faults: FaultSpec | None = None,
        workdir: str | None = None,
        on_hook: Callable[[HookRecord], None] | None = None,
    ) -> None:
        self.charm = charm
        self.runtime = runtime
        self.config = config or SimConfig()
        self.faults = faults or FaultSpec()
        self.rng = random.Random(self.config.seed)
        self.model = Model(app_name=charm.name, zones=self.config.zones)
        self.model.config = charm.config_defaults()
        self.agents: dict[str, UnitAgent] = {}
        self.records: list[HookRecord] = []
        self.now = 0.0
        self.trigger_time: float | None = None
        self.fault_window: tuple[float, float] | None = None
        self.removed: list[str] = []
        self.added: list[str] = []
        self.leader_changes = 0
        self.logs = 0
        self.upgraded: list[str] = []
        """Units told to upgrade (``upgrade_unit``), in order."""
        self.latest_charm_dir: str | None = None
        self.upgrade_target: str | None = None
        """The new charm directory for upgrade scenarios (CLI ``--upgrade-to``)."""
        self._scheduled_upgrades: dict[str, str] = {}
        self._calls: dict[str, Callable[[], None]] = {}
        self.clock_skew: dict[str, float] = {}
        """Seconds each unit's machine clock is off (the process runtime applies it)."""
        self.operation_seconds = 0.0
        """Logical seconds a workload operation takes: a hook that logs ``begin`` lasts
        this much longer (0: operations take no time of their own). Hooks then run one
        at a time, since a hook's length is known only once it has run."""
        self.execs = 0
        self._execs: dict[str, tuple[str, PendingAction]] = {}
        self._on_hook = on_hook
        self._heap: list[tuple[float, int, int, str]] = []
        self._seq = 0
        self._work = 0
        self._running: dict[str, _Running] = {}
        self._inflight: list[str] = []
        """Units whose hook code is executing on a worker thread, in start order."""
        self._pool: ThreadPoolExecutor | None = None
        self._workers: int | None = None
        self._lock = threading.Lock()
        self._targeted_left = {t: t.count for t in self.faults.targeted}
        self._erroring: dict[str, float] = {}
        self._hook_faults: list[tuple[int, int, str]] = []
        self._fired: set[int] = set()
        self._trigger_hooks = 0
        """Units failing every hook until the given logical time (persist, leader-error)."""
        self._slow: set[str] = set()
        self.hostile: list[str] = []
        """Units whose bag a ``hostile`` fault overwrote (exempt from their own requests)."""
        self.hostile_payloads: list[tuple[str, str]] = []
        self.faults_end: float | None = None
        """When the last fault stopped (window end, or a later persistent failure's end)."""
        self._progress = 0
        self._tmp = None
        if workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="jujusim-")
            workdir = self._tmp.name
        os.makedirs(workdir, exist_ok=True)
        self.workdir = workdir
        self.journal = JournalReader(os.path.join(workdir, "journal.jsonl"))
        for rel_id, endpoint in enumerate(charm.peer_endpoints):
            self.model.relations[rel_id] = RelationData(rel_id, endpoint, charm.name)

    def close(self) -> None:
        """Release the runtime and the scratch directory."""
        self._drain()
        if self._pool is not None:
            self._pool.shutdown()
        self.runtime.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    # the event queue -------------------------------------------------------------

    def _push(self, when: float, kind: int, unit: str) -> None:
        self._seq += 1
        if kind != _TICK:
            self._work += 1
        heapq.heappush(self._heap, (when, self._seq, kind, unit))

    def _wake(self, unit: str) -> None:
        agent = self.agents.get(unit)
        if agent is None or agent.busy or agent.dispatch_scheduled or agent.life == "dead":
            return
        agent.dispatch_scheduled = True
        lo, hi = self.config.dispatch_delay
        self._push(self.now + self.rng.uniform(lo, hi), _DISPATCH, unit)

    def _wake_all(self) -> None:
        for unit in list(self.agents):
            self._wake(unit)

    # model operations (the "juju" commands) ----------------------------------------

    def add_unit(self, depth: int = 0) -> str:
        """``juju add-unit``: a new unit that will install, start and join."""
        name = self.model.new_unit_name()
        self.agents[name] = UnitAgent(name)
        if self.latest_charm_dir is not None:  # the application was refreshed
            self.runtime.upgrade_unit(name, self.latest_charm_dir)  # type: ignore[attr-defined]
            self.agents[name].charm_dir = self.latest_charm_dir
        self.agents[name].note_cause(("install",), depth - 1)
        self.model.alive.append(name)
        interval = self.config.update_status_interval
        self._push(self.now + self.rng.uniform(0.5, 1.5) * interval, _TICK, name)
        self._wake(name)
        return name

    def deploy(self, units: int) -> list[str]:
        """``juju deploy -n units``; the leader is a seeded pick among them."""
        names = [self.add_unit() for _ in range(units)]
        if names:
            self.model.leader = self.rng.choice(names)
        return names

    def remove_unit(self, unit: str, depth: int = 0) -> None:
        """``juju remove-unit``: graceful; departed on both sides, then stop and remove."""
        agent = self.agents[unit]
        if agent.life != "alive":
            return
        agent.life = "dying"
        self.model.alive.remove(unit)
        self.model.dying.append(unit)
        self._progress += 1
        self._wake(unit)

    def upgrade_unit(self, unit: str, charm_dir: str, depth: int = 0) -> None:
        """``juju refresh``, as one unit's agent takes it: new code, then upgrade-charm.

        The unit swaps its charm code when it is next idle (never mid-hook), runs
        ``upgrade-charm`` from the new code, then ``config-changed``, as Juju does. Its
        databags, leader settings and the state files in its charm directory stay. A
        unit in error upgrades once its failed hook succeeds (no ``--force-units``).
        Units added later run the newest charm directory. Needs a runtime with
        ``upgrade_unit(unit, charm_dir)`` (the process runtime).
        """
        swap = getattr(self.runtime, "upgrade_unit", None)
        if not callable(swap):
            raise RuntimeError(f"the {self.runtime.name} runtime cannot upgrade units")
        agent = self.agents[unit]
        if agent.life != "alive":
            return
        self.latest_charm_dir = os.path.abspath(charm_dir)
        agent.upgrade_to = self.latest_charm_dir
        agent.note_cause(("upgrade",), depth)
        self.upgraded.append(unit)
        self._progress += 1
        self._wake(unit)

    def watch(self, fn: Callable[[HookRecord], None]) -> None:
        """Call ``fn`` after every hook commits, after whatever already watched.

        For scenarios that act at the moment they describe ("when the first restart
        ends"); ``fn`` may call the model operations.
        """
        previous = self._on_hook

        def both(rec: HookRecord) -> None:
            if previous is not None:
                previous(rec)
            fn(rec)

        self._on_hook = both

    def call_at(self, at: float, fn: Callable[[], None]) -> None:
        """Call ``fn`` at logical time ``at``, once every running hook has finished.

        For scenarios: an operator's command at a given moment (``juju run`` an action,
        ``juju config``). The run is busy until then.
        """
        self._seq += 1
        key = f"call-{self._seq}"
        self._calls[key] = fn
        self._push(max(at, self.now), _CALL, key)

    def schedule_upgrade(self, unit: str, charm_dir: str, at: float) -> None:
        """Call :meth:`upgrade_unit` at logical time ``at`` (the run is busy until then)."""
        self._scheduled_upgrades[unit] = os.path.abspath(charm_dir)
        self._push(max(at, self.now), _UPGRADE, unit)

    def set_config(self, changes: Mapping[str, Any], depth: int = 0) -> None:
        """``juju config``: every unit gets one (coalesced) config-changed."""
        self.model.config.update(changes)
        self.model.config_version += 1
        self.model.config_depth = depth
        self._progress += 1
        for agent in self.agents.values():
            agent.note_cause(("config",), depth)
        self._wake_all()

    def set_leader(self, unit: str | None, depth: int = 0) -> None:
        """Move leadership (Juju: lease expiry); minions get leader-settings-changed."""
        if unit == self.model.leader:
            return
        self.model.leader = unit
        self.model.leader_settings_version += 1
        self.leader_changes += 1
        self._progress += 1
        for agent in self.agents.values():
            agent.note_cause(("leader",), depth)
            agent.note_cause(("leader-settings",), depth)
        self._wake_all()

    def run_action(self, unit: str, name: str, params: Mapping[str, Any] | None = None) -> None:
        """``juju run unit action``: queued; runs even while the unit is in error."""
        self._seq += 1
        self.agents[unit].actions.append(PendingAction(name, dict(params or {}), str(self._seq)))
        self._wake(unit)

    def mark_trigger(self) -> None:
        """The scenario's trigger happens now; faults are armed for their window.

        Causal depth restarts here: whatever was committed before counts as depth 0.
        """
        self.trigger_time = self.now
        for rel in self.model.relations.values():
            rel.app_depth = 0
            rel.unit_depths = dict.fromkeys(rel.unit_depths, 0)
        self.model.leader_settings_depth = 0
        self.model.config_depth = 0
        for agent in self.agents.values():
            agent.last_depth = 0
            agent.pending_depth.clear()
            for rid, bags in agent.cache.items():
                agent.cache[rid] = {u: (bag, 0) for u, (bag, _) in bags.items()}
        if self.faults.enabled:
            self.fault_window = (self.now, self.now + self.faults.window)
            self.faults_end = self.now + self.faults.window
            timed = (
                ["remove"] * self.faults.remove
                + ["add"] * self.faults.add
                + ["persist"] * self.faults.persist
                + ["leader-error"] * bool(self.faults.leader_error)
                + ["burst"] * self.faults.burst
                + ["hostile"] * self.faults.hostile
            )
            # Each timed fault strikes at a seeded hook of the operation (the k-th hook
            # after the trigger, k up to the ~3N^2 hooks a rolling operation takes), or
            # at a seeded time in the window, whichever comes first: uniform times alone
            # would mostly land after a small model had already finished.
            n = max(len(self.model.alive), 1)
            self._trigger_hooks = len(self.records)
            for fid, what in enumerate(timed):
                k = self.rng.randint(1, 3 * n * n + 3)
                self._hook_faults.append((k, fid, what))
                at = self.now + self.rng.uniform(0, self.faults.window)
                self._push(at, _FAULT, f"{fid}:{what}")
            self._hook_faults.sort()
            alive = sorted(self.model.alive)
            self._slow = set(self.rng.sample(alive, min(self.faults.slow, len(alive))))

    # snapshots: one deployment, many schedules ---------------------------------------

    _NOT_SNAPSHOT = frozenset(
        ("charm", "runtime", "config", "faults", "workdir", "journal", "_tmp", "_pool",
         "_workers", "_lock", "_on_hook")
    )  # fmt: skip
    """What a snapshot leaves out: what the restoring simulator was built with."""

    def snapshot(self) -> bytes:
        """The model, agents, records, clock and RNG state of a quiet simulator.

        A campaign deploys once and runs several fault schedules from the settled
        model (:meth:`restore` into a fresh simulator), as a fuzzer forks from a
        snapshot: a deployment is about a quarter of a schedule's hooks. The runtime's
        state travels alongside (its ``snapshot``); nothing of the faults may have
        started yet.
        """
        if self._running or self._inflight or self._calls or self.trigger_time is not None:
            raise RuntimeError("only a quiet simulator before its trigger can be snapshot")
        state = {k: v for k, v in vars(self).items() if k not in self._NOT_SNAPSHOT}
        journal = self.journal.save()
        return pickle.dumps((state, journal), protocol=pickle.HIGHEST_PROTOCOL)

    def restore(self, blob: bytes) -> None:
        """Become the simulator :meth:`snapshot` saved (config, faults, runtime stay mine).

        The RNG continues where the snapshot's left off; :meth:`reseed` starts a new
        stream for what happens from now on.
        """
        state, journal = pickle.loads(blob)
        vars(self).update(state)
        self.journal.load(journal)

    def reseed(self, seed: int) -> None:
        """Draw every later choice from ``seed`` (after a shared deployment)."""
        self.rng = random.Random(seed)
        self.config = dataclasses.replace(self.config, seed=seed)

    # immediate effects (ImmediateSink) -----------------------------------------------

    def leader_set(self, unit: str, changes: Mapping[str, str]) -> None:
        """``leader-set``: lands now; minions get leader-settings-changed."""
        new = dict(self.model.leader_settings)
        for k, v in changes.items():
            if v == "":
                new.pop(k, None)
            else:
                new[k] = v
        if new == self.model.leader_settings:
            return
        self.model.leader_settings = new
        self.model.leader_settings_version += 1
        self._progress += 1
        running = self._running.get(unit)
        depth = max(running.hook.depth, running.ctx.read_depth + 1) if running else 0
        self.model.leader_settings_depth = depth
        for name, agent in self.agents.items():
            if name != unit:
                agent.note_cause(("leader-settings",), depth)
                self._wake(name)

    def status_set(self, unit: str, status: str, message: str, *, application: bool) -> None:
        """``status-set``: lands now."""
        if application:
            self.model.app_status = (status, message)
        else:
            self.model.unit_status[unit] = (status, message)

    def juju_log(self, unit: str, level: str, message: str) -> None:
        """``juju-log``: counted only (hooks of several units may log at once)."""
        with self._lock:
            self.logs += 1

    # running hooks -------------------------------------------------------------------

    def _in_window(self) -> bool:
        w = self.fault_window
        return w is not None and w[0] <= self.now <= w[1]

    def _fault_step(self) -> None:
        """Leader change may strike at any step, including mid-hook of the leader."""
        p = self.faults.leader_change
        if p and self._in_window() and self.rng.random() < p:
            candidates = [u for u in self.model.alive if u != self.model.leader]
            if candidates:
                self.set_leader(self.rng.choice(candidates))

    def _env(self, unit: str, hook: HookInfo) -> dict[str, str]:
        env = {JOURNAL_ENV: self.journal.path, "JUJUSIM_NOW": repr(self.now)}
        if unit in self.clock_skew:
            env["JUJUSIM_CLOCK_SKEW"] = repr(self.clock_skew[unit])
        if hook.relation_id is not None:
            rel = self.model.relations[hook.relation_id]
            env["JUJU_RELATION"] = rel.endpoint
            env["JUJU_RELATION_ID"] = rel.rid
            env["JUJU_REMOTE_APP"] = self.model.app_name
            env["JUJU_REMOTE_UNIT"] = hook.remote_unit or ""
            if hook.kind == "relation-departed" and hook.departing_unit:
                env["JUJU_DEPARTING_UNIT"] = hook.departing_unit
        if hook.action is not None and hook.action.command is None:
            env["JUJU_ACTION_NAME"] = hook.action.name
            env["JUJU_ACTION_UUID"] = hook.action.id
            env["JUJU_ACTION_TAG"] = f"action-{hook.action.id}"
        return env

    def _injected_failure(self, unit: str, hook: HookInfo) -> str:
        if hook.kind == "action":
            return ""
        if self._erroring.get(unit, -1.0) > self.now:
            return "injected failure (persistent)"
        if not self._in_window():
            return ""
        for target, left in self._targeted_left.items():
            if left <= 0:
                continue
            who = self.model.leader if target.unit == "leader" else target.unit
            if who == unit and fnmatch.fnmatchcase(hook.name, target.hook):
                self._targeted_left[target] = left - 1
                return f"injected failure ({target})"
        if self.faults.hook_fail and self.rng.random() < self.faults.hook_fail:
            return "injected failure (hook-fail)"
        return ""

    def _start(self, agent: UnitAgent, hook: HookInfo) -> None:
        unit = agent.name
        if hook.action is not None and hook.action.command is not None:
            hook = dataclasses.replace(hook, depth=hook.action.depth)
        if hook.relation_id is not None and hook.remote_unit and hook.kind != "relation-created":
            # Juju invalidates its cache of a unit for a hook about that unit.
            agent.cache.get(hook.relation_id, {}).pop(hook.remote_unit, None)
        ctx = SimHookContext(self.model, agent, hook, self, self.charm.charm_dir)
        injected = self._injected_failure(unit, hook)
        record = HookRecord(
            index=len(self.records),
            unit=unit,
            hook=hook,
            start=self.now,
            leader=self.model.leader == unit,
            attempt=agent.attempts if agent.failed is not None else 0,
        )
        self.records.append(record)
        agent.busy = True
        self._running[unit] = _Running(hook, ctx, record, injected)
        invocation = HookInvocation(
            unit=unit,
            kind="hook"
            if hook.action is None
            else ("exec" if hook.action.command is not None else "action"),
            name=hook.name,
            env=self._env(unit, hook),
            action_params=hook.action.params if hook.action is not None else {},
        )
        # The hook's logical length is drawn first: runtimes that can show it to the
        # charm do (see HOOK_SECONDS_ENV), so that a charm reading a clock as it commits
        # sees the time a long hook took, as it would under Juju.
        lo, hi = self.config.hook_duration
        duration = self.rng.uniform(lo, hi)
        if self.faults.delay and self._in_window() and self.rng.random() < self.faults.delay:
            duration += self.rng.uniform(10.0, 120.0)
        if unit in self._slow and self._in_window():
            duration += self.rng.uniform(30.0, 300.0)
        invocation = dataclasses.replace(
            invocation, env={**invocation.env, HOOK_SECONDS_ENV: repr(duration)}
        )
        running = self._running[unit]
        if self._concurrent():
            # The hook's code runs on a worker while the engine goes on starting other
            # units' hooks (see _step for what may run ahead). Its workload lines go to
            # a journal of its own; a leader's hook is waited for at once, because its
            # leader-set lands (and wakes units) at its start.
            path = os.path.join(self.workdir, "journals", f"{record.index}.jsonl")
            running.journal = JournalReader(path)
            invocation = dataclasses.replace(
                invocation, env={**invocation.env, JOURNAL_ENV: path}
            )
            assert self._pool is not None
            running.future = self._pool.submit(self._execute, invocation, ctx)
            self._inflight.append(unit)
            if record.leader:
                self._resolve(unit)
        else:
            self._drain()  # a runtime swapped mid-run may look at other hooks' records
            self._finish(running, self._execute(invocation, ctx))
            if self.operation_seconds and any(x.event == "begin" for x in record.journal):
                duration += self.operation_seconds
        self._push(self.now + duration, _COMMIT, unit)
        self._fault_step()
        self._hook_fault_step()

    def _concurrent(self) -> bool:
        """Whether this hook may execute on a worker: the runtime's class must say so.

        A class attribute, not ``getattr`` on the object: a wrapper that delegates
        attributes (bench scenarios swap runtimes) has not promised thread safety.
        """
        if not getattr(type(self.runtime), "concurrent", False) or self.operation_seconds:
            return False
        if self._workers is None:
            self._workers = max(1, self.config.workers or os.cpu_count() or 1)
        if self._workers > 1 and self._pool is None:
            self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="jujusim-hook")
            os.makedirs(os.path.join(self.workdir, "journals"), exist_ok=True)
        return self._workers > 1

    def _execute(self, invocation: HookInvocation, ctx: SimHookContext) -> HookOutcome:
        try:
            return self.runtime.run(invocation, ctx)
        except Exception as e:  # a runtime bug must not kill the simulation
            return HookOutcome(exit_code=1, stderr=f"runtime error: {e!r}")

    def _resolve(self, unit: str) -> None:
        """Wait for a concurrently executing hook and take in its outcome."""
        self._inflight.remove(unit)
        running = self._running[unit]
        assert running.future is not None and running.journal is not None
        outcome = running.future.result()
        running.future = None
        self._finish(running, outcome)
        with contextlib.suppress(OSError):
            os.unlink(running.journal.path)

    def _drain(self) -> None:
        while self._inflight:
            self._resolve(self._inflight[0])

    def _finish(self, running: _Running, outcome: HookOutcome) -> None:
        """What a hook's execution tells the engine: its outcome, journal and juju-execs."""
        record, ctx, hook = running.record, running.ctx, running.hook
        unit = record.unit
        record.exit_code = outcome.exit_code
        record.tool_calls = outcome.tool_calls or ctx.calls
        record.error = outcome.stderr[-2000:] if outcome.exit_code else ""
        reader = running.journal or self.journal
        record.journal = reader.read_new(unit)
        record.depth = max(hook.depth, ctx.read_depth + 1)
        for request in outcome.execs:  # juju-exec from a process this hook left running
            if record.start + max(0.0, request.delay) < self.now:
                raise ParallelOrderError(
                    f"{unit} {hook.name}: juju-exec due at {record.start + request.delay:.3f}"
                    f" but the engine is at {self.now:.3f}"
                )
            self._execs[request.id] = (
                request.unit,
                PendingAction(
                    "juju-exec",
                    {"command": request.command, "id": request.id},
                    request.id,
                    command=request.command,
                    depth=record.depth + 1,
                ),
            )
            self._push(record.start + max(0.0, request.delay), _EXEC, request.id)
        if record.journal:
            self._progress += 1

    def _dispatch(self, unit: str) -> None:
        agent = self.agents[unit]
        agent.dispatch_scheduled = False
        while True:
            op = next_hook(agent, self.model)
            if op is None:
                return
            if op == "resign":
                agent.leader = False
                agent.leader_settings_version = -1
                continue
            if op == "leave-scope":
                self._leave_scope(agent)
                continue
            assert isinstance(op, HookInfo)
            if op.kind == "upgrade-charm" and agent.charm_dir != agent.upgrade_to:
                assert agent.upgrade_to is not None
                self.runtime.upgrade_unit(unit, agent.upgrade_to)  # type: ignore[attr-defined]
                agent.charm_dir = agent.upgrade_to
            self._start(agent, op)
            return

    def _leave_scope(self, agent: UnitAgent) -> None:
        for rel in self.model.relations.values():
            if agent.name in rel.scope:
                rel.scope.discard(agent.name)
                for name, other in self.agents.items():
                    local = other.relations.get(rel.id)
                    if local is not None and agent.name in local.members:
                        other.note_cause(("scope", rel.id, agent.name), agent.last_depth)
                        self._wake(name)
        self._progress += 1

    def _commit(self, unit: str) -> None:
        agent = self.agents[unit]
        running = self._running.pop(unit)
        agent.busy = False
        hook, ctx, record = running.hook, running.ctx, running.record
        depth = record.depth
        record.end = self.now
        ok = record.exit_code == 0 and not running.injected
        if running.injected:
            record.error = running.injected
        if ok and any(ctx.app_writes.values()) and self.model.leader != unit:
            ok = False
            record.error = "cannot apply changes: not the leader"
        record.ok = ok
        agent.last_depth = depth
        if hook.action is not None:
            if agent.actions and agent.actions[0] == hook.action:
                agent.actions.popleft()
            if ok:
                self._apply(agent, ctx, depth)
        elif ok:
            self._apply(agent, ctx, depth)
            self._advance_local(agent, hook, depth)
            agent.failed = None
            agent.attempts = 0
            agent.retry_ready = False
        else:
            agent.failed = dataclasses.replace(hook, depth=depth)
            agent.attempts += 1
            agent.retry_ready = False
            delay = min(
                self.config.retry_min * 2 ** (agent.attempts - 1), self.config.retry_max
            )
            self._push(self.now + delay, _RETRY, unit)
        if self._on_hook is not None:
            self._on_hook(record)
        self._wake(unit)
        self._fault_step()

    def _apply(self, agent: UnitAgent, ctx: SimHookContext, depth: int) -> None:
        """Commit a successful hook's buffered writes and fan out relation-changed."""
        unit = agent.name
        publish = agent.life == "alive"
        for rid, changes in ctx.unit_writes.items():
            rel = self.model.relations[rid]
            old = rel.unit_bags.get(unit, {})
            new = _apply(old, changes)
            if new == old:
                continue  # an unchanged write fires nothing
            rel.unit_bags[unit] = new
            self.model.note_bag_size(new)
            if not publish:
                continue  # Juju does not publish a departing unit's last writes
            rel.unit_versions[unit] = rel.unit_versions.get(unit, 0) + 1
            rel.unit_depths[unit] = depth
            self._progress += 1
            for name, other in self.agents.items():
                local = other.relations.get(rid)
                if name != unit and local is not None and unit in local.members:
                    other.note_cause(("unit", rid, unit), depth)
                    self._wake(name)
        for rid, changes in ctx.app_writes.items():
            rel = self.model.relations[rid]
            new = _apply(rel.app_bag, changes)
            if new == rel.app_bag:
                continue
            rel.app_bag = new
            self.model.note_bag_size(new)
            previous = rel.app_version
            rel.app_version += 1
            rel.app_depth = depth
            self._progress += 1
            for name, other in self.agents.items():
                if rid not in other.relations or other.life != "alive":
                    continue
                if name == unit and not self.config.leader_sees_own_app_changes:
                    local = other.relations[rid]
                    if (local.app_version or 0) == previous:
                        local.app_version = rel.app_version
                    continue
                other.note_cause(("app", rid), depth)
                self._wake(name)
        if ctx.state_writes:
            state = self.model.charm_state.setdefault(unit, {})
            for k, v in ctx.state_writes.items():
                if v is None:
                    state.pop(k, None)
                else:
                    state[k] = v

    def _advance_local(self, agent: UnitAgent, hook: HookInfo, depth: int) -> None:
        """Record in the agent's local state that ``hook`` ran (Juju's CommitHook)."""
        kind = hook.kind
        rid = hook.relation_id
        if kind == "install":
            agent.installed = True
        elif kind == "relation-created" and rid is not None:
            agent.relations[rid] = LocalRelation()
            rel = self.model.relations[rid]
            if agent.life == "alive":
                rel.enter_scope(agent.name)
                self.model.note_bag_size(rel.unit_bags[agent.name])
                for name, other in self.agents.items():
                    if name != agent.name and rid in other.relations:
                        other.note_cause(("scope", rid, agent.name), depth)
                        self._wake(name)
        elif kind == "leader-elected":
            agent.leader = True
            agent.leader_settings_version = hook.version
        elif kind == "leader-settings-changed":
            agent.leader_settings_version = hook.version
        elif kind == "upgrade-charm":
            if agent.upgrade_to == agent.charm_dir:
                agent.upgrade_to = None
            agent.config_version = -1  # Juju runs config-changed after upgrade-charm
            agent.note_cause(("config",), depth)
        elif kind == "config-changed":
            agent.config_version = hook.version
        elif kind == "start":
            agent.started = True
        elif kind == "update-status":
            agent.update_status_due = False
        elif kind == "stop":
            agent.stopped = True
        elif kind == "remove":
            self._bury(agent)
        elif rid is not None and kind.startswith("relation-"):
            local = agent.relations[rid]
            remote = hook.remote_unit
            if kind == "relation-joined" and remote:
                local.members[remote] = hook.version
                local.changed_pending = remote
            elif kind == "relation-changed" and remote:
                if remote in local.members:
                    local.members[remote] = hook.version
                if local.changed_pending == remote:
                    local.changed_pending = None
            elif kind == "relation-changed":
                local.app_version = hook.version
            elif kind == "relation-departed" and remote:
                local.members.pop(remote, None)
                agent.cache.get(rid, {}).pop(remote, None)
                if local.changed_pending == remote:
                    local.changed_pending = None

    def _bury(self, agent: UnitAgent) -> None:
        agent.life = "dead"
        if agent.name in self.model.dying:
            self.model.dying.remove(agent.name)
        self.removed.append(agent.name)
        self._progress += 1
        forget = getattr(self.runtime, "forget_unit", None)  # optional runtime hook
        if callable(forget):
            forget(agent.name)
        if self.model.leader == agent.name:
            lo, hi = self.config.election_delay
            self._push(self.now + self.rng.uniform(lo, hi), _ELECT, "")

    def _elect(self) -> None:
        if self.model.leader is not None and self.model.leader in self.model.alive:
            return
        if self.model.alive:
            self.set_leader(self.rng.choice(self.model.alive))
        else:
            self.model.leader = None

    def _lock_states(self) -> dict[str, str]:
        """Each unit's standing per its workload journal: waiting, holding or idle."""
        state: dict[str, str] = {}
        for rec in self.records[-400:]:
            for line in rec.journal:
                if line.event == "request":
                    state[line.unit] = "waiting"
                elif line.event in ("granted", "begin"):
                    state[line.unit] = "holding" if rec.end < 0 else "held"
                elif line.event == "release":
                    state[line.unit] = "holding" if rec.end < 0 else "idle"
        return state

    def _hook_fault_step(self) -> None:
        """Fire timed faults whose hook count (since the trigger) has come."""
        done = len(self.records) - self._trigger_hooks
        while self._hook_faults and self._hook_faults[0][0] <= done:
            _, fid, what = self._hook_faults.pop(0)
            if fid not in self._fired and self._in_window():
                self._fault(f"{fid}:{what}")

    def _fault(self, what: str) -> None:
        fid, sep, name = what.partition(":")
        if sep and fid.isdigit():
            if int(fid) in self._fired:
                return
            self._fired.add(int(fid))
            what = name
        if what == "remove":
            if len(self.model.alive) > 1:
                # Aim at the interesting moments: a unit inside its operation (its hook
                # is running), else one waiting for the lock, else anyone.
                states = self._lock_states()
                alive = self.model.alive
                holding = [u for u in alive if states.get(u) == "holding"]
                waiting = [u for u in alive if states.get(u) == "waiting"]
                pool = holding if holding and self.rng.random() < 0.5 else waiting or alive
                self.remove_unit(self.rng.choice(pool or alive))
        elif what == "add":
            self.added.append(self.add_unit())
        elif what in ("persist", "leader-error"):
            unit = self.model.leader if what == "leader-error" else None
            if unit is None and self.model.alive:
                unit = self.rng.choice(self.model.alive)
            if unit is not None:
                lasting = (
                    self.faults.leader_error
                    if what == "leader-error"
                    else self.rng.uniform(60.0, 600.0)
                )
                until = self.now + lasting
                self._erroring[unit] = max(self._erroring.get(unit, 0.0), until)
                self.faults_end = max(self.faults_end or 0.0, until)
        elif what == "burst":
            at = self.now
            for _ in range(self.rng.randint(2, 5)):
                at += self.rng.uniform(0.2, 5.0)
                self._push(at, _FAULT, "token")
        elif what == "token":
            if "restart-token" in self.model.config:
                self.set_config({"restart-token": f"burst-{self.rng.randrange(16**8):08x}"})
        elif what == "hostile":
            self._hostile()

    def _hostile(self) -> None:
        """Overwrite one unit's coordinator key with garbage, as a buggy revision would."""
        from jujusim.hostile import HOSTILE_KEY, PAYLOADS, payload

        alive = [u for u in self.model.alive if u not in self.hostile]
        if len(alive) < 2:
            return
        unit = self.rng.choice(alive)
        other = self.rng.choice([u for u in alive if u != unit])
        name = self.rng.choice(PAYLOADS)
        self.poison(unit, HOSTILE_KEY, payload(name, unit, other), name)

    def poison(self, unit: str, key: str, value: str, label: str = "custom") -> None:
        """Commit ``key=value`` into ``unit``'s bag on every peer relation, now.

        Models a charm revision that wrote garbage and exited 0: the others get
        relation-changed for it. The unit is recorded in :attr:`hostile`.
        """
        if unit not in self.hostile:
            self.hostile.append(unit)
        self.hostile_payloads.append((unit, label))
        for rid, rel in self.model.relations.items():
            if unit not in rel.unit_bags:
                continue
            new = dict(rel.unit_bags[unit])
            new[key] = value
            rel.unit_bags[unit] = new
            rel.unit_versions[unit] = rel.unit_versions.get(unit, 0) + 1
            rel.unit_depths[unit] = 0
            self._progress += 1
            for name, other in self.agents.items():
                local = other.relations.get(rid)
                if name != unit and local is not None and unit in local.members:
                    other.note_cause(("unit", rid, unit), 0)
                    self._wake(name)

    # the main loop -----------------------------------------------------------------

    def step(self) -> bool:
        """Process the next event; False when nothing is left at all."""
        try:
            return self._step()
        finally:
            self._drain()

    def _step(self) -> bool:
        """One event; hooks may still be executing on workers only across some events.

        A hook still executing on a worker reads only its hook-start view
        (``SimHookContext`` snapshots what others may change) and its own unit's state,
        and its outcome is needed only by its own commit. So the engine may run ahead
        across DISPATCH (other units' hook starts), TICK, RETRY and other units' COMMIT
        events; its own COMMIT waits for it, and any other event (a fault, an election,
        a juju-exec, an upgrade, or a kind added later) first waits for every running
        hook, since those may read workload journals or change what hooks see.
        """
        while self._inflight:
            if not self._heap:
                self._drain()
                break
            kind, unit = self._heap[0][2], self._heap[0][3]
            if kind in (_DISPATCH, _TICK, _RETRY):
                break
            if kind != _COMMIT:
                self._drain()
            elif unit in self._inflight:
                self._resolve(unit)  # then look again: its juju-execs may be due first
            else:
                break
        if not self._heap:
            return False
        when, _, kind, unit = heapq.heappop(self._heap)
        if kind != _TICK:
            self._work -= 1
        self.now = max(self.now, when)
        if kind == _DISPATCH:
            self._dispatch(unit)
        elif kind == _COMMIT:
            self._commit(unit)
        elif kind == _RETRY:
            agent = self.agents[unit]
            if agent.failed is not None:
                agent.retry_ready = True
                self._wake(unit)
        elif kind == _TICK:
            agent = self.agents[unit]
            if agent.life != "dead":
                if agent.started:
                    agent.update_status_due = True
                    self._wake(unit)
                self._push(self.now + self.config.update_status_interval, _TICK, unit)
        elif kind == _FAULT:
            self._fault(unit)
        elif kind == _ELECT:
            self._elect()
        elif kind == _EXEC:
            self._exec(unit)
        elif kind == _CALL:
            self._progress += 1
            self._calls.pop(unit)()
        elif kind == _UPGRADE:
            target = self._scheduled_upgrades.pop(unit, None)
            if target is not None and unit in self.agents:
                self.upgrade_unit(unit, target)
        return True

    def _exec(self, request_id: str) -> None:
        """A ``juju-exec`` reaches its unit's agent: it runs like an action, in order."""
        unit, action = self._execs.pop(request_id)
        agent = self.agents.get(unit)
        if agent is None or agent.life == "dead":
            return  # the runtime answers the caller with an error when it closes
        self.execs += 1
        self._progress += 1
        agent.actions.append(action)
        self._wake(unit)

    @property
    def quiet(self) -> bool:
        """No hook running or due, no retry or fault pending (update-status timers aside)."""
        return self._work == 0

    def run_until_quiet(
        self,
        max_hooks: int,
        done: Callable[[], bool] | None = None,
        settle_intervals: float = 2.0,
        max_time: float = 7 * 24 * 3600.0,
    ) -> str:
        """Run until quiet and ``done()``; returns ``quiet``, ``storm`` or ``stalled``.

        When the model is quiet but not done, update-status keeps firing (a charm may
        rely on it as a last resort); if nothing changes for ``settle_intervals``
        update-status intervals, the run has stalled.
        """
        try:
            return self._run_until_quiet(max_hooks, done, settle_intervals, max_time)
        finally:
            self._drain()

    def _run_until_quiet(
        self,
        max_hooks: int,
        done: Callable[[], bool] | None,
        settle_intervals: float,
        max_time: float,
    ) -> str:
        budget_end = len(self.records) + max_hooks
        interval = self.config.update_status_interval
        quiet_since: float | None = None
        marker = -1
        while True:
            if self._work == 0:
                if done is None or done():
                    return "quiet"
                if quiet_since is None or marker != self._progress:
                    quiet_since, marker = self.now, self._progress
                elif self.now - quiet_since > settle_intervals * interval:
                    return "stalled"
            if len(self.records) >= budget_end:
                return "storm"
            if self.now > max_time or not self._step():
                return "stalled"


def _apply(base: Mapping[str, str], changes: Mapping[str, str]) -> dict[str, str]:
    out = dict(base)
    for k, v in changes.items():
        if v == "":
            out.pop(k, None)
        else:
            out[k] = v
    return out


def sort_units(units: list[str]) -> list[str]:
    """Units in numeric order (``app/2`` before ``app/10``), for reports."""
    return sorted(units, key=unit_number)
