"""Coordination for the units of a Juju application: locks, rolling operations, order.

The ops API (``Coordinator``, ``LockGrantedEvent``) is imported lazily, so classic
charms that use :mod:`charm_coordinator.classic` need neither ops nor its import time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import (
    CoordinatorError,
    LocalUsageError,
    MalformedDataError,
    NotLeaderError,
    UnknownLockError,
)
from .protocol import LockSpec, Standing, State

if TYPE_CHECKING:
    from .framework import (
        Coordinator,
        CoordinatorEvents,
        LeadershipEvent,
        LockGrantedEvent,
        LockRevokedEvent,
        MemberEvent,
        QueuedRequest,
    )

__all__ = [
    "Coordinator",
    "CoordinatorError",
    "CoordinatorEvents",
    "LeadershipEvent",
    "LocalUsageError",
    "LockGrantedEvent",
    "LockRevokedEvent",
    "LockSpec",
    "MalformedDataError",
    "MemberEvent",
    "NotLeaderError",
    "QueuedRequest",
    "Standing",
    "State",
    "UnknownLockError",
]

_LAZY = {
    "Coordinator",
    "CoordinatorEvents",
    "LeadershipEvent",
    "LockGrantedEvent",
    "LockRevokedEvent",
    "MemberEvent",
    "QueuedRequest",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from . import framework

        return getattr(framework, name)
    raise AttributeError(f"module 'charm_coordinator' has no attribute {name!r}")
