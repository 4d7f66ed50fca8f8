"""Odoo's writes: a confirmed sale order, and a posted invoice, for a canonical Order."""

from __future__ import annotations

from typing import Any

from crossdock.connectors.odoo.sales import Sales
from crossdock.model import Order
from crossdock.sdk.actions import Action, ActionContext, ActionResult
from crossdock.sdk.errors import ActionRefused

__all__ = ["CreateInvoice", "CreateSaleOrder"]


def _order(ctx: ActionContext) -> Order:
    try:
        return Order.model_validate(ctx.record)
    except ValueError as exc:
        raise ActionRefused(
            "validation",
            f"The record is not a valid order: {str(exc).splitlines()[0]}",
            "Fix the flow's mapping so it hands Odoo a canonical Order, then replay.",
        ) from exc


class _OdooAction(Action):
    verifiable = True

    @property
    def sales(self) -> Sales:
        sales: Sales = self.connector.sales
        return sales


class CreateSaleOrder(_OdooAction):
    """Find or create the customer, create the sale order with its lines and confirm it.

    ``ctx.record``: a canonical Order. ``external_id``: the sale.order id. ``record``: the
    order, as given. The sale order's ``origin`` carries the order's identity, so a repeat
    finds the existing sale order instead of creating a second one.
    """

    name = "create_sale_order"
    description = "Create and confirm an Odoo sale order for an order."

    async def perform(self, ctx: ActionContext) -> ActionResult:
        order = _order(ctx)
        so, created = await self.sales.ensure_order(order)
        return self._result(order, so, "created" if created else "already existed")

    async def lookup(self, ctx: ActionContext) -> ActionResult | None:
        order = _order(ctx)
        so = await self.sales.find_order(order)
        if so is None or so["state"] != "sale":
            return None  # absent, or left unconfirmed: performing again finishes it
        return self._result(order, so, "found")

    def _result(self, order: Order, so: dict[str, Any], how: str) -> ActionResult:
        return ActionResult(
            external_id=str(so["id"]),
            record=order.model_dump(mode="json", exclude_none=True),
            detail=f"sale order {so['name']} for {order.number or order.id} {how} and confirmed",
        )


class CreateInvoice(_OdooAction):
    """Make sure the confirmed sale order exists, then create and post its invoice.

    ``ctx.record``: a canonical Order. ``external_id``: the account.move id. ``record``:
    the canonical Invoice (number = the posted move's name, e.g. ``INV/2026/00001``).
    One invoice per sale order: an existing one (``invoice_origin`` = the sale order's
    name) is reused, and posted if a previous attempt left it in draft.
    """

    name = "create_invoice"
    description = "Create and post the Odoo customer invoice for an order."

    async def perform(self, ctx: ActionContext) -> ActionResult:
        order = _order(ctx)
        sales = self.sales
        so, _ = await sales.ensure_order(order)
        move = await sales.find_invoice(so["name"])
        how = "already existed"
        if move is None:
            move = await sales.read_invoice(await sales.create_invoice(order, so))
            how = "created"
        if move["state"] == "draft":
            await sales.transport.call("account.move", "action_post", ids=[move["id"]])
            move = await sales.read_invoice(int(move["id"]))
        return ActionResult(
            external_id=str(move["id"]),
            record=await sales.invoice_record(move, order),
            detail=f"invoice {move['name']} for sale order {so['name']} {how} and posted",
        )

    async def lookup(self, ctx: ActionContext) -> ActionResult | None:
        order = _order(ctx)
        so = await self.sales.find_order(order)
        if so is None:
            return None
        move = await self.sales.find_invoice(so["name"])
        if move is None or move["state"] != "posted":
            return None  # absent or still draft: performing again posts it
        return ActionResult(
            external_id=str(move["id"]),
            record=await self.sales.invoice_record(move, order),
            detail=f"invoice {move['name']} found",
        )
