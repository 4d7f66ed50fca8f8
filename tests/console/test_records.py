"""The Records page: find a record by what a person has in hand, and see its journey across
every system, redacted, and only in the workspace it belongs to. Against a real hub
process on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import func, select

from crossdock.store.database import Database
from crossdock.store.tables import cross_references, deliveries, events
from crossdock.testing.console import SECRETS, ConsoleHub, order

pytestmark = pytest.mark.slow

# Orders of acme: one delivered everywhere, one held by an unknown SKU, one whose
# order number is the shop's signing secret, one with a SKU that merely starts like
# another, one whose id needs quoting in a URL; and one order of globex.
ACME = {
    "R1001": ["ABC-1", "ABC-2"],
    "R1002": ["ABC-1", "GHOST-9"],
    "R1003": ["ABC-3"],
    "R1004": ["ABC-10"],
    "SO/77#b": ["ABC-2"],
}
GLOBEX = {"R2001": ["ABC-1"]}


@dataclass
class Seeded:
    """The hub with the orders above settled."""

    hub: ConsoleHub
    db: Database

    def one(self, q: Any) -> Any:
        """The first value of a query."""
        return self.db.read_sync(lambda conn: conn.execute(q).scalar())


@pytest.fixture(scope="module")
def seeded(console_hub: ConsoleHub) -> Any:
    """Send the orders and wait until every delivery has settled."""
    for oid, skus in ACME.items():
        body = order(oid, skus)
        if oid == "R1003":
            body["name"] = SECRETS["acme"]
        console_hub.send("acme", body)
    for oid, skus in GLOBEX.items():
        console_hub.send("globex", order(oid, skus))
    db = Database(console_hub.database_url)
    expected = 2 * (len(ACME) + len(GLOBEX))

    def settled() -> bool:
        def count(conn: Any) -> tuple[int, int]:
            total = conn.execute(select(func.count()).select_from(deliveries)).scalar()
            busy = conn.execute(
                select(func.count())
                .select_from(deliveries)
                .where(deliveries.c.state.in_(("pending", "in_progress")))
            ).scalar()
            return int(total or 0), int(busy or 0)

        total, busy = db.read_sync(count)
        return total >= expected and busy == 0

    console_hub.wait(settled, timeout=60, what="every delivery to settle")
    try:
        yield Seeded(console_hub, db)
    finally:
        db.close()


def _record_url(ws: str, connection: str, key: str) -> str:
    return f"/console/w/{ws}/records/{quote(connection, safe='')}/{quote(key, safe='')}"


def _search(client: httpx.Client, ws: str, q: str) -> httpx.Response:
    return client.get(f"/console/w/{ws}/records", params={"q": q})


def _result_keys(page: str) -> list[str]:
    return re.findall(r'<a href="/console/w/[^/]+/records/[^"]+" class="mono">([^<]+)</a>', page)


def test_search_by_order_number_goes_straight_to_the_record(seeded: Seeded) -> None:
    c = seeded.hub.client("ada")
    r = _search(c, "acme", "#R1002")
    assert r.status_code == 303
    assert r.headers["location"] == _record_url("acme", "shop", "R1002")


def test_search_by_sku_lists_every_order_with_it_and_not_lookalikes(seeded: Seeded) -> None:
    c = seeded.hub.client("ada")
    r = _search(c, "acme", "abc-1")
    assert r.status_code == 200
    assert sorted(_result_keys(r.text)) == ["R1001", "R1002"]  # not R1004 with ABC-10
    assert 'data-testid="record-results"' in r.text
    assert "exception" in r.text and "succeeded" in r.text  # each record's state


def test_search_by_correlation_id_finds_the_record_that_started_the_journey(
    seeded: Seeded,
) -> None:
    # The follow-up event at the sink carries the correlation id of the shop's order.
    corr = seeded.one(
        select(events.c.correlation_id).where(
            events.c.workspace == "acme",
            events.c.record_key == "R1001",
            events.c.origin == "follow-up",
        )
    )
    r = _search(seeded.hub.client("otto"), "acme", corr)
    assert r.status_code == 303
    assert r.headers["location"] == _record_url("acme", "shop", "R1001")


def test_search_by_record_key_collapses_follow_ups_into_their_record(seeded: Seeded) -> None:
    r = _search(seeded.hub.client("ada"), "acme", "R1001")
    assert r.status_code == 303
    assert r.headers["location"] == _record_url("acme", "shop", "R1001")


def test_search_by_id_at_the_destination_finds_the_source_record(seeded: Seeded) -> None:
    target = seeded.one(
        select(cross_references.c.target_id).where(
            cross_references.c.workspace == "acme",
            cross_references.c.source_connection == "shop",
            cross_references.c.source_key == "R1002",
        )
    )
    assert target and target.startswith("acme-orders-")
    r = _search(seeded.hub.client("ada"), "acme", target)
    assert r.status_code == 303
    assert r.headers["location"] == _record_url("acme", "shop", "R1002")


def test_search_for_something_unknown_says_nothing_was_found(seeded: Seeded) -> None:
    r = _search(seeded.hub.client("ada"), "acme", "NOPE-404")
    assert r.status_code == 200
    assert "Nothing found for “NOPE-404”" in r.text
    assert 'data-testid="record-nothing"' in r.text


def test_record_page_shows_events_deliveries_attempts_and_ids_at_each_system(
    seeded: Seeded,
) -> None:
    r = seeded.hub.client("ada").get(_record_url("acme", "shop", "R1001"))
    assert r.status_code == 200
    page = r.text
    pick = seeded.one(
        select(cross_references.c.target_id).where(
            cross_references.c.workspace == "acme",
            cross_references.c.source_connection == "sink",
            cross_references.c.source_key == "R1001",
        )
    )
    sink_id = seeded.one(
        select(cross_references.c.target_id).where(
            cross_references.c.workspace == "acme",
            cross_references.c.source_connection == "shop",
            cross_references.c.source_key == "R1001",
        )
    )
    assert page.count('data-testid="record-event"') == 2  # the order and its follow-up
    assert "order.created" in page and "order.sent" in page
    assert page.count('data-testid="record-delivery"') == 2
    assert "orders-to-sink" in page and "orders-to-warehouse" in page
    assert page.count('data-testid="record-attempt"') == 2
    assert "POST http://127.0.0.1:" in page and "/records/acme-picks" in page
    assert "WH-ABC-1" in page  # the pick request as sent
    assert f"delivered to sink as {sink_id}" in page
    assert pick in page and sink_id in page
    assert 'data-testid="record-state">succeeded' in page


def test_record_page_shows_the_exception_and_links_its_case(seeded: Seeded) -> None:
    page = seeded.hub.client("vera").get(_record_url("acme", "shop", "R1002")).text
    assert 'data-testid="record-state">exception' in page
    assert "SKU &#39;GHOST-9&#39; is not in lookup table" in page
    assert re.search(r'href="/console/w/acme/cases/\d+" data-testid="record-case-link"', page)
    assert "No request was sent for this delivery" in page


def test_secrets_of_the_workspace_connections_never_appear_on_the_record_page(
    seeded: Seeded,
) -> None:
    # The shop's signing secret travelled as the order number into the sink's request,
    # response and the follow-up event: the page hides it everywhere.
    c = seeded.hub.client("ada")
    page = c.get(_record_url("acme", "shop", "R1003")).text
    assert 'data-testid="record-attempt"' in page
    assert SECRETS["acme"] not in page
    assert "[REDACTED]" in page
    assert "x-signature" in page
    assert re.search(r"x-signature</th><td[^>]*>\[REDACTED\]", page)


def test_record_keys_that_need_quoting_round_trip_through_search_and_url(
    seeded: Seeded,
) -> None:
    c = seeded.hub.client("ada")
    r = _search(c, "acme", "SO/77#b")
    assert r.status_code == 303
    url = r.headers["location"]
    assert url == _record_url("acme", "shop", "SO/77#b")
    page = c.get(url)
    assert page.status_code == 200
    assert "SO/77#b" in page.text


def test_another_workspaces_record_is_the_same_404_as_a_missing_one(seeded: Seeded) -> None:
    tess = seeded.hub.client("tess")  # operator of both workspaces
    hidden = tess.get(_record_url("globex", "shop", "R1001"))  # acme's record
    missing = tess.get(_record_url("globex", "shop", "NO-SUCH-ORDER"))
    assert hidden.status_code == missing.status_code == 404
    assert hidden.text == missing.text
    gina = seeded.hub.client("gina")  # globex only
    other = gina.get(_record_url("acme", "shop", "R1001"))
    assert other.status_code == 404
    assert "R1001" not in other.text
    assert _search(tess, "globex", "R1001").status_code == 200  # nothing found, no redirect
    assert "Nothing found" in _search(tess, "globex", "#R1001").text


def test_search_finds_only_the_workspaces_own_records(seeded: Seeded) -> None:
    r = _search(seeded.hub.client("gina"), "globex", "ABC-1")
    assert r.status_code == 303
    assert r.headers["location"] == _record_url("globex", "shop", "R2001")


def test_viewer_can_search_and_see_a_record(seeded: Seeded) -> None:
    vera = seeded.hub.client("vera")
    assert _search(vera, "acme", "#R1001").status_code == 303
    page = vera.get(_record_url("acme", "shop", "R1001"))
    assert page.status_code == 200
    assert 'data-testid="record-journey"' in page.text


def test_records_need_a_signed_in_user(seeded: Seeded) -> None:
    r = seeded.hub.client().get(_record_url("acme", "shop", "R1001"))
    assert r.status_code == 303
    assert r.headers["location"].startswith("/console/login?next=")


def test_a_later_version_held_back_behind_an_exception_says_so_and_links_the_case(
    console_hub: ConsoleHub,
) -> None:
    console_hub.send("acme", order("HELD-1", ["HELDSKU-1"], version=1))
    client = console_hub.client("vera")
    console_hub.wait(
        lambda: "HELDSKU-1" in client.get("/console/w/acme/cases").text, what="the case"
    )
    console_hub.send("acme", order("HELD-1", ["HELDSKU-1", "ABC-1"], version=2), "order.updated")
    url = "/console/w/acme/records/shop/HELD-1"

    def held() -> str | None:
        text = client.get(url).text
        return text if "held back behind" in text else None

    page = console_hub.wait(held, what="the held-back version on the record page")
    assert "/console/w/acme/cases/" in page
