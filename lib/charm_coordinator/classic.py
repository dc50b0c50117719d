"""A drop-in for ``charmhelpers.coordinator`` on the charm-coordinator protocol.

Switch a hook-based charm by changing one import::

    from charm_coordinator import classic as coordinator
    serial = coordinator.Serial()      # before hooks.execute(), as before

The API is charmhelpers': ``acquire``, ``granted``, ``requested``, ``request_timestamp``,
``require``, ``grant_<lock>`` policies, ``released``, ``msg``, and the same wiring through
``hookenv.atstart``/``atexit``. Underneath is :mod:`charm_coordinator.protocol`: requests
and releases in the unit's peer databag, queues in the peer application databag written
by the leader (never leader settings), and holders derived by every unit, so a hand-off
needs one hook round and no leader. See ``docs/classic.md`` for what changed and why.

``charmhelpers.core.hookenv`` is imported only when a coordinator is made, so importing
this module costs nothing and works without charmhelpers installed.
"""

from __future__ import annotations

import datetime
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping
from functools import wraps
from types import ModuleType
from typing import Any, TypeVar

from . import _classic_state, _evidence, _legacy, protocol
from ._evidence import BagEvidence
from .documents import (
    AppDoc,
    Entry,
    Mode,
    UnitDoc,
    check_lock_name,
    dump_app_doc,
    dump_unit_doc,
    parse_app_doc,
    parse_unit_doc,
)
from .errors import MalformedDataError
from .protocol import LockSpec, State

__all__ = ["BaseCoordinator", "Serial"]

LEASE_SAFE_SECONDS = _evidence.LEASE_SAFE_SECONDS
"""Write the queue only within this many seconds of confirming leadership."""

POLICY_LIMIT = 2**31
"""The holder limit assumed for the leader's wake decision under a custom policy."""

_FULL_SCAN_HOOKS = frozenset({"leader-elected", "upgrade-charm", "update-status"})
_F = TypeVar("_F", bound=Callable[..., Any])


def _hookenv() -> ModuleType:
    """The hookenv module of charmhelpers, imported on first use (it costs ~100 ms)."""
    try:
        from charmhelpers.core import hookenv
    except ImportError as e:
        raise ImportError(
            "charm_coordinator.classic needs charmhelpers: add 'charmhelpers' to the charm's "
            "requirements (or install charm-coordinator[classic])"
        ) from e
    module: ModuleType = hookenv
    return module


class _Hook:
    """What one hook has read and decided so far."""

    def __init__(self, unit: str, relid: str | None, leader: bool) -> None:
        self.unit = unit
        self.relid = relid
        self.leader = leader
        self.leader_checked_at = time.monotonic()
        self.evidence: BagEvidence | None = None
        self.app = AppDoc()
        self.app_raw = ""
        self.app_problem: str | None = None
        self.doc = UnitDoc()
        self.doc_raw = ""
        self.doc_problem: str | None = None
        self.full_scan = False
        self.state = _classic_state.LocalState()
        self.state_path = ""
        self.own_bag: dict[str, str] = {}
        self.bridge: _Bridge | None = None
        """Set while charmhelpers.coordinator data is in force (an upgrade from it)."""


class _Bridge:
    """One hook's view in the bridge period: charmhelpers' requests and grants.

    ``committed`` is this unit's request doc as committed; ``grants`` the leader
    settings' grants (None if they are garbage: then nobody holds here and the leader
    leaves them alone).
    """

    def __init__(self, me: str, committed: _legacy.Requests, raw: str, settings: dict[str, str],
                 key: str) -> None:  # fmt: skip
        self.me = me
        self.committed = committed
        self.raw = raw
        self.key = key
        self.grants_raw = settings.get(key) or ""
        self.grants = _legacy.parse_grants(self.grants_raw)
        self.wake = _legacy.parse_wake(settings.get(f"{key}-wake"))
        self.bags: dict[str, dict[str, str]] = {}
        """Peers' whole bags, read by the leader."""
        self.wake_needed = False
        self.switched = False

    def holds(self, lock: str) -> bool:
        """The charmhelpers rule: the grant equals this unit's (committed) request."""
        ts = self.committed.get(lock)
        return ts is not None and (self.grants or {}).get(self.me, {}).get(lock) == ts


class _AnyLock(Mapping[str, LockSpec]):
    """Lock specs for whatever lock names peers request (classic locks are not declared)."""

    def __init__(self, limit: Callable[[str], int]) -> None:
        self._limit = limit

    def __getitem__(self, lock: str) -> LockSpec:
        return LockSpec(lock, limit=self._limit(lock))

    def __contains__(self, lock: object) -> bool:
        try:
            return isinstance(lock, str) and bool(check_lock_name(lock))
        except ValueError:
            return False

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


class BaseCoordinator:
    """Cross-unit locks for a hook-based charm; subclass and define the grant policy.

    Each instance is independent (no singleton). Make it before ``Hooks.execute()``:
    the constructor registers :meth:`initialize` and :meth:`handle` with
    ``hookenv.atstart``, and ``initialize`` registers the save with ``hookenv.atexit``,
    so nothing is published when the hook fails. Made later, inside a hook, it
    initializes on first use instead.

    Args:
        relation_key: databag key for the documents (peer unit and app databags).
        peer_relation_name: the peer relation; default: the first in metadata.yaml.
        release_all_granted: charmhelpers' old behaviour: release every granted lock at
            the end of every hook, even one the hook never looked at. By default only
            the locks this hook saw as granted (``granted``, ``acquire``, ``require``)
            are released; a grant no hook looked at is kept for the next hook.
        clock: wall clock for informational timestamps (never orders anything).
    """

    relid: str | None = None
    relname: str | None = None

    def __init__(
        self,
        relation_key: str = "coordinator",
        peer_relation_name: str | None = None,
        *,
        release_all_granted: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.key = relation_key
        self.relname = peer_relation_name
        self.release_all_granted = release_all_granted
        self._clock = clock
        self._h = _hookenv()
        self._hook: _Hook | None = None
        self._intents: dict[str, bool] = {}
        """lock -> True (request) or False (release) decided in this hook."""
        self._seen: dict[str, int] = {}
        """lock -> request id this hook saw granted: released at the end of the hook."""
        self._first_seen: dict[str, tuple[int, datetime.datetime]] = {}
        self._problem: str | None = None
        self._stamp_now: str | None = None
        self._h.atstart(self.initialize)
        self._h.atstart(self.handle)

    # -- charmhelpers' API -------------------------------------------------------------

    def initialize(self) -> None:
        """Read this hook's view (atstart); registers the save with atexit. Idempotent."""
        if self._hook is not None:
            return
        h = self._h
        me: str = h.local_unit()
        if self.relname is None:
            self.relname, self._problem = _implicit_peer_relation_name(h)
        relids = sorted(h.relation_ids(self.relname)) if self.relname else []
        self.relid = relids[0] if relids else None
        checked_at = time.monotonic()
        hook = _Hook(me, self.relid, bool(h.is_leader()) if self.relid else False)
        hook.leader_checked_at = checked_at
        hook.state_path = _classic_state.state_path(h.charm_dir(), self.key)
        hook.state, problem = _classic_state.load_state(hook.state_path)
        if problem:
            self.msg(problem, level="WARNING")
        self._hook = hook
        if self._problem:
            self.msg(self._problem, level="ERROR")
        elif self.relid is not None:
            self._read(hook, self.relid)
        h.atexit(self._save_state)
        h.atexit(self._release_granted)

    def handle(self) -> None:
        """Kept for compatibility (atstart); there is nothing to grant at hook start.

        Holders are derived by every unit from the committed queue, and the leader
        queues new requests at the end of the hook, once it knows this hook's own
        requests: a leader acting on a queue it has not committed is unsafe.
        """
        self.initialize()

    def acquire(self, lock: str) -> bool:
        """Request ``lock`` if not yet requested; True if this unit holds it now.

        Non-blocking: the grant may come in a later hook. A lock this hook sees as
        granted is released at the end of the hook. Guard calls (do not request on
        every relation-changed), or every release will make a new request.
        """
        check_lock_name(lock)
        if not self.requested(lock):
            self._intents[lock] = True
            self.msg(f"Requested {lock}")
        if self.granted(lock):
            self.msg(f"Acquired {lock}")
            return True
        return False

    def release(self, lock: str) -> None:
        """Release ``lock`` now, or withdraw a waiting request (not in charmhelpers)."""
        check_lock_name(lock)
        self._intents[lock] = False

    def granted(self, lock: str) -> bool:
        """True if this unit holds ``lock``; it is then released at the end of the hook."""
        bridge = self._load().bridge
        if bridge is not None:
            check_lock_name(lock)
            if self._intents.get(lock) is False or not bridge.holds(lock):
                return False
            self._seen[lock] = 0
            self._first_seen.setdefault(lock, (0, _utcnow(self._clock)))
            return True
        entry = self._my_holding_entry(lock)
        if entry is None:
            return False
        self._seen[lock] = entry.id
        if self._first_seen.get(lock, (0,))[0] != entry.id:
            self._first_seen[lock] = (entry.id, _utcnow(self._clock))
        return True

    def requested(self, lock: str) -> bool:
        """True if this unit has a pending request for ``lock`` (waiting or holding)."""
        hook = self._load()
        if hook.bridge is not None:
            return lock in self._bridge_requests(hook)
        return self._my_doc(hook).record(lock).pending

    def request_timestamp(self, lock: str) -> datetime.datetime | None:
        """When the pending request was made (naive UTC, informational), else None."""
        hook = self._load()
        if hook.bridge is not None:
            ts = self._bridge_requests(hook).get(lock)
            try:
                return (
                    None
                    if ts is None
                    else datetime.datetime.strptime(ts, _legacy.TIMESTAMP_FORMAT)
                )
            except ValueError:
                return None
        rec = self._my_doc(hook).record(lock)
        if not rec.pending or rec.at is None:
            return None
        try:
            stamp = datetime.datetime.fromisoformat(rec.at.replace("Z", "+00:00"))
        except ValueError:
            return None
        return stamp.astimezone(datetime.timezone.utc).replace(tzinfo=None)

    def grant(self, lock: str, unit: str) -> bool:
        """True if ``unit`` holds ``lock`` in this unit's view (any unit can tell).

        charmhelpers' leader decided here; now every unit derives holders from the
        committed queue with :meth:`default_grant` or ``grant_<lock>``.
        """
        return unit in self.holders(lock)

    def holders(self, lock: str) -> tuple[str, ...]:
        """Units holding ``lock`` in this unit's view, in queue order."""
        bridge = self._load().bridge
        if bridge is not None:  # charmhelpers' granted set (the holder may have released)
            check_lock_name(lock)
            return tuple(sorted(u for u, locks in (bridge.grants or {}).items() if lock in locks))
        return tuple(e.unit for e in self._holders(lock))

    def default_grant(self, lock: str, unit: str, granted: set[str], queue: list[str]) -> bool:
        """The grant policy when no ``grant_<lock>`` exists; :class:`Serial` defines one."""
        raise NotImplementedError(
            f"{type(self).__name__} has no grant policy for {lock!r}: use Serial, or define "
            "default_grant or grant_<lock>"
        )

    def released(self, unit: str, lock: str, timestamp: datetime.datetime) -> None:
        """Called on the unit that held ``lock`` as it releases it; override to record.

        ``timestamp`` is when this unit first saw the grant (naive UTC, its own clock),
        so ``now - timestamp`` is how long it held the lock. (charmhelpers called this
        on the leader with the request time: queue wait and two clocks mixed in.)
        """
        held = _utcnow(self._clock) - timestamp
        self.msg(f"Released {lock} from {unit}, held {held}")

    def require(
        self, lock: str, guard_func: Callable[..., Any], *guard_args: Any, **guard_kw: Any
    ) -> Callable[[_F], _F]:
        """Decorate a function to run only with ``lock`` held.

        Runs it if the lock is granted; otherwise requests the lock when
        ``guard_func(*guard_args, **guard_kw)`` is true, and runs it if granted at once.
        """

        def decorator(f: _F) -> _F:
            @wraps(f)
            def wrapper(*args: Any, **kw: Any) -> Any:
                if self.granted(lock):
                    self.msg(f"Granted {lock}")
                    return f(*args, **kw)
                if guard_func(*guard_args, **guard_kw) and self.acquire(lock):
                    return f(*args, **kw)
                return None

            return wrapper  # type: ignore[return-value]

        return decorator

    def msg(self, msg: str, level: str = "INFO") -> None:
        """Log through juju-log. Override to customize log spam."""
        self._h.log(f"coordinator.{type(self).__name__} {msg}", level=level)

    # -- introspection beyond charmhelpers ---------------------------------------------

    @property
    def problems(self) -> dict[str, str]:
        """Owners of malformed coordinator data seen in this hook, with the reason."""
        hook = self._load()
        out: dict[str, str] = {}
        if self._problem:
            out[hook.unit] = self._problem
        if hook.evidence is not None:
            out.update(hook.evidence.problems)
        if hook.app_problem:
            out[hook.unit.split("/")[0]] = hook.app_problem
        if hook.doc_problem:
            out[hook.unit] = hook.doc_problem
        return out

    # -- reading ------------------------------------------------------------------------

    def _load(self) -> _Hook:
        if self._hook is None:
            self.initialize()  # made inside a hook, after atstart ran
        assert self._hook is not None
        return self._hook

    def _read(self, hook: _Hook, relid: str) -> None:
        h = self._h
        key = self.key

        def read_raw(unit: str) -> str | None:
            try:
                raw = _text(h.relation_get(key, unit, relid))
            except Exception as e:  # a peer gone mid-hook: no evidence, not a failure
                self.msg(f"cannot read {unit}'s data: {e}", level="DEBUG")
                return None
            if raw and _legacy.parse_requests(raw) is not None:
                return None  # charmhelpers' format, not converted yet: no evidence either way
            return raw

        ev = BagEvidence(
            hook.unit, h.related_units(relid), read_raw, self._goal_units, self._report
        )
        ev.restore(hook.state.released, hook.state.departed)
        hook.evidence = ev
        hook.app_raw = _text(h.relation_get(key, rid=relid, app=h.application_name())) or ""
        try:
            hook.app = parse_app_doc(hook.app_raw, h.application_name())
        except MalformedDataError as e:
            self.msg(f"{e}; the queue is left as it is and nothing is granted", level="ERROR")
            hook.app_problem = e.reason
        own = h.relation_get(rid=relid, unit=hook.unit) or {}
        hook.own_bag = {str(k): _text(v) or "" for k, v in own.items()}
        hook.doc_raw = hook.own_bag.get(key, "")
        if not hook.app_raw:
            settings = h.leader_get() or {}
            if settings.get(key):
                self._enter_bridge(
                    hook, relid, {str(k): _text(v) or "" for k, v in settings.items()}
                )
                return
        try:
            hook.doc = parse_unit_doc(hook.doc_raw, hook.unit)
        except MalformedDataError as e:
            legacy = _legacy_requests(hook.doc_raw)
            if legacy is None:
                self.msg(f"{e}; this unit will not overwrite it", level="ERROR")
                hook.doc_problem = e.reason
            else:
                self.msg(f"converting charmhelpers.coordinator requests {sorted(legacy)}")
                for lock in legacy:
                    hook.doc = protocol.request(hook.doc, lock, at=self._stamp())
        ev.learn(hook.unit, hook.doc)
        self._event(hook, ev, relid)

    def _enter_bridge(self, hook: _Hook, relid: str, settings: dict[str, str]) -> None:
        """charmhelpers.coordinator's grants are in force: speak its format this hook."""
        committed = _legacy.parse_requests(hook.doc_raw)
        if committed is None:
            try:  # our own doc from before the bridge: its pending requests carry over
                doc = parse_unit_doc(hook.doc_raw, hook.unit)
                for lock, rec in doc.locks.items():
                    if rec.pending:
                        self._intents[lock] = True
            except MalformedDataError as e:
                self.msg(f"{e}; this unit will not overwrite it", level="ERROR")
                hook.doc_problem = e.reason
            committed = {}
        bridge = _Bridge(hook.unit, committed, hook.doc_raw, settings, self.key)
        hook.bridge = bridge
        if bridge.grants is None:
            self.msg("charmhelpers grants in leader settings are unreadable; nothing is "
                     "granted", level="ERROR")  # fmt: skip
        name: str = self._h.hook_name()
        if (
            os.environ.get("JUJU_RELATION_ID") == relid
            and name.endswith("-relation-departed")
            and self._h.departing_unit() == hook.unit
        ):
            for lock in committed:
                self._intents[lock] = False
        if hook.leader:
            self._bridge_lead(hook)

    def _bridge_bag(self, hook: _Hook, unit: str) -> dict[str, str] | None:
        """A peer's whole bag (the bridge leader reads them all, as charmhelpers does)."""
        bridge = hook.bridge
        assert bridge is not None
        if unit not in bridge.bags:
            try:
                raw = self._h.relation_get(rid=hook.relid, unit=unit) or {}
            except Exception as e:  # a peer gone mid-hook
                self.msg(f"cannot read {unit}'s data: {e}", level="DEBUG")
                return None
            bridge.bags[unit] = {str(k): _text(v) or "" for k, v in raw.items()}
        return bridge.bags[unit]

    def _bridge_lead(self, hook: _Hook) -> None:
        """The leader's step in the bridge period (hook start): grant as Serial does.

        Published at once with leader-set, before this hook's own work, from committed
        requests only, so a grant to itself is one any later leader sees too.
        """
        bridge = hook.bridge
        assert bridge is not None and bridge.grants is not None
        members = sorted(self._h.related_units(hook.relid))
        requests = {hook.unit: dict(bridge.committed)}
        readable = {hook.unit}
        for unit in members:
            bag = self._bridge_bag(hook, unit)
            if bag is None:
                continue
            readable.add(unit)
            theirs = _legacy.parse_requests(bag.get(self.key))
            if theirs:
                requests[unit] = theirs
        goal = self._goal_units()
        policy = self._legacy_policy
        if self._everyone_new(hook):
            # Grant nothing more in the old format: the switch follows the last release,
            # and the requests still waiting carry over to the protocol.
            policy = lambda lock: lambda *_: False  # noqa: E731
        new = _legacy.lead(
            bridge.grants,
            requests,
            readable=readable,
            gone=lambda u: goal is not None and u not in goal,
            policy=policy,
        )
        raw = _legacy.dump_grants(new)
        if raw != bridge.grants_raw:
            self._h.leader_set({self.key: raw})
            self.msg(f"charmhelpers grants (bridge): {raw}")
            bridge.grants, bridge.grants_raw = new, raw

    def _legacy_policy(self, lock: str) -> _legacy.Policy:
        custom = getattr(self, f"grant_{lock}", None)
        return custom if custom is not None else self.default_grant

    def _bridge_requests(self, hook: _Hook) -> _legacy.Requests:
        """This unit's charmhelpers-format requests with this hook's intents applied."""
        assert hook.bridge is not None
        reqs = dict(hook.bridge.committed)
        wants = {**dict.fromkeys(hook.state.pending, True), **self._intents}
        for lock, want in wants.items():
            if want and lock not in reqs:
                reqs[lock] = _legacy.timestamp(_utcnow(self._clock))
            elif not want:
                reqs.pop(lock, None)
        return reqs

    def _save_bridge(self, hook: _Hook) -> bool:
        """Publish in charmhelpers' format; False if the leader switched to the protocol."""
        bridge = hook.bridge
        assert bridge is not None and hook.relid is not None
        reqs = self._bridge_requests(hook)
        key = self.key
        if hook.leader:
            new_own = any(lock not in bridge.committed for lock in reqs)
            let_go = any(bridge.holds(lock) and lock not in reqs for lock in bridge.committed)
            bridge.wake_needed = new_own or let_go
            if self._bridge_switch(hook, reqs):
                return False
        changes: dict[str, str] = {}
        raw = _legacy.dump_requests(reqs)
        if raw != bridge.raw and (reqs or bridge.raw) and not hook.doc_problem:
            changes[key] = raw
        if hook.own_bag.get(f"{key}-version") != _legacy.VERSION:
            changes[f"{key}-version"] = _legacy.VERSION
        wake = bridge.wake
        if wake and wake[0] == hook.unit and hook.own_bag.get(f"{key}-ack") != str(wake[1]):
            changes[f"{key}-ack"] = str(wake[1])
        if changes:
            self._h.relation_set(hook.relid, changes)
        if hook.leader and bridge.wake_needed:
            self._bridge_wake(hook)
        _classic_state.save_state(hook.state_path, hook.state._replace(pending={}))
        return True

    def _bridge_wake(self, hook: _Hook) -> None:
        """Ask a peer running this library to write an ack: that runs a hook here."""
        bridge = hook.bridge
        assert bridge is not None
        for unit in sorted(self._h.related_units(hook.relid)):
            bag = self._bridge_bag(hook, unit)
            if bag is not None and bag.get(f"{self.key}-version") == _legacy.VERSION:
                token = (bridge.wake[1] if bridge.wake else 0) + 1
                self._h.leader_set({f"{self.key}-wake": f"{unit} {token}"})
                return
        self.msg("no peer runs the new code yet to wake the leader; waiting for any hook")

    def _everyone_new(self, hook: _Hook) -> bool:
        """Every unit in goal-state and in the relation runs this library (says its bag).

        A unit that cannot be read, or has not joined in this unit's view, counts as old.
        """
        assert hook.relid is not None
        members = set(self._h.related_units(hook.relid))
        everyone = members | (self._goal_units() or set())
        everyone.discard(hook.unit)
        for unit in sorted(everyone):
            bag = self._bridge_bag(hook, unit) if unit in members else None
            if bag is None or bag.get(f"{self.key}-version") != _legacy.VERSION:
                return False
        return True

    def _bridge_switch(self, hook: _Hook, reqs: _legacy.Requests) -> bool:
        """Leave the bridge when every unit runs this library and no grant is out.

        Then nobody holds under charmhelpers' rule and nobody ever will: the grants are
        deleted now, and no leader grants in leader settings once the app doc exists
        (a leader reads the app bag after confirming leadership, so it sees the doc the
        switching leader committed while it led). Requests carry over: each unit
        converts its own in its next hook, this leader its own right here.
        """
        bridge = hook.bridge
        assert bridge is not None and hook.relid is not None and hook.evidence is not None
        if bridge.grants is None or _legacy.live_grants(bridge.grants):
            return False
        if time.monotonic() - hook.leader_checked_at > LEASE_SAFE_SECONDS:
            return False
        if not self._everyone_new(hook):
            return False
        self._h.leader_set({self.key: None, f"{self.key}-wake": None})
        self.msg(f"every unit runs {__name__}; leaving charmhelpers' format")
        doc = UnitDoc()
        for lock in sorted(reqs):
            doc = protocol.request(doc, lock, at=self._stamp())
        hook.bridge = None
        hook.doc = doc
        hook.app = AppDoc(seq=1)  # the app doc's presence is the switch, for everyone
        hook.full_scan = True
        hook.state = hook.state._replace(pending={})
        self._intents.clear()
        hook.evidence.learn(hook.unit, doc)
        return True

    def _event(self, hook: _Hook, ev: BagEvidence, relid: str) -> None:
        """Learn what this hook is about: a peer's change, a departure, a new leader."""
        h = self._h
        name: str = h.hook_name()
        if os.environ.get("JUJU_RELATION_ID") != relid:
            hook.full_scan = name in _FULL_SCAN_HOOKS
            return
        if name.endswith("-relation-departed"):
            gone = h.departing_unit()
            if gone == hook.unit:
                # Rule 4: a departing unit gives up everything before it is gone.
                for lock in hook.doc.locks:
                    self._intents[lock] = False
                self._state_pending({})
            elif gone:
                ev.departed.add(gone)
            hook.full_scan = True
            return
        remote = h.remote_unit()
        if remote:
            ev.read(remote)
        elif (
            hook.leader
            and name.endswith("-relation-changed")
            and hook.app.seq
            and hook.app.seq == hook.state.written
        ):
            # Juju told the leader about its own app write: no wake-ups needed.
            hook.state = hook.state._replace(self_app_events=True)

    def _state_pending(self, pending: dict[str, str]) -> None:
        hook = self._load()
        hook.state = hook.state._replace(pending=pending)

    def _goal_units(self) -> set[str] | None:
        try:
            return set(self._h.goal_state()["units"])
        except Exception as e:  # a missing tool, an old Juju: no evidence, not an error
            self.msg(f"goal-state unavailable: {e}", level="DEBUG")
            return None

    def _report(self, e: MalformedDataError) -> None:
        self.msg(f"{e}; its requests are treated as live and none is queued", level="WARNING")

    # -- deciding -----------------------------------------------------------------------

    def _my_doc(self, hook: _Hook) -> UnitDoc:
        """Own doc with requests made before the relation existed and this hook's intents."""
        doc = hook.doc
        for lock in hook.state.pending:
            doc = protocol.request(doc, lock, at=self._stamp())
        for lock, want in self._intents.items():
            if want:
                doc = protocol.request(doc, lock, at=self._stamp())
            else:
                doc = protocol.release(doc, lock)
        return doc

    def _stamp(self) -> str:
        """One request time per hook, so a new request reads the same each time."""
        if self._stamp_now is None:
            self._stamp_now = _utcnow(self._clock).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return self._stamp_now

    def _policy(self, lock: str) -> Callable[[str, str, set[str], list[str]], bool] | None:
        """The custom policy for ``lock``, or None for Serial's (the protocol's own rule)."""
        custom = getattr(self, f"grant_{lock}", None)
        if custom is not None:
            return custom  # type: ignore[no-any-return]
        if type(self).default_grant is Serial.default_grant:
            return None
        return self.default_grant

    def _holders(self, lock: str) -> list[Entry]:
        """Entries holding ``lock`` in this view, walking the live queue from the head.

        Under a policy, each live entry is offered with the holders found so far and the
        units still waiting (those refused ahead, then it, then the rest), as charmhelpers
        offered them. The result is safe whatever the view's age if the policy is monotone
        (see docs/classic.md): more live entries ahead never turns a refusal into a grant.
        """
        check_lock_name(lock)
        hook = self._load()
        if hook.evidence is None or hook.app_problem:
            return []
        ev = hook.evidence
        ev.learn(hook.unit, self._my_doc(hook))
        policy = self._policy(lock)
        if policy is None:
            return list(protocol.holders(hook.app, LockSpec(lock), ev))
        live = list(protocol.live_entries(hook.app.queue(lock), lock, ev))
        holding: list[Entry] = []
        waiting: list[str] = []
        for i, entry in enumerate(live):
            queue = [*waiting, *(e.unit for e in live[i:])]
            if policy(lock, entry.unit, {e.unit for e in holding}, queue):
                holding.append(entry)
            else:
                waiting.append(entry.unit)
        return holding

    def _my_holding_entry(self, lock: str) -> Entry | None:
        check_lock_name(lock)
        hook = self._load()
        if hook.evidence is None or hook.app_problem or hook.doc_problem:
            return None
        doc = self._my_doc(hook)
        if not doc.record(lock).pending:
            return None
        if self._policy(lock) is None:
            s = protocol.standing(hook.app, hook.unit, doc, LockSpec(lock), hook.evidence)
            return s.entry if s.state is State.HOLDING else None
        rid = doc.record(lock).id
        return next((e for e in self._holders(lock) if e.unit == hook.unit and e.id == rid), None)

    # -- at the end of a successful hook (atexit) ----------------------------------------

    def _release_granted(self) -> None:
        """Release what this hook saw as granted (or, with the old flag, all it holds)."""
        hook = self._load()
        if hook.bridge is not None:
            for lock in sorted(self._bridge_requests(hook)):
                held = self.granted(lock) if self.release_all_granted else lock in self._seen
                if held:
                    self._intents[lock] = False
                    self.msg(f"Released local {lock} lock")
                    self.released(hook.unit, lock, self._first_seen[lock][1])
            return
        doc = self._my_doc(hook)
        for lock, rec in sorted(doc.locks.items()):
            if not rec.pending or self._intents.get(lock) is False:
                continue
            if self.release_all_granted:
                held = self.granted(lock)
            else:
                held = self._seen.get(lock) == rec.id
            if held:
                self._intents[lock] = False
                self.msg(f"Released local {lock} lock")
                seen_at = self._first_seen.get(lock, (0, _utcnow(self._clock)))[1]
                self.released(hook.unit, lock, seen_at)

    def _save_state(self) -> None:
        """Publish this hook's doc, and the leader's queue; remember what must be kept."""
        hook = self._load()
        if hook.bridge is not None and self._save_bridge(hook):
            return
        state = hook.state
        if hook.relid is None or hook.evidence is None:
            pending = dict(state.pending)
            for lock, want in self._intents.items():
                if want:
                    pending[lock] = Mode.EXCLUSIVE.value
                else:
                    pending.pop(lock, None)
            _classic_state.save_state(hook.state_path, state._replace(pending=pending))
            return
        ev = hook.evidence
        doc = protocol.acknowledge(self._my_doc(hook), hook.app, hook.unit)
        ev.learn(hook.unit, doc)
        app = hook.app
        if hook.leader and not hook.app_problem:
            app = self._lead(hook, doc)
            if app is not hook.app:
                state = state._replace(written=app.seq)
        changes: dict[str, str] = {}
        if hook.app_raw or app is not hook.app:
            # The protocol is in force: the bridge's keys are no longer needed.
            for extra in (f"{self.key}-version", f"{self.key}-ack"):
                if hook.own_bag.get(extra):
                    changes[extra] = ""
            if hook.leader and hook.full_scan:
                self._forget_leader_settings()
        if not hook.doc_problem:
            raw = dump_unit_doc(doc)
            if raw != hook.doc_raw:
                changes[self.key] = raw
        if changes:
            self._h.relation_set(hook.relid, changes)
        released, departed = ev.remembered(app, hook.app)
        state = state._replace(pending={}, released=released, departed=departed)
        _classic_state.save_state(hook.state_path, state)

    def _forget_leader_settings(self) -> None:
        """Delete charmhelpers' grants if a failed or interrupted switch left them."""
        settings = self._h.leader_get() or {}
        stale = [k for k in (self.key, f"{self.key}-wake") if settings.get(k)]
        if stale:
            self._h.leader_set(dict.fromkeys(stale))

    def _lead(self, hook: _Hook, doc: UnitDoc) -> AppDoc:
        assert hook.evidence is not None and hook.relid is not None
        age = time.monotonic() - hook.leader_checked_at
        if age > LEASE_SAFE_SECONDS:
            self.msg(
                f"leadership last confirmed {age:.0f}s ago; not writing the queue this hook",
                level="WARNING",
            )
            return hook.app
        specs = _AnyLock(lambda lock: 1 if self._policy(lock) is None else POLICY_LIMIT)
        app = _evidence.lead(
            hook.app,
            doc,
            hook.evidence,
            specs,
            full_scan=hook.full_scan,
            wake_needed=not hook.state.self_app_events,
        )
        raw = dump_app_doc(app)
        if raw == hook.app_raw:
            return hook.app
        self._h.relation_set(hook.relid, {self.key: raw}, app=True)
        return app


class Serial(BaseCoordinator):
    """One holder per lock name, first come (in the leader's order) first served."""

    def default_grant(self, lock: str, unit: str, granted: set[str], queue: list[str]) -> bool:
        """Grant to the head of the queue when nobody holds the lock.

        ``granted``: units holding ``lock`` ahead of ``unit``; ``queue``: units waiting,
        in order, including ``unit``. Define ``grant_<lock>`` in a subclass to change
        the policy for one lock.
        """
        return unit == queue[0] and not granted


def _implicit_peer_relation_name(h: ModuleType) -> tuple[str | None, str | None]:
    """The first peer relation of metadata.yaml in sorted order, or a problem."""
    try:
        peers = sorted((h.metadata() or {}).get("peers") or {})
    except Exception as e:
        return None, f"cannot read metadata.yaml: {e}"
    if not peers:
        return None, "metadata.yaml declares no peer relation; add one under 'peers:'"
    return str(peers[0]), None


def _legacy_requests(raw: str) -> list[str] | None:
    """Lock names from a charmhelpers.coordinator request doc, else None."""
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, dict) or "v" in data:
        return None
    locks = [k for k, v in data.items() if isinstance(v, str)]
    if len(locks) != len(data):
        return None
    try:
        return [check_lock_name(k) for k in locks]
    except ValueError:
        return None


def _text(value: object) -> str | None:
    """A databag value as text; a non-string (never from Juju) is made to fail parsing."""
    if value is None or isinstance(value, str):
        return value
    return repr(value)


def _utcnow(clock: Callable[[], float]) -> datetime.datetime:
    """Naive UTC now, as charmhelpers' timestamps are (without utcnow's deprecation)."""
    return datetime.datetime.fromtimestamp(clock(), datetime.timezone.utc).replace(tzinfo=None)
