"""Named connectors inside the hub: typed settings checked with file and line, secrets
kept apart and encrypted, webhooks received through the connector's handler, and
backfill polling through the connector's stream with a durable cursor."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import select

from crossdock.emulators.serving import serving
from crossdock.ingest.polling import Poller
from crossdock.project.config import load_project, parse_project_text
from crossdock.project.yamlsrc import ConfigError
from crossdock.runtime.loader import apply_project, load_registry
from crossdock.security.crypto import SecretBox, generate_key
from crossdock.store.database import Database
from crossdock.store.migrate import upgrade
from crossdock.store.tables import connections, cursors, deliveries, event_bodies, events

TOKEN = "shpat_integration_token"
SECRET = "shpss_integration_secret"
SHOP = "crossdock-demo.myshopify.com"


def project_text(shop_url: str, extra: str = "") -> str:
    return f"""
version: 1
workspaces:
  acme:
    connections:
      shop:
        connector: shopify
        settings:
          base_url: {shop_url}
          shop_domain: {SHOP}
          access_token: {TOKEN}
          client_secret: {SECRET}{extra}
        streams:
          orders: {{interval_seconds: 3600}}
      sink:
        connector: http
        outbound:
          base_url: http://127.0.0.1:9
          operations:
            create: {{method: POST, path: /records/orders}}
"""


def write_project(root: Path, text: str) -> Path:
    (root / "flows").mkdir(parents=True)
    (root / "crossdock.yaml").write_text(text)
    (root / "flows" / "f.yaml").write_text(
        """
name: shop-orders
trigger: {connection: shop, events: [order.created, order.updated]}
mapping: {number: body.number}
action: {connection: sink, operation: create}
"""
    )
    return root


def test_unknown_connector_is_named_with_its_line_and_the_choices() -> None:
    text = project_text("http://x").replace("connector: shopify", "connector: shopfy")
    with pytest.raises(ConfigError) as exc:
        parse_project_text(text, "crossdock.yaml", Path("."))
    (issue,) = exc.value.issues
    assert issue.line == 7
    assert "unknown connector 'shopfy'" in issue.message and "shopify" in issue.message


def test_connector_settings_are_checked_against_its_typed_model_at_their_line() -> None:
    text = project_text("http://x", "\n          notify_customers: true").replace(
        f"          shop_domain: {SHOP}\n", ""
    )
    with pytest.raises(ConfigError) as exc:
        parse_project_text(text, "crossdock.yaml", Path("."))
    messages = {i.message: i.line for i in exc.value.issues}
    assert messages["setting 'shop_domain' is required by connector 'shopify'"] == 8
    unknown = "unknown setting 'notify_customers' for connector 'shopify'"
    assert messages[unknown] == 12


def test_unknown_stream_is_reported_with_the_streams_there_are() -> None:
    text = project_text("http://x").replace("orders: {interval", "order: {interval")
    with pytest.raises(ConfigError) as exc:
        parse_project_text(text, "crossdock.yaml", Path("."))
    (issue,) = exc.value.issues
    assert "has no stream 'order'" in issue.message and "orders" in issue.message


@pytest.fixture
def shop() -> Iterator[tuple[Any, str]]:
    from crossdock.emulators.shopify import create_app

    app = create_app(shop=SHOP, access_token=TOKEN, client_secret=SECRET, time_scale=0.01)
    with serving(app) as srv:
        yield app.state.emulator, srv.url


@pytest.fixture
def hub(database_url: str, tmp_path: Path, shop: tuple[Any, str]) -> Iterator[Any]:
    db = Database(database_url)
    upgrade(db)
    db.start()
    box = SecretBox([generate_key()])
    proj = load_project(write_project(tmp_path / "p", project_text(shop[1])), {})
    apply_project(db, proj, box)
    yield db, box
    db.close()


def test_connector_credentials_are_stored_encrypted_apart_from_the_settings(
    hub: tuple[Database, SecretBox],
) -> None:
    db, box = hub
    row = db.read_sync(
        lambda c: c.execute(select(connections).where(connections.c.name == "shop")).one()
    )
    stored = str(row._mapping)
    assert TOKEN not in stored and SECRET not in stored
    registry = load_registry(db, box)
    conn = registry.connection("acme", "shop")
    assert conn is not None
    settings = conn.config.connector_settings()
    assert settings.access_token.get_secret_value() == TOKEN
    assert TOKEN not in conn.redactor.text(f"token {TOKEN}")


def test_orders_backfill_polls_the_stream_once_per_change_and_moves_the_cursor(
    hub: tuple[Database, SecretBox], shop: tuple[Any, str]
) -> None:
    db, box = hub
    _state, url = shop
    with httpx.Client() as client:
        for i in range(3):
            body = {"lines": [{"sku": "TEE-BLK-M", "quantity": i + 1}], "email": f"b{i}@x.io"}
            client.post(url + "/_emulator/orders", json=body).raise_for_status()
    registry = load_registry(db, box)
    conn = registry.connection("acme", "shop")
    assert conn is not None

    async def rounds() -> list[Any]:
        poller = Poller(db, lambda: registry)
        first = await poller.poll_stream(conn, "orders", force=True)
        second = await poller.poll_stream(conn, "orders", force=True)
        return [first, second]

    first, second = asyncio.run(rounds())
    assert first.error is None and first.new_events == 3
    assert second.new_events == 0  # the overlap window re-reads, dedup absorbs
    types = db.read_sync(lambda c: c.execute(select(events.c.type)).scalars().all())
    assert set(types) == {"order.created"} and len(types) == 3
    bodies = db.read_sync(lambda c: c.execute(select(event_bodies.c.body)).scalars().all())
    assert all(orjson.loads(b)["lines"][0]["sku"] == "TEE-BLK-M" for b in bodies)
    assert db.read_sync(lambda c: c.execute(select(deliveries)).all()).__len__() == 3
    cursor = db.read_sync(lambda c: c.execute(select(cursors.c.stream, cursors.c.value)).one())
    assert cursor.stream == "stream:orders"
    assert orjson.loads(cursor.value)["cursor"] > "2000"


def test_a_shopify_webhook_is_verified_parsed_and_stored_once_by_event_id(
    database_url: str, tmp_path: Path, shop: tuple[Any, str]
) -> None:
    from crossdock.testing.processes import Hub

    project = write_project(tmp_path / "p", project_text(shop[1]))
    hub = Hub(project, database_url, tmp_path).start()
    try:
        order = {"id": 4242, "name": "#4242", "email": "a@b.io", "currency": "EUR",
                 "created_at": "2026-11-30T10:00:00Z", "updated_at": "2026-11-30T10:00:00Z",
                 "financial_status": "paid", "total_price": "10.00", "subtotal_price": "10.00",
                 "total_tax": "0.00", "line_items": [
                     {"id": 1, "sku": "CAP-NVY", "title": "Cap", "quantity": 1, "price": "10.00"}
                 ]}  # fmt: skip
        raw = orjson.dumps(order)
        sig = base64.b64encode(hmac.new(SECRET.encode(), raw, hashlib.sha256).digest()).decode()
        headers = {
            "X-Shopify-Topic": "orders/create",
            "X-Shopify-Hmac-Sha256": sig,
            "X-Shopify-Shop-Domain": SHOP,
            "X-Shopify-API-Version": "2025-01",
            "X-Shopify-Webhook-Id": "wh-1",
            "X-Shopify-Event-Id": "ev-1",
            "Content-Type": "application/json",
        }
        with httpx.Client() as client:
            first = client.post(f"{hub.url}/hooks/acme/shop", content=raw, headers=headers)
            again = client.post(f"{hub.url}/hooks/acme/shop", content=raw, headers=headers)
            bad = client.post(
                f"{hub.url}/hooks/acme/shop",
                content=raw.replace(b"10.00", b"99.00"),
                headers=headers,
            )
        assert first.status_code == 202, first.text
        assert again.status_code == 200 and again.json()["duplicate"] is True
        assert bad.status_code == 401 and SECRET not in bad.text
        assert bad.headers["content-type"] == "application/problem+json"
        st = hub.status()
        assert st["events"] == 1 and st["received"] == 1  # one delivery, to the sink
    finally:
        hub.stop()


def test_dry_run_of_a_connector_flow_shows_the_record_its_action_gets(tmp_path: Path) -> None:
    from crossdock.flows.context import event_context
    from crossdock.flows.dryrun import dry_run

    text = project_text("http://x").replace(
        "      sink:\n        connector: http",
        "      erp:\n        connector: odoo\n        settings: "
        "{base_url: 'http://y', api_key: k}\n      sink:\n        connector: http",
    )
    root = write_project(tmp_path / "p", text)
    (root / "flows" / "erp.yaml").write_text(
        "name: to-erp\ntrigger: {connection: shop, events: [order.created]}\n"
        "action: {connection: erp, operation: create_invoice}\n"
    )
    proj = load_project(root, {})
    flow = next(f for f in proj.flows if f.name == "to-erp")
    order = {"id": "7", "number": "#7", "status": "confirmed"}
    ctx = event_context(
        body=order, headers={}, event_id=1, workspace="acme", connection="shop",
        event_type="order.created", record_key="7", version="v1", received_at=None, xref=None,
    )  # fmt: skip
    result = dry_run(flow, ctx)
    assert result.would_send and result.url == "odoo:create_invoice"
    assert result.body == order and result.idempotency_key


def test_connections_test_calls_each_system_once_and_says_what_failed(
    tmp_path: Path, shop: tuple[Any, str]
) -> None:
    from typer.testing import CliRunner

    from crossdock.cli.main import app

    ok_root = write_project(tmp_path / "ok", project_text(shop[1]))
    result = CliRunner().invoke(app, ["connections", "test", "-p", str(ok_root)])
    assert result.exit_code == 0, result.output
    assert "ok" in result.output and "sunset" in result.output  # 2025-01 is past its sunset

    bad_text = project_text(shop[1]).replace(TOKEN, "shpat_wrong_token")
    bad_root = write_project(tmp_path / "bad", bad_text)
    result = CliRunner().invoke(app, ["connections", "test", "-p", str(bad_root)])
    assert result.exit_code == 1
    assert "failed" in result.output and "shpat_wrong_token" not in result.output
