"""The declarative REST WMS connector against the sandbox warehouse emulator."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from crossdock.connectors.restwms import (
    SANDBOX_DEFINITION_PATH,
    RestWmsConnector,
    RestWmsSettings,
    sandbox_definition,
)
from crossdock.emulators.warehouse import WarehouseState, create_app
from crossdock.model import InventoryLevel, Order, Shipment
from crossdock.pipeline.outcome import Outcome
from crossdock.project.yamlsrc import issues_from_validation
from crossdock.sdk import ActionContext, SignatureRejected, VendorError, recording, run_action
from crossdock.sdk.conformance import ConformanceHarness, ConnectorConformance, WriteCase
from crossdock.sdk.ratelimits import LeakyBucket
from crossdock.sdk.streams import Cursor

BASE = "http://vendor"
_refs = itertools.count(5001)


def canonical_order(
    ref: str | None = None,
    lines: tuple[tuple[str, int], ...] = (("TEE-BLK-M", 2),),
    **address: Any,
) -> dict[str, Any]:
    """A canonical Order as a storefront connector hands it over."""
    ref = ref or str(next(_refs))
    ship_to = {
        "name": "Ada Lovelace",
        "line1": "12 Dock Road",
        "city": "Hamburg",
        "postal_code": "20457",
        "country_code": "DE",
        **address,
    }
    ship_to = {k: v for k, v in ship_to.items() if v is not None}
    money = {"amount": "19.90", "currency": "EUR"}
    return Order.model_validate(
        {
            "id": ref,
            "number": f"#{ref}",
            "status": "confirmed",
            "shipping_address": ship_to,
            "lines": [
                {"id": f"L{i}", "sku": sku, "name": sku, "quantity": qty, "unit_price": money}
                for i, (sku, qty) in enumerate(lines)
            ],
            "totals": {
                "subtotal": money,
                "tax": {"amount": "0", "currency": "EUR"},
                "total": money,
            },
            "created_at": "2025-05-01T10:00:00Z",
        }
    ).model_dump(mode="json", exclude_none=True)


def ctx_for(
    record: dict[str, Any], key: str | None = None, xref: str | None = None
) -> ActionContext:
    return ActionContext(
        record=record,
        idempotency_key=key or f"key-{record['id']}",
        record_key=record["id"],
        xref=xref,
    )


@contextlib.asynccontextmanager
async def wired(
    settings: dict[str, Any] | None = None,
    wrap: Callable[[httpx.AsyncBaseTransport], httpx.AsyncBaseTransport] | None = None,
    **options: Any,
) -> AsyncIterator[tuple[WarehouseState, RestWmsConnector, httpx.AsyncClient]]:
    """The emulator in-process (picking only when told) and a connection to it;
    ``wrap`` puts a misbehaving network between them."""
    options.setdefault("pick_delay", -1)
    options.setdefault("rate_limit_per_second", 0)
    app = create_app(**options)
    transport: httpx.AsyncBaseTransport = httpx.ASGITransport(app=app)
    http = httpx.AsyncClient(transport=wrap(transport) if wrap else transport, base_url=BASE)
    async with http:
        conn = RestWmsConnector(
            settings or sandbox_definition(BASE), http=http, connection="rest-wms/sandbox"
        )
        yield app.state.emulator, conn, http


async def place(conn: RestWmsConnector, record: dict[str, Any]) -> str:
    outcome, result = await run_action(conn.actions["create_order"], ctx_for(record))
    assert outcome.outcome is Outcome.SUCCESS, outcome
    assert result is not None and result.external_id
    return result.external_id


# --- conformance -------------------------------------------------------------------------


class TestRestWmsConformance(ConnectorConformance):
    connector_class = RestWmsConnector

    async def make_harness(self, stack: contextlib.AsyncExitStack) -> ConformanceHarness:
        app = create_app(pick_delay=-1, rate_limit_per_second=0)
        state: WarehouseState = app.state.emulator
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)
        await stack.enter_async_context(client)
        settings = sandbox_definition(BASE)
        conn = RestWmsConnector(settings, http=client, connection="rest-wms/sandbox")

        async def seed(stream: str) -> None:
            if stream == "shipments":
                await place(conn, canonical_order())
                await client.post("/_emulator/pick", json={})
            else:
                sku = "TEE-BLK-S"
                await client.post(
                    "/_emulator/stock", json={"sku": sku, "on_hand": state.stock[sku].on_hand + 1}
                )

        await seed("shipments")
        sample = next(e for e in state.events if e["type"] == "shipment.created")

        def webhook() -> tuple[dict[str, str], bytes]:
            return {k.lower(): v for k, v in sample["headers"].items()}, sample["body"]

        record = canonical_order("C-1")
        return ConformanceHarness(
            connector=conn,
            settings=settings,
            webhook=webhook,
            seed=seed,
            touch=seed,
            writes=[WriteCase("create_order", ctx_for(record), effects=lambda: len(state.orders))],
        )


# --- the definition ----------------------------------------------------------------------


def test_sandbox_definition_ships_as_a_valid_yaml_file() -> None:
    assert SANDBOX_DEFINITION_PATH.name == "sandbox-warehouse.yaml"
    settings = RestWmsSettings.model_validate(sandbox_definition())
    assert set(settings.compiled.writes) == {"create_order", "update_order", "cancel_order"}
    conn = RestWmsConnector(settings, http=httpx.AsyncClient())
    assert set(conn.streams) == {"shipments", "stock"}
    assert conn.actions["create_order"].when_exists == "update_order"
    assert conn.actions["create_order"].verifiable
    assert "sandbox-key" not in repr(settings)


def _errors(data: dict[str, Any]) -> list[dict[str, Any]]:
    with pytest.raises(ValidationError) as info:
        RestWmsSettings.model_validate(data)
    return info.value.errors(include_url=False)


def test_bad_expressions_are_validation_errors_naming_the_field() -> None:
    data = sandbox_definition(BASE)
    data["mappings"]["order"]["lines"]["$map"]["sku"] = "lin.sku"
    data["endpoints"]["update_order"]["path"] = "/api/v1/orders/{xrf}"
    data["endpoints"]["create_order"]["external_id"] = "response.id |"
    data["errors"][0]["reason"] = "Unknown SKU {response.sku | shout}"
    data["webhook"]["events"]["shipment.created"]["mapping"] = "shipmnt"
    errors = _errors(data)
    by_loc = {tuple(e["loc"]): e["msg"] for e in errors}
    assert "unknown variable 'lin'" in by_loc[("mappings", "order", "lines", "$map", "sku")]
    assert "did you mean 'line'" in by_loc[("mappings", "order", "lines", "$map", "sku")]
    path_msg = by_loc[("endpoints", "update_order", "path")]
    assert "{xrf}" in path_msg and "did you mean 'xref'" in path_msg
    assert ("endpoints", "create_order", "external_id") in by_loc
    assert "unknown filter 'shout'" in by_loc[("errors", 0, "reason")]
    assert (
        "unknown mapping 'shipmnt'" in by_loc[("webhook", "events", "shipment.created", "mapping")]
    )
    assert len(errors) == 5


def test_definition_errors_locate_in_the_yaml_file() -> None:
    """Through the project's YAML loader, an error points at the file, line and column."""
    from crossdock.project.yamlsrc import load_yaml

    text = SANDBOX_DEFINITION_PATH.read_text().replace(
        "external_id: response.id               # the WMS order id",
        "external_id: respons.id               # the WMS order id",
    )
    data, smap, _ = load_yaml(text, "sandbox-warehouse.yaml", {})
    with pytest.raises(ValidationError) as info:
        RestWmsSettings.model_validate(data)
    (issue,) = issues_from_validation(info.value, RestWmsSettings, (), smap)
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "respons.id" in t)
    assert (issue.line, issue.path) == (line, "endpoints.create_order.external_id")
    assert "unknown variable 'respons'" in issue.message and issue.expected


def test_structural_mistakes_are_clear() -> None:
    data = sandbox_definition(BASE)
    data["auth"] = {"type": "oauth", "token": "x"}
    (auth,) = _errors(data)
    assert auth["loc"] == ("auth",) and "'oauth'" in auth["msg"]
    data = sandbox_definition(BASE)
    data["endpoints"]["create_order"]["when_exists"] = "upsert_order"
    data["webhook"]["events"]["stock.changed"]["emit"] = "stock.moved"
    msgs = {tuple(e["loc"][:3]): e["msg"] for e in _errors(data)}
    assert "not another write endpoint" in msgs[("endpoints", "create_order", "when_exists")]
    assert "canonical record" in msgs[("webhook", "events", "stock.changed")]


# --- writes ------------------------------------------------------------------------------


def test_same_idempotency_key_twice_makes_one_wms_order() -> None:
    async def main() -> None:
        async with wired() as (state, conn, _):
            record = canonical_order()
            ctx = ctx_for(record, key="same-key")
            first, r1 = await run_action(conn.actions["create_order"], ctx)
            second, r2 = await run_action(conn.actions["create_order"], ctx)
            assert first.outcome is second.outcome is Outcome.SUCCESS
            assert r1 is not None and r2 is not None and r1.external_id == r2.external_id
            assert len(state.orders) == 1
            order = state.orders[r1.external_id]
            assert order.reference == record["id"] and order.idempotency_key == "same-key"
            assert order.ship_to["country"] == "DE" and order.lines[0]["quantity"] == 2

    asyncio.run(main())


class LoseAnswer(httpx.AsyncBaseTransport):
    """The request reaches the WMS, but its answer never comes back (once)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, method: str, path: str) -> None:
        self.inner, self.method, self.path = inner, method, path
        self.lost = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if not self.lost and request.method == self.method and request.url.path == self.path:
            self.lost += 1
            await response.aread()
            raise httpx.ReadTimeout("answer lost", request=request)
        return response


def test_uncertain_create_is_verified_by_lookup_not_sent_twice() -> None:
    async def main() -> None:
        lost: list[LoseAnswer] = []

        def wrap(inner: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
            lost.append(LoseAnswer(inner, "POST", "/api/v1/orders"))
            return lost[0]

        async with wired(wrap=wrap) as (state, conn, _):
            lose = lost[0]
            record = canonical_order()
            with recording() as rec:
                outcome, result = await run_action(conn.actions["create_order"], ctx_for(record))
            assert lose.lost == 1
            assert outcome.outcome is Outcome.SUCCESS and outcome.category == "verified"
            assert result is not None and result.verified
            assert result.external_id == next(iter(state.orders))
            assert len(state.orders) == 1
            assert [e.method for e in rec.exchanges] == ["POST", "GET"]
            assert "reference=" in rec.exchanges[1].url

    asyncio.run(main())


class LoseRequest(httpx.AsyncBaseTransport):
    """The connection drops before the request reaches the WMS (once)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.lost = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not self.lost and request.method == "POST":
            self.lost += 1
            raise httpx.ReadTimeout("no answer", request=request)
        return await self.inner.handle_async_request(request)


def test_uncertain_create_that_never_arrived_is_safe_to_send_again() -> None:
    async def main() -> None:
        async with wired(wrap=LoseRequest) as (state, conn, _):
            ctx = ctx_for(canonical_order())
            outcome, result = await run_action(conn.actions["create_order"], ctx)
            assert result is None and outcome.outcome is Outcome.RETRYABLE
            assert "no record of it" in outcome.reason and not state.orders
            outcome, result = await run_action(conn.actions["create_order"], ctx)
            assert outcome.outcome is Outcome.SUCCESS and len(state.orders) == 1

    asyncio.run(main())


def test_unknown_sku_is_refused_with_a_plain_reason() -> None:
    async def main() -> None:
        async with wired() as (state, conn, _):
            record = canonical_order(lines=(("TEE-BLK-M", 1), ("GHOST-1", 1)))
            outcome, result = await run_action(conn.actions["create_order"], ctx_for(record))
            assert result is None and outcome.outcome is Outcome.PERMANENT
            assert outcome.category == "unknown_sku"
            assert outcome.reason == (
                "The warehouse does not know SKU GHOST-1, so it cannot take the order."
            )
            assert "item master" in outcome.fix and "GHOST-1" in outcome.fix
            assert not state.orders

    asyncio.run(main())


def test_missing_postal_code_is_refused_as_an_address_problem() -> None:
    async def main() -> None:
        async with wired() as (_, conn, _):
            record = canonical_order(postal_code=None)
            outcome, _ = await run_action(conn.actions["create_order"], ctx_for(record))
            assert outcome.category == "address"
            assert "postal code" in outcome.reason and "{" not in outcome.reason

    asyncio.run(main())


def test_update_and_cancel_use_the_cross_reference_and_cancel_after_shipping_is_refused() -> None:
    async def main() -> None:
        async with wired() as (state, conn, http):
            record = canonical_order()
            wms_id = await place(conn, record)
            changed = canonical_order(record["id"], lines=(("CAP-NVY", 3),))
            outcome, res = await run_action(
                conn.actions["update_order"], ctx_for(changed, key="u1", xref=wms_id)
            )
            assert outcome.outcome is Outcome.SUCCESS and res and res.external_id == wms_id
            assert state.orders[wms_id].lines[0]["sku"] == "CAP-NVY"
            # No cross-reference: the order is found by reference first.
            other = canonical_order()
            other_id = await place(conn, other)
            outcome, res = await run_action(conn.actions["cancel_order"], ctx_for(other, key="c1"))
            assert outcome.outcome is Outcome.SUCCESS and res and res.external_id == other_id
            assert state.orders[other_id].status == "cancelled"
            await http.post("/_emulator/pick", json={"order_id": wms_id})
            outcome, _ = await run_action(
                conn.actions["cancel_order"], ctx_for(changed, key="c2", xref=wms_id)
            )
            assert outcome.category == "already_shipped"
            assert outcome.reason == (
                f"The warehouse has already shipped order {record['id']}; it can no longer "
                "be cancelled."
            )

    asyncio.run(main())


# --- the warehouse -----------------------------------------------------------------------


def _webhook(state: WarehouseState, kind: str) -> tuple[dict[str, str], bytes]:
    ev = [e for e in state.events if e["type"] == kind][-1]
    return {k.lower(): v for k, v in ev["headers"].items()}, ev["body"]


def test_short_pick_ships_what_is_in_stock_and_reports_the_rest() -> None:
    async def main() -> None:
        async with wired() as (state, conn, http):
            record = canonical_order(lines=(("RARE-VINYL", 5), ("MUG-WHT", 1)))
            wms_id = await place(conn, record)
            made = (await http.post("/_emulator/pick", json={})).json()["shipments"]
            assert len(made) == 1
            order = state.orders[wms_id]
            assert order.status == "partially_shipped"
            assert order.short_lines == [
                {"sku": "RARE-VINYL", "ordered": 5, "shipped": 2, "short": 3}
            ]
            assert made[0]["short_lines"] == order.short_lines
            assert state.stock["RARE-VINYL"].on_hand == 0
            assert state.stock["MUG-WHT"].on_hand == 249
            assert conn.webhooks is not None
            headers, raw = _webhook(state, "shipment.created")
            conn.webhooks.verify(headers, raw)
            (ev,) = conn.webhooks.parse(headers, raw)
            shipment = Shipment.model_validate(ev.record)
            assert ev.type == "shipment.created" and ev.record_key == made[0]["id"]
            assert shipment.order.id == record["id"] and shipment.order.number == record["number"]
            assert [(li.sku, li.quantity) for li in shipment.lines] == [
                ("RARE-VINYL", 2),
                ("MUG-WHT", 1),
            ]
            assert shipment.parcels[0].weight.value == 2 * 300 + 420
            assert shipment.ship_to and shipment.ship_to.postal_code == "20457"
            assert shipment.tracking_number is None and shipment.carrier is None
            stock_types = [e["type"] for e in state.events].count("stock.changed")
            assert stock_types == 2
            headers, raw = _webhook(state, "stock.changed")
            (inv,) = conn.webhooks.parse(headers, raw)
            assert inv.type == "inventory.updated"
            level = InventoryLevel.model_validate(inv.record)
            assert (level.sku, level.location, level.on_hand) == ("MUG-WHT", "WH1", 249)

    asyncio.run(main())


def test_nothing_in_stock_leaves_the_order_unfulfillable_without_a_shipment() -> None:
    async def main() -> None:
        async with wired() as (state, conn, http):
            await http.post("/_emulator/stock", json={"sku": "CAP-NVY", "on_hand": 0})
            wms_id = await place(conn, canonical_order(lines=(("CAP-NVY", 1),)))
            await http.post("/_emulator/pick", json={})
            assert state.orders[wms_id].status == "unfulfillable"
            assert not state.shipments

    asyncio.run(main())


def test_warehouse_picks_after_the_scaled_delay_and_labels_when_it_buys_them() -> None:
    async def main() -> None:
        async with wired(pick_delay=5, time_scale=0.002, buys_labels=True) as (state, conn, _):
            wms_id = await place(conn, canonical_order())
            assert state.orders[wms_id].status == "accepted"
            for _ in range(200):
                if state.orders[wms_id].status != "accepted":
                    break
                await asyncio.sleep(0.005)
            assert state.orders[wms_id].status == "shipped"
            assert conn.webhooks is not None
            (ev,) = conn.webhooks.parse(*_webhook(state, "shipment.created"))
            assert ev.record["carrier"] == "DHL" and ev.record["tracking_number"]
            assert ev.record["tracking_url"].endswith(ev.record["tracking_number"])

    asyncio.run(main())


def test_webhooks_are_signed_and_tampered_ones_rejected() -> None:
    async def main() -> None:
        async with wired() as (state, conn, http):
            await http.post("/_emulator/stock", json={"sku": "SOCK-3PK", "on_hand": 7})
            headers, raw = _webhook(state, "stock.changed")
            assert headers["x-event-id"] and headers["x-signature"]
            wh = conn.webhooks
            assert wh is not None
            wh.verify(headers, raw)
            (ev,) = wh.parse(headers, raw)
            assert ev.event_id == headers["x-event-id"] and ev.record["on_hand"] == 7
            for bad_headers, bad_raw in (
                (headers, raw.replace(b'"on_hand":7', b'"on_hand":70')),
                ({k: v for k, v in headers.items() if k != "x-signature"}, raw),
                ({**headers, "x-signature": "zz"}, raw),
            ):
                with pytest.raises(SignatureRejected) as info:
                    wh.verify(bad_headers, bad_raw)
                assert "sandbox-webhook-secret" not in info.value.reason
            # An event type the definition does not use is acknowledged, not an event.
            assert wh.parse(headers, raw.replace(b"stock.changed", b"stock.counted")) == []

    asyncio.run(main())


def test_webhooks_are_delivered_to_the_hub_signed() -> None:
    """End to end: the warehouse posts to webhook_url; the receiver verifies and parses."""

    async def main() -> None:
        received: list[tuple[dict[str, str], bytes]] = []

        async def hub(scope: Any, receive: Any, send: Any) -> None:
            body = b""
            while True:
                msg = await receive()
                body += msg.get("body", b"")
                if not msg.get("more_body"):
                    break
            headers = {k.decode(): v.decode() for k, v in scope["headers"]}
            received.append((headers, body))
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"{}"})

        async with wired(webhook_url="http://hub/hooks/ws/wms", time_scale=0.001) as (
            state,
            conn,
            http,
        ):
            state.sender._client = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=hub), base_url="http://hub"
            )
            await place(conn, canonical_order())
            await http.post("/_emulator/pick", json={})
            await state.sender.drain(5)
            assert [d.delivered for d in state.sender.deliveries] == [True, True]
            assert conn.webhooks is not None
            for headers, raw in received:
                conn.webhooks.verify(headers, raw)
            types = [conn.webhooks.parse(h, r)[0].type for h, r in received]
            assert types == ["shipment.created", "inventory.updated"]
            await state.sender.close()

    asyncio.run(main())


def test_wrong_api_key_is_a_401_json_and_check_reports_it() -> None:
    async def main() -> None:
        async with wired(api_key="the-real-key") as (_, conn, http):
            r = await http.get("/api/v1/stock", headers={"X-Api-Key": "nope"})
            assert r.status_code == 401 and r.json()["error"] == "unauthorized"
            with pytest.raises(VendorError) as info:
                await conn.check()
            assert info.value.classified.category == "auth"
        good = sandbox_definition(BASE, api_key="the-real-key")
        async with wired(good, api_key="the-real-key") as (_, conn, _):
            assert "HTTP 200" in await conn.check()

    asyncio.run(main())


# --- streams -----------------------------------------------------------------------------


def _small_pages(size: int) -> dict[str, Any]:
    data = sandbox_definition(BASE)
    data["endpoints"]["get_shipments"]["pagination"]["size"] = size
    data.pop("rate_limit")
    return data


def test_pagination_walks_every_page() -> None:
    async def main() -> None:
        async with wired(_small_pages(3)) as (state, conn, http):
            for _ in range(7):
                await place(conn, canonical_order())
            await http.post("/_emulator/pick", json={})
            stream = conn.streams["shipments"]
            with recording() as rec:
                events = [ev async for ev in stream.read(Cursor(stream.initial_cursor))]
            assert sorted(e.record_key for e in events) == sorted(state.shipments)
            pages = [e.url for e in rec.exchanges]
            assert len(pages) == 3
            assert "page=3" in pages[-1] and "per_page=3" in pages[-1]
            assert all("updated_since=" in p for p in pages)

    asyncio.run(main())


def test_stream_reads_only_changes_after_the_cursor() -> None:
    async def main() -> None:
        async with wired() as (_, conn, http):
            stream = conn.streams["stock"]
            cursor = Cursor(stream.initial_cursor, lag_seconds=0)
            first = [ev async for ev in stream.read(cursor)]
            assert len(first) == 12
            await http.post("/_emulator/stock", json={"sku": "BAG-TOTE", "on_hand": 3})
            later = [ev async for ev in stream.read(cursor)]
            assert [(e.record_key, e.record["on_hand"]) for e in later] == [("BAG-TOTE", 3)]

    asyncio.run(main())


def test_429_and_retry_after_are_honoured() -> None:
    async def main() -> None:
        async with wired(_small_pages(1)) as (state, conn, http):
            for _ in range(3):
                await place(conn, canonical_order())
            await http.post("/_emulator/pick", json={})
            state.set_rate_limit(2)
            stream = conn.streams["shipments"]
            t0 = time.monotonic()
            with recording() as rec:
                events = [ev async for ev in stream.read(Cursor(stream.initial_cursor))]
            elapsed = time.monotonic() - t0
            assert len(events) == 3
            statuses = [e.status for e in rec.exchanges]
            assert 429 in statuses and statuses[-1] == 200
            assert state.rate_limited >= 1
            assert elapsed >= 0.9  # waited as Retry-After said, then went on
            r = await http.get("/api/v1/stock", headers={"X-Api-Key": "sandbox-key"})
            while r.status_code != 429:
                r = await http.get("/api/v1/stock", headers={"X-Api-Key": "sandbox-key"})
            assert r.json()["error"] == "rate_limited" and int(r.headers["Retry-After"]) >= 1

    asyncio.run(main())


def test_a_429_on_a_write_is_rate_limited_and_pauses_the_connection() -> None:
    async def main() -> None:
        async with wired() as (state, conn, http):
            await http.post(
                "/_emulator/faults",
                json={"status": 429, "retry_after": 2, "count": 1, "path": "/api/v1/orders"},
            )
            outcome, _ = await run_action(conn.actions["create_order"], ctx_for(canonical_order()))
            assert outcome.outcome is Outcome.RATE_LIMITED and outcome.retry_after == 2
            rate = conn.api.client.rate
            assert isinstance(rate, LeakyBucket) and rate.delay() > 1.5  # paused ~2 s
            assert not state.orders

    asyncio.run(main())


def test_reset_and_state_routes() -> None:
    async def main() -> None:
        async with wired() as (_, conn, http):
            await place(conn, canonical_order())
            snap = (await http.get("/_emulator/state")).json()
            assert snap["counts"]["orders"] == 1 and snap["orders"][0]["status"] == "accepted"
            assert snap["stock"]["TEE-BLK-M"]["on_hand"] == 400
            await http.post("/_emulator/reset")
            assert (await http.get("/_emulator/state")).json()["counts"]["orders"] == 0

    asyncio.run(main())


def test_definition_copy_is_independent() -> None:
    a = sandbox_definition()
    a["mappings"]["order"]["reference"] = "record.number"
    assert sandbox_definition()["mappings"]["order"]["reference"] == "record.id"
    assert copy.deepcopy(a) == a
