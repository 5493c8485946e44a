"""Server-side SVG charts for the supervisor dashboard: plain markup, no JavaScript, nothing from a CDN.

Every label is escaped before it enters the markup and every number is formatted as a number, so data can never
inject markup; the result is marked safe only once it is whole. Colours and sizes are named below.
"""

from __future__ import annotations

import math
from datetime import datetime

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH = 640
BAR_HEIGHT = 18
BAR_GAP = 8
LABEL_WIDTH = 170
VALUE_WIDTH = 70
CHART_HEIGHT = 180
AXIS_MARGIN = 28
OK_COLOUR = "#2e7d32"
WARN_COLOUR = "#f9a825"
FULL_COLOUR = "#c62828"
LINE_COLOUR = "#1565c0"
GRID_COLOUR = "#ddd"
TEXT_COLOUR = "#333"
WARN_AT_PCT = 75.0
FULL_AT_PCT = 90.0  # the seed's capacity alert fires over 90 %
FONT = 'font-family="sans-serif" font-size="12"'


def _n(value: float) -> str:
    """A coordinate: always a plain number, whatever the caller passed."""
    return f"{float(value):.1f}"


def _svg(height: float, body: list[str], *, title: str) -> SafeString:
    safe_title = escape(title)
    return mark_safe(
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" aria-label="{safe_title}" '
        f'width="{WIDTH}" height="{_n(height)}" viewBox="0 0 {WIDTH} {_n(height)}">'
        f"<title>{safe_title}</title>{''.join(body)}</svg>"
    )


def utilisation_colour(pct: float) -> str:
    if pct >= FULL_AT_PCT:
        return FULL_COLOUR
    if pct >= WARN_AT_PCT:
        return WARN_COLOUR
    return OK_COLOUR


def utilisation_bars(rows: list[tuple[str, int, int]], *, title: str = "Load versus capacity") -> SafeString:
    """One horizontal bar per queue: (label, load, capacity); the bar is the share of capacity in use."""
    span = WIDTH - LABEL_WIDTH - VALUE_WIDTH
    body = []
    for i, (label, load, capacity) in enumerate(rows):
        y = i * (BAR_HEIGHT + BAR_GAP) + BAR_GAP
        pct = 100.0 * load / capacity if capacity else 0.0
        width = span * min(pct, 100.0) / 100.0
        text_y = y + BAR_HEIGHT - 4
        body.append(
            f'<text x="0" y="{_n(text_y)}" {FONT} fill="{TEXT_COLOUR}">{escape(label)}</text>'
            f'<rect x="{LABEL_WIDTH}" y="{_n(y)}" width="{_n(span)}" height="{BAR_HEIGHT}" fill="#f1f1f1"/>'
            f'<rect x="{LABEL_WIDTH}" y="{_n(y)}" width="{_n(width)}" height="{BAR_HEIGHT}" '
            f'fill="{utilisation_colour(pct)}"><title>{escape(label)}: {int(load)} of {int(capacity)}</title></rect>'
            f'<text x="{_n(LABEL_WIDTH + span + 6)}" y="{_n(text_y)}" {FONT} fill="{TEXT_COLOUR}">'
            f"{int(load)}/{int(capacity)} ({pct:.0f}%)</text>"
        )
    height = max(len(rows), 1) * (BAR_HEIGHT + BAR_GAP) + BAR_GAP
    if not rows:
        body.append(f'<text x="0" y="20" {FONT} fill="{TEXT_COLOUR}">No queues.</text>')
    return _svg(height, body, title=title)


def _frame(max_value: float, unit: str) -> list[str]:
    """Horizontal grid lines at 0, half and the top, with their values."""
    body = []
    plot_height = CHART_HEIGHT - AXIS_MARGIN
    for fraction in (0.0, 0.5, 1.0):
        y = plot_height - fraction * (plot_height - 10)
        body.append(
            f'<line x1="{AXIS_MARGIN + 12}" y1="{_n(y)}" x2="{WIDTH}" y2="{_n(y)}" stroke="{GRID_COLOUR}"/>'
            f'<text x="0" y="{_n(y + 4)}" {FONT} fill="{TEXT_COLOUR}">{round(max_value * fraction, 1):g}{escape(unit)}</text>'
        )
    return body


def _x_labels(labels: list[str], xs: list[float], every: int) -> list[str]:
    return [
        f'<text x="{_n(x)}" y="{CHART_HEIGHT - 8}" {FONT} fill="{TEXT_COLOUR}" text-anchor="middle">{escape(label)}</text>'
        for i, (label, x) in enumerate(zip(labels, xs, strict=True))
        if i % every == 0
    ]


def throughput_chart(
    points: list[tuple[datetime, int]], *, title: str = "Completed per hour (last 24 h)"
) -> SafeString:
    """Vertical bars of completions per hour."""
    top = max([count for _, count in points] + [1])
    left = AXIS_MARGIN + 16
    slot = (WIDTH - left) / max(len(points), 1)
    plot_height = CHART_HEIGHT - AXIS_MARGIN
    body = _frame(top, "")
    xs = []
    for i, (hour, count) in enumerate(points):
        height = (plot_height - 10) * count / top
        x = left + i * slot
        xs.append(x + slot / 2)
        body.append(
            f'<rect x="{_n(x + 1)}" y="{_n(plot_height - height)}" width="{_n(max(slot - 2, 1))}" height="{_n(height)}" '
            f'fill="{LINE_COLOUR}"><title>{escape(hour.strftime("%H:00"))}: {int(count)}</title></rect>'
        )
    body += _x_labels([hour.strftime("%H:00") for hour, _ in points], xs, every=4)
    return _svg(CHART_HEIGHT, body, title=title)


def sla_trend_chart(
    points: list[tuple[datetime, float | None]], *, title: str = "SLA compliance per day"
) -> SafeString:
    """A line of compliance % per day; days without completions leave a gap."""
    left = AXIS_MARGIN + 16
    step = (WIDTH - left - 10) / max(len(points) - 1, 1)
    plot_height = CHART_HEIGHT - AXIS_MARGIN
    body = _frame(100.0, "%")
    segments: list[list[str]] = [[]]
    xs = []
    for i, (day, pct) in enumerate(points):
        x = left + i * step
        xs.append(x)
        if pct is None:
            segments.append([])
            continue
        y = plot_height - (plot_height - 10) * float(pct) / 100.0
        segments[-1].append(f"{_n(x)},{_n(y)}")
        body.append(
            f'<circle cx="{_n(x)}" cy="{_n(y)}" r="3" fill="{LINE_COLOUR}">'
            f"<title>{escape(day.strftime('%d %b'))}: {float(pct):.1f}%</title></circle>"
        )
    for segment in segments:
        if len(segment) > 1:
            body.append(f'<polyline fill="none" stroke="{LINE_COLOUR}" stroke-width="2" points="{" ".join(segment)}"/>')
    body += _x_labels([day.strftime("%d %b") for day, _ in points], xs, every=2)
    return _svg(CHART_HEIGHT, body, title=title)


BAND_COLOUR = "#90caf9"
BASELINE_COLOUR = "#757575"


def backlog_band_chart(
    band: list[tuple[float, float, float]],
    *,
    baseline: list[tuple[float, float, float]] | None = None,
    day_starts: list[float] = (),
    title: str = "Backlog (OPEN tasks) per business hour",
) -> SafeString:
    """The simulated backlog of a staffing what-if (tasks/forecast/whatif.py): one point per business hour, the
    shaded band from the 10th to the 90th percentile of the replications, the median as a line; the queue as it is
    (`baseline`) as a dashed median line; a tick at each working day's start."""
    series = [band, *([baseline] if baseline else [])]
    top = max([p90 for s in series for _, _, p90 in s] + [1.0])
    left = AXIS_MARGIN + 16
    step = (WIDTH - left - 10) / max(len(band) - 1, 1)
    plot_height = CHART_HEIGHT - AXIS_MARGIN

    def point(hour: int, value: float) -> str:
        return f"{_n(left + hour * step)},{_n(plot_height - (plot_height - 10) * float(value) / top)}"

    body = _frame(top, "")
    if band:
        upper = [point(h, p90) for h, (_, _, p90) in enumerate(band)]
        lower = [point(h, p10) for h, (p10, _, _) in reversed(list(enumerate(band)))]
        body.append(
            f'<polygon class="band" fill="{BAND_COLOUR}" fill-opacity="0.6" stroke="none" '
            f'points="{" ".join(upper + lower)}"><title>10th to 90th percentile</title></polygon>'
        )
        body.append(
            f'<polyline class="median" fill="none" stroke="{LINE_COLOUR}" stroke-width="2" '
            f'points="{" ".join(point(h, p50) for h, (_, p50, _) in enumerate(band))}"/>'
        )
    if baseline:
        body.append(
            f'<polyline class="baseline" fill="none" stroke="{BASELINE_COLOUR}" stroke-width="2" '
            f'stroke-dasharray="6 4" points="{" ".join(point(h, p50) for h, (_, p50, _) in enumerate(baseline))}">'
            "<title>As staffed now (median)</title></polyline>"
        )
    ticks = [float(start) for start in day_starts if 0 <= start < len(band)]
    every = max(1, math.ceil(len(ticks) / 10))
    body += _x_labels([f"day {i + 1}" for i in range(len(ticks))], [left + t * step for t in ticks], every=every)
    return _svg(CHART_HEIGHT, body, title=title)
