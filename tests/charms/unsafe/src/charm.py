#!/usr/bin/env python3
"""Restarts as soon as the config changes: several units are inside at once."""

import json
import os

import ops


def journal(unit, event, op="restart"):
    path = os.environ.get("JUJUSIM_JOURNAL")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"unit": unit, "event": event, "op": op}) + "\n")


class UnsafeCharm(ops.CharmBase):
    _stored = ops.StoredState()

    def __init__(self, framework):
        super().__init__(framework)
        self._stored.set_default(token="")
        framework.observe(self.on.config_changed, self._on_config_changed)

    def _on_config_changed(self, event):
        token = str(self.config.get("restart-token", ""))
        if token and token != self._stored.token:
            journal(self.unit.name, "begin")
            journal(self.unit.name, "end")
            self._stored.token = token


if __name__ == "__main__":
    ops.main(UnsafeCharm)
