"""The canonical Order: what a storefront or marketplace sold, to whom, for how much."""

from __future__ import annotations

import re
from typing import Annotated, Self

from pydantic import AfterValidator, Field, WithJsonSchema, model_validator

from crossdock.model.common import (
    Address,
    CanonicalModel,
    Customer,
    Discount,
    Money,
    SourceRef,
    TaxLine,
    Timestamp,
    Totals,
    require_one_currency,
)
from crossdock.model.status import FinancialStatus, FulfillmentStatus, OrderStatus

__all__ = ["Order", "OrderLine", "ShippingLine", "TimeZoneName"]

_TZ_NAME_RE = re.compile(r"^(UTC|[A-Za-z]+(/[A-Za-z0-9_+\-]+)+)$")


def _check_tz_name(value: str) -> str:
    if not _TZ_NAME_RE.fullmatch(value):
        raise ValueError(
            f"time zone {value!r} is not an IANA name; use e.g. 'Europe/Istanbul' or 'UTC'"
        )
    return value


TimeZoneName = Annotated[
    str,
    AfterValidator(_check_tz_name),
    WithJsonSchema(
        {"type": "string", "pattern": _TZ_NAME_RE.pattern, "description": "IANA time zone"}
    ),
]
"""An IANA time zone name such as `Europe/Istanbul`."""


class OrderLine(CanonicalModel):
    """One line of an order. `sku` may be missing (a custom line item has none); a
    destination that needs it reports that as an exception for this order."""

    id: str | None = None
    sku: str | None = None
    name: str
    variant_id: str | None = None
    quantity: int = Field(gt=0)
    unit_price: Money
    tax_lines: list[TaxLine] = Field(default_factory=list)
    discounts: list[Discount] = Field(default_factory=list)

    def amounts(self) -> list[Money]:
        """Every money amount on this line."""
        return [
            self.unit_price,
            *(t.amount for t in self.tax_lines),
            *(d.amount for d in self.discounts),
        ]


class ShippingLine(CanonicalModel):
    """A shipping charge on an order: the method the buyer chose and its price."""

    title: str
    code: str | None = None
    carrier: str | None = None
    price: Money
    tax_lines: list[TaxLine] = Field(default_factory=list)


class Order(CanonicalModel):
    """An order from a storefront or marketplace. Every amount in it (lines, taxes,
    discounts, shipping, totals) is in one currency; timestamps carry a time zone."""

    id: str = Field(min_length=1)
    number: str | None = None
    source: SourceRef | None = None
    status: OrderStatus
    financial_status: FinancialStatus | None = None
    fulfillment_status: FulfillmentStatus | None = None
    customer: Customer | None = None
    shipping_address: Address | None = None
    billing_address: Address | None = None
    lines: list[OrderLine] = Field(default_factory=list)
    shipping_lines: list[ShippingLine] = Field(default_factory=list)
    tax_lines: list[TaxLine] = Field(default_factory=list)
    discounts: list[Discount] = Field(default_factory=list)
    totals: Totals
    created_at: Timestamp
    updated_at: Timestamp | None = None
    cancelled_at: Timestamp | None = None
    timezone: TimeZoneName | None = None
    notes: str | None = None
    tags: list[str] = Field(default_factory=list)

    @property
    def currency(self) -> str:
        """The order's currency (that of its totals)."""
        return self.totals.currency

    @model_validator(mode="after")
    def _one_currency(self) -> Self:
        amounts: list[Money | None] = [self.totals.total]
        for line in self.lines:
            amounts += line.amounts()
        for ship in self.shipping_lines:
            amounts += [ship.price, *(t.amount for t in ship.tax_lines)]
        amounts += [t.amount for t in self.tax_lines]
        amounts += [d.amount for d in self.discounts]
        require_one_currency(amounts, "all amounts of an order")
        return self
