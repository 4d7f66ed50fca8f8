"""The canonical Shipment: parcels sent for an order, their label and tracking."""

from __future__ import annotations

import base64
import binascii
from enum import StrEnum
from typing import Self

from pydantic import Field, model_validator

from crossdock.model.common import (
    Address,
    CanonicalModel,
    Dimensions,
    Location,
    OrderRef,
    SourceRef,
    Timestamp,
    Weight,
)
from crossdock.model.status import ShipmentStatus, TrackingStatus

__all__ = [
    "Label",
    "LabelFormat",
    "Parcel",
    "Shipment",
    "ShipmentLine",
    "TrackingEvent",
]


class LabelFormat(StrEnum):
    """File format of a shipping label."""

    PDF = "pdf"
    PNG = "png"
    ZPL = "zpl"


class Label(CanonicalModel):
    """A shipping label: where to download it (`url`) or its bytes in base64 (`data`);
    exactly one of the two."""

    format: LabelFormat
    url: str | None = None
    data: str | None = None

    @model_validator(mode="after")
    def _url_or_data(self) -> Self:
        if (self.url is None) == (self.data is None):
            raise ValueError("a label needs exactly one of url or data (base64)")
        if self.data is not None:
            try:
                base64.b64decode(self.data, validate=True)
            except (binascii.Error, ValueError):
                raise ValueError("label data is not valid base64") from None
        return self


class ShipmentLine(CanonicalModel):
    """How many of a SKU went into this shipment."""

    sku: str = Field(min_length=1)
    quantity: int = Field(gt=0)
    order_line_id: str | None = None


class Parcel(CanonicalModel):
    """One physical package: its weight and, when known, its dimensions."""

    weight: Weight
    dimensions: Dimensions | None = None
    reference: str | None = None


class TrackingEvent(CanonicalModel):
    """One carrier scan or status change. `raw_status` keeps the carrier's own code."""

    occurred_at: Timestamp
    status: TrackingStatus
    description: str | None = None
    location: Location | None = None
    raw_status: str | None = None


class Shipment(CanonicalModel):
    """Goods shipped for an order: lines, parcels, carrier and service, tracking number
    and URL, the label, and the tracking events seen so far."""

    id: str | None = None
    source: SourceRef | None = None
    order: OrderRef
    status: ShipmentStatus = ShipmentStatus.PENDING
    lines: list[ShipmentLine] = Field(default_factory=list)
    parcels: list[Parcel] = Field(default_factory=list)
    ship_to: Address | None = None
    ship_from: Address | None = None
    carrier: str | None = None
    service: str | None = None
    tracking_number: str | None = None
    tracking_url: str | None = None
    label: Label | None = None
    events: list[TrackingEvent] = Field(default_factory=list)
    created_at: Timestamp | None = None
    shipped_at: Timestamp | None = None

    @property
    def latest_event(self) -> TrackingEvent | None:
        """The most recent tracking event, if any."""
        return max(self.events, key=lambda e: e.occurred_at, default=None)
