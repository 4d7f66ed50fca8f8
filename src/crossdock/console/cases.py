"""Exception cases: failures grouped by cause, with the fix and the records affected.

The list reads like an operations board ("The warehouse does not know SKU GHOST-1 — 37
orders waiting"); a case's page has its plain reason, the suggested fix, the records
waiting, notes and who is on it, and the actions: retry one or all, edit a payload and
retry, set a lookup value and replay every affected delivery, skip, resolve, assign, note.
A case closes itself when none of its deliveries is still waiting.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Form, Query
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import Connection, func, select, update

from crossdock.console.web import Operating, Page, Viewing, not_found
from crossdock.pipeline.actions import close_delivery, retry_deliveries
from crossdock.store.cases import (
    WAITING,
    add_note,
    affected_records,
    assign,
    case_assignees,
    case_noun,
    case_rows,
    close_all,
    load_case,
    retry_all,
    waiting_deliveries,
)
from crossdock.store.overrides import set_lookup_value
from crossdock.store.tables import (
    attempts,
    case_notes,
    cases,
    deliveries,
    event_bodies,
    events,
    exceptions,
)

router = APIRouter()

CaseState = Annotated[str, Query(pattern="^(open|closed|all)$")]


@router.get("/cases", response_class=HTMLResponse)
async def cases_page(page: Viewing, state: CaseState = "open") -> HTMLResponse:
    """Open cases, biggest first (or closed ones, or all)."""
    page.nav = "cases"
    ws = page.workspace

    def read(conn: Connection) -> dict[str, Any]:
        counts: dict[str, int] = dict(
            conn.execute(
                select(cases.c.state, func.count())
                .where(cases.c.workspace == ws)
                .group_by(cases.c.state)
            ).all()
        )
        return {"cases": case_rows(conn, ws, state), "counts": counts}

    data = await page.ctx.db.read(read)
    return page.render("cases.html", title="Cases", state=state, **data)


@router.get("/cases/{case_id}", response_class=HTMLResponse)
async def case_page(page: Viewing, case_id: int) -> HTMLResponse:
    """One case: reason, fix, records waiting, notes, actions."""
    page.nav = "cases"
    ws = page.workspace

    def read(conn: Connection) -> dict[str, Any] | None:
        row = load_case(conn, ws, case_id)
        if row is None:
            return None
        affected, total = affected_records(conn, case_id)
        notes = [
            r._asdict()
            for r in conn.execute(
                select(case_notes)
                .where(case_notes.c.case_id == case_id)
                .order_by(case_notes.c.created_at)
            )
        ]
        waiting = sum(1 for a in affected if a["state"] in WAITING)
        return {
            "case": row._asdict(),
            "hint": orjson.loads(row.hint) if row.hint else None,
            "affected": affected,
            "total": total,
            "waiting": waiting,
            "noun": case_noun(affected[0]["type"] if affected else None, waiting),
            "notes": notes,
            "people": case_assignees(conn, ws),
        }

    data = await page.ctx.db.read(read)
    if data is None:
        raise not_found("This case")
    return page.render("case.html", title=data["case"]["title"], **data)


# -- actions ----------------------------------------------------------------------------
async def _case_action(page: Page, case_id: int, act: Any) -> Any:
    """Run ``act(conn, case_row, now)`` in one transaction; 404 when not this workspace's."""
    ws = page.workspace

    def write(conn: Connection) -> Any:
        row = load_case(conn, ws, case_id)
        if row is None:
            return _MISSING
        return act(conn, row, time.time())

    result = await page.ctx.db.write(write)
    if result is _MISSING:
        raise not_found("This case")
    return result


_MISSING = object()


@router.post("/cases/{case_id}/retry")
async def retry_case(page: Operating, case_id: int) -> Response:
    """Retry every delivery of the case that is waiting in the exception queue."""
    n = await _case_action(
        page,
        case_id,
        lambda conn, row, now: retry_all(conn, waiting_deliveries(conn, case_id), now),
    )
    page.ctx.wake()
    if not n:
        return page.back(f"cases/{case_id}", problem="Nothing is waiting in this case to retry.")
    return page.back(f"cases/{case_id}", notice=f"Retrying {n} deliveries now.")


@router.post("/cases/{case_id}/lookup")
async def fix_lookup(
    page: Operating,
    case_id: int,
    flow: Annotated[str, Form(min_length=1, max_length=200)],
    table: Annotated[str, Form(min_length=1, max_length=200)],
    key: Annotated[str, Form(max_length=300)],
    value: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Set a lookup value, then replay every delivery of the case with it."""
    value = value.strip()
    if not value:
        return page.back(
            f"cases/{case_id}",
            problem=f"Type the value that '{key}' should become in table '{table}'.",
        )
    registry = page.ctx.registry()
    fl = registry.flow(page.workspace, flow)
    if fl is None or table not in fl.lookups:
        return page.back(
            f"cases/{case_id}",
            problem=f"Flow '{flow}' has no lookup table '{table}'; fix the flow file instead.",
        )
    by = page.user.username
    sqlite = page.ctx.db.is_sqlite

    def act(conn: Connection, row: Any, now: float) -> int:
        set_lookup_value(conn, page.workspace, flow, table, key, value, by, now)
        add_note(
            conn,
            page.workspace,
            case_id,
            by,
            f"Set '{key}' = '{value}' in table '{table}' "
            f"of flow {flow}, and replayed the waiting deliveries.",
            now,
        )
        # Other worker processes (PostgreSQL) pick up the new value within their reload
        # interval; give them that long before the replay.
        return retry_all(conn, waiting_deliveries(conn, case_id), now if sqlite else now + 3)

    n = await _case_action(page, case_id, act)
    page.ctx.on_change()
    page.ctx.wake()
    return page.back(
        f"cases/{case_id}",
        notice=f"'{key}' now maps to '{value}' in '{table}'. Replaying {n} deliveries.",
    )


@router.post("/cases/{case_id}/skip")
async def skip_case(
    page: Operating,
    case_id: int,
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Skip every waiting delivery of the case for good (with who and why)."""
    if not reason.strip():
        return page.back(f"cases/{case_id}", problem="Say why these deliveries are skipped.")
    detail = f"skipped by {page.user.username}: {reason.strip()}"
    n = await _case_action(
        page, case_id, lambda conn, row, now: close_all(conn, case_id, now, detail)
    )
    return page.back(f"cases/{case_id}", notice=f"Skipped {n} deliveries; the case is closed.")


@router.post("/cases/{case_id}/resolve")
async def resolve_case(
    page: Operating,
    case_id: int,
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Mark the case resolved outside Crossdock; its waiting deliveries count as skipped."""
    if not note.strip():
        return page.back(f"cases/{case_id}", problem="Say what was done to resolve it.")
    detail = f"resolved by {page.user.username}: {note.strip()}"
    n = await _case_action(
        page, case_id, lambda conn, row, now: close_all(conn, case_id, now, detail)
    )
    return page.back(f"cases/{case_id}", notice=f"Resolved; {n} deliveries closed.")


@router.post("/cases/{case_id}/assign")
async def assign_case(
    page: Operating,
    case_id: int,
    assignee: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Give the case to a person of the workspace (or to nobody)."""
    who = assignee.strip().lower() or None
    by = page.user.username

    def act(conn: Connection, row: Any, now: float) -> str:
        return "ok" if assign(conn, page.workspace, case_id, who, by, now) else "unknown"

    result = await _case_action(page, case_id, act)
    if result == "unknown":
        return page.back(
            f"cases/{case_id}",
            problem=f"'{who}' is not an operator or admin of this workspace.",
        )
    return page.back(f"cases/{case_id}", notice=f"Assigned to {who}." if who else "Unassigned.")


@router.post("/cases/{case_id}/note")
async def note_case(
    page: Operating,
    case_id: int,
    text: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    """Add a note to the case."""
    if not text.strip():
        return page.back(f"cases/{case_id}", problem="The note is empty.")
    await _case_action(
        page,
        case_id,
        lambda conn, row, now: add_note(
            conn, page.workspace, case_id, page.user.username, text.strip(), now
        ),
    )
    return page.back(f"cases/{case_id}", notice="Note added.")


# -- one affected delivery ----------------------------------------------------------------
def _exception_row(conn: Connection, ws: str, case_id: int, exception_id: int) -> Any:
    return conn.execute(
        select(
            exceptions.c.id,
            exceptions.c.flow,
            exceptions.c.record_key,
            exceptions.c.reason,
            exceptions.c.state,
            deliveries.c.id.label("delivery_id"),
            deliveries.c.state.label("delivery_state"),
            deliveries.c.override_body,
            deliveries.c.event_id,
        )
        .select_from(exceptions.join(deliveries, deliveries.c.id == exceptions.c.delivery_id))
        .where(
            exceptions.c.workspace == ws,
            exceptions.c.case_id == case_id,
            exceptions.c.id == exception_id,
        )
    ).first()


async def _one(page: Page, case_id: int, exception_id: int, act: Any) -> str:
    ws = page.workspace

    def write(conn: Connection) -> str:
        row = _exception_row(conn, ws, case_id, exception_id)
        if row is None:
            return "missing"
        if row.delivery_state != "exception":
            return "not-waiting"
        act(conn, row, time.time())
        return "done"

    status = await page.ctx.db.write(write)
    if status == "missing":
        raise not_found("This exception")
    return str(status)


@router.post("/cases/{case_id}/exceptions/{exception_id}/retry")
async def retry_one(page: Operating, case_id: int, exception_id: int) -> Response:
    """Retry one delivery of the case."""
    status = await _one(
        page, case_id, exception_id, lambda c, r, now: retry_deliveries(c, [r.delivery_id], now)
    )
    page.ctx.wake()
    if status != "done":
        return page.back(f"cases/{case_id}", problem="That delivery is not waiting any more.")
    return page.back(f"cases/{case_id}", notice=f"Retrying exception {exception_id} now.")


@router.post("/cases/{case_id}/exceptions/{exception_id}/skip")
async def skip_one(page: Operating, case_id: int, exception_id: int) -> Response:
    """Skip one delivery of the case for good."""
    detail = f"skipped by {page.user.username}"

    def act(conn: Connection, r: Any, now: float) -> None:
        close_delivery(conn, r.delivery_id, now, detail)

    status = await _one(page, case_id, exception_id, act)
    if status != "done":
        return page.back(f"cases/{case_id}", problem="That delivery is not waiting any more.")
    return page.back(f"cases/{case_id}", notice=f"Skipped exception {exception_id}.")


def _last_request_body(conn: Connection, delivery_id: int) -> str | None:
    return conn.execute(
        select(attempts.c.request_body)
        .where(attempts.c.delivery_id == delivery_id, attempts.c.request_body.is_not(None))
        .order_by(attempts.c.id.desc())
        .limit(1)
    ).scalar()


def _pretty(text: str | None) -> str:
    if not text:
        return ""
    try:
        return orjson.dumps(orjson.loads(text), option=orjson.OPT_INDENT_2).decode()
    except orjson.JSONDecodeError:
        return text


async def _edit_data(page: Page, case_id: int, exception_id: int) -> dict[str, Any]:
    from crossdock.api.queue_routes import _redactor

    ws = page.workspace
    redact = _redactor(page.ctx, ws)

    def read(conn: Connection) -> dict[str, Any] | None:
        row = _exception_row(conn, ws, case_id, exception_id)
        if row is None:
            return None
        ev = conn.execute(select(events).where(events.c.id == row.event_id)).first()
        body = conn.execute(
            select(event_bodies.c.body).where(event_bodies.c.event_id == row.event_id)
        ).scalar()
        sent = row.override_body or _last_request_body(conn, row.delivery_id)
        conn_name = ev.connection if ev is not None else ""
        return {
            "exc": row._asdict(),
            "payload": _pretty(redact(conn_name, sent)) if sent else "",
            "event_body": _pretty(redact(conn_name, body or "")),
            "event": ev._asdict() if ev is not None else None,
            "case_id": case_id,
        }

    data = await page.ctx.db.read(read)
    if data is None:
        raise not_found("This exception")
    return data


@router.get("/cases/{case_id}/exceptions/{exception_id}/edit", response_class=HTMLResponse)
async def edit_form(page: Viewing, case_id: int, exception_id: int) -> HTMLResponse:
    """The payload editor for one delivery (prefilled with what was last sent)."""
    page.nav = "cases"
    data = await _edit_data(page, case_id, exception_id)
    return page.render("case_edit.html", title="Edit and retry", **data)


@router.post("/cases/{case_id}/exceptions/{exception_id}/edit", response_class=HTMLResponse)
async def edit_and_retry(
    page: Operating,
    case_id: int,
    exception_id: int,
    payload: Annotated[str, Form(max_length=8 * 1024 * 1024)] = "",
) -> Response:
    """Send this JSON instead of the mapped payload, now."""
    try:
        parsed = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        page.nav = "cases"
        data = await _edit_data(page, case_id, exception_id)
        data["payload"] = payload  # keep what was typed
        data["problem"] = f"The payload is not valid JSON ({exc}). Nothing was sent."
        return page.render("case_edit.html", status=422, title="Edit and retry", **data)
    body = orjson.dumps(parsed).decode()

    def act(conn: Connection, r: Any, now: float) -> None:
        conn.execute(
            update(deliveries).where(deliveries.c.id == r.delivery_id).values(override_body=body)
        )
        retry_deliveries(conn, [r.delivery_id], now)

    status = await _one(page, case_id, exception_id, act)
    page.ctx.wake()
    if status != "done":
        return page.back(f"cases/{case_id}", problem="That delivery is not waiting any more.")
    return page.back(
        f"cases/{case_id}", notice=f"Sending the edited payload for exception {exception_id}."
    )
