"""Shopify writes: ``create_fulfillment`` and ``set_inventory``.

- ``create_fulfillment`` takes a canonical Shipment (``order.id`` = Shopify order id,
  tracking number/carrier/url, optional lines) and makes one ``fulfillmentCreate`` with
  ``lineItemsByFulfillmentOrder``, ``trackingInfo`` and ``notifyCustomer``. It is
  idempotent: it reads the order's fulfilments first and returns the one that already
  carries the same tracking number (the same lookup verifies an uncertain write).
- ``set_inventory`` takes a canonical InventoryLevel and sets "available" with
  compare-and-set (``inventorySetQuantities`` with the ``compareQuantity`` read just
  before). A stale compare is retried by reading again, never by a blind overwrite.
"""

from __future__ import annotations

from collections import Counter
from typing import Any
from urllib.parse import quote

from crossdock.model import InventoryLevel, Shipment
from crossdock.pipeline.outcome import Classified, Outcome
from crossdock.sdk.actions import Action, ActionContext, ActionResult
from crossdock.sdk.errors import ActionRefused, VendorError
from crossdock.sdk.pagination import dig

from .documents import (
    FULFILLMENT_CREATE,
    INVENTORY_BY_SKU,
    INVENTORY_SET_QUANTITIES,
    LOCATIONS,
    ORDER_FULFILLMENT_STATE,
)
from .mappers import gid, legacy_id

__all__ = ["CARRIER_NAMES", "CreateFulfillment", "SetInventory"]

CARRIER_NAMES: dict[str, str] = {
    "ups": "UPS",
    "usps": "USPS",
    "stamps_com": "USPS",
    "fedex": "FedEx",
    "dhl_express": "DHL Express",
    "dhl_ecommerce": "DHL eCommerce",
    "canada_post": "Canada Post",
    "royal_mail": "Royal Mail",
}
"""Carrier codes (ShipEngine style) -> the company names Shopify recognises."""

_DONE = ("CANCELLED", "ERROR", "FAILURE")


def _messages(errors: list[dict[str, Any]]) -> str:
    return "; ".join(str(e.get("message") or e) for e in errors)


class CreateFulfillment(Action):
    """Fulfil a Shopify order with tracking (see the module docstring)."""

    name = "create_fulfillment"
    description = "Mark a Shopify order shipped with its tracking number; notify the buyer."
    verifiable = True

    async def _order(self, shipment: Shipment) -> dict[str, Any]:
        data = await self.connector.api.execute(
            ORDER_FULFILLMENT_STATE, {"id": gid("Order", shipment.order.id)}
        )
        order = (data or {}).get("order")
        if order is None:
            raise ActionRefused(
                "lookup",
                f"Shopify has no order with id {shipment.order.id}.",
                "Check that the shipment's order id is the Shopify order id (the number "
                "in the order's admin URL), then retry.",
            )
        return dict(order)

    @staticmethod
    def _existing(order: dict[str, Any], shipment: Shipment) -> dict[str, Any] | None:
        live = [f for f in order.get("fulfillments") or [] if f.get("status") not in _DONE]
        if shipment.tracking_number:
            for f in live:
                if any(
                    t.get("number") == shipment.tracking_number for t in f.get("trackingInfo") or []
                ):
                    return f
            return None
        # Without a tracking number, a fully fulfilled order is this write done before.
        if order.get("displayFulfillmentStatus") == "FULFILLED" and live:
            return live[-1]
        return None

    def _result(self, f: dict[str, Any], shipment: Shipment, detail: str) -> ActionResult:
        record = shipment.model_dump(mode="json", exclude_none=True)
        record["status"] = "shipped"
        return ActionResult(
            external_id=str(f.get("legacyResourceId") or legacy_id(f.get("id"))),
            record=record,
            detail=detail,
        )

    @staticmethod
    def _work(order: dict[str, Any], shipment: Shipment) -> list[dict[str, Any]]:
        fos = dig(order, "fulfillmentOrders.nodes") or []
        open_fos = [fo for fo in fos if fo.get("status") in ("OPEN", "IN_PROGRESS")]
        if not shipment.lines:
            return [
                {"fulfillmentOrderId": fo["id"]}
                for fo in open_fos
                if any(
                    li.get("remainingQuantity", 0) > 0 for li in dig(fo, "lineItems.nodes") or []
                )
            ]
        wanted: Counter[str] = Counter()
        for line in shipment.lines:
            wanted[line.sku] += line.quantity
        on_order = {
            dig(li, "lineItem.sku") for fo in fos for li in dig(fo, "lineItems.nodes") or []
        }
        unknown = sorted(sku for sku in wanted if sku not in on_order)
        if unknown:
            raise ActionRefused(
                "unknown_sku",
                f"The shipment lists SKU(s) {', '.join(unknown)} that are not on Shopify "
                f"order {order.get('name')}.",
                "Compare the warehouse shipment with the order, correct the SKU and retry, "
                "or resolve this exception if the item was shipped separately.",
            )
        work = []
        for fo in open_fos:
            items = []
            for li in dig(fo, "lineItems.nodes") or []:
                sku = dig(li, "lineItem.sku")
                take = min(int(li.get("remainingQuantity") or 0), wanted.get(sku, 0))
                if take > 0:
                    items.append({"id": li["id"], "quantity": take})
                    wanted[sku] -= take
            if items:
                work.append({"fulfillmentOrderId": fo["id"], "fulfillmentOrderLineItems": items})
        return work

    async def perform(self, ctx: ActionContext) -> ActionResult:
        shipment = Shipment.model_validate(ctx.record)
        order = await self._order(shipment)
        found = self._existing(order, shipment)
        if found is not None:
            return self._result(found, shipment, "already fulfilled with this tracking number")
        name = order.get("name") or shipment.order.id
        work = self._work(order, shipment)
        if not work:
            if order.get("cancelledAt"):
                raise ActionRefused(
                    "validation",
                    f"Order {name} is cancelled in Shopify, so it cannot be fulfilled.",
                    "Nothing should ship: resolve this exception (or reopen the order in "
                    "Shopify and retry).",
                )
            raise ActionRefused(
                "validation",
                f"Order {name} has nothing left to fulfil in Shopify.",
                "If this is another parcel of an order already marked shipped, add its "
                "tracking number to the fulfilment in Shopify; then resolve this exception.",
            )
        fulfillment: dict[str, Any] = {
            "lineItemsByFulfillmentOrder": work,
            "notifyCustomer": self.connector.settings.notify_customer,
        }
        if shipment.tracking_number:
            carrier = shipment.carrier or ""
            tracking = {
                "number": shipment.tracking_number,
                "company": CARRIER_NAMES.get(carrier.lower(), carrier) or None,
                "url": shipment.tracking_url,
            }
            fulfillment["trackingInfo"] = {k: v for k, v in tracking.items() if v}
        data = await self.connector.api.execute(FULFILLMENT_CREATE, {"fulfillment": fulfillment})
        payload = (data or {}).get("fulfillmentCreate") or {}
        errors = payload.get("userErrors") or []
        if errors:
            raise ActionRefused(
                "validation",
                f"Shopify refused to fulfil order {name}: {_messages(errors)}",
                "Check the order in Shopify (on hold? already fulfilled?), then retry.",
            )
        created = payload.get("fulfillment")
        if not created:
            raise VendorError(
                Classified(
                    Outcome.UNCERTAIN,
                    "timeout",
                    f"Shopify answered the fulfilment of order {name} without a fulfilment.",
                    "Crossdock checks the order before it tries again.",
                )
            )
        return self._result(created, shipment, f"fulfilled order {name}")

    async def lookup(self, ctx: ActionContext) -> ActionResult | None:
        shipment = Shipment.model_validate(ctx.record)
        order = await self._order(shipment)
        found = self._existing(order, shipment)
        return None if found is None else self._result(found, shipment, "found at Shopify")


class SetInventory(Action):
    """Set a SKU's available stock with compare-and-set (see the module docstring)."""

    name = "set_inventory"
    description = "Set a SKU's available quantity at the Shopify location (compare-and-set)."
    verifiable = True
    max_attempts = 5

    def __init__(self, connector: Any) -> None:
        super().__init__(connector)
        self._location: str | None = None
        self.stale_retries = 0
        """How many compare mismatches were retried by re-reading (for the console)."""

    async def location(self) -> str:
        """The location gid: the setting, or the shop's first location."""
        configured = self.connector.settings.location_id
        if configured:
            return gid("Location", configured)
        if self._location is None:
            data = await self.connector.api.execute(LOCATIONS)
            nodes = dig(data, "locations.nodes") or []
            if not nodes:
                raise ActionRefused(
                    "validation",
                    "The Shopify shop has no location to hold stock.",
                    "Add a location in Shopify (Settings > Locations), then retry.",
                )
            self._location = str(nodes[0]["id"])
        return self._location

    async def read(self, sku: str, location: str) -> tuple[str, dict[str, int]]:
        """The SKU's inventory item gid and its quantities at ``location``."""
        escaped = sku.replace("\\", "\\\\").replace("'", "\\'")
        data = await self.connector.api.execute(
            INVENTORY_BY_SKU, {"query": f"sku:'{escaped}'", "locationId": location}
        )
        # Shopify's search is fuzzy: keep exact matches only.
        nodes = [n for n in dig(data, "productVariants.nodes") or [] if n.get("sku") == sku]
        if not nodes:
            raise ActionRefused(
                "unknown_sku",
                f"Shopify has no product with SKU '{sku}', so its stock cannot be set.",
                f"Create the product with SKU '{sku}' in Shopify, or correct the SKU where "
                "the stock update came from, then retry.",
            )
        if len(nodes) > 1:
            raise ActionRefused(
                "validation",
                f"SKU '{sku}' is on {len(nodes)} Shopify variants; Crossdock cannot tell "
                "which one to update.",
                "Give each variant its own SKU in Shopify, then retry.",
            )
        item = nodes[0].get("inventoryItem") or {}
        level = item.get("inventoryLevel")
        if level is None:
            raise ActionRefused(
                "validation",
                f"SKU '{sku}' is not stocked at the Shopify location {legacy_id(location)}.",
                "In Shopify, stock the product at that location (or set the connection's "
                "location_id), then retry.",
            )
        quantities = {str(q["name"]): int(q["quantity"]) for q in level.get("quantities") or []}
        return str(item["id"]), quantities

    @staticmethod
    def _target(level: InventoryLevel) -> tuple[str, int]:
        if level.available is not None:
            return "available", level.available
        assert level.on_hand is not None  # the model guarantees one of the two
        return "on_hand", level.on_hand

    def _result(
        self, level: InventoryLevel, item: str, name: str, target: int, detail: str
    ) -> ActionResult:
        record = {
            "sku": level.sku,
            "location": level.location,
            name: target,
            "source": {"connection": self.connector.connection, "external_id": legacy_id(item)},
        }
        record = InventoryLevel.model_validate(record).model_dump(mode="json", exclude_none=True)
        return ActionResult(external_id=legacy_id(item), record=record, detail=detail)

    async def perform(self, ctx: ActionContext) -> ActionResult:
        level = InventoryLevel.model_validate(ctx.record)
        name, target = self._target(level)
        location = await self.location()
        for _ in range(self.max_attempts):
            item, quantities = await self.read(level.sku, location)
            current = quantities.get(name, 0)
            if current == target:
                return self._result(level, item, name, target, f"{name} already {target}")
            data = await self.connector.api.execute(
                INVENTORY_SET_QUANTITIES,
                {
                    "input": {
                        "name": name,
                        "reason": "correction",
                        "referenceDocumentUri": "gid://crossdock/Delivery/"
                        + quote(ctx.idempotency_key, safe=""),
                        "quantities": [
                            {
                                "inventoryItemId": item,
                                "locationId": location,
                                "quantity": target,
                                "compareQuantity": current,
                            }
                        ],
                    }
                },
            )
            errors = dig(data, "inventorySetQuantities.userErrors") or []
            if not errors:
                return self._result(
                    level, item, name, target, f"{name} set from {current} to {target}"
                )
            if any(e.get("code") == "COMPARE_QUANTITY_STALE" for e in errors):
                self.stale_retries += 1  # someone sold or received meanwhile: read again
                continue
            raise ActionRefused(
                "validation",
                f"Shopify refused to set the stock of SKU '{level.sku}': {_messages(errors)}",
                "Check the product's inventory settings in Shopify, then retry.",
            )
        raise VendorError(
            Classified(
                Outcome.RETRYABLE,
                "conflict",
                f"The stock of SKU '{level.sku}' in Shopify kept changing while Crossdock "
                f"set it ({self.max_attempts} tries).",
                "Nothing to do: Crossdock tries again shortly.",
            )
        )

    async def lookup(self, ctx: ActionContext) -> ActionResult | None:
        level = InventoryLevel.model_validate(ctx.record)
        name, target = self._target(level)
        item, quantities = await self.read(level.sku, await self.location())
        if quantities.get(name) != target:
            return None
        return self._result(level, item, name, target, f"{name} is {target} at Shopify")
