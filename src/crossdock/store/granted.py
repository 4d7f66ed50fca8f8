"""Credentials a vendor granted through the console (an OAuth install), kept by the hub.

A merchant approving the app in Shopify gives the hub an access token that is in no
file: it is stored here, encrypted like every credential, and laid over the secrets of
the connection's settings when the registry is built (so ``crossdock apply`` of the
project keeps it). Granting sets the connection's ``secrets_rotated_at``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, select, update

from crossdock.api.context import SecretBoxLike
from crossdock.store.tables import connections, granted_credentials

__all__ = ["grant", "granted", "granted_info"]


def grant(
    conn: Connection,
    box: SecretBoxLike,
    workspace: str,
    connection: str,
    secrets: dict[str, Any],
    *,
    scope: str | None,
    by: str,
    now: float,
) -> None:
    """Keep ``secrets`` (e.g. ``{"access_token": ...}``) for a connection, replacing
    what was granted before."""
    conn.execute(
        delete(granted_credentials).where(
            granted_credentials.c.workspace == workspace,
            granted_credentials.c.connection == connection,
        )
    )
    conn.execute(
        granted_credentials.insert().values(
            workspace=workspace,
            connection=connection,
            secrets=box.encrypt_json(secrets),
            scope=scope,
            granted_by=by,
            updated_at=now,
        )
    )
    conn.execute(
        update(connections)
        .where(connections.c.workspace == workspace, connections.c.name == connection)
        .values(secrets_rotated_at=now)
    )


def granted(conn: Connection, box: SecretBoxLike) -> dict[tuple[str, str], dict[str, Any]]:
    """Every granted credential, decrypted: (workspace, connection) -> secrets."""
    return {
        (r.workspace, r.connection): box.decrypt_json(r.secrets)
        for r in conn.execute(
            select(
                granted_credentials.c.workspace,
                granted_credentials.c.connection,
                granted_credentials.c.secrets,
            )
        )
    }


def granted_info(conn: Connection, workspace: str) -> dict[str, dict[str, Any]]:
    """Who granted what and when, per connection of a workspace (no secret in it)."""
    return {
        r.connection: {"scope": r.scope, "granted_by": r.granted_by, "granted_at": r.updated_at}
        for r in conn.execute(
            select(
                granted_credentials.c.connection,
                granted_credentials.c.scope,
                granted_credentials.c.granted_by,
                granted_credentials.c.updated_at,
            ).where(granted_credentials.c.workspace == workspace)
        )
    }
