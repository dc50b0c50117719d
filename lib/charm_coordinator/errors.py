"""Errors, split by whose fault they are (as h11 does): the charm's, or a peer's data."""

from __future__ import annotations

__all__ = [
    "CoordinatorError",
    "LocalUsageError",
    "MalformedDataError",
    "NotLeaderError",
    "UnknownLockError",
]


class CoordinatorError(Exception):
    """Base class of every error this library raises; never raised itself."""

    def __init__(self, *args: object) -> None:
        if type(self) is CoordinatorError:
            raise TypeError("CoordinatorError is abstract; raise a subclass")
        super().__init__(*args)


class LocalUsageError(CoordinatorError):
    """The charm used the API wrongly (e.g. released a lock it never requested)."""


class UnknownLockError(LocalUsageError):
    """A lock name the coordinator was not told about."""

    def __init__(self, name: str, known: tuple[str, ...]) -> None:
        super().__init__(
            f"unknown lock {name!r}; this coordinator knows {', '.join(known) or 'none'}"
        )
        self.name = name


class NotLeaderError(LocalUsageError):
    """An operation only the leader may do (pause, resume, force-release) ran elsewhere."""

    def __init__(self, what: str, unit: str) -> None:
        super().__init__(
            f"{what} changes the leader's queue: run it on the leader unit ({unit} is not)"
        )


class MalformedDataError(CoordinatorError):
    """A databag holds coordinator data this library cannot trust.

    ``owner`` names the unit (or application) whose bag it is, so logs and status
    can say exactly who wrote it.
    """

    def __init__(self, owner: str, reason: str) -> None:
        super().__init__(f"coordinator data of {owner} is malformed: {reason}")
        self.owner = owner
        self.reason = reason
