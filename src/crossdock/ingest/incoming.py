"""A connector's :class:`~crossdock.sdk.events.IncomingEvent` as an event to store,
the same for webhooks and polled streams."""

from __future__ import annotations

from collections.abc import Callable

import orjson

from crossdock.sdk.events import IncomingEvent
from crossdock.store.events import FlowRoute, NewEvent, content_key

__all__ = ["to_new_event"]


def to_new_event(
    ev: IncomingEvent,
    *,
    workspace: str,
    connection: str,
    correlation_id: str,
    routes: Callable[[str, str, str], list[FlowRoute]],
    received_at: float,
    headers_json: str = "{}",
    origin: str | None = None,
) -> NewEvent:
    """The stored form: the canonical record as the body; dedup on the vendor's event
    id, else on a key derived from type, record, version and content."""
    body = orjson.dumps(ev.record)
    dedup = (
        "id:" + ev.event_id
        if ev.event_id
        else content_key(ev.type, ev.record_key, ev.version, body)
    )
    extra = {"origin": origin} if origin is not None else {}
    return NewEvent(
        workspace=workspace,
        connection=connection,
        type=ev.type,
        record_key=ev.record_key,
        version=ev.version,
        dedup_key=dedup,
        correlation_id=correlation_id,
        headers_json=headers_json,
        body_json=body.decode(),
        routes=routes(workspace, connection, ev.type),
        received_at=received_at,
        **extra,
    )
