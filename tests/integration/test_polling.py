"""Polling sources: durable cursors that advance only with the committed events, an
overlap window whose repeats are absorbed, pagination — on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import Connection, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from crossdock.emulators.serving import serving
from crossdock.ingest.polling import Poller, step_back
from crossdock.project.config import load_project
from crossdock.runtime.loader import apply_project, load_registry
from crossdock.runtime.registry import Registry
from crossdock.security.crypto import SecretBox, generate_key
from crossdock.store.database import Database
from crossdock.store.migrate import upgrade
from crossdock.store.tables import attempts, cursors, deliveries, events


class Vendor:
    """A vendor API listing orders by ``updated_at``, two per page, bearer-protected."""

    def __init__(self) -> None:
        self.orders: list[dict[str, Any]] = []
        self.requests: list[dict[str, str]] = []
        self.fail_next = 0

    def app(self) -> Starlette:
        async def list_orders(request: Request) -> JSONResponse:
            self.requests.append(dict(request.query_params))
            if request.headers.get("authorization") != "Bearer vendor-token":
                return JSONResponse({"message": "bad token"}, 401)
            if self.fail_next:
                self.fail_next -= 1
                return JSONResponse({"message": "down"}, 503)
            since = request.query_params.get("updated_since", "")
            page = int(request.query_params.get("page", "1"))
            rows = sorted(
                (o for o in self.orders if o["updated_at"] >= since),
                key=lambda o: o["updated_at"],
            )
            chunk = rows[(page - 1) * 2 : page * 2]
            nxt = None
            if page * 2 < len(rows):
                nxt = f"/orders?updated_since={since}&page={page + 1}"
            return JSONResponse({"orders": chunk, "next": nxt})

        return Starlette(routes=[Route("/orders", list_orders)])


@pytest.fixture
def vendor() -> Iterator[tuple[Vendor, str]]:
    v = Vendor()
    with serving(v.app()) as srv:
        yield v, srv.url


def project(root: Path, vendor_url: str) -> Path:
    (root / "flows").mkdir(parents=True)
    (root / "crossdock.yaml").write_text(
        f"""
version: 1
workspaces:
  acme:
    connections:
      market:
        connector: http
        poll:
          url: {vendor_url}/orders
          auth: {{type: bearer, token: vendor-token}}
          interval_seconds: 3600
          overlap_seconds: 60
          items: body.orders
          next_page: body.next
          cursor: item.updated_at
          event_type: "'order.updated'"
          record_key: body.id
          version: body.updated_at
      sink:
        connector: http
        outbound:
          base_url: http://127.0.0.1:9
          operations:
            create: {{method: POST, path: /records/orders}}
"""
    )
    (root / "flows" / "f.yaml").write_text(
        """
name: market-orders
trigger: {connection: market, events: [order.updated]}
mapping: {id: body.id}
action: {connection: sink, operation: create}
"""
    )
    return root


@pytest.fixture
def hub(database_url: str, tmp_path: Path, vendor: tuple[Vendor, str]) -> Iterator[Any]:
    db = Database(database_url)
    upgrade(db)
    db.start()
    box = SecretBox([generate_key()])
    apply_project(db, load_project(project(tmp_path / "p", vendor[1]), {}), box)
    registry = load_registry(db, box)
    yield db, registry
    db.close()


def order(i: int, minute: int) -> dict[str, Any]:
    return {"id": f"A-{i}", "updated_at": f"2026-11-24T10:{minute:02d}:00Z", "total": "9.90"}


def stored_cursor(conn: Connection) -> str:
    value = conn.execute(select(cursors.c.value)).scalar_one()
    return str(orjson.loads(value)["cursor"])


def poll(db: Database, registry: Registry) -> Any:
    conn = registry.connection("acme", "market")
    assert conn is not None

    async def main() -> Any:
        poller = Poller(db, lambda: registry)
        try:
            return await poller.poll_once(conn, force=True)
        finally:
            await poller.client.aclose()

    return asyncio.run(main())


def test_polling_follows_pages_and_advances_the_cursor(
    hub: tuple[Database, Registry], vendor: tuple[Vendor, str]
) -> None:
    db, registry = hub
    v, _ = vendor
    v.orders = [order(i, i) for i in range(5)]
    result = poll(db, registry)
    assert (result.items, result.new_events, result.error) == (5, 5, None)
    assert db.read_sync(stored_cursor) == "2026-11-24T10:04:00Z"
    n = db.read_sync(lambda c: len(c.execute(select(deliveries.c.id)).all()))
    assert n == 5
    # Every call is in the audit trail, the token redacted.
    rows = db.read_sync(lambda c: c.execute(select(attempts)).all())
    assert len(rows) == 3 and all("vendor-token" not in r.request_headers for r in rows)


def test_overlap_window_rereads_but_stores_no_duplicate(
    hub: tuple[Database, Registry], vendor: tuple[Vendor, str]
) -> None:
    db, registry = hub
    v, _ = vendor
    v.orders = [order(1, 10), order(2, 11)]
    poll(db, registry)
    v.orders.append(order(3, 12))
    result = poll(db, registry)
    assert v.requests[-1]["updated_since"] == "2026-11-24T10:10:00Z"  # cursor minus 60 s
    assert result.new_events == 1 and result.duplicates == 2
    assert db.read_sync(lambda c: len(c.execute(select(events.c.id)).all())) == 3


def test_cursor_does_not_advance_when_the_vendor_fails(
    hub: tuple[Database, Registry], vendor: tuple[Vendor, str]
) -> None:
    db, registry = hub
    v, _ = vendor
    v.orders = [order(1, 1)]
    v.fail_next = 1
    result = poll(db, registry)
    assert result.error and "503" in result.error
    assert db.read_sync(stored_cursor) == "1970-01-01T00:00:00Z"
    assert poll(db, registry).new_events == 1


def test_cursor_does_not_advance_past_events_that_were_not_stored(
    hub: tuple[Database, Registry], vendor: tuple[Vendor, str]
) -> None:
    db, registry = hub
    v, _ = vendor
    v.orders = [order(1, 1)]

    def broken(conn: Connection, items: list[Any]) -> list[Any]:
        raise RuntimeError("disk full")

    import crossdock.ingest.polling as polling

    original = polling.record_events
    polling.record_events = broken  # type: ignore[assignment]
    try:
        with pytest.raises(RuntimeError):
            poll(db, registry)
    finally:
        polling.record_events = original
    assert db.read_sync(stored_cursor) == "1970-01-01T00:00:00Z"
    assert poll(db, registry).new_events == 1


def test_overlap_steps_back_iso_timestamps_only() -> None:
    assert step_back("2026-11-24T10:10:00Z", 60) == "2026-11-24T10:09:00Z"
    assert step_back("12345", 60) == "12345"
