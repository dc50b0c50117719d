"""Where the hooks of a rolling restart go, per implementation: by kind, and by cause.

    python benchmarks/hook_breakdown.py [--units 6] [--seeds 0,1,2] [--runtime fork]
                                        [--scenario rolling-restart] [--impls all] [--json F]

Every committed write of a hook is classified from the data it changed (ours: request,
release, ack in a unit document; append, prune, wake in the application document;
charmhelpers: request and release in unit bags, grant and clear in leader settings;
rollingops: request and finish in unit bags, grant and release in the application bag).
Each hook after the trigger is then charged to what caused it: a ``relation-changed``
about a unit to that unit's latest committed write, an application-level one to the
latest application write, ``leader-settings-changed`` to the latest leader-set, the rest
to their own kind (config-changed, update-status, juju-exec). A hook that wrote nothing
and ran no operation is counted as idle. Printed per implementation: hooks by kind,
writes by class, hooks by cause (with how many of them were idle).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import sys
import tempfile
from collections.abc import Mapping
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "charms"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

from build import CHARMS, build  # noqa: E402

from jujusim.context import RuntimeWrapper  # noqa: E402


def _json(text: str | None) -> Any:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def _ours_unit(old: Any, new: Any) -> list[str]:
    old, new = old or {}, new or {}
    out = []
    for lock, rec in (new.get("locks") or {}).items():
        before = (old.get("locks") or {}).get(lock) or {}
        if rec.get("id", 0) > before.get("id", 0):
            out.append("request")
        if rec.get("released", 0) > before.get("released", 0):
            out.append("release")
    if new.get("ack") != old.get("ack"):
        out.append("ack")
    return out or ["other"]


def _ours_app(old: Any, new: Any) -> list[str]:
    old, new = old or {}, new or {}
    out = []
    for lock in set(old.get("queues") or {}) | set(new.get("queues") or {}):
        before = {tuple(e[:2]) for e in (old.get("queues") or {}).get(lock, [])}
        after = {tuple(e[:2]) for e in (new.get("queues") or {}).get(lock, [])}
        if after - before:
            out.append("append")
        if before - after:
            out.append("prune")
    if new.get("wake") != old.get("wake"):
        out.append("wake")
    return out or ["other"]


def _ch_unit(old: Any, new: Any) -> list[str]:
    old, new = old or {}, new or {}
    out = []
    if set(new) - set(old) or any(new[k] != old.get(k) for k in new if k in old):
        out.append("request")
    if set(old) - set(new):
        out.append("release")
    return out or ["other"]


def _ch_leader(old: Any, new: Any) -> list[str]:
    old, new = old or {}, new or {}
    out = []
    for unit in set(old) | set(new):
        a, b = old.get(unit) or {}, new.get(unit) or {}
        if set(b.items()) - set(a.items()):
            out.append("grant")
        if set(a) - set(b):
            out.append("clear")
    return out or ["other"]


def classify(
    impl: str, kind: str, old: Mapping[str, str], changes: Mapping[str, str]
) -> list[str]:
    """Classes of one committed write (``kind``: unit, app or leader)."""
    new = {k: v for k, v in {**old, **changes}.items() if v != ""}
    if (impl.startswith("charm_coordinator") and impl != "charm_coordinator.classic") or (
        impl == "charm_coordinator.classic" and kind in ("unit", "app")
    ):
        a, b = _json(old.get("coordinator")), _json(new.get("coordinator"))
        if a == b:
            return []
        return _ours_unit(a, b) if kind == "unit" else _ours_app(a, b)
    if impl == "charmhelpers":
        a, b = _json(old.get("coordinator")), _json(new.get("coordinator"))
        if a == b:
            return []
        return _ch_unit(a, b) if kind == "unit" else _ch_leader(a, b)
    if impl == "rollingops":
        if kind == "unit":
            out = []
            if old.get("operations") != new.get("operations") and new.get("state") == "request":
                out.append("request")
            if old.get("executed_at") != new.get("executed_at"):
                out.append("finish")
            if old.get("state") != new.get("state") and not out:
                out.append("state")
            return out or (["other"] if old != new else [])
        if kind == "app":
            if old.get("granted_unit") != new.get("granted_unit"):
                return ["grant"] if new.get("granted_unit") else ["release"]
            return ["other"] if old != new else []
    return ["other"] if dict(old) != new else []


class _Recorder(RuntimeWrapper):
    """Wraps a runtime: keeps, per unit and in order, the classes of each hook's writes."""

    def __init__(self, inner: Any, impl: str) -> None:
        super().__init__(inner)
        self.impl = impl
        self.writes: dict[str, list[list[tuple[str, str]]]] = collections.defaultdict(list)

    def run(self, invocation: Any, ctx: Any) -> Any:
        model = ctx._model
        leader_before = dict(model.leader_settings)
        outcome = self.inner.run(invocation, ctx)
        classes: list[tuple[str, str]] = []

        def note(kind: str, found: list[str]) -> None:
            if found:
                classes.append((kind, "+".join(found)))

        if outcome.exit_code == 0:
            for rid, changes in ctx.unit_writes.items():
                old = ctx._committed[rid][0].get(invocation.unit) or {}
                note("unit", classify(self.impl, "unit", old, changes))
            for rid, changes in ctx.app_writes.items():
                old = ctx._committed[rid][2] or {}
                note("app", classify(self.impl, "app", old, changes))
        leader_after = dict(model.leader_settings)
        if leader_after != leader_before:  # leader-set is immediate, even if the hook fails
            note("leader", classify(self.impl, "leader", leader_before, leader_after))
        self.writes[invocation.unit].append(classes)
        return outcome



def breakdown(impl: str, units: int, scenario: str, seed: int, runtime: str) -> dict[str, Any]:
    """One run, analysed."""
    import jujusim.bench_scenarios  # noqa: F401 - registers the comparison's scenarios
    from jujusim.runner import make_runtime, run_scenario

    with tempfile.TemporaryDirectory(prefix="breakdown-") as tmp:
        charm = build(impl, os.path.join(tmp, "build"))
        work = os.path.join(tmp, "sim")
        os.makedirs(work)
        rec = _Recorder(make_runtime(runtime, charm, work), impl)
        result = run_scenario(
            charm, units=units, scenario=scenario, runtime=rec, seed=seed, workdir=work
        )
    # per unit, the i-th runtime call is the unit's i-th record that reached the runtime
    calls: dict[str, int] = collections.defaultdict(int)
    writes_of: dict[int, list[tuple[str, str]]] = {}
    for r in result.records:
        k = calls[r.unit]
        if k < len(rec.writes[r.unit]):
            writes_of[r.index] = rec.writes[r.unit][k]
        calls[r.unit] += 1
    by_kind: collections.Counter[str] = collections.Counter()
    by_write: collections.Counter[str] = collections.Counter()
    by_cause: collections.Counter[str] = collections.Counter()
    idle_by_cause: collections.Counter[str] = collections.Counter()
    last_unit: dict[str, str] = {}
    last_app = last_leader = "before the trigger"
    pending: list[tuple[float, Any]] = []  # commits not yet visible: (end, record)
    for r in sorted(result.records, key=lambda x: x.start):
        # make visible every write committed before this hook started
        for end, done in sorted(pending, key=lambda p: p[0]):
            if end <= r.start:
                for kind, cls in writes_of.get(done.index, []):
                    if kind == "unit":
                        last_unit[done.unit] = cls
                    elif kind == "app":
                        last_app = cls
                    else:
                        last_leader = cls
        pending = [(e, d) for e, d in pending if e > r.start]
        pending.append((r.end, r))
        if r.start < result.trigger_time:
            continue
        kind = r.hook.kind
        if kind == "relation-changed":
            if r.hook.remote_unit:
                cause = f"{last_unit.get(r.hook.remote_unit, 'no write')} of a peer"
                kind = "relation-changed (unit)"
            else:
                cause = f"{last_app} in the app bag"
                kind = "relation-changed (app)"
        elif kind == "leader-settings-changed":
            cause = f"{last_leader} in leader settings"
        else:
            cause = r.hook.name
        by_kind[kind] += 1
        by_cause[cause] += 1
        own = writes_of.get(r.index, [])
        for w in own:
            by_write[f"{w[0]}: {w[1]}"] += 1
        if not own and not r.journal:
            idle_by_cause[cause] += 1
    return {
        "impl": impl,
        "units": units,
        "seed": seed,
        "hooks": result.hooks,
        "rounds": result.rounds,
        "by_kind": dict(by_kind),
        "writes": dict(by_write),
        "by_cause": dict(by_cause),
        "idle_by_cause": dict(idle_by_cause),
    }


def _median_counts(rows: list[dict[str, Any]], key: str) -> dict[str, float]:
    names = {k for r in rows for k in r[key]}
    return {k: statistics.median(r[key].get(k, 0) for r in rows) for k in sorted(names)}


def main(argv: list[str] | None = None) -> int:
    """Run and print the breakdown."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--units", type=int, default=6)
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--scenario", default="rolling-restart")
    parser.add_argument("--runtime", default="fork", choices=["fork", "process"])
    parser.add_argument("--impls", default="all")
    parser.add_argument("--json", help="write the per-run breakdowns here")
    args = parser.parse_args(argv)
    impls = list(CHARMS) if args.impls == "all" else args.impls.split(",")
    seeds = [int(s) for s in args.seeds.split(",") if s]
    runs = []
    for impl in impls:
        rows = [breakdown(impl, args.units, args.scenario, s, args.runtime) for s in seeds]
        runs += rows
        print(
            f"\n== {impl}, N={args.units}, {args.scenario}, seeds {args.seeds}: hooks "
            f"{statistics.median(r['hooks'] for r in rows)}, rounds "
            f"{statistics.median(r['rounds'] for r in rows)} (medians)"
        )
        for title, key in (
            ("hooks by kind", "by_kind"),
            ("committed writes by class", "writes"),
            ("hooks by cause", "by_cause"),
            ("  of which idle (no write, no operation)", "idle_by_cause"),
        ):
            print(f"  {title}:")
            for name, value in sorted(_median_counts(rows, key).items(), key=lambda kv: -kv[1]):
                print(f"    {value:6g}  {name}")
    if args.json:
        import datetime

        from compare import machine  # type: ignore[import-not-found]

        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(
                {
                    "command": " ".join(["python", "benchmarks/hook_breakdown.py", *sys.argv[1:]]),
                    "date": datetime.datetime.now(datetime.timezone.utc).strftime(
                        "%Y-%m-%d %H:%M UTC"
                    ),
                    "machine": machine(),
                    "runs": runs,
                },
                f,
                indent=1,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
