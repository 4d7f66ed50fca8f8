"""Move configuration between the project folder, the database and the registry.

``apply_project`` writes a project's workspaces, connections (secrets encrypted) and flows
into the database; ``load_registry`` builds the runtime registry from the database, so
every process (``serve``, ``worker`` on another machine, the API) sees the same truth.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, delete, func, select

from crossdock.flows import Flow, parse_flow
from crossdock.project.config import (
    Project,
    Workspace,
    connection_config_from_dict,
    merge_secrets,
    split_secrets,
)
from crossdock.runtime.registry import ConnectionRuntime, Registry, WorkspaceRuntime
from crossdock.security.crypto import SecretBox
from crossdock.store.database import Database
from crossdock.store.granted import granted
from crossdock.store.overrides import lookup_values
from crossdock.store.tables import (
    alert_configs,
    alert_states,
    connections,
    flows,
    granted_credentials,
    lookup_overrides,
    workspaces,
)


def _connection_dict(cfg: Any) -> dict[str, Any]:
    data: dict[str, Any] = cfg.model_dump(mode="python", exclude={"name"})
    return _unwrap_secrets(data)


def _unwrap_secrets(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _unwrap_secrets(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_unwrap_secrets(v) for v in obj]
    if hasattr(obj, "get_secret_value"):
        return obj.get_secret_value()
    return obj


def rotated_at(box: SecretBox, old: Any, secrets: dict[str, str], now: float) -> float:
    """When the connection's secret values last changed: kept while they are unchanged,
    ``now`` when they are new or different (or the old ones cannot be read)."""
    if old is None or old.secrets_rotated_at is None:
        return now
    try:
        same = box.decrypt_json(old.secrets) == secrets
    except Exception:  # undecryptable: treat as changed, never log the values
        same = False
    return float(old.secrets_rotated_at) if same else now


def apply_project(db: Database, project: Project, box: SecretBox) -> dict[str, int]:
    """Write the project's configuration into the database (one transaction).

    Also stores each workspace's alert configuration (secrets encrypted apart) and keeps
    ``connections.secrets_rotated_at``: unchanged secret values keep their date.
    """
    now = time.time()
    rows_ws = []
    rows_conn = []
    rows_flow = []
    rows_alerts = []
    plain_secrets: dict[tuple[str, str], dict[str, str]] = {}
    alert_rules: dict[str, list[str]] = {}
    for ws in project.workspaces.values():
        rows_ws.append({"id": ws.id, "name": ws.name, "created_at": now})
        alert_rules[ws.id] = [r.name for r in ws.alerts.rules] if ws.alerts else []
        if ws.alerts is not None:
            alert_config, alert_secrets = ws.alerts.split_secrets()
            rows_alerts.append(
                {
                    "workspace": ws.id,
                    "config": orjson.dumps(alert_config, default=str).decode(),
                    "secrets": box.encrypt_json(alert_secrets),
                    "updated_at": now,
                }
            )
        for name, cfg in ws.connections.items():
            settings, secrets = split_secrets(_connection_dict(cfg))
            plain_secrets[(ws.id, name)] = secrets
            rows_conn.append(
                {
                    "workspace": ws.id,
                    "name": name,
                    "connector": cfg.connector,
                    "settings": orjson.dumps(settings, default=str).decode(),
                    "secrets": box.encrypt_json(secrets),
                    "source": str(project.file),
                    "updated_at": now,
                }
            )
    for fl in project.flows:
        rows_flow.append(
            {
                "workspace": fl.workspace,
                "name": fl.name,
                "source_text": fl.source_text,
                "file": str(fl.file),
                "enabled": True,
                "updated_at": now,
            }
        )

    def write(conn: Connection) -> dict[str, int]:
        for r in rows_ws:
            if conn.execute(select(workspaces.c.id).where(workspaces.c.id == r["id"])).first():
                conn.execute(
                    workspaces.update().where(workspaces.c.id == r["id"]).values(name=r["name"])
                )
            else:
                conn.execute(workspaces.insert().values(**r))
        previous = {
            (r.workspace, r.name): r
            for r in conn.execute(
                select(
                    connections.c.workspace,
                    connections.c.name,
                    connections.c.secrets,
                    connections.c.secrets_rotated_at,
                )
            )
        }
        for r in rows_conn:
            key = (str(r["workspace"]), str(r["name"]))
            r["secrets_rotated_at"] = rotated_at(box, previous.get(key), plain_secrets[key], now)
        # Connections and flows that came from this project file are replaced wholesale.
        conn.execute(delete(connections).where(connections.c.source == str(project.file)))
        for r in rows_conn:
            conn.execute(
                delete(connections).where(
                    connections.c.workspace == r["workspace"], connections.c.name == r["name"]
                )
            )
        if rows_conn:
            conn.execute(connections.insert(), rows_conn)
        ws_ids = [w["id"] for w in rows_ws]
        conn.execute(delete(flows).where(flows.c.workspace.in_(ws_ids)))
        if rows_flow:
            conn.execute(flows.insert(), rows_flow)
        # Alerts: the file is the truth for its workspaces; states of removed rules go.
        conn.execute(delete(alert_configs).where(alert_configs.c.workspace.in_(ws_ids)))
        if rows_alerts:
            conn.execute(alert_configs.insert(), rows_alerts)
        for ws_id, names in alert_rules.items():
            conn.execute(
                delete(alert_states).where(
                    alert_states.c.workspace == ws_id, alert_states.c.rule.not_in(names)
                )
            )
        return {"workspaces": len(rows_ws), "connections": len(rows_conn), "flows": len(rows_flow)}

    return db.write_sync(write)


def config_stamp(conn: Connection) -> tuple[Any, ...]:
    """A cheap fingerprint of the configuration tables, to notice changes."""
    out: list[Any] = []
    for t in (workspaces, connections, flows, lookup_overrides, granted_credentials):
        col = t.c.created_at if t is workspaces else t.c.updated_at
        out.extend(conn.execute(select(func.count(), func.max(col)).select_from(t)).one())
    return tuple(out)


def load_registry(db: Database, box: SecretBox, root: Path | None = None) -> Registry:
    """Build the registry from the database, compiling every expression once."""

    def read(
        conn: Connection,
    ) -> tuple[list[Any], list[Any], list[Any], dict[Any, Any], dict[Any, Any]]:
        return (
            list(conn.execute(select(workspaces))),
            list(conn.execute(select(connections))),
            list(conn.execute(select(flows).where(flows.c.enabled.is_(True)))),
            lookup_values(conn),
            granted(conn, box),
        )

    ws_rows, conn_rows, flow_rows, overrides, grants = db.read_sync(read)
    result: dict[str, WorkspaceRuntime] = {
        r.id: WorkspaceRuntime(id=r.id, name=r.name) for r in ws_rows
    }
    configs: dict[str, dict[str, Any]] = {r.id: {} for r in ws_rows}
    for r in conn_rows:
        if r.workspace not in result:
            continue
        secrets = {**box.decrypt_json(r.secrets), **grants.get((r.workspace, r.name), {})}
        data = merge_secrets(orjson.loads(r.settings), secrets)
        cfg = connection_config_from_dict(data, r.name)
        configs[r.workspace][r.name] = cfg
        result[r.workspace].connections[r.name] = ConnectionRuntime.build(r.workspace, cfg)
    base = root or Path.cwd()
    for r in flow_rows:
        if r.workspace not in result:
            continue
        project = project_for(base, r.workspace, result[r.workspace].name, configs[r.workspace])
        fl: Flow = parse_flow(r.source_text, r.file, project)
        fl = with_lookup_values(fl, overrides.get((r.workspace, fl.name)))
        result[r.workspace].flows[fl.name] = fl
    return Registry(result)


def with_lookup_values(fl: Flow, values: dict[str, dict[str, Any]] | None) -> Flow:
    """The flow with the lookup values set in the console laid over its tables."""
    if not values:
        return fl
    tables = {name: dict(table) for name, table in fl.lookups.items()}
    for name, entries in values.items():
        if name in tables:  # a table the flow no longer has: the value waits, unused
            tables[name].update(entries)
    return dataclasses.replace(fl, lookups=tables)


def project_for(root: Path, ws_id: str, ws_name: str, conns: dict[str, Any]) -> Project:
    """A one-workspace project, to validate a flow against the stored connections."""
    return Project(
        root=root,
        file=root / "crossdock.yaml",
        database_url=None,
        flows_dir=root / "flows",
        workspaces={ws_id: Workspace(id=ws_id, name=ws_name, connections=conns)},
    )
