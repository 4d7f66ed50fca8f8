"""Charts drawn on the server as SVG: no script, no CDN, readable offline and in print.

:func:`line_chart` draws one or more series over time buckets: a y axis from 0 to a
rounded maximum, the first and last bucket times on the x axis, a gap wherever a bucket
has no value (``None``), and a ``<title>`` tooltip on every point. The ``<svg>`` has
``role="img"`` and an ``aria-label`` saying what it shows, so a screen reader announces
the chart and the figure beside it carries the number. Every text is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from markupsafe import Markup, escape

__all__ = ["Series", "line_chart", "nice_max"]

Format = Callable[[float], str]

PALETTE = ("#1f5fbf", "#c0262d", "#1a7f37", "#b35900")


@dataclass(frozen=True)
class Series:
    """One line: a name (for the legend and tooltips) and a value per bucket."""

    name: str
    values: Sequence[float | None]
    color: str = PALETTE[0]


def nice_max(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten that is at least ``value``."""
    if value <= 0 or not math.isfinite(value):
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        if value <= step * power * (1 + 1e-9):
            return step * power
    return 10.0 * power


def _time_label(ts: float, span: float) -> str:
    d = datetime.fromtimestamp(ts, UTC)
    return d.strftime("%d %b %H:%M") if span >= 20 * 3600 else d.strftime("%H:%M")


def _plain(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 or value == int(value) else f"{value:.2g}"


def line_chart(
    starts: Sequence[float],
    series: Sequence[Series],
    *,
    label: str,
    bucket_seconds: float,
    fmt: Format = _plain,
    y_max: float | None = None,
    area: bool = False,
    width: int = 320,
    height: int = 110,
    testid: str = "",
) -> Markup:
    """An SVG line (or ``area``) chart of ``series`` over the buckets starting at ``starts``.

    ``label`` is what the chart shows (the accessible name); ``fmt`` formats values for
    the axis and tooltips; ``y_max`` fixes the top of the axis (e.g. 1 for a rate),
    otherwise it is the data's maximum rounded up.
    """
    left, right, top, bottom = 44, 8, 8, 20
    pw, ph = width - left - right, height - top - bottom
    n = len(starts)
    found = [v for s in series for v in s.values if v is not None]
    top_value = y_max if y_max is not None else nice_max(max(found, default=0.0))
    top_value = top_value or 1.0

    def x(i: int) -> float:
        return left + (pw * (i + 0.5) / n if n else 0.0)

    def y(v: float) -> float:
        return top + ph - ph * min(max(v / top_value, 0.0), 1.0)

    span = (starts[-1] - starts[0] + bucket_seconds) if n else 0.0
    aria = f"{label}: " + (
        "no data in this window" if not found else f"{len(found)} of {n * len(series)} points"
    )
    out = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{escape(aria)}"'
        + (f' data-testid="{escape(testid)}"' if testid else "")
        + ">",
        f"<title>{escape(label)}</title>",
        # axes and grid
        f'<line class="axis" x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}"/>',
        f'<line class="axis" x1="{left}" y1="{top}" x2="{left}" y2="{top + ph}"/>',
        f'<line class="grid" x1="{left}" y1="{top}" x2="{left + pw}" y2="{top}"/>',
        f'<line class="grid" x1="{left}" y1="{top + ph / 2:.1f}" x2="{left + pw}" '
        f'y2="{top + ph / 2:.1f}"/>',
        f'<text class="tick" x="{left - 4}" y="{top + 4}" text-anchor="end">'
        f"{escape(fmt(top_value))}</text>",
        f'<text class="tick" x="{left - 4}" y="{top + ph}" text-anchor="end">'
        f"{escape(fmt(0.0))}</text>",
    ]
    if n:
        out.append(
            f'<text class="tick" x="{left}" y="{height - 5}" text-anchor="start">'
            f"{escape(_time_label(starts[0], span))}</text>"
        )
        out.append(
            f'<text class="tick" x="{left + pw}" y="{height - 5}" text-anchor="end">'
            f"{escape(_time_label(starts[-1] + bucket_seconds, span))}</text>"
        )
    if not found:
        out.append(
            f'<text class="empty" x="{left + pw / 2}" y="{top + ph / 2 + 4}" '
            'text-anchor="middle">no data</text>'
        )
    for s in series:
        # Consecutive buckets with a value make one segment; an empty bucket is a gap.
        segments: list[list[int]] = []
        for i, v in enumerate(s.values[:n]):
            if v is None:
                continue
            if segments and segments[-1][-1] == i - 1:
                segments[-1].append(i)
            else:
                segments.append([i])
        color = escape(s.color)
        for seg in segments:
            pts = " ".join(f"{x(i):.1f},{y(float(s.values[i] or 0.0)):.1f}" for i in seg)
            if area and len(seg) > 1:
                base = top + ph
                out.append(
                    f'<polygon class="area" fill="{color}" points="{x(seg[0]):.1f},{base} '
                    f'{pts} {x(seg[-1]):.1f},{base}"/>'
                )
            if len(seg) > 1:
                out.append(f'<polyline class="line" stroke="{color}" points="{pts}"/>')
        for i, v in enumerate(s.values[:n]):
            if v is None:
                continue
            when = _time_label(starts[i], span)
            name = f"{s.name} " if len(series) > 1 else ""
            out.append(
                f'<circle class="pt" cx="{x(i):.1f}" cy="{y(v):.1f}" r="2.2" fill="{color}">'
                f"<title>{escape(when)} · {escape(name)}{escape(fmt(v))}</title></circle>"
            )
    out.append("</svg>")
    return Markup("".join(out))
