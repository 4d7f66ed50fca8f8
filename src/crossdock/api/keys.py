"""API keys: creating them (shown once, stored hashed) and checking a presented key.

A key is ``cdk_<prefix>_<secret>``; the prefix finds the row, the hash is compared in
constant time by ``crossdock.security.apikeys.verify_api_key``. A key belongs to ONE
workspace and has one role (viewer < operator < admin).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import Connection, select

from crossdock.security.apikeys import Role, new_api_key, parse_prefix, verify_api_key
from crossdock.store.database import Database
from crossdock.store.tables import api_keys, workspaces


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's id, name, workspace and role."""

    key_id: int
    name: str
    workspace: str
    role: Role


def create_api_key(db: Database, workspace: str, name: str, role: Role | str) -> str:
    """Create a key for ``workspace`` with ``role`` and return it (the only time it is
    visible; only its hash is stored). The workspace row is created if it is missing."""
    role = Role(role)
    key, prefix, digest = new_api_key()
    now = time.time()

    def write(conn: Connection) -> None:
        if (
            conn.execute(select(workspaces.c.id).where(workspaces.c.id == workspace)).first()
            is None
        ):
            conn.execute(workspaces.insert().values(id=workspace, name=workspace, created_at=now))
        conn.execute(
            api_keys.insert().values(
                workspace=workspace,
                name=name,
                role=role.value,
                prefix=prefix,
                hash=digest,
                created_at=now,
                revoked_at=None,
            )
        )

    db.write_sync(write)
    return key


def authenticate(conn: Connection, key: str) -> Principal | None:
    """The principal a presented key stands for, or ``None`` if the key is not valid
    (malformed, unknown, revoked or wrong secret)."""
    try:
        prefix = parse_prefix(key)
    except (ValueError, TypeError):
        return None
    if not prefix:
        return None
    row = conn.execute(
        select(api_keys).where(api_keys.c.prefix == prefix, api_keys.c.revoked_at.is_(None))
    ).first()
    if row is None or not verify_api_key(key, row.hash):
        return None
    try:
        role = Role(row.role)
    except ValueError:
        return None
    return Principal(key_id=row.id, name=row.name, workspace=row.workspace, role=role)
