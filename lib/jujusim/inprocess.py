"""The ``inprocess`` runtime: ops charms through ``ops.testing`` (Scenario), for scale.

Scenario runs one event on one unit against a ``State``. This runtime builds that
State from the simulator's :class:`~jujusim.context.HookContext` (so the reads obey
Juju's caching rules), runs the event, and turns the output State back into buffered
``relation-set``/``status-set`` calls. Each unit's StoredState and deferred events are
carried to its next hook through the context's charm state (``state-set``), so they
are committed only when the hook commits, as ops does with its SQLite file.

Remote units' bags are given to Scenario lazily: a bag is read from the context (and
so enters the agent's cache) only when the charm reads it.

``status-set``, ``juju-log`` and ``application-version-set`` are forwarded to the
context the moment the charm makes them (they are immediate in Juju).

Hook-tool calls are counted as calls into Scenario's model backend, which is where
ops would run a hook tool; ops' own caching is the same in both cases, so the count
is close to, but not exactly, what the ``process`` runtime measures.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import inspect
import json
import logging
import os
import pathlib
import sys
import tempfile
import threading
import traceback
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import yaml

import ops
from jujusim.charmspec import CharmSpec, load_charm_spec
from jujusim.context import HookContext, HookInvocation, HookOutcome, HookToolError
from jujusim.journal import JOURNAL_ENV
from ops import testing

__all__ = ["InProcessRuntime", "load_charm_class"]

_STATE_KEY = "jujusim.inprocess"
_counter = threading.local()
_BACKEND_METHODS = (
    "relation_get",
    "relation_set",
    "relation_ids",
    "relation_list",
    "relation_remote_app_name",
    "is_leader",
    "config_get",
    "status_get",
    "status_set",
    "application_version_set",
    "network_get",
    "action_get",
    "action_set",
    "action_fail",
    "action_log",
    "planned_units",
    "secret_get",
    "secret_set",
    "secret_add",
)


def _install_app_level_fix() -> None:
    """Let app-level relation-changed reach the charm with no remote unit.

    Scenario fills in ``JUJU_REMOTE_UNIT`` with some peer when the event names none;
    Juju exports it empty for app-level changes (``event.unit is None`` in ops).
    """
    from scenario import _runtime

    runtime_cls: Any = _runtime.Runtime
    if getattr(runtime_cls, "_jujusim_app_level", False):
        return
    original = runtime_cls._get_event_env

    def get_event_env(self: Any, state: Any, event: Any, charm_root: Any) -> dict[str, str]:
        env: dict[str, str] = original(self, state, event, charm_root)
        if getattr(_counter, "app_level", False):
            env["JUJU_REMOTE_UNIT"] = ""
        return env

    runtime_cls._get_event_env = get_event_env
    runtime_cls._jujusim_app_level = True
    logging.getLogger("ops-scenario").setLevel(os.getenv("OPS_SCENARIO_LOGGING", "ERROR"))


_ROOT_MARKER = ".jujusim-charm-root"


def _install_fixed_charm_root() -> None:
    """Skip Scenario's per-run temporary charm root when we prepared one ourselves.

    Scenario writes metadata/config/actions YAML into a fresh directory for every
    event; that is most of its per-hook cost. A root we wrote once is reused as is.
    """
    from scenario import _runtime

    runtime_cls: Any = _runtime.Runtime
    if getattr(runtime_cls, "_jujusim_fixed_root", False):
        return
    original = runtime_cls._virtual_charm_root

    @contextlib.contextmanager
    def virtual_charm_root(self: Any) -> Iterator[Any]:
        root = self._charm_root
        if root is not None and os.path.exists(os.path.join(str(root), _ROOT_MARKER)):
            yield pathlib.Path(root)
            return
        with original(self) as path:
            yield path

    runtime_cls._virtual_charm_root = virtual_charm_root
    runtime_cls._jujusim_fixed_root = True


def _install_call_counter() -> None:
    """Count calls into Scenario's mock backend (each is a hook tool under Juju)."""
    from scenario import mocking

    backend: Any = mocking._MockModelBackend
    if getattr(backend, "_jujusim_counted", False):
        return

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def counted(*args: Any, **kwargs: Any) -> Any:
            _counter.n = getattr(_counter, "n", 0) + 1
            return fn(*args, **kwargs)

        return counted

    for name in _BACKEND_METHODS:
        if hasattr(backend, name):
            setattr(backend, name, wrap(getattr(backend, name)))

    # status-set, juju-log and application-version-set are immediate in Juju: forward
    # them to the hook context as they happen, so they stand even if the hook fails.
    status_set = backend.status_set
    juju_log = backend.juju_log
    version_set = backend.application_version_set

    def immediate_status_set(
        self: Any, status: str, message: str = "", *, is_app: bool = False
    ) -> None:
        status_set(self, status, message, is_app=is_app)
        ctx = getattr(_counter, "ctx", None)
        if ctx is not None:
            ctx.status_set(status, message, application=is_app)

    def immediate_juju_log(self: Any, level: str, message: str) -> None:
        juju_log(self, level, message)
        ctx = getattr(_counter, "ctx", None)
        if ctx is not None:
            ctx.juju_log(level, message)

    def immediate_version_set(self: Any, version: str) -> None:
        version_set(self, version)
        ctx = getattr(_counter, "ctx", None)
        if ctx is not None:
            ctx.application_version_set(version)

    backend.status_set = immediate_status_set
    backend.juju_log = immediate_juju_log
    backend.application_version_set = immediate_version_set
    backend._jujusim_counted = True


def _install_goal_state() -> None:
    """Serve ``goal-state`` (``ops.hookcmds.goal_state``) from the hook context.

    Scenario does not mock it: ops runs the ``goal-state`` executable, which is not on
    ``PATH`` here, so a charm would never learn that a unit left the model (the
    library's rule 7). Outside an in-process hook the original ``run`` is called.
    """
    import importlib

    module = importlib.import_module(hookcmds_goal_state_module())
    if getattr(module, "_jujusim_goal_state", False):
        return
    original: Callable[..., Any] = getattr(module, "run")  # noqa: B009

    def run(*args: str, **kwargs: Any) -> str:
        ctx = getattr(_counter, "ctx", None)
        if ctx is not None and args and args[0] == "goal-state":
            _counter.n = getattr(_counter, "n", 0) + 1
            return json.dumps(ctx.goal_state())
        return str(original(*args, **kwargs))

    setattr(module, "run", run)  # noqa: B010 - a module attribute mypy cannot see
    setattr(module, "_jujusim_goal_state", True)  # noqa: B010


def hookcmds_goal_state_module() -> str:
    """The module of ``ops.hookcmds`` that defines ``goal_state`` (and its ``run``)."""
    from ops import hookcmds

    return str(hookcmds.goal_state.__module__)


def load_charm_class(spec: CharmSpec) -> type[ops.CharmBase]:
    """Import the charm's entry file and return the CharmBase subclass it defines."""
    if spec.entry is None:
        raise FileNotFoundError(
            f"{spec.charm_dir}: no ops entry file (charmcraft.yaml charm-entrypoint, "
            "src/charm.py or charm/charm.py); the inprocess runtime needs an ops charm"
        )
    for path in (os.path.join(spec.charm_dir, "lib"), os.path.dirname(spec.entry)):
        if os.path.isdir(path) and path not in sys.path:
            sys.path.insert(0, path)
    mod_name = "_jujusim_charm_" + str(abs(hash(spec.entry)))
    module = sys.modules.get(mod_name)
    if module is None:
        loader_spec = importlib.util.spec_from_file_location(mod_name, spec.entry)
        if loader_spec is None or loader_spec.loader is None:
            raise ImportError(f"cannot import {spec.entry}")
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[mod_name] = module
        try:
            loader_spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[mod_name]
            raise
    candidates = [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj)
        and issubclass(obj, ops.CharmBase)
        and obj is not ops.CharmBase
        and obj.__module__ == mod_name
    ]
    if not candidates:
        raise ImportError(f"{spec.entry}: no ops.CharmBase subclass defined there")
    # The most derived class defined in the module is the charm.
    candidates.sort(key=lambda c: len(c.__mro__), reverse=True)
    return candidates[0]


class _LazyPeers(Mapping[int, dict[str, str]]):
    """``PeerRelation.peers_data`` whose bags are read from the context on first access."""

    def __init__(self, ctx: HookContext, rid: str, app: str, members: list[str]) -> None:
        self._ctx = ctx
        self._rid = rid
        self._app = app
        self._ids = [int(m.rsplit("/", 1)[1]) for m in members]
        self._bags: dict[int, dict[str, str]] = {}

    def __getitem__(self, unit_id: int) -> dict[str, str]:
        bag = self._bags.get(unit_id)
        if bag is None:
            try:
                bag = self._ctx.relation_get(self._rid, f"{self._app}/{unit_id}", app=False)
            except HookToolError:
                raise KeyError(unit_id) from None
            self._bags[unit_id] = bag
        return bag

    def __iter__(self) -> Iterator[int]:
        return iter(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def __deepcopy__(self, memo: dict[int, Any]) -> _LazyPeers:
        return self  # Scenario deep-copies the State; the lazy view is shared, read-only


def _status(name: str, message: str) -> Any:
    from scenario.state import _EntityStatus

    try:
        return _EntityStatus.from_status_name(name, message if name != "unknown" else "")  # type: ignore[arg-type]
    except Exception:
        return _EntityStatus.from_status_name("unknown", "")


def _delta(before: Mapping[str, str], after: Mapping[str, str]) -> dict[str, str]:
    out = {k: v for k, v in after.items() if before.get(k) != v}
    out.update({k: "" for k in before if k not in after})
    return out


class InProcessRuntime:
    """Runs ops charms in this process through ``ops.testing``; implements ``Runtime``."""

    name = "inprocess"

    def __init__(self, charm_dir: str, workdir: str | None = None) -> None:
        self.spec = load_charm_spec(charm_dir)
        self.charm_type = load_charm_class(self.spec)
        self.workdir = workdir
        self._contexts: dict[str, testing.Context[ops.CharmBase]] = {}
        self._saved: dict[str, dict[str, tuple[Any, Any]]] = {}
        self._serial = 0
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="jujusim-inprocess-")
            workdir = self._tmp.name
        self.charm_root = os.path.join(workdir, "charm-root")
        os.makedirs(self.charm_root, exist_ok=True)
        for name, doc in (
            ("metadata.yaml", self.spec.meta),
            ("config.yaml", self.spec.config),
            ("actions.yaml", self.spec.actions),
        ):
            with open(os.path.join(self.charm_root, name), "w", encoding="utf-8") as f:
                yaml.safe_dump(dict(doc), f)
        with open(os.path.join(self.charm_root, _ROOT_MARKER), "w", encoding="utf-8"):
            pass
        _install_fixed_charm_root()
        _install_call_counter()
        _install_goal_state()
        _install_app_level_fix()

    def _context(self, unit: str, app: str) -> testing.Context[ops.CharmBase]:
        context = self._contexts.get(unit)
        if context is None:
            context = testing.Context(
                self.charm_type,
                meta=dict(self.spec.meta),
                config=dict(self.spec.config) or None,
                actions=dict(self.spec.actions) or None,
                app_name=app,
                unit_id=int(unit.rsplit("/", 1)[1]),
                charm_root=self.charm_root,
            )
            self._contexts[unit] = context
        return context

    def _state(self, ctx: HookContext, unit: str) -> tuple[testing.State, str]:
        relations = []
        for endpoint in self.spec.peer_endpoints:
            for rid in ctx.relation_ids(endpoint):
                rel = testing.PeerRelation(
                    endpoint,
                    id=int(rid.rsplit(":", 1)[1]),
                    local_unit_data=ctx.relation_get(rid, unit, app=False),
                    local_app_data=ctx.relation_get(rid, ctx.app_name, app=True),
                )
                members = ctx.relation_list(rid)
                object.__setattr__(
                    rel, "peers_data", _LazyPeers(ctx, rid, ctx.app_name, members)
                )
                relations.append(rel)
        token = ctx.state_get().get(_STATE_KEY, "")
        saved = self._saved.setdefault(unit, {})
        stored, deferred = saved.get(token, ((), ()))
        for old in [t for t in saved if t != token]:
            del saved[old]
        leader = ctx.is_leader()
        unit_status = ctx.status_get(application=False)
        app_status = ctx.status_get(application=True) if leader else {"status": "unknown"}
        state = testing.State(
            leader=leader,
            config=ctx.config_get(),
            relations=relations,
            stored_states=stored,
            deferred=deferred,
            unit_status=_status(unit_status["status"], unit_status.get("message", "")),
            app_status=_status(app_status["status"], app_status.get("message", "")),
            model=testing.Model(name=ctx.model_name, uuid=ctx.model_uuid),
            planned_units=len(ctx.goal_state()["units"]),
        )
        return state, token

    @staticmethod
    def _event(
        invocation: HookInvocation, state: testing.State, context: testing.Context[ops.CharmBase]
    ) -> Any:
        from scenario.state import _Event

        context_on = context.on
        if invocation.kind == "action":
            return context_on.action(invocation.name, params=dict(invocation.action_params))
        env = invocation.env
        name = invocation.name
        rid = env.get("JUJU_RELATION_ID")
        if rid:
            rel_id = int(rid.rsplit(":", 1)[1])
            relation = next(r for r in state.relations if r.id == rel_id)
            remote = env.get("JUJU_REMOTE_UNIT") or ""
            remote_id = int(remote.rsplit("/", 1)[1]) if remote else None
            kind = name[len(relation.endpoint) + 1 :].replace("-", "_")
            if kind == "relation_created":
                return context_on.relation_created(relation)
            if kind == "relation_joined":
                return context_on.relation_joined(relation, remote_unit=remote_id)
            if kind == "relation_changed":
                return context_on.relation_changed(relation, remote_unit=remote_id)
            if kind == "relation_departed":
                departing = env.get("JUJU_DEPARTING_UNIT") or ""
                return context_on.relation_departed(
                    relation,
                    remote_unit=remote_id,
                    departing_unit=int(departing.rsplit("/", 1)[1]) if departing else None,
                )
            if kind == "relation_broken":
                return context_on.relation_broken(relation)
        return _Event(name.replace("-", "_"))

    def run(self, invocation: HookInvocation, ctx: HookContext) -> HookOutcome:
        """Run one hook or action of one unit; writes go to ``ctx``'s buffers."""
        unit = invocation.unit
        context = self._context(unit, ctx.app_name)
        state, _token = self._state(ctx, unit)
        event = self._event(invocation, state, context)
        keys = (JOURNAL_ENV, "SCENARIO_SKIP_CONSISTENCY_CHECKS")
        previous_env = {k: os.environ.get(k) for k in keys}
        journal = invocation.env.get(JOURNAL_ENV)
        if journal:
            os.environ[JOURNAL_ENV] = journal
        os.environ["SCENARIO_SKIP_CONSISTENCY_CHECKS"] = "1"
        _counter.n = 0
        _counter.ctx = ctx
        _counter.app_level = bool(
            invocation.env.get("JUJU_RELATION_ID") and not invocation.env.get("JUJU_REMOTE_UNIT")
        )
        exit_code = 0
        stderr = ""
        out: testing.State | None = None
        try:
            out = context.run(event, state)
        except testing.ActionFailed as e:
            out = e.state
            ctx.action_fail(e.message)
        except Exception as e:
            exit_code = 1
            cause = e.__cause__ or e
            stderr = "".join(traceback.format_exception(cause)[-12:])
        finally:
            _counter.ctx = None
            for k, v in previous_env.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        calls = int(getattr(_counter, "n", 0))
        if out is not None and exit_code == 0:
            self._translate(ctx, unit, state, out, context)
        self._reset(context)
        return HookOutcome(exit_code=exit_code, tool_calls=calls, stderr=stderr)

    def _translate(
        self,
        ctx: HookContext,
        unit: str,
        before: testing.State,
        after: testing.State,
        context: testing.Context[ops.CharmBase],
    ) -> None:
        by_id = {r.id: r for r in before.relations}
        for rel in after.relations:
            old = by_id.get(rel.id)
            if old is None:
                continue
            rid = f"{rel.endpoint}:{rel.id}"
            unit_delta = _delta(old.local_unit_data, rel.local_unit_data)
            if unit_delta:
                ctx.relation_set(rid, unit_delta, app=False)
            app_delta = _delta(old.local_app_data, rel.local_app_data)
            if app_delta:
                ctx.relation_set(rid, app_delta, app=True)
        if context.action_results:
            ctx.action_set({str(k): str(v) for k, v in context.action_results.items()})
        for msg in context.action_logs:
            ctx.action_log(msg)
        stored = after.stored_states
        deferred = after.deferred
        if stored != before.stored_states or list(deferred) != list(before.deferred):
            self._serial += 1
            token = str(self._serial)
            self._saved.setdefault(unit, {})[token] = (stored, deferred)
            ctx.state_set({_STATE_KEY: token})

    @staticmethod
    def _reset(context: testing.Context[ops.CharmBase]) -> None:
        """Contexts are reused per unit; drop what they accumulate across runs."""
        for name in (
            "juju_log",
            "app_status_history",
            "unit_status_history",
            "workload_version_history",
            "emitted_events",
            "requested_storages",
            "removed_secret_revisions",
            "action_logs",
            "trace_data",
        ):
            value = getattr(context, name, None)
            if isinstance(value, (list, dict)):
                value.clear()

    def close(self) -> None:
        """Drop per-unit contexts and the scratch charm root."""
        self._contexts.clear()
        self._saved.clear()
        if self._tmp is not None:
            self._tmp.cleanup()
