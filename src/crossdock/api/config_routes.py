"""Routes for the workspace's configuration: the workspace, its connections and flows.

Credentials are write-only: a connection is shown with every secret as ``********``.
A change that would break a stored flow (a connection it uses removed or no longer
fitting) is refused, so the runtime can always reload what is stored.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Annotated, Any

import orjson
import structlog
from fastapi import APIRouter, Body, Depends, Response
from fastapi import Path as PathParam
from pydantic import BaseModel, Field
from sqlalchemy import Connection, delete, select, update

from crossdock.api.auth import admin, context, viewer
from crossdock.api.context import ApiContext
from crossdock.api.keys import Principal, create_api_key
from crossdock.api.kpis import status_counts
from crossdock.api.pagination import Page, iso, page
from crossdock.api.problems import Problem, issues_of
from crossdock.project.config import (
    ConfigError,
    connection_config_from_dict,
    merge_secrets,
    split_secrets,
)
from crossdock.security.apikeys import Role
from crossdock.store.tables import api_keys, connections, flows, workspaces

log = structlog.get_logger("crossdock.api")

MASK = "********"

router = APIRouter()
Ctx = Annotated[ApiContext, Depends(context)]
Viewer = Annotated[Principal, Depends(viewer)]
Admin = Annotated[Principal, Depends(admin)]
Name = Annotated[str, PathParam(min_length=1, max_length=63, description="Its name.")]
FlowName = Annotated[str, PathParam(min_length=1, max_length=200, description="Its name.")]


class FlowSource(BaseModel):
    """A flow file's YAML."""

    source: str = Field(description="The flow's YAML, as in a file of the flows folder.")


def notify_change(ctx: ApiContext) -> None:
    """Tell the runtime the configuration changed; a failing reload is logged (the
    hub keeps its last good configuration) rather than failing the stored change."""
    try:
        ctx.on_change()
    except Exception:
        log.exception("configuration_reload_failed")


# -- masking ----------------------------------------------------------------------------
def _mask(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _mask(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(v) for v in value]
    return None if value is None else MASK


def _leaves(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _leaves(v)]
    if isinstance(value, list):
        return [s for v in value for s in _leaves(v)]
    return [str(value)] if value not in (None, "") else []


def _scrub(value: Any, secrets: list[str]) -> Any:
    # Belt and braces: no string that contains a secret leaves, wherever it sits.
    if isinstance(value, dict):
        return {k: _scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, secrets) for v in value]
    if isinstance(value, str) and any(s in value for s in secrets if len(s) >= 4):
        return MASK
    return value


def shown_settings(ctx: ApiContext, settings_json: str, secrets_token: str) -> dict[str, Any]:
    """A stored connection's settings for display: secrets as ``********``."""
    settings = orjson.loads(settings_json)
    try:
        secrets = ctx.secret_box.decrypt_json(secrets_token)
    except Exception:  # an unreadable token (key rotated away): show no secret at all
        log.warning("connection_secrets_unreadable")
        return dict(settings)
    shown: dict[str, Any] = merge_secrets(settings, _mask(secrets))
    return dict(_scrub(shown, _leaves(secrets)))


def _connection(ctx: ApiContext, row: Any) -> dict[str, Any]:
    return {
        "name": row.name,
        "connector": row.connector,
        "settings": shown_settings(ctx, row.settings, row.secrets),
        "source": row.source,
        "updated_at": iso(row.updated_at),
    }


# -- validation against stored flows ---------------------------------------------------
def workspace_configs(conn: Connection, ctx: ApiContext, ws: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for r in conn.execute(select(connections).where(connections.c.workspace == ws)):
        try:
            data = merge_secrets(orjson.loads(r.settings), ctx.secret_box.decrypt_json(r.secrets))
            out[r.name] = connection_config_from_dict(data, r.name)
        except Exception:  # a stored connection that no longer loads is not ours to judge
            log.warning("stored_connection_unloadable", workspace=ws, connection=r.name)
    return out


def _project(ctx: ApiContext, ws: str, ws_name: str, configs: dict[str, Any]) -> Any:
    from crossdock.runtime.loader import project_for

    return project_for(ctx.root or Path.cwd(), ws, ws_name, configs)


def _flow_issues(exc: Exception) -> list[dict[str, Any]] | None:
    """The issues of a flow or configuration error; ``None`` if ``exc`` is not one."""
    if isinstance(exc, ConfigError) or hasattr(exc, "issues"):
        return issues_of(exc)
    if isinstance(exc, ValueError) or hasattr(exc, "line"):
        return issues_of(exc)
    return None


_REFERENCE = re.compile(r"\$\$|\$\{|\$file\b")


def api_source_issues(source: str) -> list[dict[str, Any]]:
    """What a flow sent through the API may not use: ``${VAR}`` (it would read the
    server's environment) and lookup ``$file`` (it would read the server's files). Flows
    kept in the project folder may; these come from the network."""
    issues: list[dict[str, Any]] = []
    for n, line in enumerate(source.splitlines(), start=1):
        for m in _REFERENCE.finditer(line):
            if m.group() == "${":
                issues.append(
                    {
                        "line": n,
                        "column": m.start() + 1,
                        "message": "environment variables cannot be used in a flow sent "
                        "through the API",
                        "expected": "the value itself (write $$ for a literal $), or keep "
                        "the flow in the project's flows folder",
                    }
                )
            elif m.group() == "$file":
                issues.append(
                    {
                        "line": n,
                        "column": m.start() + 1,
                        "message": "lookup files cannot be used in a flow sent through the API",
                        "expected": "an inline lookup table, or keep the flow in the "
                        "project's flows folder",
                    }
                )
    return issues


def parse_flow_source(
    ctx: ApiContext, ws: str, ws_name: str, name: str, source: str, configs: dict[str, Any]
) -> tuple[Any | None, list[dict[str, Any]]]:
    """Parse a flow's YAML against ``configs``: the flow, or the issues found."""
    from crossdock.flows import parse_flow

    try:
        flow = parse_flow(source, flow_file(name), _project(ctx, ws, ws_name, configs), env={})
    except Exception as exc:
        issues = _flow_issues(exc)
        if issues is None:
            raise
        return None, issues
    return flow, []


def flow_file(name: str) -> str:
    """Where a flow stored through the API says it comes from."""
    return f"api/{name}.yaml"


def _broken_flows(
    conn: Connection, ctx: ApiContext, ws: str, configs: dict[str, Any]
) -> list[dict[str, Any]]:
    ws_name = _workspace_name(conn, ws)
    broken: list[dict[str, Any]] = []
    for r in conn.execute(select(flows).where(flows.c.workspace == ws, flows.c.enabled.is_(True))):
        _flow, issues = parse_flow_source(ctx, ws, ws_name, r.name, r.source_text, configs)
        for issue in issues:
            broken.append({"flow": r.name, **issue})
    return broken


def _workspace_name(conn: Connection, ws: str) -> str:
    name = conn.execute(select(workspaces.c.name).where(workspaces.c.id == ws)).scalar()
    return str(name) if name else ws


def _ensure_workspace(conn: Connection, ws: str, now: float) -> None:
    if conn.execute(select(workspaces.c.id).where(workspaces.c.id == ws)).first() is None:
        conn.execute(workspaces.insert().values(id=ws, name=ws, created_at=now))


# -- routes -----------------------------------------------------------------------------
@router.get("/workspaces/{ws}", summary="The workspace and its totals", tags=["workspaces"])
def get_workspace(ws: str, ctx: Ctx, _p: Viewer) -> dict[str, Any]:
    """The workspace, with received = succeeded + skipped + in progress + exceptions."""

    def read(conn: Connection) -> dict[str, Any] | None:
        row = conn.execute(select(workspaces).where(workspaces.c.id == ws)).first()
        if row is None:
            return None
        return {
            "id": row.id,
            "name": row.name,
            "created_at": iso(row.created_at),
            "totals": status_counts(conn, ws),
        }

    found = ctx.db.read_sync(read)
    if found is None:
        raise Problem(404, f"No workspace '{ws}'.")
    return found


@router.get("/workspaces/{ws}/connections", summary="Connections", tags=["connections"])
def list_connections(ws: str, ctx: Ctx, _p: Viewer, params: Page) -> dict[str, Any]:
    """The workspace's connections, by name; secrets shown as ``********``."""
    q = select(connections).where(connections.c.workspace == ws)
    if params.after is not None:
        q = q.where(connections.c.name > str(params.after))
    rows = ctx.db.read_sync(
        lambda c: list(c.execute(q.order_by(connections.c.name).limit(params.limit + 1)))
    )
    return page(rows, params, lambda r: _connection(ctx, r), key=lambda r: r.name)


@router.get("/workspaces/{ws}/connections/{name}", summary="A connection", tags=["connections"])
def get_connection(ws: str, name: Name, ctx: Ctx, _p: Viewer) -> dict[str, Any]:
    """One connection; secrets shown as ``********``, never their value."""
    row = ctx.db.read_sync(
        lambda c: c.execute(
            select(connections).where(connections.c.workspace == ws, connections.c.name == name)
        ).first()
    )
    if row is None:
        raise Problem(404, f"No connection '{name}' in workspace '{ws}'.")
    return _connection(ctx, row)


@router.put(
    "/workspaces/{ws}/connections/{name}",
    summary="Create or replace a connection",
    tags=["connections"],
    responses={422: {"description": "The settings are not valid; every issue is listed."}},
)
def put_connection(
    ws: str,
    name: Name,
    ctx: Ctx,
    _p: Admin,
    response: Response,
    data: Annotated[
        dict[str, Any],
        Body(description="The connection's settings, as under `connections:` in crossdock.yaml."),
    ],
) -> dict[str, Any]:
    """Validate and store a connection; its credentials are encrypted at rest."""
    data = {k: v for k, v in data.items() if k != "name"}  # the URL names it
    try:
        cfg = connection_config_from_dict(data, name)
    except ConfigError as exc:
        raise Problem(
            422,
            f"The settings of connection '{name}' are not valid.",
            title="Invalid connection settings",
            issues=issues_of(exc),
        ) from None
    settings, secrets = split_secrets(data)
    row = {
        "workspace": ws,
        "name": name,
        "connector": cfg.connector,
        "settings": orjson.dumps(settings, default=str).decode(),
        "secrets": ctx.secret_box.encrypt_json(secrets),
        "source": "api",
    }

    configs = ctx.db.read_sync(lambda c: workspace_configs(c, ctx, ws))
    configs[name] = cfg
    broken = ctx.db.read_sync(lambda c: _broken_flows(c, ctx, ws, configs))
    if broken:
        raise Problem(
            409,
            f"Flows of workspace '{ws}' would no longer work with these settings of "
            f"connection '{name}'.",
            title="Conflicts with flows",
            issues=broken,
        )

    def write(conn: Connection) -> bool:
        from crossdock.runtime.loader import rotated_at

        now = time.time()
        _ensure_workspace(conn, ws, now)
        where = (connections.c.workspace == ws, connections.c.name == name)
        old = conn.execute(
            select(connections.c.secrets, connections.c.secrets_rotated_at).where(*where)
        ).first()
        rotated = rotated_at(ctx.secret_box, old, secrets, now)  # type: ignore[arg-type]
        res = conn.execute(delete(connections).where(*where))
        conn.execute(
            connections.insert().values(updated_at=now, secrets_rotated_at=rotated, **row)
        )
        return not res.rowcount

    created = ctx.db.write_sync(write)
    notify_change(ctx)
    response.status_code = 201 if created else 200
    return get_connection(ws, name, ctx, _p)


@router.delete(
    "/workspaces/{ws}/connections/{name}",
    summary="Delete a connection",
    tags=["connections"],
    status_code=204,
)
def delete_connection(ws: str, name: Name, ctx: Ctx, _p: Admin) -> Response:
    """Delete a connection no stored flow uses."""

    def check(conn: Connection) -> tuple[bool, list[dict[str, Any]]]:
        exists = conn.execute(
            select(connections.c.name).where(
                connections.c.workspace == ws, connections.c.name == name
            )
        ).first()
        if exists is None:
            return False, []
        configs = workspace_configs(conn, ctx, ws)
        configs.pop(name, None)
        return True, _broken_flows(conn, ctx, ws, configs)

    found, broken = ctx.db.read_sync(check)
    if not found:
        raise Problem(404, f"No connection '{name}' in workspace '{ws}'.")
    if broken:
        users = ", ".join(sorted({b["flow"] for b in broken}))
        raise Problem(
            409,
            f"Connection '{name}' is used by flows: {users}. Change or delete them first.",
            title="Connection in use",
            issues=broken,
        )
    ctx.db.write_sync(
        lambda c: c.execute(
            delete(connections).where(connections.c.workspace == ws, connections.c.name == name)
        )
    )
    notify_change(ctx)
    return Response(status_code=204)


def _flow(row: Any, loaded: bool, with_source: bool) -> dict[str, Any]:
    out = {
        "name": row.name,
        "file": row.file,
        "enabled": bool(row.enabled),
        "loaded": loaded,
        "updated_at": iso(row.updated_at),
    }
    if with_source:
        out["source"] = row.source_text
    return out


def _loaded(ctx: ApiContext, ws: str, name: str) -> bool:
    try:
        return ctx.registry().flow(ws, name) is not None
    except Exception:  # the registry failing to load must not hide the stored flows
        log.exception("registry_unavailable")
        return False


@router.get("/workspaces/{ws}/flows", summary="Flows", tags=["flows"])
def list_flows(ws: str, ctx: Ctx, _p: Viewer, params: Page) -> dict[str, Any]:
    """The workspace's flows, by name."""
    q = select(flows).where(flows.c.workspace == ws)
    if params.after is not None:
        q = q.where(flows.c.name > str(params.after))
    rows = ctx.db.read_sync(
        lambda c: list(c.execute(q.order_by(flows.c.name).limit(params.limit + 1)))
    )
    return page(
        rows, params, lambda r: _flow(r, _loaded(ctx, ws, r.name), False), key=lambda r: r.name
    )


@router.get("/workspaces/{ws}/flows/{name}", summary="A flow with its YAML", tags=["flows"])
def get_flow(ws: str, name: FlowName, ctx: Ctx, _p: Viewer) -> dict[str, Any]:
    """One flow, with its source YAML."""
    row = ctx.db.read_sync(
        lambda c: c.execute(
            select(flows).where(flows.c.workspace == ws, flows.c.name == name)
        ).first()
    )
    if row is None:
        raise Problem(404, f"No flow '{name}' in workspace '{ws}'.")
    return _flow(row, _loaded(ctx, ws, name), True)


@router.put(
    "/workspaces/{ws}/flows/{name}",
    summary="Create or replace a flow",
    tags=["flows"],
    responses={422: {"description": "The flow is not valid; every issue names line and column."}},
)
def put_flow(
    ws: str, name: FlowName, body: FlowSource, ctx: Ctx, _p: Admin, response: Response
) -> dict[str, Any]:
    """Validate a flow against the workspace's connections and store it."""

    def prepare(conn: Connection) -> tuple[str, dict[str, Any]]:
        return _workspace_name(conn, ws), workspace_configs(conn, ctx, ws)

    ws_name, configs = ctx.db.read_sync(prepare)
    flow, issues = parse_flow_source(ctx, ws, ws_name, name, body.source, configs)
    issues = api_source_issues(body.source) + issues
    if not issues and flow is not None and getattr(flow, "name", name) != name:
        issues = [
            {
                "message": f"the flow is named '{flow.name}' but is stored as '{name}'",
                "expected": f"name: {name}",
            }
        ]
    if issues:
        raise Problem(422, f"The flow '{name}' is not valid.", title="Invalid flow", issues=issues)

    def write(conn: Connection) -> bool:
        now = time.time()
        _ensure_workspace(conn, ws, now)
        res = conn.execute(delete(flows).where(flows.c.workspace == ws, flows.c.name == name))
        conn.execute(
            flows.insert().values(
                workspace=ws,
                name=name,
                source_text=body.source,
                file=flow_file(name),
                enabled=True,
                updated_at=now,
            )
        )
        return not res.rowcount

    created = ctx.db.write_sync(write)
    notify_change(ctx)
    response.status_code = 201 if created else 200
    return get_flow(ws, name, ctx, _p)


@router.delete(
    "/workspaces/{ws}/flows/{name}", summary="Delete a flow", tags=["flows"], status_code=204
)
def delete_flow(ws: str, name: FlowName, ctx: Ctx, _p: Admin) -> Response:
    """Delete a flow. Its deliveries stay (and still count); pending ones will become
    exceptions saying the flow is gone."""
    gone = ctx.db.write_sync(
        lambda c: (
            c.execute(delete(flows).where(flows.c.workspace == ws, flows.c.name == name)).rowcount
        )
    )
    if not gone:
        raise Problem(404, f"No flow '{name}' in workspace '{ws}'.")
    notify_change(ctx)
    return Response(status_code=204)


# -- API keys ---------------------------------------------------------------------------
class NewKey(BaseModel):
    """A key to create."""

    name: str = Field(min_length=1, max_length=200, description="To recognise the key by.")
    role: Role = Field(description="viewer, operator or admin.")


def _key(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "role": row.role,
        "prefix": row.prefix,
        "created_at": iso(row.created_at),
        "revoked_at": iso(row.revoked_at),
    }


@router.get("/workspaces/{ws}/keys", summary="API keys", tags=["keys"])
def list_keys(ws: str, ctx: Ctx, _p: Admin, params: Page) -> dict[str, Any]:
    """The workspace's API keys (names, roles, prefixes; never the key or its hash)."""
    q = select(api_keys).where(api_keys.c.workspace == ws)
    if params.after is not None:
        if not isinstance(params.after, int):
            raise Problem(422, "The cursor is not valid.", title="Invalid request")
        q = q.where(api_keys.c.id > params.after)
    rows = ctx.db.read_sync(
        lambda c: list(c.execute(q.order_by(api_keys.c.id).limit(params.limit + 1)))
    )
    return page(rows, params, _key)


@router.post("/workspaces/{ws}/keys", summary="Create an API key", tags=["keys"], status_code=201)
def post_key(ws: str, body: NewKey, ctx: Ctx, _p: Admin) -> dict[str, Any]:
    """Create a key; the answer is the only time the key itself is shown."""
    key = create_api_key(ctx.db, ws, body.name, body.role)
    row = ctx.db.read_sync(
        lambda c: c.execute(select(api_keys).where(api_keys.c.prefix == key.split("_")[1])).one()
    )
    return {**_key(row), "key": key}


@router.delete(
    "/workspaces/{ws}/keys/{key_id}", summary="Revoke an API key", tags=["keys"], status_code=204
)
def revoke_key(ws: str, key_id: Annotated[int, PathParam(ge=1)], ctx: Ctx, _p: Admin) -> Response:
    """Revoke a key at once (it stays listed, with the time it was revoked)."""
    done = ctx.db.write_sync(
        lambda c: (
            c.execute(
                update(api_keys)
                .where(
                    api_keys.c.workspace == ws,
                    api_keys.c.id == key_id,
                    api_keys.c.revoked_at.is_(None),
                )
                .values(revoked_at=time.time())
            ).rowcount
        )
    )
    if not done:
        raise Problem(404, f"No active API key {key_id} in workspace '{ws}'.")
    return Response(status_code=204)
