"""Normalized status vocabularies of the canonical model, and the maps from each vendor's
own statuses to them. An unknown vendor value raises `ValueError` naming the value and the
allowed ones, so a new vendor status becomes a visible exception, never a silent guess."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import TypeVar

__all__ = [
    "FinancialStatus",
    "FulfillmentStatus",
    "InvoiceStatus",
    "OrderStatus",
    "ReturnStatus",
    "ShipmentStatus",
    "TrackingStatus",
    "financial_status_from_shopify",
    "fulfillment_status_from_shopify",
    "order_status_from_amazon",
    "order_status_from_shopify",
    "order_status_from_trendyol",
    "order_status_from_woocommerce",
    "shipment_status_from_tracking",
    "tracking_status_from_easypost",
    "tracking_status_from_shipengine",
]


class OrderStatus(StrEnum):
    """Where an order is in its life, across every channel."""

    PENDING = "pending"  # placed, not yet paid or confirmed
    CONFIRMED = "confirmed"  # open: paid or approved, waiting to be fulfilled
    ON_HOLD = "on_hold"  # waiting for a person or a condition
    PROCESSING = "processing"  # being picked, packed or invoiced
    PARTIALLY_FULFILLED = "partially_fulfilled"
    FULFILLED = "fulfilled"  # everything shipped
    DELIVERED = "delivered"  # everything delivered (when the channel knows)
    CLOSED = "closed"  # complete; nothing more will happen
    CANCELLED = "cancelled"
    REFUNDED = "refunded"
    RETURNED = "returned"
    FAILED = "failed"  # payment failed or the order cannot be completed


class FinancialStatus(StrEnum):
    """Payment state of an order (Shopify's vocabulary, plus `expired` from GraphQL)."""

    PENDING = "pending"
    AUTHORIZED = "authorized"
    PARTIALLY_PAID = "partially_paid"
    PAID = "paid"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    VOIDED = "voided"
    EXPIRED = "expired"


class FulfillmentStatus(StrEnum):
    """How much of an order has been shipped."""

    UNFULFILLED = "unfulfilled"
    IN_PROGRESS = "in_progress"
    ON_HOLD = "on_hold"
    PARTIALLY_FULFILLED = "partially_fulfilled"
    FULFILLED = "fulfilled"
    RESTOCKED = "restocked"


class ShipmentStatus(StrEnum):
    """Life of a shipment, from creation to delivery or return."""

    PENDING = "pending"
    LABEL_CREATED = "label_created"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    EXCEPTION = "exception"
    RETURNED = "returned"
    CANCELLED = "cancelled"


class TrackingStatus(StrEnum):
    """A carrier tracking event's status, normalized across ShipEngine and EasyPost."""

    UNKNOWN = "unknown"
    PRE_TRANSIT = "pre_transit"
    ACCEPTED = "accepted"
    IN_TRANSIT = "in_transit"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVERED = "delivered"
    AVAILABLE_FOR_PICKUP = "available_for_pickup"
    EXCEPTION = "exception"
    ATTEMPT_FAILED = "attempt_failed"
    RETURN_TO_SENDER = "return_to_sender"
    CANCELLED = "cancelled"
    FAILURE = "failure"


class InvoiceStatus(StrEnum):
    """Life of an invoice."""

    DRAFT = "draft"
    ISSUED = "issued"
    PARTIALLY_PAID = "partially_paid"
    PAID = "paid"
    CANCELLED = "cancelled"
    CREDITED = "credited"  # reversed by a credit note


class ReturnStatus(StrEnum):
    """Life of a return (RMA)."""

    REQUESTED = "requested"
    APPROVED = "approved"
    DECLINED = "declined"
    IN_TRANSIT = "in_transit"
    RECEIVED = "received"
    REFUNDED = "refunded"
    CLOSED = "closed"
    CANCELLED = "cancelled"


# --- vendor maps -----------------------------------------------------------------------------

_T = TypeVar("_T")


def _lookup(table: Mapping[str, _T], value: object, key: str | None, what: str) -> _T:
    if key is not None and key in table:
        return table[key]
    allowed = ", ".join(table)
    raise ValueError(f"unknown {what} {value!r}; expected one of: {allowed}")


_SHIPENGINE: dict[str, TrackingStatus] = {
    "UN": TrackingStatus.UNKNOWN,
    "AC": TrackingStatus.ACCEPTED,
    "IT": TrackingStatus.IN_TRANSIT,
    "DE": TrackingStatus.DELIVERED,
    "EX": TrackingStatus.EXCEPTION,
    "AT": TrackingStatus.ATTEMPT_FAILED,
    "NY": TrackingStatus.PRE_TRANSIT,  # "not yet in system"
    "SP": TrackingStatus.AVAILABLE_FOR_PICKUP,  # delivered to a service point
}


def tracking_status_from_shipengine(code: str) -> TrackingStatus:
    """Map a ShipEngine tracking `status_code` (UN, AC, IT, DE, EX, AT, NY, SP)."""
    key = code.strip().upper() if isinstance(code, str) else None
    return _lookup(_SHIPENGINE, code, key, "ShipEngine status_code")


_EASYPOST: dict[str, TrackingStatus] = {
    "unknown": TrackingStatus.UNKNOWN,
    "pre_transit": TrackingStatus.PRE_TRANSIT,
    "in_transit": TrackingStatus.IN_TRANSIT,
    "out_for_delivery": TrackingStatus.OUT_FOR_DELIVERY,
    "delivered": TrackingStatus.DELIVERED,
    "available_for_pickup": TrackingStatus.AVAILABLE_FOR_PICKUP,
    "return_to_sender": TrackingStatus.RETURN_TO_SENDER,
    "failure": TrackingStatus.FAILURE,
    "cancelled": TrackingStatus.CANCELLED,
    "error": TrackingStatus.EXCEPTION,
}


def tracking_status_from_easypost(status: str) -> TrackingStatus:
    """Map an EasyPost Tracker `status`."""
    key = status.strip().lower() if isinstance(status, str) else None
    return _lookup(_EASYPOST, status, key, "EasyPost tracker status")


_SHIPMENT_FROM_TRACKING: dict[TrackingStatus, ShipmentStatus] = {
    TrackingStatus.UNKNOWN: ShipmentStatus.LABEL_CREATED,
    TrackingStatus.PRE_TRANSIT: ShipmentStatus.LABEL_CREATED,
    TrackingStatus.ACCEPTED: ShipmentStatus.SHIPPED,
    TrackingStatus.IN_TRANSIT: ShipmentStatus.SHIPPED,
    TrackingStatus.OUT_FOR_DELIVERY: ShipmentStatus.SHIPPED,
    TrackingStatus.DELIVERED: ShipmentStatus.DELIVERED,
    TrackingStatus.AVAILABLE_FOR_PICKUP: ShipmentStatus.DELIVERED,
    TrackingStatus.EXCEPTION: ShipmentStatus.EXCEPTION,
    TrackingStatus.ATTEMPT_FAILED: ShipmentStatus.EXCEPTION,
    TrackingStatus.FAILURE: ShipmentStatus.EXCEPTION,
    TrackingStatus.RETURN_TO_SENDER: ShipmentStatus.RETURNED,
    TrackingStatus.CANCELLED: ShipmentStatus.CANCELLED,
}


def shipment_status_from_tracking(status: TrackingStatus) -> ShipmentStatus:
    """The shipment status implied by its latest tracking status."""
    return _SHIPMENT_FROM_TRACKING[TrackingStatus(status)]


_SHOPIFY_FINANCIAL: dict[str, FinancialStatus] = {s.value: s for s in FinancialStatus}


def financial_status_from_shopify(value: str) -> FinancialStatus:
    """Map Shopify's `financial_status` (REST) or `displayFinancialStatus` (GraphQL)."""
    key = value.strip().lower() if isinstance(value, str) else None
    return _lookup(_SHOPIFY_FINANCIAL, value, key, "Shopify financial_status")


_SHOPIFY_FULFILLMENT: dict[str, FulfillmentStatus] = {
    "unfulfilled": FulfillmentStatus.UNFULFILLED,
    "open": FulfillmentStatus.UNFULFILLED,
    "scheduled": FulfillmentStatus.ON_HOLD,
    "on_hold": FulfillmentStatus.ON_HOLD,
    "request_declined": FulfillmentStatus.ON_HOLD,
    "in_progress": FulfillmentStatus.IN_PROGRESS,
    "pending_fulfillment": FulfillmentStatus.IN_PROGRESS,
    "partial": FulfillmentStatus.PARTIALLY_FULFILLED,
    "partially_fulfilled": FulfillmentStatus.PARTIALLY_FULFILLED,
    "fulfilled": FulfillmentStatus.FULFILLED,
    "restocked": FulfillmentStatus.RESTOCKED,
}


def fulfillment_status_from_shopify(value: str | None) -> FulfillmentStatus:
    """Map Shopify's `fulfillment_status` (REST: null, partial, fulfilled, restocked) or
    `displayFulfillmentStatus` (GraphQL). REST's null means unfulfilled."""
    if value is None:
        return FulfillmentStatus.UNFULFILLED
    key = value.strip().lower() if isinstance(value, str) else None
    return _lookup(_SHOPIFY_FULFILLMENT, value, key, "Shopify fulfillment_status")


def order_status_from_shopify(
    financial_status: str | None,
    fulfillment_status: str | None,
    cancelled_at: datetime | str | None,
) -> OrderStatus:
    """Derive the order status from Shopify's three fields. Cancellation wins, then a
    full refund or voided payment, then the fulfillment state, then the payment state."""
    financial = (
        financial_status_from_shopify(financial_status) if financial_status is not None else None
    )
    fulfillment = fulfillment_status_from_shopify(fulfillment_status)
    if cancelled_at:
        return OrderStatus.CANCELLED
    if financial is FinancialStatus.REFUNDED:
        return OrderStatus.REFUNDED
    if financial is FinancialStatus.VOIDED:
        return OrderStatus.CANCELLED
    by_fulfillment = {
        FulfillmentStatus.FULFILLED: OrderStatus.FULFILLED,
        FulfillmentStatus.PARTIALLY_FULFILLED: OrderStatus.PARTIALLY_FULFILLED,
        FulfillmentStatus.IN_PROGRESS: OrderStatus.PROCESSING,
        FulfillmentStatus.ON_HOLD: OrderStatus.ON_HOLD,
        FulfillmentStatus.RESTOCKED: OrderStatus.CANCELLED,
    }
    if fulfillment in by_fulfillment:
        return by_fulfillment[fulfillment]
    if financial in (None, FinancialStatus.PENDING, FinancialStatus.EXPIRED):
        return OrderStatus.PENDING
    return OrderStatus.CONFIRMED


_WOOCOMMERCE: dict[str, OrderStatus] = {
    "pending": OrderStatus.PENDING,
    "checkout-draft": OrderStatus.PENDING,
    "processing": OrderStatus.CONFIRMED,  # paid, awaiting fulfillment
    "on-hold": OrderStatus.ON_HOLD,
    "completed": OrderStatus.FULFILLED,
    "cancelled": OrderStatus.CANCELLED,
    "refunded": OrderStatus.REFUNDED,
    "failed": OrderStatus.FAILED,
    "trash": OrderStatus.CANCELLED,
}


def order_status_from_woocommerce(status: str) -> OrderStatus:
    """Map a WooCommerce order `status` (a `wc-` prefix is accepted). Note Woo's
    `processing` means paid and waiting to ship, i.e. canonical `confirmed`."""
    key = status.strip().lower().removeprefix("wc-") if isinstance(status, str) else None
    return _lookup(_WOOCOMMERCE, status, key, "WooCommerce order status")


_AMAZON: dict[str, OrderStatus] = {
    "Pending": OrderStatus.PENDING,
    "PendingAvailability": OrderStatus.PENDING,  # pre-order, not yet released
    "Unshipped": OrderStatus.CONFIRMED,
    "PartiallyShipped": OrderStatus.PARTIALLY_FULFILLED,
    "Shipped": OrderStatus.FULFILLED,
    "InvoiceUnconfirmed": OrderStatus.FULFILLED,  # shipped, invoice not yet confirmed
    "Canceled": OrderStatus.CANCELLED,
    "Unfulfillable": OrderStatus.FAILED,
}


def order_status_from_amazon(status: str) -> OrderStatus:
    """Map an Amazon SP-API `OrderStatus`."""
    key = status.strip() if isinstance(status, str) else None
    return _lookup(_AMAZON, status, key, "Amazon OrderStatus")


_TRENDYOL: dict[str, OrderStatus] = {
    "Awaiting": OrderStatus.PENDING,
    "Created": OrderStatus.CONFIRMED,
    "Picking": OrderStatus.PROCESSING,
    "Invoiced": OrderStatus.PROCESSING,
    "Repack": OrderStatus.PROCESSING,
    "UnPacked": OrderStatus.PROCESSING,  # package split; its lines move to new packages
    "Shipped": OrderStatus.FULFILLED,
    "Delivered": OrderStatus.DELIVERED,
    "UnDelivered": OrderStatus.FAILED,  # the carrier could not deliver
    "Returned": OrderStatus.RETURNED,
    "Cancelled": OrderStatus.CANCELLED,
    "UnSupplied": OrderStatus.CANCELLED,  # the seller could not supply it
}


def order_status_from_trendyol(status: str) -> OrderStatus:
    """Map a Trendyol shipment-package status."""
    key = status.strip() if isinstance(status, str) else None
    return _lookup(_TRENDYOL, status, key, "Trendyol package status")
