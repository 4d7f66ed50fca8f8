"""The sandbox catalogue every emulator starts with, so a demo order's SKUs exist in the
storefront, the warehouse and the ERP alike (and an unknown SKU is unknown everywhere)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CATALOG", "WAREHOUSE", "CatalogItem", "by_sku"]


@dataclass(frozen=True)
class CatalogItem:
    """One product of the sandbox catalogue."""

    sku: str
    title: str
    price: str
    grams: int
    stock: int


CATALOG: tuple[CatalogItem, ...] = (
    CatalogItem("TEE-BLK-S", "Crossdock Tee, black, S", "19.90", 180, 400),
    CatalogItem("TEE-BLK-M", "Crossdock Tee, black, M", "19.90", 190, 400),
    CatalogItem("TEE-BLK-L", "Crossdock Tee, black, L", "19.90", 200, 400),
    CatalogItem("HOOD-GRY-M", "Loading Bay Hoodie, grey, M", "49.00", 650, 200),
    CatalogItem("HOOD-GRY-L", "Loading Bay Hoodie, grey, L", "49.00", 680, 200),
    CatalogItem("CAP-NVY", "Forklift Cap, navy", "15.00", 120, 300),
    CatalogItem("MUG-WHT", "Pallet Mug, white", "12.50", 420, 250),
    CatalogItem("BOTTLE-STL", "Steel Bottle 0.75 l", "24.00", 380, 150),
    CatalogItem("BAG-TOTE", "Canvas Tote", "9.90", 160, 500),
    CatalogItem("SOCK-3PK", "Warehouse Socks, 3 pack", "14.00", 150, 350),
    CatalogItem("ANVIL-50KG", "Cast-iron Anvil 50 kg", "399.00", 50000, 20),
    CatalogItem("RARE-VINYL", "Limited vinyl (low stock)", "35.00", 300, 2),
)
"""Stock is the warehouse's starting quantity. ``ANVIL-50KG`` is too heavy for parcel
carriers (a label is refused); ``RARE-VINYL`` runs out (short picks)."""

WAREHOUSE = "WH1"
"""The sandbox warehouse's location code."""


def by_sku(sku: str) -> CatalogItem | None:
    """The catalogue item with ``sku``, if any."""
    for item in CATALOG:
        if item.sku == sku:
            return item
    return None
