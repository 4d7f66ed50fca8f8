"""Canonical inventory: stock levels of a SKU at a location, and changes to them."""

from __future__ import annotations

from enum import StrEnum
from typing import Self

from pydantic import Field, model_validator

from crossdock.model.common import CanonicalModel, SourceRef, Timestamp

__all__ = ["InventoryChange", "InventoryChangeReason", "InventoryLevel"]


class InventoryLevel(CanonicalModel):
    """Stock of one SKU at one location. Quantities a source does not report are None,
    but at least one of `on_hand` and `available` must be known; when known, `available`
    and `reserved` cannot exceed `on_hand`."""

    sku: str = Field(min_length=1)
    location: str = Field(min_length=1)
    on_hand: int | None = Field(default=None, ge=0)
    available: int | None = Field(default=None, ge=0)
    reserved: int | None = Field(default=None, ge=0)
    source: SourceRef | None = None
    updated_at: Timestamp | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.on_hand is None and self.available is None:
            raise ValueError("an inventory level needs on_hand or available (or both)")
        if self.on_hand is not None:
            for name in ("available", "reserved"):
                value = getattr(self, name)
                if value is not None and value > self.on_hand:
                    raise ValueError(f"{name} ({value}) cannot exceed on_hand ({self.on_hand})")
        return self


class InventoryChangeReason(StrEnum):
    """Why stock changed."""

    RECEIVED = "received"
    SOLD = "sold"
    RETURNED = "returned"
    RESTOCKED = "restocked"
    DAMAGED = "damaged"
    CORRECTION = "correction"
    CYCLE_COUNT = "cycle_count"
    TRANSFER = "transfer"
    RESERVED = "reserved"
    RELEASED = "released"
    OTHER = "other"


class InventoryChange(CanonicalModel):
    """A change to the stock of one SKU at one location: either a relative `delta` or an
    absolute `set_to`, never both. `compare_to` (with `set_to` only) makes the set
    conditional on the current quantity, as Shopify's compare-and-set does."""

    sku: str = Field(min_length=1)
    location: str = Field(min_length=1)
    delta: int | None = None
    set_to: int | None = Field(default=None, ge=0)
    compare_to: int | None = Field(default=None, ge=0)
    reason: InventoryChangeReason = InventoryChangeReason.CORRECTION
    reference: str | None = None
    occurred_at: Timestamp | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        if (self.delta is None) == (self.set_to is None):
            raise ValueError("an inventory change needs exactly one of delta or set_to")
        if self.delta == 0:
            raise ValueError("delta must not be zero")
        if self.compare_to is not None and self.set_to is None:
            raise ValueError("compare_to is only allowed with set_to")
        return self
