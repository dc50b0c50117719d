"""What the simulator needs to know about a charm directory, read once.

Both runtimes and the model use this: metadata (peer endpoints), config options and
their defaults, actions, and, for ops charms, the entry file of the charm class.

A campaign reads the same directory thousands of times (every schedule builds a
runtime), so the parsed YAML is kept per directory, keyed by the files' stat
(size, mtime, ctime, inode): an edited file is read again. Each call returns its own
copy of the documents.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from collections.abc import Mapping
from typing import Any

import yaml

__all__ = ["CharmSpec", "charm_stamp", "load_charm_spec"]


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


_SOURCES = ("charmcraft.yaml", "metadata.yaml", "config.yaml", "actions.yaml")
_parsed: dict[str, tuple[tuple[Any, ...], tuple[dict[str, Any], ...]]] = {}


def charm_stamp(charm_dir: str) -> tuple[Any, ...]:
    """What identifies the contents of the YAML files of ``charm_dir`` (None: absent).

    ``charm_dir`` must be absolute (as ``CharmSpec.charm_dir``).
    """
    out: list[Any] = []
    for name in _SOURCES:
        try:
            st = os.stat(os.path.join(charm_dir, name))
        except OSError:
            out.append(None)
        else:
            out.append((st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino))
    return tuple(out)


def _documents(charm_dir: str) -> tuple[dict[str, Any], ...]:
    """The parsed YAML files of ``charm_dir`` (in ``_SOURCES`` order), read once per stat."""
    stamp = charm_stamp(charm_dir)
    hit = _parsed.get(charm_dir)
    if hit is None or hit[0] != stamp:
        docs = tuple(_read_yaml(os.path.join(charm_dir, name)) for name in _SOURCES)
        # A file changed while it was read gets read again next time.
        _parsed[charm_dir] = (stamp if charm_stamp(charm_dir) == stamp else (), docs)
        hit = _parsed[charm_dir]
    return copy.deepcopy(hit[1])


def load_charm_spec(charm_dir: str) -> CharmSpec:
    """Read ``metadata.yaml`` (or ``charmcraft.yaml``), ``config.yaml``, ``actions.yaml``."""
    charm_dir = os.path.abspath(charm_dir)
    if not os.path.isdir(charm_dir):
        raise FileNotFoundError(f"charm directory not found: {charm_dir}")
    charmcraft, meta, config, actions = _documents(charm_dir)
    if not meta:
        meta = {
            k: v
            for k, v in charmcraft.items()
            if k in ("name", "peers", "requires", "provides", "summary", "description")
        }
    if not meta.get("name"):
        raise ValueError(f"{charm_dir}: no charm name in metadata.yaml or charmcraft.yaml")
    if not config and isinstance(charmcraft.get("config"), dict):
        config = dict(charmcraft["config"])
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
