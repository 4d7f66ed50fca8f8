"""The order-to-cash chain end to end: Shopify -> hub -> WMS -> ShipEngine -> Shopify
fulfillment, paid orders -> Odoo, with real HTTP between the hub (its own process) and
the four emulators, on SQLite and on PostgreSQL."""

from __future__ import annotations

import random
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from crossdock.demo.chain import OrderTrail, read_trails
from crossdock.demo.generator import make_order
from crossdock.demo.run import prepare_project
from crossdock.demo.sandbox import Sandbox, running_sandbox
from crossdock.testing.processes import Hub, crossdock

pytestmark = pytest.mark.slow


@pytest.fixture
def chain(tmp_path: Path, database_url: str) -> Iterator[tuple[Hub, Sandbox]]:
    """The hub (``crossdock serve``) and the four emulators, wired to each other. The
    emulators send every webhook twice now and then, and retry fast."""
    project = prepare_project(tmp_path / "project")
    hub = Hub(project, database_url, tmp_path)
    common = {"time_scale": 0.01, "duplicate_probability": 0.3, "seed": 3}
    options = {"wms": {"pick_delay": 0.2}}
    with running_sandbox(hub.url, common=common, options=options) as sandbox:
        hub.env.update(sandbox.env())
        hub.start()
        try:
            yield hub, sandbox
        finally:
            hub.stop()


def place(sandbox: Sandbox, n: int, failure: str | None = None, seed: int = 11) -> list[str]:
    """Place ``n`` orders at the storefront emulator; their Shopify ids."""
    rng = random.Random(seed)
    ids = []
    with httpx.Client(timeout=10) as client:
        for i in range(n):
            spec = make_order(rng, seed * 1000 + i, failure)
            r = client.post(sandbox.url("shop") + "/_emulator/orders", json=spec.body)
            r.raise_for_status()
            ids.append(str(r.json()["order"]["id"]))
    return ids


def wait_for(
    sandbox: Sandbox, hub: Hub, ids: list[str], timeout: float = 120.0
) -> dict[str, OrderTrail]:
    """Wait until every order went through the whole chain (or time out with details)."""
    deadline = time.monotonic() + timeout
    trails: dict[str, OrderTrail] = {}
    while time.monotonic() < deadline:
        trails = read_trails(sandbox)
        if all(oid in trails and trails[oid].complete for oid in ids):
            return trails
        time.sleep(0.5)
    stuck = {oid: trails.get(oid) for oid in ids if oid not in trails or not trails[oid].complete}
    raise AssertionError(f"orders not through the chain: {stuck}\n{hub.status()}\n{hub.logs()}")


def fault(sandbox: Sandbox, conn: str, rule: dict[str, Any]) -> None:
    """Inject a failure at an emulator."""
    httpx.post(sandbox.url(conn) + "/_emulator/faults", json=rule).raise_for_status()


def api_key(hub: Hub) -> str:
    out = subprocess.run(
        crossdock("keys", "create", "-w", "acme", "--role", "operator", "-p", str(hub.project)),
        capture_output=True,
        text=True,
        env={**__import__("os").environ, **hub.env},
        check=True,
    )
    return out.stdout.strip().splitlines()[-1]


def test_every_order_reaches_each_system_exactly_once_despite_5xx_429_and_duplicate_webhooks(
    chain: tuple[Hub, Sandbox],
) -> None:
    hub, sandbox = chain
    # Each system fails for a while: 5xx at the warehouse and the ERP, 429 with
    # Retry-After at the carrier and the storefront's API.
    fault(sandbox, "wms", {"status": 503, "count": 6, "path": "/api/v1/orders"})
    fault(sandbox, "carrier", {"status": 429, "retry_after": 1, "count": 4, "path": "/v1/labels"})
    fault(sandbox, "erp", {"status": 503, "count": 5})
    fault(sandbox, "shop", {"status": 429, "retry_after": 1, "count": 3, "path": "/admin/api"})
    ids = place(sandbox, 12)
    trails = wait_for(sandbox, hub, ids)
    for oid in ids:
        t = trails[oid]
        assert t.wms_orders == 1 and len(t.labels) == 1 and t.invoices == 1, t
        assert t.fulfillments == t.labels, f"order {oid}: fulfillment tracking {t}"
    st = hub.wait_settled()
    assert st["balanced"], st
    assert st["exceptions"] == 0, st
    shop = httpx.get(sandbox.url("shop") + "/_emulator/state").json()
    for o in shop["orders"]:
        for f in o["fulfillments"]:
            assert f["notify_customer"] is True
            assert f["tracking_url"], f
    # Duplicates were sent, and absorbed.
    hooks = httpx.get(sandbox.url("shop") + "/_emulator/webhooks").json()["deliveries"]
    assert any(d["duplicate_of"] for d in hooks)


def _open_exceptions(hub: Hub, key: str, category: str) -> list[dict[str, Any]]:
    r = httpx.get(
        f"{hub.url}/api/v1/workspaces/acme/exceptions",
        params={"category": category},
        headers={"Authorization": f"Bearer {key}"},
    )
    r.raise_for_status()
    items: list[dict[str, Any]] = r.json()["items"]
    return items


def _wait_exceptions(hub: Hub, key: str, category: str, n: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 90
    found: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        found = _open_exceptions(hub, key, category)
        if len(found) >= n:
            return found
        time.sleep(0.5)
    everything = httpx.get(
        f"{hub.url}/api/v1/workspaces/acme/exceptions",
        headers={"Authorization": f"Bearer {key}"},
    ).json()["items"]
    shown = [(e["flow"], e["category"], e["reason"]) for e in everything]
    raise AssertionError(f"expected {n} '{category}' exceptions; open: {shown}\n{hub.status()}")


def test_business_failures_become_plain_exceptions_and_fix_and_retry_completes_them(
    chain: tuple[Hub, Sandbox],
) -> None:
    hub, sandbox = chain
    key = api_key(hub)
    auth = {"Authorization": f"Bearer {key}"}
    ghost = place(sandbox, 1, "unknown_sku", seed=21)
    no_zip = place(sandbox, 1, "no_postal_code", seed=22)
    heavy = place(sandbox, 1, "too_heavy", seed=23)

    # 1. A SKU the warehouse does not know.
    (unknown,) = [
        e for e in _wait_exceptions(hub, key, "unknown_sku", 1) if e["flow"] == "shop-orders-to-wms"
    ]
    assert "GHOST-1" in unknown["reason"] and "warehouse" in unknown["reason"].lower()
    assert unknown["fix"]
    # The fix: create the SKU in the warehouse (and in the ERP), then retry.
    httpx.post(
        sandbox.url("wms") + "/_emulator/stock", json={"sku": "GHOST-1", "on_hand": 10}
    ).raise_for_status()

    # 2. An address without a postal code: the warehouse refuses it.
    (addr,) = _wait_exceptions(hub, key, "address", 1)
    assert "postal code" in addr["reason"].lower()
    detail = httpx.get(
        f"{hub.url}/api/v1/workspaces/acme/exceptions/{addr['id']}", headers=auth
    ).json()
    order = detail["event"]["body"]
    order["shipping_address"]["postal_code"] = "78701"
    httpx.post(
        f"{hub.url}/api/v1/workspaces/acme/exceptions/{addr['id']}/edit",
        json={"payload": order},
        headers=auth,
    ).raise_for_status()

    # 3. A 50 kg anvil: the carrier refuses the parcel; split it in two and retry.
    (refused,) = _wait_exceptions(hub, key, "carrier_refused", 1)
    assert "carrier" in refused["reason"].lower()
    detail = httpx.get(
        f"{hub.url}/api/v1/workspaces/acme/exceptions/{refused['id']}", headers=auth
    ).json()
    shipment = detail["event"]["body"]
    total = shipment["parcels"][0]["weight"]
    half = {"value": str(float(total["value"]) / 2), "unit": total["unit"]}
    shipment["parcels"] = [{"weight": half}, {"weight": half}]
    httpx.post(
        f"{hub.url}/api/v1/workspaces/acme/exceptions/{refused['id']}/edit",
        json={"payload": shipment},
        headers=auth,
    ).raise_for_status()

    httpx.post(
        f"{hub.url}/api/v1/workspaces/acme/exceptions/{unknown['id']}/retry", headers=auth
    ).raise_for_status()
    # The ERP does not know GHOST-1 either: create it there as an Odoo user would, retry.
    (erp_unknown,) = [
        e for e in _wait_exceptions(hub, key, "unknown_sku", 1) if e["flow"] == "paid-orders-to-erp"
    ]
    assert "GHOST-1" in erp_unknown["reason"]
    _create_odoo_product(sandbox, "GHOST-1")
    httpx.post(
        f"{hub.url}/api/v1/workspaces/acme/exceptions/{erp_unknown['id']}/retry", headers=auth
    ).raise_for_status()

    trails = wait_for(sandbox, hub, [*ghost, *no_zip, *heavy])
    assert all(trails[o].complete for o in [*ghost, *no_zip, *heavy])


def _create_odoo_product(sandbox: Sandbox, sku: str) -> None:
    from crossdock.demo.sandbox import SANDBOX_SECRETS

    r = httpx.post(
        sandbox.url("erp") + "/json/2/product.product/create",
        json={"vals_list": [{"name": sku, "default_code": sku, "list_price": 10.0}]},
        headers={
            "Authorization": f"bearer {SANDBOX_SECRETS['ODOO_API_KEY']}",
            "X-Odoo-Database": "sandbox",
        },
    )
    r.raise_for_status()
