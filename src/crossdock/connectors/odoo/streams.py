"""Odoo's polled lists: stock levels from ``stock.quant``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from crossdock.connectors.odoo import mappers
from crossdock.sdk.events import IncomingEvent
from crossdock.sdk.streams import Cursor, Stream

__all__ = ["StockStream"]

QUANT_FIELDS = ["product_id", "location_id", "quantity", "reserved_quantity", "write_date"]


class StockStream(Stream):
    """Quants in internal locations changed since the cursor (``write_date``), oldest
    first, read ``page_size`` at a time with offset/limit; each becomes an
    ``inventory.updated`` event with a canonical InventoryLevel (sku = the product's
    internal reference, location = the location's full name or its ``location_map``
    code, on_hand = quantity, available = quantity - reserved).

    The SDK's ``paginate`` only issues GET requests; Odoo reads are POST calls through the
    transport, so the offset/limit loop lives here.
    """

    name = "stock"
    event_types = ("inventory.updated",)
    lag_seconds = 60.0
    interval_seconds = 60.0

    async def read(self, cursor: Cursor) -> AsyncIterator[IncomingEvent]:
        conn = self.connector
        transport = conn.transport
        settings = conn.settings
        domain: list[Any] = [
            ["write_date", ">=", mappers.to_odoo_time(cursor.start())],
            ["location_id.usage", "=", "internal"],
        ]
        offset = 0
        skus: dict[int, str | None] = {}
        while True:
            page = await transport.call(
                "stock.quant",
                "search_read",
                domain=domain,
                fields=QUANT_FIELDS,
                order="write_date asc, id asc",
                offset=offset,
                limit=settings.page_size,
            )
            unknown = sorted(
                {
                    pid
                    for q in page
                    if (pid := mappers.m2o_id(q.get("product_id"))) is not None and pid not in skus
                }
            )
            if unknown:
                for p in await transport.call(
                    "product.product", "read", ids=unknown, fields=["default_code"]
                ):
                    skus[int(p["id"])] = p.get("default_code") or None
            for quant in page:
                position = mappers.from_odoo_time(quant.get("write_date"))
                key = str(quant["id"])
                sku = skus.get(mappers.m2o_id(quant.get("product_id")) or 0)
                if cursor.seen(position, key) or not sku:
                    cursor.advance(position, key)
                    continue
                where = mappers.m2o_name(quant.get("location_id")) or "?"
                location = settings.location_map.get(where, where)
                record = mappers.inventory_level(quant, sku, location, conn.connection)
                cursor.advance(position, key)
                yield IncomingEvent(
                    type="inventory.updated",
                    record_key=key,
                    record=record,
                    version=position,
                    position=position,
                )
            if len(page) < settings.page_size:
                return
            offset += len(page)
