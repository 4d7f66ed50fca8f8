"""What a connector hands the hub: incoming events carrying canonical records."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from crossdock.model import (
    InventoryChange,
    InventoryLevel,
    Invoice,
    Order,
    Product,
    Return,
    Shipment,
)
from crossdock.model.common import CanonicalModel

__all__ = ["IncomingEvent", "canonical_model_for"]


@dataclass
class IncomingEvent:
    """One fact from a vendor, already mapped to the canonical model.

    ``type`` is the hub's event type (``order.created``, ``shipment.created``,
    ``inventory.changed`` ...), ``record_key`` the record's id at the vendor, ``version``
    orders versions of one record (an ``updated_at`` or a counter), ``event_id`` the
    vendor's own event id when it has one (dedup), ``record`` the canonical record as
    JSON-ready data, and ``position`` the stream cursor value this event reached.
    """

    type: str
    record_key: str
    record: dict[str, Any]
    version: str | None = None
    event_id: str | None = None
    position: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


_MODELS: dict[str, type[CanonicalModel]] = {
    "order": Order,
    "shipment": Shipment,
    "tracking": Shipment,
    "invoice": Invoice,
    "product": Product,
    "return": Return,
    "inventory.level": InventoryLevel,
    "inventory.changed": InventoryChange,
    "inventory": InventoryLevel,
}


def canonical_model_for(event_type: str) -> type[CanonicalModel] | None:
    """The canonical model an event type's record must validate against."""
    for prefix in sorted(_MODELS, key=len, reverse=True):
        if event_type == prefix or event_type.startswith(prefix + "."):
            return _MODELS[prefix]
    return None
