"""The emulator's Admin GraphQL: parse with graphql-core, resolve each top-level field,
shape the answer by walking the selection set over plain dicts.

No schema is needed at runtime (the published schema lives outside the project and is
used by the tests to validate what the connector sends): a field's value is the dict
key of the same name, a callable value is a field with arguments (called with them),
``__typename`` comes from the dict, fragments match on it. Unknown top-level fields get
Shopify's ``undefinedField`` error; unknown nested fields answer ``null``.

Cost follows Shopify's calculated query cost: an object costs 1, a connection 2 + first
x the cost of one node, scalars nothing, a mutation 10. The requested cost is taken up
front; the difference to the actual cost (connections counted by the nodes returned) is
refunded. The points bucket answers
``THROTTLED`` (HTTP 200) when a query asks for more than is available, and
``MAX_COST_EXCEEDED`` when it asks for more than the whole bucket.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    Undefined,
    parse,
    value_from_ast_untyped,
)

from .state import ShopifyEmulator

__all__ = ["execute", "requested_cost"]

Frags = Mapping[str, FragmentDefinitionNode]


class FieldError(Exception):
    """A resolver error, reported in ``errors`` with the field's path."""

    def __init__(self, message: str, code: str = "BAD_REQUEST") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


# -- the tiny executor -------------------------------------------------------------------


def _args(f: FieldNode, variables: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for a in f.arguments or ():
        value = value_from_ast_untyped(a.value, dict(variables))
        if value is not Undefined:  # an absent variable is an absent argument
            out[a.name.value] = value
    return out


def _fields(sel: SelectionSetNode | None, frags: Frags) -> list[FieldNode]:
    out: list[FieldNode] = []
    for s in sel.selections if sel is not None else ():
        if isinstance(s, FieldNode):
            out.append(s)
        elif isinstance(s, InlineFragmentNode):
            out += _fields(s.selection_set, frags)
        elif isinstance(s, FragmentSpreadNode) and s.name.value in frags:
            out += _fields(frags[s.name.value].selection_set, frags)
    return out


def _merge(into: dict[str, Any], key: str, value: Any) -> None:
    old = into.get(key)
    if isinstance(old, dict) and isinstance(value, dict):
        for k, v in value.items():
            _merge(old, k, v)
    else:
        into[key] = value


def shape(
    value: Any, sel: SelectionSetNode | None, frags: Frags, variables: Mapping[str, Any]
) -> Any:
    """``value`` (dicts, lists, callables) cut to the selection set."""
    if sel is None or value is None:
        return value
    if isinstance(value, list):
        return [shape(v, sel, frags, variables) for v in value]
    out: dict[str, Any] = {}
    typename = value.get("__typename")
    for s in sel.selections:
        if isinstance(s, FieldNode):
            name = s.name.value
            key = s.alias.value if s.alias else name
            if name == "__typename":
                out[key] = typename
                continue
            v = value.get(name)
            if callable(v):
                v = v(_args(s, variables))
            _merge(out, key, shape(v, s.selection_set, frags, variables))
        else:
            if isinstance(s, InlineFragmentNode):
                cond = s.type_condition.name.value if s.type_condition else None
                inner = s.selection_set
            elif isinstance(s, FragmentSpreadNode) and s.name.value in frags:
                frag = frags[s.name.value]
                cond, inner = frag.type_condition.name.value, frag.selection_set
            else:
                continue
            if cond is None or typename is None or cond == typename:
                for k, v in shape(value, inner, frags, variables).items():
                    _merge(out, k, v)
    return out


def _cost(sel: SelectionSetNode | None, frags: Frags, variables: Mapping[str, Any]) -> int:
    total = 0
    for f in _fields(sel, frags):
        if f.selection_set is None:
            continue
        args = _args(f, variables)
        size = args.get("first") or args.get("last")
        if isinstance(size, int):
            children = _fields(f.selection_set, frags)
            node = 0
            for c in children:
                if c.name.value == "nodes":
                    node += 1 + _cost(c.selection_set, frags, variables)
                elif c.name.value == "edges":
                    for e in _fields(c.selection_set, frags):
                        if e.name.value == "node":
                            node += 1 + _cost(e.selection_set, frags, variables)
                elif c.name.value != "pageInfo" and c.selection_set is not None:
                    node += 1 + _cost(c.selection_set, frags, variables)
            if not any(c.name.value in ("nodes", "edges") for c in children):
                node += 1
            total += 2 + size * node
        else:
            total += 1 + _cost(f.selection_set, frags, variables)
    return total


def _actual(
    sel: SelectionSetNode | None, data: Any, frags: Frags, variables: Mapping[str, Any]
) -> int:
    """What the answer really cost: connections count the nodes they returned."""
    if not isinstance(data, dict):
        return 0
    total = 0
    for f in _fields(sel, frags):
        if f.selection_set is None:
            continue
        value = data.get(f.alias.value if f.alias else f.name.value)
        args = _args(f, variables)
        if isinstance(args.get("first") or args.get("last"), int):
            total += 2
            if isinstance(value, list):
                total += sum(1 + _actual(f.selection_set, v, frags, variables) for v in value)
                continue
            if not isinstance(value, dict):
                continue
            for c in _fields(f.selection_set, frags):
                items = value.get(c.alias.value if c.alias else c.name.value) or []
                if c.name.value == "nodes":
                    total += sum(1 + _actual(c.selection_set, n, frags, variables) for n in items)
                elif c.name.value == "edges":
                    for e in _fields(c.selection_set, frags):
                        if e.name.value == "node":
                            key = e.alias.value if e.alias else "node"
                            total += sum(
                                1 + _actual(e.selection_set, x.get(key), frags, variables)
                                for x in items
                                if isinstance(x, dict)
                            )
        elif isinstance(value, list):
            total += sum(1 + _actual(f.selection_set, v, frags, variables) for v in value)
        elif value is not None:
            total += 1 + _actual(f.selection_set, value, frags, variables)
    return total


def requested_cost(op: OperationDefinitionNode, frags: Frags, variables: Mapping[str, Any]) -> int:
    """Shopify's calculated cost of an operation."""
    if op.operation is OperationType.MUTATION:
        return 10 * max(1, len(_fields(op.selection_set, frags)))
    return max(1, _cost(op.selection_set, frags, variables))


def _error(message: str, code: str, **extra: Any) -> dict[str, Any]:
    return {"message": message, "extensions": {"code": code, **extra}}


def execute(
    emu: ShopifyEmulator,
    query: str,
    variables: Mapping[str, Any] | None,
    operation_name: str | None,
) -> dict[str, Any]:
    """Answer one GraphQL request the way Shopify does (always HTTP 200)."""
    try:
        doc = parse(query)
    except GraphQLError as exc:
        where = [{"line": x.line, "column": x.column} for x in exc.locations or []]
        return {"errors": [{"message": exc.message, "locations": where}]}
    frags = {d.name.value: d for d in doc.definitions if isinstance(d, FragmentDefinitionNode)}
    ops = [d for d in doc.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name:
        ops = [o for o in ops if o.name and o.name.value == operation_name]
    if len(ops) != 1:
        return {"errors": [_error("An operation name is required", "BAD_REQUEST")]}
    op = ops[0]
    vars_: dict[str, Any] = {}
    for vd in op.variable_definitions or ():
        if vd.default_value is not None:
            vars_[vd.variable.name.value] = value_from_ast_untyped(vd.default_value)
    vars_.update(variables or {})
    mutation = op.operation is OperationType.MUTATION
    root_type = "Mutation" if mutation else "QueryRoot"
    resolvers = MUTATIONS if mutation else QUERIES
    for f in _fields(op.selection_set, frags):
        name = f.name.value
        if name != "__typename" and name not in resolvers:
            loc = f.loc.source.get_location(f.loc.start) if f.loc and f.loc.source else None
            return {
                "errors": [
                    {
                        "message": f"Field '{name}' doesn't exist on type '{root_type}'",
                        "locations": [{"line": loc.line, "column": loc.column}] if loc else [],
                        "path": [op.operation.value, name],
                        "extensions": {
                            "code": "undefinedField",
                            "typeName": root_type,
                            "fieldName": name,
                        },
                    }
                ]
            }
    cost = requested_cost(op, frags, vars_)
    if cost > emu.cost.maximum:
        return {
            "errors": [
                _error(
                    f"Query cost is {cost}, which exceeds the single query max cost limit "
                    f"({int(emu.cost.maximum)}).",
                    "MAX_COST_EXCEEDED",
                    cost=cost,
                    maxCost=int(emu.cost.maximum),
                )
            ],
            "extensions": {"cost": _cost_ext(emu, cost, None)},
        }
    if not emu.cost.take(cost):
        emu.throttled += 1
        return {
            "errors": [
                _error(
                    "Throttled",
                    "THROTTLED",
                    documentation="https://shopify.dev/api/usage/rate-limits",
                )
            ],
            "extensions": {"cost": _cost_ext(emu, cost, None)},
        }
    data: dict[str, Any] = {}
    errors: list[dict[str, Any]] = []
    for f in _fields(op.selection_set, frags):
        name = f.name.value
        key = f.alias.value if f.alias else name
        if name == "__typename":
            data[key] = root_type
            continue
        try:
            value = resolvers[name](emu, _args(f, vars_))
            data[key] = shape(value, f.selection_set, frags, vars_)
        except FieldError as exc:
            data[key] = None
            errors.append({**_error(exc.message, exc.code), "path": [key]})
    answer: dict[str, Any] = {"data": data}
    if errors:
        answer["errors"] = errors
    actual = cost if mutation else min(cost, max(1, _actual(op.selection_set, data, frags, vars_)))
    emu.cost.refund(cost - actual)  # Shopify takes the requested cost, refunds the rest
    answer["extensions"] = {"cost": _cost_ext(emu, cost, actual)}
    return answer


def _cost_ext(emu: ShopifyEmulator, requested: int, actual: int | None) -> dict[str, Any]:
    return {
        "requestedQueryCost": requested,
        "actualQueryCost": actual,
        "throttleStatus": emu.cost.status(),
    }


# -- views of the shop's objects ------------------------------------------------------------


def _dec(amount: str | None) -> str:
    d = Decimal(str(amount or "0")).normalize()
    text = format(d, "f")
    return text if "." in text else text + ".0"


def _bag(amount: str | None, cur: str) -> dict[str, Any]:
    m = {"amount": _dec(amount), "currencyCode": cur}
    return {"shopMoney": m, "presentmentMoney": dict(m)}


def _cursor(key: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


def _uncursor(text: str) -> Any:
    try:
        return json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (ValueError, json.JSONDecodeError) as exc:
        raise FieldError(f"Invalid cursor for current pagination sort: {text}") from exc


def connection(
    items: list[Any], args: Mapping[str, Any], key: Callable[[Any], Any] | None = None
) -> dict[str, Any]:
    """A Relay connection over ``items`` (already in order), with keyset cursors."""
    first, last = args.get("first"), args.get("last")
    given = first if first is not None else last
    if given is None:
        raise FieldError("you must provide one of first or last")
    size = int(given)
    if size > 250:
        raise FieldError("The first or last argument must not exceed 250.")
    keyed = [(key(it) if key else i, it) for i, it in enumerate(items)]
    if args.get("reverse"):
        keyed.reverse()
    if args.get("after") is not None:
        after = _uncursor(str(args["after"]))
        pos = next((i for i, (k, _) in enumerate(keyed) if k == after), None)
        if pos is None:
            keyed = [(k, it) for k, it in keyed if (k > after) != bool(args.get("reverse"))]
        else:
            keyed = keyed[pos + 1 :]
    page = keyed[:size]
    has_next = len(keyed) > size
    edges = [{"cursor": _cursor(k), "node": it} for k, it in page]
    return {
        "nodes": [it for _, it in page],
        "edges": edges,
        "pageInfo": {
            "hasNextPage": has_next,
            "hasPreviousPage": args.get("after") is not None,
            "startCursor": edges[0]["cursor"] if edges else None,
            "endCursor": edges[-1]["cursor"] if edges else None,
        },
    }


def _legacy(value: Any, kind: str) -> int:
    text = str(value or "")
    m = re.fullmatch(rf"gid://shopify/{kind}/(\d+)(\?.*)?", text)
    if m is None:
        raise FieldError(f"Invalid global id '{text}'", "BAD_REQUEST")
    return int(m.group(1))


def _address(a: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not a:
        return None
    return {
        "__typename": "MailingAddress",
        "name": a.get("name"),
        "firstName": a.get("first_name"),
        "lastName": a.get("last_name"),
        "company": a.get("company"),
        "address1": a.get("address1"),
        "address2": a.get("address2"),
        "city": a.get("city"),
        "province": a.get("province"),
        "provinceCode": a.get("province_code"),
        "zip": a.get("zip"),
        "country": a.get("country"),
        "countryCodeV2": a.get("country_code"),
        "phone": a.get("phone"),
    }


def _line(emu: ShopifyEmulator, li: Mapping[str, Any], cur: str) -> dict[str, Any]:
    variant = emu.variants.get(li["variant_id"]) if li.get("variant_id") else None
    return {
        "__typename": "LineItem",
        "id": li["admin_graphql_api_id"],
        "sku": li.get("sku"),
        "name": li.get("name"),
        "title": li.get("title"),
        "quantity": li["quantity"],
        "currentQuantity": li.get("current_quantity", li["quantity"]),
        "unfulfilledQuantity": li.get("fulfillable_quantity", 0),
        "variant": _variant(emu, variant) if variant else None,
        "originalUnitPriceSet": _bag(li["price"], cur),
    }


def _fulfillment(f: Mapping[str, Any]) -> dict[str, Any]:
    tracking = [
        {
            "__typename": "FulfillmentTrackingInfo",
            "company": f["tracking_company"],
            "number": n,
            "url": u,
        }
        for n, u in zip(f["tracking_numbers"], f["tracking_urls"] or [None] * 99, strict=False)
    ]
    return {
        "__typename": "Fulfillment",
        "id": f"gid://shopify/Fulfillment/{f['id']}",
        "legacyResourceId": str(f["id"]),
        "name": f["name"],
        "status": str(f["status"]).upper(),
        "createdAt": f["created_at"],
        "updatedAt": f["updated_at"],
        "trackingInfo": lambda a: tracking[: a.get("first") or None],
    }


_FO_STATUS = {"open": "OPEN", "closed": "CLOSED", "cancelled": "CANCELLED"}


def _fulfillment_order(emu: ShopifyEmulator, fo: Mapping[str, Any]) -> dict[str, Any]:
    order = emu.orders[fo["order_id"]]
    by_id = {li["id"]: li for li in order["line_items"]}
    lines = [
        {
            "__typename": "FulfillmentOrderLineItem",
            "id": f"gid://shopify/FulfillmentOrderLineItem/{x['id']}",
            "remainingQuantity": x["remaining"],
            "totalQuantity": x["total"],
            "sku": by_id[x["line_item_id"]].get("sku"),
            "lineItem": _line(emu, by_id[x["line_item_id"]], order["currency"]),
        }
        for x in fo["line_items"]
    ]
    return {
        "__typename": "FulfillmentOrder",
        "id": f"gid://shopify/FulfillmentOrder/{fo['id']}",
        "status": _FO_STATUS[fo["status"]],
        "orderId": order["admin_graphql_api_id"],
        "lineItems": lambda a: connection(lines, a),
    }


_FULFILLMENT_STATUS = {
    None: "UNFULFILLED",
    "partial": "PARTIALLY_FULFILLED",
    "fulfilled": "FULFILLED",
}


def _order(emu: ShopifyEmulator, o: Mapping[str, Any]) -> dict[str, Any]:
    cur = o["currency"]
    customer = o.get("customer") or None
    shipping = [
        {
            "__typename": "ShippingLine",
            "title": s["title"],
            "code": s.get("code"),
            "source": s.get("source"),
            "originalPriceSet": _bag(s["price"], cur),
        }
        for s in o.get("shipping_lines") or []
    ]
    lines = [_line(emu, li, cur) for li in o["line_items"]]
    fulfillments = [_fulfillment(f) for f in o["fulfillments"]]
    fos = [_fulfillment_order(emu, emu.fulfillment_orders[i]) for i in o["_fulfillment_orders"]]
    return {
        "__typename": "Order",
        "id": o["admin_graphql_api_id"],
        "legacyResourceId": str(o["id"]),
        "name": o["name"],
        "email": o.get("email"),
        "phone": o.get("phone"),
        "createdAt": o["created_at"],
        "updatedAt": o["updated_at"],
        "processedAt": o["processed_at"],
        "cancelledAt": o.get("cancelled_at"),
        "cancelReason": (o.get("cancel_reason") or "").upper() or None,
        "closed": bool(o.get("closed_at")),
        "displayFinancialStatus": str(o["financial_status"]).upper(),
        "displayFulfillmentStatus": _FULFILLMENT_STATUS.get(o["fulfillment_status"], "UNFULFILLED"),
        "currencyCode": cur,
        "note": o.get("note"),
        "tags": [t.strip() for t in (o.get("tags") or "").split(",") if t.strip()],
        "test": True,
        "customer": {
            "__typename": "Customer",
            "id": f"gid://shopify/Customer/{customer['id']}",
            "legacyResourceId": str(customer["id"]),
            "firstName": customer.get("first_name"),
            "lastName": customer.get("last_name"),
            "phone": customer.get("phone"),
            "email": customer.get("email"),
        }
        if customer
        else None,
        "shippingAddress": _address(o.get("shipping_address")),
        "billingAddress": _address(o.get("billing_address")),
        "subtotalPriceSet": _bag(o["subtotal_price"], cur),
        "totalTaxSet": _bag(o["total_tax"], cur),
        "totalShippingPriceSet": _bag(o["total_shipping_price_set"]["shop_money"]["amount"], cur),
        "totalDiscountsSet": _bag(o["total_discounts"], cur),
        "totalPriceSet": _bag(o["total_price"], cur),
        "shippingLines": lambda a: connection(shipping, a),
        "lineItems": lambda a: connection(lines, a),
        "fulfillments": lambda a: fulfillments[: a.get("first") or None],
        "fulfillmentOrders": lambda a: connection(fos, a),
    }


def _location(emu: ShopifyEmulator) -> dict[str, Any]:
    loc = emu.location
    return {
        "__typename": "Location",
        "id": f"gid://shopify/Location/{loc['id']}",
        "legacyResourceId": str(loc["id"]),
        "name": loc["name"],
        "isActive": True,
    }


def _level(emu: ShopifyEmulator, item_id: int, location_id: int) -> dict[str, Any] | None:
    if location_id != emu.location["id"]:
        return None
    q = emu.levels[item_id]

    def quantities(a: Mapping[str, Any]) -> list[dict[str, Any]]:
        out = []
        for name in a.get("names") or []:
            value = q.get(name, max(0, q["on_hand"] - q["available"]) if name == "committed" else 0)
            out.append({"__typename": "InventoryQuantity", "name": name, "quantity": value})
        return out

    return {
        "__typename": "InventoryLevel",
        "id": f"gid://shopify/InventoryLevel/{location_id}?inventory_item_id={item_id}",
        "location": _location(emu),
        "quantities": quantities,
    }


def _variant(emu: ShopifyEmulator, v: Mapping[str, Any]) -> dict[str, Any]:
    item = v["inventory_item_id"]
    return {
        "__typename": "ProductVariant",
        "id": f"gid://shopify/ProductVariant/{v['id']}",
        "legacyResourceId": str(v["id"]),
        "sku": v["sku"],
        "title": v["title"],
        "displayName": v["title"],
        "price": _dec(v["price"]),
        "inventoryItem": {
            "__typename": "InventoryItem",
            "id": f"gid://shopify/InventoryItem/{item}",
            "legacyResourceId": str(item),
            "sku": v["sku"],
            "tracked": True,
            "inventoryLevel": lambda a: _level(emu, item, _legacy(a.get("locationId"), "Location")),
        },
    }


# -- search syntax (the small part the emulator understands) ---------------------------------

_TERM = re.compile(r"(\w+):(>=|<=|>|<)?('([^']*)'|\"([^\"]*)\"|(\S+))")


def _terms(query: str | None) -> list[tuple[str, str, str]]:
    out = []
    for m in _TERM.finditer(query or ""):
        value = m.group(4) if m.group(4) is not None else m.group(5) or m.group(6) or ""
        out.append((m.group(1), m.group(2) or "=", value))
    return out


def _compare(left: str, op: str, right: str) -> bool:
    if op == ">=":
        return left >= right
    if op == ">":
        return left > right
    if op == "<=":
        return left <= right
    if op == "<":
        return left < right
    return left == right


def _norm_time(value: str) -> str:
    from crossdock.emulators.shopify.state import _parse, _stamp

    try:
        return _stamp(_parse(value if "T" in value else value + "T00:00:00Z"))
    except ValueError as exc:
        raise FieldError(f"Invalid date in search query: {value}") from exc


# -- resolvers -------------------------------------------------------------------------------


def q_shop(emu: ShopifyEmulator, args: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "__typename": "Shop",
        "id": "gid://shopify/Shop/1",
        "name": emu.shop.split(".")[0].replace("-", " ").title(),
        "myshopifyDomain": emu.shop,
        "currencyCode": emu.currency,
        "email": f"owner@{emu.shop}",
    }


_ORDER_SORT: dict[str, Callable[[Mapping[str, Any]], Any]] = {
    "ID": lambda o: o["id"],
    "UPDATED_AT": lambda o: [o["updated_at"], o["id"]],
    "CREATED_AT": lambda o: [o["created_at"], o["id"]],
    "PROCESSED_AT": lambda o: [o["processed_at"], o["id"]],
}


def q_orders(emu: ShopifyEmulator, args: Mapping[str, Any]) -> dict[str, Any]:
    orders = list(emu.orders.values())
    for field, op, value in _terms(args.get("query")):
        if field in ("updated_at", "created_at", "processed_at"):
            bound = _norm_time(value)
            orders = [o for o in orders if _compare(o[field], op, bound)]
        elif field == "status":
            if value == "cancelled":
                orders = [o for o in orders if o["cancelled_at"]]
            elif value == "open":
                orders = [o for o in orders if not o["cancelled_at"] and not o["closed_at"]]
        elif field == "financial_status":
            orders = [o for o in orders if o["financial_status"] == value]
        elif field in ("name", "id"):
            orders = [o for o in orders if str(o[field]).lstrip("#") == value.lstrip("#")]
    sort = str(args.get("sortKey") or "ID")
    key = _ORDER_SORT.get(sort)
    if key is None:
        raise FieldError(f"Unsupported sortKey {sort} in the emulator")
    orders.sort(key=key)
    return connection(
        [_order(emu, o) for o in orders],
        args,
        lambda v: key(emu.orders[int(v["legacyResourceId"])]),
    )


def q_order(emu: ShopifyEmulator, args: Mapping[str, Any]) -> dict[str, Any] | None:
    o = emu.orders.get(_legacy(args.get("id"), "Order"))
    return _order(emu, o) if o else None


def q_locations(emu: ShopifyEmulator, args: Mapping[str, Any]) -> dict[str, Any]:
    return connection([_location(emu)], args)


def _by_sku(emu: ShopifyEmulator, query: str | None) -> list[dict[str, Any]]:
    variants = list(emu.variants.values())
    for field, _, value in _terms(query):
        if field == "sku":
            variants = [v for v in variants if v["sku"].lower() == value.lower()]
    return variants


def q_product_variants(emu: ShopifyEmulator, args: Mapping[str, Any]) -> dict[str, Any]:
    return connection([_variant(emu, v) for v in _by_sku(emu, args.get("query"))], args)


def q_inventory_items(emu: ShopifyEmulator, args: Mapping[str, Any]) -> dict[str, Any]:
    items = [_variant(emu, v)["inventoryItem"] for v in _by_sku(emu, args.get("query"))]
    return connection(items, args)


REASONS = {
    "correction",
    "cycle_count_available",
    "damaged",
    "movement_created",
    "movement_updated",
    "movement_received",
    "movement_canceled",
    "other",
    "promotion",
    "quality_control",
    "received",
    "reservation_created",
    "reservation_deleted",
    "reservation_updated",
    "restock",
    "safety_stock",
    "shrinkage",
}


def m_inventory_set_quantities(emu: ShopifyEmulator, args: Mapping[str, Any]) -> dict[str, Any]:
    data = args.get("input") or {}
    name = data.get("name")
    errors: list[dict[str, Any]] = []

    def err(field: list[str], message: str, code: str) -> None:
        errors.append(
            {
                "__typename": "InventorySetQuantitiesUserError",
                "field": field,
                "message": message,
                "code": code,
            }
        )

    if name not in ("available", "on_hand"):
        err(
            ["input", "name"],
            "The quantity name must be either 'available' or 'on_hand'.",
            "INVALID_NAME",
        )
    if data.get("reason") not in REASONS:
        err(["input", "reason"], "The specified reason is invalid.", "INVALID_REASON")
    plan: list[tuple[int, int, int]] = []
    for i, q in enumerate(data.get("quantities") or []):
        where = ["input", "quantities", str(i)]
        try:
            item = _legacy(q.get("inventoryItemId"), "InventoryItem")
        except FieldError:
            item = -1
        if item not in emu.levels:
            err(
                [*where, "inventoryItemId"],
                "The specified inventory item could not be found.",
                "INVALID_INVENTORY_ITEM",
            )
            continue
        try:
            loc = _legacy(q.get("locationId"), "Location")
        except FieldError:
            loc = -1
        if loc != emu.location["id"]:
            err(
                [*where, "locationId"],
                "The specified location could not be found.",
                "INVALID_LOCATION",
            )
            continue
        quantity = int(q.get("quantity") or 0)
        if quantity < 0 and name == "on_hand":
            err(
                [*where, "quantity"], "The quantity can't be negative.", "INVALID_QUANTITY_NEGATIVE"
            )
            continue
        variant = emu.variant_by_item(item)
        races = emu.races.get(variant["sku"]) if variant else None
        if races:
            delta = races.pop(0)  # a sale (or receipt) lands between the read and this write
            emu.levels[item]["available"] += delta
            emu.levels[item]["on_hand"] += delta
        compare = q.get("compareQuantity")
        if compare is None and not data.get("ignoreCompareQuantity"):
            err(
                [*where, "compareQuantity"],
                "The compareQuantity argument must be given to "
                "each quantity or ignored using ignoreCompareQuantity.",
                "COMPARE_QUANTITY_REQUIRED",
            )
            continue
        if name in ("available", "on_hand"):
            current = emu.levels[item][str(name)]
            if compare is not None and int(compare) != current:
                emu.stale_compares += 1
                err(
                    [*where, "compareQuantity"],
                    "The specified compare quantity does not match the current quantity.",
                    "COMPARE_QUANTITY_STALE",
                )
                continue
            plan.append((item, quantity, quantity - current))
    if errors:
        return {
            "__typename": "InventorySetQuantitiesPayload",
            "inventoryAdjustmentGroup": None,
            "userErrors": errors,
        }
    changes = []
    for item, quantity, delta in plan:
        level = emu.levels[item]
        level[str(name)] = quantity
        other = "on_hand" if name == "available" else "available"
        level[other] += delta
        changes += [
            {
                "__typename": "InventoryChange",
                "name": name,
                "delta": delta,
                "quantityAfterChange": quantity,
            },
            {
                "__typename": "InventoryChange",
                "name": other,
                "delta": delta,
                "quantityAfterChange": level[other],
            },
        ]
    emu.inventory_sets += 1
    group = {
        "__typename": "InventoryAdjustmentGroup",
        "id": f"gid://shopify/InventoryAdjustmentGroup/{emu.new_id()}",
        "reason": data.get("reason"),
        "referenceDocumentUri": data.get("referenceDocumentUri"),
        "createdAt": emu.now(),
        "changes": lambda a: changes,
    }
    return {
        "__typename": "InventorySetQuantitiesPayload",
        "inventoryAdjustmentGroup": group,
        "userErrors": [],
    }


def m_fulfillment_create(emu: ShopifyEmulator, args: Mapping[str, Any]) -> dict[str, Any]:
    data = args.get("fulfillment") or {}

    def refuse(message: str, field: list[str]) -> dict[str, Any]:
        return {
            "__typename": "FulfillmentCreatePayload",
            "fulfillment": None,
            "userErrors": [{"__typename": "UserError", "field": field, "message": message}],
        }

    entries = data.get("lineItemsByFulfillmentOrder") or []
    if not entries:
        return refuse(
            "Line items by fulfillment order must not be empty.",
            ["fulfillment", "lineItemsByFulfillmentOrder"],
        )
    plan: list[tuple[dict[str, Any], int]] = []
    order_ids = set()
    for entry in entries:
        try:
            fo = emu.fulfillment_orders.get(
                _legacy(entry.get("fulfillmentOrderId"), "FulfillmentOrder")
            )
        except FieldError:
            fo = None
        if fo is None:
            return refuse(
                "Fulfillment order does not exist.", ["fulfillment", "lineItemsByFulfillmentOrder"]
            )
        order_ids.add(fo["order_id"])
        if fo["status"] != "open":
            return refuse(
                f"Fulfillment order {fo['id']} has an unfulfillable status= {fo['status']}.",
                ["fulfillment"],
            )
        wanted = entry.get("fulfillmentOrderLineItems")
        by_id = {x["id"]: x for x in fo["line_items"]}
        if wanted:
            for w in wanted:
                try:
                    line = by_id.get(_legacy(w.get("id"), "FulfillmentOrderLineItem"))
                except FieldError:
                    line = None
                if line is None or not 0 < int(w.get("quantity") or 0) <= line["remaining"]:
                    return refuse(
                        "Invalid fulfillment order line item quantity requested.", ["fulfillment"]
                    )
                plan.append((line, int(w["quantity"])))
        else:
            plan += [(x, x["remaining"]) for x in fo["line_items"] if x["remaining"] > 0]
    if len(order_ids) != 1:
        return refuse("All fulfillment orders must belong to the same order.", ["fulfillment"])
    if not plan:
        return refuse("There are no line items left to fulfill.", ["fulfillment"])
    order = emu.orders[order_ids.pop()]
    tracking = data.get("trackingInfo") or {}
    numbers = list(
        tracking.get("numbers") or ([tracking["number"]] if tracking.get("number") else [])
    )
    urls = list(tracking.get("urls") or ([tracking["url"]] if tracking.get("url") else []))
    by_line = {li["id"]: li for li in order["line_items"]}
    lines = []
    for fo_line, qty in plan:
        fo_line["remaining"] -= qty
        li = by_line[fo_line["line_item_id"]]
        li["fulfillable_quantity"] -= qty
        li["fulfillment_status"] = "fulfilled" if li["fulfillable_quantity"] == 0 else "partial"
        lines.append(
            {
                **{k: li[k] for k in ("id", "variant_id", "sku", "title", "name", "price")},
                "quantity": qty,
            }
        )
    for fo_id in order["_fulfillment_orders"]:
        fo = emu.fulfillment_orders[fo_id]
        if fo["status"] == "open" and all(x["remaining"] == 0 for x in fo["line_items"]):
            fo["status"] = "closed"
    done = all(li["fulfillable_quantity"] == 0 for li in order["line_items"])
    order["fulfillment_status"] = "fulfilled" if done else "partial"
    stamp = emu.bump(order)
    fid = emu.new_id()
    fulfillment = {
        "id": fid,
        "admin_graphql_api_id": f"gid://shopify/Fulfillment/{fid}",
        "order_id": order["id"],
        "name": f"{order['name']}.{len(order['fulfillments']) + 1}",
        "status": "success",
        "created_at": stamp,
        "updated_at": stamp,
        "location_id": emu.location["id"],
        "tracking_company": tracking.get("company"),
        "tracking_number": numbers[0] if numbers else None,
        "tracking_numbers": numbers,
        "tracking_url": urls[0] if urls else None,
        "tracking_urls": urls,
        "line_items": lines,
    }
    order["fulfillments"].append(fulfillment)
    emu.notified[fid] = bool(data.get("notifyCustomer", False))
    emu.webhook("orders/updated", order)
    return {
        "__typename": "FulfillmentCreatePayload",
        "fulfillment": _fulfillment(fulfillment),
        "userErrors": [],
    }


Resolver = Callable[[ShopifyEmulator, Mapping[str, Any]], Any]

QUERIES: dict[str, Resolver] = {
    "shop": q_shop,
    "orders": q_orders,
    "order": q_order,
    "locations": q_locations,
    "productVariants": q_product_variants,
    "inventoryItems": q_inventory_items,
}

MUTATIONS: dict[str, Resolver] = {
    "fulfillmentCreate": m_fulfillment_create,
    "inventorySetQuantities": m_inventory_set_quantities,
}
