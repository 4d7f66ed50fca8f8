"""The evaluation context of a flow: what its expressions can see (architecture.md)."""

from __future__ import annotations

from typing import Any

import orjson


def event_context(
    *,
    body: Any,
    headers: dict[str, str],
    event_id: int | None,
    workspace: str,
    connection: str,
    event_type: str,
    record_key: str,
    version: str | None,
    received_at: float | None,
    xref: str | None,
) -> dict[str, Any]:
    """``{body, headers, event, xref}`` for one event, as the worker and dry-run see it."""
    return {
        "body": body,
        "headers": headers,
        "event": {
            "id": event_id,
            "workspace": workspace,
            "connection": connection,
            "type": event_type,
            "key": record_key,
            "version": version,
            "received_at": received_at,
        },
        "xref": xref,
    }


def stored_event_context(row: Any, xref: str | None) -> dict[str, Any]:
    """:func:`event_context` of an event read from the database: a row of ``events``
    joined with ``event_bodies`` (``body`` and ``headers`` as stored JSON text)."""
    return event_context(
        body=orjson.loads(row.body),
        headers=orjson.loads(row.headers) if row.headers else {},
        event_id=row.id,
        workspace=row.workspace,
        connection=row.connection,
        event_type=row.type,
        record_key=row.record_key,
        version=row.version,
        received_at=row.received_at,
        xref=xref,
    )
