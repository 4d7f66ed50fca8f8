"""Recording events: one event and its deliveries in one transaction, duplicates absorbed.

``record_events`` is a *batch function* for the writer: it receives every event queued
since the last commit and stores them with a handful of multi-row statements.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite

from crossdock.store.tables import deliveries, event_bodies, events

_INT = re.compile(r"^-?\d{1,19}$")


def version_key(version: Any) -> str:
    """A string that sorts like the source version: integers numerically, timestamps in
    time order, anything else as text. ``None`` sorts first (arrival order decides)."""
    if version is None or version == "":
        return ""
    if isinstance(version, bool):
        version = int(version)
    if isinstance(version, int | float) and not isinstance(version, bool):
        return f"n{int(version) + 10**19:020d}"
    text = str(version)
    if _INT.match(text):
        return f"n{int(text) + 10**19:020d}"
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return "s" + text[:38]
    if dt.tzinfo is None:
        return "s" + text[:38]
    return f"t{int(dt.timestamp() * 1_000_000) + 10**17:020d}"


def content_key(event_type: str, record_key: str, version: str | None, body: bytes) -> str:
    """Dedup key for an event without a vendor event id: derived from its content."""
    h = hashlib.sha256()
    for part in (event_type, record_key, version or ""):
        h.update(part.encode())
        h.update(b"\x1f")
    h.update(body)
    return "c:" + h.hexdigest()


@dataclass
class FlowRoute:
    """Where an event goes: one delivery per flow."""

    flow: str
    ordered: bool = True
    priority: int = 0


@dataclass
class NewEvent:
    """An event to record, with the flows that should receive it."""

    workspace: str
    connection: str
    type: str
    record_key: str
    version: str | None
    dedup_key: str
    correlation_id: str
    headers_json: str
    body_json: str
    routes: list[FlowRoute] = field(default_factory=list)
    origin: str = "webhook"
    received_at: float = 0.0


@dataclass
class Recorded:
    """What recording an event did: its id, whether it was a duplicate, deliveries made."""

    event_id: int | None
    duplicate: bool
    deliveries: int


def _insert(conn: Connection, table: Any) -> Any:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def record_events(conn: Connection, items: list[NewEvent]) -> Sequence[Recorded]:
    """Store events and their deliveries; duplicates (same workspace, connection and
    dedup key) are not stored again. Runs inside the writer's transaction."""
    now = time.time()
    first: dict[tuple[str, str, str], int] = {}
    unique: list[NewEvent] = []
    for i, it in enumerate(items):
        k = (it.workspace, it.connection, it.dedup_key)
        if k not in first:
            first[k] = i
            unique.append(it)
    rows = [
        {
            "workspace": it.workspace,
            "connection": it.connection,
            "type": it.type,
            "record_key": it.record_key,
            "version": it.version,
            "version_key": version_key(it.version),
            "dedup_key": it.dedup_key,
            "correlation_id": it.correlation_id,
            "received_at": it.received_at or now,
            "origin": it.origin,
        }
        for it in unique
    ]
    stmt = (
        _insert(conn, events)
        .on_conflict_do_nothing(index_elements=["workspace", "connection", "dedup_key"])
        .returning(events.c.id, events.c.workspace, events.c.connection, events.c.dedup_key)
    )
    inserted: dict[tuple[str, str, str], int] = {}
    if rows:
        for r in conn.execute(stmt, rows):
            inserted[(r.workspace, r.connection, r.dedup_key)] = r.id
    bodies = []
    new_deliveries = []
    for it in unique:
        k = (it.workspace, it.connection, it.dedup_key)
        eid = inserted.get(k)
        if eid is None:
            continue
        bodies.append({"event_id": eid, "headers": it.headers_json, "body": it.body_json})
        vk = version_key(it.version)
        for route in it.routes:
            new_deliveries.append(
                {
                    "workspace": it.workspace,
                    "event_id": eid,
                    "flow": route.flow,
                    "record_key": it.record_key,
                    "version_key": vk,
                    "ordered": route.ordered,
                    "generation": 0,
                    "state": "pending",
                    "priority": route.priority,
                    "attempts": 0,
                    "throttled": 0,
                    "next_attempt_at": it.received_at or now,
                    "created_at": now,
                    "updated_at": now,
                }
            )
    if bodies:
        conn.execute(event_bodies.insert(), bodies)
    if new_deliveries:
        conn.execute(deliveries.insert(), new_deliveries)
    # Ids of duplicates that were already in the database, for the caller's answer.
    missing = [k for k in first if k not in inserted]
    existing: dict[tuple[str, str, str], int] = {}
    if missing:
        q = select(events.c.id, events.c.workspace, events.c.connection, events.c.dedup_key).where(
            tuple_(events.c.workspace, events.c.connection, events.c.dedup_key).in_(missing)
        )
        for r in conn.execute(q):
            existing[(r.workspace, r.connection, r.dedup_key)] = r.id
    out: list[Recorded] = []
    for i, it in enumerate(items):
        k = (it.workspace, it.connection, it.dedup_key)
        if first[k] == i and k in inserted:
            out.append(Recorded(inserted[k], False, len(it.routes)))
        else:
            out.append(Recorded(inserted.get(k) or existing.get(k), True, 0))
    return out
