"""The controller's side of the simulated model: committed data and versions.

Everything here is what Juju's controller stores: committed relation databags and
their versions (the ``txn-revno`` the unit agents compare), the relation scope,
leadership and leader settings, config, statuses, and unit-local charm state. Unit
agents (:mod:`jujusim.agent`) compare their local state with this to pick hooks.
"""

from __future__ import annotations

import dataclasses
from typing import Any

__all__ = ["Model", "RelationData", "bag_bytes", "default_unit_bag", "unit_number"]


def unit_number(unit: str) -> int:
    """``app/12`` -> 12."""
    return int(unit.rsplit("/", 1)[1])


def default_unit_bag(unit: str) -> dict[str, str]:
    """The keys Juju puts in every unit's own bag before it joins."""
    n = unit_number(unit)
    address = f"10.0.{n // 250}.{n % 250 + 1}"
    return {
        "egress-subnets": f"{address}/32",
        "ingress-address": address,
        "private-address": address,
    }


@dataclasses.dataclass
class RelationData:
    """Committed state of one relation (a peer relation for now)."""

    id: int
    endpoint: str
    app: str
    unit_bags: dict[str, dict[str, str]] = dataclasses.field(default_factory=dict)
    """Every unit that ever entered scope; a departed unit's data stays readable."""
    unit_versions: dict[str, int] = dataclasses.field(default_factory=dict)
    unit_depths: dict[str, int] = dataclasses.field(default_factory=dict)
    """Causal depth of the commit that last wrote each unit's bag."""
    app_bag: dict[str, str] = dataclasses.field(default_factory=dict)
    app_version: int = 0
    app_depth: int = 0
    """0 means never written: Juju runs no app-level changed for version 0."""
    scope: set[str] = dataclasses.field(default_factory=set)
    """Units currently in scope: what the other agents see as members."""

    @property
    def rid(self) -> str:
        """``endpoint:id``, the form hook tools use."""
        return f"{self.endpoint}:{self.id}"

    def enter_scope(self, unit: str) -> None:
        """A unit joins the relation; its bag starts with Juju's default keys."""
        if unit not in self.unit_bags:
            self.unit_bags[unit] = default_unit_bag(unit)
            self.unit_versions[unit] = 1
        self.scope.add(unit)

    def bytes(self) -> int:
        """Size of the largest databag (key and value bytes), for ``databag_bytes_max``."""
        sizes = [bag_bytes(b) for b in self.unit_bags.values()]
        sizes.append(bag_bytes(self.app_bag))
        return max(sizes)


def bag_bytes(bag: dict[str, str]) -> int:
    """Key and value bytes of one databag."""
    return sum(len(k.encode()) + len(v.encode()) for k, v in bag.items())


@dataclasses.dataclass
class Model:
    """One application on one model, as the controller stores it."""

    app_name: str
    model_name: str = "jujusim"
    model_uuid: str = "00000000-0000-4000-8000-00000000cafe"
    relations: dict[int, RelationData] = dataclasses.field(default_factory=dict)
    leader: str | None = None
    leader_settings: dict[str, str] = dataclasses.field(default_factory=dict)
    leader_settings_version: int = 0
    leader_settings_depth: int = 0
    config: dict[str, Any] = dataclasses.field(default_factory=dict)
    config_version: int = 0
    config_depth: int = 0
    unit_status: dict[str, tuple[str, str]] = dataclasses.field(default_factory=dict)
    app_status: tuple[str, str] = ("unknown", "")
    workload_version: dict[str, str] = dataclasses.field(default_factory=dict)
    charm_state: dict[str, dict[str, str]] = dataclasses.field(default_factory=dict)
    alive: list[str] = dataclasses.field(default_factory=list)
    """Units that exist and are not dying, in creation order."""
    dying: list[str] = dataclasses.field(default_factory=list)
    next_unit: int = 0
    databag_bytes_max: int = 0
    zones: int = 1
    """Availability zones; units are spread over them round-robin by unit number."""

    def zone_of(self, unit: str) -> str:
        """The availability zone of ``unit`` (``zone-1`` .. ``zone-K``)."""
        return f"zone-{unit_number(unit) % max(1, self.zones) + 1}"

    def relation_by_rid(self, rid: str) -> RelationData | None:
        """Look up ``endpoint:id`` (or a bare id)."""
        try:
            rel_id = int(rid.rsplit(":", 1)[-1])
        except ValueError:
            return None
        rel = self.relations.get(rel_id)
        if rel is None or (":" in rid and rid.split(":", 1)[0] != rel.endpoint):
            return None
        return rel

    def new_unit_name(self) -> str:
        """Juju never reuses unit numbers."""
        name = f"{self.app_name}/{self.next_unit}"
        self.next_unit += 1
        return name

    def note_bag_size(self, bag: dict[str, str]) -> None:
        """Track the largest databag seen over the run."""
        self.databag_bytes_max = max(self.databag_bytes_max, bag_bytes(bag))
