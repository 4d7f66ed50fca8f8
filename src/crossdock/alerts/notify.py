"""Alert notifications: the message, and the two channels that carry it.

- **webhook**: a Standard Webhooks delivery (https://www.standardwebhooks.com): a JSON
  body ``{"type", "timestamp", "data"}`` POSTed with ``webhook-id``, ``webhook-timestamp``
  and ``webhook-signature`` (signed with the official ``standardwebhooks`` package). A 5xx,
  429, timeout or connection error is retried twice with back-off; the ``webhook-id``
  stays the same across retries (and across evaluations of the same message), so a
  subscriber can drop duplicates.
- **email**: a plain-text message in plain words over SMTP (stdlib ``smtplib`` in a
  thread), with STARTTLS or TLS and an optional login.

A notification never carries a secret: it is built from names and figures only, and the
reasons of failed sends are scrubbed of the channel's secret values before they are
shown or logged.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import smtplib
import ssl
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any
from urllib.parse import urlsplit

import httpx

from crossdock.project.config import AlertChannel, EmailChannel, WebhookChannel
from crossdock.security.redact import Redactor

__all__ = [
    "UNITS",
    "Notice",
    "SendError",
    "email_text",
    "format_value",
    "message_id",
    "payload",
    "send",
    "send_email",
    "send_webhook",
]

#: The unit of a rule's value and threshold, by kind of rule.
UNITS = {
    "error_rate": "ratio",
    "backlog": "deliveries",
    "lag": "seconds",
    "credential_expiry": "days",
    "api_sunset": "days",
    "test": "",
}

_WHAT_TO_DO = {
    "error_rate": (
        "Open the connection in the console and read the failed attempts: the answers say "
        "whether the system is down, the credentials were refused or the data was rejected. "
        "Deliveries are retried on their own; those that cannot succeed wait in the "
        "exception queue."
    ),
    "backlog": (
        "Check that the workers are running and that the destination answers (its error "
        "rate, a rate limit, an outage). Nothing is lost: waiting deliveries go out as soon "
        "as the destination takes them."
    ),
    "lag": (
        "Check that the workers are running and that the destination answers. A delivery "
        "held back by an earlier one for the same record waits for it: look at the "
        "exception queue for the record that blocks the others."
    ),
    "credential_expiry": (
        "Create new credentials at the vendor, put them in crossdock.yaml (or the "
        "environment variables it names) and apply the project. The hub keeps the date "
        "of the change."
    ),
    "api_sunset": (
        "Upgrade Crossdock to a release whose connector speaks a newer version of the "
        "vendor's API before the old one stops answering."
    ),
    "test": "Nothing: this is a test sent by 'crossdock alerts test'.",
}


class SendError(Exception):
    """A notification could not be delivered; the message is plain and has no secrets."""


@dataclass(frozen=True)
class Notice:
    """One notification: what happened, where, the figures, and a stable id."""

    type: str  # alert.firing | alert.resolved | alert.test
    workspace: str
    rule: str
    when: str
    subject: str
    value: float | None
    threshold: float | None
    summary: str
    since: float
    at: float
    id: str
    console_url: str | None = None


def message_id(*parts: Any) -> str:
    """A stable ``msg_...`` id for the same message (retries keep it)."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()
    return "msg_" + digest[:32]


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def payload(notice: Notice) -> dict[str, Any]:
    """The Standard Webhooks body: ``{"type", "timestamp", "data"}``."""
    data: dict[str, Any] = {
        "workspace": notice.workspace,
        "rule": notice.rule,
        "when": notice.when,
        "subject": notice.subject,
        "value": notice.value,
        "threshold": notice.threshold,
        "unit": UNITS.get(notice.when, ""),
        "since": _iso(notice.since),
        "summary": notice.summary,
    }
    if notice.console_url:
        data["console_url"] = notice.console_url
    return {"type": notice.type, "timestamp": _iso(notice.at), "data": data}


def _duration_text(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    parts = []
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            parts.append(f"{seconds // size} {unit}")
            seconds %= size
    return " ".join(parts[:2])


def format_value(when: str, value: float | None) -> str:
    """A rule's value (or threshold) in words: ``7.5 %``, ``612 deliveries``, ``5 min``."""
    if value is None:
        return "no value"
    if when == "error_rate":
        return f"{value * 100:.1f} %"
    if when == "backlog":
        return f"{value:g} deliveries"
    if when == "lag":
        return _duration_text(value)
    if when in ("credential_expiry", "api_sunset"):
        return f"{value:g} days"
    return f"{value:g}"


def _comparison(notice: Notice) -> str:
    v = format_value(notice.when, notice.value)
    t = format_value(notice.when, notice.threshold)
    if notice.when in ("credential_expiry", "api_sunset"):
        return f"{v} left; the rule warns {t} ahead"
    return f"{v}; the rule fires above {t}"


def _status_word(notice: Notice) -> str:
    return {"alert.firing": "FIRING", "alert.resolved": "RESOLVED"}.get(notice.type, "TEST")


def email_subject(notice: Notice, prefix: str) -> str:
    """``[Crossdock] FIRING acme: wms-errors (wms)``."""
    where = f" ({notice.subject})" if notice.subject else ""
    return f"{prefix} {_status_word(notice)} {notice.workspace}: {notice.rule}{where}".strip()


def email_text(notice: Notice) -> str:
    """The plain-text body: what, where, the value against the threshold, what to do."""
    if notice.type == "alert.resolved":
        headline = f"Resolved: {notice.summary}"
        todo = "Nothing: the condition is back within the rule's limit."
    elif notice.type == "alert.test":
        headline = notice.summary
        todo = _WHAT_TO_DO["test"]
    else:
        headline = notice.summary
        todo = _WHAT_TO_DO.get(notice.when, "Look at the console.")
    lines = [
        headline,
        "",
        f"What:   rule '{notice.rule}' ({notice.when.replace('_', ' ')})",
        f"Where:  workspace '{notice.workspace}'"
        + (f", {notice.subject}" if notice.subject else ""),
    ]
    if notice.type != "alert.test":
        lines.append(f"Value:  {_comparison(notice)}")
        lines.append(f"Since:  {_iso(notice.since)}")
    lines += ["", "What to do:", todo]
    if notice.console_url:
        lines += ["", f"Console: {notice.console_url}"]
    lines += ["", f"-- Crossdock ({notice.id})"]
    return "\n".join(lines) + "\n"


def _where(url: str) -> str:
    parts = urlsplit(url)
    return parts.hostname + (f":{parts.port}" if parts.port else "") if parts.hostname else "?"


async def send_webhook(
    client: httpx.AsyncClient,
    channel: WebhookChannel,
    notice: Notice,
    *,
    attempts: int = 3,
    backoff: float = 0.5,
) -> None:
    """POST ``notice`` as a Standard Webhook; raise :class:`SendError` when it fails."""
    from standardwebhooks import Webhook

    body = json.dumps(payload(notice), separators=(",", ":"), ensure_ascii=False)
    signer = Webhook(channel.secret.get_secret_value())
    where = _where(channel.url)
    reason = ""
    for attempt in range(1, attempts + 1):
        stamp = datetime.fromtimestamp(int(time.time()), UTC)
        headers = {
            "content-type": "application/json",
            "user-agent": "Crossdock-Alerts",
            "webhook-id": notice.id,
            "webhook-timestamp": str(int(stamp.timestamp())),
            "webhook-signature": signer.sign(notice.id, stamp, body),
        }
        try:
            r = await client.post(
                channel.url,
                content=body.encode(),
                headers=headers,
                timeout=channel.timeout_seconds,
            )
        except httpx.TimeoutException:
            reason = f"no answer from {where} within {channel.timeout_seconds:g} s"
        except httpx.TransportError as exc:
            reason = f"cannot reach {where} ({type(exc).__name__})"
        else:
            if 200 <= r.status_code < 300:
                return
            reason = f"{where} answered HTTP {r.status_code}"
            if r.status_code < 500 and r.status_code not in (408, 429):
                raise SendError(reason)  # the subscriber refused it: retrying will not help
        if attempt < attempts:
            await asyncio.sleep(backoff * 2 ** (attempt - 1))
    raise SendError(f"{reason} (after {attempts} attempts)")


def _send_email_sync(channel: EmailChannel, notice: Notice) -> None:
    smtp = channel.smtp
    msg = EmailMessage()
    msg["Subject"] = email_subject(notice, channel.subject_prefix)
    msg["From"] = channel.sender
    msg["To"] = ", ".join(channel.to)
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = make_msgid(idstring=notice.id, domain="crossdock.alerts")
    msg["X-Crossdock-Alert"] = notice.id
    msg.set_content(email_text(notice))
    client: smtplib.SMTP
    if smtp.ssl:
        client = smtplib.SMTP_SSL(
            smtp.host,
            smtp.port,
            timeout=smtp.timeout_seconds,
            context=ssl.create_default_context(),
        )
    else:
        client = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout_seconds)
    with client:
        if smtp.starttls and not smtp.ssl:
            client.starttls(context=ssl.create_default_context())
        if smtp.username:
            password = smtp.password.get_secret_value() if smtp.password else ""
            client.login(smtp.username, password)
        client.send_message(msg)


async def send_email(channel: EmailChannel, notice: Notice) -> None:
    """Send ``notice`` as a plain-text e-mail; raise :class:`SendError` when it fails."""
    smtp = channel.smtp
    where = f"{smtp.host}:{smtp.port}"
    red = Redactor([smtp.password] if smtp.password else [])
    try:
        await asyncio.to_thread(_send_email_sync, channel, notice)
    except smtplib.SMTPAuthenticationError as exc:
        raise SendError(
            f"the SMTP server {where} refused the login (code {exc.smtp_code}): "
            "check smtp.username and smtp.password"
        ) from None
    except smtplib.SMTPRecipientsRefused:
        raise SendError(f"the SMTP server {where} refused the recipients") from None
    except smtplib.SMTPResponseException as exc:
        text = (
            exc.smtp_error.decode("utf-8", "replace")
            if isinstance(exc.smtp_error, bytes)
            else str(exc.smtp_error)
        )
        raise SendError(
            red.value(f"the SMTP server {where} answered {exc.smtp_code} {text}")[:300]
        ) from None
    except smtplib.SMTPNotSupportedError:
        raise SendError(
            f"the SMTP server {where} does not offer what the channel asks for "
            "(STARTTLS or login): check smtp.starttls and smtp.username"
        ) from None
    except (smtplib.SMTPException, ssl.SSLError) as exc:
        raise SendError(red.value(f"SMTP to {where} failed: {type(exc).__name__}")) from None
    except TimeoutError:
        raise SendError(f"no answer from the SMTP server {where}") from None
    except OSError as exc:
        raise SendError(
            f"cannot reach the SMTP server {where} ({exc.strerror or type(exc).__name__})"
        ) from None


async def send(client: httpx.AsyncClient, channel: AlertChannel, notice: Notice) -> None:
    """Deliver ``notice`` through ``channel`` (raises :class:`SendError`)."""
    if isinstance(channel, WebhookChannel):
        await send_webhook(client, channel, notice)
    else:
        await send_email(channel, notice)
