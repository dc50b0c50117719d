"""A unit agent: its local state and Juju's resolver that picks the next hook.

Juju's uniter compares a remote snapshot (the controller's :class:`~jujusim.model.Model`)
with the state it persisted locally, and runs the first hook the difference calls for,
in a fixed priority order (juju-semantics.md 2.1, 2.8, 3). Coalescing falls out of
that: only the latest remote version is compared, so several commits by one unit
before another unit gets to run yield one ``relation-changed``.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Any

from jujusim.model import Model, RelationData

__all__ = ["HookInfo", "LocalRelation", "PendingAction", "UnitAgent", "next_hook"]


@dataclasses.dataclass(frozen=True)
class PendingAction:
    """An action queued on a unit (``juju run``)."""

    name: str
    params: dict[str, Any]
    id: str
    command: str | None = None
    """Set for a ``juju-exec`` run (no action): the shell command to run."""
    depth: int = 0
    """For a ``juju-exec`` run: the causal depth (the hook that asked for it, plus one)."""


@dataclasses.dataclass(frozen=True)
class HookInfo:
    """One hook to run, with the remote versions it will record when it commits."""

    kind: str
    """``install``, ``relation-changed``, ..., or ``action``."""
    relation_id: int | None = None
    endpoint: str | None = None
    remote_unit: str | None = None
    """None for app-level ``relation-changed`` and ``relation-created``."""
    departing_unit: str | None = None
    version: int = 0
    """Remote version this hook brings the unit up to (member, app, leader settings, config)."""
    depth: int = 0
    action: PendingAction | None = None

    @property
    def name(self) -> str:
        """The hook name as Juju spells it (``peer-relation-changed``), or the action name."""
        if self.action is not None:
            return self.action.name
        if self.kind.startswith("relation-"):
            return f"{self.endpoint}-{self.kind}"
        return self.kind

    @property
    def about(self) -> str:
        """Short label for timelines: the hook name and what it is about."""
        if self.remote_unit:
            return f"{self.name}({self.remote_unit})"
        if self.kind == "relation-changed":
            return f"{self.name}(app)"
        return self.name


@dataclasses.dataclass
class LocalRelation:
    """The agent's persisted view of one relation."""

    members: dict[str, int] = dataclasses.field(default_factory=dict)
    """Remote units this unit has joined, with the settings version it last ran with."""
    app_version: int | None = None
    changed_pending: str | None = None


@dataclasses.dataclass
class UnitAgent:
    """Local state of one unit's agent (what Juju's uniter persists, plus its cache)."""

    name: str
    life: str = "alive"
    """``alive``, ``dying`` or ``dead``."""
    installed: bool = False
    started: bool = False
    stopped: bool = False
    leader: bool = False
    leader_settings_version: int = -1
    config_version: int = -1
    relations: dict[int, LocalRelation] = dataclasses.field(default_factory=dict)
    cache: dict[int, dict[str, tuple[dict[str, str], int]]] = dataclasses.field(
        default_factory=dict
    )
    """Other units' bags as this agent last read them, kept across hooks (Juju's
    RelationCache), with the causal depth of the commit that wrote them."""
    update_status_due: bool = False
    actions: collections.deque[PendingAction] = dataclasses.field(
        default_factory=collections.deque
    )
    failed: HookInfo | None = None
    """The hook in error, rerun when the retry timer fires."""
    attempts: int = 0
    retry_ready: bool = False
    pending_depth: dict[tuple[Any, ...], int] = dataclasses.field(default_factory=dict)
    """Causal depth of the latest commit behind each kind of pending change."""
    last_depth: int = 0
    busy: bool = False
    dispatch_scheduled: bool = False
    charm_dir: str | None = None
    """The charm directory this unit runs (None: the application's first one)."""
    upgrade_to: str | None = None
    """A charm directory to upgrade to (``juju refresh``): upgrade-charm is due."""

    def note_cause(self, key: tuple[Any, ...], depth: int) -> None:
        """Remember that a commit of ``depth`` created pending work of kind ``key``."""
        old = self.pending_depth.get(key)
        if old is None or depth > old:
            self.pending_depth[key] = depth

    def depth_for(self, key: tuple[Any, ...]) -> int:
        """Depth of a hook consuming ``key``: cause + 1, or the unit's own chain + 1."""
        cause = self.pending_depth.pop(key, None)
        if cause is None:
            return self.last_depth + 1
        return cause + 1

    @property
    def in_error(self) -> bool:
        """A failed hook is waiting to be retried."""
        return self.failed is not None


def _relation_hook(
    agent: UnitAgent, rel: RelationData, local: LocalRelation, model: Model
) -> HookInfo | None:
    """Juju's ``nextHookForRelation`` for a peer relation (no broken on peers)."""
    rid = rel.id
    ep = rel.endpoint
    dying = agent.life != "alive"
    if local.changed_pending is not None:
        unit = local.changed_pending
        return HookInfo(
            "relation-changed",
            rid,
            ep,
            remote_unit=unit,
            version=rel.unit_versions.get(unit, 0),
            depth=agent.depth_for(("unit", rid, unit)),
        )
    remote: set[str] | frozenset[str] = frozenset() if dying else rel.scope
    for unit in sorted(local.members):
        if unit not in remote:
            return HookInfo(
                "relation-departed",
                rid,
                ep,
                remote_unit=unit,
                departing_unit=agent.name if dying else unit,
                depth=agent.depth_for(("scope", rid, unit)),
            )
    if dying:
        return None
    if rel.app_version != (local.app_version or 0):
        return HookInfo(
            "relation-changed",
            rid,
            ep,
            version=rel.app_version,
            depth=agent.depth_for(("app", rid)),
        )
    me = agent.name
    for unit in sorted(rel.scope):
        if unit != me and unit not in local.members:
            return HookInfo(
                "relation-joined",
                rid,
                ep,
                remote_unit=unit,
                version=rel.unit_versions.get(unit, 0),
                depth=agent.depth_for(("scope", rid, unit)),
            )
    versions = rel.unit_versions
    for unit, seen in sorted(local.members.items()):
        if versions.get(unit, 0) != seen:
            return HookInfo(
                "relation-changed",
                rid,
                ep,
                remote_unit=unit,
                version=versions.get(unit, 0),
                depth=agent.depth_for(("unit", rid, unit)),
            )
    return None


def next_hook(agent: UnitAgent, model: Model) -> HookInfo | str | None:
    """The next thing this unit's agent does, or None when it has nothing to do.

    Returns a :class:`HookInfo`, or one of the hookless local operations
    ``"resign"`` (leadership lost: record it, then run leader-settings-changed) and
    ``"leave-scope"`` (a dying unit has run its departed hooks).
    """
    if agent.life == "dead" or agent.busy:
        return None
    if agent.failed is not None:
        if agent.retry_ready:
            return dataclasses.replace(agent.failed)
        if agent.actions:
            action = agent.actions[0]
            return HookInfo("action", action=action, depth=agent.last_depth + 1)
        return None
    if not agent.installed:
        return HookInfo("install", depth=agent.depth_for(("install",)))
    if agent.upgrade_to is not None and agent.life == "alive":
        # Juju's resolver checks for a charm upgrade before everything but reboot.
        return HookInfo("upgrade-charm", depth=agent.depth_for(("upgrade",)))
    if agent.life == "alive":
        for rid in sorted(model.relations):
            if rid not in agent.relations:
                rel = model.relations[rid]
                return HookInfo(
                    "relation-created", rid, rel.endpoint, depth=agent.last_depth + 1
                )
    if agent.life == "dying":
        for rid in sorted(agent.relations):
            rel = model.relations[rid]
            hook = _relation_hook(agent, rel, agent.relations[rid], model)
            if hook is not None:
                return hook
        if any(agent.name in rel.scope for rel in model.relations.values()):
            return "leave-scope"
        if not agent.stopped:
            return HookInfo("stop", depth=agent.last_depth + 1)
        return HookInfo("remove", depth=agent.last_depth + 1)
    is_leader = model.leader == agent.name
    if is_leader and not agent.leader:
        return HookInfo(
            "leader-elected",
            version=model.leader_settings_version,
            depth=agent.depth_for(("leader",)),
        )
    if agent.leader and not is_leader:
        return "resign"
    if not agent.leader and agent.leader_settings_version != model.leader_settings_version:
        return HookInfo(
            "leader-settings-changed",
            version=model.leader_settings_version,
            depth=agent.depth_for(("leader-settings",)),
        )
    if agent.actions:
        action = agent.actions[0]
        return HookInfo("action", action=action, depth=agent.last_depth + 1)
    if agent.config_version != model.config_version:
        return HookInfo(
            "config-changed", version=model.config_version, depth=agent.depth_for(("config",))
        )
    if not agent.started:
        return HookInfo("start", depth=agent.last_depth + 1)
    for rid in sorted(agent.relations):
        hook = _relation_hook(agent, model.relations[rid], agent.relations[rid], model)
        if hook is not None:
            return hook
    if agent.update_status_due:
        return HookInfo("update-status", depth=agent.last_depth + 1)
    return None
