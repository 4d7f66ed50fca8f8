"""``crossdock flows dry-run``: what a flow would send for a stored or given event."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, select

from crossdock.flows import Flow
from crossdock.flows.context import event_context, stored_event_context
from crossdock.flows.dryrun import dry_run
from crossdock.store.database import Database
from crossdock.store.tables import cross_references, event_bodies, events


def _pick_flow(proj: Any, name: str, workspace: str | None) -> Flow:
    if proj is None:
        raise LookupError("no crossdock.yaml here: pass --project")
    found = [f for f in proj.flows if f.name == name and workspace in (None, f.workspace)]
    if not found:
        known = ", ".join(sorted(f.name for f in proj.flows)) or "none"
        raise LookupError(f"no flow '{name}': the project has {known}")
    if len(found) > 1:
        raise LookupError(f"flow '{name}' exists in several workspaces: pass --workspace")
    flow: Flow = found[0]
    return flow


def _stored_event(conn: Connection, flow: Flow, event_id: int | None) -> Any:
    q = select(events, event_bodies.c.body, event_bodies.c.headers).join(
        event_bodies, event_bodies.c.event_id == events.c.id
    )
    if event_id is not None:
        q = q.where(events.c.id == event_id, events.c.workspace == flow.workspace)
    else:
        q = q.where(
            events.c.workspace == flow.workspace,
            events.c.connection == flow.trigger.connection,
        ).order_by(events.c.id.desc())
        rows = conn.execute(q.limit(200)).all()
        return next((r for r in rows if flow.matches(r.connection, r.type)), None)
    return conn.execute(q).first()


def run_dry_run(
    db: Database,
    proj: Any,
    name: str,
    workspace: str | None,
    event_id: int | None,
    body_file: Path | None,
    event_type: str | None,
) -> dict[str, Any]:
    """The request the flow would make (nothing is sent), as a JSON-ready dict."""
    flow = _pick_flow(proj, name, workspace)
    if body_file is not None:
        try:
            body = orjson.loads(body_file.read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            raise LookupError(f"{body_file}: not a readable JSON file ({exc})") from None
        ctx = event_context(
            body=body,
            headers={},
            event_id=None,
            workspace=flow.workspace,
            connection=flow.trigger.connection,
            event_type=event_type or flow.trigger.events[0],
            record_key=str(body.get("id", "")) if isinstance(body, dict) else "",
            version=None,
            received_at=None,
            xref=None,
        )
        source = f"file {body_file}"
    else:

        def read(conn: Connection) -> tuple[Any, str | None]:
            row = _stored_event(conn, flow, event_id)
            if row is None:
                return None, None
            xref = conn.execute(
                select(cross_references.c.target_id).where(
                    cross_references.c.workspace == row.workspace,
                    cross_references.c.source_connection == row.connection,
                    cross_references.c.source_key == row.record_key,
                    cross_references.c.target_connection == flow.action.connection,
                )
            ).scalar()
            return row, xref

        row, xref = db.read_sync(read)
        if row is None:
            which = f"event {event_id}" if event_id is not None else "recent matching event"
            raise LookupError(f"no {which} for flow '{name}': pass --event ID or --body FILE")
        ctx = stored_event_context(row, xref)
        source = f"event {row.id} ({row.type}, record {row.record_key})"
    result = dry_run(flow, ctx)
    out = {
        f.name: getattr(result, f.name) for f in dataclasses.fields(result) if f.name != "failure"
    }
    if result.failure is not None:
        fail = result.failure
        out["failure"] = {"category": fail.category, "reason": fail.reason, "fix": fail.fix}
    out["flow"] = flow.name
    out["source"] = source
    out["sent"] = False
    return out
