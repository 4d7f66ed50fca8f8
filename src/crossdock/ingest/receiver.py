"""The webhook receiver: ``POST /hooks/{workspace}/{connection}``.

verify signature -> parse -> extract type, record key, version, event id -> dedup ->
commit the event and its deliveries (group commit) -> answer 202. Nothing is
acknowledged before it is committed; a duplicate is answered 200 and stored once.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import orjson
import structlog
from starlette.types import Receive, Scope, Send

from crossdock.ingest.incoming import to_new_event
from crossdock.ingest.signatures import SignatureError, verify
from crossdock.runtime import tracing
from crossdock.runtime.metrics import UNKNOWN, for_database
from crossdock.runtime.registry import ConnectionRuntime, Registry
from crossdock.sdk.errors import SignatureRejected
from crossdock.sdk.webhooks import WebhookHandler
from crossdock.store.database import Database
from crossdock.store.events import NewEvent, content_key, record_events

# Headers that are never stored with an event.
_DROP = ("authorization", "cookie", "proxy-authorization")


log = structlog.get_logger("crossdock.receiver")

_JSON = b"application/json"
_PROBLEM = b"application/problem+json"


def _problem(status: int, title: str, detail: str) -> tuple[int, bytes, bytes]:
    """An RFC 9457 problem-details answer."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return status, orjson.dumps(body), _PROBLEM


class _Note:
    """What handling one webhook did, for the counters, the log line and the span."""

    __slots__ = ("deliveries", "event_ids", "result")

    def __init__(self) -> None:
        self.result: str | None = None  # accepted | duplicate | rejected | ignored
        self.event_ids: list[int | None] = []
        self.deliveries = 0


class WebhookReceiver:
    """The ASGI endpoint for inbound webhooks of every connection."""

    def __init__(
        self,
        db: Database,
        registry: Callable[[], Registry],
        on_recorded: Callable[[], None] | None = None,
    ) -> None:
        self.db = db
        self.registry = registry
        self.on_recorded = on_recorded
        self.received = 0
        self.duplicates = 0
        self.rejected = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The raw ASGI endpoint for ``POST /hooks/{workspace}/{connection}``.

        Plain ASGI rather than a framework route: this is the hottest path of the hub,
        and routing and middleware measured as a quarter of its cost."""
        parts = scope["path"].split("/")
        if len(parts) != 4 or scope["method"] != "POST":
            status, body, ctype = _problem(
                404 if len(parts) != 4 else 405,
                "Unknown webhook endpoint",
                "Webhooks are received at POST /hooks/{workspace}/{connection}.",
            )
        else:
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            status, body, ctype = await self.receive(parts[2], parts[3], headers, receive)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", ctype), (b"content-length", b"%d" % len(body))],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def receive(
        self, ws: str, name: str, headers: dict[str, str], receive: Receive
    ) -> tuple[int, bytes, bytes]:
        """Handle one webhook; return (status, body, content type). ``headers`` have
        lower-case names."""
        start_ns, t0 = time.time_ns(), time.perf_counter()
        # The client's id (e.g. a sender's retry of one delivery) else a new one; it is
        # stored with the event and carried by every log line and span about it.
        correlation = (headers.get("x-correlation-id") or "")[:64] or new_correlation_id()
        note = _Note()
        # Nothing below logs but _observe, which names the fields itself: binding them to
        # the logging context for every webhook cost a tenth of the ingest rate.
        status, body, ctype = await self._receive(ws, name, headers, receive, correlation, note)
        self._observe(ws, name, correlation, note, status, start_ns, t0)
        return status, body, ctype

    def _observe(
        self,
        ws: str,
        name: str,
        correlation: str,
        note: _Note,
        status: int,
        start_ns: int,
        t0: float,
    ) -> None:
        """Counters, the histogram, a log line and the ``ingest`` span of one webhook."""
        result = note.result
        if result == "accepted":
            self.received += 1
        elif result == "duplicate":
            self.duplicates += 1
        elif result == "rejected":
            self.rejected += 1
        committed = result in ("accepted", "duplicate")
        m = for_database(self.db)
        if m is not None and result is not None:
            reg = self.registry()
            if reg.connection(ws, name) is not None:
                labels = (ws, name)
            else:  # only configured names become labels
                labels = (ws if ws in reg.workspaces else UNKNOWN, UNKNOWN)
            m.webhook(*labels, result, time.perf_counter() - t0 if committed else None)
        if result == "rejected":
            log.info(
                "webhook_rejected",
                status=status,
                correlation_id=correlation,
                workspace=ws,
                connection=name,
            )
        elif log.is_enabled_for(logging.DEBUG):
            log.debug(
                "webhook_received",
                correlation_id=correlation,
                workspace=ws,
                connection=name,
                status=status,
                result=result,
                event_ids=note.event_ids,
                deliveries=note.deliveries,
            )
        if tracing.tracer() is None:
            return
        tracing.record_root(
            "ingest",
            correlation,
            start_ns,
            {
                "crossdock.workspace": ws,
                "crossdock.connection": name,
                "crossdock.result": result,
                "crossdock.deliveries": note.deliveries,
                "crossdock.event_id": note.event_ids[0] if len(note.event_ids) == 1 else None,
                "http.status_code": status,
            },
            error=None if status < 400 else f"HTTP {status}",
        )

    async def _receive(
        self,
        ws: str,
        name: str,
        headers: dict[str, str],
        receive: Receive,
        correlation: str,
        note: _Note,
    ) -> tuple[int, bytes, bytes]:
        conn = self.registry().connection(ws, name)
        handler: WebhookHandler | None = None
        if conn is not None and not conn.is_http:
            handler = conn.connector().webhooks
        if conn is None or (
            handler is None and (conn.inbound is None or conn.config.inbound is None)
        ):
            note.result = "rejected"
            return _problem(
                404,
                "Unknown webhook endpoint",
                f"No connection '{name}' receiving webhooks in workspace '{ws}'.",
            )
        if handler is not None:
            limit = handler.max_body_bytes
        else:
            assert conn.config.inbound is not None
            limit = conn.config.inbound.max_body_bytes
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            note.result = "rejected"
            return _problem(413, "Body too large", f"The body exceeds {limit} bytes.")
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return _problem(400, "Client went away", "The body did not arrive.")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                note.result = "rejected"
                return _problem(413, "Body too large", f"The body exceeds {limit} bytes.")
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        raw = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        if handler is not None:
            return await self._receive_connector(ws, conn, handler, headers, raw, correlation, note)
        assert conn.config.inbound is not None
        try:
            verify(conn.config.inbound.signature, headers, raw)
        except SignatureError as exc:
            note.result = "rejected"
            return _problem(401, "Signature rejected", exc.reason)
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            note.result = "rejected"
            return _problem(400, "Body is not JSON", f"Expected a JSON body: {exc}.")
        try:
            new = self._event(ws, conn, headers, body, raw, correlation)
        except _Unreadable as exc:
            note.result = "rejected"
            return _problem(422, "Event fields missing", str(exc))
        rec = await self.db.write_batched(record_events, new)
        note.event_ids = [rec.event_id]
        if rec.duplicate:
            note.result = "duplicate"
            return 200, orjson.dumps({"event_id": rec.event_id, "duplicate": True}), _JSON
        note.result, note.deliveries = "accepted", rec.deliveries
        if self.on_recorded is not None and rec.deliveries:
            self.on_recorded()
        answer = {
            "event_id": rec.event_id,
            "duplicate": False,
            "deliveries": rec.deliveries,
            "correlation_id": new.correlation_id,
        }
        return 202, orjson.dumps(answer), _JSON

    async def _receive_connector(
        self,
        ws: str,
        conn: ConnectionRuntime,
        handler: WebhookHandler,
        headers: dict[str, str],
        raw: bytes,
        correlation: str,
        note: _Note,
    ) -> tuple[int, bytes, bytes]:
        """A named connector's webhook: handshake, verify, parse, store, acknowledge."""
        reply = handler.handshake(headers, raw)
        if reply is not None:
            note.result = "ignored"
            return reply.status, orjson.dumps(reply.body), _JSON
        try:
            await handler.prepare(headers, raw)
            handler.verify(headers, raw)
        except SignatureRejected as exc:
            note.result = "rejected"
            return _problem(401, "Signature rejected", exc.reason)
        try:
            incoming = handler.parse(headers, raw)
        except Exception as exc:
            note.result = "rejected"
            return _problem(
                422,
                "Webhook not understood",
                f"The {conn.config.connector} webhook could not be read: "
                f"{type(exc).__name__}: {conn.redactor.text(str(exc))[:300]}",
            )
        if not incoming:
            # A topic the hub does not use: acknowledged, nothing stored.
            note.result = "ignored"
            return 200, orjson.dumps({"events": [], "ignored": True}), _JSON
        stored = conn.redactor.headers({k: v for k, v in headers.items() if k not in _DROP})
        headers_json = orjson.dumps(stored).decode()
        now = time.time()
        reg = self.registry()
        news = [
            to_new_event(
                ev,
                workspace=ws,
                connection=conn.name,
                correlation_id=correlation,
                routes=reg.routes,
                received_at=now,
                headers_json=headers_json,
            )
            for ev in incoming
        ]
        recs = await asyncio.gather(*(self.db.write_batched(record_events, n) for n in news))
        fresh = [r for r in recs if not r.duplicate]
        note.event_ids = [r.event_id for r in recs]
        if not fresh:
            note.result = "duplicate"
            ids = [r.event_id for r in recs]
            return 200, orjson.dumps({"event_ids": ids, "duplicate": True}), _JSON
        note.result, note.deliveries = "accepted", sum(r.deliveries for r in fresh)
        if self.on_recorded is not None and any(r.deliveries for r in fresh):
            self.on_recorded()
        answer = {
            "event_ids": [r.event_id for r in recs],
            "duplicate": False,
            "deliveries": sum(r.deliveries for r in fresh),
            "correlation_id": correlation,
        }
        return 202, orjson.dumps(answer), _JSON

    def _event(
        self,
        ws: str,
        conn: ConnectionRuntime,
        headers: dict[str, str],
        body: Any,
        raw: bytes,
        correlation: str,
    ) -> NewEvent:
        assert conn.inbound is not None
        ctx = {"body": body, "headers": headers, "event": {}, "xref": None}
        event_type = _extract(conn.inbound.event_type, ctx, "event type", conn, "event_type")
        record_key = _extract(conn.inbound.record_key, ctx, "record key", conn, "record_key")
        version = None
        if conn.inbound.version is not None:
            v = _extract(conn.inbound.version, ctx, "version", conn, "version")
            version = str(v)
        if conn.inbound.event_id is not None:
            eid = _extract(conn.inbound.event_id, ctx, "event id", conn, "event_id")
            dedup = "id:" + str(eid)
        else:
            dedup = content_key(str(event_type), str(record_key), version, raw)
        stored_headers = {k: v for k, v in headers.items() if k not in _DROP}
        stored_headers = conn.redactor.headers(stored_headers)
        return NewEvent(
            workspace=ws,
            connection=conn.name,
            type=str(event_type),
            record_key=str(record_key),
            version=version,
            dedup_key=dedup,
            correlation_id=correlation,
            headers_json=orjson.dumps(stored_headers).decode(),
            body_json=raw.decode("utf-8", "replace"),
            routes=self.registry().routes(ws, conn.name, str(event_type)),
            received_at=time.time(),
        )


_PREFIX = uuid.uuid4().hex[:12]
_counter = itertools.count(1)


def new_correlation_id() -> str:
    """A correlation id unique across processes: a random per-process prefix and a
    counter (uuid4 per request measured as 13% of ingest time)."""
    return f"{_PREFIX}{next(_counter):012x}"


class _Unreadable(Exception):
    pass


def _extract(fn: Any, ctx: dict[str, Any], what: str, conn: ConnectionRuntime, key: str) -> Any:
    try:
        value = fn(ctx)
    except Exception as exc:
        raise _Unreadable(
            f"Could not read the {what} with '{getattr(conn.config.inbound, key)}': "
            f"{type(exc).__name__}: {exc}. Check the connection's inbound.{key} setting."
        ) from None
    if value is None or value == "":
        raise _Unreadable(
            f"The {what} is empty: '{getattr(conn.config.inbound, key)}' gave nothing for this "
            f"body. Check the connection's inbound.{key} setting."
        )
    return value
