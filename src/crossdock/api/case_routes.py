"""Routes for exception cases: failures grouped by cause (see ``crossdock.store.cases``).

The same cases and actions as the console's Cases page, for scripts and other tools:
list and read cases, retry every waiting delivery, set a lookup value and replay, skip
or resolve, assign, add a note. A case closes itself when none of its deliveries waits.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field
from sqlalchemy import Connection, select

from crossdock.api.auth import context, operator, viewer
from crossdock.api.context import ApiContext
from crossdock.api.keys import Principal
from crossdock.api.pagination import iso
from crossdock.api.problems import Problem
from crossdock.store.cases import (
    add_note,
    affected_records,
    assign,
    case_rows,
    close_all,
    load_case,
    retry_all,
    waiting_deliveries,
)
from crossdock.store.overrides import set_lookup_value
from crossdock.store.tables import case_notes

router = APIRouter()
Ctx = Annotated[ApiContext, Depends(context)]
Viewer = Annotated[Principal, Depends(viewer)]
Operator = Annotated[Principal, Depends(operator)]
Id = Annotated[int, Path(ge=1, description="The case's id.")]


def _case(row: Any, waiting: int | None = None, total: int | None = None) -> dict[str, Any]:
    d = row if isinstance(row, dict) else row._asdict()
    out = {
        "id": d["id"],
        "state": d["state"],
        "category": d["category"],
        "connection": d["connection"],
        "title": d["title"],
        "reason": d["reason"],
        "fix": d["fix"],
        "assignee": d["assignee"],
        "resolution": d["resolution"],
        "opened_at": iso(d["created_at"]),
        "updated_at": iso(d["updated_at"]),
        "closed_at": iso(d["closed_at"]) if d["closed_at"] else None,
        "one_click_fix": orjson.loads(d["hint"]) if d["hint"] else None,
    }
    if waiting is not None:
        out["waiting"] = waiting
    if total is not None:
        out["total"] = total
    return out


@router.get("/workspaces/{ws}/cases", summary="Exception cases", tags=["cases"])
async def list_cases(
    ws: str,
    ctx: Ctx,
    _p: Viewer,
    state: Annotated[Literal["open", "closed", "all"], Query(description="Which cases.")] = "open",
) -> dict[str, Any]:
    """Cases, biggest open ones first, with how many records wait in each."""
    rows = await ctx.db.read(lambda conn: case_rows(conn, ws, state))
    return {"items": [{**_case(r, r["waiting"], r["total"]), "flows": r["flows"]} for r in rows]}


async def _read_case(ctx: ApiContext, ws: str, case_id: int) -> dict[str, Any]:
    def read(conn: Connection) -> dict[str, Any] | None:
        row = load_case(conn, ws, case_id)
        if row is None:
            return None
        affected, total = affected_records(conn, case_id)
        notes = [
            {"author": n.author, "text": n.text, "at": iso(n.created_at)}
            for n in conn.execute(
                select(case_notes)
                .where(case_notes.c.case_id == case_id)
                .order_by(case_notes.c.created_at)
            )
        ]
        waiting = sum(1 for a in affected if a["state"] in ("open", "retrying"))
        return {
            **_case(row, waiting, total),
            "records": [
                {
                    "exception_id": a["id"],
                    "delivery_id": a["delivery_id"],
                    "flow": a["flow"],
                    "connection": a["connection"],
                    "record_key": a["record_key"],
                    "state": a["state"],
                    "attempts": a["attempts"],
                    "correlation_id": a["correlation_id"],
                }
                for a in affected
            ],
            "notes": notes,
        }

    found = await ctx.db.read(read)
    if found is None:
        raise Problem(404, f"No case {case_id} in workspace '{ws}'.")
    return found


@router.get("/workspaces/{ws}/cases/{case_id}", summary="A case", tags=["cases"])
async def get_case(ws: str, case_id: Id, ctx: Ctx, _p: Viewer) -> dict[str, Any]:
    """The case with its records (newest 200), notes and the one-click fix if any."""
    return await _read_case(ctx, ws, case_id)


async def _act(ctx: ApiContext, ws: str, case_id: int, act: Any) -> Any:
    def write(conn: Connection) -> Any:
        if load_case(conn, ws, case_id) is None:
            return _MISSING
        return act(conn, time.time())

    result = await ctx.db.write(write)
    if result is _MISSING:
        raise Problem(404, f"No case {case_id} in workspace '{ws}'.")
    return result


_MISSING = object()


@router.post("/workspaces/{ws}/cases/{case_id}/retry", summary="Retry a case", tags=["cases"])
async def retry_case(ws: str, case_id: Id, ctx: Ctx, _p: Operator) -> dict[str, Any]:
    """Make every delivery of the case that waits in the exception queue due now."""
    n = await _act(
        ctx, ws, case_id, lambda conn, now: retry_all(conn, waiting_deliveries(conn, case_id), now)
    )
    ctx.wake()
    return {"retried": n, "case": await _read_case(ctx, ws, case_id)}


class LookupFix(BaseModel):
    """A lookup value to set in a flow's table."""

    flow: str = Field(min_length=1, max_length=200, description="The flow.")
    table: str = Field(min_length=1, max_length=200, description="Its lookup table.")
    key: str = Field(max_length=300, description="The key that was missing.")
    value: Any = Field(description="What the key maps to.")


@router.post(
    "/workspaces/{ws}/cases/{case_id}/lookup",
    summary="Set a lookup value and replay the case",
    tags=["cases"],
)
async def fix_lookup(
    ws: str, case_id: Id, body: LookupFix, ctx: Ctx, principal: Operator
) -> dict[str, Any]:
    """Set ``key`` -> ``value`` in the flow's lookup table, then replay every waiting
    delivery of the case with it."""
    fl = ctx.registry().flow(ws, body.flow)
    if fl is None or body.table not in fl.lookups:
        raise Problem(
            422,
            f"Flow '{body.flow}' has no lookup table '{body.table}'.",
            issues=[{"location": "body", "field": "table", "message": "unknown lookup table"}],
        )
    sqlite = ctx.db.is_sqlite

    def act(conn: Connection, now: float) -> int:
        set_lookup_value(conn, ws, body.flow, body.table, body.key, body.value, principal.name, now)
        add_note(
            conn,
            ws,
            case_id,
            principal.name,
            f"Set '{body.key}' = {orjson.dumps(body.value).decode()} in table '{body.table}' "
            f"of flow {body.flow}, and replayed the waiting deliveries.",
            now,
        )
        return retry_all(conn, waiting_deliveries(conn, case_id), now if sqlite else now + 3)

    n = await _act(ctx, ws, case_id, act)
    ctx.on_change()
    ctx.wake()
    return {"replayed": n, "case": await _read_case(ctx, ws, case_id)}


class Why(BaseModel):
    """Why, in plain words."""

    text: str = Field(min_length=1, max_length=2000, description="Why, or what was done.")


@router.post("/workspaces/{ws}/cases/{case_id}/skip", summary="Skip a case", tags=["cases"])
async def skip_case(
    ws: str, case_id: Id, body: Why, ctx: Ctx, principal: Operator
) -> dict[str, Any]:
    """Skip every waiting delivery of the case for good; the case closes."""
    detail = f"skipped by {principal.name}: {body.text}"
    n = await _act(ctx, ws, case_id, lambda conn, now: close_all(conn, case_id, now, detail))
    return {"skipped": n, "case": await _read_case(ctx, ws, case_id)}


@router.post("/workspaces/{ws}/cases/{case_id}/resolve", summary="Resolve a case", tags=["cases"])
async def resolve_case(
    ws: str, case_id: Id, body: Why, ctx: Ctx, principal: Operator
) -> dict[str, Any]:
    """Resolved outside Crossdock: waiting deliveries count as skipped with the note."""
    detail = f"resolved by {principal.name}: {body.text}"
    n = await _act(ctx, ws, case_id, lambda conn, now: close_all(conn, case_id, now, detail))
    return {"closed": n, "case": await _read_case(ctx, ws, case_id)}


class Assign(BaseModel):
    """Who is on the case."""

    assignee: str | None = Field(default=None, max_length=200, description="A username, or null.")


@router.post("/workspaces/{ws}/cases/{case_id}/assign", summary="Assign a case", tags=["cases"])
async def assign_case(
    ws: str, case_id: Id, body: Assign, ctx: Ctx, principal: Operator
) -> dict[str, Any]:
    """Give the case to a person (a console user of the workspace) or to nobody."""
    who = (body.assignee or "").strip().lower() or None

    def act(conn: Connection, now: float) -> bool:
        return assign(conn, ws, case_id, who, principal.name, now)

    if not await _act(ctx, ws, case_id, act):
        raise Problem(
            422,
            f"'{who}' is not an operator or admin of workspace '{ws}'.",
            issues=[
                {"location": "body", "field": "assignee", "message": "not an operator or admin"}
            ],
        )
    return await _read_case(ctx, ws, case_id)


@router.post("/workspaces/{ws}/cases/{case_id}/notes", summary="Add a note", tags=["cases"])
async def note_case(
    ws: str, case_id: Id, body: Why, ctx: Ctx, principal: Operator
) -> dict[str, Any]:
    """Add a note to the case."""
    await _act(
        ctx,
        ws,
        case_id,
        lambda conn, now: add_note(conn, ws, case_id, principal.name, body.text, now),
    )
    return await _read_case(ctx, ws, case_id)
