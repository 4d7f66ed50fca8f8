"""Shopify orders (REST webhook payloads and GraphQL nodes) -> the canonical Order.

The canonical ``Order.id`` is Shopify's numeric (legacy) order id as a string, the same
in both shapes, so a webhook and a polled order are the same record; ``version`` is the
order's ``updated_at`` in UTC (``2025-01-02T03:04:05Z``), comparable across shapes.

The mapping is declared with the SDK's :class:`~crossdock.sdk.mapping.Mapper`
(:class:`RestOrderMapper`, :class:`GraphqlOrderMapper`, their line and shipping-line
children); :func:`order_from_rest` and :func:`order_from_graphql` run them and validate
the result as an :class:`~crossdock.model.Order`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

from crossdock.model import Order, fulfillment_status_from_shopify, order_status_from_shopify
from crossdock.sdk.mapping import Mapper, mapping

__all__ = [
    "GraphqlLineMapper",
    "GraphqlOrderMapper",
    "GraphqlShippingLineMapper",
    "RestLineMapper",
    "RestOrderMapper",
    "RestShippingLineMapper",
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


def _rest_money(value: Any, currency: str) -> dict[str, str]:
    return {"amount": str(value if value not in (None, "") else "0"), "currency": currency}


def _gql_money(bag: Any, currency: str) -> dict[str, str]:
    amount = ((bag or {}).get("shopMoney") or {}).get("amount")
    return {"amount": str(amount if amount not in (None, "") else "0"), "currency": currency}


# --- declarative mappers (crossdock.sdk.mapping) ------------------------------------------
#
# ``direct`` pairs only copy values that need no conversion: a field that goes through
# ``_s`` ("" -> None, anything -> str), ``or None`` or a fallback is a ``@mapping`` method,
# since a direct pair would keep an empty string (a cleared note) this mapping drops.


def _require_objects(source: Mapping[str, Any], path: str) -> None:
    """Refuse a malformed list at ``path`` (a string, a number, a list of non-objects).

    The SDK's ``children`` skip what is not an object, so a garbled ``line_items`` would
    map to an order without lines; like the plain functions before the mappers, an
    order whose lines cannot be read is an error instead.
    """
    cur: Any = source
    for part in path.split("."):
        if not cur:
            return
        if not isinstance(cur, Mapping):
            raise TypeError(f"the order's '{path}' is not a list of objects")
        cur = cur.get(part)
    if not cur or isinstance(cur, Iterator):  # an iterator cannot be checked unread
        return
    if (
        isinstance(cur, str | bytes | Mapping)
        or not isinstance(cur, Iterable)
        or not all(isinstance(item, Mapping) for item in cur)
    ):
        raise TypeError(f"the order's '{path}' is not a list of objects")


class _ChildMapper(Mapper):
    """A mapper of one item of a parent's list (a line item, a shipping line).

    The currency comes through ``ctx``: ``ctx["currency"]`` when the caller sets it,
    otherwise the parent order's currency field (``ctx["parent"]``, which the SDK passes
    to children), ``USD`` when the order has none.
    """

    currency_field: ClassVar[str] = "currency"

    @property
    def currency(self) -> str:
        """The currency of every amount of this item."""
        if self.ctx.get("currency"):
            return str(self.ctx["currency"])
        parent = self.ctx.get("parent")
        value = parent.get(self.currency_field) if isinstance(parent, Mapping) else None
        return str(value or "USD")


class _LineMapper(_ChildMapper):
    """A line item; a line with no quantity left (removed, refunded) maps to ``{}``, which
    the order mapper leaves out."""

    def quantity(self, src: Mapping[str, Any]) -> int:
        """The line's current quantity."""
        raise NotImplementedError

    def map(self, source: Mapping[str, Any]) -> dict[str, Any]:
        """The canonical line, or ``{}`` for a line with nothing left on it."""
        if self.quantity(source) <= 0:
            return {}
        return super().map(source)


class _OrderMapper(Mapper):
    """An order: its children mappers' empty results (dropped lines) are left out.

    ``ctx["connection"]`` names the connection for ``source.connection``.
    """

    def map(self, source: Mapping[str, Any]) -> dict[str, Any]:
        """The order's canonical fields (not yet validated; see :func:`_finish`)."""
        for path, _, _ in self.children:
            _require_objects(source, path)
        out = super().map(source)
        for _, dst, _ in self.children:
            out[dst] = [item for item in out.get(dst, []) if item]
        return out

    def _identity(self, oid: str, updated_at: Any) -> dict[str, Any]:
        version = utc_version(updated_at)
        return {
            "id": oid,
            "source": {
                "connection": self.ctx.get("connection"),
                "external_id": oid,
                "version": version,
            },
        }


class RestLineMapper(_LineMapper):
    """A REST ``line_items[]`` entry -> a canonical ``OrderLine``."""

    def quantity(self, src: Mapping[str, Any]) -> int:
        """``current_quantity`` (what is left after edits and refunds), else ``quantity``."""
        return int(src.get("current_quantity", src.get("quantity")) or 0)

    @mapping
    def line(self, src: Mapping[str, Any]) -> dict[str, Any]:
        """Ids, SKU, name and quantity."""
        return {
            "id": _s(src.get("id")),
            "sku": _s(src.get("sku")),
            "name": str(src.get("name") or src.get("title") or src.get("sku") or "item"),
            "variant_id": _s(src.get("variant_id")),
            "quantity": self.quantity(src),
        }

    @mapping
    def unit_price(self, src: Mapping[str, Any]) -> dict[str, Any]:
        """``price`` in the order's currency."""
        return {"unit_price": _rest_money(src.get("price"), self.currency)}


class RestShippingLineMapper(_ChildMapper):
    """A REST ``shipping_lines[]`` entry -> a canonical ``ShippingLine``."""

    @mapping
    def shipping(self, src: Mapping[str, Any]) -> dict[str, Any]:
        """Title, code and price."""
        return {
            "title": str(src.get("title") or "Shipping"),
            "code": _s(src.get("code")),
            "price": _rest_money(src.get("price"), self.currency),
        }


class RestOrderMapper(_OrderMapper):
    """A REST-shaped order (webhook payload, ``orders.json``) -> canonical Order fields."""

    direct = (("created_at", "created_at"), ("updated_at", "updated_at"))
    children = (
        ("line_items", "lines", RestLineMapper),
        ("shipping_lines", "shipping_lines", RestShippingLineMapper),
    )

    @staticmethod
    def _currency(src: Mapping[str, Any]) -> str:
        return str(src.get("currency") or "USD")

    @mapping
    def identity(self, src: Mapping[str, Any]) -> dict[str, Any]:
        """``id``, and ``source`` with ``updated_at`` in UTC as the version."""
        return self._identity(str(src["id"]), src.get("updated_at"))

    @mapping
    def texts(self, src: Mapping[str, Any]) -> dict[str, Any]:
        """``name`` -> ``number``, ``note`` -> ``notes``, ``cancelled_at``."""
        return {
            "number": _s(src.get("name")),
            "notes": _s(src.get("note")),
            "cancelled_at": src.get("cancelled_at") or None,
        }

    @mapping
    def statuses(self, src: Mapping[str, Any]) -> dict[str, Any]:
        """The order status and the financial and fulfilment statuses."""
        fin = src.get("financial_status")
        ful = src.get("fulfillment_status")
        return {
            "status": order_status_from_shopify(fin, ful, src.get("cancelled_at")),
            "financial_status": fin or None,
            "fulfillment_status": fulfillment_status_from_shopify(ful),
        }

    @mapping
    def customer(self, src: Mapping[str, Any]) -> dict[str, Any]:
        """The customer (the order's email and phone win or fill in)."""
        raw = src.get("customer")
        cust: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
        return {
            "customer": {
                "id": _s(cust.get("id")),
                "email": _s(src.get("email") or cust.get("email")),
                "first_name": _s(cust.get("first_name")),
                "last_name": _s(cust.get("last_name")),
                "phone": _s(cust.get("phone") or src.get("phone")),
            }
        }

    @mapping
    def addresses(self, src: Mapping[str, Any]) -> dict[str, Any]:
        """The shipping and billing addresses."""
        return {
            "shipping_address": _rest_address(src.get("shipping_address")),
            "billing_address": _rest_address(src.get("billing_address")),
        }

    @mapping
    def totals(self, src: Mapping[str, Any]) -> dict[str, Any]:
        """Subtotal, tax, shipping (the shop-money amount first), discount and total."""
        cur = self._currency(src)
        shop = ((src.get("total_shipping_price_set") or {}).get("shop_money") or {}).get("amount")
        shipping = shop if shop is not None else src.get("total_shipping")
        return {
            "totals": {
                "subtotal": _rest_money(src.get("subtotal_price"), cur),
                "tax": _rest_money(src.get("total_tax"), cur),
                "shipping": _rest_money(shipping, cur),
                "discount": _rest_money(src.get("total_discounts"), cur),
                "total": _rest_money(src.get("total_price"), cur),
            }
        }

    @mapping
    def tags(self, src: Mapping[str, Any]) -> dict[str, Any]:
        """``tags`` (a comma-separated string in REST)."""
        return {"tags": _tags(src.get("tags"))}


class GraphqlLineMapper(_LineMapper):
    """A GraphQL ``LineItem`` node -> a canonical ``OrderLine``."""

    currency_field = "currencyCode"

    def quantity(self, src: Mapping[str, Any]) -> int:
        """``currentQuantity``, else ``quantity``."""
        return int(src.get("currentQuantity", src.get("quantity")) or 0)

    @mapping
    def line(self, src: Mapping[str, Any]) -> dict[str, Any]:
        """Ids (legacy, numeric), SKU, name and quantity."""
        variant = src.get("variant") or {}
        return {
            "id": legacy_id(src.get("id")),
            "sku": _s(src.get("sku")),
            "name": str(src.get("name") or src.get("sku") or "item"),
            "variant_id": _s(variant.get("legacyResourceId")),
            "quantity": self.quantity(src),
        }

    @mapping
    def unit_price(self, src: Mapping[str, Any]) -> dict[str, Any]:
        """``originalUnitPriceSet`` (shop money) in the order's currency."""
        return {"unit_price": _gql_money(src.get("originalUnitPriceSet"), self.currency)}


class GraphqlShippingLineMapper(_ChildMapper):
    """A GraphQL ``ShippingLine`` node -> a canonical ``ShippingLine``."""

    currency_field = "currencyCode"

    @mapping
    def shipping(self, src: Mapping[str, Any]) -> dict[str, Any]:
        """Title, code and price."""
        return {
            "title": str(src.get("title") or "Shipping"),
            "code": _s(src.get("code")),
            "price": _gql_money(src.get("originalPriceSet"), self.currency),
        }


class GraphqlOrderMapper(_OrderMapper):
    """A GraphQL ``Order`` node (see ``OrderFields``) -> canonical Order fields.

    ``ctx["line_items"]``, when set, replaces the node's ``lineItems.nodes`` (a stream
    that read every page of an order's line items passes them all).
    """

    direct = (("createdAt", "created_at"), ("updatedAt", "updated_at"))
    children = (
        ("lineItems.nodes", "lines", GraphqlLineMapper),
        ("shippingLines.nodes", "shipping_lines", GraphqlShippingLineMapper),
    )

    def map(self, source: Mapping[str, Any]) -> dict[str, Any]:
        """The order's fields, its line items from ``ctx["line_items"]`` when given."""
        extra = self.ctx.get("line_items")
        if extra is not None:
            source = {**source, "lineItems": {"nodes": list(extra)}}
        return super().map(source)

    @staticmethod
    def _currency(src: Mapping[str, Any]) -> str:
        return str(src.get("currencyCode") or "USD")

    @mapping
    def identity(self, src: Mapping[str, Any]) -> dict[str, Any]:
        """``id`` (the legacy numeric id), and ``source`` with ``updatedAt`` in UTC."""
        oid = str(src.get("legacyResourceId") or legacy_id(src.get("id")))
        return self._identity(oid, src.get("updatedAt"))

    @mapping
    def texts(self, src: Mapping[str, Any]) -> dict[str, Any]:
        """``name`` -> ``number``, ``note`` -> ``notes``, ``cancelledAt``."""
        return {
            "number": _s(src.get("name")),
            "notes": _s(src.get("note")),
            "cancelled_at": src.get("cancelledAt") or None,
        }

    @mapping
    def statuses(self, src: Mapping[str, Any]) -> dict[str, Any]:
        """The order status and the (upper-case) display statuses, lower-cased."""
        fin = src.get("displayFinancialStatus")
        ful = src.get("displayFulfillmentStatus")
        return {
            "status": order_status_from_shopify(
                fin.lower() if fin else None,
                ful.lower() if ful else None,
                src.get("cancelledAt"),
            ),
            "financial_status": fin.lower() if fin else None,
            "fulfillment_status": fulfillment_status_from_shopify(ful) if ful else None,
        }

    @mapping
    def customer(self, src: Mapping[str, Any]) -> dict[str, Any]:
        """The customer (the order's email; its phone fills in)."""
        cust = src.get("customer") or {}
        return {
            "customer": {
                "id": _s(cust.get("legacyResourceId")),
                "email": _s(src.get("email")),
                "first_name": _s(cust.get("firstName")),
                "last_name": _s(cust.get("lastName")),
                "phone": _s(cust.get("phone") or src.get("phone")),
            }
        }

    @mapping
    def addresses(self, src: Mapping[str, Any]) -> dict[str, Any]:
        """The shipping and billing addresses."""
        return {
            "shipping_address": _gql_address(src.get("shippingAddress")),
            "billing_address": _gql_address(src.get("billingAddress")),
        }

    @mapping
    def totals(self, src: Mapping[str, Any]) -> dict[str, Any]:
        """The totals from their money bags (shop money)."""
        cur = self._currency(src)
        return {
            "totals": {
                "subtotal": _gql_money(src.get("subtotalPriceSet"), cur),
                "tax": _gql_money(src.get("totalTaxSet"), cur),
                "shipping": _gql_money(src.get("totalShippingPriceSet"), cur),
                "discount": _gql_money(src.get("totalDiscountsSet"), cur),
                "total": _gql_money(src.get("totalPriceSet"), cur),
            }
        }

    @mapping
    def tags(self, src: Mapping[str, Any]) -> dict[str, Any]:
        """``tags`` (a list in GraphQL)."""
        return {"tags": _tags(src.get("tags"))}


# --- the public functions -------------------------------------------------------------------


def order_from_rest(o: Mapping[str, Any], connection: str) -> dict[str, Any]:
    """A REST-shaped order (webhook payload, ``orders.json``) as canonical Order JSON."""
    return _finish(RestOrderMapper({"connection": connection}).map(o))


def order_from_graphql(
    node: Mapping[str, Any], connection: str, line_items: Sequence[Mapping[str, Any]] | None = None
) -> dict[str, Any]:
    """A GraphQL ``Order`` node (see ``OrderFields``) as canonical Order JSON."""
    ctx: dict[str, Any] = {"connection": connection, "line_items": line_items}
    return _finish(GraphqlOrderMapper(ctx).map(node))
