"""The Shopify connector and its emulator: conformance, the 2025-01 schema contract,
webhooks, cost throttling, compare-and-set, fulfilments, OAuth and version pinning."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from graphql import GraphQLSchema, build_client_schema, parse, validate
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from crossdock.connectors.shopify import ShopifyConnector
from crossdock.connectors.shopify.api import classify, requested_cost
from crossdock.connectors.shopify.documents import DOCUMENTS, ORDERS, SHOP
from crossdock.connectors.shopify.oauth import (
    authorize_url,
    callback_message,
    exchange_code,
    verify_callback,
)
from crossdock.emulators.serving import serving
from crossdock.emulators.shopify import ShopifyEmulator, create_app
from crossdock.pipeline.outcome import Outcome
from crossdock.sdk.actions import ActionContext, run_action
from crossdock.sdk.client import recording
from crossdock.sdk.conformance import ConformanceHarness, ConnectorConformance, WriteCase
from crossdock.sdk.errors import SignatureRejected, VendorError
from crossdock.sdk.streams import Cursor
from crossdock.testing.specs import shopify_introspection

TOKEN = "shpat_test_token_0123456789"
SECRET = "shpss_test_secret_0123456789"
SHOP_DOMAIN = "crossdock-demo.myshopify.com"


def make_app(**options: Any) -> Starlette:
    # Points restore fast in tests, so cost-aware waits stay short; the throttle tests
    # use Shopify's own numbers.
    options.setdefault("cost_restore_rate", 2000.0)
    return create_app(
        access_token=TOKEN, webhook_secret=SECRET, shop=SHOP_DOMAIN, seed=7, **options
    )


def emulator(app: Starlette) -> ShopifyEmulator:
    emu: ShopifyEmulator = app.state.emulator
    return emu


async def connect(
    stack: contextlib.AsyncExitStack,
    app: Starlette,
    transport: httpx.AsyncBaseTransport | None = None,
    **settings: Any,
) -> ShopifyConnector:
    client = httpx.AsyncClient(
        transport=transport or httpx.ASGITransport(app=app), base_url="http://vendor"
    )
    await stack.enter_async_context(client)
    values: dict[str, Any] = {
        "base_url": "http://vendor",
        "shop_domain": SHOP_DOMAIN,
        "access_token": TOKEN,
        "client_secret": SECRET,
        **settings,
    }
    values = {k: v for k, v in values.items() if v is not None}
    return ShopifyConnector(values, http=client, connection="shopify/test")


def run(test: Callable[[contextlib.AsyncExitStack], Awaitable[None]]) -> None:
    async def main() -> None:
        async with contextlib.AsyncExitStack() as stack:
            await test(stack)

    asyncio.run(main())


def order_spec(*lines: tuple[str, int], **extra: Any) -> dict[str, Any]:
    return {
        "lines": [{"sku": s, "quantity": q} for s, q in lines],
        "email": "ada@example.com",
        "shipping_address": {
            "first_name": "Ada",
            "last_name": "Lovelace",
            "address1": "12 Analytical Row",
            "city": "London",
            "zip": "N1 9GU",
            "country_code": "GB",
        },
        "financial_status": "paid",
        **extra,
    }


def shipment(order_id: int | str, tracking: str | None = "1Z999", **extra: Any) -> dict[str, Any]:
    record: dict[str, Any] = {"order": {"id": str(order_id)}, **extra}
    if tracking:
        record.update(
            tracking_number=tracking, carrier="ups", tracking_url=f"https://ups.test/{tracking}"
        )
    return record


def lower(headers: dict[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


# -- conformance ------------------------------------------------------------------------------


class TestShopifyConformance(ConnectorConformance):
    connector_class = ShopifyConnector

    async def make_harness(self, stack: contextlib.AsyncExitStack) -> ConformanceHarness:
        app = make_app()
        emu = emulator(app)
        connector = await connect(stack, app)
        sample = emu.create_order(order_spec(("TEE-BLK-M", 2), ("MUG-WHT", 1)))
        to_fulfil = emu.create_order(order_spec(("CAP-NVY", 1)))

        async def seed(name: str) -> None:
            for sku in ("HOOD-GRY-L", "BAG-TOTE"):
                emu.create_order(order_spec((sku, 1)))

        async def touch(name: str) -> None:
            emu.update_order(sample["id"], {"note": "gift wrap"})

        def webhook() -> tuple[dict[str, str], bytes]:
            headers, raw = emu.build_webhook("orders/create", sample)
            return lower(headers), raw

        return ConformanceHarness(
            connector=connector,
            settings={
                "base_url": "http://vendor",
                "shop_domain": SHOP_DOMAIN,
                "access_token": TOKEN,
                "client_secret": SECRET,
            },
            webhook=webhook,
            seed=seed,
            touch=touch,
            writes=[
                WriteCase(
                    "create_fulfillment",
                    ActionContext(
                        record=shipment(to_fulfil["id"]), idempotency_key="k-ful", record_key="s1"
                    ),
                    effects=lambda: emu.snapshot()["counts"]["fulfillments"],
                ),
                WriteCase(
                    "set_inventory",
                    ActionContext(
                        record={"sku": "SOCK-3PK", "location": "WH1", "available": 123},
                        idempotency_key="k-inv",
                        record_key="SOCK-3PK",
                    ),
                    effects=lambda: emu.inventory_sets,
                ),
            ],
        )


# -- contract: every GraphQL document against Shopify's published 2025-01 schema --------------


@pytest.fixture(scope="module")
def admin_schema() -> GraphQLSchema:
    data = shopify_introspection()
    # Shopify's own schema breaks graphql-core's deprecation-consistency rule on a few
    # interface fields, so it is built as given (assume_valid) and documents validated.
    return build_client_schema(data.get("data", data), assume_valid=True)


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_every_graphql_document_is_valid_against_the_2025_01_schema(
    admin_schema: GraphQLSchema, name: str
) -> None:
    errors = validate(admin_schema, parse(DOCUMENTS[name]))
    assert not errors, f"{name}: {[e.message for e in errors]}"


def test_schema_check_catches_a_wrong_field(admin_schema: GraphQLSchema) -> None:
    assert validate(admin_schema, parse("{ shop { nme } }"))


def test_documents_sent_during_a_run_are_the_validated_ones(admin_schema: GraphQLSchema) -> None:
    sent: list[str] = []

    async def test(stack: contextlib.AsyncExitStack) -> None:
        app = make_app()
        emu = emulator(app)
        c = await connect(stack, app, orders_page_size=2)
        big = emu.create_order(order_spec(*[(f"CUSTOM-{i}", 1) for i in range(12)]))
        for _ in range(3):
            emu.create_order(order_spec(("TEE-BLK-S", 1)))
        with recording() as rec:
            await c.check()
            async for _ in c.streams["orders"].read(Cursor("1970-01-01T00:00:00Z")):
                pass
            ctx = ActionContext(record=shipment(big["id"]), idempotency_key="k", record_key="x")
            await run_action(c.actions["create_fulfillment"], ctx)
            level = {"sku": "TEE-BLK-S", "location": "WH1", "available": 5}
            ctx = ActionContext(record=level, idempotency_key="k2", record_key="x")
            await run_action(c.actions["set_inventory"], ctx)
        for ex in rec.exchanges:
            if ex.url.endswith("/graphql.json"):
                sent.append(json.loads(ex.request_body)["query"])

    run(test)
    known = set(DOCUMENTS.values())
    assert len(set(sent)) == len(known), "every document was exercised"
    for doc in sent:
        assert doc in known, "the connector sent a document that is not a module constant"
        assert not validate(admin_schema, parse(doc))


def test_connector_cost_estimate_matches_the_emulator_and_fits_the_bucket() -> None:
    async def test(stack: contextlib.AsyncExitStack) -> None:
        app = make_app()
        c = await connect(stack, app)
        resp = await c.api.request(ORDERS, {"first": 10, "query": "updated_at:>='2020-01-01'"})
        cost = resp.body["extensions"]["cost"]
        asked = cost["requestedQueryCost"]
        assert asked == requested_cost(ORDERS, {"first": 10})
        assert asked <= 1000, "a default page must fit in Shopify's 1000-point bucket"
        # No orders came back: Shopify charges the actual cost and refunds the rest.
        assert cost["actualQueryCost"] == 2
        assert cost["throttleStatus"]["currentlyAvailable"] >= 998

    run(test)


# -- webhooks ---------------------------------------------------------------------------------

KNOWN_BODY = b'{"id":820982911946154508,"email":"jon@example.com"}'
KNOWN_HMAC = "D0UMXmhjwBRi4y66TmhJrDlhQABD7zI2fm3p6/QLMo8="  # openssl dgst -hmac hush | base64


def known_headers(**over: str) -> dict[str, str]:
    headers = {
        "x-shopify-hmac-sha256": KNOWN_HMAC,
        "x-shopify-topic": "orders/create",
        "x-shopify-shop-domain": SHOP_DOMAIN,
        "x-shopify-api-version": "2025-01",
        "x-shopify-webhook-id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
        "x-shopify-event-id": "98880550-7158-44d4-b7cd-2c97c8a091b5",
    }
    headers.update(over)
    return headers


def offline_connector(secret: str = "hush") -> ShopifyConnector:
    http = httpx.AsyncClient(base_url="http://unused")
    return ShopifyConnector(
        {
            "base_url": "http://unused",
            "shop_domain": SHOP_DOMAIN,
            "access_token": TOKEN,
            "client_secret": secret,
        },
        http=http,
    )


def test_webhook_hmac_matches_a_known_vector() -> None:
    wh = offline_connector().webhooks
    assert wh is not None
    wh.verify(known_headers(), KNOWN_BODY)
    with pytest.raises(SignatureRejected) as bad:
        offline_connector("other").webhooks.verify(known_headers(), KNOWN_BODY)  # type: ignore[union-attr]
    assert "hush" not in bad.value.reason and "other" not in bad.value.reason


@pytest.mark.parametrize(
    "missing", ["hmac-sha256", "topic", "shop-domain", "api-version", "webhook-id"]
)
def test_webhook_missing_a_required_header_is_rejected(missing: str) -> None:
    wh = offline_connector().webhooks
    assert wh is not None
    headers = {k: v for k, v in known_headers().items() if k != f"x-shopify-{missing}"}
    with pytest.raises(SignatureRejected, match="missing"):
        wh.verify(headers, KNOWN_BODY)


def test_webhook_headers_without_x_prefix_are_accepted() -> None:
    wh = offline_connector().webhooks
    assert wh is not None
    plain = {k.removeprefix("x-"): v for k, v in known_headers().items()}
    wh.verify(plain, KNOWN_BODY)


def test_webhook_from_another_shop_is_rejected() -> None:
    wh = offline_connector().webhooks
    assert wh is not None
    with pytest.raises(SignatureRejected, match="shop"):
        wh.verify(known_headers(**{"x-shopify-shop-domain": "evil.myshopify.com"}), KNOWN_BODY)


class Receiver:
    """A webhook endpoint on a real loopback socket that records deliveries."""

    def __init__(self, fail_first: int = 0) -> None:
        self.deliveries: list[tuple[dict[str, str], bytes]] = []
        self.fail_first = fail_first

        async def hook(request: Request) -> Response:
            self.deliveries.append((dict(request.headers), await request.body()))
            if len(self.deliveries) <= self.fail_first:
                return JSONResponse({"error": "down"}, 503)
            return JSONResponse({"ok": True})

        self.app = Starlette(routes=[Route("/hooks/acme/shopify", hook, methods=["POST"])])


@contextlib.contextmanager
def receiving(fail_first: int = 0) -> Any:
    rx = Receiver(fail_first)
    with serving(rx.app) as srv:
        yield rx, f"{srv.url}/hooks/acme/shopify"


def test_duplicate_delivery_keeps_the_same_event_id() -> None:
    with receiving() as (rx, url):

        async def test(stack: contextlib.AsyncExitStack) -> None:
            app = make_app(webhook_url=url, duplicate_probability=1.0, time_scale=0.001)
            c = await connect(stack, app)
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://vendor"
            ) as ctl:
                r = await ctl.post("/_emulator/orders", json=order_spec(("TEE-BLK-L", 1)))
                assert r.status_code == 201
                await app.state.webhooks.drain(10)
            assert len(rx.deliveries) == 2
            events = []
            for headers, raw in rx.deliveries:
                c.webhooks.verify(headers, raw)  # type: ignore[union-attr]
                events += c.webhooks.parse(headers, raw)  # type: ignore[union-attr]
            assert [e.type for e in events] == ["order.created", "order.created"]
            assert events[0].event_id and events[0].event_id == events[1].event_id
            assert events[0].record["number"] == "#1001"
            assert events[0].record["lines"][0]["sku"] == "TEE-BLK-L"

        run(test)


def test_failed_webhook_delivery_is_retried_until_accepted() -> None:
    with receiving(fail_first=2) as (rx, url):

        async def test(stack: contextlib.AsyncExitStack) -> None:
            app = make_app(webhook_url=url, time_scale=0.0005)
            emulator(app).create_order(order_spec(("CAP-NVY", 1)))
            await app.state.webhooks.drain(10)
            (summary,) = app.state.webhooks.summary()
            assert summary["statuses"] == [503, 503, 200] and summary["delivered"]

        run(test)
    assert len(rx.deliveries) == 3


def test_new_style_webhook_headers_from_the_emulator_verify() -> None:
    async def test(stack: contextlib.AsyncExitStack) -> None:
        app = make_app(webhook_header_style="plain")
        emu = emulator(app)
        c = await connect(stack, app)
        order = emu.create_order(order_spec(("MUG-WHT", 3)))
        emu.cancel_order(order["id"])
        headers, raw = emu.build_webhook("orders/cancelled", order)
        assert not any(k.lower().startswith("x-") for k in headers)
        headers = lower(headers)
        c.webhooks.verify(headers, raw)  # type: ignore[union-attr]
        (ev,) = c.webhooks.parse(headers, raw)  # type: ignore[union-attr]
        assert ev.type == "order.cancelled" and ev.record["status"] == "cancelled"
        assert ev.event_id == headers["shopify-event-id"]

    run(test)


# -- cost throttling --------------------------------------------------------------------------


def test_throttled_answer_is_classified_rate_limited_with_retry_after() -> None:
    body = {
        "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
        "extensions": {
            "cost": {
                "requestedQueryCost": 502,
                "actualQueryCost": None,
                "throttleStatus": {
                    "maximumAvailable": 1000.0,
                    "currentlyAvailable": 2,
                    "restoreRate": 50.0,
                },
            }
        },
    }
    cl = classify(httpx.Response(200, json=body), body, "shopify/test")
    assert cl.outcome is Outcome.RATE_LIMITED
    assert cl.retry_after == pytest.approx(10.0)


def test_emulator_throttles_and_connector_reports_rate_limited() -> None:
    async def test(stack: contextlib.AsyncExitStack) -> None:
        app = make_app(cost_restore_rate=50.0)
        emu = emulator(app)
        c = await connect(stack, app)
        emu.cost.available = 0.0
        with pytest.raises(VendorError) as err:
            await c.api.execute(ORDERS, {"first": 10})
        assert err.value.outcome is Outcome.RATE_LIMITED
        assert err.value.classified.retry_after is not None
        assert 10 < err.value.classified.retry_after < 16  # ~732 points at 50/s
        assert emu.throttled == 1
        # The connector's bucket now believes the vendor: it will wait before the next call.
        assert c.rate.delay(float(requested_cost(ORDERS, {"first": 10}))) > 10

    run(test)


# -- inventory: compare-and-set ------------------------------------------------------------------


def test_compare_and_set_retries_a_stale_compare_by_reading_again() -> None:
    async def test(stack: contextlib.AsyncExitStack) -> None:
        app = make_app()
        emu = emulator(app)
        c = await connect(stack, app)
        emu.races["TEE-BLK-S"] = [-3]  # a sale lands between our read and our write
        level = {"sku": "TEE-BLK-S", "location": "WH1", "available": 100}
        ctx = ActionContext(record=level, idempotency_key="inv-1", record_key="TEE-BLK-S")
        with recording() as rec:
            outcome, result = await run_action(c.actions["set_inventory"], ctx)
        assert outcome.outcome is Outcome.SUCCESS, outcome
        assert emu.stale_compares == 1 and emu.inventory_sets == 1
        assert emu.snapshot()["inventory"]["TEE-BLK-S"]["available"] == 100
        assert c.actions["set_inventory"].stale_retries == 1  # type: ignore[attr-defined]
        sets = [
            json.loads(x.request_body)["variables"]["input"]
            for x in rec.exchanges
            if "inventorySetQuantities" in x.request_body
        ]
        assert [s["quantities"][0]["compareQuantity"] for s in sets] == [400, 397]
        assert result is not None and result.record["available"] == 100

    run(test)


def test_unknown_sku_is_refused_in_plain_words() -> None:
    async def test(stack: contextlib.AsyncExitStack) -> None:
        app = make_app()
        c = await connect(stack, app)
        level = {"sku": "GHOST-1", "location": "WH1", "available": 4}
        ctx = ActionContext(record=level, idempotency_key="inv-2", record_key="GHOST-1")
        outcome, _ = await run_action(c.actions["set_inventory"], ctx)
        assert outcome.outcome is Outcome.PERMANENT
        assert outcome.category == "unknown_sku"
        assert "GHOST-1" in outcome.reason and outcome.fix

    run(test)


# -- fulfilment ---------------------------------------------------------------------------------


class LoseAnswer(httpx.AsyncBaseTransport):
    """Forwards every request but loses the answer of the first one matching ``marker``:
    the vendor applied it, we saw a timeout."""

    def __init__(self, inner: httpx.AsyncBaseTransport, marker: bytes) -> None:
        self.inner = inner
        self.marker = marker
        self.armed = True

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if self.armed and self.marker in request.content:
            self.armed = False
            raise httpx.ReadTimeout("answer lost", request=request)
        return response


def test_fulfilment_whose_answer_was_lost_is_verified_not_repeated() -> None:
    async def test(stack: contextlib.AsyncExitStack) -> None:
        app = make_app()
        emu = emulator(app)
        lossy = LoseAnswer(httpx.ASGITransport(app=app), b"fulfillmentCreate(")
        c = await connect(stack, app, transport=lossy)
        order = emu.create_order(order_spec(("HOOD-GRY-M", 1)))
        ctx = ActionContext(
            record=shipment(order["id"], "1ZLOST"), idempotency_key="f", record_key="s"
        )
        outcome, result = await run_action(c.actions["create_fulfillment"], ctx)
        assert outcome.outcome is Outcome.SUCCESS and outcome.category == "verified"
        assert result is not None and result.verified
        again, _ = await run_action(c.actions["create_fulfillment"], ctx)
        assert again.outcome is Outcome.SUCCESS
        assert emu.snapshot()["counts"]["fulfillments"] == 1

    run(test)


def test_fulfilment_carries_tracking_and_the_notify_setting() -> None:
    async def test(stack: contextlib.AsyncExitStack) -> None:
        app = make_app()
        emu = emulator(app)
        c = await connect(stack, app, notify_customer=False)
        order = emu.create_order(order_spec(("TEE-BLK-M", 2), ("CAP-NVY", 1)))
        ctx = ActionContext(
            record=shipment(order["id"], "1ZPART", lines=[{"sku": "CAP-NVY", "quantity": 1}]),
            idempotency_key="f",
            record_key="s",
        )
        outcome, result = await run_action(c.actions["create_fulfillment"], ctx)
        assert outcome.outcome is Outcome.SUCCESS, outcome
        (state,) = emu.snapshot()["orders"]
        assert state["fulfillment_status"] == "partial"
        (f,) = state["fulfillments"]
        assert f["tracking_number"] == "1ZPART" and f["tracking_company"] == "UPS"
        assert f["tracking_url"] == "https://ups.test/1ZPART"
        assert f["notify_customer"] is False
        assert f["line_items"] == [{"sku": "CAP-NVY", "quantity": 1}]
        assert result is not None and result.external_id == str(f["id"])
        assert [e["topic"] for e in emu.events] == ["orders/create", "orders/updated"]

    run(test)


def test_fulfilment_of_a_sku_not_on_the_order_or_a_cancelled_order_is_refused() -> None:
    async def test(stack: contextlib.AsyncExitStack) -> None:
        app = make_app()
        emu = emulator(app)
        c = await connect(stack, app)
        order = emu.create_order(order_spec(("TEE-BLK-M", 1)))
        bad = shipment(order["id"], lines=[{"sku": "GHOST-1", "quantity": 1}])
        outcome, _ = await run_action(
            c.actions["create_fulfillment"],
            ActionContext(record=bad, idempotency_key="a", record_key="s"),
        )
        assert outcome.category == "unknown_sku" and "GHOST-1" in outcome.reason
        emu.cancel_order(order["id"])
        outcome, _ = await run_action(
            c.actions["create_fulfillment"],
            ActionContext(record=shipment(order["id"]), idempotency_key="b", record_key="s"),
        )
        assert outcome.outcome is Outcome.PERMANENT and "cancelled" in outcome.reason
        missing = shipment("999999")
        outcome, _ = await run_action(
            c.actions["create_fulfillment"],
            ActionContext(record=missing, idempotency_key="c", record_key="s"),
        )
        assert outcome.category == "lookup"

    run(test)


# -- streams -----------------------------------------------------------------------------------


def test_orders_stream_pages_with_cursors_and_reads_every_line_item() -> None:
    async def test(stack: contextlib.AsyncExitStack) -> None:
        app = make_app()
        emu = emulator(app)
        c = await connect(stack, app, orders_page_size=2)
        big = emu.create_order(order_spec(*[(f"CUSTOM-{i}", 1) for i in range(25)]))
        for _ in range(4):
            emu.create_order(order_spec(("BAG-TOTE", 1)))
        emu.cancel_order(big["id"])
        cursor = Cursor("1970-01-01T00:00:00Z")
        events = [e async for e in c.streams["orders"].read(cursor)]
        assert len(events) == 5
        by_id = {e.record_key: e for e in events}
        assert by_id[str(big["id"])].type == "order.cancelled"
        assert len(by_id[str(big["id"])].record["lines"]) == 25
        assert {e.type for e in events} == {"order.created", "order.cancelled"}
        assert events[-1].record_key == str(big["id"])  # the latest change comes last
        assert cursor.value == events[-1].version

    run(test)


def test_order_mapping_is_declared_with_the_sdk_mapper() -> None:
    from crossdock.connectors.shopify.mappers import (
        GraphqlLineMapper,
        GraphqlOrderMapper,
        RestLineMapper,
        RestOrderMapper,
        order_from_rest,
    )
    from crossdock.sdk.mapping import Mapper

    assert issubclass(RestOrderMapper, Mapper) and issubclass(GraphqlOrderMapper, Mapper)
    assert ("line_items", "lines", RestLineMapper) in RestOrderMapper.children
    assert ("lineItems.nodes", "lines", GraphqlLineMapper) in GraphqlOrderMapper.children

    emu = emulator(make_app())
    order = emu.rest_order(
        emu.create_order({**order_spec(("BAG-TOTE", 2), ("CUSTOM-1", 1)), "currency": "EUR"})
    )
    mapped = RestOrderMapper({"connection": "shop-a"}).map(order)
    assert len(mapped["lines"]) == 2
    assert [line["quantity"] for line in mapped["lines"]] == [2, 1]
    assert {line["unit_price"]["currency"] for line in mapped["lines"]} == {"EUR"}
    assert mapped["source"] == {
        "connection": "shop-a",
        "external_id": str(order["id"]),
        "version": order["updated_at"],
    }
    record = order_from_rest(order, "shop-a")
    assert [line["unit_price"]["currency"] for line in record["lines"]] == ["EUR", "EUR"]
    assert record["totals"]["total"]["currency"] == "EUR"
    # the line mapper takes the currency from its parent order through ``ctx``
    line = RestLineMapper({"parent": {"currency": "GBP"}}).map(order["line_items"][0])
    assert line["unit_price"] == {"amount": order["line_items"][0]["price"], "currency": "GBP"}


# -- OAuth and auth ----------------------------------------------------------------------------


def test_oauth_callback_hmac_matches_shopifys_documented_example() -> None:
    query = (
        "code=0907a61c0c8d55e99db179b68161bc00&shop=some-shop.myshopify.com"
        "&timestamp=1337178173"
        "&hmac=4712bf92ffc2917d15a2f5a273e39f0116667419aa4b6ac0b3baaf26fa3c4d20"
    )
    params = verify_callback(query, "hush")
    assert params["shop"] == "some-shop.myshopify.com"
    assert callback_message(query).startswith("code=")
    with pytest.raises(SignatureRejected):
        verify_callback(query.replace("1337178173", "1337178174"), "hush")
    with pytest.raises(SignatureRejected):
        verify_callback(query, "not-hush")


def test_oauth_install_flow_against_the_emulator() -> None:
    async def test(stack: contextlib.AsyncExitStack) -> None:
        app = make_app(client_id="app-123")
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://vendor")
        await stack.enter_async_context(http)
        url = authorize_url(
            "http://vendor", "app-123", ["read_orders"], "https://hub.test/cb", "nonce-1"
        )
        r = await http.get(url)
        assert r.status_code == 302
        callback = urlsplit(r.headers["location"])
        assert callback.netloc == "hub.test"
        with pytest.raises(SignatureRejected):
            verify_callback(callback.query, SECRET, expected_state="other-nonce")
        params = verify_callback(callback.query, SECRET, expected_state="nonce-1")
        token = await exchange_code(http, "http://vendor", "app-123", SECRET, params["code"])
        assert token["scope"] == "read_orders" and token["access_token"].startswith("shpat_")
        with pytest.raises(VendorError):  # a code works once
            await exchange_code(http, "http://vendor", "app-123", SECRET, params["code"])
        c = await connect(stack, app, access_token=token["access_token"])
        assert "crossdock-demo.myshopify.com" in await c.check()
        tampered = dict(parse_qsl(callback.query))
        tampered["shop"] = "evil.myshopify.com"
        with pytest.raises(SignatureRejected):
            verify_callback(tampered, SECRET)

    run(test)


def test_client_credentials_grant_fetches_a_token_and_uses_it() -> None:
    async def test(stack: contextlib.AsyncExitStack) -> None:
        app = make_app(client_id="app-123")
        emu = emulator(app)
        c = await connect(stack, app, access_token=None, client_id="app-123")
        before = len(emu.tokens)
        assert "Shopify shop" in await c.check()
        await c.check()
        assert len(emu.tokens) == before + 1  # fetched once, reused

    run(test)


def test_wrong_access_token_gets_shopifys_401_and_an_auth_outcome() -> None:
    async def test(stack: contextlib.AsyncExitStack) -> None:
        app = make_app()
        c = await connect(stack, app, access_token="shpat_wrong")
        with pytest.raises(VendorError) as err:
            await c.check()
        assert err.value.status == 401 and err.value.classified.category == "auth"
        assert err.value.body == {
            "errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"
        }

    run(test)


# -- API version ---------------------------------------------------------------------------------


def test_sunset_warning_is_shown_for_2025_01() -> None:
    assert ShopifyConnector.api_version == "2025-01"
    assert ShopifyConnector.api_sunset == date(2026, 1, 1)
    warning = ShopifyConnector.sunset_warning(date(2026, 11, 30))
    assert warning is not None and "passed its sunset" in warning


def test_a_fell_forward_answer_version_is_noted_for_the_console() -> None:
    async def test(stack: contextlib.AsyncExitStack) -> None:
        app = make_app(oldest_version="2025-10")
        c = await connect(stack, app)
        assert c.answered_version is None
        assert "2025-10" in await c.check()
        assert c.answered_version == "2025-10"
        assert "fell forward" in (c.version_warning() or "")
        app2 = make_app()
        c2 = await connect(stack, app2)
        await c2.check()
        assert c2.answered_version is None and c2.version_warning() is None

    run(test)


# -- emulator: REST, faults, GraphQL errors -----------------------------------------------------


async def _vendor(stack: contextlib.AsyncExitStack, app: Starlette) -> httpx.AsyncClient:
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://vendor",
        headers={"X-Shopify-Access-Token": TOKEN},
    )
    return await stack.enter_async_context(client)


def test_rest_orders_paginate_by_link_header_and_count_calls() -> None:
    async def test(stack: contextlib.AsyncExitStack) -> None:
        app = make_app()
        emu = emulator(app)
        for _ in range(7):
            emu.create_order(order_spec(("MUG-WHT", 1)))
        v = await _vendor(stack, app)
        seen: list[int] = []
        url: str | None = "/admin/api/2025-01/orders.json?limit=3&status=any"
        while url:
            r = await v.get(url)
            assert r.status_code == 200
            assert r.headers["x-shopify-api-version"] == "2025-01"
            assert r.headers["x-shopify-shop-api-call-limit"].endswith("/40")
            seen += [o["id"] for o in r.json()["orders"]]
            url = r.links.get("next", {}).get("url")
            if url:
                bad = await v.get(url + "&status=any")
                assert bad.status_code == 400  # page_info takes only limit and fields
        assert seen == sorted(emu.orders)

    run(test)


def test_rest_leaky_bucket_answers_429_with_retry_after() -> None:
    async def test(stack: contextlib.AsyncExitStack) -> None:
        app = make_app(rest_bucket_size=3, rest_leak_rate=0.5)
        v = await _vendor(stack, app)
        statuses = [(await v.get("/admin/api/2025-01/orders.json")).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        r = await v.get("/admin/api/2025-01/orders.json")
        assert r.status_code == 429 and float(r.headers["retry-after"]) >= 1

    run(test)


def test_injected_503_is_retryable_and_graphql_errors_are_shopify_shaped() -> None:
    async def test(stack: contextlib.AsyncExitStack) -> None:
        app = make_app()
        c = await connect(stack, app)
        v = await _vendor(stack, app)
        await v.post("/_emulator/faults", json={"status": 503, "count": 1, "path": "/admin/api"})
        with pytest.raises(VendorError) as err:
            await c.check()
        assert err.value.outcome is Outcome.RETRYABLE
        assert "Shopify shop" in await c.check()
        r = await v.post("/admin/api/2025-01/graphql.json", json={"query": "{ shopp { name } }"})
        assert r.status_code == 200
        assert r.json()["errors"][0]["extensions"]["code"] == "undefinedField"
        with pytest.raises(VendorError) as err:
            await c.api.execute("{ shopp { name } }")
        assert err.value.outcome is Outcome.PERMANENT
        r = await v.post("/admin/api/2025-01/graphql.json", json={"query": SHOP})
        assert r.json()["extensions"]["cost"]["throttleStatus"]["maximumAvailable"] == 1000.0

    run(test)


def test_scenario_routes_drive_orders_and_state_shows_them() -> None:
    async def test(stack: contextlib.AsyncExitStack) -> None:
        app = make_app()
        v = await _vendor(stack, app)
        r = await v.post("/_emulator/orders", json=order_spec(("GHOST-1", 2), ("TEE-BLK-S", 1)))
        order = r.json()["order"]
        assert order["line_items"][0]["sku"] == "GHOST-1"  # unknown SKU: a custom line
        assert order["total_price"] == "44.90"  # 2 x 10.00 + 19.90 + 5.00 shipping
        r = await v.post(f"/_emulator/orders/{order['id']}/cancel")
        assert r.json()["order"]["cancelled_at"]
        assert (await v.post(f"/_emulator/orders/{order['id']}/cancel")).status_code == 422
        await v.post("/_emulator/inventory", json={"sku": "CAP-NVY", "available": 7, "on_hand": 9})
        state = (await v.get("/_emulator/state")).json()
        assert state["counts"]["orders"] == 1 and state["orders"][0]["cancelled"]
        assert state["inventory"]["CAP-NVY"] == {"available": 7, "on_hand": 9}
        assert [e["topic"] for e in app.state.emulator.events] == [
            "orders/create",
            "orders/cancelled",
        ]

    run(test)
