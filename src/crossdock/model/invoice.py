"""The canonical Invoice: what is billed to a customer for an order."""

from __future__ import annotations

from decimal import Decimal
from typing import Self

from pydantic import Field, model_validator

from crossdock.model.common import (
    Address,
    CanonicalModel,
    Customer,
    Discount,
    Money,
    OrderRef,
    SourceRef,
    TaxLine,
    Timestamp,
    Totals,
    require_one_currency,
)
from crossdock.model.status import InvoiceStatus

__all__ = ["Invoice", "InvoiceLine"]


class InvoiceLine(CanonicalModel):
    """One line of an invoice. The quantity is a decimal (invoices may bill 1.5 kg)."""

    sku: str | None = None
    description: str
    quantity: Decimal = Field(gt=0, allow_inf_nan=False)
    unit_price: Money
    tax_lines: list[TaxLine] = Field(default_factory=list)
    discounts: list[Discount] = Field(default_factory=list)


class Invoice(CanonicalModel):
    """An invoice for an order. All amounts share one currency; `due_at` is not before
    `issued_at`."""

    number: str = Field(min_length=1)
    id: str | None = None
    source: SourceRef | None = None
    order: OrderRef | None = None
    customer: Customer | None = None
    billing_address: Address | None = None
    lines: list[InvoiceLine] = Field(default_factory=list)
    tax_lines: list[TaxLine] = Field(default_factory=list)
    totals: Totals
    issued_at: Timestamp
    due_at: Timestamp | None = None
    status: InvoiceStatus = InvoiceStatus.ISSUED

    @model_validator(mode="after")
    def _check(self) -> Self:
        amounts: list[Money | None] = [self.totals.total]
        for line in self.lines:
            amounts += [line.unit_price, *(t.amount for t in line.tax_lines)]
            amounts += [d.amount for d in line.discounts]
        amounts += [t.amount for t in self.tax_lines]
        require_one_currency(amounts, "all amounts of an invoice")
        if self.due_at is not None and self.due_at < self.issued_at:
            raise ValueError("due_at cannot be before issued_at")
        return self
