"""Shopify webhooks: ``orders/create``, ``orders/updated``, ``orders/cancelled``.

Verification follows Shopify's own library: a delivery missing the HMAC, topic, shop
domain, API version or webhook id is rejected; the HMAC is base64(HMAC-SHA256(app client
secret, raw body)) compared in constant time. Both header styles are accepted:
``X-Shopify-Topic`` and the newer ``Shopify-Topic``. ``X-Shopify-Event-Id`` becomes the
event id the hub deduplicates on (the same event delivered twice keeps it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from crossdock.sdk.errors import SignatureRejected
from crossdock.sdk.events import IncomingEvent
from crossdock.sdk.webhooks import WebhookHandler, check_hmac

from .mappers import order_from_rest, utc_version

__all__ = ["TOPIC_EVENTS", "ShopifyWebhooks", "shopify_header"]

TOPIC_EVENTS: dict[str, str] = {
    "orders/create": "order.created",
    "orders/updated": "order.updated",
    "orders/cancelled": "order.cancelled",
}
"""Topics the connector turns into events; other topics are acknowledged and ignored."""

REQUIRED = ("hmac-sha256", "topic", "shop-domain", "api-version", "webhook-id")


def shopify_header(headers: Mapping[str, str], name: str) -> str | None:
    """``X-Shopify-{name}`` or the newer ``Shopify-{name}`` (names lower-case)."""
    return headers.get(f"x-shopify-{name}") or headers.get(f"shopify-{name}") or None


class ShopifyWebhooks(WebhookHandler):
    """Verify and parse Shopify order webhooks."""

    def verify(self, headers: Mapping[str, str], raw: bytes) -> None:
        missing = [f"X-Shopify-{n}" for n in REQUIRED if not shopify_header(headers, n)]
        if missing:
            raise SignatureRejected(f"required Shopify header(s) missing: {', '.join(missing)}")
        secret = self.connector.settings.client_secret
        if secret is None:
            raise SignatureRejected(
                "the connection has no client_secret to check Shopify's signature with"
            )
        check_hmac(
            secret.get_secret_value(),
            raw,
            shopify_header(headers, "hmac-sha256"),
            header="X-Shopify-Hmac-Sha256",
        )
        shop = (shopify_header(headers, "shop-domain") or "").lower()
        expected = self.connector.settings.shop_domain.lower()
        if expected and shop != expected:
            raise SignatureRejected(
                f"the delivery is for shop {shop}, but this connection is {expected}"
            )

    def parse(self, headers: Mapping[str, str], raw: bytes) -> list[IncomingEvent]:
        topic = (shopify_header(headers, "topic") or "").lower()
        event_type = TOPIC_EVENTS.get(topic)
        if event_type is None:
            return []
        try:
            body: Any = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise SignatureRejected("the body is not JSON") from exc
        if not isinstance(body, dict) or "id" not in body:
            raise SignatureRejected("the body is not a Shopify order")
        record = order_from_rest(body, self.connector.connection)
        event_id = shopify_header(headers, "event-id") or shopify_header(headers, "webhook-id")
        return [
            IncomingEvent(
                type=event_type,
                record_key=record["id"],
                record=record,
                version=utc_version(body.get("updated_at")),
                event_id=event_id,
                headers={
                    "topic": topic,
                    "webhook_id": shopify_header(headers, "webhook-id") or "",
                    "api_version": shopify_header(headers, "api-version") or "",
                },
            )
        ]
