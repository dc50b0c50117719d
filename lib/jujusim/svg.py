"""``--timeline FILE.svg``: the same lanes as the text timeline, as a swimlane picture.

Written directly as SVG text, no dependency. Each unit has a work bar (waiting,
holding, operating) and, under it, its hooks (green committed, red failed).
"""

from __future__ import annotations

from html import escape

from jujusim.report import result_lanes, summary
from jujusim.runner import RunResult

__all__ = ["svg_timeline"]

_COLOURS = {
    "waiting": "#f6d55c",
    "holding": "#8ecae6",
    "operating": "#e76f51",
    "hook": "#52b788",
    "failed": "#d62828",
}


def svg_timeline(result: RunResult, width: int = 1100) -> str:
    """The SVG document for one run."""
    lanes, since, until = result_lanes(result)
    label_w = 150
    top = 60
    lane_h = 26
    plot_w = width - label_w - 20
    span = max(until - since, 1e-9)
    bottom_lines = summary(result).splitlines()
    height = top + lane_h * len(lanes) + 30 + 16 * len(bottom_lines) + 20

    def x(t: float) -> float:
        return label_w + (t - since) / span * plot_w

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="monospace" font-size="11">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="10" y="18" font-size="14">{escape(bottom_lines[0])}</text>',
    ]
    legend_x = 10
    for name in ("waiting", "holding", "operating", "hook", "failed"):
        out.append(
            f'<rect x="{legend_x}" y="28" width="12" height="10" fill="{_COLOURS[name]}"/>'
            f'<text x="{legend_x + 16}" y="37">{name if name != "hook" else "hook ok"}</text>'
        )
        legend_x += 110
    # time axis
    step = _tick(span)
    t = 0.0
    while t <= span + 1e-9:
        px = x(since + t)
        out.append(
            f'<line x1="{px:.1f}" y1="{top - 6}" x2="{px:.1f}" y2="{top + lane_h * len(lanes)}" '
            'stroke="#ddd"/>'
            f'<text x="{px + 2:.1f}" y="{top - 8}" fill="#555">{t:g}s</text>'
        )
        t += step
    for i, lane in enumerate(lanes):
        y = top + i * lane_h
        name = lane.unit + (" \u2605" if lane.leader_at_end else "")
        if lane.unit in result.removed_units:
            name += " (removed)"
        out.append(f'<text x="6" y="{y + 14}">{escape(name)}</text>')
        for s in lane.work:
            w = max(x(s.end) - x(s.start), 1.0)
            yy = y + 2 if s.state != "operating" else y + 4
            h = 12 if s.state != "operating" else 8
            out.append(
                f'<rect x="{x(s.start):.1f}" y="{yy}" width="{w:.1f}" height="{h}" '
                f'fill="{_COLOURS[s.state]}"><title>{s.state} {s.start - since:.1f}s-'
                f"{s.end - since:.1f}s</title></rect>"
            )
        for h_span in lane.hooks:
            w = max(x(h_span.end) - x(h_span.start), 1.0)
            out.append(
                f'<rect x="{x(h_span.start):.1f}" y="{y + 16}" width="{w:.1f}" height="6" '
                f'fill="{_COLOURS[h_span.state]}" stroke="white" stroke-width="0.5">'
                f"<title>{escape(h_span.label)} {h_span.start - since:.1f}s-"
                f"{h_span.end - since:.1f}s</title></rect>"
            )
    y = top + lane_h * len(lanes) + 24
    for line in bottom_lines[1:]:
        colour = "#d62828" if line.strip().startswith("- ") else "#222"
        out.append(f'<text x="10" y="{y}" fill="{colour}">{escape(line)}</text>')
        y += 16
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _tick(span: float) -> float:
    for step in (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 3600):
        if span / step <= 12:
            return float(step)
    return span / 10
