"""The ShipEngine (ShipStation API) emulator: multi-carrier labels, voids and tracking.

A Starlette app speaking the subset of ShipEngine's v1 API that Crossdock's connector
uses, shaped after the official OpenAPI document (``../shared/specs/shipengine``):

- ``GET /v1/carriers`` — the sandbox carrier accounts (``se-101`` stamps_com with a 70 lb
  per-package limit, ``se-102`` ups with 150 lb).
- ``POST /v1/labels`` — buy a label from shipment details. Inputs are checked the way
  ShipEngine does: a missing or unknown field answers ``400`` with
  ``{"request_id", "errors": [{"error_source", "error_type", "error_code", "message",
  "field_name"}]}``; a parcel over the carrier's weight limit answers ``400`` with
  ``error_source: carrier``. ``external_shipment_id`` must be unique (a repeat answers
  ``400 identifier_conflict``).
- ``GET /v1/labels`` — list with the spec's filters (``label_status``, ``carrier_id``,
  ``service_code``, ``tracking_number``, ``created_at_start``/``_end``) and
  ``page``/``page_size``/``sort_by``/``sort_dir``; ``{labels, total, page, pages, links}``.
- ``GET /v1/labels/{label_id}``, ``GET /v1/labels/external_shipment_id/{id}``.
- ``PUT /v1/labels/{label_id}/void`` — ``{approved, message, reason_code}``; a label the
  carrier already scanned cannot be voided.
- ``GET /v1/labels/{label_id}/track`` and ``GET /v1/tracking?carrier_code=&tracking_number=``.
- ``GET|POST /v1/environment/webhooks``, ``DELETE /v1/environment/webhooks/{id}``.
- ``GET /v1/downloads/{dir}/{subdir}/{filename}`` — the label file (a tiny PDF).
- ``GET /jwks`` — the public keys that verify webhook signatures (no auth).

Every ``/v1`` request needs the ``API-Key`` header (a wrong or missing key answers
``401`` with the error shape, ``error_type: security``, ``error_code: unauthorized``).
Over ``rate_limit`` requests per ``rate_window`` seconds (scaled by ``time_scale``) a
request answers ``429`` with ``Retry-After`` and ``error_code: rate_limit_exceeded``.

Tracking advances AC -> IT -> DE, one step every ``tracking_interval`` seconds (scaled by
``time_scale``; 0 turns automatic progress off). Each change sends a ``track`` webhook
(``resource_type: API_TRACK``) to ``webhook_url`` and to every ``track`` webhook
registered through the API, signed like ShipEngine: headers
``x-shipengine-rsa-sha256-key-id``, ``x-shipengine-rsa-sha256-signature`` (base64
RSA-SHA256, PKCS#1 v1.5, over ``"{timestamp}.{raw body}"``) and
``x-shipengine-timestamp`` (ISO 8601 UTC); the key is published at ``/jwks``.

Control routes (besides the kit's ``/_emulator/faults``, ``/_emulator/state``,
``/_emulator/webhooks`` and ``/_emulator/reset``):

- ``POST /_emulator/advance`` ``{"label_id" | "tracking_number", "status_code"?}`` —
  move a label's tracking one step (or to ``status_code``: UN, NY, AC, IT, AT, EX, SP,
  DE) now, sending the ``track`` webhook. ``{}`` advances every label in flight.
- ``GET /_emulator/state`` — ``{"labels": [{label_id, external_shipment_id,
  external_order_id, tracking_number, status, voided, status_code, events}],
  "counts": {"labels", "voided"}, "webhooks": [...registered], "requests": n}``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import math
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import orjson
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from crossdock.emulators.kit import (
    FaultMiddleware,
    Faults,
    WebhookDelivery,
    WebhookSender,
    control_routes,
)

__all__ = ["CARRIERS", "Carrier", "ShipEngineState", "create_app", "sign_webhook"]

KEY_ID_HEADER = "x-shipengine-rsa-sha256-key-id"
SIGNATURE_HEADER = "x-shipengine-rsa-sha256-signature"
TIMESTAMP_HEADER = "x-shipengine-timestamp"

_GRAMS = {"gram": 1.0, "kilogram": 1000.0, "ounce": 28.349523125, "pound": 453.59237}


@dataclass(frozen=True)
class Carrier:
    """A carrier account in the sandbox."""

    carrier_id: str
    carrier_code: str
    friendly_name: str
    services: tuple[tuple[str, str], ...]
    max_weight_lb: float
    tracking_url: str

    def tracking_link(self, number: str) -> str:
        """The carrier's public tracking page for ``number``."""
        return self.tracking_url.format(number=number)


CARRIERS: tuple[Carrier, ...] = (
    Carrier(
        "se-101",
        "stamps_com",
        "Stamps.com",
        (
            ("usps_priority_mail", "USPS Priority Mail"),
            ("usps_ground_advantage", "USPS Ground Advantage"),
            ("usps_first_class_mail", "USPS First Class Mail"),
        ),
        70.0,
        "https://tools.usps.com/go/TrackConfirmAction.action?tLabels={number}",
    ),
    Carrier(
        "se-102",
        "ups",
        "UPS",
        (("ups_ground", "UPS Ground"), ("ups_next_day_air", "UPS Next Day Air")),
        150.0,
        "https://www.ups.com/track?tracknum={number}",
    ),
)

_STATUS_TEXT = {
    "UN": "Unknown",
    "NY": "Not Yet In System",
    "AC": "Accepted",
    "IT": "In Transit",
    "AT": "Delivery Attempt",
    "EX": "Exception",
    "SP": "Delivered To Service Point",
    "DE": "Delivered",
}
_TRACKING_STATUS = {
    "UN": "unknown",
    "NY": "unknown",
    "AC": "in_transit",
    "IT": "in_transit",
    "AT": "in_transit",
    "EX": "error",
    "SP": "delivered",
    "DE": "delivered",
}
_NEXT = {"UN": "AC", "NY": "AC", "AC": "IT", "IT": "DE", "AT": "DE", "EX": "IT"}
_FINAL = {"DE", "SP"}

_SHIPMENT_KEYS = {
    "carrier_id", "service_code", "shipping_rule_id", "external_order_id", "items",
    "tax_identifiers", "external_shipment_id", "shipment_number", "ship_date", "ship_to",
    "ship_from", "warehouse_id", "return_to", "is_return", "confirmation", "customs",
    "advanced_options", "insurance_provider", "order_source_code", "packages",
    "comparison_rate_type",
}  # fmt: skip
_LABEL_KEYS = {
    "shipment", "ship_to_service_point_id", "ship_from_service_point_id", "is_return_label",
    "rma_number", "charge_event", "outbound_label_id", "test_label", "validate_address",
    "label_download_type", "label_format", "display_scheme", "label_layout", "label_image_id",
}  # fmt: skip
_ADDRESS_KEYS = {
    "name", "phone", "email", "company_name", "address_line1", "address_line2",
    "address_line3", "city_locality", "state_province", "postal_code", "country_code",
    "address_residential_indicator", "instructions", "geolocation",
}  # fmt: skip
_ADDRESS_REQUIRED = ("name", "address_line1", "city_locality", "postal_code", "country_code")
_STATE_REQUIRED_IN = {"US", "CA", "AU"}

_PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Count 0"
    b"/Kids[]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
)


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(dt: datetime) -> str:
    return dt.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _b64url_uint(n: int) -> str:
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def sign_webhook(
    key: rsa.RSAPrivateKey, key_id: str, body: bytes, timestamp: str | None = None
) -> dict[str, str]:
    """ShipEngine's signature headers for ``body`` (RSA-SHA256 over ``timestamp.body``)."""
    ts = timestamp or _now().isoformat(timespec="milliseconds").replace("+00:00", "Z")
    signature = key.sign(ts.encode() + b"." + body, padding.PKCS1v15(), hashes.SHA256())
    return {
        KEY_ID_HEADER: key_id,
        SIGNATURE_HEADER: base64.b64encode(signature).decode(),
        TIMESTAMP_HEADER: ts,
    }


@dataclass
class Label:
    """One label the emulator sold."""

    label_id: str
    shipment_id: str
    carrier: Carrier
    service_code: str
    tracking_number: str
    external_shipment_id: str | None
    external_order_id: str | None
    label_format: str
    label_layout: str
    shipment: dict[str, Any]
    packages: list[dict[str, Any]]
    created_at: datetime
    status: str = "completed"
    voided_at: datetime | None = None
    status_code: str = "UN"
    events: list[dict[str, Any]] = field(default_factory=list)
    last_change: float = field(default_factory=time.monotonic)


class ShipEngineState:
    """Everything the emulator holds (``app.state.emulator``)."""

    def __init__(
        self,
        *,
        api_key: str,
        webhook_url: str | None,
        public_url: str | None,
        time_scale: float,
        tracking_interval: float,
        rate_limit: int,
        rate_window: float,
        seed: int | None,
        sender: WebhookSender,
        faults: Faults,
    ) -> None:
        self.api_key = api_key
        self.webhook_url = webhook_url
        self.public_url = public_url.rstrip("/") if public_url else None
        self.time_scale = time_scale
        self.tracking_interval = tracking_interval
        self.rate_limit = rate_limit
        self.rate_window = rate_window
        self.seed = seed
        self.sender = sender
        self.faults = faults
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pub_n = self.key.public_key().public_numbers().n
        self.key_id = "se-emulator-" + format(pub_n % (1 << 48), "012x")
        self.carriers = {c.carrier_id: c for c in CARRIERS}
        self._ticker: asyncio.Task[None] | None = None
        self.reset()

    # -- bookkeeping ---------------------------------------------------------------------

    def reset(self) -> None:
        """Forget every label, webhook and counter."""
        self.labels: dict[str, Label] = {}
        self.by_external: dict[str, str] = {}
        self.webhooks: list[dict[str, Any]] = []
        self.requests = 0
        self.window_start = time.monotonic()
        self.window_count = 0
        self._seq = 0
        self._random = random.Random(self.seed)
        self.sender.deliveries.clear()

    def next_id(self) -> int:
        """The next number for an id."""
        self._seq += 1
        return self._seq

    def base(self, request: Request) -> str:
        """The public root URL of this emulator."""
        return self.public_url or str(request.base_url).rstrip("/")

    def jwks(self) -> dict[str, Any]:
        """The public signing key as a JWKS."""
        pub = self.key.public_key().public_numbers()
        return {
            "keys": [
                {
                    "kty": "RSA",
                    "kid": self.key_id,
                    "use": "sig",
                    "alg": "RS256",
                    "n": _b64url_uint(pub.n),
                    "e": _b64url_uint(pub.e),
                }
            ]
        }

    def sign(self, body: bytes, timestamp: str | None = None) -> dict[str, str]:
        """Signature headers for a webhook body."""
        return sign_webhook(self.key, self.key_id, body, timestamp)

    def snapshot(self) -> dict[str, Any]:
        """The ``/_emulator/state`` answer."""
        labels = [
            {
                "label_id": lb.label_id,
                "external_shipment_id": lb.external_shipment_id,
                "external_order_id": lb.external_order_id,
                "tracking_number": lb.tracking_number,
                "carrier_code": lb.carrier.carrier_code,
                "service_code": lb.service_code,
                "status": lb.status,
                "voided": lb.status == "voided",
                "status_code": lb.status_code,
                "events": [e["status_code"] for e in lb.events],
            }
            for lb in self.labels.values()
        ]
        return {
            "labels": labels,
            "counts": {
                "labels": len(labels),
                "voided": sum(1 for lb in labels if lb["voided"]),
            },
            "webhooks": self.webhooks,
            "requests": self.requests,
        }

    # -- rate limit ----------------------------------------------------------------------

    def throttle(self) -> float | None:
        """Seconds to wait if this request is over the limit (fixed window), else None."""
        if self.rate_limit <= 0:
            return None
        window = max(self.rate_window * self.time_scale, 0.001)
        now = time.monotonic()
        if now - self.window_start >= window:
            self.window_start, self.window_count = now, 0
        if self.window_count >= self.rate_limit:
            return window - (now - self.window_start)
        self.window_count += 1
        return None

    # -- tracking ------------------------------------------------------------------------

    def ensure_ticker(self) -> None:
        """Start automatic tracking progress (in the running loop) if configured."""
        if self.tracking_interval <= 0 or self._ticker is not None:
            return
        with contextlib.suppress(RuntimeError):
            self._ticker = asyncio.get_running_loop().create_task(self._tick())

    async def _tick(self) -> None:
        step = self.tracking_interval * self.time_scale
        while True:
            await asyncio.sleep(max(step / 4, 0.005))
            now = time.monotonic()
            for lb in list(self.labels.values()):
                if (
                    lb.status == "completed"
                    and lb.status_code not in _FINAL
                    and now - lb.last_change >= step
                ):
                    self.advance(lb, None, "")

    async def aclose(self) -> None:
        """Stop the ticker and pending webhook deliveries."""
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._ticker
            self._ticker = None
        await self.sender.close()

    def advance(self, lb: Label, code: str | None, base: str) -> None:
        """Move ``lb``'s tracking to ``code`` (or one step on) and send ``track``."""
        code = code or _NEXT.get(lb.status_code, "DE")
        ship_to = lb.shipment.get("ship_to") or {}
        ship_from = lb.shipment.get("ship_from") or {}
        place = ship_to if code in ("DE", "SP", "AT") else ship_from
        if code == "IT":
            place = {"city_locality": "Memphis", "state_province": "TN", "postal_code": "38118",
                     "country_code": "US"}  # fmt: skip
        now = _now()
        event = {
            "occurred_at": _iso(now),
            "carrier_occurred_at": _iso(now),
            "description": _STATUS_TEXT[code],
            "city_locality": str(place.get("city_locality") or "Unknown"),
            "state_province": str(place.get("state_province") or place.get("country_code") or "NA"),
            "postal_code": str(place.get("postal_code") or ""),
            "country_code": str(place.get("country_code") or "US"),
            "company_name": "",
            "signer": "",
            "event_code": code,
            "carrier_detail_code": code,
            "status_code": code,
            "status_description": _STATUS_TEXT[code],
            "carrier_status_code": code,
            "carrier_status_description": _STATUS_TEXT[code],
        }
        lb.events.append(event)
        lb.status_code = code
        lb.last_change = time.monotonic()
        self.send_track(lb, base)

    def tracking_info(self, lb: Label) -> dict[str, Any]:
        """The ``/track`` answer for ``lb``."""
        last = lb.events[-1] if lb.events else None
        ship_date = lb.events[0]["occurred_at"] if lb.events else None
        out: dict[str, Any] = {
            "tracking_number": lb.tracking_number,
            "tracking_url": lb.carrier.tracking_link(lb.tracking_number),
            "status_code": lb.status_code,
            "carrier_code": lb.carrier.carrier_code,
            "carrier_id": int(lb.carrier.carrier_id.split("-")[1]),
            "status_description": _STATUS_TEXT[lb.status_code],
            "carrier_status_code": last["carrier_status_code"] if last else lb.status_code,
            "carrier_detail_code": last["carrier_detail_code"] if last else lb.status_code,
            "carrier_status_description": _STATUS_TEXT[lb.status_code],
            "exception_description": "Carrier reported an exception"
            if lb.status_code == "EX"
            else "",
            "events": list(reversed(lb.events)),
        }
        if ship_date:
            out["ship_date"] = ship_date
        if lb.status_code in _FINAL and last:
            out["actual_delivery_date"] = last["occurred_at"]
        return out

    def track_payload(self, lb: Label, base: str = "") -> bytes:
        """The raw body of a ``track`` webhook for ``lb``."""
        root = self.public_url or base or "https://api.shipengine.com"
        query = urlencode(
            {"carrier_code": lb.carrier.carrier_code, "tracking_number": lb.tracking_number}
        )
        payload = {
            "resource_url": f"{root}/v1/tracking?{query}",
            "resource_type": "API_TRACK",
            "data": {"label_url": None, **self.tracking_info(lb)},
        }
        return orjson.dumps(payload)

    def send_track(self, lb: Label, base: str) -> None:
        """Send the ``track`` webhook for ``lb`` to every subscriber."""
        urls = [w["url"] for w in self.webhooks if w["event"] == "track"]
        if self.webhook_url and self.webhook_url not in urls:
            urls.append(self.webhook_url)
        if not urls:
            return
        body = self.track_payload(lb, base)
        for url in urls:
            headers = {"Content-Type": "application/json", **self.sign(body)}
            delivery = WebhookDelivery(
                id=f"wh-{self.next_id()}", url=url, topic="track", body=body, headers=headers
            )
            with contextlib.suppress(RuntimeError):
                self.sender.send(delivery)

    # -- labels --------------------------------------------------------------------------

    def tracking_number(self, carrier: Carrier) -> str:
        """A carrier-looking tracking number."""
        digits = "".join(str(self._random.randrange(10)) for _ in range(16))
        if carrier.carrier_code == "ups":
            return "1Z" + digits[:16].upper()
        return "9400" + digits + "00"

    def label_json(self, lb: Label, base: str) -> dict[str, Any]:
        """The ShipEngine label object."""
        folder = f"{base}/v1/downloads/10/{lb.label_id.removeprefix('se-')}"
        files = {fmt: f"{folder}/label-{lb.label_id}.{fmt}" for fmt in ("pdf", "png", "zpl")}
        total_g = sum(_grams(p["weight"]) for p in lb.packages)
        created = _iso(lb.created_at)
        shipment = {
            **lb.shipment,
            "shipment_id": lb.shipment_id,
            "carrier_id": lb.carrier.carrier_id,
            "service_code": lb.service_code,
            "created_at": created,
            "modified_at": created,
            "ship_date": created[:10] + "T00:00:00Z",
            "shipment_status": "cancelled" if lb.status == "voided" else "label_purchased",
            "warehouse_id": None,
            "return_to": lb.shipment.get("return_to") or lb.shipment.get("ship_from"),
            "confirmation": lb.shipment.get("confirmation", "none"),
            "customs": lb.shipment.get("customs"),
            "advanced_options": lb.shipment.get("advanced_options") or {},
            "insurance_provider": lb.shipment.get("insurance_provider", "none"),
            "tags": [],
            "packages": lb.packages,
            "total_weight": {"value": round(total_g, 3), "unit": "gram"},
        }
        return {
            "label_id": lb.label_id,
            "status": lb.status,
            "shipment_id": lb.shipment_id,
            "external_shipment_id": lb.external_shipment_id,
            "external_order_id": lb.external_order_id,
            "shipment": shipment,
            "ship_date": created[:10] + "T00:00:00Z",
            "created_at": created,
            "shipment_cost": {"currency": "usd", "amount": round(5 + total_g / 500, 2)},
            "insurance_cost": {"currency": "usd", "amount": 0.0},
            "tracking_number": lb.tracking_number,
            "is_return_label": False,
            "rma_number": None,
            "is_international": (lb.shipment.get("ship_to") or {}).get("country_code")
            != (lb.shipment.get("ship_from") or {}).get("country_code"),
            "batch_id": "se-0",
            "carrier_id": lb.carrier.carrier_id,
            "charge_event": "carrier_default",
            "service_code": lb.service_code,
            "package_code": "package",
            "voided": lb.status == "voided",
            "voided_at": _iso(lb.voided_at) if lb.voided_at else None,
            "label_download_type": "url",
            "label_format": lb.label_format,
            "display_scheme": "label",
            "label_layout": lb.label_layout,
            "trackable": True,
            "label_image_id": None,
            "carrier_code": lb.carrier.carrier_code,
            "tracking_status": _TRACKING_STATUS[lb.status_code],
            "confirmation": lb.shipment.get("confirmation", "none"),
            "label_download": {"href": files[lb.label_format], **files},
            "form_download": None,
            "qr_code_download": None,
            "paperless_download": None,
            "insurance_claim": None,
            "packages": [
                {**{k: v for k, v in pkg.items() if k != "shipment_package_id"}, "sequence": i + 1}
                for i, pkg in enumerate(lb.packages)
            ],
            "alternative_identifiers": [],
            "tracking_url": lb.carrier.tracking_link(lb.tracking_number),
            "ship_to": lb.shipment.get("ship_to"),
        }


def _grams(weight: dict[str, Any]) -> float:
    return float(weight.get("value", 0)) * _GRAMS.get(str(weight.get("unit")), 1.0)


def _error(
    status: int,
    code: str,
    message: str,
    *,
    source: str = "shipengine",
    kind: str = "validation",
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    err = {"error_source": source, "error_type": kind, "error_code": code, "message": message}
    err.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse({"request_id": str(uuid.uuid4()), "errors": [err]}, status, headers=headers)


def _missing(field_name: str) -> JSONResponse:
    return _error(400, "field_value_required", f"{field_name} is required", field_name=field_name)


def _check_address(addr: Any, where: str, *, phone: bool) -> JSONResponse | None:
    if not isinstance(addr, dict):
        return _missing(where)
    unknown = sorted(set(addr) - _ADDRESS_KEYS)
    if unknown:
        return _error(
            400, "invalid_field_value", f"{where}.{unknown[0]} is not a known field",
            field_name=f"{where}.{unknown[0]}",
        )  # fmt: skip
    required = list(_ADDRESS_REQUIRED)
    if str(addr.get("country_code") or "").upper() in _STATE_REQUIRED_IN:
        required.insert(3, "state_province")
    if phone:
        required.append("phone")
    for name in required:
        value = addr.get(name)
        if not isinstance(value, str) or not value.strip():
            return _missing(f"{where}.{name}")
    if len(str(addr["country_code"])) != 2:
        return _error(
            400, "invalid_field_value", f"{where}.country_code must be a 2-letter code",
            field_name=f"{where}.country_code",
        )  # fmt: skip
    return None


def create_app(
    *,
    api_key: str = "TEST_crossdock_emulator_key",
    webhook_url: str | None = None,
    webhook_secret: str = "",
    public_url: str | None = None,
    time_scale: float = 1.0,
    tracking_interval: float = 3600.0,
    rate_limit: int = 200,
    rate_window: float = 60.0,
    duplicate_probability: float = 0.0,
    seed: int | None = None,
) -> Starlette:
    """The emulator app.

    ``api_key`` is the key every ``/v1`` call must send in ``API-Key``;
    ``webhook_secret`` is accepted for symmetry with other emulators but unused
    (ShipEngine signs with an RSA key published at ``/jwks``, not a shared secret);
    ``public_url`` is the root used in label and resource URLs (default: the request's);
    ``tracking_interval`` seconds between tracking steps (x ``time_scale``; 0 = only
    ``/_emulator/advance``); ``rate_limit`` requests per ``rate_window`` seconds
    (x ``time_scale``; 0 = unlimited) [ShipEngine's published figure is unconfirmed].
    """
    del webhook_secret  # RSA-signed; see the docstring
    faults = Faults(seed)
    sender = WebhookSender(
        time_scale=time_scale, duplicate_probability=duplicate_probability, seed=seed
    )
    st = ShipEngineState(
        api_key=api_key,
        webhook_url=webhook_url,
        public_url=public_url,
        time_scale=time_scale,
        tracking_interval=tracking_interval,
        rate_limit=rate_limit,
        rate_window=rate_window,
        seed=seed,
        sender=sender,
        faults=faults,
    )

    def guard(request: Request) -> Response | None:
        st.requests += 1
        st.ensure_ticker()
        if request.headers.get("api-key") != st.api_key:
            return _error(
                401,
                "unauthorized",
                "The API key is invalid. Please see https://www.shipengine.com/docs/auth",
                kind="security",
            )
        wait = st.throttle()
        if wait is not None:
            retry = max(1, math.ceil(wait))
            return _error(
                429,
                "rate_limit_exceeded",
                "You have exceeded the rate limit. Please slow down and retry later.",
                kind="system",
                headers={
                    "Retry-After": str(retry),
                    "X-Rate-Limit-Limit": str(st.rate_limit),
                    "X-Rate-Limit-Remaining": "0",
                    "X-Rate-Limit-Reset": str(retry),
                },
            )
        return None

    async def body_json(request: Request) -> Any:
        raw = await request.body()
        if not raw:
            return None
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            return ...

    def find(label_id: str) -> Label | None:
        return st.labels.get(label_id)

    def not_found(what: str) -> JSONResponse:
        return _error(404, "invalid_identifier", f"{what} was not found", kind="validation")

    # -- carriers ------------------------------------------------------------------------

    async def carriers(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        out = []
        for c in CARRIERS:
            out.append(
                {
                    "carrier_id": c.carrier_id,
                    "carrier_code": c.carrier_code,
                    "account_number": f"ACCT-{c.carrier_id[3:]}",
                    "requires_funded_amount": False,
                    "balance": 100.0,
                    "nickname": c.friendly_name,
                    "friendly_name": c.friendly_name,
                    "funding_source_id": None,
                    "primary": c.carrier_id == "se-101",
                    "has_multi_package_supporting_services": True,
                    "allows_returns": True,
                    "supports_label_messages": True,
                    "disabled_by_billing_plan": False,
                    "services": [
                        {
                            "carrier_id": c.carrier_id,
                            "carrier_code": c.carrier_id,
                            "service_code": code,
                            "name": name,
                            "domestic": True,
                            "international": False,
                            "is_multi_package_supported": True,
                            "is_return_supported": True,
                        }
                        for code, name in c.services
                    ],
                    "packages": [],
                    "options": [],
                    "send_rates": True,
                    "supports_user_managed_rates": False,
                    "connection_status": "approved",
                }
            )
        return JSONResponse({"carriers": out, "request_id": str(uuid.uuid4()), "errors": []})

    # -- labels --------------------------------------------------------------------------

    async def create_label(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        body = await body_json(request)
        if body is ... or not isinstance(body, dict):
            return _error(400, "request_body_required", "A JSON request body is required")
        unknown = sorted(set(body) - _LABEL_KEYS)
        if unknown:
            return _error(400, "invalid_field_value", f"{unknown[0]} is not a known field",
                          field_name=unknown[0])  # fmt: skip
        shipment = body.get("shipment")
        if not isinstance(shipment, dict):
            return _missing("shipment")
        unknown = sorted(set(shipment) - _SHIPMENT_KEYS)
        if unknown:
            return _error(400, "invalid_field_value",
                          f"shipment.{unknown[0]} is not a known field",
                          field_name=f"shipment.{unknown[0]}")  # fmt: skip
        for name in ("carrier_id", "service_code"):
            if not shipment.get(name):
                return _missing(f"shipment.{name}")
        carrier = st.carriers.get(str(shipment["carrier_id"]))
        if carrier is None:
            return _error(400, "invalid_identifier",
                          f"carrier_id {shipment['carrier_id']} was not found",
                          field_name="shipment.carrier_id")  # fmt: skip
        services = dict(carrier.services)
        if shipment["service_code"] not in services:
            return _error(
                400, "invalid_field_value",
                f"{carrier.carrier_code} has no service {shipment['service_code']!r}; "
                f"use one of {', '.join(services)}",
                field_name="shipment.service_code",
            )  # fmt: skip
        problem = _check_address(shipment.get("ship_to"), "shipment.ship_to", phone=False)
        if problem is None:
            problem = _check_address(shipment.get("ship_from"), "shipment.ship_from", phone=True)
        if problem is not None:
            return problem
        packages = shipment.get("packages")
        if not isinstance(packages, list) or not packages:
            return _missing("shipment.packages")
        for i, pkg in enumerate(packages):
            weight = pkg.get("weight") if isinstance(pkg, dict) else None
            if (
                not isinstance(weight, dict)
                or weight.get("unit") not in _GRAMS
                or not isinstance(weight.get("value"), int | float)
                or weight["value"] <= 0
            ):
                return _error(
                    400, "invalid_field_value",
                    f"shipment.packages[{i}].weight needs a value above 0 and a unit "
                    "(pound, ounce, gram, kilogram)",
                    field_name=f"shipment.packages[{i}].weight",
                )  # fmt: skip
            lb_weight = _grams(weight) / _GRAMS["pound"]
            if lb_weight > carrier.max_weight_lb:
                return _error(
                    400, "unspecified",
                    f"Package {i + 1} weighs {lb_weight:.1f} lb; {carrier.friendly_name} "
                    f"accepts at most {carrier.max_weight_lb:g} lb per package for "
                    f"{services[shipment['service_code']]}.",
                    source="carrier", kind="business_rules",
                    carrier_id=carrier.carrier_id, carrier_code=carrier.carrier_code,
                )  # fmt: skip
        external = shipment.get("external_shipment_id")
        if external and external in st.by_external:
            return _error(
                400, "identifier_conflict",
                f"A shipment with external_shipment_id {external} already exists",
                field_name="shipment.external_shipment_id",
            )  # fmt: skip
        fmt = str(body.get("label_format") or "pdf")
        n = st.next_id()
        label = Label(
            label_id=f"se-{100000 + n}",
            shipment_id=f"se-{200000 + n}",
            carrier=carrier,
            service_code=str(shipment["service_code"]),
            tracking_number=st.tracking_number(carrier),
            external_shipment_id=external,
            external_order_id=shipment.get("external_order_id"),
            label_format=fmt,
            label_layout=str(body.get("label_layout") or "4x6"),
            shipment={k: v for k, v in shipment.items() if k != "packages"},
            packages=[
                {
                    **pkg,
                    "shipment_package_id": f"se-{300000 + n * 10 + i}",
                    "tracking_number": None,
                }
                for i, pkg in enumerate(packages)
            ],
            created_at=_now(),
        )
        for pkg in label.packages:
            pkg["tracking_number"] = label.tracking_number
        st.labels[label.label_id] = label
        if external:
            st.by_external[external] = label.label_id
        return JSONResponse(st.label_json(label, st.base(request)), 200)

    async def list_labels(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        q = request.query_params
        try:
            page = int(q.get("page", "1"))
            size = int(q.get("page_size", "25"))
        except ValueError:
            return _error(400, "invalid_field_value", "page and page_size must be integers")
        if page < 1 or size < 1:
            return _error(400, "invalid_field_value", "page and page_size must be 1 or more")
        items = list(st.labels.values())
        for name in ("carrier_id", "service_code", "tracking_number"):
            if q.get(name):
                items = [
                    lb for lb in items
                    if (lb.carrier.carrier_id if name == "carrier_id" else getattr(lb, name))
                    == q[name]
                ]  # fmt: skip
        if q.get("label_status"):
            items = [lb for lb in items if lb.status == q["label_status"]]
        for name, keep in (("created_at_start", True), ("created_at_end", False)):
            if q.get(name):
                try:
                    bound = datetime.fromisoformat(q[name].replace("Z", "+00:00"))
                except ValueError:
                    return _error(400, "invalid_field_value", f"{name} is not a date-time",
                                  field_name=name)  # fmt: skip
                if bound.tzinfo is None:
                    bound = bound.replace(tzinfo=UTC)
                items = [
                    lb for lb in items
                    if (lb.created_at >= bound if keep else lb.created_at <= bound)
                ]  # fmt: skip
        sort_by = q.get("sort_by", "created_at")
        if sort_by not in ("created_at", "modified_at", "voided_at"):
            return _error(400, "invalid_field_value", "sort_by is not valid", field_name="sort_by")
        desc = q.get("sort_dir", "desc") == "desc"
        items.sort(key=lambda lb: (lb.created_at, lb.label_id), reverse=desc)
        total = len(items)
        pages = max(1, math.ceil(total / size)) if total else 0
        chunk = items[(page - 1) * size : page * size]
        base = st.base(request)

        def link(p: int) -> dict[str, str]:
            params = dict(q)
            params.update(page=str(p), page_size=str(size))
            return {"href": f"{base}/v1/labels?{urlencode(params)}"}

        return JSONResponse(
            {
                "labels": [st.label_json(lb, base) for lb in chunk],
                "total": total,
                "page": page,
                "pages": pages,
                "links": {
                    "first": link(1),
                    "last": link(max(pages, 1)),
                    "prev": link(page - 1) if page > 1 else {},
                    "next": link(page + 1) if page < pages else {},
                },
            }
        )

    async def get_label(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        lb = find(request.path_params["label_id"])
        if lb is None:
            return not_found(f"Label {request.path_params['label_id']}")
        return JSONResponse(st.label_json(lb, st.base(request)))

    async def get_by_external(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        ext = request.path_params["external_shipment_id"]
        label_id = st.by_external.get(ext)
        if label_id is None:
            return not_found(f"A label with external_shipment_id {ext}")
        return JSONResponse(st.label_json(st.labels[label_id], st.base(request)))

    async def void_label(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        lb = find(request.path_params["label_id"])
        if lb is None:
            return not_found(f"Label {request.path_params['label_id']}")
        if lb.status == "voided":
            return JSONResponse(
                {"approved": False, "message": "This label has already been voided.",
                 "reason_code": "label_already_voided"}
            )  # fmt: skip
        if lb.status_code not in ("UN", "NY"):
            return JSONResponse(
                {"approved": False,
                 "message": "The carrier has already scanned this label; it cannot be voided.",
                 "reason_code": "label_already_used"}
            )  # fmt: skip
        lb.status = "voided"
        lb.voided_at = _now()
        return JSONResponse(
            {"approved": True, "message": "Request for refund submitted.  This label has been "
             "voided.", "reason_code": "unspecified"}
        )  # fmt: skip

    async def track_label(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        lb = find(request.path_params["label_id"])
        if lb is None:
            return not_found(f"Label {request.path_params['label_id']}")
        return JSONResponse(st.tracking_info(lb))

    async def tracking(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        number = request.query_params.get("tracking_number")
        code = request.query_params.get("carrier_code")
        if not number:
            return _missing("tracking_number")
        for lb in st.labels.values():
            if lb.tracking_number == number and (not code or lb.carrier.carrier_code == code):
                return JSONResponse(st.tracking_info(lb))
        return not_found(f"Tracking number {number}")

    # -- webhooks ------------------------------------------------------------------------

    async def webhooks(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        if request.method == "GET":
            return JSONResponse(st.webhooks)
        body = await body_json(request)
        if not isinstance(body, dict):
            return _error(400, "request_body_required", "A JSON request body is required")
        for name in ("event", "url"):
            if not body.get(name):
                return _missing(name)
        if body["event"] not in (
            "batch",
            "carrier_connected",
            "order_source_refresh_complete",
            "rate",
            "report_complete",
            "sales_orders_imported",
            "track",
        ):
            return _error(400, "invalid_field_value", "event is not a webhook event",
                          field_name="event")  # fmt: skip
        if any(w["event"] == body["event"] and w["url"] == body["url"] for w in st.webhooks):
            return _error(409, "webhook_event_type_conflict",
                          f"A webhook for {body['event']} at this url already exists",
                          kind="business_rules")  # fmt: skip
        hook: dict[str, Any] = {
            "webhook_id": f"se-{400000 + st.next_id()}",
            "url": str(body["url"]),
            "event": str(body["event"]),
            "headers": list(body.get("headers") or []),
        }
        if body.get("name"):
            hook["name"] = str(body["name"])
        st.webhooks.append(hook)
        return JSONResponse(hook)

    async def delete_webhook(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        wid = request.path_params["webhook_id"]
        before = len(st.webhooks)
        st.webhooks = [w for w in st.webhooks if w["webhook_id"] != wid]
        if len(st.webhooks) == before:
            return not_found(f"Webhook {wid}")
        return Response(status_code=204)

    async def download(request: Request) -> Response:
        name = request.path_params["filename"]
        media = {"pdf": "application/pdf", "png": "image/png", "zpl": "text/plain"}
        return Response(_PDF, media_type=media.get(name.rsplit(".", 1)[-1], "application/pdf"))

    async def jwks(request: Request) -> Response:
        return JSONResponse(st.jwks())

    # -- control -------------------------------------------------------------------------

    async def advance(request: Request) -> Response:
        body = await body_json(request)
        body = body if isinstance(body, dict) else {}
        code = body.get("status_code")
        if code is not None and code not in _STATUS_TEXT:
            return JSONResponse({"error": f"status_code must be one of {list(_STATUS_TEXT)}"}, 400)
        targets = list(st.labels.values())
        if body.get("label_id"):
            targets = [lb for lb in targets if lb.label_id == body["label_id"]]
        elif body.get("tracking_number"):
            targets = [lb for lb in targets if lb.tracking_number == body["tracking_number"]]
        else:
            targets = [
                lb for lb in targets if lb.status == "completed" and lb.status_code not in _FINAL
            ]
        if not targets and (body.get("label_id") or body.get("tracking_number")):
            return JSONResponse({"error": "no such label"}, 404)
        base = st.base(request)
        for lb in targets:
            st.advance(lb, code, base)
        return JSONResponse(
            {"advanced": [{"label_id": lb.label_id, "status_code": lb.status_code}
                          for lb in targets]}
        )  # fmt: skip

    routes = [
        Route("/v1/carriers", carriers, methods=["GET"]),
        Route("/v1/labels", create_label, methods=["POST"]),
        Route("/v1/labels", list_labels, methods=["GET"]),
        Route(
            "/v1/labels/external_shipment_id/{external_shipment_id}",
            get_by_external,
            methods=["GET"],
        ),
        Route("/v1/labels/{label_id}", get_label, methods=["GET"]),
        Route("/v1/labels/{label_id}/void", void_label, methods=["PUT"]),
        Route("/v1/labels/{label_id}/track", track_label, methods=["GET"]),
        Route("/v1/tracking", tracking, methods=["GET"]),
        Route("/v1/environment/webhooks", webhooks, methods=["GET", "POST"]),
        Route("/v1/environment/webhooks/{webhook_id}", delete_webhook, methods=["DELETE"]),
        Route("/v1/downloads/{dir}/{subdir}/{filename}", download, methods=["GET"]),
        Route("/jwks", jwks, methods=["GET"]),
        Route("/_emulator/advance", advance, methods=["POST"]),
        *control_routes(faults, st.snapshot, st.reset, sender),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(FaultMiddleware, faults=faults)])
    app.state.emulator = st
    return app
