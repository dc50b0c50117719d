"""The simulator's :class:`~jujusim.context.HookContext`: one hook's view and write buffer.

A context is built when a hook starts, from the committed model and the unit agent's
local state. Reads follow Juju's rules (juju-semantics.md 2.7): own bags show this
hook's uncommitted writes; a non-leader reads the peer app bag as committed at hook
start; other units' bags come from the agent's long-lived cache, filled on first read
with the latest committed data. Writes are buffered until the engine commits them
(exit 0) or drops them. ``leader-set``, ``status-set`` and ``juju-log`` are immediate:
they go straight to the engine through :class:`ImmediateSink`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, Protocol

from jujusim.agent import HookInfo, UnitAgent
from jujusim.context import HookToolError
from jujusim.model import Model, default_unit_bag, unit_number

__all__ = ["ImmediateSink", "SimHookContext"]


class ImmediateSink(Protocol):
    """Where the effects that bypass the hook transaction go."""

    def leader_set(self, unit: str, changes: Mapping[str, str]) -> None:
        """Apply ``leader-set`` now."""
        ...

    def status_set(self, unit: str, status: str, message: str, *, application: bool) -> None:
        """Apply ``status-set`` now."""
        ...

    def juju_log(self, unit: str, level: str, message: str) -> None:
        """Record a ``juju-log`` line."""
        ...


class SimHookContext:
    """Juju as one hook of one unit sees it; implements :class:`jujusim.context.HookContext`."""

    def __init__(
        self,
        model: Model,
        agent: UnitAgent,
        hook: HookInfo,
        sink: ImmediateSink,
        charm_dir: str,
    ) -> None:
        self.unit_name = agent.name
        self.app_name = model.app_name
        self.model_name = model.model_name
        self.model_uuid = model.model_uuid
        self.charm_dir = charm_dir
        self.availability_zone = model.zone_of(agent.name)
        self._model = model
        self._agent = agent
        self._hook = hook
        self._sink = sink
        self._leader = model.leader == agent.name
        self._config = _copy_config(model.config)
        # Taken now rather than on first read: the same values when hooks run one at a
        # time, and the hook-start view when the engine runs hooks of other units
        # concurrently (a leader's leader-set or app status-set must not leak into a
        # hook that started before it).
        self._leader_settings: dict[str, str] | None = dict(model.leader_settings)
        self._leader_settings_depth = model.leader_settings_depth
        self._app_status = model.app_status
        self._config_depth = model.config_depth
        self._committed = {
            rid: (dict(rel.unit_bags), dict(rel.unit_depths), rel.app_bag, rel.app_depth)
            for rid, rel in model.relations.items()
        }
        """Per relation: unit bags, their depths, app bag and its depth as committed at
        hook start (bags are replaced on commit, never changed in place)."""
        self._alive = list(model.alive)
        self._dying = list(model.dying)
        self._app_snapshots: dict[int, dict[str, str]] = {}
        self.unit_writes: dict[int, dict[str, str]] = {}
        """Buffered ``relation-set`` on this unit's bag, per relation id (``""`` deletes)."""
        self.app_writes: dict[int, dict[str, str]] = {}
        self.state_writes: dict[str, str | None] = {}
        self.action_results: dict[str, str] = {}
        self.action_failure: str | None = None
        self.action_logs: list[str] = []
        self.read_depth = 0
        """Deepest commit whose data this hook read: the hook depends on it causally."""
        self.calls = 0
        """Calls made through this context (a stand-in for hook-tool calls)."""

    # identity -----------------------------------------------------------------

    def is_leader(self) -> bool:
        """Leadership as of hook start (Juju guarantees it for 30 s)."""
        self.calls += 1
        return self._leader

    # relations ------------------------------------------------------------------

    def _relation(self, relation_id: str) -> int:
        rel = self._model.relation_by_rid(relation_id)
        if rel is None or not self._visible(rel.id):
            raise HookToolError(f"invalid value {relation_id!r} for option -r: relation not found")
        return rel.id

    def _visible(self, rel_id: int) -> bool:
        return rel_id in self._agent.relations or (
            self._hook.kind == "relation-created" and self._hook.relation_id == rel_id
        )

    def relation_ids(self, endpoint: str) -> list[str]:
        """Relations on ``endpoint`` this unit has created."""
        self.calls += 1
        return [
            rel.rid
            for rid, rel in sorted(self._model.relations.items())
            if rel.endpoint == endpoint and self._visible(rid)
        ]

    def relation_list(self, relation_id: str) -> list[str]:
        """Joined remote units; a joining unit is listed, a departing one no longer."""
        self.calls += 1
        rid = self._relation(relation_id)
        local = self._agent.relations.get(rid)
        members = set(local.members) if local is not None else set()
        hook = self._hook
        if hook.relation_id == rid and hook.remote_unit:
            if hook.kind == "relation-joined":
                members.add(hook.remote_unit)
            elif hook.kind == "relation-departed":
                members.discard(hook.remote_unit)
        return sorted(members, key=unit_number)

    def relation_remote_app(self, relation_id: str) -> str:
        """Peers: our own application."""
        self.calls += 1
        self._relation(relation_id)
        return self.app_name

    def relation_get(self, relation_id: str, owner: str, *, app: bool) -> dict[str, str]:
        """One whole bag, as this unit's agent would serve it."""
        self.calls += 1
        rid = self._relation(relation_id)
        rel = self._model.relations[rid]
        if app:
            if owner != self.app_name:
                raise HookToolError(f"permission denied reading application {owner!r}")
            _, _, app_bag, app_depth = self._committed[rid]
            self.read_depth = max(self.read_depth, app_depth)
            snap = self._app_snapshots.get(rid)
            if snap is None:
                snap = dict(app_bag)
                self._app_snapshots[rid] = snap
            if self._leader and rid in self.app_writes:
                return _apply(snap, self.app_writes[rid])
            return dict(snap)
        if owner == self.unit_name:
            base = rel.unit_bags.get(owner)
            if base is None:
                base = default_unit_bag(owner)
            return _apply(base, self.unit_writes.get(rid, {}))
        cache = self._agent.cache.setdefault(rid, {})
        entry = cache.get(owner)
        if entry is None:
            bags, depths, _, _ = self._committed[rid]
            committed = bags.get(owner)
            if committed is None:
                raise HookToolError(
                    f'cannot read settings for unit "{owner}" in relation "{rel.rid}": '
                    "settings not found"
                )
            entry = (dict(committed), depths.get(owner, 0))
            cache[owner] = entry
        self.read_depth = max(self.read_depth, entry[1])
        return dict(entry[0])

    def relation_set(self, relation_id: str, changes: Mapping[str, str], *, app: bool) -> None:
        """Buffer a write; app writes need leadership (checked again at commit)."""
        self.calls += 1
        rid = self._relation(relation_id)
        if app:
            if not self._leader:
                raise HookToolError("cannot write relation settings")
            self.app_writes.setdefault(rid, {}).update(changes)
        else:
            self.unit_writes.setdefault(rid, {}).update(changes)

    # leadership settings --------------------------------------------------------

    def leader_get(self) -> dict[str, str]:
        """Cached for the hook; ``leader-set`` refreshes it."""
        self.calls += 1
        if self._leader_settings is None:  # refreshed after this hook's own leader-set
            self._leader_settings = dict(self._model.leader_settings)
            self._leader_settings_depth = self._model.leader_settings_depth
        self.read_depth = max(self.read_depth, self._leader_settings_depth)
        return dict(self._leader_settings)

    def leader_set(self, changes: Mapping[str, str]) -> None:
        """Immediate, not rolled back if the hook fails."""
        self.calls += 1
        if not self._leader:  # as of hook start: nothing moves leadership while hook code runs
            raise HookToolError(
                "cannot write leadership settings: cannot write settings: not the leader"
            )
        self._sink.leader_set(self.unit_name, changes)
        self._leader_settings = None

    # config, goal state, status, logging ------------------------------------------

    def config_get(self) -> dict[str, Any]:
        """Config as of hook start."""
        self.calls += 1
        self.read_depth = max(self.read_depth, self._config_depth)
        return _copy_config(self._config)

    def goal_state(self) -> dict[str, Any]:
        """Units the model intends to have (dying ones marked) and the peer relations."""
        self.calls += 1
        # ``since`` is RFC 3339 as Juju prints it (ops parses it; "" made goal-state
        # raise in every ops charm, so no charm ever learnt a unit had left).
        since = "2026-01-01T00:00:00Z"
        units: dict[str, Any] = {u: {"status": "active", "since": since} for u in self._alive}
        for u in self._dying:
            units[u] = {"status": "dying", "since": since}
        relations: dict[str, Any] = {}
        for rel in self._model.relations.values():
            entry = relations.setdefault(rel.endpoint, {})
            entry[self.app_name] = {"status": "joined", "since": since}
            for u, v in units.items():
                if u != self.unit_name:
                    entry[u] = v
        return {"units": units, "relations": relations}

    def status_set(self, status: str, message: str, *, application: bool) -> None:
        """Immediate."""
        self.calls += 1
        if application and not self._leader:
            raise HookToolError("this unit is not the leader")
        self._sink.status_set(self.unit_name, status, message, application=application)
        if application:
            self._app_status = (status, message)

    def status_get(self, *, application: bool) -> dict[str, Any]:
        """Current status (unit, or the application's when leader)."""
        self.calls += 1
        if application:
            status, message = self._app_status
            return {"status": status, "message": message, "status-data": {}}
        status, message = self._model.unit_status.get(self.unit_name, ("unknown", ""))
        return {"status": status, "message": message, "status-data": {}}

    def juju_log(self, level: str, message: str) -> None:
        """Immediate."""
        self.calls += 1
        self._sink.juju_log(self.unit_name, level, message)

    def application_version_set(self, version: str) -> None:
        """Immediate."""
        self.calls += 1
        self._model.workload_version[self.unit_name] = version

    # charm state ------------------------------------------------------------------

    def state_get(self) -> dict[str, str]:
        """Committed charm state plus this hook's writes."""
        self.calls += 1
        out = dict(self._model.charm_state.get(self.unit_name, {}))
        for k, v in self.state_writes.items():
            if v is None:
                out.pop(k, None)
            else:
                out[k] = v
        return out

    def state_set(self, changes: Mapping[str, str]) -> None:
        """Buffered until commit."""
        self.calls += 1
        self.state_writes.update(changes)

    def state_delete(self, key: str) -> None:
        """Buffered until commit."""
        self.calls += 1
        self.state_writes[key] = None

    # actions ------------------------------------------------------------------------

    def action_get(self) -> dict[str, Any]:
        """Parameters of the running action."""
        self.calls += 1
        if self._hook.action is None:
            raise HookToolError("not running an action")
        return dict(self._hook.action.params)

    def action_set(self, results: Mapping[str, str]) -> None:
        """Recorded when the action ends."""
        self.calls += 1
        self.action_results.update(results)

    def action_fail(self, message: str) -> None:
        """Mark the action failed (the hook itself may still exit 0)."""
        self.calls += 1
        self.action_failure = message

    def action_log(self, message: str) -> None:
        """Progress message of the running action."""
        self.calls += 1
        self.action_logs.append(message)

    # networking ---------------------------------------------------------------------

    def network_get(self, binding: str) -> dict[str, Any]:
        """A single well-formed address per unit."""
        self.calls += 1
        addr = default_unit_bag(self.unit_name)["private-address"]
        return {
            "bind-addresses": [
                {
                    "mac-address": "",
                    "interface-name": "eth0",
                    "addresses": [{"hostname": "", "value": addr, "cidr": f"{addr}/24"}],
                }
            ],
            "egress-subnets": [f"{addr}/32"],
            "ingress-addresses": [addr],
        }

    def unit_get(self, key: str) -> str:
        """``private-address`` / ``public-address``."""
        self.calls += 1
        if key in ("private-address", "public-address"):
            return default_unit_bag(self.unit_name)["private-address"]
        raise HookToolError(f"unknown setting {key!r}")


_SCALARS = (str, int, float, bool, type(None))


def _copy_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A copy the caller may change (deep only where a value is not a scalar).

    Juju's option values are scalars, which a shallow copy may share.
    """
    if all(isinstance(v, _SCALARS) for v in config.values()):
        return dict(config)
    return copy.deepcopy(dict(config))


def _apply(base: Mapping[str, str], changes: Mapping[str, str]) -> dict[str, str]:
    out = dict(base)
    for k, v in changes.items():
        if v == "":
            out.pop(k, None)
        else:
            out[k] = v
    return out
