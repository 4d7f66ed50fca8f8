"""Claiming and settling deliveries: the queue's SQL.

Claim rules (the promises live here):

- a pending delivery is claimable once its back-off has passed, unless an earlier
  delivery (lower source version, then arrival) for the same record through the same
  flow is still pending, in progress or an open exception, or any other delivery of the
  record through the flow is in progress (per-record order);
- an in-progress delivery whose lease expired is claimable again (a dead worker's work
  is picked up);
- on PostgreSQL rows are claimed ``FOR UPDATE SKIP LOCKED`` so many workers share work,
  and claims take turns under an advisory lock so per-record order holds across them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, and_, bindparam, exists, or_, select, text, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite

from crossdock.store.cases import attach_exception, close_settled_cases
from crossdock.store.events import NewEvent, record_events
from crossdock.store.tables import (
    BLOCKING_STATES,
    attempts,
    cross_references,
    deliveries,
    event_bodies,
    events,
    exceptions,
)


@dataclass
class Claimed:
    """A delivery leased to a worker, with its event."""

    id: int
    workspace: str
    flow: str
    record_key: str
    attempts: int
    throttled: int
    created_at: float
    override_body: str | None
    event_id: int
    connection: str
    event_type: str
    version: str | None
    correlation_id: str
    received_at: float
    headers: str
    body: str
    stale: bool
    xrefs: dict[str, str] = field(default_factory=dict)


CLAIM_LOCK = 0x43524F5353  # "CROSS": the advisory lock that orders claims on PostgreSQL


def claim(conn: Connection, worker: str, limit: int, lease_seconds: float) -> list[Claimed]:
    """Lease up to ``limit`` deliveries to ``worker``."""
    now = time.time()
    d = deliveries.alias("d")
    p = deliveries.alias("p")
    # Blocked: an earlier version of the record (lower source version, then arrival) is
    # still open, or any other delivery of the record is in flight: a newer version in
    # flight may already be at the destination, so this one waits and is then skipped
    # as stale instead of overtaking it. One probe of the record index.
    blocked = exists().where(
        p.c.workspace == d.c.workspace,
        p.c.flow == d.c.flow,
        p.c.record_key == d.c.record_key,
        p.c.id != d.c.id,
        or_(
            p.c.state == "in_progress",
            and_(
                p.c.state.in_(BLOCKING_STATES),
                tuple_(p.c.version_key, p.c.id) < tuple_(d.c.version_key, d.c.id),
            ),
        ),
    )
    pg = conn.dialect.name == "postgresql"
    if pg:
        # Claims take turns (a few ms each; the deliveries still run in parallel). Without
        # this, a claim whose snapshot predates another worker's uncommitted claim of a
        # newer version would see that version as merely pending and let an older one
        # overtake it: caught by the kill -9 promise test with three workers.
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": CLAIM_LOCK})
    expired = select(d.c.id).where(d.c.state == "in_progress", d.c.lease_expires_at < now)
    pending = (
        select(d.c.id)
        .where(
            d.c.state == "pending",
            d.c.next_attempt_at <= now,
            or_(d.c.ordered.is_(False), ~blocked),
        )
        .order_by(d.c.priority.desc(), d.c.next_attempt_at)
    )
    if pg:
        expired = expired.with_for_update(skip_locked=True, of=d)
        pending = pending.with_for_update(skip_locked=True, of=d)
    ids = [r[0] for r in conn.execute(expired.limit(limit))]
    if len(ids) < limit:
        ids += [r[0] for r in conn.execute(pending.limit(limit - len(ids)))]
    if not ids:
        return []
    conn.execute(
        update(deliveries)
        .where(deliveries.c.id.in_(ids))
        .values(
            state="in_progress",
            lease_owner=worker,
            lease_expires_at=now + lease_seconds,
            updated_at=now,
        )
    )
    newer_done = (
        exists()
        .where(
            p.c.workspace == deliveries.c.workspace,
            p.c.flow == deliveries.c.flow,
            p.c.record_key == deliveries.c.record_key,
            p.c.state == "succeeded",
            # A newer version, or this same version from another event (the same vendor
            # fact seen by webhook and by polling): either way nothing new to deliver.
            # A replay is the same event, so it is delivered again.
            or_(
                p.c.version_key > deliveries.c.version_key,
                and_(
                    p.c.version_key == deliveries.c.version_key,
                    p.c.event_id != deliveries.c.event_id,
                ),
            ),
            deliveries.c.version_key != "",
        )
        .label("stale")
    )
    q = (
        select(
            deliveries.c.id,
            deliveries.c.workspace,
            deliveries.c.flow,
            deliveries.c.record_key,
            deliveries.c.attempts,
            deliveries.c.throttled,
            deliveries.c.created_at,
            deliveries.c.override_body,
            events.c.id.label("event_id"),
            events.c.connection,
            events.c.type,
            events.c.version,
            events.c.correlation_id,
            events.c.received_at,
            event_bodies.c.headers,
            event_bodies.c.body,
            newer_done,
        )
        .select_from(
            deliveries.join(events, events.c.id == deliveries.c.event_id).join(
                event_bodies, event_bodies.c.event_id == events.c.id
            )
        )
        .where(deliveries.c.id.in_(ids))
    )
    out = [
        Claimed(
            id=r.id,
            workspace=r.workspace,
            flow=r.flow,
            record_key=r.record_key,
            attempts=r.attempts,
            throttled=r.throttled,
            created_at=r.created_at,
            override_body=r.override_body,
            event_id=r.event_id,
            connection=r.connection,
            event_type=r.type,
            version=r.version,
            correlation_id=r.correlation_id,
            received_at=r.received_at,
            headers=r.headers,
            body=r.body,
            stale=bool(r.stale),
        )
        for r in conn.execute(q)
    ]
    keys = {(c.workspace, c.connection, c.record_key) for c in out}
    if keys:
        xq = select(
            cross_references.c.workspace,
            cross_references.c.source_connection,
            cross_references.c.source_key,
            cross_references.c.target_connection,
            cross_references.c.target_id,
        ).where(
            tuple_(
                cross_references.c.workspace,
                cross_references.c.source_connection,
                cross_references.c.source_key,
            ).in_(list(keys))
        )
        found: dict[tuple[str, str, str], dict[str, str]] = {}
        for r in conn.execute(xq):
            found.setdefault((r.workspace, r.source_connection, r.source_key), {})[
                r.target_connection
            ] = r.target_id
        for c in out:
            c.xrefs = found.get((c.workspace, c.connection, c.record_key), {})
    return out


def renew_leases(conn: Connection, worker: str, ids: Sequence[int], lease_seconds: float) -> int:
    """Extend the leases ``worker`` holds on ``ids``."""
    if not ids:
        return 0
    res = conn.execute(
        update(deliveries)
        .where(deliveries.c.id.in_(list(ids)), deliveries.c.lease_owner == worker)
        .values(lease_expires_at=time.time() + lease_seconds)
    )
    return res.rowcount or 0


@dataclass
class Settlement:
    """How one attempt ended, and everything to record about it, in one transaction."""

    delivery_id: int
    worker: str
    workspace: str
    flow: str
    record_key: str
    state: str  # pending | succeeded | skipped | exception
    attempts: int
    throttled: int
    next_attempt_at: float
    outcome: str | None
    detail: str | None
    attempt_rows: list[dict[str, Any]] = field(default_factory=list)
    exception: tuple[str, str, str] | None = None  # category, reason, fix
    xref: tuple[str, str, str, str] | None = None  # source conn, source key, target conn, id
    follow_up: NewEvent | None = None


def settle(conn: Connection, items: list[Settlement]) -> Sequence[bool]:
    """Record the attempts and the new state of each delivery (batch function)."""
    now = time.time()
    rows = [a for s in items for a in s.attempt_rows]
    if rows:
        conn.execute(attempts.insert(), rows)
    conn.execute(
        update(deliveries)
        .where(
            deliveries.c.id == bindparam("did"),
            deliveries.c.lease_owner == bindparam("owner"),
        )
        .values(
            state=bindparam("st"),
            attempts=bindparam("att"),
            throttled=bindparam("thr"),
            next_attempt_at=bindparam("nxt"),
            outcome=bindparam("oc"),
            detail=bindparam("dt"),
            lease_owner=None,
            lease_expires_at=None,
            updated_at=now,
        ),
        [
            {
                "did": s.delivery_id,
                "owner": s.worker,
                "st": s.state,
                "att": s.attempts,
                "thr": s.throttled,
                "nxt": s.next_attempt_at,
                "oc": s.outcome,
                "dt": s.detail,
            }
            for s in items
        ],
    )
    done = [s.delivery_id for s in items if s.state in ("succeeded", "skipped")]
    if done:
        conn.execute(
            update(exceptions)
            .where(exceptions.c.delivery_id.in_(done), exceptions.c.state != "resolved")
            .values(state="resolved", resolution="delivered", updated_at=now)
        )
        close_settled_cases(conn, now, delivery_ids=done)
    for s in items:
        if s.exception is not None:
            open_exception(conn, s, now)
    xrefs = [(s.workspace, *s.xref) for s in items if s.xref is not None]
    if xrefs:
        upsert_xrefs(conn, xrefs, now)
    follow = [s.follow_up for s in items if s.follow_up is not None]
    if follow:
        record_events(conn, follow)
    return [True] * len(items)


def open_exception(conn: Connection, s: Settlement, now: float) -> None:
    """Open (or re-open) the exception of a delivery and file it under its cause's case."""
    assert s.exception is not None
    category, reason, fix = s.exception
    values = {
        "category": category,
        "reason": reason,
        "fix": fix,
        "state": "open",
        "resolution": None,
        "updated_at": now,
    }
    found = conn.execute(
        select(exceptions.c.id).where(exceptions.c.delivery_id == s.delivery_id)
    ).first()
    if found is not None:
        exception_id = int(found[0])
        conn.execute(update(exceptions).where(exceptions.c.id == exception_id).values(**values))
    else:
        exception_id = int(
            conn.execute(
                exceptions.insert().values(
                    workspace=s.workspace,
                    delivery_id=s.delivery_id,
                    flow=s.flow,
                    record_key=s.record_key,
                    created_at=now,
                    **values,
                )
            ).inserted_primary_key[0]  # type: ignore[index]
        )
    attach_exception(
        conn,
        workspace=s.workspace,
        exception_id=exception_id,
        flow=s.flow,
        category=category,
        reason=reason,
        fix=fix,
        now=now,
    )


def upsert_xrefs(
    conn: Connection, rows: Sequence[tuple[str, str, str, str, str]], now: float
) -> None:
    """Remember records' ids at their destinations: (workspace, source connection,
    source key, target connection, target id), one statement for all."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(cross_references)
    stmt = stmt.on_conflict_do_update(
        index_elements=["workspace", "source_connection", "source_key", "target_connection"],
        set_={"target_id": stmt.excluded.target_id, "updated_at": stmt.excluded.updated_at},
    )
    conn.execute(
        stmt,
        [
            {
                "workspace": w,
                "source_connection": sc,
                "source_key": sk,
                "target_connection": tc,
                "target_id": tid,
                "updated_at": now,
            }
            for w, sc, sk, tc, tid in rows
        ],
    )
