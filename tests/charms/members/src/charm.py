#!/usr/bin/env python3
"""Journals the Coordinator's membership and leadership events (for jujusim's tests)."""

from __future__ import annotations

import json
import os

import ops
from charm_coordinator import Coordinator, LeadershipEvent, MemberEvent


class MembersCharm(ops.CharmBase):
    """A line per membership or leadership event: ``{"unit", "event", "member", "members"}``."""

    def __init__(self, framework: ops.Framework) -> None:
        super().__init__(framework)
        self.coordinator = Coordinator(self)
        on = self.coordinator.on
        for source in (on.member_joined, on.member_left):
            framework.observe(source, self._on_member)
        for source in (on.leadership_gained, on.leadership_lost):
            framework.observe(source, self._on_leadership)

    def _on_member(self, event: MemberEvent) -> None:
        self._journal(event.handle.kind, member=event.member)

    def _on_leadership(self, event: LeadershipEvent) -> None:
        self._journal(event.handle.kind, leader=self.unit.is_leader())

    def _journal(self, event: str, **fields: object) -> None:
        path = os.environ.get("JUJUSIM_JOURNAL")
        if path:
            record = {
                "unit": self.unit.name,
                "event": event,
                "members": list(self.coordinator.members),
                **fields,
            }
            with open(path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")


if __name__ == "__main__":  # pragma: nocover
    ops.main(MembersCharm)
