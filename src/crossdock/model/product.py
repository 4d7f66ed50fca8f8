"""The canonical Product (also called Item): one sellable SKU."""

from __future__ import annotations

from pydantic import Field

from crossdock.model.common import CanonicalModel, Money, SourceRef, Timestamp, Weight

__all__ = ["Item", "Product", "Variant"]


class Variant(CanonicalModel):
    """How a SKU differs from its siblings: the parent product it belongs to and the
    option values that pick it out, e.g. `{"Size": "M", "Colour": "Blue"}`."""

    group_id: str | None = None
    title: str | None = None
    options: dict[str, str] = Field(default_factory=dict)


class Product(CanonicalModel):
    """A sellable item identified by its SKU (the key inventory and order lines use)."""

    id: str | None = None
    source: SourceRef | None = None
    sku: str = Field(min_length=1)
    barcode: str | None = None
    title: str
    variant: Variant | None = None
    weight: Weight | None = None
    price: Money | None = None
    updated_at: Timestamp | None = None


Item = Product
"""`Item` is another name for `Product`."""
