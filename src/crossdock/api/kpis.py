"""Key figures of a workspace, computed in the database.

- per connection, from the attempts of the last ``window`` seconds: count, success and
  error rates, latency percentiles, and availability (the share of minutes with at least
  one successful call among the minutes with calls);
- per flow, from the deliveries: how many are in each state, how many arrived in the
  window, the backlog (pending + in progress) and the lag (age of the oldest pending);
- the totals equation: received = succeeded + skipped + in progress + exceptions.

Rate-limited answers (429) are counted apart: they are the vendor pacing us, not errors.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, Integer, case, cast, func, select
from sqlalchemy.sql.elements import ColumnElement

from crossdock.store.tables import attempts, deliveries, events

ERROR_OUTCOMES = ("retryable", "uncertain", "permanent")
DELIVERY_STATES = ("pending", "in_progress", "succeeded", "skipped", "exception")
PERCENTILES = (50, 95, 99)


def status_counts(conn: Connection, workspace: str | None) -> dict[str, Any]:
    """Deliveries by state and the totals equation, for one workspace or (``None``) all.

    Returns ``events``, ``received`` (deliveries), ``succeeded``, ``skipped``,
    ``in_progress`` (pending + in progress), ``exceptions``, ``by_state`` and ``balanced``
    (whether received = succeeded + skipped + in_progress + exceptions).
    """
    q = select(deliveries.c.state, func.count()).group_by(deliveries.c.state)
    eq = select(func.count()).select_from(events)
    if workspace is not None:
        q = q.where(deliveries.c.workspace == workspace)
        eq = eq.where(events.c.workspace == workspace)
    by_state = {str(s): int(n) for s, n in conn.execute(q)}
    received = sum(by_state.values())
    succeeded = by_state.get("succeeded", 0)
    skipped = by_state.get("skipped", 0)
    in_progress = by_state.get("pending", 0) + by_state.get("in_progress", 0)
    exc = by_state.get("exception", 0)
    return {
        "events": int(conn.execute(eq).scalar_one()),
        "received": received,
        "succeeded": succeeded,
        "skipped": skipped,
        "in_progress": in_progress,
        "exceptions": exc,
        "by_state": by_state,
        "balanced": received == succeeded + skipped + in_progress + exc,
    }


def _minute(conn: Connection) -> ColumnElement[Any]:
    if conn.dialect.name == "sqlite":  # SQLite's integer cast truncates: floor for t > 0
        return cast(attempts.c.started_at / 60, Integer)
    return func.floor(attempts.c.started_at / 60)


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 6) if whole else None


def connection_kpis(
    conn: Connection, workspace: str, window: float, now: float | None = None
) -> list[dict[str, Any]]:
    """Per destination connection, from the attempts in the last ``window`` seconds."""
    now = time.time() if now is None else now
    start = now - window
    in_window = (
        attempts.c.workspace == workspace,
        attempts.c.started_at >= start,
        attempts.c.started_at <= now,
    )
    success = func.sum(case((attempts.c.outcome == "success", 1), else_=0))
    limited = func.sum(case((attempts.c.outcome == "rate_limited", 1), else_=0))
    errors = func.sum(case((attempts.c.outcome.in_(ERROR_OUTCOMES), 1), else_=0))
    rows = conn.execute(
        select(attempts.c.connection, func.count(), success, limited, errors)
        .where(*in_window)
        .group_by(attempts.c.connection)
        .order_by(attempts.c.connection)
    ).all()
    minute = _minute(conn).label("minute")
    per_minute = (
        select(
            attempts.c.connection,
            minute,
            func.max(case((attempts.c.outcome == "success", 1), else_=0)).label("ok"),
        )
        .where(*in_window)
        .group_by(attempts.c.connection, minute)
        .subquery()
    )
    minutes = {
        r[0]: (int(r[1]), int(r[2] or 0))
        for r in conn.execute(
            select(per_minute.c.connection, func.count(), func.sum(per_minute.c.ok)).group_by(
                per_minute.c.connection
            )
        )
    }
    out = []
    for name, n, ok, rl, err in rows:
        n, ok, rl, err = int(n), int(ok or 0), int(rl or 0), int(err or 0)
        latency: dict[str, float | None] = {}
        for p in PERCENTILES:
            rank = max(math.ceil(p / 100 * n) - 1, 0)  # nearest-rank percentile
            latency[f"p{p}_ms"] = conn.execute(
                select(attempts.c.latency_ms)
                .where(*in_window, attempts.c.connection == name)
                .order_by(attempts.c.latency_ms)
                .offset(rank)
                .limit(1)
            ).scalar()
        total_minutes, ok_minutes = minutes.get(name, (0, 0))
        out.append(
            {
                "connection": name,
                "attempts": n,
                "succeeded": ok,
                "rate_limited": rl,
                "errors": err,
                "success_rate": _rate(ok, n),
                "error_rate": _rate(err, n),
                "latency": latency,
                "availability": _rate(ok_minutes, total_minutes),
                "minutes_with_attempts": total_minutes,
            }
        )
    return out


def flow_kpis(
    conn: Connection,
    workspace: str,
    window: float,
    now: float | None = None,
    flows: Iterable[str] = (),
) -> list[dict[str, Any]]:
    """Per flow: deliveries by state, volume in the window, backlog and lag (seconds).

    ``flows`` names flows to list even when they have no deliveries yet.
    """
    now = time.time() if now is None else now
    stats: dict[str, dict[str, Any]] = {}

    def entry(name: str) -> dict[str, Any]:
        if name not in stats:
            stats[name] = {
                "flow": name,
                "by_state": dict.fromkeys(DELIVERY_STATES, 0),
                "volume": 0,
                "backlog": 0,
                "lag_seconds": 0.0,
            }
        return stats[name]

    for name in flows:
        entry(name)
    ws = deliveries.c.workspace == workspace
    for name, state, n in conn.execute(
        select(deliveries.c.flow, deliveries.c.state, func.count())
        .where(ws)
        .group_by(deliveries.c.flow, deliveries.c.state)
    ):
        e = entry(name)
        e["by_state"][state] = int(n)
        if state in ("pending", "in_progress"):
            e["backlog"] += int(n)
    for name, n in conn.execute(
        select(deliveries.c.flow, func.count())
        .where(ws, deliveries.c.created_at >= now - window)
        .group_by(deliveries.c.flow)
    ):
        entry(name)["volume"] = int(n)
    for name, oldest in conn.execute(
        select(deliveries.c.flow, func.min(deliveries.c.created_at))
        .where(ws, deliveries.c.state == "pending")
        .group_by(deliveries.c.flow)
    ):
        if oldest is not None:
            entry(name)["lag_seconds"] = round(max(now - float(oldest), 0.0), 3)
    return [stats[k] for k in sorted(stats)]


def kpis(
    conn: Connection,
    workspace: str,
    window: float,
    now: float | None = None,
    flows: Iterable[str] = (),
) -> dict[str, Any]:
    """Everything above for one workspace: ``window``, ``connections``, ``flows``,
    ``totals``."""
    now = time.time() if now is None else now
    return {
        "window_seconds": window,
        "connections": connection_kpis(conn, workspace, window, now),
        "flows": flow_kpis(conn, workspace, window, now, flows),
        "totals": status_counts(conn, workspace),
    }
