"""Webhook handlers: verify, answer handshakes, parse into canonical events.

The hub's receiver calls, in order: :meth:`WebhookHandler.handshake` (a ping that must
be answered 200 and is not an event, e.g. WooCommerce's ``webhook_id=N``),
:meth:`WebhookHandler.prepare` (async: fetch rotated keys),
:meth:`WebhookHandler.verify` (signature and required headers, constant-time; raise
:class:`~crossdock.sdk.errors.SignatureRejected`), then :meth:`WebhookHandler.parse`.
Only after the events are committed does the vendor get its 2xx.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from crossdock.sdk.errors import SignatureRejected
from crossdock.sdk.events import IncomingEvent

__all__ = ["WebhookHandler", "WebhookReply", "check_hmac", "require_headers"]


@dataclass(frozen=True)
class WebhookReply:
    """An answer the handler gives itself (handshakes), without storing an event."""

    status: int = 200
    body: dict[str, Any] = field(default_factory=dict)


def require_headers(headers: Mapping[str, str], names: tuple[str, ...]) -> None:
    """Reject a delivery missing any required header (names lower-case)."""
    missing = [n for n in names if not headers.get(n)]
    if missing:
        raise SignatureRejected(f"required header(s) missing: {', '.join(missing)}")


def check_hmac(
    secret: str | bytes,
    body: bytes,
    given: str | None,
    *,
    encoding: str = "base64",
    header: str = "signature",
) -> None:
    """HMAC-SHA256 of ``body`` compared in constant time with ``given``."""
    if not given:
        raise SignatureRejected(f"the {header} header is missing")
    key = secret.encode() if isinstance(secret, str) else secret
    digest = hmac.new(key, body, hashlib.sha256).digest()
    expected = digest.hex() if encoding == "hex" else base64.b64encode(digest).decode()
    if not hmac.compare_digest(expected.encode(), given.strip().encode()):
        raise SignatureRejected(f"the {header} header does not match the body")


class WebhookHandler:
    """Base of a connector's webhook handler (headers arrive with lower-case names)."""

    max_body_bytes: int = 1024 * 1024

    def __init__(self, connector: Any) -> None:
        self.connector = connector

    def handshake(self, headers: Mapping[str, str], raw: bytes) -> WebhookReply | None:
        """A reply for a ping/handshake that is not an event; ``None`` for real events."""
        return None

    async def prepare(self, headers: Mapping[str, str], raw: bytes) -> None:
        """Fetch what :meth:`verify` needs without blocking (e.g. a vendor's rotated
        public keys); called by the receiver before ``verify``. Default: nothing."""

    def verify(self, headers: Mapping[str, str], raw: bytes) -> None:
        """Raise :class:`SignatureRejected` unless the delivery is authentic."""
        raise NotImplementedError

    def parse(self, headers: Mapping[str, str], raw: bytes) -> list[IncomingEvent]:
        """The delivery's events, records mapped to the canonical model. An empty list
        acknowledges a delivery that carries nothing the hub uses (unknown topic)."""
        raise NotImplementedError
