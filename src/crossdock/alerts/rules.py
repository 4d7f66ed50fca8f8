"""What each kind of alert rule measures, per subject, in plain words.

:func:`gather_facts` reads what a workspace's rules need in one database read (the
same queries as the REST API's key figures, :mod:`crossdock.api.kpis`); :func:`observe`
turns one rule and those facts into one :class:`Observation` per subject (a connection
or a flow): its value, whether the rule fires, and a sentence saying what is going on.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select

from crossdock.alerts.credentials import credential_status
from crossdock.alerts.notify import format_value
from crossdock.api.kpis import connection_kpis, flow_kpis
from crossdock.project.config import AlertRule, ConnectionConfig
from crossdock.store.tables import connections

__all__ = ["Facts", "Observation", "gather_facts", "observe", "threshold_of"]


@dataclass(frozen=True)
class Observation:
    """One subject of a rule as it is now."""

    subject: str
    value: float | None
    firing: bool
    summary: str


@dataclass
class Facts:
    """What a workspace's rules are evaluated on (one read)."""

    workspace: str
    now: float
    connections: dict[str, ConnectionConfig]
    rotated_at: dict[str, float | None] = field(default_factory=dict)
    calls: dict[float, dict[str, dict[str, Any]]] = field(default_factory=dict)
    flows: dict[str, dict[str, Any]] = field(default_factory=dict)


def gather_facts(
    conn: Connection,
    workspace: str,
    connection_configs: Mapping[str, ConnectionConfig],
    flow_names: Iterable[str],
    rules: Iterable[AlertRule],
    now: float | None = None,
) -> Facts:
    """Read the figures ``rules`` need for ``workspace`` (a database read function)."""
    now = time.time() if now is None else now
    rules = list(rules)
    facts = Facts(workspace, now, dict(connection_configs))
    kinds = {r.when for r in rules}
    for window in sorted({r.window for r in rules if r.when == "error_rate"}):
        facts.calls[window] = {
            k["connection"]: k for k in connection_kpis(conn, workspace, window, now)
        }
    if kinds & {"backlog", "lag"}:
        facts.flows = {
            f["flow"]: f for f in flow_kpis(conn, workspace, 600.0, now, list(flow_names))
        }
    if "credential_expiry" in kinds:
        facts.rotated_at = {
            r.name: r.secrets_rotated_at
            for r in conn.execute(
                select(connections.c.name, connections.c.secrets_rotated_at).where(
                    connections.c.workspace == workspace
                )
            )
        }
    return facts


def threshold_of(rule: AlertRule) -> float | None:
    """The rule's threshold in the unit of its value (days for ``within``)."""
    if rule.within is not None:
        return round(rule.within / 86400, 3)
    return rule.above


def _date(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).date().isoformat()


def _days(n: int) -> str:
    if n == 0:
        return "today"
    if n < 0:
        return f"{-n} day{'s' if n != -1 else ''} ago"
    return f"in {n} day{'s' if n != 1 else ''}"


def _error_rate(rule: AlertRule, facts: Facts) -> list[Observation]:
    stats = facts.calls.get(rule.window, {})
    names = [rule.connection] if rule.connection else sorted({*facts.connections, *stats})
    window = format_value("lag", rule.window)
    out = []
    for name in names:
        k = stats.get(name)
        calls = int(k["attempts"]) if k else 0
        errors = int(k["errors"]) if k else 0
        rate = float(k["error_rate"] or 0.0) if k else 0.0
        assert rule.above is not None
        firing = calls >= rule.min_calls and rate > rule.above
        if calls < rule.min_calls:
            summary = (
                f"Connection '{name}' had {calls} call(s) in the last {window}, fewer than the "
                f"{rule.min_calls} the rule needs to judge its error rate."
            )
        else:
            summary = (
                f"{errors} of {calls} calls to connection '{name}' failed in the last "
                f"{window} ({format_value('error_rate', rate)}; the limit is "
                f"{format_value('error_rate', rule.above)})."
            )
        out.append(Observation(name, round(rate, 6), firing, summary))
    return out


def _flow_figure(rule: AlertRule, facts: Facts) -> list[Observation]:
    names = [rule.flow] if rule.flow else sorted(facts.flows)
    assert rule.above is not None
    out = []
    for name in names:
        f = facts.flows.get(name, {})
        if rule.when == "backlog":
            value = float(f.get("backlog", 0))
            summary = (
                f"{value:g} deliveries are waiting in flow '{name}' (the limit is {rule.above:g})."
            )
        else:
            value = float(f.get("lag_seconds", 0.0))
            summary = (
                f"The oldest waiting delivery of flow '{name}' has waited "
                f"{format_value('lag', value)} (the limit is {format_value('lag', rule.above)})."
                if value
                else f"No delivery of flow '{name}' is waiting."
            )
        out.append(Observation(name, value, value > rule.above, summary))
    return out


def _credentials(rule: AlertRule, facts: Facts) -> list[Observation]:
    assert rule.within is not None
    names = [rule.connection] if rule.connection else sorted(facts.connections)
    out = []
    for name in names:
        cfg = facts.connections.get(name)
        if cfg is None or cfg.credentials is None:
            continue
        st = credential_status(cfg, facts.rotated_at.get(name), facts.now)
        candidates: list[tuple[float, str]] = []
        if st["days_left"] is not None:
            n = int(st["days_left"])
            verb = "expired" if n < 0 else "expire"
            candidates.append(
                (
                    n,
                    f"The credentials of connection '{name}' {verb} on {st['expires_on']} "
                    f"({_days(n)}).",
                )
            )
        if st["rotation_days_left"] is not None and cfg.credentials.rotate_every:
            n = int(st["rotation_days_left"])
            every = format_value("lag", cfg.credentials.rotate_every)
            verb = "were due" if n < 0 else "are due"
            last = _date(st["rotated_at"]) if st["rotated_at"] else "?"
            candidates.append(
                (
                    n,
                    f"The credentials of connection '{name}' {verb} for rotation on "
                    f"{st['rotation_due_on']} ({_days(n)}; last changed on {last}, to be "
                    f"rotated every {every}).",
                )
            )
        if not candidates:
            continue
        limit_days = rule.within / 86400
        firing_ones = [c for c in candidates if c[0] <= limit_days]
        value, _ = min(candidates)
        summary = " ".join(t for _, t in (firing_ones or candidates))
        out.append(Observation(name, float(value), bool(firing_ones), summary))
    return out


def _sunset(rule: AlertRule, facts: Facts) -> list[Observation]:
    from crossdock.sdk.registry import get_connector

    assert rule.within is not None
    today = datetime.fromtimestamp(facts.now, UTC).date()
    names = [rule.connection] if rule.connection else sorted(facts.connections)
    out = []
    for name in names:
        cfg = facts.connections.get(name)
        if cfg is None or cfg.is_http:
            continue
        try:
            cls = get_connector(cfg.connector)
        except Exception:
            continue
        days = cls.days_to_sunset(today)
        if days is None:
            continue
        if days < 0:
            when = f"passed its sunset on {cls.api_sunset} ({_days(days)})"
        else:
            when = f"reaches its sunset on {cls.api_sunset} ({_days(days)})"
        summary = (
            f"Connection '{name}' uses the {cls.title} API version {cls.api_version}, which {when}."
        )
        out.append(Observation(name, float(days), days * 86400 <= rule.within, summary))
    return out


def observe(rule: AlertRule, facts: Facts) -> list[Observation]:
    """One observation per subject of ``rule``."""
    if rule.when == "error_rate":
        return _error_rate(rule, facts)
    if rule.when in ("backlog", "lag"):
        return _flow_figure(rule, facts)
    if rule.when == "credential_expiry":
        return _credentials(rule, facts)
    return _sunset(rule, facts)
