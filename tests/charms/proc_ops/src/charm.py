#!/usr/bin/env python3
"""A tiny ops charm: each handler appends what it saw to $PROC_TEST_OUT as JSON lines."""

import json
import os

import ops


def report(**fields):
    path = os.environ.get("PROC_TEST_OUT")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps(fields, sort_keys=True) + "\n")


class ProcCharm(ops.CharmBase):
    _stored = ops.StoredState()

    def __init__(self, framework):
        super().__init__(framework)
        self._stored.set_default(hooks=0)
        framework.observe(self.on.install, self._on_install)
        framework.observe(self.on.update_status, self._on_update_status)
        framework.observe(self.on.config_changed, self._on_config_changed)
        framework.observe(self.on.start, self._on_start)
        framework.observe(self.on.peer_relation_changed, self._on_peer_changed)
        framework.observe(self.on.do_thing_action, self._on_do_thing)
        framework.observe(self.on.restart_action, self._on_restart)

    def _on_install(self, event):
        env = {k: v for k, v in os.environ.items() if k.startswith(("JUJU", "CHARM_DIR"))}
        report(event="install", env=env, path=os.environ["PATH"], cwd=os.getcwd())

    def _on_update_status(self, event):
        self._stored.hooks += 1
        self.unit.status = ops.ActiveStatus(f"ok {self.config['greeting']}")
        self.unit.set_workload_version("1.2.3")
        report(event="update-status", hooks=self._stored.hooks, leader=self.unit.is_leader())

    def _on_config_changed(self, event):
        # Writes app data whatever its leadership: a non-leader must fail this hook.
        self._stored.hooks += 1
        relation = self.model.get_relation("peer")
        relation.data[self.app]["greeting"] = self.config["greeting"]
        report(event="config-changed", config=dict(self.config))

    def _on_start(self, event):
        binding = self.model.get_binding("peer")
        self.unit.open_port("tcp", 8080)
        report(
            event="start",
            planned=self.app.planned_units(),
            address=str(binding.network.bind_address),
            ports=sorted(p.port for p in self.unit.opened_ports()),
        )

    def _on_peer_changed(self, event):
        remote = event.relation.data[event.unit] if event.unit else {}
        mine = event.relation.data[self.unit]
        mine["seen"] = remote.get("value", "")
        app_data = None
        if self.unit.is_leader():
            event.relation.data[self.app]["lock"] = "held"
            app_data = dict(event.relation.data[self.app])
        report(
            event="peer-relation-changed",
            remote=dict(remote),
            units=sorted(u.name for u in event.relation.units),
            app=event.app.name if event.app else None,
            mine=dict(mine),
            app_data=app_data,
        )

    def _on_do_thing(self, event):
        value = event.params.get("value", "")
        event.log(f"working on {value}")
        if value == "fail":
            event.fail("asked to fail")
            return
        event.set_results({"echo": value, "nested": {"key": "deep"}})

    def _on_restart(self, event):
        journal = os.environ.get("JUJUSIM_JOURNAL")
        for phase in ("begin", "end"):
            if journal:
                with open(journal, "a") as f:
                    f.write(json.dumps({"unit": self.unit.name, "event": phase, "op": "restart"}))
                    f.write("\n")


if __name__ == "__main__":
    ops.main(ProcCharm)
