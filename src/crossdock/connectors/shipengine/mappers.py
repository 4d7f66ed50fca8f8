"""Canonical records <-> ShipEngine payloads.

The order reference of a tracking update is recovered from what the label carries: the
label's ``external_order_id`` (the connector sends the canonical ``order.id`` there when
it buys the label) and ``shipment.shipment_number`` (the source shipment id). When a
label was bought outside Crossdock (no ``external_order_id``), the fallback is an
``OrderRef`` whose ``id`` is the tracking number and whose ``connection`` is this
ShipEngine connection, so a flow can tell it is not a storefront order id.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from crossdock.model import (
    Address,
    Location,
    Shipment,
    TrackingEvent,
    TrackingStatus,
    shipment_status_from_tracking,
    tracking_status_from_shipengine,
)

__all__ = [
    "address_to_shipengine",
    "external_shipment_id",
    "label_to_shipment",
    "normalize_status",
    "packages_from_parcels",
    "tracking_to_shipment",
    "version_of",
]

_WEIGHT_UNITS = {"g": "gram", "kg": "kilogram", "oz": "ounce", "lb": "pound"}
_LENGTH = {"mm": ("centimeter", Decimal("0.1")), "cm": ("centimeter", Decimal(1)),
           "m": ("centimeter", Decimal(100)), "in": ("inch", Decimal(1)),
           "ft": ("inch", Decimal(12))}  # fmt: skip


def external_shipment_id(idempotency_key: str) -> str:
    """ShipEngine's ``external_shipment_id`` (max 50 chars) for a hub idempotency key."""
    return "xd-" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:40]


def address_to_shipengine(addr: Address, *, residential: bool | None = None) -> dict[str, Any]:
    """A canonical address as a ShipEngine address (absent parts are left out)."""
    out: dict[str, Any] = {
        "name": addr.name or addr.company,
        "phone": addr.phone,
        "email": addr.email,
        "company_name": addr.company,
        "address_line1": addr.line1,
        "address_line2": addr.line2,
        "city_locality": addr.city,
        "state_province": addr.region,
        "postal_code": addr.postal_code,
        "country_code": addr.country_code,
    }
    out = {k: v.strip() for k, v in out.items() if isinstance(v, str) and v.strip()}
    if residential is not None:
        out["address_residential_indicator"] = "yes" if residential else "no"
    return out


def _number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def packages_from_parcels(shipment: Shipment) -> list[dict[str, Any]]:
    """ShipEngine packages from the canonical parcels (weights and dimensions)."""
    out: list[dict[str, Any]] = []
    for parcel in shipment.parcels:
        pkg: dict[str, Any] = {
            "weight": {
                "value": _number(parcel.weight.value),
                "unit": _WEIGHT_UNITS[parcel.weight.unit.value],
            }
        }
        if parcel.dimensions is not None:
            unit, factor = _LENGTH[parcel.dimensions.unit.value]
            d = parcel.dimensions
            pkg["dimensions"] = {
                "unit": unit,
                "length": _number(d.length * factor),
                "width": _number(d.width * factor),
                "height": _number(d.height * factor),
            }
        if parcel.reference:
            pkg["external_package_id"] = parcel.reference
        out.append(pkg)
    return out


def normalize_status(code: Any) -> TrackingStatus:
    """A ShipEngine ``status_code`` as a canonical tracking status (unknown codes: unknown)."""
    try:
        return tracking_status_from_shipengine(str(code))
    except ValueError:
        return TrackingStatus.UNKNOWN


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _location(ev: dict[str, Any]) -> Location | None:
    country = str(ev.get("country_code") or "").upper()
    loc = {
        "city": ev.get("city_locality") or None,
        "region": ev.get("state_province") or None,
        "postal_code": ev.get("postal_code") or None,
        "country_code": country if len(country) == 2 and country.isalpha() else None,
    }
    loc = {k: v for k, v in loc.items() if v}
    return Location.model_validate(loc) if loc else None


def _events(info: dict[str, Any]) -> list[TrackingEvent]:
    out = []
    for ev in info.get("events") or []:
        if not isinstance(ev, dict):
            continue
        when = _time(ev.get("occurred_at")) or _time(ev.get("carrier_occurred_at"))
        if when is None:
            continue
        code = ev.get("status_code") or ""
        out.append(
            TrackingEvent(
                occurred_at=when,
                status=normalize_status(code),
                description=ev.get("description") or ev.get("status_description") or None,
                location=_location(ev),
                raw_status=str(code) or None,
            )
        )
    out.sort(key=lambda e: e.occurred_at)
    return out


def version_of(info: dict[str, Any]) -> str:
    """An orderable version of a tracking state: the latest event's time (UTC ISO) and
    the number of events, so a new scan always sorts later."""
    events = _events(info)
    if not events:
        return f"0000-00-00T00:00:00Z#0#{info.get('status_code') or 'UN'}"
    last = max(e.occurred_at for e in events).astimezone(UTC)
    stamp = last.isoformat(timespec="microseconds").replace("+00:00", "Z")
    return f"{stamp}#{len(events):04d}"


def position_of(info: dict[str, Any]) -> str | None:
    """The latest event's time as a cursor position (None without events)."""
    events = _events(info)
    if not events:
        return None
    last = max(e.occurred_at for e in events).astimezone(UTC)
    return last.isoformat(timespec="microseconds").replace("+00:00", "Z")


def tracking_to_shipment(
    info: dict[str, Any],
    *,
    order: dict[str, Any],
    carrier: str | None = None,
    shipment_id: str | None = None,
    base: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A canonical Shipment (JSON) from a ShipEngine tracking log."""
    events = _events(info)
    latest = events[-1].status if events else normalize_status(info.get("status_code") or "UN")
    record: dict[str, Any] = dict(base or {})
    record.update(
        {
            "id": shipment_id or record.get("id"),
            "order": order,
            "status": shipment_status_from_tracking(latest).value,
            "carrier": carrier or info.get("carrier_code") or record.get("carrier"),
            "tracking_number": info.get("tracking_number") or record.get("tracking_number"),
            "tracking_url": info.get("tracking_url") or record.get("tracking_url"),
            "events": [e.model_dump(mode="json", exclude_none=True) for e in events],
        }
    )
    if events and record.get("shipped_at") is None:
        record["shipped_at"] = events[0].occurred_at.isoformat()
    clean = {k: v for k, v in record.items() if v is not None}
    return Shipment.model_validate(clean).model_dump(mode="json", exclude_none=True)


def order_ref_of(label: dict[str, Any], connection: str) -> dict[str, Any]:
    """The order a label belongs to (see the module docstring for the fallback)."""
    order_id = label.get("external_order_id")
    if isinstance(order_id, str) and order_id:
        return {"id": order_id}
    return {"id": str(label.get("tracking_number") or label.get("label_id")),
            "connection": connection}  # fmt: skip


def label_to_shipment(
    label: dict[str, Any], *, connection: str, base: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A canonical Shipment (JSON) from a ShipEngine label, merged over ``base`` (the
    record the label was bought for, when known)."""
    record: dict[str, Any] = dict(base or {})
    if "order" not in record:
        record["order"] = order_ref_of(label, connection)
    shipment = label.get("shipment") if isinstance(label.get("shipment"), dict) else {}
    if record.get("id") is None:
        record["id"] = (shipment or {}).get("shipment_number") or label.get("label_id")
    downloads = label.get("label_download") if isinstance(label.get("label_download"), dict) else {}
    fmt = str(label.get("label_format") or "pdf")
    url = (downloads or {}).get(fmt) or (downloads or {}).get("href")
    voided = label.get("status") == "voided" or label.get("voided") is True
    record.update(
        {
            "carrier": label.get("carrier_code") or record.get("carrier"),
            "service": label.get("service_code") or record.get("service"),
            "tracking_number": label.get("tracking_number") or record.get("tracking_number"),
            "tracking_url": label.get("tracking_url") or record.get("tracking_url"),
            "status": "cancelled" if voided else "label_created",
        }
    )
    if url:
        record["label"] = {"format": fmt, "url": url}
    if record.get("created_at") is None and label.get("created_at"):
        record["created_at"] = label["created_at"]
    clean = {k: v for k, v in record.items() if v is not None}
    return Shipment.model_validate(clean).model_dump(mode="json", exclude_none=True)
