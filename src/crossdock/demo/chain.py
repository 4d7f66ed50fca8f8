"""What each sandbox system holds, order by order: did every order travel the whole
chain exactly once? Used by the demo's live summary and by the chain tests."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from crossdock.demo.sandbox import Sandbox

__all__ = ["ChainCounts", "OrderTrail", "read_counts", "read_trails"]


@dataclass
class OrderTrail:
    """One storefront order's footprint in every system."""

    order_id: str
    number: str
    wms_orders: int = 0
    shipments: int = 0
    labels: list[str] = field(default_factory=list)
    """tracking numbers of the (non-voided) labels bought for it"""
    fulfillments: list[str | None] = field(default_factory=list)
    """tracking numbers on its storefront fulfillments"""
    invoices: int = 0

    @property
    def complete(self) -> bool:
        """Exactly one of everything, and the fulfillment carries the label's number."""
        return (
            self.wms_orders == 1
            and self.shipments >= 1
            and len(self.labels) == 1
            and len(self.fulfillments) == 1
            and self.fulfillments[0] == self.labels[0]
            and self.invoices == 1
        )


@dataclass
class ChainCounts:
    """Totals for the live summary."""

    orders: int = 0
    wms_orders: int = 0
    shipments: int = 0
    labels: int = 0
    fulfilled: int = 0
    invoices: int = 0
    complete: int = 0
    last_complete_at: float | None = None


def _states(sandbox: Sandbox) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with httpx.Client(timeout=10) as client:
        for conn in ("shop", "wms", "carrier", "erp"):
            out[conn] = client.get(sandbox.url(conn) + "/_emulator/state").json()
    return out


def read_trails(sandbox: Sandbox) -> dict[str, OrderTrail]:
    """Every storefront order with its footprint in the WMS, carrier and ERP."""
    st = _states(sandbox)
    trails: dict[str, OrderTrail] = {}
    for o in st["shop"].get("orders", []):
        t = OrderTrail(str(o["id"]), str(o.get("name") or ""))
        t.fulfillments = [f.get("tracking_number") for f in o.get("fulfillments", [])]
        trails[t.order_id] = t
    wms_orders = Counter(str(o.get("reference")) for o in st["wms"].get("orders", []))
    shipments = Counter(str(s.get("order_reference")) for s in st["wms"].get("shipments", []))
    for oid, t in trails.items():
        t.wms_orders = wms_orders.get(oid, 0)
        t.shipments = shipments.get(oid, 0)
    for lb in st["carrier"].get("labels", []):
        t_or_none = trails.get(str(lb.get("external_order_id")))
        if t_or_none is not None and not lb.get("voided"):
            t_or_none.labels.append(str(lb.get("tracking_number")))
    so_by_name = {so["name"]: so for so in st["erp"].get("sale_orders", [])}
    for inv in st["erp"].get("invoices", []):
        if inv.get("state") != "posted":
            continue
        so = so_by_name.get(inv.get("origin"))
        if so is None:
            continue
        oid = str(so.get("origin") or "").rsplit(":", 1)[-1]
        if oid in trails:
            trails[oid].invoices += 1
    return trails


def read_counts(sandbox: Sandbox) -> ChainCounts:
    """Totals across the chain (reads each emulator's ``/_emulator/state``)."""
    try:
        trails = read_trails(sandbox)
    except (httpx.HTTPError, ValueError, KeyError):
        return ChainCounts()
    c = ChainCounts(orders=len(trails))
    for t in trails.values():
        c.wms_orders += t.wms_orders
        c.shipments += t.shipments
        c.labels += len(t.labels)
        c.fulfilled += sum(1 for f in t.fulfillments if f)
        c.invoices += t.invoices
        c.complete += 1 if t.complete else 0
    if c.complete:
        c.last_complete_at = time.monotonic()
    return c
