"""Alert configurations and states in the database.

``alert_configs`` holds each workspace's alerting as written by ``apply_project`` (JSON
without secrets, the secrets encrypted apart). ``alert_states`` holds one row per
(workspace, rule, subject): ``state`` is ``ok`` or ``firing``, ``since`` when it entered
that state, ``value`` the last measured value, and ``notified_at`` when the notification
for the current state last went out. ``notified_at`` is NULL while a notification is
owed: a firing alert not yet announced, or an alert that resolved and whose
``alert.resolved`` has not been delivered yet. That is how a restart neither re-sends
nor forgets.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import Connection, select

from crossdock.project.config import AlertsConfig
from crossdock.security.crypto import SecretBox
from crossdock.store.tables import alert_configs, alert_states

__all__ = [
    "alert_states_for",
    "firing_alerts",
    "load_alert_config",
    "load_alert_configs",
]


def load_alert_configs(
    conn: Connection, box: SecretBox, workspace: str | None = None
) -> dict[str, tuple[float, AlertsConfig]]:
    """Every stored alert configuration (secrets decrypted), by workspace:
    ``{workspace: (updated_at, config)}``."""
    q = select(alert_configs)
    if workspace is not None:
        q = q.where(alert_configs.c.workspace == workspace)
    out: dict[str, tuple[float, AlertsConfig]] = {}
    for r in conn.execute(q):
        cfg = AlertsConfig.from_stored(orjson.loads(r.config), box.decrypt_json(r.secrets))
        out[r.workspace] = (float(r.updated_at), cfg)
    return out


def load_alert_config(conn: Connection, box: SecretBox, workspace: str) -> AlertsConfig | None:
    """One workspace's alert configuration, or None when it has none."""
    found = load_alert_configs(conn, box, workspace)
    return found[workspace][1] if workspace in found else None


def alert_states_for(
    conn: Connection, workspace: str, *, firing_only: bool = False
) -> list[dict[str, Any]]:
    """A workspace's alert states (firing first, then by rule and subject).

    Each is ``{rule, subject, state, value, since, notified_at}`` (times in epoch
    seconds). Use it with ``await db.read(functools.partial(alert_states_for,
    workspace=ws))``.
    """
    q = select(alert_states).where(alert_states.c.workspace == workspace)
    if firing_only:
        q = q.where(alert_states.c.state == "firing")
    rows = [
        {
            "rule": r.rule,
            "subject": r.subject,
            "state": r.state,
            "value": r.value,
            "since": r.since,
            "notified_at": r.notified_at,
        }
        for r in conn.execute(q)
    ]
    rows.sort(key=lambda s: (s["state"] != "firing", s["rule"], s["subject"]))
    return rows


def firing_alerts(conn: Connection, workspace: str) -> list[dict[str, Any]]:
    """The alerts firing now in ``workspace`` (for the console's dashboard)."""
    return alert_states_for(conn, workspace, firing_only=True)
