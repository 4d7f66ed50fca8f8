"""Routes for what moves: events, deliveries, the attempts (audit trail), exceptions and
their actions, cross-references, replay and KPIs.

Lists are newest first (keyset on id). Operators act on exceptions and replay; viewers
read. Only a delivery waiting in the exception queue can be retried, edited, skipped or
resolved; anything else is a 409 problem saying what state it is in.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
import structlog
from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field, model_validator
from sqlalchemy import Connection, Select, select, update

from crossdock.api.auth import context, operator, viewer
from crossdock.api.context import ApiContext
from crossdock.api.keys import Principal
from crossdock.api.kpis import kpis
from crossdock.api.pagination import Page, PageParams, epoch, iso, json_or_text, page
from crossdock.api.problems import Problem
from crossdock.api.replay import replay
from crossdock.pipeline.actions import close_delivery, retry_deliveries
from crossdock.store.tables import (
    attempts,
    cross_references,
    deliveries,
    event_bodies,
    events,
    exceptions,
)

log = structlog.get_logger("crossdock.api")

router = APIRouter()
Ctx = Annotated[ApiContext, Depends(context)]
Viewer = Annotated[Principal, Depends(viewer)]
Operator = Annotated[Principal, Depends(operator)]
Since = Annotated[
    datetime | None, Query(description="From this time (ISO 8601 or epoch seconds; UTC).")
]
Until = Annotated[
    datetime | None, Query(description="Until this time (ISO 8601 or epoch seconds; UTC).")
]
Id = Annotated[int, Path(ge=1, description="Its id.")]


def _keyset(q: Select[Any], column: Any, params: PageParams) -> Select[Any]:
    if params.after is not None:
        try:
            after = int(params.after)
        except ValueError:
            raise Problem(422, "The cursor is not valid.") from None
        q = q.where(column < after)
    return q.order_by(column.desc()).limit(params.limit + 1)


def _equal(q: Select[Any], filters: dict[Any, Any]) -> Select[Any]:
    """Add ``column == value`` for every filter the caller gave (value not None)."""
    for column, value in filters.items():
        if value is not None:
            q = q.where(column == value)
    return q


def _window(q: Select[Any], column: Any, since: datetime | None, until: datetime | None) -> Any:
    start, end = epoch(since), epoch(until)
    if start is not None:
        q = q.where(column >= start)
    if end is not None:
        q = q.where(column <= end)
    return q


# -- rendering --------------------------------------------------------------------------
def _event(r: Any) -> dict[str, Any]:
    return {
        "id": r.id,
        "connection": r.connection,
        "type": r.type,
        "record_key": r.record_key,
        "version": r.version,
        "correlation_id": r.correlation_id,
        "origin": r.origin,
        "received_at": iso(r.received_at),
    }


def _delivery(r: Any) -> dict[str, Any]:
    return {
        "id": r.id,
        "event_id": r.event_id,
        "flow": r.flow,
        "record_key": r.record_key,
        "generation": r.generation,
        "state": r.state,
        "priority": r.priority,
        "attempts": r.attempts,
        "throttled": r.throttled,
        "next_attempt_at": iso(r.next_attempt_at),
        "outcome": r.outcome,
        "detail": r.detail,
        "edited": r.override_body is not None,
        "created_at": iso(r.created_at),
        "updated_at": iso(r.updated_at),
    }


def _redactor(ctx: ApiContext, ws: str) -> Callable[[str, str], str]:
    """``redact(connection, text)``: the stored audit trail is redacted when written;
    this is a second pass with the connection's current secrets."""
    try:
        reg = ctx.registry()
    except Exception:
        log.exception("registry_unavailable")
        reg = None

    def redact(connection: str, text: str) -> str:
        rt = reg.connection(ws, connection) if reg is not None else None
        if rt is None:
            return text
        fn = getattr(rt.redactor, "text", None)
        return fn(text) if callable(fn) else text

    return redact


def _attempt(r: Any, redact: Callable[[str, str], str]) -> dict[str, Any]:
    def clean(text: str | None) -> Any:
        return None if text is None else json_or_text(redact(r.connection, text))

    return {
        "id": r.id,
        "delivery_id": r.delivery_id,
        "connection": r.connection,
        "correlation_id": r.correlation_id,
        "started_at": iso(r.started_at),
        "latency_ms": r.latency_ms,
        "method": r.method,
        "url": redact(r.connection, r.url),
        "status": r.status,
        "outcome": r.outcome,
        "error": None if r.error is None else redact(r.connection, r.error),
        "request": {"headers": clean(r.request_headers), "body": clean(r.request_body)},
        "response": {"headers": clean(r.response_headers), "body": clean(r.response_body)},
    }


def _exception(r: Any) -> dict[str, Any]:
    return {
        "id": r.id,
        "delivery_id": r.delivery_id,
        "flow": r.flow,
        "record_key": r.record_key,
        "category": r.category,
        "reason": r.reason,
        "fix": r.fix,
        "state": r.state,
        "resolution": r.resolution,
        "delivery_state": getattr(r, "delivery_state", None),
        "created_at": iso(r.created_at),
        "updated_at": iso(r.updated_at),
    }


def _xref(r: Any) -> dict[str, Any]:
    return {
        "id": r.id,
        "source_connection": r.source_connection,
        "source_key": r.source_key,
        "target_connection": r.target_connection,
        "target_id": r.target_id,
        "updated_at": iso(r.updated_at),
    }


def _event_with_body(conn: Connection, ws: str, event_id: int) -> dict[str, Any] | None:
    row = conn.execute(
        select(events, event_bodies.c.headers, event_bodies.c.body)
        .select_from(events.outerjoin(event_bodies, event_bodies.c.event_id == events.c.id))
        .where(events.c.workspace == ws, events.c.id == event_id)
    ).first()
    if row is None:
        return None
    out = _event(row)
    out["headers"] = json_or_text(row.headers)
    out["body"] = json_or_text(row.body)
    return out


# -- events -----------------------------------------------------------------------------
@router.get("/workspaces/{ws}/events", summary="Events", tags=["events"])
async def list_events(
    ws: str,
    ctx: Ctx,
    _p: Viewer,
    params: Page,
    since: Since = None,
    until: Until = None,
    type: Annotated[str | None, Query(description="Event type, e.g. orders/create.")] = None,
    record_key: Annotated[str | None, Query(description="The record's key.")] = None,
    connection: Annotated[str | None, Query(description="The source connection.")] = None,
) -> dict[str, Any]:
    """Events received, newest first."""
    q = select(events).where(events.c.workspace == ws)
    q = _equal(
        q, {events.c.type: type, events.c.record_key: record_key, events.c.connection: connection}
    )
    q = _keyset(_window(q, events.c.received_at, since, until), events.c.id, params)
    rows = await ctx.db.read(lambda c: list(c.execute(q)))
    return page(rows, params, _event)


@router.get("/workspaces/{ws}/events/{event_id}", summary="An event", tags=["events"])
async def get_event(ws: str, event_id: Id, ctx: Ctx, _p: Viewer) -> dict[str, Any]:
    """One event with its headers, body and deliveries."""

    def read(conn: Connection) -> dict[str, Any] | None:
        out = _event_with_body(conn, ws, event_id)
        if out is not None:
            out["deliveries"] = [
                _delivery(d)
                for d in conn.execute(
                    select(deliveries)
                    .where(deliveries.c.workspace == ws, deliveries.c.event_id == event_id)
                    .order_by(deliveries.c.id)
                )
            ]
        return out

    found = await ctx.db.read(read)
    if found is None:
        raise Problem(404, f"No event {event_id} in workspace '{ws}'.")
    return found


# -- deliveries -------------------------------------------------------------------------
DeliveryState = Literal["pending", "in_progress", "succeeded", "skipped", "exception"]


@router.get("/workspaces/{ws}/deliveries", summary="Deliveries", tags=["deliveries"])
async def list_deliveries(
    ws: str,
    ctx: Ctx,
    _p: Viewer,
    params: Page,
    state: Annotated[DeliveryState | None, Query(description="Only this state.")] = None,
    flow: Annotated[str | None, Query(description="Only this flow.")] = None,
    record_key: Annotated[str | None, Query(description="The record's key.")] = None,
    event_id: Annotated[int | None, Query(description="Only this event's.")] = None,
) -> dict[str, Any]:
    """Deliveries (one event through one flow), newest first."""
    q = select(deliveries).where(deliveries.c.workspace == ws)
    q = _equal(
        q,
        {
            deliveries.c.state: state,
            deliveries.c.flow: flow,
            deliveries.c.record_key: record_key,
            deliveries.c.event_id: event_id,
        },
    )
    q = _keyset(q, deliveries.c.id, params)
    rows = await ctx.db.read(lambda c: list(c.execute(q)))
    return page(rows, params, _delivery)


@router.get("/workspaces/{ws}/deliveries/{delivery_id}", summary="A delivery", tags=["deliveries"])
async def get_delivery(ws: str, delivery_id: Id, ctx: Ctx, _p: Viewer) -> dict[str, Any]:
    """One delivery with its attempts (oldest first), its exception and edited payload."""
    redact = _redactor(ctx, ws)

    def read(conn: Connection) -> dict[str, Any] | None:
        d = conn.execute(
            select(deliveries).where(deliveries.c.workspace == ws, deliveries.c.id == delivery_id)
        ).first()
        if d is None:
            return None
        out = _delivery(d)
        out["override_body"] = json_or_text(d.override_body)
        out["attempt_log"] = [
            _attempt(a, redact)
            for a in conn.execute(
                select(attempts)
                .where(attempts.c.workspace == ws, attempts.c.delivery_id == delivery_id)
                .order_by(attempts.c.id)
            )
        ]
        exc = conn.execute(
            select(exceptions).where(
                exceptions.c.workspace == ws, exceptions.c.delivery_id == delivery_id
            )
        ).first()
        out["exception"] = _exception(exc) if exc is not None else None
        return out

    found = await ctx.db.read(read)
    if found is None:
        raise Problem(404, f"No delivery {delivery_id} in workspace '{ws}'.")
    return found


# -- attempts ---------------------------------------------------------------------------
@router.get("/workspaces/{ws}/attempts", summary="Attempts: the audit trail", tags=["attempts"])
async def list_attempts(
    ws: str,
    ctx: Ctx,
    _p: Viewer,
    params: Page,
    since: Since = None,
    until: Until = None,
    correlation_id: Annotated[str | None, Query(description="One event's chain.")] = None,
    delivery_id: Annotated[int | None, Query(description="One delivery's attempts.")] = None,
    record_key: Annotated[str | None, Query(description="The record's key.")] = None,
) -> dict[str, Any]:
    """Every call made to a destination (request, response, latency, outcome), newest
    first. Secrets were redacted when the attempt was recorded."""
    q = select(attempts).where(attempts.c.workspace == ws)
    q = _equal(q, {attempts.c.correlation_id: correlation_id, attempts.c.delivery_id: delivery_id})
    if record_key is not None:
        q = q.where(
            attempts.c.delivery_id.in_(
                select(deliveries.c.id).where(
                    deliveries.c.workspace == ws, deliveries.c.record_key == record_key
                )
            )
        )
    q = _keyset(_window(q, attempts.c.started_at, since, until), attempts.c.id, params)
    rows = await ctx.db.read(lambda c: list(c.execute(q)))
    redact = _redactor(ctx, ws)
    return page(rows, params, lambda r: _attempt(r, redact))


# -- exceptions -------------------------------------------------------------------------
ExceptionState = Literal["open", "retrying", "resolved", "all"]


def _exceptions_query(ws: str) -> Select[Any]:
    return (
        select(exceptions, deliveries.c.state.label("delivery_state"))
        .select_from(exceptions.outerjoin(deliveries, deliveries.c.id == exceptions.c.delivery_id))
        .where(exceptions.c.workspace == ws)
    )


@router.get("/workspaces/{ws}/exceptions", summary="Exceptions", tags=["exceptions"])
async def list_exceptions(
    ws: str,
    ctx: Ctx,
    _p: Viewer,
    params: Page,
    state: Annotated[ExceptionState, Query(description="open, retrying, resolved or all.")] = (
        "open"
    ),
    category: Annotated[str | None, Query(description="Only this category.")] = None,
    flow: Annotated[str | None, Query(description="Only this flow.")] = None,
) -> dict[str, Any]:
    """The exception queue: deliveries that need a person, newest first."""
    q = _exceptions_query(ws)
    if state != "all":
        q = q.where(exceptions.c.state == state)
    q = _equal(q, {exceptions.c.category: category, exceptions.c.flow: flow})
    q = _keyset(q, exceptions.c.id, params)
    rows = await ctx.db.read(lambda c: list(c.execute(q)))
    return page(rows, params, _exception)


class RetryAllResult(BaseModel):
    """How many exceptions were retried."""

    retried: int


@router.post(
    "/workspaces/{ws}/exceptions/retry-all",
    summary="Retry every open exception (of a category or flow)",
    tags=["exceptions"],
)
async def retry_all(
    ws: str,
    ctx: Ctx,
    _p: Operator,
    category: Annotated[str | None, Query(description="Only this category.")] = None,
    flow: Annotated[str | None, Query(description="Only this flow.")] = None,
) -> RetryAllResult:
    """Make every delivery waiting in the exception queue due again."""

    def write(conn: Connection) -> int:
        q = (
            select(deliveries.c.id)
            .select_from(exceptions.join(deliveries, deliveries.c.id == exceptions.c.delivery_id))
            .where(
                exceptions.c.workspace == ws,
                exceptions.c.state == "open",
                deliveries.c.state == "exception",
            )
        )
        q = _equal(q, {exceptions.c.category: category, exceptions.c.flow: flow})
        ids = [r[0] for r in conn.execute(q)]
        now = time.time()
        done = 0
        for i in range(0, len(ids), 500):
            done += retry_deliveries(conn, ids[i : i + 500], now)
        return done

    n = await ctx.db.write(write)
    if n:
        ctx.wake()
    return RetryAllResult(retried=n)


@router.get(
    "/workspaces/{ws}/exceptions/{exception_id}", summary="An exception", tags=["exceptions"]
)
async def get_exception(ws: str, exception_id: Id, ctx: Ctx, _p: Viewer) -> dict[str, Any]:
    """One exception: the reason and the fix, its delivery, the event body and the last
    attempt."""
    redact = _redactor(ctx, ws)

    def read(conn: Connection) -> dict[str, Any] | None:
        row = conn.execute(_exceptions_query(ws).where(exceptions.c.id == exception_id)).first()
        if row is None:
            return None
        out = _exception(row)
        d = conn.execute(select(deliveries).where(deliveries.c.id == row.delivery_id)).first()
        out["delivery"] = None
        out["event"] = None
        if d is not None:
            out["delivery"] = _delivery(d)
            out["delivery"]["override_body"] = json_or_text(d.override_body)
            out["event"] = _event_with_body(conn, ws, d.event_id)
        last = conn.execute(
            select(attempts)
            .where(attempts.c.delivery_id == row.delivery_id)
            .order_by(attempts.c.id.desc())
            .limit(1)
        ).first()
        out["last_attempt"] = _attempt(last, redact) if last is not None else None
        return out

    found = await ctx.db.read(read)
    if found is None:
        raise Problem(404, f"No exception {exception_id} in workspace '{ws}'.")
    return found


class EditBody(BaseModel):
    """The payload to send instead of the mapped one."""

    payload: Any = Field(description="The JSON body to send to the destination.")


class SkipBody(BaseModel):
    """Why the delivery is skipped."""

    reason: str = Field(min_length=1, max_length=2000, description="Why, in plain words.")


class ResolveBody(BaseModel):
    """How the exception was resolved outside Crossdock."""

    note: str = Field(min_length=1, max_length=2000, description="What was done, in words.")


Act = Callable[[Connection, Any, float], None]


async def _act(ctx: ApiContext, ws: str, exception_id: int, act: Act) -> dict[str, Any]:
    """Run ``act`` on a delivery waiting in the exception queue, atomically."""

    def write(conn: Connection) -> tuple[str, Any]:
        row = conn.execute(
            select(exceptions.c.delivery_id, deliveries.c.state)
            .select_from(
                exceptions.outerjoin(deliveries, deliveries.c.id == exceptions.c.delivery_id)
            )
            .where(exceptions.c.workspace == ws, exceptions.c.id == exception_id)
        ).first()
        if row is None:
            return "missing", None
        if row.state != "exception":
            return "conflict", row.state
        act(conn, row.delivery_id, time.time())
        return "done", row.delivery_id

    status, value = await ctx.db.write(write)
    if status == "missing":
        raise Problem(404, f"No exception {exception_id} in workspace '{ws}'.")
    if status == "conflict":
        raise Problem(
            409,
            f"The delivery of exception {exception_id} is '{value or 'missing'}', not waiting "
            "in the exception queue; there is nothing to do.",
            title="Not in the exception queue",
        )
    return await ctx.db.read(lambda c: _exception_state(c, ws, exception_id))


def _exception_state(conn: Connection, ws: str, exception_id: int) -> dict[str, Any]:
    row = conn.execute(_exceptions_query(ws).where(exceptions.c.id == exception_id)).one()
    return _exception(row)


@router.post(
    "/workspaces/{ws}/exceptions/{exception_id}/retry",
    summary="Retry an exception's delivery",
    tags=["exceptions"],
)
async def retry_exception(ws: str, exception_id: Id, ctx: Ctx, _p: Operator) -> dict[str, Any]:
    """Make the delivery due now (its attempts are kept)."""

    def act(conn: Connection, delivery_id: Any, now: float) -> None:
        retry_deliveries(conn, [delivery_id], now)

    out = await _act(ctx, ws, exception_id, act)
    ctx.wake()
    return out


@router.post(
    "/workspaces/{ws}/exceptions/{exception_id}/edit",
    summary="Send an edited payload",
    tags=["exceptions"],
)
async def edit_exception(
    ws: str, exception_id: Id, body: EditBody, ctx: Ctx, _p: Operator
) -> dict[str, Any]:
    """Store the payload to send instead of the mapped one, then retry."""
    override = orjson.dumps(body.payload).decode()

    def act(conn: Connection, delivery_id: Any, now: float) -> None:
        conn.execute(
            update(deliveries).where(deliveries.c.id == delivery_id).values(override_body=override)
        )
        retry_deliveries(conn, [delivery_id], now)

    out = await _act(ctx, ws, exception_id, act)
    ctx.wake()
    return out


@router.post(
    "/workspaces/{ws}/exceptions/{exception_id}/skip",
    summary="Skip an exception's delivery",
    tags=["exceptions"],
)
async def skip_exception(
    ws: str, exception_id: Id, body: SkipBody, ctx: Ctx, principal: Operator
) -> dict[str, Any]:
    """Skip the delivery for good (it counts as skipped, with who and why)."""
    detail = f"skipped by {principal.name}: {body.reason}"
    return await _act(ctx, ws, exception_id, lambda c, d, now: close_delivery(c, d, now, detail))


@router.post(
    "/workspaces/{ws}/exceptions/{exception_id}/resolve",
    summary="Resolve an exception by hand",
    tags=["exceptions"],
)
async def resolve_exception(
    ws: str, exception_id: Id, body: ResolveBody, ctx: Ctx, _p: Operator
) -> dict[str, Any]:
    """Mark it resolved outside Crossdock; the delivery counts as skipped with the note."""
    detail = f"resolved by operator: {body.note}"
    return await _act(ctx, ws, exception_id, lambda c, d, now: close_delivery(c, d, now, detail))


# -- cross-references -------------------------------------------------------------------
@router.get("/workspaces/{ws}/xrefs", summary="Cross-references", tags=["xrefs"])
async def list_xrefs(
    ws: str,
    ctx: Ctx,
    _p: Viewer,
    params: Page,
    source_key: Annotated[str | None, Query(description="The record's key at its source.")] = None,
    source_connection: Annotated[str | None, Query(description="The source connection.")] = None,
    target_connection: Annotated[str | None, Query(description="The destination.")] = None,
) -> dict[str, Any]:
    """The ids records have in each system, newest first."""
    q = select(cross_references).where(cross_references.c.workspace == ws)
    q = _equal(
        q,
        {
            cross_references.c.source_key: source_key,
            cross_references.c.source_connection: source_connection,
            cross_references.c.target_connection: target_connection,
        },
    )
    q = _keyset(q, cross_references.c.id, params)
    rows = await ctx.db.read(lambda c: list(c.execute(q)))
    return page(rows, params, _xref)


# -- replay -----------------------------------------------------------------------------
class ReplayRequest(BaseModel):
    """Which events to deliver again: ids, or a time window (and maybe one flow)."""

    event_ids: list[int] | None = Field(default=None, max_length=10_000, description="Event ids.")
    since: datetime | None = Field(default=None, description="Received from (ISO 8601, UTC).")
    until: datetime | None = Field(default=None, description="Received until (ISO 8601, UTC).")
    flow: str | None = Field(default=None, description="Only through this flow.")

    @model_validator(mode="after")
    def _something_chosen(self) -> ReplayRequest:
        if not self.event_ids and self.since is None and self.until is None:
            raise ValueError("give event_ids, or since and/or until")
        return self


class ReplayResult(BaseModel):
    """What the replay did."""

    events: int
    deliveries_created: int
    retried: int
    unchanged: int


@router.post("/workspaces/{ws}/replay", summary="Deliver events again", tags=["replay"])
async def replay_events(ws: str, body: ReplayRequest, ctx: Ctx, _p: Operator) -> ReplayResult:
    """Deliver the chosen events again through their current flows: a delivery in the
    exception queue is retried, one under way is left alone, otherwise a new generation
    is made."""
    reg = ctx.registry()
    if body.flow is not None and reg.flow(ws, body.flow) is None:
        raise Problem(404, f"No flow '{body.flow}' in workspace '{ws}'.")
    try:
        counts = await ctx.db.write(
            lambda c: replay(
                c,
                ws,
                reg,
                event_ids=body.event_ids,
                since=epoch(body.since),
                until=epoch(body.until),
                flow=body.flow,
            )
        )
    except ValueError as exc:
        raise Problem(422, str(exc), title="Invalid request") from None
    if counts["deliveries_created"] or counts["retried"]:
        ctx.wake()
    return ReplayResult(**counts)


# -- KPIs -------------------------------------------------------------------------------
@router.get("/workspaces/{ws}/kpis", summary="Key figures", tags=["kpis"])
async def get_kpis(
    ws: str,
    ctx: Ctx,
    _p: Viewer,
    window: Annotated[
        float, Query(gt=0, le=30 * 86400, description="Seconds to look back (attempts, volume).")
    ] = 3600,
) -> dict[str, Any]:
    """Per connection (rates, latency percentiles, availability), per flow (states,
    volume, backlog, lag) and the totals equation."""
    try:
        ws_rt = ctx.registry().workspaces.get(ws)
        names = list(ws_rt.flows) if ws_rt is not None else []
    except Exception:
        log.exception("registry_unavailable")
        names = []
    now = time.time()
    return await ctx.db.read(lambda c: kpis(c, ws, window, now, names))
