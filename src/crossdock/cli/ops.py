"""Operations on the queue shared by the CLI: status, exceptions and their actions."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Connection, func, select

from crossdock.pipeline.actions import close_delivery, retry_deliveries
from crossdock.store.tables import attempts, deliveries, event_bodies, exceptions


class ActionError(Exception):
    """An action that cannot be done in the current state (plain words)."""


def waiting_reasons(conn: Connection, workspace: str | None) -> list[dict[str, Any]]:
    """Why deliveries are waiting to be retried: the last error, with how many share it."""
    q = (
        select(deliveries.c.detail, func.count(), func.min(deliveries.c.next_attempt_at))
        .where(deliveries.c.state == "pending", deliveries.c.attempts > 0)
        .group_by(deliveries.c.detail)
        .order_by(func.count().desc())
        .limit(10)
    )
    if workspace:
        q = q.where(deliveries.c.workspace == workspace)
    return [
        {"reason": d or "unknown", "deliveries": n, "next_attempt_in": max(0.0, t - time.time())}
        for d, n, t in conn.execute(q)
    ]


def list_exceptions(
    conn: Connection, workspace: str | None, all_states: bool
) -> list[dict[str, Any]]:
    """Exceptions, newest first."""
    q = select(exceptions).order_by(exceptions.c.id.desc()).limit(500)
    if workspace:
        q = q.where(exceptions.c.workspace == workspace)
    if not all_states:
        q = q.where(exceptions.c.state == "open")
    return [dict(r._mapping) for r in conn.execute(q)]


def show_exception(conn: Connection, exception_id: int) -> dict[str, Any] | None:
    """One exception with its delivery, event body and last attempt."""
    row = conn.execute(select(exceptions).where(exceptions.c.id == exception_id)).first()
    if row is None:
        return None
    out = dict(row._mapping)
    d = conn.execute(select(deliveries).where(deliveries.c.id == row.delivery_id)).first()
    if d is not None:
        out["delivery"] = {k: v for k, v in d._mapping.items() if k != "override_body"}
        b = conn.execute(
            select(event_bodies.c.body).where(event_bodies.c.event_id == d.event_id)
        ).scalar()
        out["event_body"] = b
    last = conn.execute(
        select(attempts)
        .where(attempts.c.delivery_id == row.delivery_id)
        .order_by(attempts.c.id.desc())
        .limit(1)
    ).first()
    if last is not None:
        out["last_attempt"] = dict(last._mapping)
    return out


def exception_action(conn: Connection, exception_id: int, action: str, note: str) -> str:
    """retry | skip | resolve an exception's delivery. Returns a sentence for the user."""
    row = conn.execute(select(exceptions).where(exceptions.c.id == exception_id)).first()
    if row is None:
        raise ActionError(f"no exception {exception_id}")
    d = conn.execute(select(deliveries.c.state).where(deliveries.c.id == row.delivery_id)).first()
    if d is None or d.state != "exception":
        state = d.state if d is not None else "missing"
        raise ActionError(
            f"exception {exception_id}: its delivery is '{state}', not waiting in the exception "
            "queue; nothing to do"
        )
    now = time.time()
    if action == "retry":
        retry_deliveries(conn, [row.delivery_id], now)
        return f"Delivery {row.delivery_id} is due again; the running hub will deliver it."
    if action in ("skip", "resolve"):
        detail = f"{'skipped' if action == 'skip' else 'resolved'} by operator: {note}"
        close_delivery(conn, row.delivery_id, now, detail)
        return f"Exception {exception_id} closed ({detail})."
    raise ActionError(f"unknown action '{action}': expected retry, skip or resolve")
