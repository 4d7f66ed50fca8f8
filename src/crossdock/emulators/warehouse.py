"""The sandbox warehouse: a small REST WMS that picks, packs, ships and tells.

It stands in for a 3PL's in-house WMS behind the declarative ``rest-wms`` connector
(its definition: ``crossdock/connectors/restwms/sandbox-warehouse.yaml``). Stock starts
from the shared sandbox catalogue (:mod:`crossdock.emulators.catalog`), location ``WH1``.

Vendor routes (JSON; every ``/api`` request needs ``X-Api-Key``, else ``401
{"error": "unauthorized", "message"}``; over ``rate_limit_per_second`` a request answers
``429 {"error": "rate_limited"}`` with ``Retry-After`` in whole seconds):

- ``POST /api/v1/orders`` — accept an order ``{reference, order_number, ship_to {name,
  company, address1, address2, city, region, postal_code, country, phone, email},
  lines [{sku, quantity, description, line_ref}], notes}``: ``201`` with the order.
  ``Idempotency-Key`` is honoured: the same key again answers the same order with ``200``
  (``Idempotent-Replayed: true``). Errors: ``422 {"error": "unknown_sku", "message",
  "sku"}`` for a SKU not in the catalogue, ``422 {"error": "invalid_address", "message",
  "field"}`` when ``ship_to`` lacks address1, city, postal_code or a two-letter country,
  ``422 {"error": "invalid_order", "message", "field"}``, and ``409 {"error":
  "duplicate_reference", "id", "reference"}`` for a known reference under another key.
- ``GET /api/v1/orders?reference=&page=&per_page=`` — ``{"orders": [...]}``;
  ``GET /api/v1/orders/{id}`` — one order (``404 {"error": "not_found"}``).
- ``PUT /api/v1/orders/{id}`` — replace ship_to, lines, notes while the order is
  ``accepted``; ``409 {"error": "order_locked"}`` after picking.
- ``POST /api/v1/orders/{id}/cancel`` — ``200`` with the cancelled order (again: the
  same); ``409 {"error": "already_shipped", "reference"}`` once shipped.
- ``GET /api/v1/shipments?updated_since=&page=&per_page=`` and ``GET
  /api/v1/stock?updated_since=&sku=&page=&per_page=`` — oldest change first, page
  pagination with ``Link: <...>; rel="next"``, ``X-Total-Pages`` and ``X-Total-Count``;
  ``GET /api/v1/shipments/{id}``, ``GET /api/v1/stock/{sku}``.

The warehouse picks and packs each accepted order ``pick_delay`` seconds (times
``time_scale``; a negative delay: only when told) after accepting it. A line whose
stock is short ships what there is (nothing shipped at all: status ``unfulfillable``);
the shipment and the order report ``short_lines`` and the order becomes
``partially_shipped``, else ``shipped``. Stock ``on_hand``/``available`` go down.
Then it sends webhooks to ``webhook_url`` — ``shipment.created`` (order reference and
number, lines, ``ship_to`` echoed from the order, one parcel weighing the catalogue
grams, ``carrier``/``service``/``tracking_number``/``tracking_url`` only when
``buys_labels``, else null) and ``stock.changed`` (sku, location, available, on_hand)
per SKU — as ``{"id", "type", "created_at", "data"}`` signed with ``X-Signature`` = hex
HMAC-SHA256 of the body (or Standard Webhooks headers with ``signature_scheme=
standard-webhooks``), plus ``X-Event-Id`` and ``X-Event-Type``.

Run it standalone with ``crossdock sandbox rest-wms --set pick_delay=2 --set buys_labels=true``
(port 8100).

Control routes (no auth): the kit's ``/_emulator/faults``, ``/_emulator/state``
(``orders`` with id, reference and status; ``shipments``; ``stock``; ``counts``),
``/_emulator/webhooks`` and ``/_emulator/reset``, plus:

- ``POST /_emulator/pick`` ``{"order_id": optional}`` — pick and pack now (every
  accepted order, or one); answers the shipments made.
- ``POST /_emulator/stock`` ``{"sku", "on_hand"}`` — set a SKU's stock (a new SKU joins
  the catalogue with 100 g); emits ``stock.changed``.
- ``GET /_emulator/events`` — every webhook built, with its headers and body (sent or
  not: without ``webhook_url`` nothing is sent).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import orjson
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from crossdock.emulators.catalog import CATALOG, WAREHOUSE
from crossdock.emulators.kit import (
    FaultMiddleware,
    Faults,
    WebhookDelivery,
    WebhookSender,
    control_routes,
)
from crossdock.ingest.signatures import sign_hmac, sign_standard_webhooks

__all__ = ["WarehouseState", "create_app"]

ADDRESS_FIELDS = ("name", "company", "address1", "address2", "city", "region",
                  "postal_code", "country", "phone", "email")  # fmt: skip
REQUIRED_ADDRESS = ("address1", "city", "postal_code", "country")
MAX_PER_PAGE = 250
SHIPPED = ("shipped", "partially_shipped")


def _error(http_status: int, error: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": error, "message": message, **extra}, http_status)


@dataclass
class StockRow:
    """One SKU's stock at ``WH1``."""

    sku: str
    grams: int
    on_hand: int
    updated_at: str

    def to_json(self) -> dict[str, Any]:
        """The WMS's stock row."""
        return {
            "sku": self.sku,
            "location": WAREHOUSE,
            "available": self.on_hand,
            "on_hand": self.on_hand,
            "updated_at": self.updated_at,
        }


@dataclass
class WarehouseOrder:
    """An order the warehouse accepted."""

    id: str
    reference: str
    order_number: str | None
    ship_to: dict[str, Any]
    lines: list[dict[str, Any]]
    notes: str | None
    idempotency_key: str | None
    created_at: str
    updated_at: str
    status: str = "accepted"
    short_lines: list[dict[str, Any]] = field(default_factory=list)
    shipment_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The WMS's order document."""
        return {
            "id": self.id,
            "reference": self.reference,
            "order_number": self.order_number,
            "status": self.status,
            "ship_to": dict(self.ship_to),
            "lines": [dict(line) for line in self.lines],
            "short_lines": [dict(s) for s in self.short_lines],
            "notes": self.notes,
            "shipment_id": self.shipment_id,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


class _Clock:
    """Strictly increasing ISO timestamps (two changes never share an instant)."""

    def __init__(self) -> None:
        self.last = datetime.min.replace(tzinfo=UTC)

    def now(self) -> str:
        t = datetime.now(UTC)
        if t <= self.last:
            t = self.last + timedelta(microseconds=1)
        self.last = t
        return t.isoformat(timespec="microseconds").replace("+00:00", "Z")


class _Bucket:
    """A token bucket: ``rate`` per second, bursts of ``rate`` (at least 1)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate)
        self.tokens = self.capacity
        self.stamp = time.monotonic()

    def take(self) -> float:
        """0 if a request may pass now, else seconds until it may."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


class WarehouseState:
    """Everything the sandbox warehouse holds (``app.state.emulator``)."""

    def __init__(
        self,
        *,
        webhook_url: str | None,
        webhook_secret: str,
        signature_scheme: str,
        api_key: str,
        pick_delay: float,
        buys_labels: bool,
        rate_limit_per_second: float,
        time_scale: float,
        sender: WebhookSender,
    ) -> None:
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self.signature_scheme = signature_scheme
        self.api_key = api_key
        self.pick_delay = pick_delay
        self.buys_labels = buys_labels
        self.time_scale = time_scale
        self.sender = sender
        self.bucket = _Bucket(rate_limit_per_second)
        self.clock = _Clock()
        self._tasks: set[asyncio.Task[None]] = set()
        self.reset()

    def set_rate_limit(self, per_second: float) -> None:
        """Change the rate limit (0: none), with a full bucket."""
        self.bucket = _Bucket(per_second)

    def reset(self) -> None:
        """Forget every order, shipment and event; stock back to the catalogue."""
        for task in list(getattr(self, "_tasks", ())):
            task.cancel()
        self._tasks = set()
        start = self.clock.now()
        self.stock: dict[str, StockRow] = {
            c.sku: StockRow(c.sku, c.grams, c.stock, start) for c in CATALOG
        }
        self.orders: dict[str, WarehouseOrder] = {}
        self.by_key: dict[str, str] = {}
        self.shipments: dict[str, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.requests = 0
        self.rate_limited = 0
        self._order_ids = itertools.count(1)
        self._shipment_ids = itertools.count(1)
        self._event_ids = itertools.count(1)

    # -- orders -------------------------------------------------------------------------

    def validate(self, body: Any, *, partial: bool = False) -> JSONResponse | None:
        """The WMS's 422 for an order body it cannot take, or ``None``."""
        if not isinstance(body, dict):
            return _error(422, "invalid_order", "The order must be a JSON object.", field="")
        ref = body.get("reference")
        if not partial and (not isinstance(ref, str) or not ref.strip()):
            return _error(422, "invalid_order", "reference is required.", field="reference")
        lines = body.get("lines")
        if not isinstance(lines, list) or not lines:
            return _error(422, "invalid_order", "An order needs lines.", field="lines")
        for i, line in enumerate(lines):
            if not isinstance(line, dict) or not isinstance(line.get("sku"), str):
                return _error(
                    422, "invalid_order", f"Line {i + 1} has no SKU.", field=f"lines[{i}].sku"
                )
            qty = line.get("quantity")
            if not isinstance(qty, int) or isinstance(qty, bool) or qty <= 0:
                return _error(
                    422,
                    "invalid_order",
                    f"Line {i + 1} needs a whole quantity above 0.",
                    field=f"lines[{i}].quantity",
                )
        for line in lines:
            if line["sku"] not in self.stock:
                return _error(
                    422,
                    "unknown_sku",
                    f"SKU {line['sku']} is not in the item master.",
                    sku=line["sku"],
                )
        ship_to = body.get("ship_to")
        if not isinstance(ship_to, dict):
            return _error(422, "invalid_address", "ship_to is required.", field="ship_to")
        for name in REQUIRED_ADDRESS:
            value = ship_to.get(name)
            if not isinstance(value, str) or not value.strip():
                return _error(
                    422,
                    "invalid_address",
                    f"ship_to.{name} is required.",
                    field=f"ship_to.{name}",
                )
        country = ship_to["country"]
        if len(country) != 2 or not country.isalpha():
            return _error(
                422,
                "invalid_address",
                "ship_to.country must be a two-letter country code.",
                field="ship_to.country",
            )
        return None

    @staticmethod
    def _ship_to(raw: dict[str, Any]) -> dict[str, Any]:
        return {k: raw.get(k) for k in ADDRESS_FIELDS}

    @staticmethod
    def _lines(raw: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            {
                "sku": line["sku"],
                "quantity": line["quantity"],
                "description": line.get("description"),
                "line_ref": line.get("line_ref"),
            }
            for line in raw
        ]

    def accept(self, body: dict[str, Any], key: str | None) -> WarehouseOrder:
        """Store a valid order and schedule its picking."""
        now = self.clock.now()
        order = WarehouseOrder(
            id=f"WO-{next(self._order_ids):06d}",
            reference=body["reference"],
            order_number=body.get("order_number"),
            ship_to=self._ship_to(body["ship_to"]),
            lines=self._lines(body["lines"]),
            notes=body.get("notes"),
            idempotency_key=key,
            created_at=now,
            updated_at=now,
        )
        self.orders[order.id] = order
        if key:
            self.by_key[key] = order.id
        self._schedule(order.id)
        return order

    def _schedule(self, order_id: str) -> None:
        if self.pick_delay < 0:
            return

        async def later() -> None:
            await asyncio.sleep(self.pick_delay * self.time_scale)
            self.pick(order_id)

        task = asyncio.get_running_loop().create_task(later())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def by_reference(self, reference: str) -> WarehouseOrder | None:
        """The order with this reference (the newest not cancelled first)."""
        found = [o for o in self.orders.values() if o.reference == reference]
        live = [o for o in found if o.status != "cancelled"]
        pool = live or found
        return pool[-1] if pool else None

    # -- picking ------------------------------------------------------------------------

    def pick(self, order_id: str) -> dict[str, Any] | None:
        """Pick and pack one accepted order: the shipment made, if any."""
        order = self.orders.get(order_id)
        if order is None or order.status != "accepted":
            return None
        now = self.clock.now()
        shipped: list[dict[str, Any]] = []
        short: list[dict[str, Any]] = []
        changed: list[StockRow] = []
        grams = 0
        for line in order.lines:
            row = self.stock[line["sku"]]
            take = min(line["quantity"], row.on_hand)
            line["shipped"] = take
            if take:
                row.on_hand -= take
                row.updated_at = now
                if row not in changed:
                    changed.append(row)
                grams += row.grams * take
                shipped.append({"sku": row.sku, "quantity": take, "line_ref": line["line_ref"]})
            if take < line["quantity"]:
                short.append(
                    {
                        "sku": row.sku,
                        "ordered": line["quantity"],
                        "shipped": take,
                        "short": line["quantity"] - take,
                    }
                )
        order.short_lines = short
        order.updated_at = now
        shipment: dict[str, Any] | None = None
        if not shipped:
            order.status = "unfulfillable"
        else:
            order.status = "partially_shipped" if short else "shipped"
            n = next(self._shipment_ids)
            sid = f"SH-{n:06d}"
            tracking = f"SBX{n:09d}" if self.buys_labels else None
            shipment = {
                "id": sid,
                "order_id": order.id,
                "order_reference": order.reference,
                "order_number": order.order_number,
                "status": "shipped",
                "lines": shipped,
                "short_lines": [dict(s) for s in short],
                "ship_to": dict(order.ship_to),
                "parcels": [{"weight_grams": grams}],
                "carrier": "DHL" if self.buys_labels else None,
                "service": "dhl_paket" if self.buys_labels else None,
                "tracking_number": tracking,
                "tracking_url": (
                    f"https://tracking.sandbox-warehouse.test/{tracking}" if tracking else None
                ),
                "created_at": now,
                "shipped_at": now,
                "updated_at": now,
            }
            self.shipments[sid] = shipment
            order.shipment_id = sid
            self.emit("shipment.created", shipment)
        for row in changed:
            self.emit("stock.changed", row.to_json())
        return shipment

    def pick_all(self, order_id: str | None = None) -> list[dict[str, Any]]:
        """Pick every accepted order now (or just ``order_id``)."""
        ids = [order_id] if order_id else [o.id for o in self.orders.values()]
        made = [self.pick(i) for i in ids]
        return [s for s in made if s is not None]

    def set_stock(self, sku: str, on_hand: int) -> StockRow:
        """Set a SKU's stock (counted, received ...) and tell."""
        row = self.stock.get(sku)
        if row is None:
            row = self.stock[sku] = StockRow(sku, 100, on_hand, self.clock.now())
        row.on_hand = on_hand
        row.updated_at = self.clock.now()
        self.emit("stock.changed", row.to_json())
        return row

    # -- webhooks -----------------------------------------------------------------------

    def sign(self, event_id: str, body: bytes) -> dict[str, str]:
        """The signature headers of one delivery."""
        if self.signature_scheme == "standard-webhooks":
            return sign_standard_webhooks(self.webhook_secret, event_id, time.time(), body)
        return {"X-Signature": sign_hmac(self.webhook_secret, body, "hex")}

    def emit(self, kind: str, data: dict[str, Any]) -> None:
        """Build, sign and (with a ``webhook_url``) send one webhook."""
        digest = hashlib.sha256(f"{kind}{next(self._event_ids)}".encode()).hexdigest()[:12]
        event_id = f"evt_{digest}"
        body = orjson.dumps(
            {"id": event_id, "type": kind, "created_at": self.clock.now(), "data": data}
        )
        headers = {
            "Content-Type": "application/json",
            "X-Event-Id": event_id,
            "X-Event-Type": kind,
            **self.sign(event_id, body),
        }
        self.events.append({"id": event_id, "type": kind, "headers": headers, "body": body})
        if self.webhook_url:
            self.sender.send(WebhookDelivery(event_id, self.webhook_url, kind, body, headers))

    # -- views --------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """``/_emulator/state``."""
        return {
            "orders": [o.to_json() for o in self.orders.values()],
            "shipments": list(self.shipments.values()),
            "stock": {sku: row.to_json() for sku, row in self.stock.items()},
            "counts": {
                "orders": len(self.orders),
                "shipments": len(self.shipments),
                "webhooks": len(self.events),
                "requests": self.requests,
                "rate_limited": self.rate_limited,
            },
        }


# --- the /api gate: auth, then rate limit -------------------------------------------------


class _Gate:
    """``X-Api-Key`` and the rate limit for ``/api`` routes (raw ASGI)."""

    def __init__(self, app: ASGIApp, state: WarehouseState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        st = self.state
        st.requests += 1
        key = dict(scope["headers"]).get(b"x-api-key", b"").decode("latin-1")
        if not hmac.compare_digest(key.encode(), st.api_key.encode()):
            response: Response = _error(401, "unauthorized", "Invalid or missing API key.")
        else:
            wait = st.bucket.take()
            if wait <= 0:
                await self.app(scope, receive, send)
                return
            st.rate_limited += 1
            response = _error(429, "rate_limited", "Too many requests; slow down.")
            response.headers["Retry-After"] = str(max(1, math.ceil(wait)))
        await response(scope, receive, send)


# --- pagination ----------------------------------------------------------------------------


def _page(request: Request, items: list[dict[str, Any]], key: str) -> JSONResponse:
    try:
        page = max(1, int(request.query_params.get("page", "1")))
        per_page = min(MAX_PER_PAGE, max(1, int(request.query_params.get("per_page", "50"))))
    except ValueError:
        return _error(400, "invalid_parameter", "page and per_page must be whole numbers.")
    total_pages = max(1, math.ceil(len(items) / per_page))
    chunk = items[(page - 1) * per_page : page * per_page]
    headers = {"X-Total-Pages": str(total_pages), "X-Total-Count": str(len(items))}
    if page < total_pages:
        query = {**dict(request.query_params), "page": str(page + 1), "per_page": str(per_page)}
        url = str(request.url.replace(query=urlencode(query)))
        headers["Link"] = f'<{url}>; rel="next"'
    body = {key: chunk, "page": page, "per_page": per_page, "total_pages": total_pages}
    return JSONResponse(body, headers=headers)


def _since(request: Request) -> str | None:
    value = request.query_params.get("updated_since")
    if not value:
        return None
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    t = t if t.tzinfo else t.replace(tzinfo=UTC)
    return t.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


# --- the app -------------------------------------------------------------------------------


def create_app(
    *,
    webhook_url: str | None = None,
    webhook_secret: str = "sandbox-webhook-secret",
    signature_scheme: str = "hmac-sha256",
    api_key: str = "sandbox-key",
    time_scale: float = 1.0,
    duplicate_probability: float = 0.0,
    seed: int | None = None,
    pick_delay: float = 5.0,
    buys_labels: bool = False,
    rate_limit_per_second: float = 20.0,
) -> Starlette:
    """The sandbox warehouse (see the module docstring). ``pick_delay`` is in seconds
    (times ``time_scale``; negative: pick only on ``POST /_emulator/pick``);
    ``rate_limit_per_second`` 0 turns the limit off; ``signature_scheme`` is
    ``hmac-sha256`` (hex in ``X-Signature``) or ``standard-webhooks``."""
    if signature_scheme not in ("hmac-sha256", "standard-webhooks"):
        raise ValueError("signature_scheme must be hmac-sha256 or standard-webhooks")
    sender = WebhookSender(
        time_scale=time_scale, duplicate_probability=duplicate_probability, seed=seed
    )
    state = WarehouseState(
        webhook_url=webhook_url,
        webhook_secret=webhook_secret,
        signature_scheme=signature_scheme,
        api_key=api_key,
        pick_delay=pick_delay,
        buys_labels=buys_labels,
        rate_limit_per_second=rate_limit_per_second,
        time_scale=time_scale,
        sender=sender,
    )
    faults = Faults(seed)

    async def read_json(request: Request) -> Any:
        raw = await request.body()
        try:
            return orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            return _MALFORMED

    async def create_order(request: Request) -> Response:
        key = request.headers.get("idempotency-key") or None
        body = await read_json(request)
        if body is _MALFORMED:
            return _error(400, "invalid_json", "The body is not valid JSON.")
        if key and key in state.by_key:
            existing = state.orders[state.by_key[key]]
            if isinstance(body, dict) and body.get("reference") not in (None, existing.reference):
                return _error(
                    422,
                    "idempotency_key_reused",
                    "This Idempotency-Key was used for another order.",
                )
            return JSONResponse(existing.to_json(), 200, headers={"Idempotent-Replayed": "true"})
        problem = state.validate(body)
        if problem is not None:
            return problem
        other = state.by_reference(body["reference"])
        if other is not None and other.status != "cancelled":
            return _error(
                409,
                "duplicate_reference",
                f"An order with reference {other.reference} already exists ({other.id}).",
                id=other.id,
                reference=other.reference,
            )
        order = state.accept(body, key)
        return JSONResponse(
            order.to_json(), 201, headers={"Location": f"/api/v1/orders/{order.id}"}
        )

    async def list_orders(request: Request) -> Response:
        ref = request.query_params.get("reference")
        orders = [o.to_json() for o in state.orders.values() if ref is None or o.reference == ref]
        return _page(request, orders, "orders")

    def _order(request: Request) -> WarehouseOrder | None:
        return state.orders.get(request.path_params["id"])

    def _not_found(what: str) -> JSONResponse:
        return _error(404, "not_found", f"No {what} with that id.")

    async def get_order(request: Request) -> Response:
        order = _order(request)
        return JSONResponse(order.to_json()) if order else _not_found("order")

    async def update_order(request: Request) -> Response:
        order = _order(request)
        if order is None:
            return _not_found("order")
        body = await read_json(request)
        if body is _MALFORMED:
            return _error(400, "invalid_json", "The body is not valid JSON.")
        if order.status != "accepted":
            return _error(
                409,
                "order_locked",
                f"Order {order.id} is {order.status} and can no longer be changed.",
                reference=order.reference,
                status=order.status,
            )
        problem = state.validate(body, partial=True)
        if problem is not None:
            return problem
        order.ship_to = state._ship_to(body["ship_to"])
        order.lines = state._lines(body["lines"])
        order.notes = body.get("notes", order.notes)
        order.order_number = body.get("order_number", order.order_number)
        order.updated_at = state.clock.now()
        return JSONResponse(order.to_json())

    async def cancel_order(request: Request) -> Response:
        order = _order(request)
        if order is None:
            return _not_found("order")
        if order.status in SHIPPED:
            return _error(
                409,
                "already_shipped",
                f"Order {order.id} has shipped and can no longer be cancelled.",
                reference=order.reference,
            )
        if order.status != "cancelled":
            order.status = "cancelled"
            order.updated_at = state.clock.now()
        return JSONResponse(order.to_json())

    async def list_shipments(request: Request) -> Response:
        since = _since(request)
        items = sorted(state.shipments.values(), key=lambda s: s["updated_at"])
        if since:
            items = [s for s in items if s["updated_at"] >= since]
        return _page(request, items, "shipments")

    async def get_shipment(request: Request) -> Response:
        s = state.shipments.get(request.path_params["id"])
        return JSONResponse(s) if s else _not_found("shipment")

    async def list_stock(request: Request) -> Response:
        since = _since(request)
        sku = request.query_params.get("sku")
        rows = sorted(state.stock.values(), key=lambda r: (r.updated_at, r.sku))
        items = [
            r.to_json()
            for r in rows
            if (since is None or r.updated_at >= since) and (sku is None or r.sku == sku)
        ]
        return _page(request, items, "stock")

    async def get_stock(request: Request) -> Response:
        row = state.stock.get(request.path_params["sku"])
        return JSONResponse(row.to_json()) if row else _not_found("SKU")

    async def pick_route(request: Request) -> Response:
        body = await read_json(request)
        order_id = body.get("order_id") if isinstance(body, dict) else None
        return JSONResponse({"shipments": state.pick_all(order_id)})

    async def stock_route(request: Request) -> Response:
        body = await read_json(request)
        if not isinstance(body, dict) or not isinstance(body.get("sku"), str):
            return JSONResponse({"error": "give {sku, on_hand}"}, 400)
        on_hand = body.get("on_hand")
        if not isinstance(on_hand, int) or isinstance(on_hand, bool) or on_hand < 0:
            return JSONResponse({"error": "on_hand must be a whole number >= 0"}, 400)
        return JSONResponse(state.set_stock(body["sku"], on_hand).to_json())

    async def events_route(request: Request) -> Response:
        return JSONResponse(
            {
                "events": [
                    {
                        "id": e["id"],
                        "type": e["type"],
                        "headers": e["headers"],
                        "body": orjson.loads(e["body"]),
                    }
                    for e in state.events
                ]
            }
        )

    async def reset() -> None:
        state.reset()

    routes = [
        Route("/api/v1/orders", create_order, methods=["POST"]),
        Route("/api/v1/orders", list_orders, methods=["GET"]),
        Route("/api/v1/orders/{id}", get_order, methods=["GET"]),
        Route("/api/v1/orders/{id}", update_order, methods=["PUT"]),
        Route("/api/v1/orders/{id}/cancel", cancel_order, methods=["POST"]),
        Route("/api/v1/shipments", list_shipments, methods=["GET"]),
        Route("/api/v1/shipments/{id}", get_shipment, methods=["GET"]),
        Route("/api/v1/stock", list_stock, methods=["GET"]),
        Route("/api/v1/stock/{sku}", get_stock, methods=["GET"]),
        Route("/_emulator/pick", pick_route, methods=["POST"]),
        Route("/_emulator/stock", stock_route, methods=["POST"]),
        Route("/_emulator/events", events_route, methods=["GET"]),
        *control_routes(faults, state.snapshot, reset, sender),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        yield
        await sender.close()

    app = Starlette(
        routes=routes,
        middleware=[Middleware(FaultMiddleware, faults=faults), Middleware(_Gate, state=state)],
        lifespan=lifespan,
    )
    app.state.emulator = state
    app.state.faults = faults
    return app


_MALFORMED = object()
