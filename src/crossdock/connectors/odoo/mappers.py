"""Canonical records <-> Odoo values.

Odoo speaks floats for money and quantities, ``[id, name]`` for many2one fields, x2many
*commands* (``[0, 0, vals]`` creates a line) and ``YYYY-MM-DD HH:MM:SS`` UTC datetimes.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from crossdock.model import InventoryLevel, Invoice, Order
from crossdock.model.common import Customer
from crossdock.model.order import OrderLine
from crossdock.sdk.errors import ActionRefused

__all__ = [
    "ODOO_TIME",
    "from_odoo_time",
    "inventory_level",
    "invoice_record",
    "line_taxes",
    "order_origin",
    "partner_identity",
    "partner_vals",
    "to_odoo_time",
]

ODOO_TIME = "%Y-%m-%d %H:%M:%S"


def to_odoo_time(iso: str) -> str:
    """An ISO timestamp as Odoo's UTC ``YYYY-MM-DD HH:MM:SS``."""
    dt = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).strftime(ODOO_TIME)


def from_odoo_time(value: Any) -> str | None:
    """Odoo's UTC datetime (or date) as ISO 8601 with ``Z``; None for ``False``."""
    if not value:
        return None
    text = str(value)
    if len(text) == 10:
        return date.fromisoformat(text).isoformat() + "T00:00:00Z"
    dt = datetime.strptime(text[:19], ODOO_TIME).replace(tzinfo=UTC)
    return dt.isoformat().replace("+00:00", "Z")


def m2o_id(value: Any) -> int | None:
    """The id of a many2one value (``[id, name]``, an id, or ``False``)."""
    if isinstance(value, list | tuple) and value:
        return int(value[0])
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None


def m2o_name(value: Any) -> str | None:
    """The display name of a many2one value."""
    if isinstance(value, list | tuple) and len(value) > 1:
        return str(value[1])
    return None


def amount(value: Any) -> str:
    """An Odoo float as a canonical money string (at least two decimals)."""
    d = Decimal(str(value or 0))
    if d.as_tuple().exponent > -2:  # type: ignore[operator]
        d = d.quantize(Decimal("0.01"))
    return format(d, "f")


# --- orders -------------------------------------------------------------------------------


def order_origin(order: Order) -> str:
    """The sale order's ``origin``: the order's identity at its source, stable across
    versions, so a repeat (or an invoice made later) finds the same sale order."""
    if order.source is not None:
        return f"crossdock:{order.source.connection}:{order.id}"
    return f"crossdock:{order.id}"


def _customer_name(order: Order) -> str | None:
    c = order.customer or Customer()
    names = " ".join(p for p in (c.first_name, c.last_name) if p)
    for candidate in (
        names,
        c.company,
        order.billing_address.name if order.billing_address else None,
        order.shipping_address.name if order.shipping_address else None,
    ):
        if candidate and candidate.strip():
            return candidate.strip()
    return None


def partner_identity(order: Order) -> tuple[str | None, str | None]:
    """The customer's email and name (what a res.partner is found by)."""
    c = order.customer or Customer()
    email = c.email or (order.billing_address.email if order.billing_address else None)
    return (email.strip() if email else None), _customer_name(order)


def partner_vals(order: Order) -> dict[str, Any]:
    """A new res.partner for the order's customer (address from billing, else shipping)."""
    email, name = partner_identity(order)
    if not email and not name:
        raise ActionRefused(
            "validation",
            f"Order {order.number or order.id} has no customer email or name, so Odoo cannot "
            "be told who the customer is.",
            "Add the customer's email or name to the order at its source, then retry.",
        )
    addr = order.billing_address or order.shipping_address
    c = order.customer or Customer()
    vals: dict[str, Any] = {"name": name or email, "email": email or False}
    phone = c.phone or (addr.phone if addr else None)
    if phone:
        vals["phone"] = phone
    if c.company:
        vals["company_name"] = c.company
    if addr is not None:
        for field, value in (
            ("street", addr.line1),
            ("street2", addr.line2),
            ("city", addr.city),
            ("zip", addr.postal_code),
        ):
            if value:
                vals[field] = value
    return vals


def line_taxes(line: OrderLine, tax_map: dict[str, int]) -> list[int] | None:
    """The account.tax ids for a line (None: leave Odoo's default taxes)."""
    if not tax_map or not line.tax_lines:
        return None
    ids: list[int] = []
    for t in line.tax_lines:
        rate = format(t.rate.normalize(), "f")
        tax_id = tax_map.get(t.title) or tax_map.get(rate) or tax_map.get(str(t.rate))
        if tax_id is None:
            raise ActionRefused(
                "lookup",
                f"The tax '{t.title}' ({rate}) of SKU {line.sku} is not in this connection's "
                "tax mapping, so Crossdock cannot tell Odoo which tax to apply.",
                f"Add '{t.title}' or '{rate}' to the Odoo connection's tax_map (the "
                "account.tax id), then retry.",
            )
        ids.append(tax_id)
    return ids


# --- invoices -----------------------------------------------------------------------------


def invoice_record(
    move: dict[str, Any],
    lines: list[dict[str, Any]],
    skus: dict[int, str],
    order: Order,
    connection: str,
) -> dict[str, Any]:
    """A posted account.move as a canonical Invoice (JSON-ready)."""
    currency = m2o_name(move.get("currency_id")) or order.currency
    if not (isinstance(currency, str) and len(currency) == 3 and currency.isupper()):
        currency = order.currency

    def money(value: Any) -> dict[str, str]:
        return {"amount": amount(value), "currency": currency}

    status = "issued"
    if move.get("state") == "cancel":
        status = "cancelled"
    elif move.get("payment_state") in ("paid", "in_payment"):
        status = "paid"
    elif move.get("payment_state") == "partial":
        status = "partially_paid"
    elif move.get("state") == "draft":
        status = "draft"
    issued = from_odoo_time(move.get("invoice_date")) or datetime.now(UTC).isoformat()
    due = from_odoo_time(move.get("invoice_date_due"))
    record: dict[str, Any] = {
        "number": str(move["name"]),
        "id": str(move["id"]),
        "source": {"connection": connection, "external_id": str(move["id"])},
        "order": {
            "id": order.id,
            "number": order.number,
            "connection": order.source.connection if order.source else None,
        },
        "customer": order.customer.model_dump(mode="json") if order.customer else None,
        "billing_address": (
            order.billing_address.model_dump(mode="json") if order.billing_address else None
        ),
        "lines": [
            {
                "sku": skus.get(m2o_id(line.get("product_id")) or 0),
                "description": str(line.get("name") or m2o_name(line.get("product_id")) or "-"),
                "quantity": str(line.get("quantity") or 1),
                "unit_price": money(line.get("price_unit")),
            }
            for line in lines
            if float(line.get("quantity") or 0) > 0
        ],
        "totals": {
            "subtotal": money(move.get("amount_untaxed")),
            "tax": money(move.get("amount_tax")),
            "total": money(move.get("amount_total")),
        },
        "issued_at": issued,
        "due_at": due,
        "status": status,
    }
    return Invoice.model_validate(record).model_dump(mode="json", exclude_none=True)


# --- stock --------------------------------------------------------------------------------


def inventory_level(
    quant: dict[str, Any], sku: str, location: str, connection: str
) -> dict[str, Any]:
    """A stock.quant as a canonical InventoryLevel (available = quantity - reserved)."""
    quantity = int(float(quant.get("quantity") or 0))
    reserved = int(float(quant.get("reserved_quantity") or 0))
    on_hand = max(0, quantity)
    reserved = max(0, min(reserved, on_hand))
    record = {
        "sku": sku,
        "location": location,
        "on_hand": on_hand,
        "available": max(0, quantity - reserved) if quantity > 0 else 0,
        "reserved": reserved,
        "source": {
            "connection": connection,
            "external_id": str(quant["id"]),
            "version": from_odoo_time(quant.get("write_date")),
        },
        "updated_at": from_odoo_time(quant.get("write_date")),
    }
    return InventoryLevel.model_validate(record).model_dump(mode="json", exclude_none=True)
