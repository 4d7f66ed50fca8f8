"""The Dashboard: per connection and per flow, over a chosen window, as charts.

Per connection (from the attempts): response time p50/p95, success rate, error rate,
volume and availability. Per flow (from the deliveries): volume, backlog and lag. At the
top: the totals equation and the alerts firing now.

Everything is aggregated in the database, a fixed handful of queries whatever the number
of rows, each bounded by the workspace and the window:

- attempts: one ``GROUP BY connection, bucket, latency class`` (a latency histogram, from
  which p50/p95 are read with linear interpolation inside a class, as Prometheus does),
  and one ``GROUP BY connection, minute`` nested in ``GROUP BY bucket`` for availability;
- deliveries: counts by flow and state (totals, backlog now), created per bucket, settled
  per bucket, the oldest open per flow, and the few settled deliveries that waited long.

Backlog and lag history are not stored; they are derived from the deliveries: a delivery
is in the backlog from its ``created_at`` until it settles (the ``updated_at`` of a
succeeded, skipped or exception delivery). Backlog at the end of a bucket is the carry-in
plus arrivals minus settlements so far; lag at the end of a bucket is the age of the
oldest delivery open then. Deliveries that settled within ``LAG_RESOLUTION`` seconds are
left out of the lag sweep (they can only make a lag below that resolution).
"""

from __future__ import annotations

import bisect
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from markupsafe import Markup
from sqlalchemy import Connection, Integer, case, cast, func, literal_column, select
from sqlalchemy.sql.elements import ColumnElement

from crossdock.api.kpis import DELIVERY_STATES, ERROR_OUTCOMES
from crossdock.console import charts
from crossdock.console.web import Viewing, _ms, _num, _pct, _span
from crossdock.store.tables import ACTIVE_STATES, alert_states, attempts, deliveries, events

router = APIRouter()

SETTLED_STATES = ("succeeded", "skipped", "exception")


def _flow_key(conn: Connection) -> Any:
    """``deliveries.flow`` to group by. On SQLite (no statistics) ``GROUP BY flow`` makes the
    planner walk the record index over the whole workspace to avoid a sort; grouping by
    ``flow || ''`` lets it use the (workspace, state, updated_at) index for the window."""
    if conn.dialect.name == "sqlite":
        return (deliveries.c.flow + literal_column("''")).label("flow")
    return deliveries.c.flow


LAG_RESOLUTION = 2.0
"""Seconds: deliveries settled faster than this are not swept for the lag history."""

# window key -> (seconds, bucket seconds); buckets are whole minutes (availability is
# counted per minute) and aligned to the epoch so that every bucket is a full one.
WINDOWS: dict[str, tuple[int, int]] = {
    "15m": (15 * 60, 60),
    "1h": (3600, 120),
    "6h": (6 * 3600, 600),
    "24h": (86400, 1800),
    "7d": (7 * 86400, 4 * 3600),
}
WINDOW_LABELS = {
    "15m": "15 minutes",
    "1h": "1 hour",
    "6h": "6 hours",
    "24h": "24 hours",
    "7d": "7 days",
}
DEFAULT_WINDOW = "1h"

# Upper bounds (ms) of the latency classes: 1-1.5-2-3-5-7 per decade up to 100 s.
LATENCY_BOUNDS: tuple[float, ...] = (
    *(m * 10**e for e in range(0, 5) for m in (1.0, 1.5, 2.0, 3.0, 5.0, 7.0)),
    100_000.0,
)


def _floor_div(conn: Connection, column: Any, step: int) -> ColumnElement[Any]:
    """``floor(column / step)`` as an integer on both databases (times are positive)."""
    if conn.dialect.name == "sqlite":
        return cast(column / step, Integer)
    return cast(func.floor(column / step), Integer)


def _latency_class(column: Any) -> ColumnElement[Any]:
    return case(
        *((column <= b, i) for i, b in enumerate(LATENCY_BOUNDS)),
        else_=len(LATENCY_BOUNDS),
    )


def percentile(histogram: dict[int, int], q: float) -> float | None:
    """The ``q`` quantile (0..1) of a latency histogram ``{class: count}``, in ms.

    Linear interpolation inside the class (its lower bound to its upper bound); the
    open last class answers its lower bound.
    """
    total = sum(histogram.values())
    if not total:
        return None
    rank = q * total
    seen = 0
    for cls in sorted(histogram):
        n = histogram[cls]
        if seen + n >= rank:
            lo = LATENCY_BOUNDS[cls - 1] if cls > 0 else 0.0
            if cls >= len(LATENCY_BOUNDS):
                return LATENCY_BOUNDS[-1]
            hi = LATENCY_BOUNDS[cls]
            return lo + (hi - lo) * ((rank - seen) / n if n else 1.0)
        seen += n
    return LATENCY_BOUNDS[-1]


@dataclass
class ConnectionStats:
    """One connection's series (one value per bucket) and its figures over the window."""

    name: str
    calls: list[int]
    succeeded: list[int]
    errors: list[int]
    limited: list[int]
    histograms: list[dict[int, int]]
    minutes: list[int]
    ok_minutes: list[int]
    figures: dict[str, Any] = field(default_factory=dict)


@dataclass
class FlowStats:
    """One flow's series and its figures now."""

    name: str
    created: list[int]
    backlog: list[int]
    lag: list[float | None]
    by_state: dict[str, int]
    figures: dict[str, Any] = field(default_factory=dict)


@dataclass
class DashboardData:
    """Everything the page shows, computed in one read."""

    window: str
    seconds: int
    bucket: int
    starts: list[float]
    connections: list[ConnectionStats]
    flows: list[FlowStats]
    totals: dict[str, Any]
    alerts: list[dict[str, Any]]
    queries: int
    took_ms: float = 0.0


def _rate(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def dashboard_data(
    conn: Connection,
    ws: str,
    window: str,
    now: float | None = None,
    known_flows: list[str] | tuple[str, ...] = (),
) -> DashboardData:
    """The dashboard's figures for workspace ``ws`` over ``window`` (a key of WINDOWS)."""
    t0 = time.perf_counter()
    now = time.time() if now is None else now
    seconds, step = WINDOWS[window]
    nb = seconds // step
    last = int(now // step)
    first = last - nb + 1
    start = float(first * step)
    starts = [float((first + i) * step) for i in range(nb)]
    queries = 0

    # -- attempts: calls, outcomes and a latency histogram per connection and bucket ----
    a = attempts.c
    a_bucket = _floor_div(conn, a.started_at, step).label("b")
    a_class = _latency_class(a.latency_ms).label("c")
    in_window = (a.workspace == ws, a.started_at >= start, a.started_at <= now)
    rows = conn.execute(
        select(
            a.connection,
            a_bucket,
            a_class,
            func.count(),
            func.sum(case((a.outcome == "success", 1), else_=0)),
            func.sum(case((a.outcome.in_(ERROR_OUTCOMES), 1), else_=0)),
            func.sum(case((a.outcome == "rate_limited", 1), else_=0)),
        )
        .where(*in_window)
        .group_by(a.connection, a_bucket, a_class)
    ).all()
    queries += 1
    conns: dict[str, ConnectionStats] = {}

    def cstats(name: str) -> ConnectionStats:
        if name not in conns:
            conns[name] = ConnectionStats(
                name,
                [0] * nb,
                [0] * nb,
                [0] * nb,
                [0] * nb,
                [defaultdict(int) for _ in range(nb)],
                [0] * nb,
                [0] * nb,
            )
        return conns[name]

    for name, b, c, n, ok, err, rl in rows:
        i = int(b) - first
        if not 0 <= i < nb:
            continue
        s = cstats(name)
        s.calls[i] += int(n)
        s.succeeded[i] += int(ok or 0)
        s.errors[i] += int(err or 0)
        s.limited[i] += int(rl or 0)
        s.histograms[i][int(c)] += int(n)

    # availability: minutes with a success among the minutes with calls, per bucket
    minute = _floor_div(conn, a.started_at, 60).label("m")
    per_minute = (
        select(
            a.connection.label("conn"),
            minute,
            func.max(case((a.outcome == "success", 1), else_=0)).label("ok"),
        )
        .where(*in_window)
        .group_by(a.connection, minute)
        .subquery()
    )
    m_bucket = per_minute.c.m // (step // 60)
    for name, b, mins, ok_mins in conn.execute(
        select(
            per_minute.c.conn, m_bucket.label("b"), func.count(), func.sum(per_minute.c.ok)
        ).group_by(per_minute.c.conn, m_bucket)
    ):
        i = int(b) - first
        if 0 <= i < nb and name in conns:
            conns[name].minutes[i] += int(mins)
            conns[name].ok_minutes[i] += int(ok_mins or 0)
    queries += 1

    for s in conns.values():
        total: dict[int, int] = defaultdict(int)
        for h in s.histograms:
            for k, v in h.items():
                total[k] += v
        calls = sum(s.calls)
        s.figures = {
            "calls": calls,
            "p50": percentile(total, 0.5),
            "p95": percentile(total, 0.95),
            "success_rate": _rate(sum(s.succeeded), calls),
            "error_rate": _rate(sum(s.errors), calls),
            "rate_limited": sum(s.limited),
            "availability": _rate(sum(s.ok_minutes), sum(s.minutes)),
            "per_minute": calls / (seconds / 60),
        }

    # -- deliveries ---------------------------------------------------------------------
    d = deliveries.c
    ws_d = d.workspace == ws
    by_flow_state: dict[str, dict[str, int]] = defaultdict(dict)
    for flow, state, n in conn.execute(
        select(d.flow, d.state, func.count()).where(ws_d).group_by(d.flow, d.state)
    ):
        by_flow_state[flow][state] = int(n)
    queries += 1
    flows: dict[str, FlowStats] = {}

    def fstats(name: str) -> FlowStats:
        if name not in flows:
            flows[name] = FlowStats(name, [0] * nb, [0] * nb, [None] * nb, {})
        return flows[name]

    for name in known_flows:
        fstats(name)
    for name, states in by_flow_state.items():
        fstats(name).by_state = states

    fk = _flow_key(conn)
    created_b = _floor_div(conn, d.created_at, step).label("b")
    for name, b, n in conn.execute(
        select(fk, created_b, func.count())
        .where(
            ws_d,
            # updated_at >= created_at: this lets the (workspace, state, updated_at) index
            # find the window's deliveries without a (workspace, created_at) index
            d.state.in_(DELIVERY_STATES),
            d.updated_at >= start,
            d.created_at >= start,
            d.created_at <= now,
        )
        .group_by(fk, created_b)
    ):
        i = int(b) - first
        if 0 <= i < nb:
            fstats(name).created[i] += int(n)
    queries += 1

    # settled per bucket, and (before_start) those open when the window began
    settled_b = _floor_div(conn, d.updated_at, step).label("b")
    before = case((d.created_at < start, 1), else_=0).label("before")
    settled: dict[str, list[int]] = defaultdict(lambda: [0] * nb)
    carry: dict[str, int] = defaultdict(int)
    for name, b, was_open, n in conn.execute(
        select(fk, settled_b, before, func.count())
        .where(ws_d, d.state.in_(SETTLED_STATES), d.updated_at >= start)
        .group_by(fk, settled_b, before)
    ):
        i = int(b) - first
        if 0 <= i < nb:
            settled[name][i] += int(n)
        if was_open:
            carry[name] += int(n)
    queries += 1

    # still open: how many were open at the start, and the oldest
    oldest_open: dict[str, float] = {}
    for name, was_open, n, oldest in conn.execute(
        select(fk, before, func.count(), func.min(d.created_at))
        .where(ws_d, d.state.in_(ACTIVE_STATES))
        .group_by(fk, before)
    ):
        if was_open:
            carry[name] += int(n)
        if oldest is not None:
            oldest_open[name] = min(float(oldest), oldest_open.get(name, float("inf")))
    queries += 1

    # the settled deliveries that waited long enough to matter for the lag history
    waited: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for name, created, updated in conn.execute(
        select(d.flow, d.created_at, d.updated_at).where(
            ws_d,
            d.state.in_(SETTLED_STATES),
            d.updated_at >= start,
            d.updated_at - d.created_at >= LAG_RESOLUTION,
        )
    ):
        waited[name].append((float(created), float(updated)))
    queries += 1

    ends = [s + step for s in starts]
    ends[-1] = min(ends[-1], now)
    for name, f in flows.items():
        level = carry.get(name, 0)
        out = settled.get(name, [0] * nb)
        for i in range(nb):
            level += f.created[i] - out[i]
            f.backlog[i] = max(level, 0)
        f.lag = _lag_series(ends, waited.get(name, []), oldest_open.get(name))
        states = f.by_state
        backlog_now = sum(states.get(s, 0) for s in ACTIVE_STATES)
        f.backlog[-1] = backlog_now  # the last bucket ends now: use the exact count
        oldest = oldest_open.get(name)
        f.figures = {
            "volume": sum(f.created),
            "backlog": backlog_now,
            "lag": max(now - oldest, 0.0) if oldest is not None else 0.0,
            "exceptions": states.get("exception", 0),
        }
        f.lag[-1] = f.figures["lag"]

    # -- totals equation and alerts -----------------------------------------------------
    by_state: dict[str, int] = defaultdict(int)
    for states in by_flow_state.values():
        for st, n in states.items():
            by_state[st] += n
    received = sum(by_state.values())
    in_progress = sum(by_state.get(s, 0) for s in ACTIVE_STATES)
    totals = {
        "events": int(
            conn.execute(
                select(func.count()).select_from(events).where(events.c.workspace == ws)
            ).scalar_one()
        ),
        "received": received,
        "succeeded": by_state.get("succeeded", 0),
        "skipped": by_state.get("skipped", 0),
        "in_progress": in_progress,
        "exceptions": by_state.get("exception", 0),
    }
    totals["balanced"] = received == (
        totals["succeeded"] + totals["skipped"] + in_progress + totals["exceptions"]
    )
    queries += 1
    alerts = [
        dict(r._mapping)
        for r in conn.execute(
            select(alert_states)
            .where(alert_states.c.workspace == ws, alert_states.c.state == "firing")
            .order_by(alert_states.c.since)
        )
    ]
    queries += 1
    return DashboardData(
        window=window,
        seconds=seconds,
        bucket=step,
        starts=starts,
        connections=[conns[k] for k in sorted(conns)],
        flows=[flows[k] for k in sorted(flows)],
        totals=totals,
        alerts=alerts,
        queries=queries,
        took_ms=(time.perf_counter() - t0) * 1000,
    )


def _lag_series(
    ends: list[float], waited: list[tuple[float, float]], oldest_open: float | None
) -> list[float | None]:
    """Age of the oldest delivery open at each bucket end.

    ``waited`` are ``(created, settled)`` of settled deliveries; ``oldest_open`` the
    ``created_at`` of the oldest one still open (it never settled). One pass: a pointer
    over the deliveries by creation time skips those settled before each end.
    """
    items = sorted(waited)
    if oldest_open is not None:
        bisect.insort(items, (oldest_open, float("inf")))
    out: list[float | None] = []
    p = 0
    for t in ends:
        # skip those settled by t (they stay settled for every later t)
        while p < len(items) and items[p][1] <= t:
            p += 1
        # the first one left is open at t (if created by then), and the oldest open
        if p < len(items) and items[p][0] <= t:
            out.append(t - items[p][0])
        else:
            out.append(0.0)
    return out


# -- the page ---------------------------------------------------------------------------
def _count(v: float) -> str:
    return _num(round(v, 1) if v < 10 else round(v))


def _rate_fmt(v: float) -> str:
    return _pct(v, 0) if v in (0.0, 1.0) else _pct(v)


def _connection_charts(data: DashboardData, s: ConnectionStats) -> list[dict[str, Any]]:
    starts, step = data.starts, data.bucket
    p50 = [percentile(h, 0.5) for h in s.histograms]
    p95 = [percentile(h, 0.95) for h in s.histograms]
    success = [_rate(ok, n) for ok, n in zip(s.succeeded, s.calls, strict=True)]
    errors = [_rate(e, n) for e, n in zip(s.errors, s.calls, strict=True)]
    avail = [_rate(ok, m) for ok, m in zip(s.ok_minutes, s.minutes, strict=True)]
    f = s.figures
    base = f"conn-{s.name}"

    def chart(key: str, title: str, series: list[charts.Series], **kw: Any) -> Markup:
        return charts.line_chart(
            starts,
            series,
            label=f"{s.name}: {title}",
            bucket_seconds=step,
            testid=f"{base}-{key}-chart",
            **kw,
        )

    return [
        {
            "key": "latency",
            "title": "Response time",
            "value": f"{_ms(f['p50'])} / {_ms(f['p95'])}",
            "hint": "p50 / p95",
            "chart": chart(
                "latency",
                "response time p50 and p95",
                [
                    charts.Series("p50", p50, charts.PALETTE[0]),
                    charts.Series("p95", p95, charts.PALETTE[3]),
                ],
                fmt=_ms,
            ),
            "legend": [("p50", charts.PALETTE[0]), ("p95", charts.PALETTE[3])],
        },
        {
            "key": "success",
            "title": "Success rate",
            "value": _pct(f["success_rate"]),
            "hint": f"{_num(sum(s.succeeded))} of {_num(f['calls'])} calls",
            "chart": chart(
                "success",
                "success rate",
                [charts.Series("success", success, "#1a7f37")],
                fmt=_rate_fmt,
                y_max=1.0,
            ),
            "bad": f["success_rate"] is not None and f["success_rate"] < 0.95,
        },
        {
            "key": "errors",
            "title": "Error rate",
            "value": _pct(f["error_rate"]),
            "hint": f"{_num(sum(s.errors))} errors"
            + (
                f", {_num(f['rate_limited'])} paced by 429 (not errors)"
                if f["rate_limited"]
                else ""
            ),
            "chart": chart(
                "errors",
                "error rate",
                [charts.Series("errors", errors, "#c0262d")],
                fmt=_rate_fmt,
                y_max=1.0 if any(e and e > 0.5 for e in errors) else None,
            ),
            "bad": bool(f["error_rate"]),
        },
        {
            "key": "volume",
            "title": "Volume",
            "value": _num(f["calls"]),
            "hint": f"calls · {f['per_minute']:.1f} per minute",
            "chart": chart(
                "volume",
                f"calls per {_span(step)}",
                [charts.Series("calls", [float(v) for v in s.calls], charts.PALETTE[0])],
                fmt=_count,
                area=True,
            ),
        },
        {
            "key": "availability",
            "title": "Availability",
            "value": _pct(f["availability"]),
            "hint": "minutes with a successful call, of minutes with calls",
            "chart": chart(
                "availability",
                "availability",
                [charts.Series("availability", avail, "#1a7f37")],
                fmt=_rate_fmt,
                y_max=1.0,
            ),
            "bad": f["availability"] is not None and f["availability"] < 0.99,
        },
    ]


def _flow_charts(data: DashboardData, f: FlowStats) -> list[dict[str, Any]]:
    starts, step = data.starts, data.bucket
    base = f"flow-{f.name}"

    def chart(key: str, title: str, series: list[charts.Series], **kw: Any) -> Markup:
        return charts.line_chart(
            starts,
            series,
            label=f"{f.name}: {title}",
            bucket_seconds=step,
            testid=f"{base}-{key}-chart",
            **kw,
        )

    fig = f.figures
    return [
        {
            "key": "volume",
            "title": "Volume",
            "value": _num(fig["volume"]),
            "hint": f"deliveries received in {WINDOW_LABELS[data.window]}",
            "chart": chart(
                "volume",
                f"deliveries per {_span(step)}",
                [charts.Series("deliveries", [float(v) for v in f.created], charts.PALETTE[0])],
                fmt=_count,
                area=True,
            ),
        },
        {
            "key": "backlog",
            "title": "Backlog",
            "value": _num(fig["backlog"]),
            "hint": "waiting or in progress now",
            "chart": chart(
                "backlog",
                "backlog",
                [charts.Series("backlog", [float(v) for v in f.backlog], "#b35900")],
                fmt=_count,
                area=True,
            ),
            "bad": fig["backlog"] > 0 and fig["lag"] > 300,
        },
        {
            "key": "lag",
            "title": "Lag",
            "value": _span(fig["lag"]) if fig["backlog"] else "none",
            "hint": "age of the oldest undelivered event",
            "chart": chart(
                "lag",
                "lag (age of the oldest undelivered event)",
                [charts.Series("lag", f.lag, "#b35900")],
                fmt=_lag_fmt,
            ),
            "bad": fig["lag"] > 300,
        },
    ]


def _lag_fmt(v: float) -> str:
    return "0" if v <= 0 else _span(v)


@router.get("/")
async def dashboard_page(page: Viewing, window: str = DEFAULT_WINDOW) -> HTMLResponse:
    """The Dashboard: charts per connection and per flow over ``window`` (15m..7d)."""
    page.nav = "dashboard"
    problem = ""
    status = 200
    if window not in WINDOWS:
        problem = (
            f"'{window[:40]}' is not a window this dashboard knows; choose one of "
            f"{', '.join(WINDOWS)}. Showing {WINDOW_LABELS[DEFAULT_WINDOW]}."
        )
        window = DEFAULT_WINDOW
        status = 400
    try:
        ws_rt = page.ctx.registry().workspaces.get(page.workspace)
        flow_names = sorted(ws_rt.flows) if ws_rt is not None else []
    except Exception:  # the registry failing must not hide the figures
        flow_names = []
    now = time.time()
    data = await page.ctx.db.read(
        lambda c: dashboard_data(c, page.workspace, window, now, flow_names)
    )
    return page.render(
        "dashboard.html",
        status=status,
        title="Dashboard",
        data=data,
        windows=WINDOWS,
        window_labels=WINDOW_LABELS,
        window=window,
        window_problem=problem,
        connection_rows=[(s, _connection_charts(data, s)) for s in data.connections],
        flow_rows=[(f, _flow_charts(data, f)) for f in data.flows],
        now=now,
        lag_resolution=LAG_RESOLUTION,
    )
