"""Rolling restarts with charm_coordinator against the anchors, in one run.

    python benchmarks/compare.py --units 3,5,10,20 [--runtime fork|process] [--scenarios all]
                                 [--impls all] [--seeds 0,1,2] [--jobs 2] --json FILE
                                 [--plot FILE.svg] [--readme README.md]
    python benchmarks/compare.py --report FILE.json [FILE.json ...] [--plot ...] [--readme ...]

Four minimal charms (``benchmarks/charms/``) do the same rolling restart (config
``restart-token``, the same journal lines): real ``charmhelpers.coordinator.Serial``,
``charmlibs-rollingops`` in peer mode (both unmodified, from PyPI), and ours through its
ops API and its charmhelpers-compatible ``classic`` API. Every implementation, N,
scenario and seed runs once in the simulator; the JSON has one row each, the table one
row per implementation, N and scenario (medians over seeds; violations and overtakes
summed, with the seeds that showed them). ``--report`` redraws the table, the plot and
the README block from earlier JSON files without running anything. ``--readme``
rewrites the block between ``<!-- compare:begin -->`` and ``<!-- compare:end -->`` with
the table, the date, the machine and the commands.

The default runtime is ``fork`` (docs/process-runtime.md, "The fork runtime"): the
process runtime with hooks forked from a server that has imported the charm's libraries,
the same runs as ``process`` (tests/sim/test_process_fork.py) at a fraction of the cost.
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

from jujusim.bench_scenarios import read_by_leader  # noqa: E402
from jujusim.context import RuntimeWrapper  # noqa: E402

IMPLS = list(CHARMS)
SCENARIOS = [
    "rolling-restart",
    "leader-mid-queue",
    "leader-error",
    "leader-error-queued",
    "leader-error-late",
    "holder-removed",
    "skew-behind",
    "skew-ahead",
    "skew-ahead-1m",
]
COLUMNS = [
    ("impl", "impl"),
    ("units", "N"),
    ("scenario", "scenario"),
    ("seeds", "seeds"),
    ("completed", "done"),
    ("violations", "viol"),
    ("overtakes", "overtakes"),
    ("skew_jumps", "skewed unit jumped"),
    ("seen_jumps", "jumped a seen request"),
    ("rounds", "rounds"),
    ("hooks", "hooks"),
    ("hook_tool_calls", "tool calls"),
    ("tool_calls_per_hook", "calls/hook"),
    ("databag_bytes_max", "bag B"),
    ("hook_wall_median_ms", "ms/hook"),
    ("done_while_leader_error", "done in err"),
    ("failing_seeds", "seeds with viol/overtakes"),
]


class _Timed(RuntimeWrapper):
    """Wraps a runtime and times each hook it runs (wall)."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.walls: list[float] = []

    def run(self, invocation: Any, ctx: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return self.inner.run(invocation, ctx)
        finally:
            self.walls.append(time.perf_counter() - t0)



def run_one(impl: str, units: int, scenario: str, runtime: str, seed: int) -> dict[str, Any]:
    """One simulator run; returns its row."""
    from jujusim.bench_scenarios import LEADER_ERROR_S, skewed_unit
    from jujusim.runner import make_runtime, run_scenario

    with tempfile.TemporaryDirectory(prefix="compare-") as tmp:
        charm = build(impl, os.path.join(tmp, "build"))
        workdir = os.path.join(tmp, "sim")
        os.makedirs(workdir)
        inner = make_runtime(runtime, charm, workdir)
        timed = _Timed(inner)
        result = run_scenario(
            charm, units=units, scenario=scenario, runtime=timed, seed=seed, workdir=workdir
        )
    data = result.to_json()
    ended = [o for o in result.verdict.operations if o.end is not None]
    heal = None
    if scenario == "leader-error-late":
        # broken from a moment the scenario picks as it watches: take the first hook
        # that failed because of it (a little late, so a little generous)
        failed = [r.start for r in result.records if "leader-error scenario" in r.error]
        heal = min(failed) + LEADER_ERROR_S if failed else None
    elif scenario.startswith("leader-error"):
        # as the scenario does: broken from the commit of the first hook that logged a
        # grant (to a unit other than the leader, for leader-error-queued)
        leader = result.final_leader
        granted = [
            r.end
            for r in result.records
            if r.start >= result.trigger_time
            and any(
                j.event == "granted" and (scenario == "leader-error" or j.unit != leader)
                for j in r.journal
            )
        ]
        heal = (min(granted) if granted else result.trigger_time) + LEADER_ERROR_S
    overtaken = overtakes(result.records, result.trigger_time, set(result.removed_units))
    jumped = seen_jumps(result.records, result.trigger_time, set(result.removed_units))
    skewed = (
        skewed_unit(result.unit_names, result.final_leader)
        if scenario.startswith("skew-")
        else None
    )
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
        "overtakes": len(overtaken),
        "overtake_details": overtaken[:10],
        "seen_jumps": len(jumped),
        "seen_jump_details": jumped[:10],
        "leader": result.final_leader,
        "skewed_unit": skewed,
        "skew_jumps": (
            sum(1 for o in overtaken if o.split(" before ")[0] == skewed) if skewed else None
        ),
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


def _requests_and_begins(
    records: list[Any], since: float, removed: set[str]
) -> tuple[dict[str, tuple[float, float]], dict[str, float], set[str]]:
    """Per unit after ``since``: its first committed request's hook (start, end), its
    first ``begin`` (hook start), and the units that asked in a hook of their own as
    leader. Units in ``removed`` are left out."""
    asked: dict[str, tuple[float, float]] = {}
    began: dict[str, float] = {}
    own: set[str] = set()
    for rec in records:
        if rec.start < since:
            continue
        for line in rec.journal:
            if line.unit in removed:
                continue
            if line.event == "request" and rec.ok and line.unit not in asked:
                asked[line.unit] = (rec.start, rec.end)
                if rec.leader and line.unit == rec.unit:
                    own.add(line.unit)
            elif line.event == "begin" and line.unit not in began:
                began[line.unit] = rec.start
    return asked, began, own


def overtakes(records: list[Any], since: float, removed: set[str]) -> list[str]:
    """Queue order, measured: pairs where B asked after A's request was committed (B's
    requesting hook started after A's ended) and yet B began its operation first.

    A FIFO queue has none; a queue ordered by the requesters' clocks has some when a
    clock is behind. Units removed during the run are left out.
    """
    asked, began, _ = _requests_and_begins(records, since, removed)
    never = float("inf")
    out = []
    for a, (_, a_end) in sorted(asked.items()):
        for b, (b_start, _) in sorted(asked.items()):
            if a != b and a_end < b_start and began.get(b, never) < began.get(a, never):
                out.append(f"{b} before {a}")
    return out


def seen_jumps(records: list[Any], since: float, removed: set[str]) -> list[str]:
    """Queue order against what the coordinator knew, measured: pairs where B asked after
    the leader had read A's request and yet B began its operation first.

    "Read" is a fact of the run, not of any library: the unit leading at the time ran a
    hook about A (and it committed) after A's request was committed, or A asked in a
    hook of its own as leader. A queue the leader orders as it learns of requests has
    none, whatever the clocks say; one ordered by the requesters' clocks has some when
    a late asker's clock is behind. Units removed during the run are left out.
    """
    asked, began, own = _requests_and_begins(records, since, removed)
    seen = {unit: asked[unit][1] for unit in own}
    ends = {unit: end for unit, (_, end) in asked.items()}
    for rec in records:
        remote = read_by_leader(rec, ends)
        if remote is not None:
            seen[remote] = min(seen.get(remote, rec.end), rec.end)
    never = float("inf")
    out = []
    for a in sorted(seen):
        for b, (b_start, _) in sorted(asked.items()):
            if a != b and seen[a] < b_start and began.get(b, never) < began.get(a, never):
                out.append(f"{b} before {a}")
    return out


def aggregate(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per implementation, N and scenario: medians over seeds, sums of failures."""
    cells: dict[tuple[str, int, str], list[dict[str, Any]]] = {}
    for row in rows:
        cells.setdefault((row["impl"], row["units"], row["scenario"]), []).append(row)
    out = []
    for (impl, units, scenario), group in cells.items():
        group.sort(key=lambda r: r.get("seed", 0))

        def median(key: str, group: list[dict[str, Any]] = group) -> Any:
            values = [r[key] for r in group if isinstance(r.get(key), (int, float))]
            if not values:
                return None
            m = statistics.median(values)
            return round(m, 1) if isinstance(m, float) and not m.is_integer() else int(m)

        done = sum(1 for r in group if r.get("completed"))
        failing = [
            str(r.get("seed"))
            for r in group
            if r.get("violations") or r.get("overtakes") or not r.get("completed")
        ]
        hooks = median("hooks")
        calls = median("hook_tool_calls")
        out.append({
            "impl": impl,
            "units": units,
            "scenario": scenario,
            "seeds": len(group),
            "completed": done == len(group) if len(group) == 1 or done in (0, len(group))
            else f"{done}/{len(group)}",
            "violations": sum(r.get("violations") or 0 for r in group),
            "overtakes": sum(r.get("overtakes") or 0 for r in group),
            "seen_jumps": (
                sum(r.get("seen_jumps") or 0 for r in group)
                if all("seen_jumps" in r for r in group)
                else None
            ),
            "skew_jumps": (
                sum(r.get("skew_jumps") or 0 for r in group)
                if scenario.startswith("skew-")
                else None
            ),
            "rounds": median("rounds"),
            "hooks": hooks,
            "hook_tool_calls": calls,
            "tool_calls_per_hook": median("tool_calls_per_hook"),
            "databag_bytes_max": max((r.get("databag_bytes_max") or 0) for r in group),
            "hook_wall_median_ms": median("hook_wall_median_ms"),
            "done_while_leader_error": median("done_while_leader_error"),
            "failing_seeds": ",".join(failing),
        })  # fmt: skip
    return out


def table(rows: list[dict[str, Any]]) -> str:
    """The rows (aggregated) as a Markdown table."""
    head = "| " + " | ".join(label for _, label in COLUMNS) + " |"
    rule = "|" + "|".join("---" for _ in COLUMNS) + "|"
    lines = [head, rule]
    for row in aggregate(rows):
        cells = []
        for key, _ in COLUMNS:
            value = row.get(key)
            if isinstance(value, bool):
                value = "yes" if value else "**no**"
            elif key in ("violations", "overtakes", "skew_jumps", "seen_jumps") and value:
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
    """Rounds, hooks and tool calls per hook against N (rolling-restart), as an SVG.

    N is to scale on the horizontal axes.
    """
    base = [r for r in aggregate(rows) if r["scenario"] == "rolling-restart"]
    panels = [
        ("rounds", "hook rounds"),
        ("hooks", "hooks"),
        ("tool_calls_per_hook", "hook-tool calls per hook"),
    ]
    width, height, pad = 420, 300, 50
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width * len(panels)}" '
        f'height="{height + 40}" font-family="sans-serif" font-size="12">'
    ]
    ns = sorted({r["units"] for r in base}) or [1]
    for i, (key, title) in enumerate(panels):
        x0 = i * width
        ymax = max([float(r[key]) for r in base] + [1.0]) * 1.1
        span = max(1, ns[-1] - ns[0])
        xs = {n: x0 + pad + (width - 2 * pad) * (n - ns[0]) / span for n in ns}

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
            parts.append(f'<text x="{x}" y="{y(0) + 15}" text-anchor="middle">{n}</text>')
        parts.append(
            f'<text x="{x0 + width - pad + 12}" y="{y(0) + 15}" text-anchor="start">N</text>'
        )
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


OURS = ("charm_coordinator", "charm_coordinator.classic")
ANCHORS = ("charmhelpers", "rollingops")


def goals(rows: list[dict[str, Any]]) -> str:
    """The issue's goals, checked against the rows (rolling-restart medians; all scenarios
    for violations), as a Markdown table."""
    cells = aggregate(rows)
    base = {(r["impl"], r["units"]): r for r in cells if r["scenario"] == "rolling-restart"}
    lines = [
        "| N | rounds (goal <= N+3) | hooks, ours vs charmhelpers (goal <=) | calls/hook, "
        "ours vs best anchor | largest bag B, ours (goal <= 4096 at N=40) | "
        "violations, ours (all scenarios) |",
        "|---|---|---|---|---|---|",
    ]
    for n in sorted({r["units"] for r in cells}):
        ours = [base[(i, n)] for i in OURS if (i, n) in base]
        anchors = [base[(i, n)] for i in ANCHORS if (i, n) in base]
        viol = sum(r["violations"] for r in cells if r["units"] == n and r["impl"] in OURS)
        runs = sum(r["seeds"] for r in cells if r["units"] == n and r["impl"] in OURS)
        if not ours:
            lines.append(f"| {n} | | | | | {viol} in {runs} runs |")
            continue

        def span(key: str, group: list[dict[str, Any]] = ours) -> str:
            values = sorted({str(r[key]) for r in group if r.get(key) is not None})
            return "/".join(values)

        rounds = max(float(r["rounds"] or 0) for r in ours)
        ch = base.get(("charmhelpers", n))
        hooks_ok = ch is not None and all(float(r["hooks"]) <= float(ch["hooks"]) for r in ours)
        best = min((float(r["tool_calls_per_hook"]) for r in anchors), default=None)
        lines.append(
            f"| {n} | {span('rounds')} ({'met' if rounds <= n + 3 else '**not met**'}) "
            f"| {span('hooks')} vs {ch['hooks'] if ch else '?'} "
            f"({'met' if hooks_ok else '**not met**'}) "
            f"| {span('tool_calls_per_hook')} vs {best if best is not None else '?'} "
            f"| {span('databag_bytes_max')} | {viol} in {runs} runs |"
        )
    return "\n".join(lines)


def failures(rows: list[dict[str, Any]]) -> str:
    """The anchors' known failures, as measured: one line per scenario and N that shows
    one, a column per implementation (sums over seeds; rounds and hooks are medians)."""
    cells = {(r["impl"], r["units"], r["scenario"]): r for r in aggregate(rows)}
    impls = [i for i in IMPLS if any(k[0] == i for k in cells)]
    probes = [
        ("skew-behind", "requests overtaken after the leader had read them",
         lambda r: r.get("seen_jumps")),
        ("leader-error-late", "restarts done before the broken leader was fixed",
         lambda r: None if r.get("done_while_leader_error") is None
         else f"{r['done_while_leader_error']} of {r['units']}"),
        ("skew-ahead-1m", "violations; rounds; hooks",
         lambda r: f"{r['violations']}; {r['rounds']}; {r['hooks']}"),
    ]  # fmt: skip
    lines = [
        "| scenario | N | measure | " + " | ".join(impls) + " |",
        "|---|---|---|" + "---|" * len(impls),
    ]
    for scenario, what, value in probes:
        for n in sorted({k[1] for k in cells if k[2] == scenario}):
            got = [cells.get((i, n, scenario)) for i in impls]
            shown = ["" if c is None or value(c) is None else str(value(c)) for c in got]
            if any(shown):
                lines.append(f"| {scenario} | {n} | {what} | " + " | ".join(shown) + " |")
    return "\n".join(lines)


def legend(rows: list[dict[str, Any]]) -> list[str]:
    """One line per scenario in the rows, from the scenario registry."""
    try:
        import jujusim.bench_scenarios  # noqa: F401 - registers them
        from jujusim.scenarios import SCENARIOS as REGISTRY
    except ImportError:
        return []
    names = sorted({r["scenario"] for r in rows}, key=lambda s: _row_key({
        "scenario": s, "units": 0, "impl": "", "seed": 0}))  # fmt: skip
    return [f"- `{name}`: {REGISTRY[name].description}" for name in names if name in REGISTRY]


def readme_block(
    rows: list[dict[str, Any]], sources: list[dict[str, Any]], command: str, plot_path: str | None
) -> str:
    """The README's generated block: where the figures come from, the table, the plot."""
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"Generated by `{command}` on {date}, from:", ""]
    for src in sources:
        lines.append(
            f"- `{src.get('command')}` ({src.get('date', '?')}, runtime "
            f"{src.get('runtime', '?')}, {src.get('wall_s', '?')} s wall; machine: "
            f"{src.get('machine', '?')})"
        )
    lines += ["", "Scenarios (each after a new `restart-token` for every unit):", ""]
    lines += legend(rows)
    lines += [
        "",
        "Columns: `seeds` runs per cell (the other figures are medians over them, "
        "`viol` and `overtakes` are sums); `viol` invariant violations (exclusion, lost "
        "or unfinished operations, storms, stalls); `overtakes` pairs where a unit asked "
        "after another's request was committed and still began first (a FIFO queue has "
        "none); `skewed unit jumped` how many of those have the skewed unit ahead of a "
        "unit that asked before it (in the anchors, the clock-order failure; ours reads no "
        "clock, but its leader queues a request only in a hook about the requester, so a "
        "late unit can be queued ahead of requests the leader has not read yet); `jumped a "
        "seen request` the overtakes where the leader had already read the overtaken "
        "request when the other unit asked (the queue's order against what the "
        "coordinator knew; empty for runs recorded before this column); `rounds` "
        "causal hook rounds "
        "from the trigger to the last restart; `hooks` "
        "and `tool calls` after the trigger; `bag B` the largest databag; `ms/hook` median "
        "wall time of a hook here (fork runtime: imports excluded); `done in err` restarts "
        "finished before the broken leader was fixed (out of N).",
        "",
        "Goals (ours: charm_coordinator / .classic):",
        "",
        goals(rows),
        "",
        "The anchors' known failures, measured (blank: not run, or run before the column):",
        "",
        failures(rows),
        "",
        table(rows),
    ]
    if plot_path:
        lines += ["", f"![rounds, hooks and hook-tool calls per hook against N]({plot_path})"]
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


def _row_key(row: dict[str, Any]) -> tuple[Any, ...]:
    order = {s: k for k, s in enumerate(SCENARIOS)}
    return (
        order.get(row["scenario"], 99),
        row["units"],
        IMPLS.index(row["impl"]) if row["impl"] in IMPLS else 99,
        row.get("seed", 0),
    )


def _failed_row(
    impl: str, units: int, scenario: str, seed: int, e: BaseException
) -> dict[str, Any]:
    return {
        "impl": impl,
        "units": units,
        "scenario": scenario,
        "seed": seed,
        "completed": False,
        "violations": 1,
        "violation_details": [f"run failed: {e!r}"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--units", default="3,6", help="comma list of N")
    parser.add_argument("--runtime", default="fork", choices=["fork", "process", "inprocess"])
    parser.add_argument("--scenarios", default="all", help="comma list, or all")
    parser.add_argument("--impls", default="all", help="comma list, or all")
    parser.add_argument("--seeds", default="0", help="comma list of seeds (each cell runs each)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--json", help="output file (required unless --report)")
    parser.add_argument("--report", nargs="+", metavar="JSON", help="redraw from these files")
    parser.add_argument("--plot", help="SVG file")
    parser.add_argument("--readme", help="README to update (generated block)")
    args = parser.parse_args(argv)
    command = " ".join(
        ["python", "benchmarks/compare.py", *(sys.argv[1:] if argv is None else argv)]
    )
    if args.report:
        sources = []
        by_key: dict[tuple[Any, ...], dict[str, Any]] = {}
        for path in args.report:  # a later file's run of the same cell and seed wins
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
            sources.append({k: v for k, v in data.items() if k != "rows"})
            for row in data["rows"]:
                key = (row["impl"], row["units"], row["scenario"], row.get("seed", 0))
                by_key[key] = row
        rows = list(by_key.values())
    else:
        if not args.json:
            parser.error("--json is required (or --report)")
        rows, source = run_all(args)
        sources = [source]
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({**source, "rows": rows}, f, indent=1)
    rows.sort(key=_row_key)
    print(table(rows))
    if args.plot:
        plot(rows, args.plot)
    if args.readme:
        rel_plot = (
            os.path.relpath(args.plot, os.path.dirname(os.path.abspath(args.readme)))
            if args.plot
            else None
        )
        update_readme(args.readme, readme_block(rows, sources, command, rel_plot))
    return 0


def run_all(args: argparse.Namespace) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Run every cell and seed; print each run as it ends."""
    sizes = [int(n) for n in args.units.split(",") if n]
    scenarios = SCENARIOS if args.scenarios == "all" else args.scenarios.split(",")
    impls = IMPLS if args.impls == "all" else args.impls.split(",")
    seeds = [int(x) for x in str(args.seeds).split(",") if x]
    if args.runtime == "inprocess" and "rollingops" in impls:
        print(
            "rollingops needs the process runtime (a background worker and juju-exec); skipped",
            file=sys.stderr,
        )
        impls = [i for i in impls if i != "rollingops"]
    jobs = [(i, n, s, seed) for n in sizes for s in scenarios for seed in seeds for i in impls]
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")

    def source() -> dict[str, Any]:
        return {
            "command": " ".join(["python", "benchmarks/compare.py", *sys.argv[1:]]),
            "machine": machine(),
            "date": date,
            "runtime": args.runtime,
            "wall_s": round(time.perf_counter() - started),
            "runs": f"{len(rows)}/{len(jobs)}",
        }

    with concurrent.futures.ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = {
            pool.submit(run_one, i, n, s, args.runtime, seed): (i, n, s, seed)
            for i, n, s, seed in jobs
        }
        for fut in concurrent.futures.as_completed(futures):
            i, n, s, seed = futures[fut]
            try:
                row = fut.result()
            except Exception as e:  # a broken run is a row, not a crash
                row = _failed_row(i, n, s, seed, e)
            rows.append(row)
            print(
                f"[{time.perf_counter() - started:6.0f}s] {len(rows)}/{len(jobs)} {i} N={n} {s} "
                f"seed={seed}: {row.get('wall_s', 0.0):.1f}s done={row.get('completed')} "
                f"viol={row.get('violations')} overtakes={row.get('overtakes')} "
                f"rounds={row.get('rounds')} hooks={row.get('hooks')}",
                file=sys.stderr,
                flush=True,
            )
            for detail in row.get("violation_details") or []:
                print(f"         {detail}", file=sys.stderr, flush=True)
            if args.json:  # after every run: an interrupted run keeps what it did
                with open(args.json, "w", encoding="utf-8") as f:
                    json.dump({**source(), "rows": rows}, f, indent=1)
    return rows, source()


if __name__ == "__main__":
    sys.exit(main())
