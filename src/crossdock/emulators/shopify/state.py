"""What the Shopify emulator holds: the shop's orders, fulfilment orders, fulfilments,
variants and stock, its access tokens and OAuth codes, its two rate limits (GraphQL cost
points and the REST leaky bucket), and the webhooks it sends.

Orders are kept in Shopify's REST shape (what webhooks carry); the GraphQL layer renders
its own views from them. Keys starting with ``_`` are internal and never leave.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from crossdock.emulators.catalog import CATALOG, WAREHOUSE
from crossdock.emulators.kit import WebhookDelivery, WebhookSender

__all__ = ["SHOPIFY_RETRY_DELAYS", "PointsBucket", "RestBucket", "ShopifyEmulator"]

SHOPIFY_RETRY_DELAYS: tuple[float, ...] = (10, 30, 60, 180, 600, 1800, 3600, 8160)
"""8 retries over about 4 hours after the first failed delivery (vendor-facts)."""

SCOPES = ",".join(
    (
        "read_orders",
        "write_orders",
        "read_fulfillments",
        "write_merchant_managed_fulfillment_orders",
        "read_inventory",
        "write_inventory",
        "read_locations",
        "read_products",
    )
)


def _money(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01")))


def _stamp(t: float) -> str:
    return datetime.fromtimestamp(int(t), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(ts: str) -> float:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


@dataclass
class PointsBucket:
    """GraphQL calculated-cost bucket (maximumAvailable, restoreRate per second)."""

    maximum: float
    restore_rate: float
    available: float = -1.0
    stamp: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        if self.available < 0:
            self.available = self.maximum

    def _restore(self) -> None:
        now = time.monotonic()
        self.available = min(self.maximum, self.available + (now - self.stamp) * self.restore_rate)
        self.stamp = now

    def take(self, cost: int) -> bool:
        """Take ``cost`` points if they are there."""
        self._restore()
        if cost > self.available:
            return False
        self.available -= cost
        return True

    def refund(self, points: float) -> None:
        """Give back points taken but not used."""
        self._restore()
        self.available = min(self.maximum, self.available + max(0.0, points))

    def status(self) -> dict[str, Any]:
        """``throttleStatus`` as Shopify reports it."""
        self._restore()
        return {
            "maximumAvailable": float(self.maximum),
            "currentlyAvailable": int(self.available),
            "restoreRate": float(self.restore_rate),
        }


@dataclass
class RestBucket:
    """The REST leaky bucket (40 calls, leaking 2 per second on a Standard plan)."""

    size: int
    leak_rate: float
    level: float = 0.0
    stamp: float = field(default_factory=time.monotonic)

    def take(self) -> float | None:
        """Count one call; ``None`` if it fits, else the seconds to wait."""
        now = time.monotonic()
        self.level = max(0.0, self.level - (now - self.stamp) * self.leak_rate)
        self.stamp = now
        if self.level + 1 > self.size:
            return (self.level + 1 - self.size) / self.leak_rate
        self.level += 1
        return None

    def header(self) -> str:
        """``X-Shopify-Shop-Api-Call-Limit``."""
        return f"{min(self.size, int(self.level + 0.999))}/{self.size}"


class ShopifyEmulator:
    """The state of one emulated shop (see the module docstring)."""

    def __init__(
        self,
        *,
        shop: str,
        access_token: str,
        client_id: str,
        client_secret: str,
        webhook_url: str | None,
        header_style: str,
        oldest_version: str,
        currency: str,
        cost_max: int,
        cost_restore_rate: float,
        rest_bucket_size: int,
        rest_leak_rate: float,
        token_ttl: int,
        sender: WebhookSender,
        seed: int | None,
    ) -> None:
        self.shop = shop
        self.access_token = access_token
        self.client_id = client_id
        self.client_secret = client_secret
        self.webhook_url = webhook_url
        self.header_style = header_style
        self.oldest_version = oldest_version
        self.currency = currency
        self.cost_max = cost_max
        self.cost_restore_rate = cost_restore_rate
        self.rest_bucket_size = rest_bucket_size
        self.rest_leak_rate = rest_leak_rate
        self.token_ttl = token_ttl
        self.sender = sender
        self.seed = seed
        self.reset()

    # -- lifecycle ----------------------------------------------------------------------

    def reset(self) -> None:
        """Back to a fresh shop seeded from the sandbox catalogue."""
        self.random = random.Random(self.seed)
        self._next = 1_000_000
        self.order_number = 1000
        self.orders: dict[int, dict[str, Any]] = {}
        self.fulfillment_orders: dict[int, dict[str, Any]] = {}
        self.tokens: dict[str, float | None] = {self.access_token: None}
        self.codes: dict[str, str] = {}
        self.cost = PointsBucket(float(self.cost_max), float(self.cost_restore_rate))
        self.rest = RestBucket(self.rest_bucket_size, self.rest_leak_rate)
        self.location = {"id": 7_000_001, "name": f"Crossdock warehouse ({WAREHOUSE})"}
        self.variants: dict[int, dict[str, Any]] = {}
        self.levels: dict[int, dict[str, int]] = {}
        self.races: dict[str, list[int]] = {}
        self.notified: dict[int, bool] = {}
        self.inventory_sets = 0
        self.stale_compares = 0
        self.throttled = 0
        self.events: list[dict[str, Any]] = []
        self.sender.deliveries.clear()
        for i, item in enumerate(CATALOG):
            vid = 4_000_001 + i
            self.variants[vid] = {
                "id": vid,
                "product_id": 3_000_001 + i,
                "inventory_item_id": 4_500_001 + i,
                "sku": item.sku,
                "title": item.title,
                "price": item.price,
                "grams": item.grams,
            }
            self.levels[4_500_001 + i] = {"available": item.stock, "on_hand": item.stock}

    def new_id(self) -> int:
        """A fresh numeric id (unique across object kinds)."""
        self._next += 1
        return self._next

    def now(self) -> str:
        """Now, in Shopify's timestamp format (UTC seconds)."""
        return _stamp(time.time())

    def bump(self, order: dict[str, Any]) -> str:
        """Set a changed order's ``updated_at``: now, but always later than before (so
        each change is a new version even within one second)."""
        t = max(time.time(), _parse(order["updated_at"]) + 1)
        order["updated_at"] = _stamp(t)
        return str(order["updated_at"])

    # -- versions and auth ------------------------------------------------------------

    def answer_version(self, requested: str) -> str:
        """The version that answers: an unsupported (older) one falls forward."""
        if requested == "unstable":
            return requested
        return max(requested, self.oldest_version)

    def token_ok(self, token: str | None) -> bool:
        """Whether an access token is valid now."""
        if not token or token not in self.tokens:
            return False
        expires = self.tokens[token]
        return expires is None or expires > time.monotonic()

    def issue_token(self, ttl: int | None) -> str:
        """A new access token (``ttl`` seconds, or forever)."""
        token = "shpat_" + uuid.UUID(int=self.random.getrandbits(128)).hex
        self.tokens[token] = time.monotonic() + ttl if ttl else None
        return token

    def sign_callback(self, params: dict[str, str]) -> str:
        """The OAuth callback hmac (hex) over the sorted query without ``hmac``."""

        def esc(text: str, key: bool) -> str:
            text = text.replace("%", "%25").replace("&", "%26")
            return text.replace("=", "%3D") if key else text

        pairs = sorted((esc(k, True), esc(v, False)) for k, v in params.items() if k != "hmac")
        message = "&".join(f"{k}={v}" for k, v in pairs)
        return hmac.new(self.client_secret.encode(), message.encode(), hashlib.sha256).hexdigest()

    # -- catalogue and stock --------------------------------------------------------------

    def variant_by_sku(self, sku: str) -> dict[str, Any] | None:
        """The variant with this SKU (exact, case-insensitive)."""
        for v in self.variants.values():
            if v["sku"].lower() == sku.lower():
                return v
        return None

    def variant_by_item(self, item_id: int) -> dict[str, Any] | None:
        """The variant of an inventory item."""
        for v in self.variants.values():
            if v["inventory_item_id"] == item_id:
                return v
        return None

    # -- orders -------------------------------------------------------------------------

    def create_order(self, spec: dict[str, Any]) -> dict[str, Any]:
        """A new order from a scenario spec (see the package docstring)."""
        lines = spec.get("lines") or []
        if not isinstance(lines, list) or not lines:
            raise ValueError("'lines' must be a non-empty list of {sku, quantity}")
        cur = str(spec.get("currency") or self.currency)
        now = self.now()
        oid = self.new_id()
        self.order_number += 1
        line_items: list[dict[str, Any]] = []
        subtotal = Decimal(0)
        grams = 0
        for line in lines:
            sku = str(line.get("sku") or "")
            qty = int(line.get("quantity") or 1)
            if qty <= 0:
                raise ValueError("a line's quantity must be positive")
            variant = self.variant_by_sku(sku) if sku else None
            price = Decimal(str(line.get("price") or (variant["price"] if variant else "10.00")))
            subtotal += price * qty
            grams += (variant["grams"] if variant else 0) * qty
            lid = self.new_id()
            title = variant["title"] if variant else str(line.get("title") or f"Custom item {sku}")
            line_items.append(
                {
                    "id": lid,
                    "admin_graphql_api_id": f"gid://shopify/LineItem/{lid}",
                    "variant_id": variant["id"] if variant else None,
                    "product_id": variant["product_id"] if variant else None,
                    "sku": sku or None,
                    "title": title,
                    "name": title,
                    "quantity": qty,
                    "current_quantity": qty,
                    "fulfillable_quantity": qty,
                    "fulfillment_status": None,
                    "price": _money(price),
                    "price_set": self.money_set(_money(price), cur),
                    "grams": variant["grams"] if variant else 0,
                    "requires_shipping": True,
                    "taxable": True,
                    "tax_lines": [],
                }
            )
        shipping = Decimal(str(spec.get("shipping_price", "5.00")))
        discount = Decimal(str(spec.get("discount", "0.00")))
        total = subtotal + shipping - discount
        ship_to = spec.get("shipping_address") or {}
        email = spec.get("email") or "buyer@example.com"
        customer = spec.get("customer") or {}
        first = customer.get("first_name") or ship_to.get("first_name") or "Ada"
        last = customer.get("last_name") or ship_to.get("last_name") or "Buyer"
        # A given address is kept as given (a missing field stays missing, as a buyer's
        # typo would); only an order without any address gets a sandbox one.
        given = bool(ship_to)
        address = {
            "first_name": first,
            "last_name": last,
            "name": ship_to.get("name") or f"{first} {last}",
            "company": ship_to.get("company"),
            "address1": ship_to.get("address1") or (None if given else "1 Dock Street"),
            "address2": ship_to.get("address2"),
            "city": ship_to.get("city") or (None if given else "Springfield"),
            "province": ship_to.get("province"),
            "province_code": ship_to.get("province_code") or (None if given else "IL"),
            "zip": ship_to.get("zip") or (None if given else "62701"),
            "country": ship_to.get("country"),
            "country_code": ship_to.get("country_code") or (None if given else "US"),
            "phone": ship_to.get("phone"),
        }
        financial = str(spec.get("financial_status") or "paid")
        order: dict[str, Any] = {
            "id": oid,
            "admin_graphql_api_id": f"gid://shopify/Order/{oid}",
            "name": f"#{self.order_number}",
            "order_number": self.order_number,
            "number": self.order_number - 1000,
            "email": email,
            "contact_email": email,
            "phone": spec.get("phone"),
            "created_at": now,
            "updated_at": now,
            "processed_at": now,
            "closed_at": None,
            "cancelled_at": None,
            "cancel_reason": None,
            "currency": cur,
            "presentment_currency": cur,
            "financial_status": financial,
            "fulfillment_status": None,
            "test": True,
            "note": spec.get("note"),
            "tags": ", ".join(spec.get("tags") or []),
            "total_weight": grams,
            "subtotal_price": _money(subtotal),
            "subtotal_price_set": self.money_set(_money(subtotal), cur),
            "total_tax": "0.00",
            "total_tax_set": self.money_set("0.00", cur),
            "total_discounts": _money(discount),
            "total_discounts_set": self.money_set(_money(discount), cur),
            "total_shipping_price_set": self.money_set(_money(shipping), cur),
            "total_price": _money(total),
            "total_price_set": self.money_set(_money(total), cur),
            "line_items": line_items,
            "shipping_lines": [
                {
                    "id": self.new_id(),
                    "title": "Standard",
                    "code": "STANDARD",
                    "price": _money(shipping),
                    "price_set": self.money_set(_money(shipping), cur),
                    "source": "shopify",
                }
            ],
            "shipping_address": address,
            "billing_address": {**address, **(spec.get("billing_address") or {})},
            "customer": {
                "id": self.new_id(),
                "email": email,
                "first_name": first,
                "last_name": last,
                "phone": spec.get("phone"),
            },
            "fulfillments": [],
            "_fulfillment_orders": [],
        }
        fo_id = self.new_id()
        self.fulfillment_orders[fo_id] = {
            "id": fo_id,
            "order_id": oid,
            "status": "open",
            "line_items": [
                {
                    "id": self.new_id(),
                    "line_item_id": li["id"],
                    "total": li["quantity"],
                    "remaining": li["quantity"],
                }
                for li in line_items
            ],
        }
        order["_fulfillment_orders"].append(fo_id)
        self.orders[oid] = order
        self.webhook("orders/create", order)
        return order

    def money_set(self, amount: str, cur: str) -> dict[str, Any]:
        """REST ``*_set`` money (shop and presentment)."""
        m = {"amount": amount, "currency_code": cur}
        return {"shop_money": m, "presentment_money": dict(m)}

    def cancel_order(self, oid: int, reason: str = "customer") -> dict[str, Any]:
        """Cancel an order (its open fulfilment orders too) and send orders/cancelled."""
        order = self.orders[oid]
        if order["cancelled_at"]:
            raise ValueError(f"order {order['name']} is already cancelled")
        order["cancelled_at"] = self.bump(order)
        order["cancel_reason"] = reason
        for fo_id in order["_fulfillment_orders"]:
            fo = self.fulfillment_orders[fo_id]
            if fo["status"] == "open":
                fo["status"] = "cancelled"
        self.webhook("orders/cancelled", order)
        return order

    def update_order(self, oid: int, changes: dict[str, Any]) -> dict[str, Any]:
        """Change an order's note, tags or financial status; send orders/updated."""
        order = self.orders[oid]
        for key in ("note", "financial_status", "email"):
            if key in changes:
                order[key] = changes[key]
        if "tags" in changes:
            order["tags"] = ", ".join(changes["tags"] or [])
        self.bump(order)
        self.webhook("orders/updated", order)
        return order

    def rest_order(self, order: dict[str, Any]) -> dict[str, Any]:
        """The order as REST and webhooks show it (internal keys removed)."""
        return {k: v for k, v in order.items() if not k.startswith("_")}

    # -- webhooks -----------------------------------------------------------------------

    def webhook_headers(self, topic: str, body: bytes, event_id: str) -> dict[str, str]:
        """Signed Shopify webhook headers for ``body``."""
        digest = hmac.new(self.sender_secret.encode(), body, hashlib.sha256).digest()
        prefix = "Shopify-" if self.header_style == "plain" else "X-Shopify-"
        webhook_id = str(uuid.UUID(int=self.random.getrandbits(128), version=4))
        return {
            "Content-Type": "application/json",
            f"{prefix}Topic": topic,
            f"{prefix}Hmac-Sha256": base64.b64encode(digest).decode(),
            f"{prefix}Shop-Domain": self.shop,
            f"{prefix}API-Version": self.answer_version("2025-01"),
            f"{prefix}Webhook-Id": webhook_id,
            f"{prefix}Triggered-At": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            f"{prefix}Event-Id": event_id,
        }

    @property
    def sender_secret(self) -> str:
        """Shopify signs webhooks with the app's client secret."""
        return self.client_secret

    def build_webhook(self, topic: str, order: dict[str, Any]) -> tuple[dict[str, str], bytes]:
        """A signed delivery of ``order`` under ``topic`` (headers, raw body)."""
        body = json.dumps(self.rest_order(order), separators=(",", ":")).encode()
        event_id = str(uuid.UUID(int=self.random.getrandbits(128), version=4))
        return self.webhook_headers(topic, body, event_id), body

    def webhook(self, topic: str, order: dict[str, Any]) -> None:
        """Send a webhook to ``webhook_url`` (in the background), if there is one."""
        headers, body = self.build_webhook(topic, order)
        event_id = headers.get("X-Shopify-Event-Id") or headers.get("Shopify-Event-Id") or ""
        self.events.append({"topic": topic, "order_id": order["id"], "event_id": event_id})
        if not self.webhook_url:
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop (a test building state synchronously): nothing to send with
        wid = headers.get("X-Shopify-Webhook-Id") or headers.get("Shopify-Webhook-Id") or ""
        self.sender.send(
            WebhookDelivery(id=wid, url=self.webhook_url, topic=topic, body=body, headers=headers)
        )

    # -- what tests and the demo read -------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """``GET /_emulator/state``."""
        orders = []
        for o in self.orders.values():
            orders.append(
                {
                    "id": o["id"],
                    "name": o["name"],
                    "email": o["email"],
                    "financial_status": o["financial_status"],
                    "fulfillment_status": o["fulfillment_status"],
                    "cancelled": bool(o["cancelled_at"]),
                    "updated_at": o["updated_at"],
                    "lines": [
                        {
                            "sku": li["sku"],
                            "quantity": li["quantity"],
                            "fulfillable_quantity": li["fulfillable_quantity"],
                        }
                        for li in o["line_items"]
                    ],
                    "fulfillments": [
                        {
                            "id": f["id"],
                            "tracking_number": f["tracking_number"],
                            "tracking_company": f["tracking_company"],
                            "tracking_url": f["tracking_url"],
                            "notify_customer": self.notified.get(f["id"]),
                            "line_items": [
                                {"sku": li["sku"], "quantity": li["quantity"]}
                                for li in f["line_items"]
                            ],
                        }
                        for f in o["fulfillments"]
                    ],
                }
            )
        inventory = {}
        for v in self.variants.values():
            inventory[v["sku"]] = dict(self.levels[v["inventory_item_id"]])
        return {
            "shop": self.shop,
            "oldest_version": self.oldest_version,
            "orders": orders,
            "inventory": inventory,
            "counts": {
                "orders": len(self.orders),
                "fulfillments": sum(len(o["fulfillments"]) for o in self.orders.values()),
                "inventory_sets": self.inventory_sets,
                "stale_compares": self.stale_compares,
                "throttled": self.throttled,
                "webhooks": len(self.events),
            },
            "cost": self.cost.status(),
            "rest_call_limit": self.rest.header(),
        }
