"""The Flows pages: the list, and one flow with its recent deliveries, a dry-run and its YAML.

- ``/flows``: every flow of the workspace with its trigger, action, whether it is enabled
  and loaded, and its deliveries by state.
- ``/flows/{name}``: recent deliveries (state, record, attempts, last detail, time); a
  dry-run (``?dry_run=<event id>``, read-only, any role) showing the exact request the
  flow would send for one of the last events matching its trigger, secrets redacted, or
  the plain-words reason it would be skipped or fail; the YAML, which admins may edit.
  Saving goes through the same validation as the API's ``PUT .../flows/{name}``.
"""

from __future__ import annotations

import json
import time
from typing import Annotated, Any
from urllib.parse import quote

import structlog
from fastapi import APIRouter, Form
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import Connection, and_, delete, func, or_, select

from crossdock.api.config_routes import (
    api_source_issues,
    flow_file,
    notify_change,
    parse_flow_source,
    workspace_configs,
)
from crossdock.console.web import Administering, Page, Viewing, not_found
from crossdock.flows import Flow
from crossdock.flows.context import stored_event_context
from crossdock.flows.dryrun import dry_run
from crossdock.store.tables import (
    cross_references,
    deliveries,
    event_bodies,
    events,
    flows,
    workspaces,
)

log = structlog.get_logger("crossdock.console")

router = APIRouter()

STATES = ("pending", "in_progress", "succeeded", "skipped", "exception")
RECENT_DELIVERIES = 50
DRY_RUN_EVENTS = 20


def _registry_flow(page: Page, name: str) -> Flow | None:
    try:
        return page.ctx.registry().flow(page.workspace, name)
    except Exception:
        log.exception("registry_unavailable")
        return None


def _trigger_text(flow: Flow | None) -> str:
    if flow is None:
        return ""
    return f"{', '.join(flow.trigger.events)} from {flow.trigger.connection}"


@router.get("/flows")
async def flows_page(page: Viewing) -> HTMLResponse:
    """Every flow of the workspace with trigger, action, state and deliveries by state."""
    page.nav = "flows"
    ws = page.workspace

    def read(conn: Connection) -> tuple[list[Any], dict[str, dict[str, int]]]:
        rows = list(
            conn.execute(
                select(flows.c.name, flows.c.file, flows.c.enabled, flows.c.updated_at)
                .where(flows.c.workspace == ws)
                .order_by(flows.c.name)
            )
        )
        counts: dict[str, dict[str, int]] = {}
        for name, state, n in conn.execute(
            select(deliveries.c.flow, deliveries.c.state, func.count())
            .where(deliveries.c.workspace == ws)
            .group_by(deliveries.c.flow, deliveries.c.state)
        ):
            counts.setdefault(name, {})[state] = int(n)
        return rows, counts

    rows, counts = await page.ctx.db.read(read)
    items = []
    for r in rows:
        flow = _registry_flow(page, r.name)
        items.append(
            {
                "name": r.name,
                "file": r.file,
                "enabled": bool(r.enabled),
                "loaded": flow is not None,
                "updated_at": r.updated_at,
                "description": flow.description if flow is not None else "",
                "trigger": _trigger_text(flow),
                "action": (f"{flow.action.operation} on {flow.action.connection}" if flow else ""),
                "counts": counts.get(r.name, {}),
                "total": sum(counts.get(r.name, {}).values()),
            }
        )
    return page.render("flows.html", title="Flows", flow_items=items, states=STATES)


def _load_flow(conn: Connection, ws: str, name: str) -> Any:
    return conn.execute(select(flows).where(flows.c.workspace == ws, flows.c.name == name)).first()


def _recent(conn: Connection, ws: str, name: str) -> list[Any]:
    d = deliveries.c
    return list(
        conn.execute(
            select(
                d.id,
                d.event_id,
                d.record_key,
                d.state,
                d.attempts,
                d.throttled,
                d.outcome,
                d.detail,
                d.created_at,
                d.updated_at,
                d.generation,
                events.c.version,
                events.c.type,
            )
            .select_from(deliveries.outerjoin(events, events.c.id == d.event_id))
            .where(d.workspace == ws, d.flow == name)
            .order_by(d.id.desc())
            .limit(RECENT_DELIVERIES)
        )
    )


def _candidates(conn: Connection, ws: str, flow: Flow | None) -> list[Any]:
    """The last events matching the flow's trigger (for the dry-run chooser)."""
    if flow is None:
        return []
    e = events.c
    q = (
        select(e.id, e.type, e.record_key, e.version, e.received_at)
        .where(e.workspace == ws, e.connection == flow.trigger.connection)
        .order_by(e.received_at.desc(), e.id.desc())
        .limit(500)
    )
    out = []
    for r in conn.execute(q):
        if flow.matches(flow.trigger.connection, r.type):
            out.append(r)
            if len(out) >= DRY_RUN_EVENTS:
                break
    return out


def _stale(conn: Connection, ws: str, flow: str, ev: Any) -> bool:
    """Whether the worker would skip this event's delivery by the rule ``stale-version``."""
    if not ev.version_key:
        return False
    d = deliveries.c
    return (
        conn.execute(
            select(d.id)
            .where(
                d.workspace == ws,
                d.flow == flow,
                d.record_key == ev.record_key,
                d.state == "succeeded",
                or_(
                    d.version_key > ev.version_key,
                    and_(d.version_key == ev.version_key, d.event_id != ev.id),
                ),
            )
            .limit(1)
        ).first()
        is not None
    )


def _dry_run(page: Page, conn: Connection, flow: Flow, event_id: int) -> dict[str, Any]:
    """What the flow would do for the event (read-only; nothing is sent)."""
    ws = page.workspace
    row = conn.execute(
        select(events, event_bodies.c.body, event_bodies.c.headers)
        .select_from(events.outerjoin(event_bodies, event_bodies.c.event_id == events.c.id))
        .where(events.c.workspace == ws, events.c.id == event_id)
    ).first()
    if row is None:
        return {"error": f"Event {event_id} does not exist, or you may not see it.", "status": 404}
    out: dict[str, Any] = {
        "event": {
            "id": row.id,
            "type": row.type,
            "record_key": row.record_key,
            "version": row.version,
            "received_at": row.received_at,
            "connection": row.connection,
        }
    }
    if not flow.matches(row.connection, row.type):
        out["not_triggered"] = (
            f"This flow is not triggered by this event: it listens to "
            f"{_trigger_text(flow)}, and this is {row.type} from {row.connection}."
        )
        return out
    if row.body is None:
        out["error"] = "This event's body is no longer stored, so it cannot be dry-run."
        return out
    xref = conn.execute(
        select(cross_references.c.target_id).where(
            cross_references.c.workspace == ws,
            cross_references.c.source_connection == row.connection,
            cross_references.c.source_key == row.record_key,
            cross_references.c.target_connection == flow.action.connection,
        )
    ).scalar()
    ctx = stored_event_context(row, xref)
    out["xref"] = xref
    try:
        result = dry_run(flow, ctx)
    except ValueError as exc:
        out["error"] = str(exc)
        return out
    redact = _redactor(page, flow.action.connection)
    if result.failure is not None:
        f = result.failure
        out["failure"] = {
            "category": f.category,
            "reason": redact(f.reason),
            "fix": redact(f.fix),
            "field": f.field,
        }
        return out
    if not result.would_send:
        out["skip"] = (
            "The flow's filter does not accept this event, so it would be skipped "
            "(rule: filter). Nothing would be sent."
        )
        return out
    if flow.options.skip_stale and _stale(conn, ws, flow.name, row):
        out["stale"] = (
            "This version of the record, or a newer one, was already delivered by this "
            "flow, so the worker would skip it (rule: stale-version). Below is what it "
            "would have sent."
        )
    body_text = json.dumps(result.body, indent=2, ensure_ascii=False, default=str)
    out["request"] = {
        "method": result.method,
        "url": redact(result.url or ""),
        "headers": [(k, redact(str(v))) for k, v in sorted(result.headers.items())],
        "body": redact(body_text),
        "operation": result.operation,
        "idempotency_key": result.idempotency_key,
        "connector_action": result.method == "ACTION",
    }
    return out


def _redactor(page: Page, connection: str) -> Any:
    try:
        rt = page.ctx.registry().connection(page.workspace, connection)
    except Exception:
        rt = None
    secrets = [s for s in (rt.config.secret_values() if rt is not None else []) if len(s) >= 4]

    def redact(text: str) -> str:
        if rt is not None:
            text = rt.redactor.text(text)
        for s in sorted(secrets, key=len, reverse=True):
            text = text.replace(s, "********")
        return text

    return redact


async def _flow_page(
    page: Page,
    name: str,
    dry_run_id: str | None = None,
    source: str | None = None,
    issues: list[dict[str, Any]] | None = None,
    status: int = 200,
) -> HTMLResponse:
    ws = page.workspace
    flow = _registry_flow(page, name)
    event_id: int | None = None
    dry_problem = ""
    if dry_run_id:
        try:
            event_id = int(dry_run_id)
            if event_id < 1:
                raise ValueError
        except ValueError:
            dry_problem = f"'{dry_run_id[:40]}' is not an event id; choose an event from the list."

    def read(conn: Connection) -> dict[str, Any] | None:
        row = _load_flow(conn, ws, name)
        if row is None:
            return None
        data: dict[str, Any] = {
            "row": row,
            "recent": _recent(conn, ws, name),
            "candidates": _candidates(conn, ws, flow),
            "counts": {
                s: int(n)
                for s, n in conn.execute(
                    select(deliveries.c.state, func.count())
                    .where(deliveries.c.workspace == ws, deliveries.c.flow == name)
                    .group_by(deliveries.c.state)
                )
            },
            "dry": None,
        }
        if event_id is not None and flow is not None:
            data["dry"] = _dry_run(page, conn, flow, event_id)
        return data

    data = await page.ctx.db.read(read)
    if data is None:
        raise not_found("This flow")
    dry = data["dry"]
    if event_id is not None and flow is None:
        dry_problem = "This flow is not loaded (disabled or invalid), so it cannot be dry-run."
    if dry and dry.get("status") == 404 and status == 200:
        status = 404
    row = data["row"]
    page.nav = "flows"
    return page.render(
        "flow.html",
        status=status,
        title=f"Flow {name}",
        name=name,
        row=row,
        flow=flow,
        trigger=_trigger_text(flow),
        recent=data["recent"],
        candidates=data["candidates"],
        counts=data["counts"],
        states=STATES,
        dry=dry,
        dry_event_id=event_id,
        dry_problem=dry_problem,
        source=row.source_text if source is None else source,
        issues=issues or [],
        editing=source is not None,
    )


@router.get("/flows/{name}")
async def flow_page(page: Viewing, name: str, dry_run: str | None = None) -> HTMLResponse:
    """One flow: recent deliveries, dry-run on a recent event, and its YAML."""
    if len(name) > 200:
        raise not_found("This flow")
    return await _flow_page(page, name, dry_run_id=dry_run)


@router.post("/flows/{name}")
async def save_flow(
    page: Administering,
    name: str,
    source: Annotated[str, Form(max_length=200_000)] = "",
) -> Response:
    """Save the flow's YAML (admins): validated exactly as the API's PUT flow is; on a
    problem nothing changes and the text is kept with every issue and its line."""
    ws = page.workspace
    if len(name) > 200:
        raise not_found("This flow")
    exists = await page.ctx.db.read(lambda c: _load_flow(c, ws, name))
    if exists is None:
        raise not_found("This flow")
    configs = await page.ctx.db.read(lambda c: workspace_configs(c, page.ctx, ws))
    flow, issues = parse_flow_source(page.ctx, ws, page.workspace_name, name, source, configs)
    issues = api_source_issues(source) + issues
    if not issues and flow is not None and getattr(flow, "name", name) != name:
        issues = [
            {
                "message": f"the flow is named '{flow.name}' but is stored as '{name}'",
                "expected": f"name: {name}",
            }
        ]
    if issues:
        return await _flow_page(page, name, source=source, issues=issues, status=422)

    def write(conn: Connection) -> None:
        now = time.time()
        if conn.execute(select(workspaces.c.id).where(workspaces.c.id == ws)).first() is None:
            conn.execute(workspaces.insert().values(id=ws, name=ws, created_at=now))
        conn.execute(delete(flows).where(flows.c.workspace == ws, flows.c.name == name))
        conn.execute(
            flows.insert().values(
                workspace=ws,
                name=name,
                source_text=source,
                file=flow_file(name),
                enabled=True,
                updated_at=now,
            )
        )

    await page.ctx.db.write(write)
    notify_change(page.ctx)
    log.info("flow_saved_in_console", workspace=ws, flow=name, user=page.user.username)
    return page.back(
        f"flows/{quote(name, safe='')}",
        notice=f"Saved flow {name}; the hub now runs this version.",
    )
