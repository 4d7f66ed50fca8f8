"""Polling sources: read a vendor's list on a schedule, with a durable cursor.

For systems that cannot push (Amazon orders, WooCommerce after its webhooks were
disabled, any API without webhooks). One poll round:

1. claim the round: only one process polls a connection at a time (the cursor row's
   ``updated_at`` is the claim), so many ``serve``/``worker`` processes can run;
2. ``GET url?{cursor_param}={cursor - overlap}`` and follow ``next_page`` links;
3. turn every item into an event (dedup by vendor id, else by content: the overlap
   window's repeats are absorbed);
4. store the events, their deliveries and the advanced cursor in ONE transaction: the
   cursor never moves past an event that is not stored.

Every call is recorded in the audit trail (attempts with ``delivery_id`` 0).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urljoin

import httpx
import orjson
import structlog
from sqlalchemy import Connection, select, update
from sqlalchemy.dialects import postgresql, sqlite

from crossdock.connectors.http.outbound import auth_headers
from crossdock.ingest.incoming import to_new_event
from crossdock.pipeline.audit import exchange_rows
from crossdock.pipeline.outcome import Outcome, classify_error, classify_response
from crossdock.runtime import tracing
from crossdock.runtime.logs import bound
from crossdock.runtime.metrics import for_database
from crossdock.runtime.registry import ConnectionRuntime, Registry
from crossdock.sdk.client import recording
from crossdock.sdk.errors import VendorError
from crossdock.sdk.events import IncomingEvent
from crossdock.sdk.streams import Cursor
from crossdock.store.database import Database
from crossdock.store.events import NewEvent, content_key, record_events, version_key
from crossdock.store.tables import attempts, cursors

log = structlog.get_logger("crossdock.polling")

STREAM = "poll"


@dataclass
class PollResult:
    """What one poll round did."""

    items: int = 0
    new_events: int = 0
    duplicates: int = 0
    cursor: str | None = None
    error: str | None = None
    skipped: bool = False


def step_back(cursor: str, seconds: float) -> str:
    """The cursor moved back by the overlap window (ISO timestamps only)."""
    try:
        dt = datetime.fromisoformat(cursor.replace("Z", "+00:00"))
    except ValueError:
        return cursor
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return (dt - timedelta(seconds=seconds)).astimezone(UTC).isoformat().replace("+00:00", "Z")


def _insert(conn: Connection, table: Any) -> Any:
    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(table)


def claim_round(
    conn: Connection, ws: str, name: str, interval: float, initial: str, stream: str = STREAM
) -> Any:
    """Take this poll round if it is due; return the stored cursor state or None."""
    now = time.time()
    conn.execute(
        _insert(conn, cursors)
        .values(
            workspace=ws,
            connection=name,
            stream=stream,
            value=orjson.dumps({"cursor": initial}).decode(),
            updated_at=0.0,
        )
        .on_conflict_do_nothing()
    )
    res = conn.execute(
        update(cursors)
        .where(
            cursors.c.workspace == ws,
            cursors.c.connection == name,
            cursors.c.stream == stream,
            cursors.c.updated_at <= now - interval * 0.9,
        )
        .values(updated_at=now)
    )
    if not res.rowcount:
        return None
    value = conn.execute(
        select(cursors.c.value).where(
            cursors.c.workspace == ws, cursors.c.connection == name, cursors.c.stream == stream
        )
    ).scalar_one()
    return orjson.loads(value)


def save_round(
    conn: Connection,
    ws: str,
    name: str,
    state: dict[str, Any],
    new_events: list[NewEvent],
    audit: list[dict[str, Any]],
    stream: str = STREAM,
) -> list[Any]:
    """Store the round's events and the advanced cursor together (one transaction)."""
    recorded = list(record_events(conn, new_events)) if new_events else []
    if audit:
        conn.execute(attempts.insert(), audit)
    conn.execute(
        update(cursors)
        .where(cursors.c.workspace == ws, cursors.c.connection == name, cursors.c.stream == stream)
        .values(value=orjson.dumps(state).decode(), updated_at=time.time())
    )
    return recorded


class Poller:
    """Runs every polling connection of the registry on its schedule."""

    def __init__(
        self,
        db: Database,
        registry: Callable[[], Registry],
        *,
        client: httpx.AsyncClient | None = None,
        on_recorded: Callable[[], None] | None = None,
    ) -> None:
        self.db = db
        self.registry = registry
        self._client = client
        self.on_recorded = on_recorded

    @property
    def client(self) -> httpx.AsyncClient:
        """The HTTP client (made on first use)."""
        if self._client is None:
            self._client = httpx.AsyncClient()
        return self._client

    async def run(self, stop: asyncio.Event, tick: float = 0.5) -> None:
        """Poll every connection that is due, until ``stop`` is set."""
        try:
            while not stop.is_set():
                for ws in list(self.registry().workspaces.values()):
                    for conn in list(ws.connections.values()):
                        if conn.poll is not None:
                            try:
                                await self.poll_once(conn)
                            except Exception:  # keep polling the others
                                log.exception("poll_failed", connection=conn.limiter_key)
                        for stream in conn.config.streams if not conn.is_http else ():
                            try:
                                await self.poll_stream(conn, stream)
                            except Exception:  # keep polling the others
                                log.exception(
                                    "poll_failed", connection=conn.limiter_key, stream=stream
                                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), tick)
        finally:
            if self._client is not None:
                await self._client.aclose()

    async def poll_once(self, conn: ConnectionRuntime, *, force: bool = False) -> PollResult:
        """One round for ``conn`` if it is due (or ``force``)."""
        cfg = conn.config.poll
        assert cfg is not None and conn.poll is not None
        interval = 0.0 if force else cfg.interval_seconds
        state = await self.db.write(
            lambda c: claim_round(c, conn.workspace, conn.name, interval, cfg.initial_cursor)
        )
        if state is None:
            return PollResult(skipped=True)
        cursor = str(state.get("cursor") or cfg.initial_cursor)
        correlation = uuid.uuid4().hex
        try:
            with bound(correlation_id=correlation, workspace=conn.workspace, connection=conn.name):
                result = await self._poll_round(conn, cursor, correlation, time.time_ns())
        except Exception:
            self._count(conn, STREAM, error=True)
            raise
        self._count(conn, STREAM, error=result.error is not None)
        return result

    def _count(self, conn: ConnectionRuntime, stream: str, *, error: bool) -> None:
        """Count one polling round that ran (``crossdock_polls_total``)."""
        m = for_database(self.db)
        if m is not None:
            m.poll(conn.workspace, conn.name, stream, error)

    async def _poll_round(
        self, conn: ConnectionRuntime, cursor: str, correlation: str, start_ns: int
    ) -> PollResult:
        cfg = conn.config.poll
        assert cfg is not None and conn.poll is not None
        auth = cfg.auth if cfg.auth is not None else getattr(conn.config.outbound, "auth", None)
        headers = {"Accept": "application/json", **cfg.headers, **auth_headers(auth)}
        url: str | None = cfg.url
        params: dict[str, str] | None = {
            **cfg.params,
            cfg.cursor_param: step_back(cursor, cfg.overlap_seconds),
        }
        items: list[Any] = []
        audit: list[dict[str, Any]] = []
        error: str | None = None
        pages = 0
        while url is not None and pages < cfg.max_pages:
            pages += 1
            started, t0 = time.time(), time.perf_counter()
            status: int | None = None
            text = ""
            try:
                resp = await self.client.get(
                    url, params=params, headers=headers, timeout=cfg.timeout_seconds
                )
                status, text = resp.status_code, resp.text
                cl = classify_response(status, resp.headers, conn.name)
            except Exception as exc:
                cl = classify_error(exc, conn.name)
                resp = None
            audit.append(
                {
                    "workspace": conn.workspace,
                    "delivery_id": 0,
                    "connection": conn.name,
                    "correlation_id": correlation,
                    "started_at": started,
                    "latency_ms": (time.perf_counter() - t0) * 1000,
                    "method": "GET",
                    "url": str(resp.request.url) if resp is not None else url,
                    "status": status,
                    "outcome": cl.outcome.value,
                    "error": None if cl.outcome is Outcome.SUCCESS else cl.reason,
                    "request_headers": orjson.dumps(conn.redactor.headers(headers)).decode(),
                    "request_body": "",
                    "response_headers": "{}",
                    "response_body": conn.redactor.text(text[:65536]),
                }
            )
            if cl.outcome is not Outcome.SUCCESS or resp is None:
                error = cl.reason
                break
            try:
                ctx = {"body": resp.json(), "headers": dict(resp.headers), "status": status}
                page_items = conn.poll.items(ctx)
                nxt = conn.poll.next_page(ctx) if conn.poll.next_page else None
            except Exception as exc:
                error = f"could not read the answer of {url}: {type(exc).__name__}: {exc}"
                break
            items.extend(page_items or [])
            url = urljoin(url, str(nxt)) if nxt else None
            params = None
        new_events, newest, problems = self._events(conn, items, cursor, correlation)
        if problems and error is None:
            error = problems[0]
        next_state: dict[str, Any] = {
            "cursor": newest,
            "polled_at": time.time(),
            "last_error": error,
            "items": len(items),
        }
        if error is not None and not new_events:
            next_state["cursor"] = cursor  # nothing learned: stay where we were
        recorded = await self.db.write(
            lambda c: save_round(c, conn.workspace, conn.name, next_state, new_events, audit)
        )
        new = sum(1 for r in recorded if not r.duplicate)
        if new and self.on_recorded is not None:
            self.on_recorded()
        if error:
            log.warning("poll_error", connection=conn.limiter_key, error=error)
        _span(conn, STREAM, correlation, start_ns, len(items), new, error)
        return PollResult(
            items=len(items),
            new_events=new,
            duplicates=len(recorded) - new,
            cursor=next_state["cursor"],
            error=error,
        )

    async def poll_stream(
        self, conn: ConnectionRuntime, stream_name: str, *, force: bool = False
    ) -> PollResult:
        """One round of a named connector's stream, if it is due (or ``force``)."""
        stream = conn.connector().streams[stream_name]
        opts = conn.config.streams.get(stream_name)
        every = (opts.interval_seconds if opts else None) or stream.interval_seconds
        interval = 0.0 if force else every
        key = f"stream:{stream_name}"
        ws, name = conn.workspace, conn.name
        state = await self.db.write(
            lambda c: claim_round(c, ws, name, interval, stream.initial_cursor, key)
        )
        if state is None:
            return PollResult(skipped=True)
        correlation = uuid.uuid4().hex
        try:
            with bound(
                correlation_id=correlation, workspace=ws, connection=name, stream=stream_name
            ):
                result = await self._stream_round(conn, stream_name, state, correlation)
        except Exception:
            self._count(conn, stream_name, error=True)
            raise
        self._count(conn, stream_name, error=result.error is not None)
        return result

    async def _stream_round(
        self, conn: ConnectionRuntime, stream_name: str, state: Any, correlation: str
    ) -> PollResult:
        start_ns = time.time_ns()
        stream = conn.connector().streams[stream_name]
        key = f"stream:{stream_name}"
        ws, name = conn.workspace, conn.name
        cursor = Cursor.from_state(state, stream.initial_cursor, stream.lag_seconds)
        before = cursor.to_state()
        incoming: list[IncomingEvent] = []
        error: str | None = None
        with recording() as rec:
            try:
                async for ev in stream.read(cursor):
                    incoming.append(ev)
            except VendorError as exc:
                error = exc.classified.reason
            except Exception as exc:
                error = f"{type(exc).__name__}: {conn.redactor.text(str(exc))[:300]}"
        reg = self.registry()
        now = time.time()
        new_events = [
            to_new_event(
                ev,
                workspace=ws,
                connection=name,
                correlation_id=correlation,
                routes=reg.routes,
                received_at=now,
                origin="poll",
            )
            for ev in incoming
        ]
        audit = exchange_rows(
            rec.exchanges, workspace=ws, delivery_id=0, connection=name, correlation_id=correlation
        )
        next_state: dict[str, Any] = {
            **(before if error is not None and not new_events else cursor.to_state()),
            "polled_at": time.time(),
            "last_error": error,
            "items": len(incoming),
        }
        recorded = await self.db.write(
            lambda c: save_round(c, ws, name, next_state, new_events, audit, key)
        )
        new = sum(1 for r in recorded if not r.duplicate)
        if new and self.on_recorded is not None:
            self.on_recorded()
        if error:
            log.warning("poll_error", connection=conn.limiter_key, stream=stream_name, error=error)
        _span(conn, stream_name, correlation, start_ns, len(incoming), new, error)
        return PollResult(
            items=len(incoming),
            new_events=new,
            duplicates=len(recorded) - new,
            cursor=str(next_state.get("cursor")),
            error=error,
        )

    def _events(
        self, conn: ConnectionRuntime, items: list[Any], cursor: str, correlation: str
    ) -> tuple[list[NewEvent], str, list[str]]:
        assert conn.poll is not None
        reg = self.registry()
        newest = cursor
        out: list[NewEvent] = []
        problems: list[str] = []
        now = time.time()
        for item in items:
            ctx: Mapping[str, Any] = {"body": item, "headers": {}}
            try:
                event_type = str(conn.poll.event_type(ctx))
                record_key = str(conn.poll.record_key(ctx))
                version = conn.poll.version(ctx) if conn.poll.version else None
                eid = conn.poll.event_id(ctx) if conn.poll.event_id else None
                position = conn.poll.cursor({"item": item})
            except Exception as exc:
                problems.append(f"an item could not be read: {type(exc).__name__}: {exc}")
                continue
            raw = orjson.dumps(item, option=orjson.OPT_SORT_KEYS)
            v = None if version is None else str(version)
            dedup = f"id:{eid}" if eid is not None else content_key(event_type, record_key, v, raw)
            out.append(
                NewEvent(
                    workspace=conn.workspace,
                    connection=conn.name,
                    type=event_type,
                    record_key=record_key,
                    version=v,
                    dedup_key=dedup,
                    correlation_id=correlation,
                    headers_json="{}",
                    body_json=raw.decode(),
                    routes=reg.routes(conn.workspace, conn.name, event_type),
                    origin="poll",
                    received_at=now,
                )
            )
            if position is not None and version_key(str(position)) > version_key(newest):
                newest = str(position)
        return out, newest, problems


def _span(
    conn: ConnectionRuntime,
    stream: str,
    correlation: str,
    start_ns: int,
    items: int,
    new: int,
    error: str | None,
) -> None:
    """The ``poll`` span: the root of the trace its events' deliveries join."""
    tracing.record_root(
        "poll",
        correlation,
        start_ns,
        {
            "crossdock.workspace": conn.workspace,
            "crossdock.connection": conn.name,
            "crossdock.stream": stream,
            "crossdock.items": items,
            "crossdock.new_events": new,
        },
        error="poll failed" if error is not None else None,
    )
