"""``python -m jujusim``: ``run`` one scenario, or a ``campaign`` of seeded schedules.

The command names, options and JSON keys are a contract (DESIGN.md): extend them,
never rename them.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from collections.abc import Sequence
from typing import Any

from jujusim.engine import SimConfig
from jujusim.faults import parse_faults
from jujusim.scenarios import SCENARIOS

__all__ = ["main"]


def _units_range(value: str) -> tuple[int, int]:
    lo, sep, hi = value.partition("..")
    try:
        a = int(lo)
        b = int(hi) if sep else a
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N or A..B, got {value!r}") from None
    if a < 1 or b < a:
        raise argparse.ArgumentTypeError(f"bad unit range {value!r}")
    return a, b


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m jujusim",
        description="Simulate a multi-unit Juju model running a real charm, and check "
        "invariants against what its workload did.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("charm_dir", metavar="CHARM_DIR", help="the charm directory")
        p.add_argument(
            "--scenario", default="rolling-restart", choices=sorted(SCENARIOS), help="scenario"
        )
        p.add_argument("--seed", type=int, default=0, help="seed of every random choice")
        p.add_argument(
            "--faults",
            default="none",
            help="fault spec: none, all, or e.g. leader-change=0.05,hook-fail=0.02,"
            "remove=1,add=1,delay=0.1,fail=app/2:peer-relation-changed,window=300 "
            "(see docs/simulator.md)",
        )
        p.add_argument("--json", metavar="FILE", help="write the result as JSON ('-' = stdout)")
        p.add_argument(
            "--leader-app-changed",
            choices=("on", "off"),
            default="on",
            help="whether the leader gets relation-changed for its own app-data writes "
            "(Juju 3.6: on)",
        )
        p.add_argument("--max-hooks", type=int, help="hook budget per phase (hook storm)")
        p.add_argument(
            "--zones",
            type=int,
            default=1,
            help="availability zones the units are spread over, round-robin by unit "
            "number (JUJU_AVAILABILITY_ZONE=zone-1..zone-K); default 1",
        )
        p.add_argument(
            "--upgrade-to",
            metavar="DIR",
            help="the new charm directory the upgrade-* scenarios upgrade units to",
        )

    run = sub.add_parser("run", help="run one scenario and print its timeline")
    common(run)
    run.add_argument("--units", type=int, required=True, help="number of units")
    run.add_argument(
        "--runtime", choices=("process", "fork", "inprocess", "direct"), default="process"
    )
    run.add_argument("--timeline", metavar="FILE.svg", help="write a swimlane SVG")
    run.add_argument("--no-timeline", action="store_true", help="print only the summary")
    run.add_argument("--width", type=int, default=72, help="columns of the text timeline")
    run.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="charm config at deploy (juju deploy --config); repeatable; what a campaign's "
        "replay command passes",
    )
    run.add_argument(
        "--deploy-seed",
        type=int,
        help="draw the deployment from this seed and the rest of the run from --seed "
        "(a campaign's schedules that share one deployment replay with it)",
    )

    camp = sub.add_parser("campaign", help="run many seeded schedules and add them up")
    common(camp)
    camp.add_argument("--schedules", type=int, required=True, help="number of schedules")
    camp.add_argument("--units", type=_units_range, default=(2, 5), help="N or A..B")
    camp.add_argument("--runtime", choices=("process", "inprocess", "direct"), default="inprocess")
    camp.add_argument(
        "--workers",
        type=int,
        default=0,
        help="worker processes (default: one per CPU; 1 runs in this process)",
    )
    camp.add_argument(
        "--unit-weights",
        choices=("uniform", "cost"),
        default="uniform",
        help="how unit counts are drawn: uniform, or cost (weight 1/N^2: the same compute "
        "for every unit count)",
    )
    camp.add_argument(
        "--share-deploys",
        type=int,
        default=1,
        metavar="K",
        help="schedules per deployment: K schedules start from one settled deployment "
        "(deployed once, snapshot, restored) and differ from the trigger on; default 1",
    )
    camp.add_argument(
        "--markdown",
        metavar="FILE",
        help="write the reliability report (fault model, invariants, these figures)",
    )
    return parser


def _write_text(path: str, text: str) -> None:
    """Write a report file, creating its directory (``out/`` on a fresh clone)."""
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def _write_json(path: str, data: dict[str, Any]) -> None:
    text = json.dumps(data, indent=2, sort_keys=False) + "\n"
    if path == "-":
        sys.stdout.write(text)
    else:
        _write_text(path, text)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns 0 when every run completed without violations."""
    args = _parser().parse_args(argv)
    args.command_line = "python -m jujusim " + " ".join(
        shlex.quote(str(a)) for a in (sys.argv[1:] if argv is None else argv)
    )
    try:
        faults = parse_faults(args.faults)
    except ValueError as e:
        print(f"jujusim: {e}", file=sys.stderr)
        return 2
    if args.zones < 1:
        print("jujusim: --zones must be at least 1", file=sys.stderr)
        return 2
    config = SimConfig(
        leader_sees_own_app_changes=args.leader_app_changed == "on", zones=args.zones
    )
    from jujusim.report import Progress

    progress = Progress()
    try:
        if args.command == "run":
            return _run(args, faults, config, progress)
        return _campaign(args, faults, config, progress)
    except (RuntimeError, FileNotFoundError, ImportError, ValueError) as e:
        progress.done()
        print(f"jujusim: {e}", file=sys.stderr)
        return 2


def _charm_config(charm_dir: str, items: Sequence[str]) -> dict[str, Any]:
    """``--config KEY=VALUE`` items, typed by the charm's config.yaml."""
    from jujusim.charmspec import load_charm_spec

    options = load_charm_spec(charm_dir).config.get("options") or {}
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in options:
            raise ValueError(f"--config {item!r}: expected KEY=VALUE with KEY in config.yaml")
        kind = (options.get(key) or {}).get("type", "string")
        if kind == "int":
            out[key] = int(value)
        elif kind == "float":
            out[key] = float(value)
        elif kind == "boolean":
            out[key] = value.lower() in ("true", "yes", "1")
        else:
            out[key] = value
    return out


def _run(args: argparse.Namespace, faults: Any, config: SimConfig, progress: Any) -> int:
    from jujusim.report import summary, text_timeline
    from jujusim.runner import run_scenario

    result = run_scenario(
        args.charm_dir,
        units=args.units,
        scenario=args.scenario,
        runtime=args.runtime,
        seed=args.seed,
        faults=faults,
        config=config,
        max_hooks=args.max_hooks,
        progress=progress,
        charm_config=_charm_config(args.charm_dir, args.config),
        upgrade_to=args.upgrade_to,
        deploy_seed=args.deploy_seed,
    )
    progress.done()
    out = sys.stdout
    if args.json != "-":
        if not args.no_timeline:
            out.write(text_timeline(result, width=args.width) + "\n\n")
        # the replay line repeats what else shaped the run: zones and config overrides
        extra = f" --zones {args.zones}" if args.zones != 1 else ""
        extra += "".join(f" --config {shlex.quote(c)}" for c in args.config or ())
        text = summary(result).replace("CHARM_DIR", shlex.quote(args.charm_dir))
        out.write(text + extra + "\n")
    if args.json:
        _write_json(args.json, result.to_json())
    if args.timeline:
        from jujusim.svg import svg_timeline

        _write_text(args.timeline, svg_timeline(result))
    return 0 if result.completed and not result.violations else 1


def _campaign(args: argparse.Namespace, faults: Any, config: SimConfig, progress: Any) -> int:
    from jujusim.campaign import default_workers, run_campaign

    def on_schedule(i: int, result: Any) -> None:
        if not result.ok:  # a long campaign says what it found as it finds it
            progress.done()
            print(
                f"[jujusim] schedule {i + 1}: seed {result.seed} ({result.units} units"
                f"{result.schedule.config_args()}) FAILED: {'; '.join(result.violations)}",
                file=sys.stderr,
                flush=True,
            )
        if progress.enabled:
            ok = result.completed and not result.violations
            progress.stream.write(
                f"\r[jujusim] schedule {i + 1}/{args.schedules}: seed {result.seed} "
                f"units {result.units} {'ok' if ok else 'FAIL'}   "
            )
            progress.stream.flush()
            progress._shown = True

    result = run_campaign(
        args.charm_dir,
        schedules=args.schedules,
        units=args.units,
        scenario=args.scenario,
        runtime=args.runtime,
        seed=args.seed,
        faults=faults,
        config=config,
        on_schedule=on_schedule,
        workers=args.workers or default_workers(),
        unit_weights=args.unit_weights,
        share_deploys=args.share_deploys,
    )
    progress.done()
    data = result.to_json()
    if args.json != "-":
        print(
            f"{'OK' if not result.failing else 'FAILED'}: {data['schedules']} schedules of "
            f"{data['scenario']} ({data['units'][0]}..{data['units'][1]} units, runtime "
            f"{data['runtime']}, faults {data['faults']}): {data['completed']} completed, "
            f"{data['violations']} violations, {data['lost_requests']} lost requests, "
            f"{data['stalled']} stalled, {data['storms']} storms, {data['hooks']} hooks, "
            f"max concurrent {data['max_concurrent']}, wall {data['wall_s']:.1f}s"
        )
        for f in result.failing:
            print(f"  seed {f['seed']} ({f['units']} units): {'; '.join(f['violations'])}")
            print(f"    replay: {f['replay']}")
    if args.json:
        _write_json(args.json, data)
    if args.markdown:
        from jujusim.reliability import markdown

        with open(args.markdown, "w", encoding="utf-8") as md:
            md.write(markdown(result, command=args.command_line))
    return 0 if not result.failing else 1
