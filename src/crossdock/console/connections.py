"""The Connections page: per connection, is it working and what needs attention soon.

For each connection of the workspace: the connector and the vendor API version it speaks
(and the version the vendor last answered with, for Shopify), days to that version's
sunset, health from the latest calls (ok, degraded, down, with why), the last success,
rate-limit headroom (the hub's own per-connection limiter, and the connector's model of
the vendor's limit when this process holds a live instance), credential status (expiry,
rotation due) and the settings with every secret masked.

No secret reaches the page: settings are shown as ``shown_settings`` masks them and are
scrubbed once more of every secret value of the connection; error texts of attempts go
through the connection's redactor.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import structlog
from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from sqlalchemy import Connection, select

from crossdock.alerts.credentials import credential_status
from crossdock.api.config_routes import MASK, shown_settings
from crossdock.api.context import ApiContext
from crossdock.console.web import Viewing
from crossdock.runtime.registry import ConnectionRuntime
from crossdock.store.granted import granted_info
from crossdock.store.tables import attempts, connections, events, rate_buckets

log = structlog.get_logger("crossdock.console")

router = APIRouter()

HEALTH_CALLS = 20
"""How many of the latest calls (within HEALTH_SECONDS) health is judged on."""
HEALTH_SECONDS = 3600.0
IDLE_SECONDS = 86400.0
SUNSET_WARN_DAYS = 90
CREDENTIAL_WARN_DAYS = 14


@dataclass
class Health:
    """ok | degraded | down | idle | receiving | unknown, with why in plain words."""

    state: str
    label: str
    why: str


@dataclass
class ConnectionView:
    """What the page shows for one connection."""

    name: str
    connector: str
    source: str | None
    updated_at: float
    title: str = ""
    kind: str = ""
    api_version: str | None = None
    answered_version: str | None = None
    sunset: str | None = None
    sunset_days: int | None = None
    sunset_note: str = ""
    health: Health = field(default_factory=lambda: Health("unknown", "unknown", ""))
    last_success: float | None = None
    last_call: float | None = None
    last_event: float | None = None
    hub_limit: dict[str, Any] = field(default_factory=dict)
    vendor_limit: dict[str, Any] = field(default_factory=dict)
    credentials: dict[str, Any] = field(default_factory=dict)
    has_credentials_policy: bool = False
    settings_text: str = ""
    granted: dict[str, Any] | None = None
    installable: bool = False
    roles: list[str] = field(default_factory=list)


def _scrub_text(text: str, secrets: list[str]) -> str:
    for s in sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True):
        text = text.replace(s, MASK)
    return text


def _health(
    recent: list[Any], now: float, redact: Any, inbound: bool, last_event: float | None
) -> Health:
    """Judge health from the latest calls (newest first)."""
    if not recent:
        if inbound:
            if last_event is None:
                return Health("unknown", "no events yet", "Nothing received from it so far.")
            if now - last_event > IDLE_SECONDS:
                return Health("idle", "quiet", "No event received in the last 24 hours.")
            return Health("ok", "receiving", "Events arrive; Crossdock makes no calls to it.")
        return Health("idle", "idle", "No calls to it in the last hour.")

    def why_of(r: Any) -> str:
        text = r.error or (f"HTTP {r.status}" if r.status else r.outcome)
        text = redact(str(text))
        return text if len(text) <= 200 else text[:197] + "..."

    errors = [r for r in recent if r.outcome in ("retryable", "uncertain", "permanent")]
    limited = [r for r in recent if r.outcome == "rate_limited"]
    n = len(recent)
    newest = recent[0]
    streak = 0
    for r in recent:
        if r.outcome in ("retryable", "uncertain", "permanent"):
            streak += 1
        else:
            break
    if streak >= min(3, n) and streak:
        return Health(
            "down",
            "down",
            f"The last {streak} call{'s' if streak > 1 else ''} failed. Latest: {why_of(newest)}",
        )
    if errors:
        share = len(errors) / n
        if share >= 0.2 or newest.outcome != "success":
            return Health(
                "degraded",
                "degraded",
                f"{len(errors)} of the last {n} calls failed. Latest failure: {why_of(errors[0])}",
            )
    if len(limited) >= max(2, n // 4):
        return Health(
            "degraded",
            "slowed",
            f"{len(limited)} of the last {n} calls were answered 429: the vendor is pacing "
            "us. Nothing is lost; deliveries wait and go on at the vendor's pace.",
        )
    return Health(
        "ok",
        "ok",
        f"The last {n} calls succeeded"
        if not errors
        else f"{n - len(errors)} of the last {n} calls succeeded",
    )


def _hub_limiter(ctx: ApiContext) -> Any:
    """The worker's rate limiter in this process, when the hub runs one."""
    return ctx.limiter()


def _hub_limit(
    ctx: ApiContext, rt: ConnectionRuntime | None, bucket: Any, now: float
) -> dict[str, Any]:
    """Headroom of the hub's own limiter for the connection (one per credential)."""
    rl = rt.config.rate_limit if rt is not None else None
    if rl is None:
        return {"set": False, "text": "no hub limit set"}
    out: dict[str, Any] = {
        "set": True,
        "text": f"{rl.per_second:g} calls/s, burst {rl.burst}",
        "headroom": None,
        "paused_for": 0.0,
    }
    if bucket is not None:  # PostgreSQL: the shared row
        tokens = min(rl.burst, bucket.tokens + max(now - bucket.updated_at, 0.0) * rl.per_second)
        out["headroom"] = max(tokens, 0.0) / rl.burst
        out["paused_for"] = max(bucket.paused_until - now, 0.0)
        return out
    limiter = _hub_limiter(ctx)
    key = rt.limiter_key if rt is not None else ""
    if limiter is not None:
        headroom = limiter.headroom(key) if key else None
        if headroom is not None:
            out["headroom"] = headroom
        elif key:
            out["headroom"] = 1.0  # configured on first call; nothing used yet
        try:
            out["paused_for"] = float(limiter.paused_for(key))
        except Exception:
            out["paused_for"] = 0.0
    return out


def _live_connector(rt: ConnectionRuntime | None) -> Any:
    """A connector instance this process already made (never makes one)."""
    if rt is None or rt.is_http:
        return None
    return rt.live_connector()


def _rate_model(inst: Any) -> Any:
    for holder in (inst, getattr(inst, "client", None), getattr(inst, "api", None)):
        if holder is None:
            continue
        for candidate in (
            getattr(holder, "rate", None),
            getattr(getattr(holder, "client", None), "rate", None),
        ):
            if candidate is not None and callable(getattr(candidate, "headroom", None)):
                return candidate
    return None


def _vendor_limit(rt: ConnectionRuntime | None) -> dict[str, Any]:
    if rt is None or rt.is_http:
        return {"known": False, "text": "generic HTTP: the vendor's limit is not modelled"}
    inst = _live_connector(rt)
    model = _rate_model(inst) if inst is not None else None
    if model is None:
        return {
            "known": False,
            "text": "not known: this process has made no call to it yet",
        }
    try:
        headroom = float(model.headroom())
    except Exception:
        return {"known": False, "text": "not known"}
    return {"known": True, "headroom": headroom, "text": type(model).__name__}


def _version(view: ConnectionView, rt: ConnectionRuntime | None, today_days: Any) -> None:
    if view.connector == "http":
        view.title = "HTTP"
        view.kind = "generic"
        view.sunset_note = "generic HTTP connector: no vendor API version"
        return
    try:
        from crossdock.sdk.registry import get_connector

        cls = get_connector(view.connector)
    except Exception:
        view.sunset_note = f"connector '{view.connector}' is not installed in this hub"
        return
    view.title = getattr(cls, "title", view.connector)
    view.kind = getattr(cls, "kind", "")
    pinned = None
    if rt is not None:
        try:
            pinned = getattr(rt.config.connector_settings(), "api_version", None)
        except Exception:
            pinned = None
    view.api_version = str(pinned or cls.api_version)
    inst = _live_connector(rt)
    answered = getattr(inst, "answered_version", None) if inst is not None else None
    view.answered_version = str(answered) if answered else None
    if view.api_version != cls.api_version:
        view.sunset_note = (
            f"pinned to {view.api_version}; Crossdock's connector knows the sunset of "
            f"{cls.api_version} only"
        )
        return
    if cls.api_sunset is None:
        view.sunset_note = "no sunset announced"
        return
    view.sunset = cls.api_sunset.isoformat()
    view.sunset_days = cls.days_to_sunset()
    view.sunset_note = cls.sunset_warning() or ""


def _read(conn: Connection, ws: str, now: float) -> dict[str, Any]:
    rows = list(
        conn.execute(
            select(connections).where(connections.c.workspace == ws).order_by(connections.c.name)
        )
    )
    a = attempts.c
    recent: dict[str, list[Any]] = {}
    last_success: dict[str, float | None] = {}
    last_call: dict[str, float | None] = {}
    last_event: dict[str, float | None] = {}
    for r in rows:
        recent[r.name] = list(
            conn.execute(
                select(a.started_at, a.outcome, a.status, a.error)
                .where(
                    a.workspace == ws,
                    a.connection == r.name,
                    a.started_at >= now - HEALTH_SECONDS,
                )
                .order_by(a.started_at.desc())
                .limit(HEALTH_CALLS)
            )
        )
        last_call[r.name] = (
            recent[r.name][0].started_at
            if recent[r.name]
            else conn.execute(
                select(a.started_at)
                .where(a.workspace == ws, a.connection == r.name)
                .order_by(a.started_at.desc())
                .limit(1)
            ).scalar()
        )
        last_success[r.name] = conn.execute(
            select(a.started_at)
            .where(a.workspace == ws, a.connection == r.name, a.outcome == "success")
            .order_by(a.started_at.desc())
            .limit(1)
        ).scalar()
        last_event[r.name] = conn.execute(
            select(events.c.received_at)
            .where(events.c.workspace == ws, events.c.connection == r.name)
            .order_by(events.c.received_at.desc())
            .limit(1)
        ).scalar()
    buckets = {}
    if conn.dialect.name != "sqlite":
        keys = [f"{ws}/{r.name}" for r in rows]
        if keys:
            q = select(rate_buckets).where(rate_buckets.c.key.in_(keys))
            buckets = {b.key: b for b in conn.execute(q)}
    return {
        "granted": granted_info(conn, ws),
        "rows": rows,
        "recent": recent,
        "last_success": last_success,
        "last_call": last_call,
        "last_event": last_event,
        "buckets": buckets,
    }


def _installable(rt: ConnectionRuntime | None) -> bool:
    """Whether the store can be connected by installing the app from here (Shopify with
    the app's client id and secret)."""
    if rt is None or rt.config.connector != "shopify":
        return False
    try:
        settings = rt.config.connector_settings()
    except Exception:
        return False
    return bool(settings.client_id and settings.client_secret is not None)


def build_views(ctx: ApiContext, ws: str, data: dict[str, Any], now: float) -> list[ConnectionView]:
    """The page's view of each connection (no secret in any of it)."""
    try:
        reg = ctx.registry()
    except Exception:
        log.exception("registry_unavailable")
        reg = None
    views = []
    for r in data["rows"]:
        rt = reg.connection(ws, r.name) if reg is not None else None
        secrets = rt.config.secret_values() if rt is not None else []
        try:
            stored = ctx.secret_box.decrypt_json(r.secrets)
            secrets += [str(v) for v in stored.values() if v]
        except Exception:
            pass

        def redact(text: str, rt: Any = rt, secrets: list[str] = secrets) -> str:
            if rt is not None:
                text = rt.redactor.text(text)
            return _scrub_text(text, secrets)

        v = ConnectionView(r.name, r.connector, r.source, r.updated_at)
        _version(v, rt, None)
        inbound = rt is not None and rt.can_receive()
        v.roles = []
        if inbound:
            v.roles.append("receives events")
        if rt is not None and (rt.config.poll is not None or rt.config.streams):
            v.roles.append("polled")
        if rt is not None and rt.can_write():
            v.roles.append("flows write to it")
        v.last_event = data["last_event"].get(r.name)
        v.health = _health(data["recent"][r.name], now, redact, inbound, v.last_event)
        v.last_success = data["last_success"].get(r.name)
        v.last_call = data["last_call"].get(r.name)
        v.hub_limit = _hub_limit(ctx, rt, data["buckets"].get(f"{ws}/{r.name}"), now)
        v.vendor_limit = _vendor_limit(rt)
        v.has_credentials_policy = rt is not None and rt.config.credentials is not None
        v.credentials = credential_status(
            rt.config if rt is not None else None, r.secrets_rotated_at, now
        )
        v.granted = data["granted"].get(r.name)
        v.installable = _installable(rt)
        shown = shown_settings(ctx, r.settings, r.secrets)
        v.settings_text = _scrub_text(
            json.dumps(shown, indent=2, sort_keys=True, default=str), secrets
        )
        views.append(v)
    return views


@router.get("/connections")
async def connections_page(page: Viewing) -> HTMLResponse:
    """Every connection of the workspace: version and sunset, health, last success,
    rate-limit headroom, credential status and masked settings."""
    page.nav = "connections"
    now = time.time()
    data = await page.ctx.db.read(lambda c: _read(c, page.workspace, now))
    views = build_views(page.ctx, page.workspace, data, now)
    return page.render(
        "connections.html",
        title="Connections",
        views=views,
        now=now,
        sunset_warn_days=SUNSET_WARN_DAYS,
        credential_warn_days=CREDENTIAL_WARN_DAYS,
    )
