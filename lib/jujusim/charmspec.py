"""What the simulator needs to know about a charm directory, read once.

Both runtimes and the model use this: metadata (peer endpoints), config options and
their defaults, actions, and, for ops charms, the entry file of the charm class.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

import yaml

__all__ = ["CharmSpec", "load_charm_spec"]


def _read_yaml(path: str) -> dict[str, Any]:
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as f:
        data = yaml.safe_load(f)
    return data if isinstance(data, dict) else {}


@dataclasses.dataclass(frozen=True)
class CharmSpec:
    """A charm as Juju would read it from its directory."""

    charm_dir: str
    name: str
    meta: Mapping[str, Any]
    config: Mapping[str, Any]
    """The ``config.yaml`` document: ``{"options": {name: {type, default, ...}}}``."""
    actions: Mapping[str, Any]
    entry: str | None
    """Path of the ops entry file (``src/charm.py`` ...) if one was found."""

    @property
    def peer_endpoints(self) -> list[str]:
        """Peer endpoint names in metadata order."""
        peers = self.meta.get("peers") or {}
        return list(peers)

    def config_defaults(self) -> dict[str, Any]:
        """Options with a default, as ``config-get`` reports them before any change."""
        out: dict[str, Any] = {}
        for name, opt in (self.config.get("options") or {}).items():
            if isinstance(opt, dict) and opt.get("default") is not None:
                out[name] = opt["default"]
        return out


def _find_entry(charm_dir: str, charmcraft: Mapping[str, Any]) -> str | None:
    parts = charmcraft.get("parts") or {}
    part = parts.get("charm") if isinstance(parts, dict) else None
    if isinstance(part, dict) and isinstance(part.get("charm-entrypoint"), str):
        candidate = os.path.join(charm_dir, part["charm-entrypoint"])
        if os.path.exists(candidate):
            return candidate
    for rel in ("src/charm.py", "charm/charm.py", "charm.py"):
        candidate = os.path.join(charm_dir, rel)
        if os.path.exists(candidate):
            return candidate
    return None


def load_charm_spec(charm_dir: str) -> CharmSpec:
    """Read ``metadata.yaml`` (or ``charmcraft.yaml``), ``config.yaml``, ``actions.yaml``."""
    charm_dir = os.path.abspath(charm_dir)
    if not os.path.isdir(charm_dir):
        raise FileNotFoundError(f"charm directory not found: {charm_dir}")
    charmcraft = _read_yaml(os.path.join(charm_dir, "charmcraft.yaml"))
    meta = _read_yaml(os.path.join(charm_dir, "metadata.yaml"))
    if not meta:
        meta = {
            k: v
            for k, v in charmcraft.items()
            if k in ("name", "peers", "requires", "provides", "summary", "description")
        }
    if not meta.get("name"):
        raise ValueError(f"{charm_dir}: no charm name in metadata.yaml or charmcraft.yaml")
    config = _read_yaml(os.path.join(charm_dir, "config.yaml"))
    if not config and isinstance(charmcraft.get("config"), dict):
        config = dict(charmcraft["config"])
    actions = _read_yaml(os.path.join(charm_dir, "actions.yaml"))
    if not actions and isinstance(charmcraft.get("actions"), dict):
        actions = dict(charmcraft["actions"])
    return CharmSpec(
        charm_dir=charm_dir,
        name=str(meta["name"]),
        meta=meta,
        config=config,
        actions=actions,
        entry=_find_entry(charm_dir, charmcraft),
    )
