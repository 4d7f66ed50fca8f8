"""Credential status of a connection: when its credentials expire and when they are due
for rotation (shown on the console's Connections page and checked by the
``credential_expiry`` alert rule)."""

from __future__ import annotations

import math
import time
from datetime import UTC, date, datetime
from typing import Any

from crossdock.project.config import ConnectionConfig, CredentialsConfig

__all__ = ["credential_status"]


def _day(ts: float) -> date:
    return datetime.fromtimestamp(ts, UTC).date()


def credential_status(
    config: ConnectionConfig | CredentialsConfig | None,
    secrets_rotated_at: float | None,
    now: float | None = None,
) -> dict[str, Any]:
    """Where a connection's credentials stand.

    ``config`` is the connection's configuration (or just its ``credentials``);
    ``secrets_rotated_at`` is ``connections.secrets_rotated_at`` (epoch seconds, when the
    secret values last changed); ``now`` is epoch seconds (default: the clock).

    Returns ``expires_on`` (ISO date or None), ``days_left`` (whole days until it, negative
    once past, or None), ``expired`` (bool), ``rotated_at`` (epoch seconds or None),
    ``rotation_due_on`` (ISO date or None: ``rotated_at + rotate_every``), ``rotation_days_left``
    and ``rotation_due`` (True once that date is reached).
    """
    now = time.time() if now is None else now
    creds = config.credentials if isinstance(config, ConnectionConfig) else config
    today = _day(now)
    expires_on = creds.expires_on if creds is not None else None
    days_left = (expires_on - today).days if expires_on is not None else None
    due_on: date | None = None
    due_days: int | None = None
    due = False
    if creds is not None and creds.rotate_every and secrets_rotated_at is not None:
        due_at = secrets_rotated_at + creds.rotate_every
        due_on = _day(due_at)
        due_days = math.trunc((due_at - now) / 86400)
        due = due_at <= now
    return {
        "expires_on": expires_on.isoformat() if expires_on else None,
        "days_left": days_left,
        "expired": days_left is not None and days_left < 0,
        "rotated_at": secrets_rotated_at,
        "rotation_due_on": due_on.isoformat() if due_on else None,
        "rotation_days_left": due_days,
        "rotation_due": due,
    }
