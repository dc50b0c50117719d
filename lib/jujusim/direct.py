"""The ``direct`` runtime: ops charms run by ops' own ``main`` machinery, in this process.

This is what ``dispatch`` does under Juju, minus the process: a real
:class:`ops._main._Manager` (real ``Framework``, real ``CharmBase`` and ``Model``,
real event emission, deferral and collect-status), with ops' real ``_ModelBackend``.
Only the last step differs: where ops would spawn a hook-tool process
(``ops.hookcmds``' ``run``), the argv goes straight to the simulator's hook-tool
implementation (:func:`jujusim.hooktools.call_tool`), the same code that serves the
``process`` runtime's tool executables. So ops builds the same argv and parses the
same output as under Juju, the same error text reaches the charm, and the tool-call
count is the process runtime's.

Why it exists: Scenario (the ``inprocess`` runtime) spends 3-4 ms a hook on
consistency checks, state conversion and deep copies; this runtime is several times
faster, which is what 100-unit runs and 10,000-schedule campaigns need.

ops' SQLite state file is replaced by an in-memory store with the same API
(pickled snapshots, notices in order). A unit's store is carried to its next hook
through the context's charm state (``state-set``), so it is committed only when the
engine commits the hook, as the ``inprocess`` runtime does.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
import os
import pathlib
import pickle
import sys
import tempfile
import threading
import time
import traceback
import warnings
import weakref
from collections.abc import Callable, Generator, Mapping
from typing import Any

import yaml
from ops.jujucontext import JujuContext

import ops
from ops import _main, hookcmds
from ops import log as _ops_log
from ops import storage as ops_storage

from .charmspec import CharmSpec, charm_stamp, load_charm_spec
from .context import HOOK_SECONDS_ENV, HookContext, HookInvocation, HookOutcome
from .hooktools import ToolSession, call_tool
from .inprocess import load_charm_class

__all__ = ["DirectRuntime", "prepare"]

JUJU_VERSION = "3.6.8"
_STATE_KEY = "jujusim.direct"
_HOOKCMD_MODULES = (
    "_action", "_other", "_port", "_relation", "_secret", "_state", "_status", "_storage",
)  # fmt: skip
_current = threading.local()


def _install_hookcmd_dispatch() -> None:
    """Route ``ops.hookcmds``' subprocess calls to the simulator while a hook runs here.

    Outside a direct-runtime hook (no session on this thread) the original ``run`` is
    called, so anything else using ops in this process is unaffected.
    """
    import importlib

    if getattr(hookcmds, "_jujusim_direct", False):
        return
    for name in _HOOKCMD_MODULES:
        module = importlib.import_module(f"ops.hookcmds.{name}")
        original = getattr(module, "run", None)
        if original is None:
            continue
        module.__dict__["run"] = _dispatcher(original)
    hookcmds._jujusim_direct = True  # type: ignore[attr-defined]


def _dispatcher(original: Callable[..., str]) -> Callable[..., str]:
    def run(*args: str, input: str | None = None, redacted_cmd: Any = None) -> str:
        session: ToolSession | None = getattr(_current, "session", None)
        if session is None:
            return original(*args, input=input, redacted_cmd=redacted_cmd)
        result = call_tool(session, args[0], args[1:], stdin=input or "", cwd=_current.cwd)
        if result.code != 0:
            cmd = list(redacted_cmd) if redacted_cmd is not None else list(args)
            raise hookcmds.Error(
                returncode=result.code, cmd=cmd, stdout=result.stdout, stderr=result.stderr
            )
        return result.stdout

    return run


class _HookClock:
    """``time.monotonic`` as a long hook's charm code sees it, in-process.

    Under Juju a hook that lasts five minutes is charm code running for five minutes,
    so a clock read as the hook commits is five minutes on from one read as it started:
    that is what a leader's lease check (trap 5 of DESIGN.md) relies on. Here the
    charm's code runs at the hook's logical start and the engine commits it
    ``JUJUSIM_HOOK_SECONDS`` later, so while ops commits (``Framework.commit``, where
    pre-commit handlers write) ``time.monotonic`` is ahead by that much. Before and
    after a dispatch it is the real clock.
    """

    def __init__(self) -> None:
        self.real = time.monotonic
        self.length = 0.0
        self.committing = False
        self.installed = False

    def install(self) -> None:
        if self.installed:
            return
        self.installed = True
        clock = self
        commit = ops.Framework.commit

        def monotonic() -> float:
            return clock.real() + (clock.length if clock.committing else 0.0)

        def framework_commit(framework: ops.Framework) -> None:
            clock.committing = True
            try:
                commit(framework)
            finally:
                clock.committing = False

        time.monotonic = monotonic
        ops.Framework.commit = framework_commit  # type: ignore[method-assign,assignment]

    def start(self, length: float) -> None:
        self.install()
        self.length = length

    def stop(self) -> None:
        self.length = 0.0
        self.committing = False


_HOOK_CLOCK = _HookClock()


def _install_fast_paths() -> None:
    """Take two fixed costs out of every dispatch without changing what ops does.

    - ``Framework.observe`` validates each observer with ``inspect.signature`` and
      ``Signature.bind(EventBase(None))``, about a third of a dispatch here. A given
      function's signature never changes, so it is memoised per function, and so is a
      successful ``bind`` of the same shape (number of positional arguments, keyword
      names: all ``bind`` looks at); a failing one runs, and raises, every time.
    - Every hook command and event opens an OpenTelemetry span. Without ``ops[tracing]``
      and with no tracer provider configured, those spans are non-recording no-ops;
      a cheaper no-op that yields the same invalid span replaces the tracer then.
    """
    import inspect
    import types

    from ops import framework

    if getattr(framework, "_jujusim_fast", False):
        return

    signatures: dict[tuple[Any, bool], _CheckedSignature] = {}

    def signature(obj: Any, *, follow_wrapped: bool = True) -> Any:
        func = getattr(obj, "__func__", None)
        if func is None or follow_wrapped:
            return inspect.signature(obj, follow_wrapped=follow_wrapped)
        key = (func, True)
        sig = signatures.get(key)
        if sig is None:
            sig = signatures[key] = _CheckedSignature(inspect.signature(obj, follow_wrapped=False))
        return sig

    class _Inspect(types.ModuleType):
        def __getattr__(self, name: str) -> Any:
            return getattr(inspect, name)

    shim = _Inspect("inspect")
    shim.signature = signature  # type: ignore[attr-defined]
    framework.inspect = shim  # type: ignore[attr-defined]

    import opentelemetry.trace as otel

    from ops import _main as ops_main
    from ops import model as ops_model
    from ops import storage as ops_storage_mod

    provider = otel.get_tracer_provider()
    if ops.tracing is None and type(provider).__name__ in (
        "ProxyTracerProvider",
        "NoOpTracerProvider",
    ):
        noop = _NoOpTracer(otel.INVALID_SPAN)
        for module in (ops_main, framework, ops_model, ops_storage_mod):
            if hasattr(module, "tracer"):
                module.tracer = noop  # type: ignore[attr-defined]
    framework._jujusim_fast = True  # type: ignore[attr-defined]


class _CheckedSignature:
    """An ``inspect.Signature`` whose successful ``bind`` shapes are remembered.

    ``bind`` only matches arguments to parameters by position and keyword, so once a
    call of a given shape has bound, every call of that shape binds. Only
    ``Framework.observe`` calls it, and discards the result: this returns None rather
    than arguments bound to another call's objects.
    """

    def __init__(self, sig: Any) -> None:
        self._sig = sig
        self._bound: set[tuple[int, tuple[str, ...]]] = set()

    def bind(self, *args: Any, **kwargs: Any) -> None:
        """``Signature.bind``, raising ``TypeError`` alike; a shape bound before is not again."""
        shape = (len(args), tuple(kwargs))
        if shape not in self._bound:
            self._sig.bind(*args, **kwargs)
            self._bound.add(shape)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sig, name)


class _NoOpTracer:
    """What ops needs of a tracer when nothing records: a span that is never recording."""

    def __init__(self, span: Any) -> None:
        self._span = span
        self._context = contextlib.nullcontext(span)  # stateless: one serves every use

    def start_as_current_span(self, *args: Any, **kwargs: Any) -> Any:
        """A context manager yielding the invalid (non-recording) span."""
        return self._context

    def start_span(self, *args: Any, **kwargs: Any) -> Any:
        """The invalid (non-recording) span."""
        return self._span


@dataclasses.dataclass
class _UnitStore:
    """One unit's ops storage as committed: pickled snapshots and pending notices."""

    snapshots: dict[str, bytes] = dataclasses.field(default_factory=dict)
    notices: list[tuple[str, str, str]] = dataclasses.field(default_factory=list)


class _MemoryStorage:
    """ops' storage API (as ``SQLiteStorage``) over a copy of a unit's committed store.

    Snapshots are pickled as SQLiteStorage pickles them, so what a charm may store is
    what it may store under Juju.
    """

    def __init__(self, base: _UnitStore) -> None:
        self.snapshots = dict(base.snapshots)
        self.notices_list = list(base.notices)
        self.committed: _UnitStore | None = None

    def close(self) -> None:
        """Nothing to release."""

    def commit(self) -> None:
        """What ops commits at the end of a successful dispatch."""
        self.committed = _UnitStore(dict(self.snapshots), list(self.notices_list))

    def save_snapshot(self, handle_path: str, snapshot_data: Any) -> None:
        """Persist (pickled) under ``handle_path``."""
        self.snapshots[handle_path] = pickle.dumps(snapshot_data)

    def load_snapshot(self, handle_path: str) -> Any:
        """Unpickle; ``NoSnapshotError`` when absent, as SQLiteStorage."""
        raw = self.snapshots.get(handle_path)
        if raw is None:
            raise ops_storage.NoSnapshotError(handle_path)
        return pickle.loads(raw)

    def drop_snapshot(self, handle_path: str) -> None:
        """Dropping an absent snapshot is a no-op."""
        self.snapshots.pop(handle_path, None)

    def list_snapshots(self) -> Generator[str, None, None]:
        """Handles of all saved snapshots."""
        yield from list(self.snapshots)

    def save_notice(self, event_path: str, observer_path: str, method_name: str) -> None:
        """Record a notice (appended, like SQLite's autoincrement sequence)."""
        self.notices_list.append((event_path, observer_path, method_name))

    def drop_notice(self, event_path: str, observer_path: str, method_name: str) -> None:
        """Remove every matching notice, as SQLite's DELETE does."""
        key = (event_path, observer_path, method_name)
        self.notices_list = [n for n in self.notices_list if n != key]

    def notices(
        self, event_path: str | None = None
    ) -> Generator[tuple[str, str, str], None, None]:
        """Notices in order, optionally only those of ``event_path``."""
        for notice in list(self.notices_list):
            if not event_path or notice[0] == event_path:
                yield notice


class _Manager(_main._Manager):
    """ops' dispatch manager with the charm metadata parsed once and memory storage."""

    def __init__(
        self,
        charm_class: type[ops.CharmBase],
        juju_context: JujuContext,
        meta: ops.CharmMeta,
        store: _MemoryStorage,
        fresh: bool,
    ) -> None:
        self._jujusim_meta = meta
        self._jujusim_store = store
        self._jujusim_fresh = fresh
        super().__init__(charm_class, juju_context=juju_context)

    def _load_charm_meta(self) -> ops.CharmMeta:
        return self._jujusim_meta

    def _make_storage(self, dispatcher: Any) -> Any:
        # As ops: the first dispatch of a unit (no state file yet) logs why it picked
        # local storage; that is a juju-log call under Juju too.
        if self._jujusim_fresh:
            _main.logger.debug("Using local storage: not a Kubernetes podspec charm")
        return self._jujusim_store


def _wrap(charm_type: type[ops.CharmBase]) -> type[ops.CharmBase]:
    """A fresh subclass per dispatch: ops defines relation events on the class.

    Under Juju each dispatch is a new process; reusing one class here would make
    ``define_event`` see the previous dispatch's events (Scenario does the same).
    """
    events_type = type(charm_type.on)
    wrapped_events = type(
        events_type.__name__, (events_type,), {"__module__": events_type.__module__}
    )
    wrapped = type(
        charm_type.__name__,
        (charm_type,),
        {"on": wrapped_events(), "__module__": charm_type.__module__},
    )
    wrapped.__qualname__ = charm_type.__qualname__
    return wrapped


class _Wrapper:
    """A :func:`_wrap` subclass pair kept for reuse, put back as new after each dispatch.

    Creating two classes per dispatch cost ~70 us (and as much again in the cyclic GC).
    What a dispatch changes on them is what ``define_event`` (and charm code) adds to
    their ``__dict__``; :meth:`reset` deletes every key added since creation and gives
    the class a new ``on`` (whose cache of bound events starts empty), so the next
    dispatch sees the classes as :func:`_wrap` made them.
    """

    def __init__(self, charm_type: type[ops.CharmBase]) -> None:
        self.cls = _wrap(charm_type)
        self.events_cls = type(self.cls.on)
        self._keys = frozenset(vars(self.cls))
        self._event_keys = frozenset(vars(self.events_cls))
        self.busy = False

    def reset(self) -> None:
        """Back to as created, with a new ``on``."""
        for cls, keys in ((self.events_cls, self._event_keys), (self.cls, self._keys)):
            for key in [k for k in vars(cls) if k not in keys]:
                delattr(cls, key)
        self.cls.on = self.events_cls()


_wrappers: dict[type[ops.CharmBase], list[_Wrapper]] = {}
_WRAPPED: weakref.WeakSet[type] = weakref.WeakSet()
"""Classes made by :class:`_Wrapper` (their own ``on`` changes every dispatch)."""


def _take_wrapper(charm_type: type[ops.CharmBase]) -> _Wrapper:
    """A free wrapper of ``charm_type`` (a dispatch nested in another gets its own)."""
    pool = _wrappers.setdefault(charm_type, [])
    for wrapper in pool:
        if not wrapper.busy:
            break
    else:
        wrapper = _Wrapper(charm_type)
        _WRAPPED.add(wrapper.cls)
        pool.append(wrapper)
    wrapper.busy = True
    return wrapper


@dataclasses.dataclass(frozen=True)
class _CharmSetup:
    """What every direct runtime of one charm directory starts from."""

    spec: CharmSpec
    charm_type: type[ops.CharmBase]
    meta: ops.CharmMeta
    files: tuple[tuple[str, str], ...]
    """The YAML files of the scratch charm root: (name, text)."""


_setups: dict[str, tuple[tuple[Any, ...], _CharmSetup]] = {}


def _charm_setup(charm_dir: str) -> _CharmSetup:
    """Spec, charm class, parsed ``CharmMeta`` and the scratch root's YAML of a charm.

    Built once per directory and kept while its YAML files are unchanged (the stat
    ``load_charm_spec`` keys on): a campaign builds a runtime per schedule, and parsing
    and dumping the YAML cost ~25 ms each time. Every runtime already shared one
    ``CharmMeta`` across its hooks (ops treats it as read-only); the charm class was
    already imported once per process.
    """
    charm_dir = os.path.abspath(charm_dir)
    stamp = charm_stamp(charm_dir)
    hit = _setups.get(charm_dir)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    spec = load_charm_spec(charm_dir)
    files = tuple(
        (name, yaml.safe_dump(dict(doc)))
        for name, doc in (
            ("metadata.yaml", spec.meta),
            ("config.yaml", spec.config),
            ("actions.yaml", spec.actions),
        )
    )
    setup = _CharmSetup(
        spec=spec,
        charm_type=load_charm_class(spec),
        meta=ops.CharmMeta(dict(spec.meta), dict(spec.actions), dict(spec.config)),
        files=files,
    )
    _setups[charm_dir] = (stamp, setup)
    return setup


_EVENT_ATTRS: dict[type, tuple[Any, ...]] = {}
"""Per class: the ``ObjectEvents`` in its own ``__dict__`` (wrapper classes excluded)."""


def _own_events(cls: type) -> tuple[Any, ...]:
    attrs = _EVENT_ATTRS.get(cls)
    if attrs is None:
        attrs = tuple(v for v in vars(cls).values() if isinstance(v, ops.ObjectEvents))
        if cls not in _WRAPPED:
            _EVENT_ATTRS[cls] = attrs
    return attrs


def _release_dispatch(manager: _Manager) -> None:
    """Let go of everything ops built for one dispatch, so reference counting frees it.

    Under Juju the dispatch process exits here; in this process two things would keep
    the dispatch's objects for the cyclic GC, whose collections also scan everything
    young still alive (~13% of a campaign's CPU):

    - ``on = SomeEvents()`` on a class (ops' own ``Framework.on``, a library's
      ``Object``) keeps a bound copy per emitter in a ``WeakKeyDictionary`` whose value
      refers back to its emitter, so the entry never goes (every framework, charm and
      model of every hook would stay). The emitters are the framework and the
      ``Object``s it tracks (ops tracks each at creation): their entries are dropped.
    - The framework, its model and backend, the charm and every tracked ``Object``
      refer to one another (~140 objects a hook). No code can use them after the
      dispatch, so their attributes are dropped.

    Anything else a charm's modules keep across dispatches stays, as it did.
    """
    framework = manager.framework
    objects = getattr(framework, "_objects", None)
    emitters = [framework, *(objects.values() if objects is not None else ())]
    for obj in emitters:
        for cls in type(obj).__mro__:
            for events in _own_events(cls):
                cache = getattr(events, "_cache", None)
                if cache is not None:
                    cache.pop(obj, None)
    model = framework.model
    for part in (*emitters, model, getattr(model, "_backend", None), manager):
        attrs = getattr(part, "__dict__", None)
        if attrs is not None:
            attrs.clear()


class _Environ:
    """Each hook's variables in ``os.environ``, set by difference from the previous hook's.

    Setting some twenty variables before each hook and restoring them after cost ~0.2 ms
    a hook (``os.environ`` encodes every key; ``putenv`` and ``unsetenv`` scan the whole
    environment), a tenth of a dispatch. Instead a hook's variables stay until the next
    hook of any direct runtime in this process: that one sets the variables whose value
    differs and removes the previous hook's it does not have (so nothing of one hook
    leaks into the next), and ``OPERATOR_DISPATCH`` (which ops sets) is always cleared
    before ops runs. The process's own values of every variable touched come back when
    the last open direct runtime closes.
    """

    def __init__(self) -> None:
        self.users = 0
        self.baseline: dict[str, str | None] = {}
        """Each touched variable's value before the first hook touched it."""
        self.applied: dict[str, str] = {}

    def acquire(self) -> None:
        """A direct runtime opened."""
        self.users += 1

    def release(self) -> None:
        """A direct runtime closed (or was collected unclosed); the last one restores."""
        self.users = max(0, self.users - 1)
        if self.users == 0:
            self.restore()

    def apply(self, env: Mapping[str, str]) -> None:
        """Make ``os.environ`` the process's own plus ``env``, minus ``OPERATOR_DISPATCH``."""
        environ = os.environ
        baseline = self.baseline
        for key in [k for k in self.applied if k not in env]:
            del self.applied[key]
            _put(key, baseline.get(key))
        if "OPERATOR_DISPATCH" not in baseline:
            baseline["OPERATOR_DISPATCH"] = environ.get("OPERATOR_DISPATCH")
        environ.pop("OPERATOR_DISPATCH", None)
        for key, value in env.items():
            current = environ.get(key)
            if key not in baseline:
                baseline[key] = current
            if current != value:
                environ[key] = value
        self.applied = dict(env)

    def restore(self) -> None:
        """Put back the process's own value of every variable a hook touched."""
        for key, value in self.baseline.items():
            _put(key, value)
        self.baseline.clear()
        self.applied.clear()


def _put(key: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(key, None)
    else:
        os.environ[key] = value


_ENVIRON = _Environ()
_CONTEXTS: dict[tuple[tuple[str, str], ...], JujuContext] = {}
"""``JujuContext`` per environment, whatever the charm directory (see ``_juju_context``)."""


def prepare(charm_dir: str) -> None:
    """Set up what the direct runtimes of ``charm_dir`` share (before forking workers)."""
    _charm_setup(charm_dir)
    _install_hookcmd_dispatch()
    _install_fast_paths()


class DirectRuntime:
    """Runs ops charms with ops' own dispatch machinery in this process; ``Runtime``."""

    name = "direct"

    def __init__(self, charm_dir: str, workdir: str | None = None) -> None:
        setup = _charm_setup(charm_dir)
        self.spec = setup.spec
        self.charm_type = setup.charm_type
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="jujusim-direct-")
            workdir = self._tmp.name
        # The charm's own directory holds what it may write (.workload ...): give it a
        # scratch root with the metadata, never the source tree (as inprocess does).
        self.charm_root = os.path.join(workdir, "charm-root")
        os.makedirs(self.charm_root, exist_ok=True)
        for name, text in setup.files:
            with open(os.path.join(self.charm_root, name), "w", encoding="utf-8") as f:
                f.write(text)
        self._metadata_files = frozenset(name for name, _ in setup.files)
        self.meta = setup.meta
        self._endpoints = list(self.spec.peer_endpoints)
        self._saved: dict[str, dict[str, _UnitStore]] = {}
        self._ports: dict[str, dict[str, tuple[str, ...]]] = {}
        self._serial = 0
        self._contexts: dict[tuple[tuple[str, str], ...], JujuContext] = {}
        self._root_path = pathlib.Path(self.charm_root).resolve()
        _install_hookcmd_dispatch()
        _install_fast_paths()
        _ENVIRON.acquire()
        self._environ_release = weakref.finalize(self, _ENVIRON.release)

    def snapshot(self) -> bytes:
        """The units' ops stores and ports, and what the charm wrote under its root.

        With :meth:`jujusim.engine.Simulator.snapshot`, what a shared deployment
        hands to each schedule run from it.
        """
        files: dict[str, bytes] = {}
        for dirpath, _, names in os.walk(self.charm_root):
            for name in names:
                path = os.path.join(dirpath, name)
                rel = os.path.relpath(path, self.charm_root)
                if rel not in self._metadata_files:
                    with open(path, "rb") as f:
                        files[rel] = f.read()
        state = (self._saved, self._ports, self._serial, files)
        return pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)

    def restore(self, blob: bytes) -> None:
        """Become the runtime :meth:`snapshot` saved (into this one's fresh charm root)."""
        self._saved, self._ports, self._serial, files = pickle.loads(blob)
        for rel, data in files.items():
            path = os.path.join(self.charm_root, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(data)

    def forget_unit(self, unit: str) -> None:
        """A removed unit's store and ports go; its number is never reused anyway."""
        self._saved.pop(unit, None)
        self._ports.pop(unit, None)

    def _environment(self, invocation: HookInvocation, ctx: HookContext) -> dict[str, str]:
        unit = invocation.unit
        is_action = invocation.kind == "action"
        env = {
            "JUJU_UNIT_NAME": unit,
            "JUJU_MODEL_NAME": ctx.model_name,
            "JUJU_MODEL_UUID": ctx.model_uuid,
            "JUJU_VERSION": JUJU_VERSION,
            "JUJU_CHARM_DIR": self.charm_root,
            "CHARM_DIR": self.charm_root,
            "JUJU_CONTEXT_ID": f"{unit}-{invocation.name}-direct",
            "JUJU_HOOK_NAME": "" if is_action else invocation.name,
            "JUJU_DISPATCH_PATH": f"{'actions' if is_action else 'hooks'}/{invocation.name}",
            "JUJU_AVAILABILITY_ZONE": ctx.availability_zone,
            "JUJU_MACHINE_ID": unit.rsplit("/", 1)[-1],
            "JUJU_PRINCIPAL_UNIT": "",
            "JUJU_API_ADDRESSES": "127.0.0.1:17070",
            "JUJU_SLA": "unsupported",
        }
        env.update(invocation.env)
        if is_action:
            uuid = env.setdefault("JUJU_ACTION_UUID", f"{self._serial:032x}")
            env.setdefault("JUJU_ACTION_NAME", invocation.name)
            env.setdefault("JUJU_ACTION_TAG", f"action-{uuid}")
        return env

    def _juju_context(self, env: Mapping[str, str]) -> JujuContext:
        """The ``JujuContext`` of ``env`` (ops' own), parsed once per distinct environment.

        It is a frozen record of the ``JUJU_*`` variables only (the logical clock
        ``JUJUSIM_NOW`` is not part of it). Parsing one resolves the charm directory on
        disk (~65 us), the one field that differs between runtimes: contexts are kept
        per process without it, and each runtime puts in its own directory, resolved
        once, as ``JujuContext._from_dict`` would.
        """
        if env.get("JUJU_CHARM_DIR") != self.charm_root:
            return JujuContext._from_dict(env)
        key = tuple(i for i in env.items() if i[0] != "JUJU_CHARM_DIR" and i[0][:5] == "JUJU_")
        context = self._contexts.get(key)
        if context is not None:
            return context
        if len(self._contexts) >= 4096:
            self._contexts.clear()
        shared = _CONTEXTS.get(key)
        if shared is None:
            context = JujuContext._from_dict(env)
            if len(_CONTEXTS) >= 4096:
                _CONTEXTS.clear()
            _CONTEXTS[key] = context
        elif shared.charm_dir == self._root_path:
            context = shared
        else:
            context = copy.copy(shared)
            object.__setattr__(context, "charm_dir", self._root_path)
        self._contexts[key] = context
        return context

    def run(self, invocation: HookInvocation, ctx: HookContext) -> HookOutcome:
        """Run one hook or action through ops' dispatch; writes go to ``ctx``."""
        unit = invocation.unit
        env = self._environment(invocation, ctx)
        session = ToolSession(
            ctx, invocation, env, self._endpoints, ports=dict(self._ports.get(unit, {}))
        )
        token = ctx.state_get().get(_STATE_KEY, "")
        saved = self._saved.setdefault(unit, {})
        base = saved.get(token)
        for old in [t for t in saved if t != token]:
            del saved[old]
        store = _MemoryStorage(base if base is not None else _UnitStore())
        exit_code, stderr = self._dispatch(env, session, store, base is None)
        calls = session.calls
        if exit_code == 0:
            self._ports[unit] = dict(session.ports)
            if store.committed is not None:
                self._serial += 1
                new_token = str(self._serial)
                saved[new_token] = store.committed
                ctx.state_set({_STATE_KEY: new_token})
        return HookOutcome(exit_code=exit_code, tool_calls=calls, stderr=stderr)

    def _dispatch(
        self,
        env: Mapping[str, str],
        session: ToolSession,
        store: _MemoryStorage,
        fresh: bool,
    ) -> tuple[int, str]:
        """ops.main for one event, with the process-wide state it touches put back after.

        The environment is the exception: it holds this hook's variables until the next
        hook of a direct runtime replaces them, and the process's own come back when the
        last direct runtime closes (see ``_Environ``).
        """
        _ENVIRON.apply(env)
        _HOOK_CLOCK.start(float(env.get(HOOK_SECONDS_ENV, "0")))
        _current.cwd = self.charm_root
        root = logging.getLogger()
        handlers, level = list(root.handlers), root.level
        excepthook, showwarning = sys.excepthook, warnings.showwarning
        outer = getattr(_current, "session", None)
        _current.session = session
        exit_code, stderr = 0, ""
        manager: _Manager | None = None
        wrapper: _Wrapper | None = None
        try:
            juju_context = self._juju_context(env)
            wrapper = _take_wrapper(self.charm_type)
            manager = _Manager(wrapper.cls, juju_context, self.meta, store, fresh)
            manager.run()  # type: ignore[no-untyped-call]
        except _main._Abort as e:
            exit_code = e.exit_code
        except Exception as e:
            exit_code = 1
            stderr = "".join(traceback.format_exception(e)[-12:])
            # ops' excepthook logs the traceback through juju-log before the process dies.
            logging.getLogger().error(
                "Uncaught exception while in charm code:", exc_info=(type(e), e, e.__traceback__)
            )
        finally:
            _HOOK_CLOCK.stop()
            if manager is not None:
                manager.destroy()  # type: ignore[no-untyped-call]
                _release_dispatch(manager)
            if wrapper is not None:
                wrapper.reset()
                wrapper.busy = False
            _current.session = outer
            root.handlers[:] = handlers
            root.setLevel(level)
            sys.excepthook, warnings.showwarning = excepthook, showwarning
            # A new hook process starts with ops' caches empty: this one remembers the
            # first hook's backend and unit for security-event logging.
            _ops_log._get_juju_log_and_app_id.cache_clear()
        return exit_code, stderr

    def close(self) -> None:
        """Drop the per-unit stores and the scratch charm root.

        The last direct runtime to close puts the process environment back.
        """
        self._saved.clear()
        self._contexts.clear()
        self._environ_release()
        if self._tmp is not None:
            self._tmp.cleanup()
