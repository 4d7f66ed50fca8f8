"""The Records page: find one record and follow its journey across every system.

``/records?q=...`` searches, in this order, and stops at the first kind that finds something:

1. a correlation id (``events.correlation_id``);
2. a record key (``events.record_key``), e.g. the shop's order id;
3. an id a destination gave the record (``cross_references.target_id``), which leads back
   to the record it was created from;
4. the contents of the newest :data:`TEXT_WINDOW` events of the workspace (their bodies),
   for an order number such as ``#1001``, a SKU or a tracking number. The window keeps the
   search fast however many events the hub holds; the page says it is bounded.

Follow-up events (emitted by flows after a delivery) carry the correlation id of the event
that caused them, so every match is shown as the record that started its journey. One
record found: the answer is a redirect to it; several: a list.

``/records/{connection}/{record_key}`` shows the journey, oldest first: every event of the
record and every event sharing its correlation ids, each event's deliveries per flow,
each delivery's attempts with request and response, the ids the record has at each system,
and the exception and its case when there is one. Everything shown that came from or went
to a system passes through the redaction of *every* connection of the workspace, so a
secret of one connection that travelled to another one is hidden as well.

Every query is filtered by the page's workspace; a record of another workspace is the same
404 as a record that does not exist.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import ColumnElement, Connection, and_, func, or_, select

from crossdock.api.queue_routes import _redactor
from crossdock.console.web import Page, Viewing, not_found
from crossdock.store.tables import (
    attempts,
    cases,
    cross_references,
    deliveries,
    event_bodies,
    events,
    exceptions,
)

router = APIRouter()

TEXT_WINDOW = 20_000
"""How many of the workspace's newest events a text search reads."""
MAX_RESULTS = 50
"""At most this many records in a result list."""
MAX_EVENTS = 300
"""At most this many events in one journey (a correlation id shared by far too many)."""
MAX_ATTEMPTS = 2_000
"""At most this many attempts read for one journey."""
MAX_SHOWN = 20_000
"""Longer bodies are cut (with a note) on the page."""
_TEXT_HITS = 400  # rows the LIKE may return before the word-boundary check
_QUERY_MAX = 300

# How bad a state is, for a record's overall state (worst wins).
_SEVERITY = {"exception": 5, "in_progress": 4, "pending": 3, "succeeded": 2, "skipped": 1}
_EVENT_COLUMNS = (
    events.c.id,
    events.c.connection,
    events.c.type,
    events.c.record_key,
    events.c.version,
    events.c.correlation_id,
    events.c.received_at,
    events.c.origin,
)


def _in_ws(column: Any, ws: str) -> ColumnElement[bool]:
    """``column == ws`` written so that no index on ``workspace`` is chosen for it.

    For a query led by an id or a correlation id (a handful of rows), SQLite without
    statistics (the hub never runs ANALYZE) otherwise prefers an index that starts with
    ``workspace`` and reads the whole workspace. The filter still holds on every row.
    """
    return column.concat("") == ws


# -- what the templates get -------------------------------------------------------------
@dataclass
class Match:
    """One record a search found."""

    connection: str
    record_key: str
    type: str
    received_at: float
    state: str = "received"
    url: str = ""


@dataclass
class AttemptView:
    """One HTTP call to a destination, redacted."""

    id: int
    connection: str
    started_at: float
    latency_ms: float
    method: str
    url: str
    status: int | None
    outcome: str
    error: str | None
    request_headers: list[tuple[str, str]] | str | None
    request_body: str | None
    response_headers: list[tuple[str, str]] | str | None
    response_body: str | None


@dataclass
class DeliveryView:
    """One delivery of an event to a flow's destination."""

    id: int
    flow: str
    target: str | None
    state: str
    attempts: int
    generation: int
    outcome: str | None
    detail: str | None
    edited: bool
    created_at: float
    updated_at: float
    next_attempt_at: float
    exception: dict[str, Any] | None = None
    attempt_rows: list[AttemptView] = field(default_factory=list)


@dataclass
class EventView:
    """One event in the journey with its deliveries."""

    id: int
    connection: str
    type: str
    record_key: str
    version: str | None
    correlation_id: str
    received_at: float
    origin: str
    headers: list[tuple[str, str]] | str | None
    body: str | None
    is_record: bool
    deliveries: list[DeliveryView] = field(default_factory=list)


@dataclass
class Journey:
    """Everything the record page shows."""

    connection: str
    record_key: str
    events: list[EventView]
    xrefs: list[dict[str, Any]]
    ids: list[tuple[str, str, str]]  # (system, id, how we know it)
    summary: list[dict[str, Any]]
    state: str
    correlation_ids: list[str]
    cases: list[dict[str, Any]]
    truncated: bool


# -- search -----------------------------------------------------------------------------
def _roots(conn: Connection, ws: str, rows: Sequence[Any]) -> list[Any]:
    """Each event's journey root: a follow-up stands for the first event that is not a
    follow-up with its correlation id (the record that started it). Keeps order."""
    corrs = {r.correlation_id for r in rows if r.origin == "follow-up"}
    root: dict[str, Any] = {}
    if corrs:
        q = (
            select(*_EVENT_COLUMNS)
            .where(
                _in_ws(events.c.workspace, ws),
                events.c.correlation_id.in_(sorted(corrs)),
                events.c.origin != "follow-up",
            )
            .order_by(events.c.id)
        )
        for r in conn.execute(q):
            root.setdefault(r.correlation_id, r)
    out: list[Any] = []
    seen: set[tuple[str, str]] = set()
    for r in rows:
        chosen = root.get(r.correlation_id, r) if r.origin == "follow-up" else r
        key = (chosen.connection, chosen.record_key)
        if key not in seen:
            seen.add(key)
            out.append(chosen)
    return out


def _states(conn: Connection, ws: str, keys: Iterable[tuple[str, str]]) -> dict[Any, str]:
    """The overall state of each record (worst latest delivery per flow of its journey)."""
    keys = list(keys)
    if not keys:
        return {}
    wanted = set(keys)
    own = [
        r
        for r in conn.execute(
            select(events.c.connection, events.c.record_key, events.c.correlation_id).where(
                events.c.workspace == ws,
                events.c.record_key.in_(sorted({k for _, k in keys})),
            )
        )
        if (r.connection, r.record_key) in wanted
    ]
    by_corr: dict[str, set[tuple[str, str]]] = {}
    for r in own:
        by_corr.setdefault(r.correlation_id, set()).add((r.connection, r.record_key))
    if not by_corr:
        return {}
    q = (
        select(
            deliveries.c.id,
            deliveries.c.flow,
            deliveries.c.record_key,
            deliveries.c.state,
            events.c.correlation_id,
        )
        .select_from(deliveries.join(events, events.c.id == deliveries.c.event_id))
        .where(
            _in_ws(events.c.workspace, ws),
            _in_ws(deliveries.c.workspace, ws),
            events.c.correlation_id.in_(sorted(by_corr)),
        )
        .order_by(deliveries.c.id)
    )
    latest: dict[tuple[tuple[str, str], str, str], str] = {}
    for d in conn.execute(q):
        for rec in by_corr.get(d.correlation_id, ()):
            latest[(rec, d.flow, d.record_key)] = d.state
    out: dict[Any, str] = {}
    for (rec, _flow, _key), st in latest.items():
        if _SEVERITY.get(st, 0) > _SEVERITY.get(out.get(rec, ""), 0):
            out[rec] = st
    return out


def _word(q: str) -> re.Pattern[str]:
    """``q`` as a whole token: "ABC-1" must not find "ABC-10", "#1001" not "#10012"."""
    return re.compile(r"(?<![\w-])" + re.escape(q) + r"(?![\w-])", re.IGNORECASE)


def search(
    conn: Connection, ws: str, q: str, connections: Sequence[str] = ()
) -> tuple[str, list[Any]]:
    """Find the records ``q`` names in workspace ``ws`` (whose connections are
    ``connections``): how they were found, and the records (their root events)."""
    cols = select(*_EVENT_COLUMNS).where(events.c.workspace == ws)
    rows = conn.execute(
        select(*_EVENT_COLUMNS)
        .where(_in_ws(events.c.workspace, ws), events.c.correlation_id == q)
        .order_by(events.c.id)
        .limit(MAX_RESULTS)
    ).all()
    if rows:
        # One journey: the record that started it.
        return "correlation id", _roots(conn, ws, rows)[:1]
    rows = conn.execute(
        cols.where(events.c.record_key == q).order_by(events.c.id.desc()).limit(MAX_RESULTS * 4)
    ).all()
    if rows:
        return "record key", _roots(conn, ws, rows)[:MAX_RESULTS]
    xq = (
        select(cross_references.c.source_connection, cross_references.c.source_key)
        .where(cross_references.c.workspace == ws, cross_references.c.target_id == q)
        .limit(MAX_RESULTS)
    )
    if connections:
        # Names every column of the (workspace, target_connection, target_id) index.
        xq = xq.where(cross_references.c.target_connection.in_(list(connections)))
    sources = conn.execute(xq).all()
    if sources:
        pairs = {(s.source_connection, s.source_key) for s in sources}
        rows = [
            r
            for r in conn.execute(
                cols.where(events.c.record_key.in_(sorted({k for _, k in pairs})))
                .order_by(events.c.id.desc())
                .limit(MAX_RESULTS * 8)
            )
            if (r.connection, r.record_key) in pairs
        ]
        if rows:
            return "id at a destination", _roots(conn, ws, rows)[:MAX_RESULTS]
    if len(q) < 3:
        return "", []
    # The window: the newest TEXT_WINDOW events of the workspace, read from the
    # (workspace, received_at) index; its lowest event id bounds the bodies read, so the
    # scan is driven by the window, never by the whole body table.
    cutoff = conn.execute(
        select(events.c.received_at)
        .where(events.c.workspace == ws)
        .order_by(events.c.received_at.desc())
        .limit(1)
        .offset(TEXT_WINDOW - 1)
    ).scalar()
    window: list[Any] = [events.c.workspace == ws]
    if cutoff is not None:
        window.append(events.c.received_at >= cutoff)
        lowest = conn.execute(select(func.min(events.c.id)).where(*window)).scalar()
        if lowest is not None:
            window += [events.c.id >= lowest, event_bodies.c.event_id >= lowest]
    # Case-sensitive LIKE (ILIKE costs PostgreSQL several times more per row): as typed,
    # and in capitals, which is how order numbers, SKUs and tracking numbers are written.
    spellings = sorted({q, q.upper()})
    tq = (
        select(*_EVENT_COLUMNS, event_bodies.c.body)
        .select_from(events.join(event_bodies, event_bodies.c.event_id == events.c.id))
        .where(*window, or_(*(event_bodies.c.body.contains(v, autoescape=True) for v in spellings)))
        .order_by(events.c.received_at.desc())
        .limit(_TEXT_HITS)
    )
    word = _word(q)
    hits = [r for r in conn.execute(tq) if word.search(r.body)]
    return ("contents", _roots(conn, ws, hits)[:MAX_RESULTS]) if hits else ("", [])


# -- the journey ------------------------------------------------------------------------
Redact = Callable[[str, str], str]


def _redact_all(redact: Redact, names: Sequence[str]) -> Redact:
    """Redact with the row's own connection, then with every other one of the workspace."""

    def clean(connection: str, text: str) -> str:
        text = redact(connection, text)
        for name in names:
            if name != connection:
                text = redact(name, text)
        return text

    return clean


def _pretty(text: str | None) -> str | None:
    if text is None:
        return None
    head = text.lstrip()[:1]
    if head in ("{", "["):
        with contextlib.suppress(ValueError):
            text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    if len(text) > MAX_SHOWN:
        return text[:MAX_SHOWN] + f"\n… ({len(text) - MAX_SHOWN:,} more characters not shown)"
    return text


def _headers(text: str | None) -> list[tuple[str, str]] | str | None:
    """Stored headers (a JSON object) as name/value pairs; other text as it is."""
    if text is None:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return _pretty(text)
    if isinstance(data, dict):
        return [(str(k), str(v)) for k, v in data.items()]
    return _pretty(text)


def _targets(page: Page) -> dict[str, str]:
    """flow -> the connection it writes to (from the running registry)."""
    try:
        reg = page.ctx.registry()
    except Exception:
        return {}
    ws = reg.workspaces.get(page.workspace)
    if ws is None:
        return {}
    return {name: f.action.connection for name, f in ws.flows.items()}


def _connection_names(page: Page) -> list[str]:
    try:
        ws = page.ctx.registry().workspaces.get(page.workspace)
    except Exception:
        return []
    return sorted(ws.connections) if ws is not None else []


def load_journey(
    conn: Connection,
    ws: str,
    connection: str,
    record_key: str,
    redact: Redact,
    targets: dict[str, str],
) -> Journey | None:
    """The record's journey in workspace ``ws``, or None when it has no event there."""
    own = conn.execute(
        select(events.c.id, events.c.correlation_id)
        .where(
            events.c.workspace == ws,
            events.c.connection == connection,
            events.c.record_key == record_key,
        )
        .order_by(events.c.id.desc())
        .limit(MAX_EVENTS)
    ).all()
    if not own:
        return None
    corrs = sorted({r.correlation_id for r in own})
    # Two queries, not one with OR: each uses its own index (correlation id; record key).
    body_cols = (*_EVENT_COLUMNS, event_bodies.c.headers, event_bodies.c.body)
    joined = events.outerjoin(event_bodies, event_bodies.c.event_id == events.c.id)
    found: dict[int, Any] = {}
    for cond in (
        and_(_in_ws(events.c.workspace, ws), events.c.correlation_id.in_(corrs)),
        and_(
            events.c.workspace == ws,
            events.c.connection == connection,
            events.c.record_key == record_key,
        ),
    ):
        for r in conn.execute(
            select(*body_cols)
            .select_from(joined)
            .where(cond)
            .order_by(events.c.id.desc())
            .limit(MAX_EVENTS + 1)
        ):
            found[r.id] = r
    erows = sorted(found.values(), key=lambda r: r.id, reverse=True)
    truncated = len(erows) > MAX_EVENTS
    erows = sorted(erows[:MAX_EVENTS], key=lambda r: (r.received_at, r.id))
    event_ids = [r.id for r in erows]
    drows = conn.execute(
        select(deliveries)
        .where(_in_ws(deliveries.c.workspace, ws), deliveries.c.event_id.in_(event_ids))
        .order_by(deliveries.c.id)
    ).all()
    delivery_ids = [d.id for d in drows]
    arows = (
        conn.execute(
            select(attempts)
            .where(_in_ws(attempts.c.workspace, ws), attempts.c.delivery_id.in_(delivery_ids))
            .order_by(attempts.c.id)
            .limit(MAX_ATTEMPTS)
        ).all()
        if delivery_ids
        else []
    )
    xrows = (
        conn.execute(
            select(exceptions).where(
                _in_ws(exceptions.c.workspace, ws), exceptions.c.delivery_id.in_(delivery_ids)
            )
        ).all()
        if delivery_ids
        else []
    )
    case_ids = sorted({x.case_id for x in xrows if x.case_id is not None})
    crows = (
        conn.execute(
            select(cases.c.id, cases.c.title, cases.c.state).where(
                _in_ws(cases.c.workspace, ws), cases.c.id.in_(case_ids)
            )
        ).all()
        if case_ids
        else []
    )
    records = sorted({(r.connection, r.record_key) for r in erows})
    record_set = set(records)
    refs = [
        x
        for x in conn.execute(
            select(cross_references)
            .where(
                cross_references.c.workspace == ws,
                cross_references.c.source_connection.in_(sorted({c for c, _ in records})),
                cross_references.c.source_key.in_(sorted({k for _, k in records})),
            )
            .order_by(cross_references.c.id)
        )
        if (x.source_connection, x.source_key) in record_set
    ]

    case_by_id = {c.id: {"id": c.id, "title": c.title, "state": c.state} for c in crows}
    exc_by_delivery = {
        x.delivery_id: {
            "id": x.id,
            "category": x.category,
            "reason": redact(connection, x.reason),
            "fix": redact(connection, x.fix),
            "state": x.state,
            "resolution": x.resolution,
            "case": case_by_id.get(x.case_id) if x.case_id is not None else None,
        }
        for x in xrows
    }
    att_by_delivery: dict[int, list[AttemptView]] = {}
    for a in arows:

        def clean(text: str | None, c: str = a.connection) -> str | None:
            return None if text is None else redact(c, text)

        att_by_delivery.setdefault(a.delivery_id, []).append(
            AttemptView(
                id=a.id,
                connection=a.connection,
                started_at=a.started_at,
                latency_ms=a.latency_ms,
                method=a.method,
                url=redact(a.connection, a.url),
                status=a.status,
                outcome=a.outcome,
                error=clean(a.error),
                request_headers=_headers(clean(a.request_headers)),
                request_body=_pretty(clean(a.request_body)),
                response_headers=_headers(clean(a.response_headers)),
                response_body=_pretty(clean(a.response_body)),
            )
        )
    evs = {
        r.id: EventView(
            id=r.id,
            connection=r.connection,
            type=r.type,
            record_key=r.record_key,
            version=r.version,
            correlation_id=r.correlation_id,
            received_at=r.received_at,
            origin=r.origin,
            headers=_headers(None if r.headers is None else redact(r.connection, r.headers)),
            body=_pretty(None if r.body is None else redact(r.connection, r.body)),
            is_record=(r.connection, r.record_key) == (connection, record_key),
        )
        for r in erows
    }
    xref_of = {(x.source_connection, x.source_key, x.target_connection): x for x in refs}
    latest: dict[tuple[str, str], tuple[DeliveryView, EventView]] = {}
    stuck: dict[tuple[str, str], DeliveryView] = {}
    for d in drows:
        ev = evs[d.event_id]
        dv = DeliveryView(
            id=d.id,
            flow=d.flow,
            target=targets.get(d.flow),
            state=d.state,
            attempts=d.attempts,
            generation=d.generation,
            outcome=d.outcome,
            detail=None if d.detail is None else redact(connection, d.detail),
            edited=d.override_body is not None,
            created_at=d.created_at,
            updated_at=d.updated_at,
            next_attempt_at=d.next_attempt_at,
            exception=exc_by_delivery.get(d.id),
            attempt_rows=att_by_delivery.get(d.id, []),
        )
        if dv.target is None and dv.attempt_rows:
            dv.target = dv.attempt_rows[-1].connection
        ev.deliveries.append(dv)
        latest[(d.flow, d.record_key)] = (dv, ev)
        if dv.state == "exception":
            stuck[(d.flow, d.record_key)] = dv

    summary: list[dict[str, Any]] = []
    overall = "received"
    for key, (dv, ev) in latest.items():
        ref = xref_of.get((ev.connection, ev.record_key, dv.target or ""))
        text = _say(dv, ref.target_id if ref is not None else None)
        case = (dv.exception or {}).get("case")
        blocker = stuck.get(key)
        if dv.state == "pending" and blocker is not None and blocker.id != dv.id:
            # Per-record order: later versions wait until the earlier one is settled.
            text = (
                "held back behind an earlier version waiting for a person (per-record "
                "order): it goes as soon as that one is fixed"
            )
            case = (blocker.exception or {}).get("case")
        summary.append(
            {
                "flow": dv.flow,
                "state": dv.state,
                "text": text,
                "case": case,
                "delivery_id": dv.id,
            }
        )
        if _SEVERITY.get(dv.state, 0) > _SEVERITY.get(overall, 0):
            overall = dv.state

    # A follow-up repeats the record key of its cause: the destination's own id is in refs.
    ids: list[tuple[str, str, str]] = [
        (c, k, "record key")
        for c, k in sorted({(r.connection, r.record_key) for r in erows if r.origin != "follow-up"})
    ]
    for x in refs:
        ids.append(
            (x.target_connection, x.target_id, f"created from {x.source_connection} {x.source_key}")
        )
    return Journey(
        connection=connection,
        record_key=record_key,
        events=list(evs.values()),
        xrefs=[
            {
                "source_connection": x.source_connection,
                "source_key": x.source_key,
                "target_connection": x.target_connection,
                "target_id": x.target_id,
                "updated_at": x.updated_at,
            }
            for x in refs
        ],
        ids=ids,
        summary=summary,
        state=overall,
        correlation_ids=sorted({r.correlation_id for r in erows}),
        cases=list(case_by_id.values()),
        truncated=truncated,
    )


def _say(d: DeliveryView, target_id: str | None) -> str:
    """A delivery's state in plain words."""
    to = d.target or "the destination"
    if d.state == "succeeded":
        return f"delivered to {to}" + (f" as {target_id}" if target_id else "")
    if d.state == "skipped":
        return "skipped" + (f": {d.detail}" if d.detail else "")
    if d.state == "exception":
        return "waiting for a person" + (f": {d.detail}" if d.detail else "")
    if d.state == "in_progress":
        return f"being delivered to {to} now"
    if d.attempts:
        return f"will retry ({d.attempts} attempts so far)" + (f": {d.detail}" if d.detail else "")
    return f"waiting to be delivered to {to}"


# -- routes -----------------------------------------------------------------------------
def record_path(connection: str, record_key: str) -> str:
    """The path (inside the workspace) of a record's page."""
    return f"records/{quote(connection, safe='')}/{quote(record_key, safe='')}"


@router.get("/records", response_model=None)
async def records_page(
    page: Viewing, q: str = Query("", max_length=_QUERY_MAX)
) -> HTMLResponse | RedirectResponse:
    """Search a record by order number, SKU, tracking number, correlation id or any id."""
    page.nav = "records"
    q = q.strip()
    if not q:
        return page.render("records.html", title="Records", q="", kind="", matches=[])
    ws = page.workspace
    names = _connection_names(page)

    def find(conn: Connection) -> tuple[str, list[Match]]:
        kind, rows = search(conn, ws, q, names)
        states = _states(conn, ws, [(r.connection, r.record_key) for r in rows])
        return kind, [
            Match(
                connection=r.connection,
                record_key=r.record_key,
                type=r.type,
                received_at=r.received_at,
                state=states.get((r.connection, r.record_key), "received"),
                url=page.url(record_path(r.connection, r.record_key)),
            )
            for r in rows
        ]

    kind, matches = await page.ctx.db.read(find)
    if len(matches) == 1:
        return RedirectResponse(matches[0].url, status_code=303)
    return page.render(
        "records.html",
        title="Records",
        q=q,
        kind=kind,
        matches=matches,
        window=TEXT_WINDOW,
    )


@router.get("/records/{connection}/{record_key:path}", response_model=None)
async def record_page(page: Viewing, connection: str, record_key: str) -> Response:
    """One record's journey across every system."""
    page.nav = "records"
    ws = page.workspace
    redact = _redact_all(_redactor(page.ctx, ws), _connection_names(page))
    targets = _targets(page)
    journey = await page.ctx.db.read(
        lambda conn: load_journey(conn, ws, connection, record_key, redact, targets)
    )
    if journey is None:
        raise not_found("This record")
    return page.render(
        "record.html",
        title=f"Record {record_key}",
        j=journey,
        q="",
    )
