"""Alerts: rules over a workspace's figures, announced by Standard Webhooks and e-mail.

Rules are configured per workspace in ``crossdock.yaml`` (``alerts:``; see
``docs/alerts.md``) and stored by ``apply_project``. :class:`AlertEvaluator` runs in the
hub; :func:`alert_states_for` / :func:`firing_alerts` list the states (console, CLI);
:func:`credential_status` says where a connection's credentials stand.
"""

from crossdock.alerts.credentials import credential_status
from crossdock.alerts.evaluator import AlertEvaluator, Outcome
from crossdock.alerts.notify import Notice, SendError, payload, send
from crossdock.alerts.store import (
    alert_states_for,
    firing_alerts,
    load_alert_config,
    load_alert_configs,
)

__all__ = [
    "AlertEvaluator",
    "Notice",
    "Outcome",
    "SendError",
    "alert_states_for",
    "credential_status",
    "firing_alerts",
    "load_alert_config",
    "load_alert_configs",
    "payload",
    "send",
]
