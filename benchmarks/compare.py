"""Rolling restarts with charm_coordinator against the anchors, in one run.

    python benchmarks/compare.py --units 3,5,10,20 [--runtime process] [--scenarios all]
                                 [--impls all] [--seed 0] [--jobs 2] --json FILE
                                 [--plot FILE.svg] [--readme README.md]

Four minimal charms (``benchmarks/charms/``) do the same rolling restart (config
``restart-token``, the same journal lines): real ``charmhelpers.coordinator.Serial``,
``charmlibs-rollingops`` in peer mode (both unmodified, from PyPI), and ours through its
ops API and its charmhelpers-compatible ``classic`` API. Every implementation, N and
scenario runs once in the simulator (same seed); one row each. ``--readme`` rewrites the
block between ``<!-- compare:begin -->`` and ``<!-- compare:end -->`` with the table, the
date, the machine and the command.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "charms"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

from build import CHARMS, build  # noqa: E402

IMPLS = list(CHARMS)
SCENARIOS = [
    "rolling-restart",
    "leader-mid-queue",
    "leader-error",
    "holder-removed",
    "skew-behind",
    "skew-ahead",
]
COLUMNS = [
    ("impl", "impl"),
    ("units", "N"),
    ("scenario", "scenario"),
    ("completed", "done"),
    ("violations", "viol"),
    ("rounds", "rounds"),
    ("hooks", "hooks"),
    ("hook_tool_calls", "tool calls"),
    ("tool_calls_per_hook", "calls/hook"),
    ("databag_bytes_max", "bag B"),
    ("hook_wall_median_ms", "ms/hook"),
    ("done_while_leader_error", "done in err"),
]


class _Timed:
    """Wraps a runtime and times each hook it runs (wall)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.walls: list[float] = []

    def run(self, invocation: Any, ctx: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return self.inner.run(invocation, ctx)
        finally:
            self.walls.append(time.perf_counter() - t0)

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def run_one(impl: str, units: int, scenario: str, runtime: str, seed: int) -> dict[str, Any]:
    """One simulator run; returns its row."""
    from jujusim.bench_scenarios import LEADER_ERROR_S
    from jujusim.inprocess import InProcessRuntime
    from jujusim.process import ProcessRuntime
    from jujusim.runner import run_scenario

    with tempfile.TemporaryDirectory(prefix="compare-") as tmp:
        charm = build(impl, os.path.join(tmp, "build"))
        workdir = os.path.join(tmp, "sim")
        os.makedirs(workdir)
        inner = (
            ProcessRuntime(charm, workdir)
            if runtime == "process"
            else InProcessRuntime(charm, workdir)
        )
        timed = _Timed(inner)
        result = run_scenario(
            charm, units=units, scenario=scenario, runtime=timed, seed=seed, workdir=workdir
        )
    data = result.to_json()
    ended = [o for o in result.verdict.operations if o.end is not None]
    heal = None
    if scenario == "leader-error":
        granted = [
            r.end
            for r in result.records
            if r.start >= result.trigger_time and any(j.event == "granted" for j in r.journal)
        ]
        heal = (min(granted) if granted else result.trigger_time) + LEADER_ERROR_S
    hooks = max(1, data["hooks"])
    return {
        "impl": impl,
        "units": units,
        "scenario": scenario,
        "runtime": data["runtime"],
        "seed": seed,
        "completed": data["completed"],
        "violations": len(data["violations"]),
        "violation_details": data["violations"][:5],
        "rounds": data["rounds"],
        "hooks": data["hooks"],
        "hook_tool_calls": data["hook_tool_calls"],
        "tool_calls_per_hook": round(data["hook_tool_calls"] / hooks, 1),
        "databag_bytes_max": data["databag_bytes_max"],
        "hook_wall_median_ms": round(1000 * statistics.median(timed.walls), 1)
        if timed.walls
        else 0.0,
        "done_while_leader_error": (
            sum(1 for o in ended if o.end is not None and o.end < heal) if heal else None
        ),
        "operations": data["operations"],
        "end": data["end"],
        "logical_s": data["logical_s"],
        "wall_s": data["wall_s"],
    }


def table(rows: list[dict[str, Any]]) -> str:
    """The rows as a Markdown table."""
    head = "| " + " | ".join(label for _, label in COLUMNS) + " |"
    rule = "|" + "|".join("---" for _ in COLUMNS) + "|"
    lines = [head, rule]
    for row in rows:
        cells = []
        for key, _ in COLUMNS:
            value = row.get(key)
            if isinstance(value, bool):
                value = "yes" if value else "**no**"
            elif key == "violations" and value:
                value = f"**{value}**"
            cells.append("" if value is None else str(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


_COLOURS = {
    "charm_coordinator": "#1f77b4",
    "charm_coordinator.classic": "#17becf",
    "charmhelpers": "#d62728",
    "rollingops": "#ff7f0e",
}


def plot(rows: list[dict[str, Any]], path: str) -> None:
    """Rounds and tool calls per hook against N (rolling-restart), as an SVG."""
    base = [r for r in rows if r["scenario"] == "rolling-restart"]
    panels = [("rounds", "hook rounds"), ("tool_calls_per_hook", "hook-tool calls per hook")]
    width, height, pad = 420, 300, 50
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width * 2}" height="{height + 40}" '
        'font-family="sans-serif" font-size="12">'
    ]
    ns = sorted({r["units"] for r in base}) or [1]
    for i, (key, title) in enumerate(panels):
        x0 = i * width
        ymax = max([float(r[key]) for r in base] + [1.0]) * 1.1
        xs = {
            n: x0 + pad + (width - 2 * pad) * (j / max(1, len(ns) - 1)) for j, n in enumerate(ns)
        }

        def y(v: float, ymax: float = ymax) -> float:
            return height - pad + 20 - (height - 2 * pad) * v / ymax

        parts.append(
            f'<text x="{x0 + width / 2}" y="20" text-anchor="middle">{title} '
            "(rolling-restart)</text>"
        )
        parts.append(
            f'<line x1="{x0 + pad}" y1="{y(0)}" x2="{x0 + width - pad}" y2="{y(0)}" '
            'stroke="black"/>'
        )
        parts.append(
            f'<line x1="{x0 + pad}" y1="{y(0)}" x2="{x0 + pad}" y2="{y(ymax)}" stroke="black"/>'
        )
        for n, x in xs.items():
            parts.append(f'<text x="{x}" y="{y(0) + 15}" text-anchor="middle">N={n}</text>')
        for frac in (0.5, 1.0):
            v = ymax / 1.1 * frac
            parts.append(f'<text x="{x0 + pad - 5}" y="{y(v)}" text-anchor="end">{v:.0f}</text>')
        for impl in IMPLS:
            pts = sorted((r["units"], float(r[key])) for r in base if r["impl"] == impl)
            if not pts:
                continue
            colour = _COLOURS[impl]
            coords = " ".join(f"{xs[n]:.1f},{y(v):.1f}" for n, v in pts)
            parts.append(
                f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="2"/>'
            )
            for n, v in pts:
                parts.append(f'<circle cx="{xs[n]:.1f}" cy="{y(v):.1f}" r="3" fill="{colour}"/>')
    for k, impl in enumerate(IMPLS):
        parts.append(
            f'<rect x="{20 + k * 200}" y="{height + 15}" width="12" height="12" '
            f'fill="{_COLOURS[impl]}"/>'
        )
        parts.append(f'<text x="{36 + k * 200}" y="{height + 26}">{impl}</text>')
    parts.append("</svg>")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(parts) + "\n")


def machine() -> str:
    """A one-line description of this machine."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            names = [ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")]
        if names:
            cpu = names[0]
    except OSError:
        pass
    return (
        f"{platform.system()} {platform.release()}, {cpu}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}"
    )


def readme_block(rows: list[dict[str, Any]], command: str, plot_path: str | None) -> str:
    """The README's generated block."""
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"Generated by `{command}` on {date}; machine: {machine()}.",
        "",
        table(rows),
    ]
    if plot_path:
        lines += ["", f"![rounds and hook-tool calls per hook against N]({plot_path})"]
    return "\n".join(lines)


def update_readme(path: str, block: str) -> None:
    """Replace the generated block in ``path``."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    begin, end = "<!-- compare:begin -->", "<!-- compare:end -->"
    if begin not in text or end not in text:
        raise SystemExit(f"{path}: no {begin} ... {end} block to replace")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"{head}{begin}\n{block}\n{end}{tail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--units", default="3,6", help="comma list of N")
    parser.add_argument("--runtime", default="process", choices=["process", "inprocess"])
    parser.add_argument("--scenarios", default="all", help="comma list, or all")
    parser.add_argument("--impls", default="all", help="comma list, or all")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--json", required=True, help="output file")
    parser.add_argument("--plot", help="SVG file")
    parser.add_argument("--readme", help="README to update (generated block)")
    args = parser.parse_args(argv)
    sizes = [int(n) for n in args.units.split(",") if n]
    scenarios = SCENARIOS if args.scenarios == "all" else args.scenarios.split(",")
    impls = IMPLS if args.impls == "all" else args.impls.split(",")
    if args.runtime == "inprocess" and "rollingops" in impls:
        print(
            "rollingops needs the process runtime (a background worker and juju-exec); skipped",
            file=sys.stderr,
        )
        impls = [i for i in impls if i != "rollingops"]
    jobs = [(i, n, s) for n in sizes for s in scenarios for i in impls]
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    with concurrent.futures.ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = {
            pool.submit(run_one, i, n, s, args.runtime, args.seed): (i, n, s) for i, n, s in jobs
        }
        for fut in concurrent.futures.as_completed(futures):
            i, n, s = futures[fut]
            try:
                row = fut.result()
            except Exception as e:  # a broken run is a row, not a crash
                row = {
                    "impl": i,
                    "units": n,
                    "scenario": s,
                    "completed": False,
                    "violations": 1,
                    "violation_details": [f"run failed: {e!r}"],
                }
            rows.append(row)
            print(
                f"[{time.perf_counter() - started:6.0f}s] {i} N={n} {s}: "
                f"done={row.get('completed')} rounds={row.get('rounds')} "
                f"hooks={row.get('hooks')}",
                file=sys.stderr,
                flush=True,
            )
    order = {s: k for k, s in enumerate(scenarios)}
    rows.sort(key=lambda r: (order.get(r["scenario"], 99), r["units"], IMPLS.index(r["impl"])))
    with open(args.json, "w", encoding="utf-8") as f:
        json.dump(
            {
                "rows": rows,
                "command": " ".join(["benchmarks/compare.py", *sys.argv[1:]]),
                "machine": machine(),
            },
            f,
            indent=1,
        )
    print(table(rows))
    if args.plot:
        plot(rows, args.plot)
    if args.readme:
        command = " ".join(["python", "benchmarks/compare.py", *(argv or sys.argv[1:])])
        rel_plot = (
            os.path.relpath(args.plot, os.path.dirname(os.path.abspath(args.readme)))
            if args.plot
            else None
        )
        update_readme(args.readme, readme_block(rows, command, rel_plot))
    return 0


if __name__ == "__main__":
    sys.exit(main())
