"""Alerts keep their promises: rules fire once and resolve once (state in the database, so
a restart does not re-send), repeat at most every ``repeat``, retry failed sends; webhooks
verify with the official ``standardwebhooks`` package; e-mail reaches a real SMTP server;
secrets stay out of the stored config, the notifications and the logs."""

from __future__ import annotations

import asyncio
import base64
import email
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
import structlog
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from sqlalchemy import select, update
from standardwebhooks import Webhook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from typer.testing import CliRunner

from crossdock.alerts import (
    AlertEvaluator,
    alert_states_for,
    credential_status,
    firing_alerts,
)
from crossdock.cli import main as cli_main
from crossdock.cli.main import app as cli_app
from crossdock.emulators.serving import serving
from crossdock.project.config import CredentialsConfig, load_project, parse_project_text
from crossdock.project.yamlsrc import ConfigError
from crossdock.runtime.loader import apply_project, load_registry
from crossdock.security.crypto import SecretBox, generate_key
from crossdock.store.database import Database
from crossdock.store.migrate import upgrade
from crossdock.store.tables import alert_configs, alert_states, attempts, connections, deliveries

HOOK_SECRET = "whsec_" + base64.b64encode(b"crossdock-alert-hook-secret-0001").decode()
SMTP_USER = "alerts@acme.test"
SMTP_PASSWORD = "smtp-pass-7f3e9a1c55"
SHOP_TOKEN = "shpat_live_0123456789abcdef"
WMS_TOKEN = "wms-token-42abcdef9876"
SECRETS = (HOOK_SECRET, HOOK_SECRET.removeprefix("whsec_"), SMTP_PASSWORD, SHOP_TOKEN, WMS_TOKEN)
ENV = {
    "ALERT_HOOK_SECRET": HOOK_SECRET,
    "SMTP_PASSWORD": SMTP_PASSWORD,
    "SHOP_TOKEN": SHOP_TOKEN,
    "WMS_TOKEN": WMS_TOKEN,
}

ERROR_RULE = (
    "{name: wms-errors, when: error_rate, connection: wms, above: 0.05, window: 10m, "
    "min_calls: 20, notify: [ops-hook, ops-mail]}"
)


# --- a subscriber and a mail server on loopback ----------------------------------------


@dataclass
class Subscriber:
    """A Standard Webhooks subscriber: verifies every delivery with the official package."""

    url: str = ""
    fail: int = 0  # answer 503 to this many requests
    delay: float = 0.0  # seconds to wait before answering
    seen_ids: list[str] = field(default_factory=list)  # webhook-id of every request
    received: list[dict[str, Any]] = field(default_factory=list)  # verified payloads
    raw: list[str] = field(default_factory=list)
    rejected: int = 0

    def by_type(self, kind: str) -> list[dict[str, Any]]:
        return [p for p in self.received if p["type"] == kind]


def subscriber_app(sub: Subscriber) -> Starlette:
    async def hook(request: Request) -> Response:
        body = await request.body()
        sub.seen_ids.append(request.headers.get("webhook-id", ""))
        if sub.delay:
            await asyncio.sleep(sub.delay)
        if sub.fail > 0:
            sub.fail -= 1
            return Response(status_code=503)
        try:
            data = Webhook(HOOK_SECRET).verify(body, dict(request.headers))
        except Exception:
            sub.rejected += 1
            return Response(status_code=400)
        sub.raw.append(body.decode() + repr(dict(request.headers)))
        sub.received.append({**data, "_id": request.headers["webhook-id"]})
        return Response(status_code=204)

    return Starlette(routes=[Route("/hook", hook, methods=["POST"])])


@pytest.fixture
def subscriber() -> Iterator[Subscriber]:
    sub = Subscriber()
    with serving(subscriber_app(sub)) as srv:
        sub.url = f"{srv.url}/hook"
        yield sub


class MailBox:
    """An aiosmtpd handler keeping every message it accepts (after an AUTH login)."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.raw: list[str] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.raw.append(envelope.content.decode("utf-8", "replace"))
            self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


def _authenticator(
    server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (
        auth_data.login.decode() == SMTP_USER and auth_data.password.decode() == SMTP_PASSWORD
    )
    return AuthResult(success=ok, handled=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[tuple[MailBox, int]]:
    box = MailBox()
    port = _free_port()
    ctl = Controller(
        box,
        hostname="127.0.0.1",
        port=port,
        authenticator=_authenticator,
        auth_require_tls=False,
    )
    ctl.start()
    try:
        yield box, port
    finally:
        ctl.stop()


# --- a project with alerts, applied to a real database ----------------------------------


def project_yaml(
    hook_url: str,
    smtp_port: int,
    rules: str,
    *,
    expires_on: str = "2027-03-01",
    channels_extra: str = "",
    shop_token: str = "${SHOP_TOKEN}",
) -> str:
    return f"""\
version: 1
workspaces:
  acme:
    alerts:
      every_seconds: 0.5
      console_url: https://hub.acme.test
      channels:
        ops-hook: {{type: webhook, url: "{hook_url}", secret: "${{ALERT_HOOK_SECRET}}", timeout_seconds: 2}}
        ops-mail:
          type: email
          to: [ops@acme.test]
          from: crossdock@acme.test
          smtp: {{host: 127.0.0.1, port: {smtp_port}, starttls: false, username: {SMTP_USER}, password: "${{SMTP_PASSWORD}}"}}
{channels_extra}      rules:
{rules}
    connections:
      wms:
        connector: http
        outbound:
          base_url: http://127.0.0.1:9
          auth: {{type: bearer, token: "${{WMS_TOKEN}}"}}
          operations: {{create_order: {{method: POST, path: /orders}}}}
        credentials: {{rotate_every: 30d}}
      shop:
        connector: shopify
        settings: {{base_url: "http://127.0.0.1:9", shop_domain: acme.myshopify.com, access_token: "{shop_token}"}}
        credentials: {{expires_on: "{expires_on}", rotate_every: 90d}}
"""  # noqa: E501


def rules_block(*rules: str) -> str:
    return "".join(f"        - {r}\n" for r in rules)


@dataclass
class Env:
    db: Database
    box: SecretBox
    root: Path
    evaluator: AlertEvaluator
    registry: Any = None

    def apply(self, text: str) -> None:
        (self.root / "crossdock.yaml").write_text(text)
        apply_project(self.db, load_project(self.root, ENV), self.box)
        self.registry = load_registry(self.db, self.box, self.root)

    def states(self) -> list[dict[str, Any]]:
        return self.db.read_sync(lambda c: alert_states_for(c, "acme"))


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> Iterator[Env]:
    db = Database(database_url)
    upgrade(db)
    db.start()
    box = SecretBox([generate_key()])
    root = tmp_path / "p"
    (root / "flows").mkdir(parents=True)
    holder: dict[str, Any] = {}
    e = Env(db, box, root, AlertEvaluator(db, lambda: holder["env"].registry, box))
    holder["env"] = e
    try:
        yield e
    finally:
        db.close()


def add_attempts(db: Database, connection: str, ok: int, failed: int, at: float) -> None:
    rows = [
        {
            "workspace": "acme",
            "delivery_id": i + 1,
            "connection": connection,
            "correlation_id": f"c{i}",
            "started_at": at - 60 + i * 0.01,
            "latency_ms": 20.0,
            "method": "POST",
            "url": "http://127.0.0.1:9/orders",
            "status": 201 if i < ok else 503,
            "outcome": "success" if i < ok else "retryable",
        }
        for i in range(ok + failed)
    ]
    db.write_sync(lambda c: c.execute(attempts.insert(), rows))


def add_pending(db: Database, flow: str, count: int, created_at: float, first_id: int) -> None:
    rows = [
        {
            "workspace": "acme",
            "event_id": first_id + i,
            "flow": flow,
            "record_key": f"r{first_id + i}",
            "version_key": "1",
            "state": "pending",
            "next_attempt_at": created_at,
            "created_at": created_at,
            "updated_at": created_at,
        }
        for i in range(count)
    ]
    db.write_sync(lambda c: c.execute(deliveries.insert(), rows))


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def texts(mailbox: MailBox) -> list[str]:
    out = []
    for m in mailbox.messages:
        payload = m.get_payload(decode=True)
        assert isinstance(payload, bytes)
        out.append(f"{m['Subject']}\n{payload.decode()}")
    return out


# --- the rules -----------------------------------------------------------------------


def test_error_rate_alert_fires_once_then_resolves_verified_by_standardwebhooks(
    env: Env, subscriber: Subscriber, smtp: tuple[MailBox, int]
) -> None:
    mailbox, port = smtp
    env.apply(project_yaml(subscriber.url, port, rules_block(ERROR_RULE)))
    t0 = time.time()
    add_attempts(env.db, "wms", ok=20, failed=10, at=t0)

    first = run(env.evaluator.evaluate_once(now=t0))
    assert [(o.notice.type, o.channels) for o in first] == [
        ("alert.firing", {"ops-hook": "ok", "ops-mail": "ok"})
    ]
    # Every delivery verified with the official package; the payload says it all.
    assert subscriber.rejected == 0 and len(subscriber.received) == 1
    body = subscriber.received[0]
    assert body["type"] == "alert.firing"
    assert datetime.fromisoformat(body["timestamp"].replace("Z", "+00:00"))
    data = body["data"]
    assert data["workspace"] == "acme" and data["rule"] == "wms-errors"
    assert data["when"] == "error_rate" and data["subject"] == "wms"
    assert data["value"] == pytest.approx(10 / 30, rel=1e-4) and data["threshold"] == 0.05
    assert "10 of 30 calls to connection 'wms' failed" in data["summary"]
    assert data["console_url"] == "https://hub.acme.test/console/w/acme/"
    # The e-mail reached the SMTP server, in plain words: what, where, value, what to do.
    assert len(mailbox.messages) == 1
    mail = texts(mailbox)[0]
    assert "FIRING acme: wms-errors (wms)" in mail
    assert "33.3 %; the rule fires above 5.0 %" in mail and "What to do:" in mail
    assert mailbox.messages[0]["To"] == "ops@acme.test"
    assert [s["state"] for s in firing_alerts_now(env)] == ["firing"]

    # Still firing: nothing is re-sent at each evaluation.
    assert run(env.evaluator.evaluate_once(now=t0 + 30)) == []
    assert run(env.evaluator.evaluate_once(now=t0 + 60)) == []
    assert len(subscriber.received) == 1 and len(mailbox.messages) == 1

    # The failures leave the 10-minute window: resolved, once.
    resolved = run(env.evaluator.evaluate_once(now=t0 + 700))
    assert [o.notice.type for o in resolved] == ["alert.resolved"]
    assert [p["type"] for p in subscriber.received] == ["alert.firing", "alert.resolved"]
    assert "RESOLVED acme: wms-errors (wms)" in texts(mailbox)[1]
    assert run(env.evaluator.evaluate_once(now=t0 + 730)) == []
    assert len(subscriber.received) == 2 and len(mailbox.messages) == 2
    assert firing_alerts_now(env) == []
    assert len(set(subscriber.seen_ids)) == 2  # two messages, two ids


def firing_alerts_now(env: Env) -> list[dict[str, Any]]:
    return env.db.read_sync(lambda c: firing_alerts(c, "acme"))


def test_a_restart_does_not_resend_a_firing_alert(
    env: Env, subscriber: Subscriber, smtp: tuple[MailBox, int]
) -> None:
    env.apply(project_yaml(subscriber.url, smtp[1], rules_block(ERROR_RULE)))
    t0 = time.time()
    add_attempts(env.db, "wms", ok=0, failed=25, at=t0)
    assert len(run(env.evaluator.evaluate_once(now=t0))) == 1
    restarted = AlertEvaluator(env.db, lambda: env.registry, env.box)
    assert run(restarted.evaluate_once(now=t0 + 40)) == []
    assert len(subscriber.received) == 1 and len(smtp[0].messages) == 1


def test_a_firing_alert_repeats_at_most_every_repeat_interval(
    env: Env, subscriber: Subscriber, smtp: tuple[MailBox, int]
) -> None:
    rule = (
        ERROR_RULE.replace("notify:", "repeat: 1h, notify:")
        .replace(", ops-mail", "")
        .replace("window: 10m", "window: 2h")
    )
    env.apply(project_yaml(subscriber.url, smtp[1], rules_block(rule)))
    t0 = time.time()
    add_attempts(env.db, "wms", ok=0, failed=25, at=t0)
    run(env.evaluator.evaluate_once(now=t0))
    assert run(env.evaluator.evaluate_once(now=t0 + 3599)) == []
    again = run(env.evaluator.evaluate_once(now=t0 + 3600))
    assert [o.notice.type for o in again] == ["alert.firing"]
    assert run(env.evaluator.evaluate_once(now=t0 + 3610)) == []
    firing = subscriber.by_type("alert.firing")
    assert len(firing) == 2 and firing[0]["_id"] != firing[1]["_id"]
    # The reminder still says when the alert began.
    assert firing[0]["data"]["since"] == firing[1]["data"]["since"]


def test_a_failed_send_is_retried_at_the_next_evaluation_with_the_same_id(
    env: Env, subscriber: Subscriber, smtp: tuple[MailBox, int]
) -> None:
    env.apply(project_yaml(subscriber.url, smtp[1], rules_block(ERROR_RULE)))
    t0 = time.time()
    add_attempts(env.db, "wms", ok=0, failed=25, at=t0)
    subscriber.fail = 3  # 503 three times: the first evaluation's three tries fail
    out = run(env.evaluator.evaluate_once(now=t0))
    assert out[0].channels["ops-mail"] == "ok"
    assert "answered HTTP 503 (after 3 attempts)" in out[0].channels["ops-hook"]
    assert len(subscriber.seen_ids) == 3 and len(set(subscriber.seen_ids)) == 1
    state = env.states()[0]
    assert state["state"] == "firing" and state["notified_at"] is None  # still owed

    retry = run(env.evaluator.evaluate_once(now=t0 + 30))
    assert retry[0].channels == {"ops-hook": "ok", "ops-mail": "ok"}
    assert subscriber.received[0]["_id"] == subscriber.seen_ids[0]  # the same message
    assert len(smtp[0].messages) == 1  # the mail that went out is not sent twice
    assert env.states()[0]["notified_at"] == t0 + 30
    assert run(env.evaluator.evaluate_once(now=t0 + 60)) == []


def test_backlog_and_lag_rules_fire_per_flow(
    env: Env, subscriber: Subscriber, smtp: tuple[MailBox, int]
) -> None:
    rules = rules_block(
        "{name: backlog, when: backlog, above: 5, notify: [ops-hook]}",
        "{name: lag, when: lag, above: 5m, notify: [ops-hook]}",
        "{name: invoices-backlog, when: backlog, flow: invoices, above: 0, notify: [ops-hook]}",
    )
    env.apply(project_yaml(subscriber.url, smtp[1], rules))
    t0 = time.time()
    add_pending(env.db, "orders", 6, t0 - 600, first_id=1)  # 6 waiting, the oldest 10 min
    add_pending(env.db, "stock", 2, t0 - 10, first_id=100)
    out = run(env.evaluator.evaluate_once(now=t0))
    fired = sorted((o.notice.rule, o.notice.subject) for o in out)
    assert fired == [("backlog", "orders"), ("lag", "orders")]
    lag = subscriber.by_type("alert.firing")
    lag_data = next(p["data"] for p in lag if p["data"]["rule"] == "lag")
    assert lag_data["value"] == pytest.approx(600, abs=1) and lag_data["threshold"] == 300
    assert "has waited 10 min" in lag_data["summary"]
    states = {(s["rule"], s["subject"]): s["state"] for s in env.states()}
    assert states[("backlog", "stock")] == "ok" and states[("lag", "stock")] == "ok"
    assert states[("invoices-backlog", "invoices")] == "ok"

    # The deliveries go out: both resolve.
    env.db.write_sync(lambda c: c.execute(update(deliveries).values(state="succeeded")))
    out = run(env.evaluator.evaluate_once(now=t0 + 30))
    assert sorted(o.notice.type for o in out) == ["alert.resolved", "alert.resolved"]


def test_credential_expiry_and_rotation_due_fire_and_apply_keeps_the_rotation_date(
    env: Env, subscriber: Subscriber, smtp: tuple[MailBox, int]
) -> None:
    mailbox, port = smtp
    soon = (datetime.now(UTC).date() + timedelta(days=10)).isoformat()
    rules = rules_block("{name: creds, when: credential_expiry, within: 14d, notify: [ops-mail]}")
    text = project_yaml(subscriber.url, port, rules, expires_on=soon)
    env.apply(text)

    def rotated() -> dict[str, float]:
        rows = env.db.read_sync(
            lambda c: c.execute(select(connections.c.name, connections.c.secrets_rotated_at))
        )
        return {r.name: r.secrets_rotated_at for r in rows}

    first = rotated()
    assert first["shop"] and first["wms"]
    env.apply(text)  # same secrets: the dates stay
    assert rotated() == first
    # The WMS token was last changed 40 days ago; it is rotated every 30 days.
    forty_days_ago = time.time() - 40 * 86400
    env.db.write_sync(
        lambda c: c.execute(
            update(connections)
            .where(connections.c.name == "wms")
            .values(secrets_rotated_at=forty_days_ago)
        )
    )
    out = run(env.evaluator.evaluate_once())
    by_subject = {o.notice.subject: o.notice for o in out}
    assert set(by_subject) == {"shop", "wms"}
    assert f"expire on {soon} (in 10 days)" in by_subject["shop"].summary
    assert by_subject["shop"].value == 10
    assert "were due for rotation on" in by_subject["wms"].summary
    assert "(10 days ago" in by_subject["wms"].summary
    assert by_subject["wms"].value == -10
    assert len(mailbox.messages) == 2 and all("What to do:" in t for t in texts(mailbox))

    # A new WMS token on apply: rotated now, so the rotation alert resolves.
    env.apply(text.replace('"${WMS_TOKEN}"', "wms-token-NEW-0000000000"))
    assert rotated()["wms"] > forty_days_ago + 39 * 86400 and rotated()["shop"] == first["shop"]
    out = run(env.evaluator.evaluate_once())
    assert [(o.notice.type, o.notice.subject) for o in out] == [("alert.resolved", "wms")]


def test_credential_status_says_expiry_and_rotation_due() -> None:
    day = 86400.0
    now = datetime(2026, 11, 30, 12, tzinfo=UTC).timestamp()
    creds = CredentialsConfig.model_validate({"expires_on": "2026-12-10", "rotate_every": "90d"})
    st = credential_status(creds, now - 100 * day, now)
    assert st["expires_on"] == "2026-12-10" and st["days_left"] == 10 and not st["expired"]
    assert st["rotated_at"] == now - 100 * day
    assert st["rotation_due_on"] == "2026-11-20" and st["rotation_due"] is True
    fresh = credential_status(creds, now - day, now)
    assert fresh["rotation_due"] is False and fresh["rotation_due_on"] == "2027-02-27"
    none = credential_status(None, None, now)
    assert none == {
        "expires_on": None,
        "days_left": None,
        "expired": False,
        "rotated_at": None,
        "rotation_due_on": None,
        "rotation_days_left": None,
        "rotation_due": False,
    }


def test_api_sunset_rule_fires_for_the_shopify_version_past_its_sunset(
    env: Env, subscriber: Subscriber, smtp: tuple[MailBox, int]
) -> None:
    rules = rules_block("{name: sunset, when: api_sunset, within: 60d, notify: [ops-hook]}")
    env.apply(project_yaml(subscriber.url, smtp[1], rules))
    now = datetime(2026, 11, 30, 12, tzinfo=UTC).timestamp()
    out = run(env.evaluator.evaluate_once(now=now))
    assert [(o.notice.subject, o.notice.value) for o in out] == [("shop", -333.0)]
    data = subscriber.received[0]["data"]
    assert data["when"] == "api_sunset" and data["threshold"] == 60
    assert "Shopify API version 2025-01, which passed its sunset on 2026-01-01" in data["summary"]
    # Months before the sunset the rule stays quiet; the http connector has no sunset.
    early = datetime(2025, 6, 1, tzinfo=UTC).timestamp()
    fresh = AlertEvaluator(env.db, lambda: env.registry, env.box)
    env.db.write_sync(lambda c: c.execute(alert_states.delete()))
    assert run(fresh.evaluate_once(now=early)) == []
    assert [(s["subject"], s["state"]) for s in env.states()] == [("shop", "ok")]


# --- configuration --------------------------------------------------------------------


def test_alert_config_errors_name_the_line_unknown_channel_and_bad_duration() -> None:
    text = project_yaml(
        "https://ops.acme.test/hook",
        2525,
        rules_block(
            "{name: a, when: error_rate, connection: wms, above: 0.05, notify: [ops-hok]}",
            "{name: b, when: lag, above: 5 minutes, notify: [ops-hook]}",
            "{name: c, when: credential_expiry, within: 14d, connection: nope, notify: [ops-mail]}",
            "{name: d, when: backlog, notify: [ops-hook]}",
        ),
    )
    with pytest.raises(ConfigError) as info:
        parse_project_text(text, "crossdock.yaml", Path("/tmp/p"), ENV)
    lines = text.splitlines()
    got = {(i.line, i.message) for i in info.value.issues}

    def line_of(fragment: str) -> int:
        return next(n for n, ln in enumerate(lines, 1) if fragment in ln)

    assert (
        line_of("name: a,"),
        "unknown channel 'ops-hok' — did you mean 'ops-hook'?",
    ) in got
    assert (line_of("name: b,"), "'5 minutes' is not a duration") in got
    assert (line_of("name: c,"), "unknown connection 'nope'") in got
    assert (line_of("name: d,"), "a 'backlog' rule needs 'above'") in got
    text_all = str(info.value)
    assert "expected one of: ops-hook, ops-mail" in text_all
    assert all(s not in text_all for s in SECRETS)


def test_a_bad_webhook_secret_is_reported_without_echoing_it() -> None:
    text = project_yaml("https://ops.acme.test/hook", 2525, rules_block(ERROR_RULE))
    with pytest.raises(ConfigError) as info:
        parse_project_text(
            text, "crossdock.yaml", Path("/tmp/p"), {**ENV, "ALERT_HOOK_SECRET": "not base64!!"}
        )
    assert "not a Standard Webhooks secret" in str(info.value)
    assert "not base64!!" not in str(info.value)
    line = next(n for n, ln in enumerate(text.splitlines(), 1) if "ops-hook: {type" in ln)
    assert [i.line for i in info.value.issues] == [line]


def test_secrets_stay_out_of_stored_config_notifications_and_logs(
    env: Env, subscriber: Subscriber, smtp: tuple[MailBox, int]
) -> None:
    mailbox, port = smtp
    broken = (
        "        bad-mail: {type: email, to: [ops@acme.test], from: crossdock@acme.test, "
        f"smtp: {{host: 127.0.0.1, port: {port}, starttls: false, username: {SMTP_USER}, "
        'password: "${SMTP_PASSWORD}-wrong"}}\n'
    )
    rule = ERROR_RULE.replace("ops-mail]", "ops-mail, bad-mail]")
    sunset = "{name: sunset, when: api_sunset, within: 60d, notify: [ops-hook, ops-mail]}"
    env.apply(project_yaml(subscriber.url, port, rules_block(rule, sunset), channels_extra=broken))
    stored = env.db.read_sync(lambda c: c.execute(select(alert_configs)).one())
    assert all(s not in stored.config for s in SECRETS)
    assert all(s not in stored.secrets for s in SECRETS)  # encrypted
    assert "ops-hook" in stored.config and SMTP_USER in stored.config

    t0 = time.time()
    add_attempts(env.db, "wms", ok=0, failed=30, at=t0)
    with structlog.testing.capture_logs() as logs:
        out = run(env.evaluator.evaluate_once(now=t0))
    failed = {o.notice.rule: o.channels for o in out}["wms-errors"]
    assert "refused the login" in failed["bad-mail"]
    assert any(e["event"] == "alert_notification_failed" for e in logs)
    everything = repr(logs) + repr(out) + "".join(subscriber.raw) + "".join(mailbox.raw)
    assert subscriber.received and mailbox.messages
    for secret in (*SECRETS, SMTP_PASSWORD + "-wrong"):
        assert secret not in everything


# --- the loop and the CLI ---------------------------------------------------------------


def test_the_evaluator_loop_evaluates_on_its_interval_and_stops(
    env: Env, subscriber: Subscriber, smtp: tuple[MailBox, int]
) -> None:
    env.apply(project_yaml(subscriber.url, smtp[1], rules_block(ERROR_RULE)))
    add_attempts(env.db, "wms", ok=0, failed=25, at=time.time())

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(env.evaluator.run(stop))
        deadline = time.monotonic() + 10
        while not subscriber.received and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.2)  # a few more rounds (every 0.5 s): nothing re-sent
        stop.set()
        await asyncio.wait_for(task, 5)

    run(main())
    assert len(subscriber.received) == 1 and len(smtp[0].messages) == 1


def test_a_slow_subscriber_does_not_hold_up_a_shutdown_and_is_retried_after(
    env: Env, subscriber: Subscriber, smtp: tuple[MailBox, int]
) -> None:
    rule = ERROR_RULE.replace(", ops-mail", "")
    env.apply(project_yaml(subscriber.url, smtp[1], rules_block(rule)))
    add_attempts(env.db, "wms", ok=0, failed=25, at=time.time())
    subscriber.delay = 1.5  # within the channel's 2 s timeout, but slower than the stop

    async def main() -> float:
        stop = asyncio.Event()
        task = asyncio.create_task(env.evaluator.run(stop))
        while not subscriber.seen_ids:
            await asyncio.sleep(0.01)
        started = time.monotonic()
        stop.set()
        await asyncio.wait_for(task, 5)
        return time.monotonic() - started

    assert run(main()) < 1.0
    assert env.states()[0]["notified_at"] is None  # owed: sent by the next evaluator
    subscriber.delay = 0
    restarted = AlertEvaluator(env.db, lambda: env.registry, env.box)
    out = run(restarted.evaluate_once())
    assert [o.delivered for o in out] == [True]
    assert subscriber.received[-1]["_id"] == subscriber.seen_ids[0]


runner = CliRunner()


def test_cli_alerts_test_sends_through_every_channel_and_says_which_worked(
    tmp_path: Path,
    subscriber: Subscriber,
    smtp: tuple[MailBox, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    dead = f"        dead-hook: {{type: webhook, url: 'http://127.0.0.1:{_free_port()}/x', secret: \"${{ALERT_HOOK_SECRET}}\", timeout_seconds: 1}}\n"  # noqa: E501
    root = tmp_path / "p"
    root.mkdir()
    (root / "crossdock.yaml").write_text(
        project_yaml(subscriber.url, smtp[1], rules_block(ERROR_RULE), channels_extra=dead)
    )
    monkeypatch.setattr(cli_main.console, "width", 200)
    result = runner.invoke(cli_app, ["alerts", "test", "-p", str(root)])
    assert result.exit_code == 1, result.output
    out = " ".join(result.output.replace("│", " ").split())
    assert "ops-hook webhook sent" in out and "ops-mail email sent" in out
    assert "dead-hook webhook failed cannot reach 127.0.0.1" in out
    assert [p["type"] for p in subscriber.received] == ["alert.test"]
    assert "TEST acme: test" in texts(smtp[0])[0] and "If you read this" in texts(smtp[0])[0]
    assert all(s not in result.output for s in SECRETS)


def test_cli_alerts_list_shows_each_rule_and_its_state(
    env: Env,
    database_url: str,
    subscriber: Subscriber,
    smtp: tuple[MailBox, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("CROSSDOCK_DATABASE_URL", database_url)
    backlog = "{name: backlog, when: backlog, above: 5, notify: [ops-hook]}"
    env.apply(project_yaml(subscriber.url, smtp[1], rules_block(ERROR_RULE, backlog)))
    add_attempts(env.db, "wms", ok=0, failed=25, at=time.time())
    run(env.evaluator.evaluate_once())
    monkeypatch.setattr(cli_main.console, "width", 200)
    result = runner.invoke(cli_app, ["alerts", "list", "-p", str(env.root)])
    assert result.exit_code == 0, result.output
    rows = [" ".join(line.replace("│", " ").split()) for line in result.output.splitlines()]
    assert any("wms-errors error_rate wms firing 100.0 % 5.0 %" in r for r in rows), rows
    assert any("backlog backlog - not evaluated yet" in r for r in rows), rows
