"""Helpers to run the demo charm through ops.testing (Scenario), one unit at a time."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import yaml

from charm import CoordinatedAppCharm
from ops import testing

ROOT = pathlib.Path(__file__).resolve().parents[2]
META = yaml.safe_load((ROOT / "metadata.yaml").read_text())
CONFIG = yaml.safe_load((ROOT / "config.yaml").read_text())
ACTIONS = yaml.safe_load((ROOT / "actions.yaml").read_text())
APP = "coordinated-app"
KEY = "coordinator"


def context(unit_id: int = 0) -> testing.Context[CoordinatedAppCharm]:
    return testing.Context(
        CoordinatedAppCharm, meta=META, config=CONFIG, actions=ACTIONS, unit_id=unit_id
    )


def unit(i: int) -> str:
    return f"{APP}/{i}"


def udoc(locks: dict[str, dict[str, Any]] | None = None, ack: int = 0) -> dict[str, str]:
    """A unit databag holding a coordinator doc."""
    doc: dict[str, Any] = {"v": 1, "locks": locks or {}}
    if ack:
        doc["ack"] = ack
    return {KEY: json.dumps(doc)}


def adoc(seq: int, entries: list[list[Any]], wake: list[Any] | None = None) -> dict[str, str]:
    """An app databag holding a restart queue."""
    doc: dict[str, Any] = {"v": 1, "seq": seq, "queues": {"restart": entries} if entries else {}}
    if wake:
        doc["wake"] = wake
    return {KEY: json.dumps(doc)}


def read(bag: Any) -> dict[str, Any]:
    raw = dict(bag).get(KEY, "")
    return json.loads(raw) if raw else {}


def granted_locks(ctx: testing.Context[Any]) -> list[str]:
    return [e.lock for e in ctx.emitted_events if type(e).__name__ == "LockGrantedEvent"]
