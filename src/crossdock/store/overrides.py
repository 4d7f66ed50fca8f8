"""Lookup values set in the console, on top of the lookup tables of the flow files.

An operator fixing "SKU 'ABC-9' is not in lookup table 'skus'" sets the value in the
console; it is stored here, the registry reloads (it is part of the configuration's
fingerprint) and every affected delivery is replayed with the new value. The value stays
in force across ``crossdock apply`` until someone removes it; the flow's page lists it,
so it can be copied into the file the team keeps in git.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import orjson
from sqlalchemy import Connection, delete, select, update

from crossdock.store.tables import lookup_overrides

__all__ = ["lookup_values", "remove_lookup_value", "set_lookup_value"]


def set_lookup_value(
    conn: Connection,
    workspace: str,
    flow: str,
    table: str,
    key: str,
    value: Any,
    by: str,
    now: float,
) -> None:
    """Set ``key`` -> ``value`` in a flow's lookup table (replacing an earlier value)."""
    data = orjson.dumps(value).decode()
    where = (
        lookup_overrides.c.workspace == workspace,
        lookup_overrides.c.flow == flow,
        lookup_overrides.c.table_name == table,
        lookup_overrides.c.key == key,
    )
    res = conn.execute(
        update(lookup_overrides).where(*where).values(value=data, updated_by=by, updated_at=now)
    )
    if not res.rowcount:
        conn.execute(
            lookup_overrides.insert().values(
                workspace=workspace,
                flow=flow,
                table_name=table,
                key=key,
                value=data,
                updated_by=by,
                updated_at=now,
            )
        )


def remove_lookup_value(conn: Connection, workspace: str, flow: str, table: str, key: str) -> int:
    """Remove a value set in the console; returns how many were removed."""
    res = conn.execute(
        delete(lookup_overrides).where(
            lookup_overrides.c.workspace == workspace,
            lookup_overrides.c.flow == flow,
            lookup_overrides.c.table_name == table,
            lookup_overrides.c.key == key,
        )
    )
    return res.rowcount or 0


def lookup_values(
    conn: Connection, workspace: str | None = None
) -> dict[tuple[str, str], dict[str, dict[str, Any]]]:
    """Every value set in the console: (workspace, flow) -> table -> key -> value."""
    q = select(lookup_overrides)
    if workspace is not None:
        q = q.where(lookup_overrides.c.workspace == workspace)
    out: dict[tuple[str, str], dict[str, dict[str, Any]]] = defaultdict(dict)
    for r in conn.execute(q):
        out[(r.workspace, r.flow)].setdefault(r.table_name, {})[r.key] = orjson.loads(r.value)
    return dict(out)


def lookup_value_rows(conn: Connection, workspace: str, flow: str) -> list[dict[str, Any]]:
    """The values set in the console for one flow, with who set them and when."""
    return [
        {
            "table": r.table_name,
            "key": r.key,
            "value": orjson.loads(r.value),
            "updated_by": r.updated_by,
            "updated_at": r.updated_at,
        }
        for r in conn.execute(
            select(lookup_overrides)
            .where(lookup_overrides.c.workspace == workspace, lookup_overrides.c.flow == flow)
            .order_by(lookup_overrides.c.table_name, lookup_overrides.c.key)
        )
    ]
