"""What an operator can do to deliveries in the exception queue: retry, skip, resolve.

Shared by the REST API and the CLI; run inside the writer's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, update

from crossdock.store.cases import close_settled_cases
from crossdock.store.tables import deliveries, exceptions


def retry_deliveries(conn: Connection, delivery_ids: Sequence[int], now: float) -> int:
    """Make deliveries that are in ``exception`` due now (attempts kept) and mark their
    exceptions ``retrying``. Returns how many deliveries were made due."""
    if not delivery_ids:
        return 0
    res = conn.execute(
        update(deliveries)
        .where(deliveries.c.id.in_(list(delivery_ids)), deliveries.c.state == "exception")
        .values(
            state="pending",
            next_attempt_at=now,
            lease_owner=None,
            lease_expires_at=None,
            updated_at=now,
        )
    )
    conn.execute(
        update(exceptions)
        .where(exceptions.c.delivery_id.in_(list(delivery_ids)))
        .values(state="retrying", updated_at=now)
    )
    return res.rowcount or 0


def close_delivery(conn: Connection, delivery_id: int, now: float, detail: str) -> None:
    """Skip a delivery for good (skip or resolve by an operator) and resolve its exception."""
    conn.execute(
        update(deliveries)
        .where(deliveries.c.id == delivery_id)
        .values(
            state="skipped", detail=detail, lease_owner=None, lease_expires_at=None, updated_at=now
        )
    )
    conn.execute(
        update(exceptions)
        .where(exceptions.c.delivery_id == delivery_id)
        .values(state="resolved", resolution=detail, updated_at=now)
    )
    close_settled_cases(conn, now, delivery_ids=[delivery_id])
