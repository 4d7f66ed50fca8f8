"""Rotation of the keys that encrypt stored credentials."""

from __future__ import annotations

import time

from sqlalchemy import Connection, select, update

from crossdock.security.crypto import SecretBox
from crossdock.store.database import Database
from crossdock.store.tables import alert_configs, connections


def rotate_all(db: Database, box: SecretBox) -> tuple[int, int]:
    """Re-encrypt every connection's and alert channel's secrets under the primary key, in
    one transaction. Returns (re-encrypted, total)."""

    def run(conn: Connection) -> tuple[int, int]:
        rows = conn.execute(
            select(connections.c.workspace, connections.c.name, connections.c.secrets)
        ).all()
        done = 0
        for r in rows:
            if box.needs_rotation(r.secrets):
                conn.execute(
                    update(connections)
                    .where(connections.c.workspace == r.workspace, connections.c.name == r.name)
                    .values(secrets=box.rotate(r.secrets), updated_at=time.time())
                )
                done += 1
        alerts = conn.execute(select(alert_configs.c.workspace, alert_configs.c.secrets)).all()
        for a in alerts:
            if box.needs_rotation(a.secrets):
                conn.execute(
                    update(alert_configs)
                    .where(alert_configs.c.workspace == a.workspace)
                    .values(secrets=box.rotate(a.secrets), updated_at=time.time())
                )
                done += 1
        return done, len(rows) + len(alerts)

    return db.write_sync(run)
