"""Shopify orders (REST webhook payloads and GraphQL nodes) -> the canonical Order.

The canonical ``Order.id`` is Shopify's numeric (legacy) order id as a string, the same
in both shapes, so a webhook and a polled order are the same record; ``version`` is the
order's ``updated_at`` in UTC (``2025-01-02T03:04:05Z``), comparable across shapes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from crossdock.model import Order, fulfillment_status_from_shopify, order_status_from_shopify

__all__ = [
    "gid",
    "legacy_id",
    "order_from_graphql",
    "order_from_rest",
    "utc_version",
]


def utc_version(value: str | None) -> str | None:
    """An ISO timestamp normalised to UTC seconds with ``Z`` (an orderable version)."""
    if not value:
        return None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def gid(kind: str, value: str | int) -> str:
    """``gid://shopify/{kind}/{id}`` (a gid passes through)."""
    text = str(value)
    return text if text.startswith("gid://") else f"gid://shopify/{kind}/{text}"


def legacy_id(value: str | int | None) -> str | None:
    """The numeric id of a gid (``gid://shopify/Order/1`` -> ``1``)."""
    if value is None:
        return None
    return str(value).rsplit("/", 1)[-1].split("?")[0]


def _s(v: Any) -> str | None:
    return str(v) if v not in (None, "") else None


def _rest_address(a: Any) -> dict[str, Any] | None:
    if not isinstance(a, Mapping):
        return None
    name = a.get("name") or " ".join(p for p in (a.get("first_name"), a.get("last_name")) if p)
    return {
        "name": _s(name),
        "company": _s(a.get("company")),
        "line1": _s(a.get("address1")),
        "line2": _s(a.get("address2")),
        "city": _s(a.get("city")),
        "region": _s(a.get("province_code") or a.get("province")),
        "postal_code": _s(a.get("zip")),
        "country_code": _s(a.get("country_code")),
        "phone": _s(a.get("phone")),
    }


def _gql_address(a: Any) -> dict[str, Any] | None:
    if not isinstance(a, Mapping):
        return None
    name = a.get("name") or " ".join(p for p in (a.get("firstName"), a.get("lastName")) if p)
    return {
        "name": _s(name),
        "company": _s(a.get("company")),
        "line1": _s(a.get("address1")),
        "line2": _s(a.get("address2")),
        "city": _s(a.get("city")),
        "region": _s(a.get("provinceCode")),
        "postal_code": _s(a.get("zip")),
        "country_code": _s(a.get("countryCodeV2")),
        "phone": _s(a.get("phone")),
    }


def _finish(data: dict[str, Any]) -> dict[str, Any]:
    return Order.model_validate(data).model_dump(mode="json", exclude_none=True)


def _tags(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(t) for t in value if t]
    if isinstance(value, str):
        return [t.strip() for t in value.split(",") if t.strip()]
    return []


def order_from_rest(o: Mapping[str, Any], connection: str) -> dict[str, Any]:
    """A REST-shaped order (webhook payload, ``orders.json``) as canonical Order JSON."""
    cur = str(o.get("currency") or "USD")

    def money(v: Any) -> dict[str, str]:
        return {"amount": str(v if v not in (None, "") else "0"), "currency": cur}

    def set_amount(key: str, fallback: str) -> Any:
        shop = ((o.get(key) or {}).get("shop_money") or {}).get("amount")
        return shop if shop is not None else o.get(fallback)

    lines = []
    for li in o.get("line_items") or []:
        qty = int(li.get("current_quantity", li.get("quantity")) or 0)
        if qty <= 0:
            continue
        lines.append(
            {
                "id": _s(li.get("id")),
                "sku": _s(li.get("sku")),
                "name": str(li.get("name") or li.get("title") or li.get("sku") or "item"),
                "variant_id": _s(li.get("variant_id")),
                "quantity": qty,
                "unit_price": money(li.get("price")),
            }
        )
    shipping_lines = [
        {
            "title": str(s.get("title") or "Shipping"),
            "code": _s(s.get("code")),
            "price": money(s.get("price")),
        }
        for s in o.get("shipping_lines") or []
    ]
    cust: Mapping[str, Any] = o["customer"] if isinstance(o.get("customer"), Mapping) else {}
    oid = str(o["id"])
    updated = utc_version(o.get("updated_at"))
    return _finish(
        {
            "id": oid,
            "number": _s(o.get("name")),
            "source": {"connection": connection, "external_id": oid, "version": updated},
            "status": order_status_from_shopify(
                o.get("financial_status"), o.get("fulfillment_status"), o.get("cancelled_at")
            ),
            "financial_status": o.get("financial_status") or None,
            "fulfillment_status": fulfillment_status_from_shopify(o.get("fulfillment_status")),
            "customer": {
                "id": _s(cust.get("id")),
                "email": _s(o.get("email") or cust.get("email")),
                "first_name": _s(cust.get("first_name")),
                "last_name": _s(cust.get("last_name")),
                "phone": _s(cust.get("phone") or o.get("phone")),
            },
            "shipping_address": _rest_address(o.get("shipping_address")),
            "billing_address": _rest_address(o.get("billing_address")),
            "lines": lines,
            "shipping_lines": shipping_lines,
            "totals": {
                "subtotal": money(o.get("subtotal_price")),
                "tax": money(o.get("total_tax")),
                "shipping": money(set_amount("total_shipping_price_set", "total_shipping")),
                "discount": money(o.get("total_discounts")),
                "total": money(o.get("total_price")),
            },
            "created_at": o.get("created_at"),
            "updated_at": o.get("updated_at"),
            "cancelled_at": o.get("cancelled_at") or None,
            "notes": _s(o.get("note")),
            "tags": _tags(o.get("tags")),
        }
    )


def order_from_graphql(
    node: Mapping[str, Any], connection: str, line_items: Sequence[Mapping[str, Any]] | None = None
) -> dict[str, Any]:
    """A GraphQL ``Order`` node (see ``OrderFields``) as canonical Order JSON."""
    cur = str(node.get("currencyCode") or "USD")

    def money(bag: Any) -> dict[str, str]:
        amount = ((bag or {}).get("shopMoney") or {}).get("amount")
        return {"amount": str(amount if amount not in (None, "") else "0"), "currency": cur}

    items = line_items if line_items is not None else (node.get("lineItems") or {}).get("nodes")
    lines = []
    for li in items or []:
        qty = int(li.get("currentQuantity", li.get("quantity")) or 0)
        if qty <= 0:
            continue
        variant = li.get("variant") or {}
        lines.append(
            {
                "id": legacy_id(li.get("id")),
                "sku": _s(li.get("sku")),
                "name": str(li.get("name") or li.get("sku") or "item"),
                "variant_id": _s(variant.get("legacyResourceId")),
                "quantity": qty,
                "unit_price": money(li.get("originalUnitPriceSet")),
            }
        )
    shipping_lines = [
        {
            "title": str(s.get("title") or "Shipping"),
            "code": _s(s.get("code")),
            "price": money(s.get("originalPriceSet")),
        }
        for s in (node.get("shippingLines") or {}).get("nodes") or []
    ]
    fin = node.get("displayFinancialStatus")
    ful = node.get("displayFulfillmentStatus")
    cust = node.get("customer") or {}
    oid = str(node.get("legacyResourceId") or legacy_id(node.get("id")))
    updated = utc_version(node.get("updatedAt"))
    return _finish(
        {
            "id": oid,
            "number": _s(node.get("name")),
            "source": {"connection": connection, "external_id": oid, "version": updated},
            "status": order_status_from_shopify(
                fin.lower() if fin else None,
                ful.lower() if ful else None,
                node.get("cancelledAt"),
            ),
            "financial_status": fin.lower() if fin else None,
            "fulfillment_status": fulfillment_status_from_shopify(ful) if ful else None,
            "customer": {
                "id": _s(cust.get("legacyResourceId")),
                "email": _s(node.get("email")),
                "first_name": _s(cust.get("firstName")),
                "last_name": _s(cust.get("lastName")),
                "phone": _s(cust.get("phone") or node.get("phone")),
            },
            "shipping_address": _gql_address(node.get("shippingAddress")),
            "billing_address": _gql_address(node.get("billingAddress")),
            "lines": lines,
            "shipping_lines": shipping_lines,
            "totals": {
                "subtotal": money(node.get("subtotalPriceSet")),
                "tax": money(node.get("totalTaxSet")),
                "shipping": money(node.get("totalShippingPriceSet")),
                "discount": money(node.get("totalDiscountsSet")),
                "total": money(node.get("totalPriceSet")),
            },
            "created_at": node.get("createdAt"),
            "updated_at": node.get("updatedAt"),
            "cancelled_at": node.get("cancelledAt") or None,
            "notes": _s(node.get("note")),
            "tags": _tags(node.get("tags")),
        }
    )
