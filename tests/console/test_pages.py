"""The Dashboard, Connections and Flows pages against a real hub process, on SQLite and
PostgreSQL: figures after orders flowed, the window chooser, versions, sunsets and
credentials without a single secret, the dry-run's exact payload, and flow editing that
only admins may do and that never stores an invalid flow."""

from __future__ import annotations

import html
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from crossdock.api.keys import create_api_key
from crossdock.store.database import Database
from crossdock.store.tables import connections, deliveries, events, flows
from crossdock.testing.console import PASSWORD, SECRETS, ConsoleHub, csrf_of, order

pytestmark = pytest.mark.slow

SHOPIFY_TOKEN = "shpat_console_pages_token_5c1e9"
SHOPIFY_CLIENT_SECRET = "shpss_console_pages_client_secret_77a"
ORDERS = {"P100": ["ABC-1"], "P101": ["ABC-2", "ABC-3"], "P102": ["GHOST-7"]}


@dataclass
class Seeded:
    """The hub with ORDERS settled and a Shopify connection with a credentials policy."""

    hub: ConsoleHub
    db: Database
    expires_on: str

    def scalar(self, q: Any) -> Any:
        """The first value of a query."""
        return self.db.read_sync(lambda conn: conn.execute(q).scalar())

    def event_id(self, ws: str, record: str, event_type: str) -> int:
        """The id of the event of ``record`` of type ``event_type``."""
        return int(
            self.scalar(
                select(events.c.id).where(
                    events.c.workspace == ws,
                    events.c.record_key == record,
                    events.c.type == event_type,
                )
            )
        )


@pytest.fixture(scope="module")
def seeded(console_hub: ConsoleHub) -> Any:
    """Send the orders, add a Shopify connection through the API, wait until settled."""
    for oid, skus in ORDERS.items():
        console_hub.send("acme", order(oid, skus))
    console_hub.send("globex", order("G900", ["ABC-1"]))
    db = Database(console_hub.database_url)
    expected = 2 * (len(ORDERS) + 1)

    def settled() -> bool:
        n = db.read_sync(
            lambda c: c.execute(
                select(func.count())
                .select_from(deliveries)
                .where(deliveries.c.state.in_(("succeeded", "exception")))
            ).scalar()
        )
        return int(n or 0) >= expected

    console_hub.wait(settled, what="orders to settle")
    expires = (datetime.now(UTC).date() + timedelta(days=10)).isoformat()
    key = create_api_key(db, "acme", "pages-test", "admin")
    r = httpx.put(
        f"{console_hub.url}/api/v1/workspaces/acme/connections/store",
        headers={"Authorization": f"Bearer {key}"},
        json={
            "connector": "shopify",
            "settings": {
                "base_url": "http://127.0.0.1:9",
                "shop_domain": "acme.myshopify.com",
                "access_token": SHOPIFY_TOKEN,
                "client_id": "console-client",
                "client_secret": SHOPIFY_CLIENT_SECRET,
            },
            "credentials": {"expires_on": expires, "rotate_every": "90d"},
        },
        timeout=15,
    )
    assert r.status_code in (200, 201), r.text
    # The secrets were last changed 100 days ago: a 90-day rotation is overdue.
    db.write_sync(
        lambda c: c.execute(
            update(connections)
            .where(connections.c.workspace == "acme", connections.c.name == "store")
            .values(secrets_rotated_at=time.time() - 100 * 86400)
        )
    )
    try:
        yield Seeded(console_hub, db, expires)
    finally:
        db.close()


def _text(page: str) -> str:
    """The page's visible text, tags removed and entities decoded, spaces squeezed."""
    no_tags = re.sub(r"<[^>]+>", " ", page)
    return re.sub(r"\s+", " ", html.unescape(no_tags))


def _testid(page: str, testid: str) -> str:
    """The text inside the element with ``data-testid=testid``."""
    m = re.search(rf'data-testid="{re.escape(testid)}"[^>]*>(.*?)</', page, re.S)
    assert m, f"no element {testid}"
    return _text(m.group(1)).strip()


# -- dashboard --------------------------------------------------------------------------
def test_dashboard_shows_the_totals_equation_and_charts_after_orders_flow(seeded: Seeded) -> None:
    c = seeded.hub.client("ada")
    r = c.get("/console/w/acme/")
    assert r.status_code == 200
    page = r.text
    # 3 orders -> 3 deliveries to the sink, 3 picks (one held by an unknown SKU)
    assert _testid(page, "total-received") == "6"
    assert _testid(page, "total-succeeded") == "5"
    assert _testid(page, "total-exceptions") == "1"
    assert _testid(page, "total-in-progress") == "0"
    assert "The equation holds." in page
    # per connection: calls made to the sink, with a response time and a success rate
    assert _testid(page, "conn-sink-volume-value") == "5"
    assert re.fullmatch(r"\d+ ms / \d+ ms", _testid(page, "conn-sink-latency-value"))
    assert _testid(page, "conn-sink-success-value") == "100.0%"
    assert _testid(page, "conn-sink-availability-value") == "100.0%"
    # per flow: volume, backlog, lag
    assert _testid(page, "flow-orders-to-sink-volume-value") == "3"
    assert _testid(page, "flow-orders-to-warehouse-backlog-value") == "0"
    assert _testid(page, "flow-orders-to-warehouse-lag-value") == "none"
    # charts are accessible SVG drawn on the server, with a tooltip per point
    assert 'data-testid="conn-sink-latency-chart"' in page
    assert re.search(r'<svg class="chart"[^>]*role="img"[^>]*aria-label="sink: response', page)
    assert "<circle" in page and "<title>" in page
    # nothing of globex, and no external asset
    assert "G900" not in page and "globex-orders" not in page
    assert not re.search(r'(src|href)="(https?:)?//', page)


def test_dashboard_window_parameter_chooses_the_window(seeded: Seeded) -> None:
    c = seeded.hub.client("vera")  # a viewer may look
    r = c.get("/console/w/acme/", params={"window": "7d"})
    assert r.status_code == 200
    assert re.search(r'aria-current="true" data-testid="window-7d"', r.text)
    assert "last 7 days" in r.text
    assert "Each point is one 4.0 h bucket" in r.text
    assert _testid(r.text, "total-received") == "6"
    r15 = c.get("/console/w/acme/", params={"window": "15m"})
    assert re.search(r'aria-current="true" data-testid="window-15m"', r15.text)
    assert _testid(r15.text, "conn-sink-volume-value") == "5"


def test_dashboard_refuses_an_unknown_window_with_a_plain_notice(seeded: Seeded) -> None:
    c = seeded.hub.client("ada")
    r = c.get("/console/w/acme/", params={"window": "<script>90y"})
    assert r.status_code == 400
    problem = _testid(r.text, "window-problem")
    assert "is not a window this dashboard knows" in problem
    assert "15m, 1h, 6h, 24h, 7d" in problem
    assert "<script>90y" not in r.text  # escaped
    assert "Traceback" not in r.text
    assert _testid(r.text, "total-received") == "6"  # still shows the default window


def test_dashboard_lists_firing_alerts_at_the_top(seeded: Seeded) -> None:
    from crossdock.store.tables import alert_states

    now = time.time()
    seeded.db.write_sync(
        lambda c: c.execute(
            alert_states.insert().values(
                workspace="acme",
                rule="error_rate",
                subject="sink",
                state="firing",
                value=0.42,
                since=now - 120,
            )
        )
    )
    try:
        page = seeded.hub.client("ada").get("/console/w/acme/").text
        assert 'data-testid="firing-alerts"' in page
        assert "error_rate" in _text(page) and "Alerts firing now (1)" in _text(page)
        other = seeded.hub.client("gina").get("/console/w/globex/").text
        assert 'data-testid="no-alerts"' in other
    finally:
        seeded.db.write_sync(
            lambda c: c.execute(alert_states.delete().where(alert_states.c.workspace == "acme"))
        )


# -- connections ------------------------------------------------------------------------
def test_connections_page_shows_version_sunset_and_credential_status(seeded: Seeded) -> None:
    c = seeded.hub.client("vera")
    r = c.get("/console/w/acme/connections")
    assert r.status_code == 200
    page = r.text
    version = _text(page.split('data-testid="connection-store-version"')[1].split("</td>")[0])
    assert "2025-01" in version
    assert "sunset" in version  # days to (or past) the sunset of 2026-01-01
    from crossdock.connectors.shopify.connector import ShopifyConnector

    days = ShopifyConnector.days_to_sunset()
    assert days is not None
    assert (f"{-days} days ago" if days < 0 else f"{days} days") in version
    creds = _text(page.split('data-testid="connection-store-credentials"')[1].split("</td>")[0])
    assert "expire in 10 days" in creds and seeded.expires_on in creds
    assert "rotation overdue" in creds
    sink_health = _text(page.split('data-testid="connection-sink-health"')[1].split("</td>")[0])
    assert "ok" in sink_health
    assert "last call" in sink_health
    last = _text(page.split('data-testid="connection-sink-last-success"')[1].split("</td>")[0])
    assert "ago" in last
    headroom = _text(page.split('data-testid="connection-store-headroom"')[1].split("</td>")[0])
    assert "not known" in headroom  # no call made to the store yet
    assert "generic HTTP connector" in page  # the http connections say so


def test_connections_page_never_shows_a_secret(seeded: Seeded) -> None:
    for user, ws in (("ada", "acme"), ("vera", "acme"), ("gina", "globex")):
        page = seeded.hub.client(user).get(f"/console/w/{ws}/connections").text
        for secret in (*SECRETS.values(), SHOPIFY_TOKEN, SHOPIFY_CLIENT_SECRET, PASSWORD):
            assert secret not in page, f"{secret!r} on {user}'s connections page"
        assert "********" in page  # the settings are shown, masked
    acme = seeded.hub.client("ada").get("/console/w/acme/connections").text
    assert "acme.myshopify.com" in acme  # a plain setting is shown


# -- flows ------------------------------------------------------------------------------
def test_flows_list_shows_trigger_action_and_deliveries_by_state(seeded: Seeded) -> None:
    page = seeded.hub.client("otto").get("/console/w/acme/flows").text
    row = _text(page.split('data-testid="flow-row-orders-to-warehouse"')[1].split("</tr>")[0])
    assert "order.sent from sink" in row and "create_pick on sink" in row
    assert _testid(page, "flow-orders-to-warehouse-succeeded") == "2"
    assert _testid(page, "flow-orders-to-warehouse-exception") == "1"
    assert _testid(page, "flow-orders-to-sink-succeeded") == "3"


def test_flow_dry_run_shows_the_exact_request_that_would_be_sent(seeded: Seeded) -> None:
    event_id = seeded.event_id("acme", "P101", "order.created")
    c = seeded.hub.client("vera")  # read-only: a viewer may dry-run
    r = c.get(f"/console/w/acme/flows/orders-to-sink?dry_run={event_id}")
    assert r.status_code == 200
    page = r.text
    assert _testid(page, "dry-run-method") == "POST"
    assert _testid(page, "dry-run-url").endswith("/records/acme-orders")
    body = html.unescape(_testid(page, "dry-run-body"))
    assert '"order_number": "#P101"' in body
    assert '"sku": "ABC-3"' in body and '"quantity": 2' in body
    assert '"currency": "EUR"' in body
    headers = _text(page.split('data-testid="dry-run-headers"')[1].split("</table>")[0])
    assert "Idempotency-Key" in headers
    assert f'<option value="{event_id}" selected' in page
    # Recent deliveries link the record to the Records page
    assert "/console/w/acme/records?q=P101" in page


def test_flow_dry_run_explains_in_plain_words_why_it_would_fail(seeded: Seeded) -> None:
    event_id = seeded.event_id("acme", "P102", "order.sent")
    page = (
        seeded.hub.client("ada")
        .get(f"/console/w/acme/flows/orders-to-warehouse?dry_run={event_id}")
        .text
    )
    failure = _testid(page, "dry-run-failure")
    assert "Would fail" in failure and "GHOST-7" in _text(page) and "skus" in _text(page)
    # an event of another workspace is not found, with the same words as a missing one
    other = seeded.event_id("globex", "G900", "order.created")
    r = seeded.hub.client("tess").get(f"/console/w/acme/flows/orders-to-sink?dry_run={other}")
    assert r.status_code == 404
    assert f"Event {other} does not exist, or you may not see it." in r.text
    assert "G900" not in r.text
    missing = seeded.hub.client("tess").get("/console/w/acme/flows/orders-to-sink?dry_run=99999")
    assert missing.status_code == 404
    assert "Event 99999 does not exist, or you may not see it." in missing.text
    bad = seeded.hub.client("tess").get("/console/w/acme/flows/orders-to-sink?dry_run=abc")
    assert bad.status_code == 200 and "is not an event id" in bad.text


def _source(seeded: Seeded, ws: str, name: str) -> str:
    return str(
        seeded.scalar(
            select(flows.c.source_text).where(flows.c.workspace == ws, flows.c.name == name)
        )
    )


def test_viewer_and_operator_cannot_save_a_flow(seeded: Seeded) -> None:
    before = _source(seeded, "acme", "orders-to-sink")
    for user in ("vera", "otto"):
        c = seeded.hub.client(user)
        page = c.get("/console/w/acme/flows/orders-to-sink").text
        assert 'data-testid="flow-source-readonly"' in page
        assert 'data-testid="flow-edit-form"' not in page
        token = csrf_of(c, "/console/w/acme/flows/orders-to-sink")
        r = c.post(
            "/console/w/acme/flows/orders-to-sink",
            data={"csrf_token": token, "source": before.replace("sink", "elsewhere")},
        )
        assert r.status_code == 403
        assert "admin" in r.text
    assert _source(seeded, "acme", "orders-to-sink") == before


def test_admin_saving_an_invalid_flow_shows_the_line_and_changes_nothing(seeded: Seeded) -> None:
    before = _source(seeded, "acme", "orders-to-sink")
    c = seeded.hub.client("ada")
    token = csrf_of(c, "/console/w/acme/flows/orders-to-sink")
    broken = before.replace("operation: create_order", "operation: create_ordr")
    line = next(i for i, ln in enumerate(broken.splitlines(), 1) if "create_ordr" in ln)
    r = c.post("/console/w/acme/flows/orders-to-sink", data={"csrf_token": token, "source": broken})
    assert r.status_code == 422
    issues = _testid(r.text, "flow-issues")
    assert "Not saved" in issues
    assert f"line {line}" in _text(r.text.split('data-testid="flow-issues"')[1])
    assert "create_ordr" in html.unescape(r.text.split('data-testid="flow-source"')[1])
    assert _source(seeded, "acme", "orders-to-sink") == before
    # without the CSRF token nothing is even looked at
    r = c.post("/console/w/acme/flows/orders-to-sink", data={"source": broken})
    assert r.status_code == 403
    assert _source(seeded, "acme", "orders-to-sink") == before


def test_admin_saves_a_valid_flow_and_the_hub_runs_it(seeded: Seeded) -> None:
    before = _source(seeded, "acme", "orders-to-warehouse")
    c = seeded.hub.client("ada")
    token = csrf_of(c, "/console/w/acme/flows/orders-to-warehouse")
    changed = before.replace(
        "description: Pick requests for the warehouse, with SKUs translated",
        "description: Pick requests, edited in the console",
    )
    r = c.post(
        "/console/w/acme/flows/orders-to-warehouse", data={"csrf_token": token, "source": changed}
    )
    assert r.status_code == 303
    assert "notice=Saved" in r.headers["location"]
    assert _source(seeded, "acme", "orders-to-warehouse") == changed

    def shown() -> bool:
        page = c.get("/console/w/acme/flows/orders-to-warehouse").text
        return "Pick requests, edited in the console" in _text(page.split("flow-summary")[1])

    seeded.hub.wait(shown, what="the edited flow to run")
    assert _source(seeded, "globex", "orders-to-warehouse") != changed


def test_another_workspaces_flow_by_url_is_not_found(seeded: Seeded) -> None:
    ada = seeded.hub.client("ada")
    r = ada.get("/console/w/globex/flows/orders-to-sink")
    assert r.status_code == 404
    gina = seeded.hub.client("gina")
    r = gina.get("/console/w/acme/flows/orders-to-sink")
    assert r.status_code == 404
    missing = ada.get("/console/w/acme/flows/no-such-flow")
    assert missing.status_code == 404
    assert _text(r.text).count("does not exist, or you may not see it") == 1
    token = csrf_of(gina, "/console/w/globex/flows")
    before = _source(seeded, "acme", "orders-to-sink")
    r = gina.post(
        "/console/w/acme/flows/orders-to-sink", data={"csrf_token": token, "source": "x: 1"}
    )
    assert r.status_code == 404
    assert _source(seeded, "acme", "orders-to-sink") == before
