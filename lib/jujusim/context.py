"""The seam between the simulated model and the runtimes that execute charm code.

A runtime (``process`` or ``inprocess``) runs one hook or action of one unit. Everything
the charm may ask Juju during that hook goes through a :class:`HookContext`, which the
model builds from the unit's view at hook start and which buffers the hook's writes
until the model decides to commit them. The process runtime serves these methods to
hook-tool executables; the in-process runtime translates them to and from
``ops.testing`` state. Both runtimes therefore share one set of Juju semantics.

Errors a hook tool must report to the charm are raised as :class:`HookToolError` with
Juju's own message text (ops matches on some of them, e.g. ``permission denied``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal, Protocol

__all__ = [
    "HOOK_SECONDS_ENV",
    "ExecRequest",
    "HookContext",
    "HookInvocation",
    "HookOutcome",
    "HookToolError",
    "Runtime",
    "RuntimeWrapper",
]


HOOK_SECONDS_ENV = "JUJUSIM_HOOK_SECONDS"
"""The hook's logical length, from its start to its commit, in the hook's environment
(runtimes that run charm code in-process show it to the charm's clock as it commits)."""


class HookToolError(Exception):
    """A hook tool failed; ``message`` is what Juju prints on stderr, ``code`` its exit code."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@dataclasses.dataclass(frozen=True, kw_only=True)
class HookInvocation:
    """What to run: one hook or action on one unit, with its event-specific environment."""

    unit: str
    """Unit name, e.g. ``coordinated-app/0``."""
    kind: Literal["hook", "action", "exec"]
    """``exec``: a ``juju-exec`` run; ``action_params["command"]`` is its shell command."""
    name: str
    """Hook name as Juju spells it (``peer-relation-changed``) or the action name."""
    env: Mapping[str, str] = dataclasses.field(default_factory=dict[str, str])
    """Event-specific variables: JUJU_RELATION, JUJU_RELATION_ID, JUJU_REMOTE_UNIT,
    JUJU_REMOTE_APP, JUJU_DEPARTING_UNIT, JUJU_ACTION_* ... (the runtime adds the rest)."""
    action_params: Mapping[str, Any] = dataclasses.field(default_factory=dict[str, Any])


@dataclasses.dataclass(frozen=True, kw_only=True)
class HookOutcome:
    """What a runtime reports back after running a hook."""

    exit_code: int
    tool_calls: int = 0
    """Hook-tool invocations the hook made (process runtime: real executables)."""
    stdout: str = ""
    stderr: str = ""
    execs: tuple[ExecRequest, ...] = ()
    """``juju-exec`` runs that background processes of this hook asked for."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class ExecRequest:
    """``juju-exec -u UNIT COMMAND`` from a hook's background process, waiting to run.

    ``delay`` is the logical time from the start of the hook that started the process
    to the call (its logical sleeps included); ``id`` names the waiting client.
    """

    unit: str
    command: str
    delay: float
    id: str


class HookContext(Protocol):
    """Juju as one hook sees it. Reads come from the view taken at hook start.

    Relation data reads follow Juju's rules: the unit's own bags (and the app bag when
    leader) show this hook's uncommitted writes; other units' bags come from the
    agent's cache; a non-leader reads the peer app bag as last committed.
    """

    # identity and environment
    unit_name: str
    app_name: str
    model_name: str
    model_uuid: str
    charm_dir: str
    availability_zone: str

    def is_leader(self) -> bool:
        """What ``is-leader`` answers or does."""
        ...

    # relations
    def relation_ids(self, endpoint: str) -> list[str]:
        """``["peer:1"]``-style ids of the relations on ``endpoint``."""
        ...

    def relation_list(self, relation_id: str) -> list[str]:
        """Remote units this unit has joined on the relation (never itself)."""
        ...

    def relation_remote_app(self, relation_id: str) -> str:
        """What ``relation-list --app`` answers or does."""
        ...

    def relation_get(self, relation_id: str, owner: str, *, app: bool) -> dict[str, str]:
        """Whole bag of ``owner`` (a unit name, or an app name when ``app``)."""
        ...

    def relation_set(self, relation_id: str, changes: Mapping[str, str], *, app: bool) -> None:
        """Buffer changes to this unit's bag (or the app bag); ``""`` deletes a key.

        Raises :class:`HookToolError` (``cannot write relation settings``) for an app
        write by a non-leader.
        """
        ...

    # leadership settings (immediate, leader only)
    def leader_get(self) -> dict[str, str]:
        """What ``leader-get`` answers or does."""
        ...
    def leader_set(self, changes: Mapping[str, str]) -> None:
        """What ``leader-set (immediate)`` answers or does."""
        ...

    # config, goal state, status, logging
    def config_get(self) -> dict[str, Any]:
        """What ``config-get`` answers or does."""
        ...
    def goal_state(self) -> dict[str, Any]:
        """What ``goal-state`` answers or does."""
        ...
    def status_set(self, status: str, message: str, *, application: bool) -> None:
        """What ``status-set (immediate)`` answers or does."""
        ...
    def status_get(self, *, application: bool) -> dict[str, Any]:
        """What ``status-get`` answers or does."""
        ...
    def juju_log(self, level: str, message: str) -> None:
        """What ``juju-log (immediate)`` answers or does."""
        ...
    def application_version_set(self, version: str) -> None:
        """What ``application-version-set`` answers or does."""
        ...

    # unit-local charm state (state-get/state-set), committed with the hook
    def state_get(self) -> dict[str, str]:
        """What ``state-get`` answers or does."""
        ...
    def state_set(self, changes: Mapping[str, str]) -> None:
        """What ``state-set`` answers or does."""
        ...
    def state_delete(self, key: str) -> None:
        """What ``state-delete`` answers or does."""
        ...

    # actions
    def action_get(self) -> dict[str, Any]:
        """What ``action-get`` answers or does."""
        ...
    def action_set(self, results: Mapping[str, str]) -> None:
        """What ``action-set`` answers or does."""
        ...
    def action_fail(self, message: str) -> None:
        """What ``action-fail`` answers or does."""
        ...
    def action_log(self, message: str) -> None:
        """What ``action-log`` answers or does."""
        ...

    # networking (answers are synthetic but well-formed)
    def network_get(self, binding: str) -> dict[str, Any]:
        """What ``network-get`` answers or does."""
        ...
    def unit_get(self, key: str) -> str:
        """What ``unit-get`` answers or does."""
        ...


class Runtime(Protocol):
    """Runs charm code for one hook against a :class:`HookContext`."""

    name: str

    def run(self, invocation: HookInvocation, ctx: HookContext) -> HookOutcome:
        """Run one hook or action to completion against ``ctx``."""
        ...

    def close(self) -> None:
        """Release what the runtime holds (servers, temporary directories)."""
        ...


class RuntimeWrapper:
    """A runtime that passes everything to ``inner``: subclass it and override ``run``.

    For scenarios and benchmarks that act around hooks (fail one unit's hooks, time
    them, record their writes) without a runtime of their own.
    """

    def __init__(self, inner: Runtime) -> None:
        self.inner = inner
        self.name = inner.name

    def run(self, invocation: HookInvocation, ctx: HookContext) -> HookOutcome:
        """Run the hook with the wrapped runtime."""
        return self.inner.run(invocation, ctx)

    def close(self) -> None:
        """Close the wrapped runtime."""
        self.inner.close()

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)
