"""Replay: deliver events again, by id or by time window, through their current flows.

For each (event, flow) pair — the flows the registry routes the event to today,
optionally only one — the outcome is one of:

- the event already has a delivery through the flow in ``exception``: it is made due
  again (``retried``; its attempts are kept, its exception marked ``retrying``);
- it has one pending or in progress: nothing to do (``unchanged``);
- otherwise a new delivery is made, one generation above the highest (``created``).

Run it inside the writer's transaction: ``db.write_sync(lambda c: replay(c, ...))``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select

from crossdock.pipeline.actions import retry_deliveries
from crossdock.runtime.registry import Registry
from crossdock.store.tables import ACTIVE_STATES, deliveries, events

_CHUNK = 500


def _epoch(value: datetime | float | None) -> float | None:
    if value is None or isinstance(value, int | float):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def _chunks(items: Sequence[int]) -> Iterable[list[int]]:
    for i in range(0, len(items), _CHUNK):
        yield list(items[i : i + _CHUNK])


def replay(
    conn: Connection,
    workspace: str,
    registry: Registry,
    *,
    event_ids: Sequence[int] | None = None,
    since: datetime | float | None = None,
    until: datetime | float | None = None,
    flow: str | None = None,
) -> dict[str, int]:
    """Make the chosen events' deliveries happen again; return the counts
    ``{"events", "deliveries_created", "retried", "unchanged"}``.

    Choose events by ``event_ids`` or by a window of receive times (``since`` and/or
    ``until``, epoch seconds or datetimes; naive means UTC); ``flow`` limits the replay to
    one flow. Raises ``ValueError`` when no events are chosen at all.
    """
    start, end = _epoch(since), _epoch(until)
    if not event_ids and start is None and end is None:
        raise ValueError("choose the events to replay: event ids, or a time window")
    if start is not None and end is not None and start > end:
        raise ValueError("the time window ends before it starts ('since' is after 'until')")
    q = select(
        events.c.id,
        events.c.connection,
        events.c.type,
        events.c.record_key,
        events.c.version_key,
    ).where(events.c.workspace == workspace)
    if event_ids:
        q = q.where(events.c.id.in_(list(event_ids)))
    if start is not None:
        q = q.where(events.c.received_at >= start)
    if end is not None:
        q = q.where(events.c.received_at <= end)
    chosen = list(conn.execute(q.order_by(events.c.id)))

    existing: dict[tuple[int, str], list[Any]] = {}
    for ids in _chunks([e.id for e in chosen]):
        dq = select(
            deliveries.c.id,
            deliveries.c.event_id,
            deliveries.c.flow,
            deliveries.c.generation,
            deliveries.c.state,
        ).where(deliveries.c.workspace == workspace, deliveries.c.event_id.in_(ids))
        for d in conn.execute(dq):
            existing.setdefault((d.event_id, d.flow), []).append(d)

    now = time.time()
    to_retry: list[int] = []
    new_rows: list[dict[str, Any]] = []
    unchanged = 0
    for ev in chosen:
        for fl in registry.flows_for(workspace, ev.connection, ev.type):
            if flow is not None and fl.name != flow:
                continue
            found = existing.get((ev.id, fl.name), [])
            if any(d.state in ACTIVE_STATES for d in found):
                unchanged += 1
                continue
            waiting = [d.id for d in found if d.state == "exception"]
            if waiting:
                to_retry.extend(waiting)
                continue
            new_rows.append(
                {
                    "workspace": workspace,
                    "event_id": ev.id,
                    "flow": fl.name,
                    "record_key": ev.record_key,
                    "version_key": ev.version_key,
                    "ordered": fl.options.ordering == "record",
                    "generation": max((d.generation for d in found), default=-1) + 1,
                    "state": "pending",
                    "priority": fl.options.priority,
                    "attempts": 0,
                    "throttled": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                    "updated_at": now,
                }
            )
    for ids in _chunks(to_retry):
        retry_deliveries(conn, ids, now)
    if new_rows:
        conn.execute(deliveries.insert(), new_rows)
    return {
        "events": len(chosen),
        "deliveries_created": len(new_rows),
        "retried": len(to_retry),
        "unchanged": unchanged,
    }
