"""The canonical Return: goods a customer sends back, and the refund for them."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from crossdock.model.common import CanonicalModel, Money, OrderRef, SourceRef, Timestamp
from crossdock.model.status import ReturnStatus

__all__ = ["Return", "ReturnLine", "ReturnReason"]


class ReturnReason(StrEnum):
    """Why a customer returns an item."""

    DAMAGED = "damaged"
    DEFECTIVE = "defective"
    WRONG_ITEM = "wrong_item"
    NOT_AS_DESCRIBED = "not_as_described"
    SIZE_OR_FIT = "size_or_fit"
    CHANGED_MIND = "changed_mind"
    UNDELIVERED = "undelivered"
    OTHER = "other"
    UNKNOWN = "unknown"


class ReturnLine(CanonicalModel):
    """One returned SKU with its quantity, reason and the customer's own words."""

    sku: str = Field(min_length=1)
    quantity: int = Field(gt=0)
    reason: ReturnReason = ReturnReason.UNKNOWN
    note: str | None = None
    order_line_id: str | None = None


class Return(CanonicalModel):
    """A return (RMA) against an order: at least one line, a status, and the refund."""

    id: str | None = None
    source: SourceRef | None = None
    order: OrderRef
    lines: list[ReturnLine] = Field(min_length=1)
    status: ReturnStatus = ReturnStatus.REQUESTED
    refund: Money | None = None
    created_at: Timestamp | None = None
    updated_at: Timestamp | None = None
