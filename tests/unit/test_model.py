"""Guarantees of the canonical data model v1 (crossdock.model)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from crossdock.model import (
    MODEL_VERSION,
    RECORD_TYPES,
    InventoryChange,
    InventoryLevel,
    Invoice,
    Item,
    Label,
    Money,
    Order,
    OrderStatus,
    Product,
    Return,
    Shipment,
    ShipmentStatus,
    TrackingStatus,
    canonical_json_schema,
    order_status_from_amazon,
    order_status_from_shopify,
    order_status_from_trendyol,
    order_status_from_woocommerce,
    shipment_status_from_tracking,
    tracking_status_from_easypost,
    tracking_status_from_shipengine,
)

T0 = "2024-05-01T12:00:00+03:00"


def usd(amount: str, currency: str = "USD") -> dict[str, str]:
    return {"amount": amount, "currency": currency}


def order_data(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": "5001",
        "number": "#1001",
        "source": {"connection": "shopify/acme-store", "external_id": "5001", "version": "3"},
        "status": "confirmed",
        "financial_status": "paid",
        "fulfillment_status": "unfulfilled",
        "customer": {"id": "77", "email": "ada@example.com", "first_name": "Ada"},
        "shipping_address": {
            "name": "Ada Lovelace",
            "line1": "1 Main St",
            "city": "Springfield",
            "postal_code": "12345",
            "country_code": "US",
        },
        "lines": [
            {
                "id": "l1",
                "sku": "TEE-M",
                "name": "T-shirt M",
                "quantity": 2,
                "unit_price": usd("19.90"),
                "tax_lines": [{"title": "VAT", "rate": "0.18", "amount": usd("7.16")}],
                "discounts": [{"code": "SPRING", "amount": usd("2.00")}],
            }
        ],
        "shipping_lines": [{"title": "Standard", "price": usd("5.00")}],
        "totals": {
            "subtotal": usd("39.80"),
            "tax": usd("7.16"),
            "shipping": usd("5.00"),
            "discount": usd("2.00"),
            "total": usd("49.96"),
        },
        "created_at": T0,
        "updated_at": T0,
        "timezone": "Europe/Istanbul",
        "tags": ["vip"],
    }
    data.update(overrides)
    return data


RECORD_SAMPLES: dict[str, dict[str, Any]] = {
    "order": order_data(),
    "product": {
        "sku": "TEE-M",
        "barcode": "8690000000012",
        "title": "T-shirt",
        "variant": {"group_id": "TEE", "options": {"Size": "M", "Colour": "Blue"}},
        "weight": {"value": "0.25", "unit": "kg"},
        "price": usd("19.90"),
    },
    "inventory_level": {"sku": "TEE-M", "location": "wh-1", "on_hand": 10, "available": 7},
    "shipment": {
        "order": {"id": "5001", "number": "#1001", "connection": "shopify/acme-store"},
        "status": "shipped",
        "lines": [{"sku": "TEE-M", "quantity": 2}],
        "parcels": [
            {
                "weight": {"value": "0.6", "unit": "kg"},
                "dimensions": {"length": "30", "width": "20", "height": "5", "unit": "cm"},
            }
        ],
        "carrier": "ups",
        "service": "ground",
        "tracking_number": "1Z999",
        "tracking_url": "https://track.example/1Z999",
        "label": {"format": "pdf", "data": "JVBERi0xLjQ="},
        "events": [
            {"occurred_at": T0, "status": "accepted", "raw_status": "AC"},
            {
                "occurred_at": "2024-05-02T08:00:00Z",
                "status": "in_transit",
                "description": "Departed facility",
                "location": {"city": "Louisville", "country_code": "US"},
            },
        ],
    },
    "invoice": {
        "number": "ABC2024000000001",
        "order": {"id": "5001"},
        "customer": {"tax_id": "1234567890"},
        "lines": [{"description": "T-shirt M", "quantity": "1.5", "unit_price": usd("10.00")}],
        "totals": {"subtotal": usd("15.00"), "tax": usd("2.70"), "total": usd("17.70")},
        "issued_at": T0,
        "due_at": "2024-05-31T12:00:00+03:00",
        "status": "issued",
    },
    "return": {
        "order": {"id": "5001"},
        "lines": [{"sku": "TEE-M", "quantity": 1, "reason": "size_or_fit", "note": "too small"}],
        "status": "approved",
        "refund": usd("19.90"),
        "created_at": T0,
    },
}


def errors_text(exc: pytest.ExceptionInfo[ValidationError]) -> str:
    return " | ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.value.errors())


# --- records ---------------------------------------------------------------------------------


@pytest.mark.parametrize("record", sorted(RECORD_SAMPLES))
def test_every_record_round_trips_through_json_unchanged(record: str) -> None:
    model = RECORD_TYPES[record]
    first = model.model_validate(RECORD_SAMPLES[record])
    again = model.model_validate_json(first.model_dump_json())
    assert again == first
    assert again.model_dump_json() == first.model_dump_json()


def test_record_types_name_the_six_records_and_model_version_is_1() -> None:
    assert set(RECORD_TYPES) == {
        "order",
        "product",
        "inventory_level",
        "shipment",
        "invoice",
        "return",
    }
    assert all(issubclass(m, BaseModel) for m in RECORD_TYPES.values())
    assert MODEL_VERSION == "1"
    assert Item is Product


def test_unknown_fields_are_rejected_so_mapping_typos_surface() -> None:
    with pytest.raises(ValidationError) as exc:
        Order.model_validate(order_data(totl="1"))
    assert "totl" in errors_text(exc)


# --- money -----------------------------------------------------------------------------------


def test_money_rejects_float_rounding_by_keeping_decimal() -> None:
    a, b = Money(amount="0.10", currency="USD"), Money(amount="0.20", currency="USD")
    assert isinstance(a.amount, Decimal)
    assert a.amount + b.amount == Decimal("0.30")
    with pytest.raises(ValidationError) as exc:
        Money(amount=0.1, currency="USD")
    assert "float" in errors_text(exc)
    with pytest.raises(ValidationError):
        Money.model_validate_json('{"amount": 19.9, "currency": "USD"}')


def test_money_serialises_amount_as_an_exact_string() -> None:
    money = Money(amount=Decimal("19.90"), currency="EUR")
    assert json.loads(money.model_dump_json()) == {"amount": "19.90", "currency": "EUR"}
    assert Money(amount="1E+2", currency="EUR").model_dump(mode="json")["amount"] == "100"


def test_money_rejects_nan_and_non_numeric_amounts() -> None:
    for bad in ("NaN", "Infinity", "ten"):
        with pytest.raises(ValidationError):
            Money(amount=bad, currency="USD")


@pytest.mark.parametrize("code", ["usd", "US", "USDX", "12$"])
def test_currency_must_be_three_upper_case_letters(code: str) -> None:
    with pytest.raises(ValidationError) as exc:
        Money(amount="1", currency=code)
    assert "ISO 4217" in errors_text(exc)
    assert repr(code) in errors_text(exc)


def test_country_code_must_be_iso_alpha_2() -> None:
    with pytest.raises(ValidationError) as exc:
        Order.model_validate(order_data(billing_address={"country_code": "USA"}))
    text = errors_text(exc)
    assert "billing_address.country_code" in text
    assert "ISO 3166-1 alpha-2" in text


# --- timestamps ------------------------------------------------------------------------------


def test_naive_timestamp_is_rejected_with_clear_message() -> None:
    with pytest.raises(ValidationError) as exc:
        Order.model_validate(order_data(created_at="2024-05-01T12:00:00"))
    text = errors_text(exc)
    assert "created_at" in text
    assert "no time zone" in text
    with pytest.raises(ValidationError):
        Order.model_validate(order_data(cancelled_at=datetime(2024, 5, 1, 12)))


def test_aware_timestamps_keep_their_offset() -> None:
    order = Order.model_validate(order_data(created_at=T0))
    assert order.created_at.utcoffset() == timedelta(hours=3)
    assert order.created_at == datetime(2024, 5, 1, 9, tzinfo=UTC)
    assert json.loads(order.model_dump_json())["created_at"] == T0


# --- order -----------------------------------------------------------------------------------


def test_order_totals_must_share_one_currency() -> None:
    totals = order_data()["totals"] | {"tax": usd("7.16", "EUR")}
    with pytest.raises(ValidationError) as exc:
        Order.model_validate(order_data(totals=totals))
    assert "one currency" in errors_text(exc)
    assert "EUR, USD" in errors_text(exc)


def test_order_lines_must_use_the_order_currency() -> None:
    line = order_data()["lines"][0] | {"unit_price": usd("19.90", "TRY"), "tax_lines": []}
    with pytest.raises(ValidationError) as exc:
        Order.model_validate(order_data(lines=[line]))
    assert "TRY, USD" in errors_text(exc)
    assert Order.model_validate(order_data()).currency == "USD"


@pytest.mark.parametrize("quantity", [0, -1, 1.5])
def test_order_line_quantity_must_be_a_positive_integer(quantity: Any) -> None:
    line = order_data()["lines"][0] | {"quantity": quantity}
    with pytest.raises(ValidationError) as exc:
        Order.model_validate(order_data(lines=[line]))
    assert "lines.0.quantity" in errors_text(exc)


def test_tax_rate_is_a_fraction_and_time_zone_an_iana_name() -> None:
    line = order_data()["lines"][0]
    bad_tax = line | {"tax_lines": [{"title": "VAT", "rate": "18", "amount": usd("7.16")}]}
    with pytest.raises(ValidationError):
        Order.model_validate(order_data(lines=[bad_tax]))
    with pytest.raises(ValidationError) as exc:
        Order.model_validate(order_data(timezone="+03:00"))
    assert "IANA" in errors_text(exc)


# --- inventory, shipment, invoice, return ---------------------------------------------------


def test_inventory_level_rejects_negative_and_impossible_quantities() -> None:
    with pytest.raises(ValidationError):
        InventoryLevel(sku="A", location="wh", on_hand=-1)
    with pytest.raises(ValidationError) as exc:
        InventoryLevel(sku="A", location="wh", on_hand=5, available=6)
    assert "available (6) cannot exceed on_hand (5)" in errors_text(exc)
    with pytest.raises(ValidationError):
        InventoryLevel(sku="A", location="wh")
    assert InventoryLevel(sku="A", location="wh", available=3).on_hand is None


def test_inventory_change_is_either_a_delta_or_an_absolute_set() -> None:
    assert InventoryChange(sku="A", location="wh", delta=-2, reason="sold").delta == -2
    assert InventoryChange(sku="A", location="wh", set_to=10, compare_to=8).set_to == 10
    for bad in ({}, {"delta": 1, "set_to": 2}, {"delta": 0}, {"delta": 1, "compare_to": 3}):
        with pytest.raises(ValidationError):
            InventoryChange(sku="A", location="wh", **bad)


def test_label_needs_exactly_one_of_url_or_valid_base64_data() -> None:
    assert Label(format="zpl", url="https://labels.example/1.zpl").url
    for bad in ({}, {"url": "https://x", "data": "QUJD"}, {"data": "not base64!"}):
        with pytest.raises(ValidationError):
            Label(format="pdf", **bad)
    with pytest.raises(ValidationError):
        Label(format="gif", url="https://x")


def test_shipment_latest_event_is_the_most_recent_by_time() -> None:
    shipment = Shipment.model_validate(RECORD_SAMPLES["shipment"])
    assert shipment.latest_event is not None
    assert shipment.latest_event.status is TrackingStatus.IN_TRANSIT
    assert shipment.events[1].occurred_at.tzinfo is not None


def test_invoice_due_date_cannot_precede_issue_date() -> None:
    data = RECORD_SAMPLES["invoice"] | {"due_at": "2024-04-01T00:00:00+00:00"}
    with pytest.raises(ValidationError) as exc:
        Invoice.model_validate(data)
    assert "due_at cannot be before issued_at" in errors_text(exc)


def test_return_needs_at_least_one_line() -> None:
    with pytest.raises(ValidationError) as exc:
        Return.model_validate(RECORD_SAMPLES["return"] | {"lines": []})
    assert "lines" in errors_text(exc)


# --- status maps -----------------------------------------------------------------------------


def test_shipengine_status_codes_map_to_tracking_status() -> None:
    expected = {
        "UN": "unknown",
        "AC": "accepted",
        "IT": "in_transit",
        "DE": "delivered",
        "EX": "exception",
        "AT": "attempt_failed",
        "NY": "pre_transit",
        "SP": "available_for_pickup",
    }
    for code, status in expected.items():
        assert tracking_status_from_shipengine(code) is TrackingStatus(status)


def test_easypost_statuses_map_to_tracking_status() -> None:
    statuses = [
        "unknown",
        "pre_transit",
        "in_transit",
        "out_for_delivery",
        "delivered",
        "available_for_pickup",
        "return_to_sender",
        "failure",
        "cancelled",
    ]
    for status in statuses:
        assert tracking_status_from_easypost(status) is TrackingStatus(status)
    assert tracking_status_from_easypost("error") is TrackingStatus.EXCEPTION
    assert shipment_status_from_tracking(TrackingStatus.DELIVERED) is ShipmentStatus.DELIVERED


def test_unknown_vendor_status_raises_naming_value_and_allowed_ones() -> None:
    with pytest.raises(ValueError, match=r"'ZZ'.*expected one of: UN, AC, IT"):
        tracking_status_from_shipengine("ZZ")
    with pytest.raises(ValueError, match=r"'lost'.*pre_transit"):
        tracking_status_from_easypost("lost")
    with pytest.raises(ValueError, match=r"'shipped'.*on-hold"):
        order_status_from_woocommerce("shipped")
    with pytest.raises(ValueError, match=r"'Lost'.*Awaiting"):
        order_status_from_trendyol("Lost")
    with pytest.raises(ValueError, match=r"'Weird'.*Unshipped"):
        order_status_from_amazon("Weird")
    with pytest.raises(ValueError, match=r"'bogus'.*authorized"):
        order_status_from_shopify("bogus", None, None)


def test_shopify_order_status_follows_cancel_refund_fulfillment_then_payment() -> None:
    cancelled = datetime(2024, 5, 1, tzinfo=timezone(timedelta(hours=-4)))
    cases = [
        (("paid", "fulfilled", cancelled), OrderStatus.CANCELLED),
        (("refunded", "fulfilled", None), OrderStatus.REFUNDED),
        (("voided", None, None), OrderStatus.CANCELLED),
        (("paid", "fulfilled", None), OrderStatus.FULFILLED),
        (("paid", "partial", None), OrderStatus.PARTIALLY_FULFILLED),
        (("PAID", "IN_PROGRESS", None), OrderStatus.PROCESSING),
        (("paid", None, None), OrderStatus.CONFIRMED),
        (("authorized", "unfulfilled", None), OrderStatus.CONFIRMED),
        (("pending", None, None), OrderStatus.PENDING),
    ]
    for args, expected in cases:
        assert order_status_from_shopify(*args) is expected, args


def test_marketplace_and_woocommerce_statuses_map_to_order_status() -> None:
    woo = ["pending", "processing", "on-hold", "completed", "cancelled", "refunded", "failed"]
    assert [order_status_from_woocommerce(s) for s in woo] == [
        "pending",
        "confirmed",
        "on_hold",
        "fulfilled",
        "cancelled",
        "refunded",
        "failed",
    ]
    assert order_status_from_woocommerce("trash") is OrderStatus.CANCELLED
    amazon = {
        "Pending": "pending",
        "Unshipped": "confirmed",
        "PartiallyShipped": "partially_fulfilled",
        "Shipped": "fulfilled",
        "Canceled": "cancelled",
        "Unfulfillable": "failed",
        "InvoiceUnconfirmed": "fulfilled",
        "PendingAvailability": "pending",
    }
    assert {k: order_status_from_amazon(k).value for k in amazon} == amazon
    trendyol = [
        "Awaiting",
        "Created",
        "Picking",
        "Invoiced",
        "Shipped",
        "Cancelled",
        "Delivered",
        "UnDelivered",
        "Returned",
        "Repack",
        "UnPacked",
        "UnSupplied",
    ]
    assert all(isinstance(order_status_from_trendyol(s), OrderStatus) for s in trendyol)
    assert order_status_from_trendyol("Picking") is OrderStatus.PROCESSING
    assert order_status_from_trendyol("Delivered") is OrderStatus.DELIVERED


# --- JSON Schema -----------------------------------------------------------------------------


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_json_schema_covers_every_record_type() -> None:
    schema = json.loads(json.dumps(canonical_json_schema()))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].startswith("https://crossdock.dev/schema/v1/")
    for model in RECORD_TYPES.values():
        assert model.__name__ in schema["$defs"]
    assert len(schema["anyOf"]) == len(RECORD_TYPES)
    for ref in _refs(schema):
        assert ref.removeprefix("#/$defs/") in schema["$defs"], ref


@pytest.mark.parametrize("record", sorted(RECORD_TYPES))
def test_json_schema_for_one_record_is_self_contained(record: str) -> None:
    schema = json.loads(json.dumps(canonical_json_schema(record)))
    assert schema["$id"] == f"https://crossdock.dev/schema/v1/{record}.json"
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    for ref in _refs(schema):
        assert ref.removeprefix("#/$defs/") in schema.get("$defs", {}), ref
    sample = json.loads(
        RECORD_TYPES[record].model_validate(RECORD_SAMPLES[record]).model_dump_json()
    )
    assert set(schema.get("required", [])) <= set(sample)
    assert set(sample) <= set(schema["properties"])


def test_json_schema_describes_money_amount_as_string() -> None:
    money = canonical_json_schema("order")["$defs"]["Money"]
    assert money["properties"]["amount"]["type"] == "string"
    assert money["properties"]["currency"]["pattern"] == "^[A-Z]{3}$"
    with pytest.raises(ValueError, match="expected one of: order, product"):
        canonical_json_schema("orders")
