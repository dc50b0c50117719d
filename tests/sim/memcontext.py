"""A small in-memory HookContext for testing runtimes without the simulator's model.

One peer relation (``peer:1``) by default; dict bags; relation and state writes are
buffered until :meth:`MemContext.commit`; leader settings, status and logs are
immediate, as in Juju.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jujusim.context import HookToolError


def _apply(bag: dict[str, str], changes: Mapping[str, str]) -> None:
    for key, value in changes.items():
        if value == "":
            bag.pop(key, None)
        else:
            bag[key] = value


class MemContext:
    """Juju as one hook of ``unit`` sees it, all in dicts."""

    def __init__(
        self,
        unit: str = "proc/0",
        *,
        leader: bool = False,
        peers: tuple[str, ...] = ("proc/1",),
        endpoint: str = "peer",
        relation_id: str = "peer:1",
        config: Mapping[str, Any] | None = None,
        action_params: Mapping[str, Any] | None = None,
        charm_dir: str = "",
    ) -> None:
        self.unit_name = unit
        self.app_name = unit.split("/")[0]
        self.model_name = "sim-model"
        self.model_uuid = "00000000-0000-4000-8000-000000000001"
        self.charm_dir = charm_dir
        self.availability_zone = "zone-1"
        self.leader = leader
        self.endpoint = endpoint
        self.relation_id = relation_id
        self.peers = list(peers)
        addr = {"private-address": "10.0.0.1", "ingress-address": "10.0.0.1"}
        self.unit_bags: dict[str, dict[str, str]] = {u: dict(addr) for u in [unit, *peers]}
        self.app_bag: dict[str, str] = {}
        self.pending_unit: dict[str, str] = {}
        self.pending_app: dict[str, str] = {}
        self.leader_settings: dict[str, str] = {}
        self.config: dict[str, Any] = dict(config or {})
        self.statuses: dict[str, tuple[str, str]] = {}
        self.logs: list[tuple[str, str]] = []
        self.app_version = ""
        self.state: dict[str, str] = {}
        self.pending_state: dict[str, str | None] = {}
        self.action_params: dict[str, Any] = dict(action_params or {})
        self.action_results: dict[str, str] = {}
        self.action_failed: str | None = None
        self.action_logs: list[str] = []

    # the HookContext protocol --------------------------------------------------------------

    def is_leader(self) -> bool:
        return self.leader

    def _check(self, relation_id: str) -> None:
        if relation_id != self.relation_id:
            raise HookToolError(f"relation {relation_id!r} not found")

    def relation_ids(self, endpoint: str) -> list[str]:
        return [self.relation_id] if endpoint == self.endpoint else []

    def relation_list(self, relation_id: str) -> list[str]:
        self._check(relation_id)
        return list(self.peers)

    def relation_remote_app(self, relation_id: str) -> str:
        self._check(relation_id)
        return self.app_name

    def relation_get(self, relation_id: str, owner: str, *, app: bool) -> dict[str, str]:
        self._check(relation_id)
        if app:
            bag = dict(self.app_bag)
            if self.leader:
                _apply(bag, self.pending_app)
            return bag
        if owner not in self.unit_bags:
            raise HookToolError(f"cannot read settings for unit {owner!r}: settings not found")
        bag = dict(self.unit_bags[owner])
        if owner == self.unit_name:
            _apply(bag, self.pending_unit)
        return bag

    def relation_set(self, relation_id: str, changes: Mapping[str, str], *, app: bool) -> None:
        self._check(relation_id)
        if app and not self.leader:
            raise HookToolError("cannot write relation settings")
        (self.pending_app if app else self.pending_unit).update(changes)

    def leader_get(self) -> dict[str, str]:
        return dict(self.leader_settings)

    def leader_set(self, changes: Mapping[str, str]) -> None:
        if not self.leader:
            raise HookToolError("cannot write leadership settings: not the leader")
        _apply(self.leader_settings, changes)

    def config_get(self) -> dict[str, Any]:
        return dict(self.config)

    def goal_state(self) -> dict[str, Any]:
        units = {u: {"status": "active", "since": "2025-01-01 00:00:00Z"}
                 for u in [self.unit_name, *self.peers]}  # fmt: skip
        return {"units": units, "relations": {self.endpoint: dict(units)}}

    def status_set(self, status: str, message: str, *, application: bool) -> None:
        if application and not self.leader:
            raise HookToolError("this unit is not the leader")
        self.statuses["app" if application else "unit"] = (status, message)

    def status_get(self, *, application: bool) -> dict[str, Any]:
        status, message = self.statuses.get("app" if application else "unit", ("unknown", ""))
        return {"status": status, "message": message, "status-data": {}}

    def juju_log(self, level: str, message: str) -> None:
        self.logs.append((level, message))

    def application_version_set(self, version: str) -> None:
        self.app_version = version

    def state_get(self) -> dict[str, str]:
        state = dict(self.state)
        for key, value in self.pending_state.items():
            if value is None:
                state.pop(key, None)
            else:
                state[key] = value
        return state

    def state_set(self, changes: Mapping[str, str]) -> None:
        self.pending_state.update(changes)

    def state_delete(self, key: str) -> None:
        self.pending_state[key] = None

    def action_get(self) -> dict[str, Any]:
        return dict(self.action_params)

    def action_set(self, results: Mapping[str, str]) -> None:
        self.action_results.update(results)

    def action_fail(self, message: str) -> None:
        self.action_failed = message

    def action_log(self, message: str) -> None:
        self.action_logs.append(message)

    def network_get(self, binding: str) -> dict[str, Any]:
        return {
            "bind-addresses": [
                {"mac-address": "", "interface-name": "eth0",
                 "addresses": [{"hostname": "", "value": "10.0.0.1", "cidr": "10.0.0.0/24"}]}
            ],
            "egress-subnets": ["10.0.0.1/32"],
            "ingress-addresses": ["10.0.0.1"],
        }  # fmt: skip

    def unit_get(self, key: str) -> str:
        return "10.0.0.1"

    # test helpers -------------------------------------------------------------------------

    def commit(self) -> None:
        """Apply the hook's buffered writes, as Juju does when a hook exits 0."""
        _apply(self.unit_bags[self.unit_name], self.pending_unit)
        _apply(self.app_bag, self.pending_app)
        for key, value in self.pending_state.items():
            if value is None:
                self.state.pop(key, None)
            else:
                self.state[key] = value
        self.discard()

    def discard(self) -> None:
        """Drop buffered writes, as Juju does when a hook fails."""
        self.pending_unit.clear()
        self.pending_app.clear()
        self.pending_state.clear()
