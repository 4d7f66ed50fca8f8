"""Connecting a Shopify store by installing the app from the Connections page: the OAuth
authorization-code flow against the Shopify emulator, in a real browser; a forged
callback changes nothing."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from crossdock.emulators.serving import serving
from crossdock.emulators.shopify import create_app
from crossdock.runtime.loader import load_registry
from crossdock.security.crypto import load_secret_box
from crossdock.store.database import Database
from crossdock.testing.console import PASSWORD, csrf_of, sign_in
from crossdock.testing.processes import Hub
from tests.console.test_browser import ARGS, CHROMIUM, shot

pytestmark = pytest.mark.slow

SHOP = "acme-apparel.myshopify.com"
CLIENT_ID = "crossdock-app-client"
CLIENT_SECRET = "shpss_install_test_secret"


@pytest.fixture
def store_hub(tmp_path: Path, database_url: str) -> Iterator[tuple[Hub, str]]:
    """A hub whose Shopify connection has the app's credentials but no token yet, the
    Shopify emulator, and an admin ``ada``."""
    from crossdock.console.users import create_user, grant

    app = create_app(shop=SHOP, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, time_scale=0.01)
    with serving(app) as shop:
        root = tmp_path / "project"
        (root / "flows").mkdir(parents=True)
        (root / "crossdock.yaml").write_text(
            f"""
version: 1
workspaces:
  acme:
    name: Acme Apparel
    connections:
      shop:
        connector: shopify
        settings:
          base_url: {shop.url}
          shop_domain: {SHOP}
          client_id: {CLIENT_ID}
          client_secret: {CLIENT_SECRET}
"""
        )
        hub = Hub(root, database_url, tmp_path)
        hub.start()
        db = Database(database_url)
        try:
            db.write_sync(
                lambda c: (create_user(c, "ada", PASSWORD), grant(c, "ada", "acme", "admin"))
            )
        finally:
            db.close()
        try:
            yield hub, shop.url
        finally:
            hub.stop()


def _granted_token(hub: Hub, database_url: str) -> str | None:
    box = load_secret_box(os.environ, hub.project / ".crossdock" / "secret.key")
    db = Database(database_url)
    try:
        reg = load_registry(db, box, hub.project)
    finally:
        db.close()
    rt = reg.connection("acme", "shop")
    assert rt is not None
    token = rt.config.connector_settings().access_token
    return None if token is None else str(token.get_secret_value())


def test_an_admin_installs_the_app_and_the_hub_keeps_the_stores_token(
    store_hub: tuple[Hub, str], database_url: str
) -> None:
    from playwright.sync_api import sync_playwright

    hub, shop_url = store_hub
    assert _granted_token(hub, database_url) is None
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1360, "height": 900}, base_url=hub.url)
            page.goto("/console/login")
            page.get_by_label("Username").fill("ada")
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(re.compile(r"/console/w/"))
            page.goto("/console/w/acme/connections")
            page.get_by_test_id("connection-shop-install").click()
            page.wait_for_url(re.compile(r"/connections\?notice="))
            assert "the store granted 'shop' these scopes" in page.locator(".notice").inner_text()
            assert (
                "token granted by the store"
                in page.get_by_test_id("connection-shop-granted").inner_text()
            )
            shot(
                page,
                "connections-installed",
                "postgresql" if "postgres" in database_url else "sqlite",
            )
        finally:
            browser.close()
    token = _granted_token(hub, database_url)
    assert token and token.startswith("shpat_")
    # The store accepts the token the hub now holds.
    r = httpx.post(
        f"{shop_url}/admin/api/2025-01/graphql.json",
        json={"query": "{ shop { name } }"},
        headers={"X-Shopify-Access-Token": token},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    page_html = httpx.Client(base_url=hub.url)
    sign_in(page_html, "ada")
    assert token not in page_html.get("/console/w/acme/connections").text


def test_a_forged_or_unsolicited_callback_changes_nothing(
    store_hub: tuple[Hub, str], database_url: str
) -> None:
    hub, _shop_url = store_hub
    client = httpx.Client(base_url=hub.url, timeout=10)
    sign_in(client, "ada")
    unsolicited = client.get(
        "/console/oauth/shopify/callback",
        params={"code": "x", "shop": SHOP, "state": "s", "timestamp": "1", "hmac": "00"},
    )
    assert unsolicited.status_code == 400 and "not started here" in unsolicited.text
    token = csrf_of(client, "/console/w/acme/connections")
    start = client.post("/console/w/acme/connections/shop/install", data={"csrf_token": token})
    assert start.status_code == 303 and "/admin/oauth/authorize?" in start.headers["location"]
    state = re.search(r"state=([^&]+)", start.headers["location"])
    assert state
    forged = client.get(
        "/console/oauth/shopify/callback",
        params={"code": "x", "shop": SHOP, "state": state.group(1), "timestamp": "1", "hmac": "00"},
    )
    assert forged.status_code == 303 and "problem=" in forged.headers["location"]
    assert "refused" in client.get(forged.headers["location"]).text
    assert _granted_token(hub, database_url) is None


def test_only_an_admin_may_start_an_install(store_hub: tuple[Hub, str], database_url: str) -> None:
    from crossdock.console.users import create_user, grant

    hub, _ = store_hub
    db = Database(database_url)
    try:
        db.write_sync(
            lambda c: (create_user(c, "otto", PASSWORD), grant(c, "otto", "acme", "operator"))
        )
    finally:
        db.close()
    client = httpx.Client(base_url=hub.url, timeout=10)
    sign_in(client, "otto")
    page = client.get("/console/w/acme/connections").text
    assert 'data-testid="connection-shop-install"' not in page
    token = csrf_of(client, "/console/w/acme/connections")
    r = client.post("/console/w/acme/connections/shop/install", data={"csrf_token": token})
    assert r.status_code == 403
