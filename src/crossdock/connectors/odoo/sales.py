"""The order-to-invoice work in Odoo, written once over a :class:`Transport`.

- a customer is a ``res.partner`` found by email (else by name) or created;
- products are ``product.product`` found by internal reference (``default_code``) = SKU;
- an order is a ``sale.order`` whose ``origin`` is the order's identity
  (:func:`~crossdock.connectors.odoo.mappers.order_origin`) and whose
  ``client_order_ref`` is the order number, created with its lines and confirmed;
- its invoice is an ``account.move`` (``out_invoice``) with ``invoice_origin`` = the sale
  order's name and ``ref`` = the order number, created from the order lines and posted.

Every step looks before it writes, so a repeat (or a retry after a lost answer) finds
what the first attempt made instead of making a twin.
"""

from __future__ import annotations

from typing import Any

from crossdock.connectors.odoo import mappers
from crossdock.connectors.odoo.settings import OdooSettings
from crossdock.connectors.odoo.transport import Transport
from crossdock.model import Order
from crossdock.sdk.errors import ActionRefused

__all__ = ["Sales"]

SO_FIELDS = ["name", "state", "partner_id", "client_order_ref", "origin", "amount_total"]
MOVE_FIELDS = [
    "name",
    "state",
    "move_type",
    "partner_id",
    "invoice_origin",
    "ref",
    "payment_state",
    "invoice_date",
    "invoice_date_due",
    "amount_untaxed",
    "amount_tax",
    "amount_total",
    "currency_id",
    "invoice_line_ids",
]


def _first_id(created: Any) -> int:
    """``create`` answers a list of ids (JSON-2, or a list given) or one id."""
    if isinstance(created, list):
        return int(created[0])
    return int(created)


class Sales:
    """Sale orders and invoices at one Odoo connection."""

    def __init__(self, transport: Transport, settings: OdooSettings, connection: str) -> None:
        self.transport = transport
        self.settings = settings
        self.connection = connection

    @property
    def tax_field(self) -> str:
        """sale.order.line's taxes: ``tax_ids`` since Odoo 19 (JSON-2 servers), ``tax_id``
        before [unconfirmed rename; only used with a tax_map]."""
        return "tax_ids" if self.transport.api == "json2" else "tax_id"

    # -- sale orders -----------------------------------------------------------------------

    async def find_order(self, order: Order) -> dict[str, Any] | None:
        """The sale order made for ``order`` (not cancelled), if any."""
        found = await self.transport.call(
            "sale.order",
            "search_read",
            domain=[["origin", "=", mappers.order_origin(order)]],
            fields=SO_FIELDS,
            order="id asc",
            limit=1,
        )
        return found[0] if found else None

    async def products(self, order: Order) -> dict[str, dict[str, Any]]:
        """SKU -> product.product for every line; refuse an unknown SKU."""
        skus = [line.sku for line in order.lines if line.sku]
        missing_sku = [line.name for line in order.lines if not line.sku]
        if missing_sku:
            raise ActionRefused(
                "unknown_sku",
                f"Order {order.number or order.id} has a line without a SKU "
                f"('{missing_sku[0]}'); Odoo needs a product's internal reference.",
                "Give the product a SKU at the source (or remove the line), then retry.",
            )
        wanted = set(skus)
        if self.settings.shipping_sku and order.shipping_lines:
            wanted.add(self.settings.shipping_sku)
        rows = await self.transport.call(
            "product.product",
            "search_read",
            domain=[["default_code", "in", sorted(wanted)]],
            fields=["default_code", "name", "list_price"],
        )
        by_sku = {str(r["default_code"]): r for r in rows if r.get("default_code")}
        for sku in sorted(wanted):
            if sku not in by_sku:
                raise ActionRefused(
                    "unknown_sku",
                    # No order number here: one cause, one case in the queue for all
                    # the orders it holds up (each exception names its record).
                    f"Odoo has no product with internal reference {sku}, so the sale order "
                    "cannot be made.",
                    f"Create the product in Odoo with Internal Reference '{sku}' (or correct "
                    "the SKU at the source), then retry.",
                )
        return by_sku

    async def partner(self, order: Order) -> int:
        """The customer's res.partner id: found by email, else by name, else created."""
        email, name = mappers.partner_identity(order)
        vals = mappers.partner_vals(order)  # refuses an order with no customer at all
        if email:
            domain: list[Any] = [["email", "=ilike", email]]
        else:
            domain = [["name", "=", name]]
        found = await self.transport.call(
            "res.partner", "search_read", domain=domain, fields=["name"], order="id asc", limit=1
        )
        if found:
            return int(found[0]["id"])
        return _first_id(await self.transport.call("res.partner", "create", vals_list=[vals]))

    def _line(self, line: Any, product: dict[str, Any]) -> dict[str, Any]:
        vals: dict[str, Any] = {
            "product_id": product["id"],
            "name": line.name,
            "product_uom_qty": line.quantity,
            "price_unit": float(line.unit_price.amount),
        }
        taxes = mappers.line_taxes(line, self.settings.tax_map)
        if taxes is not None:
            vals[self.tax_field] = [[6, 0, taxes]]
        return vals

    async def ensure_order(self, order: Order) -> tuple[dict[str, Any], bool]:
        """The confirmed sale order for ``order``, created if needed; and whether this call
        created it."""
        so = await self.find_order(order)
        created = False
        if so is None:
            products = await self.products(order)
            partner_id = await self.partner(order)
            lines = [[0, 0, self._line(ln, products[str(ln.sku)])] for ln in order.lines]
            if self.settings.shipping_sku:
                ship = products[self.settings.shipping_sku]
                for s in order.shipping_lines:
                    lines.append(
                        [
                            0,
                            0,
                            {
                                "product_id": ship["id"],
                                "name": s.title,
                                "product_uom_qty": 1,
                                "price_unit": float(s.price.amount),
                            },
                        ]
                    )
            vals: dict[str, Any] = {
                "partner_id": partner_id,
                "client_order_ref": order.number or order.id,
                "origin": mappers.order_origin(order),
                "order_line": lines,
            }
            if order.notes:
                vals["note"] = order.notes
            for field in ("company_id", "pricelist_id"):
                value = getattr(self.settings, field)
                if value is not None:
                    vals[field] = value
            so_id = _first_id(await self.transport.call("sale.order", "create", vals_list=[vals]))
            created = True
            so = (await self.transport.call("sale.order", "read", ids=[so_id], fields=SO_FIELDS))[0]
        assert so is not None
        if so["state"] == "cancel":
            raise ActionRefused(
                "validation",
                f"Sale order {so['name']} for order {order.number or order.id} is cancelled "
                "in Odoo.",
                "Reset the sale order to quotation in Odoo (or delete it so Crossdock makes a "
                "new one), then retry.",
            )
        if so["state"] in ("draft", "sent"):
            await self.transport.call("sale.order", "action_confirm", ids=[so["id"]])
            so["state"] = "sale"
        return so, created

    # -- invoices --------------------------------------------------------------------------

    async def find_invoice(self, so_name: str) -> dict[str, Any] | None:
        """The customer invoice made from sale order ``so_name`` (not cancelled), if any."""
        found = await self.transport.call(
            "account.move",
            "search_read",
            domain=[
                ["move_type", "=", "out_invoice"],
                ["invoice_origin", "=", so_name],
                ["state", "!=", "cancel"],
            ],
            fields=MOVE_FIELDS,
            order="id asc",
            limit=1,
        )
        return found[0] if found else None

    async def create_invoice(self, order: Order, so: dict[str, Any]) -> int:
        """A draft customer invoice from the sale order's lines."""
        lines = await self.transport.call(
            "sale.order.line",
            "search_read",
            domain=[["order_id", "=", so["id"]]],
            fields=["product_id", "name", "product_uom_qty", "price_unit"]
            + ([self.tax_field] if self.settings.tax_map else []),
            order="id asc",
        )
        invoice_lines = []
        for line in lines:
            vals: dict[str, Any] = {
                "product_id": mappers.m2o_id(line.get("product_id")) or False,
                "name": line.get("name") or "",
                "quantity": line.get("product_uom_qty") or 0.0,
                "price_unit": line.get("price_unit") or 0.0,
                "sale_line_ids": [[6, 0, [line["id"]]]],
            }
            taxes = line.get(self.tax_field)
            if self.settings.tax_map and isinstance(taxes, list):
                vals["tax_ids"] = [[6, 0, taxes]]
            invoice_lines.append([0, 0, vals])
        vals = {
            "move_type": "out_invoice",
            "partner_id": mappers.m2o_id(so.get("partner_id")),
            "invoice_origin": so["name"],
            "ref": order.number or order.id,
            "invoice_line_ids": invoice_lines,
        }
        for field in ("company_id", "journal_id"):
            value = getattr(self.settings, field)
            if value is not None:
                vals[field] = value
        return _first_id(await self.transport.call("account.move", "create", vals_list=[vals]))

    async def read_invoice(self, move_id: int) -> dict[str, Any]:
        rows = await self.transport.call("account.move", "read", ids=[move_id], fields=MOVE_FIELDS)
        return dict(rows[0])

    async def invoice_record(self, move: dict[str, Any], order: Order) -> dict[str, Any]:
        """The posted move as a canonical Invoice."""
        lines = await self.transport.call(
            "account.move.line",
            "read",
            ids=list(move.get("invoice_line_ids") or []),
            fields=["product_id", "name", "quantity", "price_unit"],
        )
        product_ids = sorted(
            {pid for ln in lines if (pid := mappers.m2o_id(ln.get("product_id"))) is not None}
        )
        skus: dict[int, str] = {}
        if product_ids:
            for p in await self.transport.call(
                "product.product", "read", ids=product_ids, fields=["default_code"]
            ):
                if p.get("default_code"):
                    skus[int(p["id"])] = str(p["default_code"])
        return mappers.invoice_record(move, lines, skus, order, self.connection)
