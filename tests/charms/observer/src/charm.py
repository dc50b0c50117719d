#!/usr/bin/env python3
"""Records every hook it sees, and what it read, to $OBSERVER_LOG (JSON lines).

Behaviour for tests comes from config: ``bump`` (write own bag), ``app-bump`` (leader
writes app bag; ``force:X`` writes even as a non-leader), ``fail`` (``UNIT:HOOK*N``,
fail the first N runs; the count is kept in a workload file, so it survives rollbacks).
"""

import json
import os

import ops


class ObserverCharm(ops.CharmBase):
    _stored = ops.StoredState()

    def __init__(self, framework):
        super().__init__(framework)
        self._stored.set_default(hooks=0)
        for name, bound in self.on.events().items():
            skip = ("collect_", "pebble", "secret", "storage", "upgrade", "pre_", "post_")
            if name.startswith(skip):
                continue
            framework.observe(bound, self._observe)

    def _observe(self, event):
        hook = os.environ.get("JUJU_HOOK_NAME") or os.environ["JUJU_DISPATCH_PATH"].split("/")[-1]
        rel = self.model.get_relation("peer")
        record = {
            "unit": self.unit.name,
            "hook": hook,
            "leader": self.unit.is_leader(),
            "hooks_before": self._stored.hooks,
        }
        if isinstance(event, ops.RelationEvent):
            record["remote"] = event.unit.name if event.unit else None
            if isinstance(event, ops.RelationDepartedEvent):
                record["departing"] = event.departing_unit.name if event.departing_unit else None
        if rel is not None:
            record["units"] = sorted(u.name for u in rel.units)
            record["peer_bump"] = {u.name: rel.data[u].get("bump") for u in rel.units}
            if isinstance(event, ops.RelationDepartedEvent) and event.unit is not None:
                # ops gives no access to a departed peer's bag (Juju would serve it)
                data = rel.data.get(event.unit)
                record["departed_bump"] = data.get("bump") if data is not None else "no-access"
            record["app"] = dict(rel.data[self.app])
        self._stored.hooks += 1
        self._log(record)
        self.unit.status = ops.MaintenanceStatus(f"ran {hook}")  # immediate, even if we fail
        self._maybe_fail(hook)
        if isinstance(event, ops.ConfigChangedEvent) and rel is not None:
            bump = str(self.config.get("bump", ""))
            if bump:
                rel.data[self.unit]["bump"] = bump
            app_bump = str(self.config.get("app-bump", ""))
            if app_bump.startswith("force:"):
                rel.data[self.app]["bump"] = app_bump[len("force:"):]
            elif app_bump and self.unit.is_leader():
                rel.data[self.app]["bump"] = app_bump
        if isinstance(event, ops.ActionEvent):
            if event.params.get("value") is not None and rel is not None:
                rel.data[self.unit]["bump"] = str(event.params["value"])
            event.set_results({"pong": self.unit.name})

    def _log(self, record):
        path = os.environ.get("OBSERVER_LOG")
        if path:
            with open(path, "a") as f:
                f.write(json.dumps(record, sort_keys=True) + "\n")

    def _maybe_fail(self, hook):
        spec = str(self.config.get("fail", ""))
        if not spec:
            return
        unit, _, rest = spec.partition(":")
        name, _, times = rest.partition("*")
        if unit != self.unit.name or name != hook:
            return
        base = os.environ.get("OBSERVER_LOG", "/tmp/observer")
        counter = base + ".fail." + unit.replace("/", "-")
        n = 0
        if os.path.exists(counter):
            with open(counter) as f:
                n = int(f.read())
        if n < int(times or 1):
            with open(counter, "w") as f:
                f.write(str(n + 1))
            raise RuntimeError(f"observer: failing {hook} on purpose ({n + 1})")


if __name__ == "__main__":
    ops.main(ObserverCharm)
