"""Several units of a classic charm, each hook a real subprocess with real hook tools.

Each hook gets an in-memory HookContext (tests/sim/memcontext.py) built from the
committed bags of every unit, and the bags are written back only when the hook exits 0,
as Juju commits. Views are fresh (no cache staleness): the protocol's stale-view
safety is covered by the property tests; these tests cover the adapter.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "sim"))

from memcontext import MemContext

from jujusim.context import HookInvocation, HookOutcome
from jujusim.process import ProcessRuntime

CHARM = Path(__file__).resolve().parent.parent / "charms" / "proc_classic"
KEY = "coordinator"


class Cluster:
    """Units ``cls/0..n-1`` on peer relation ``cluster:1``; ``cls/0`` leads by default."""

    def __init__(self, runtime: ProcessRuntime, out: Path, n: int = 3, leader: int = 0) -> None:
        self.rt = runtime
        self.out = out
        self.units = [f"cls/{i}" for i in range(n)]
        self.bags: dict[str, dict[str, str]] = {u: {} for u in self.units}
        self.app_bag: dict[str, str] = {}
        self.leader_settings: dict[str, str] = {}
        self.leader = f"cls/{leader}"
        self.last: MemContext | None = None

    def ctx(self, unit: str) -> MemContext:
        peers = tuple(u for u in self.units if u != unit)
        ctx = MemContext(unit, leader=unit == self.leader, peers=peers,
                         endpoint="cluster", relation_id="cluster:1")  # fmt: skip
        for u in self.units:
            ctx.unit_bags[u].update(self.bags[u])
        ctx.app_bag.update(self.app_bag)
        ctx.leader_settings.update(self.leader_settings)
        return ctx

    def hook(
        self,
        unit: str,
        name: str,
        *calls: list[Any],
        remote: str | None = None,
        departing: str | None = None,
        **plan: Any,
    ) -> dict[str, Any]:
        """Run hook ``name`` on ``unit`` doing ``calls``; return what the charm reported."""
        ctx = self.ctx(unit)
        env = {"CLASSIC_PLAN": json.dumps({"calls": [list(c) for c in calls], **plan})}
        if name.startswith("cluster-relation-"):
            env.update(JUJU_RELATION="cluster", JUJU_RELATION_ID="cluster:1",
                       JUJU_REMOTE_UNIT=remote or "", JUJU_REMOTE_APP="cls")  # fmt: skip
            if departing:
                env["JUJU_DEPARTING_UNIT"] = departing
        before = self.out.stat().st_size if self.out.exists() else 0
        outcome: HookOutcome = self.rt.run(
            HookInvocation(unit=unit, kind="hook", name=name, env=env), ctx
        )
        self.last = ctx
        self.leader_settings = dict(ctx.leader_settings)  # leader-set is immediate
        report: dict[str, Any] = {"exit_code": outcome.exit_code, "stderr": outcome.stderr}
        if outcome.exit_code == 0:
            ctx.commit()
            self.bags[unit] = dict(ctx.unit_bags[unit])
            self.app_bag = dict(ctx.app_bag)
        else:
            ctx.discard()
        if self.out.exists():
            with open(self.out) as f:
                f.seek(before)
                lines = f.read().splitlines()
            if lines:
                report.update(json.loads(lines[-1]))
        report["logs"] = ctx.logs
        report["leader_settings"] = ctx.leader_settings
        return report

    def doc(self, unit: str) -> dict[str, Any] | None:
        raw = self.bags[unit].get(KEY)
        return json.loads(raw) if raw else None

    def queue(self, lock: str = "restart") -> list[tuple[str, int]]:
        raw = self.app_bag.get(KEY)
        if not raw:
            return []
        return [(e[1], e[2]) for e in json.loads(raw)["queues"].get(lock, [])]

    def app_doc(self) -> dict[str, Any] | None:
        raw = self.app_bag.get(KEY)
        return json.loads(raw) if raw else None

    def remove(self, unit: str) -> None:
        """The unit is gone: out of relation-list and goal-state, its bag with it."""
        self.units.remove(unit)
        del self.bags[unit]

    def state_file(self, unit: str, key: str = KEY) -> str:
        return os.path.join(self.rt.unit_charm_dir(unit), f".charm_coordinator.{key}.json")


def result(report: dict[str, Any], name: str, *args: Any) -> Any:
    """The value the charm got from its call ``name(*args)`` in that hook."""
    for item in report["results"]:
        if item[0] == name and list(item[1:-1]) == list(args):
            return item[-1]
    raise AssertionError(f"no {name}{args} in {report.get('results')}: {report.get('stderr')}")
