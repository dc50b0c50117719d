"""The classic adapter's memory between hooks: one small JSON file in the charm directory.

Hook-based charms have no StoredState. What must outlive a hook is small: requests made
before the peer relation exists (published as soon as it does), deaths already learnt
(a death is forever; remembering it saves reads and covers departed units), and whether
Juju tells the leader about its own app-data writes. The file is written only at the end
of a successful hook (atexit), atomically, and removed when there is nothing to keep.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any, NamedTuple

__all__ = ["LocalState", "load_state", "save_state", "state_path"]

_MAX_BYTES = 256 * 1024


class LocalState(NamedTuple):
    """What one unit remembers for one coordinator key."""

    pending: dict[str, str] = {}
    """Locks requested before the peer relation existed (lock -> mode)."""
    released: dict[str, dict[str, int]] = {}
    """Released ids learnt for units still queued (unit -> lock -> id)."""
    departed: list[str] = []
    """Departed units still queued."""
    written: int = 0
    """The app doc's ``seq`` this unit last wrote as leader."""
    self_app_events: bool = False
    """Juju delivers relation-changed to the leader for its own app writes."""


def state_path(charm_dir: str | None, key: str) -> str:
    """Per-key file (two coordinators with different keys never share one)."""
    return os.path.join(charm_dir or os.getcwd(), f".charm_coordinator.{key}.json")


def load_state(path: str) -> tuple[LocalState, str | None]:
    """The remembered state, and a problem if the file was unreadable (then: empty)."""
    try:
        with open(path, encoding="utf-8") as f:
            raw = f.read(_MAX_BYTES + 1)
    except FileNotFoundError:
        return LocalState(), None
    except OSError as e:
        return LocalState(), f"cannot read {path}: {e}"
    try:
        data: Any = json.loads(raw)
        pending = {str(k): str(v) for k, v in dict(data.get("pending", {})).items()}
        released = {
            str(u): {str(lock): int(i) for lock, i in dict(locks).items()}
            for u, locks in dict(data.get("released", {})).items()
        }
        departed = [str(u) for u in list(data.get("departed", []))]
        written = int(data.get("written", 0))
        self_app = data.get("self_app_events", False) is True
    except (ValueError, TypeError, AttributeError) as e:
        return LocalState(), f"ignoring unreadable {path}: {str(e)[:80]}"
    return LocalState(pending, released, departed, written, self_app), None


def save_state(path: str, state: LocalState) -> None:
    """Write ``state`` atomically; remove the file when there is nothing to remember."""
    if state == LocalState():
        if os.path.exists(path):
            os.unlink(path)
        return
    raw = json.dumps(state._asdict(), sort_keys=True, separators=(",", ":"))
    try:
        with open(path, encoding="utf-8") as f:
            if f.read(_MAX_BYTES + 1) == raw:
                return
    except OSError:
        pass
    fd, tmp = tempfile.mkstemp(prefix=".charm_coordinator.", dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(raw)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
