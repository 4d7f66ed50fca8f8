"""The Odoo connector against its emulator, over JSON-2 and over JSON-RPC."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest

from crossdock.connectors.odoo import OdooConnector
from crossdock.connectors.odoo.transport import AutoTransport
from crossdock.emulators.odoo import OdooEmulator, create_app
from crossdock.model import InventoryLevel, Invoice
from crossdock.pipeline.outcome import Outcome
from crossdock.sdk import ActionContext, ActionRefused, Cursor, VendorError, recording, run_action
from crossdock.sdk.conformance import ConformanceHarness, ConnectorConformance, WriteCase

API_KEY = "odoo-test-key-5f1c9a"
DATABASE = "acme"
LOGIN = "crossdock@acme.test"


def order_record(
    oid: str = "820982911946",
    *,
    email: str | None = "ada@example.com",
    skus: tuple[str, ...] = ("TEE-BLK-S", "MUG-WHT"),
    number: str | None = None,
) -> dict[str, Any]:
    """A canonical Order as the Shopify connector hands it on."""
    price = {"TEE-BLK-S": "19.90", "MUG-WHT": "12.50"}
    lines = [
        {
            "id": f"{oid}-{i}",
            "sku": sku,
            "name": f"Item {sku}",
            "quantity": i + 1,
            "unit_price": {"amount": price.get(sku, "10.00"), "currency": "EUR"},
        }
        for i, sku in enumerate(skus)
    ]
    total = sum(
        (Decimal(ln["unit_price"]["amount"]) * ln["quantity"] for ln in lines), Decimal("0")
    )
    customer = {"first_name": "Ada", "last_name": "Lovelace"}
    if email:
        customer["email"] = email
    return {
        "id": oid,
        "number": number or f"#{oid[-4:]}",
        "source": {"connection": "shopify/acme", "external_id": oid},
        "status": "confirmed",
        "customer": customer,
        "billing_address": {
            "name": "Ada Lovelace",
            "line1": "12 Analytical St",
            "city": "London",
            "postal_code": "N1 9GU",
            "country_code": "GB",
        },
        "lines": lines,
        "totals": {
            "subtotal": {"amount": str(total), "currency": "EUR"},
            "tax": {"amount": "0.00", "currency": "EUR"},
            "total": {"amount": str(total), "currency": "EUR"},
        },
        "created_at": "2026-05-01T10:00:00Z",
    }


def ctx(record: dict[str, Any], key: str = "odoo:order:1") -> ActionContext:
    return ActionContext(record=record, idempotency_key=key, record_key=record["id"])


class TimeoutTransport(httpx.ASGITransport):
    """In-process transport that gives up after ``timeout`` seconds like a socket would
    (``httpx.ASGITransport`` itself has no read timeout)."""

    def __init__(self, app: Any, timeout: float) -> None:
        super().__init__(app=app)
        self.timeout = timeout

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await asyncio.wait_for(super().handle_async_request(request), self.timeout)
        except TimeoutError:
            raise httpx.ReadTimeout("timed out waiting for Odoo", request=request) from None


@contextlib.asynccontextmanager
async def odoo(
    version: int = 19,
    api: str = "json2",
    *,
    key: str = API_KEY,
    read_timeout: float | None = None,
    **settings: Any,
) -> AsyncIterator[tuple[OdooConnector, OdooEmulator]]:
    app = create_app(version=version, api_key=API_KEY, database=DATABASE, login=LOGIN)
    transport = (
        TimeoutTransport(app, read_timeout) if read_timeout else httpx.ASGITransport(app=app)
    )
    async with httpx.AsyncClient(transport=transport, base_url="http://vendor") as http:
        conn = OdooConnector(
            {
                "base_url": "http://vendor",
                "database": DATABASE,
                "api_key": key,
                "login": LOGIN,
                "api": api,
                **settings,
            },
            http=http,
            connection="odoo/acme",
        )
        yield conn, app.state.emulator


def run(test: Callable[..., Awaitable[None]], *args: Any, **kwargs: Any) -> None:
    async def main() -> None:
        async with odoo(*args, **kwargs) as (conn, emu):
            await test(conn, emu)

    asyncio.run(main())


# --- conformance, once per API --------------------------------------------------------------


class _OdooConformance(ConnectorConformance):
    connector_class = OdooConnector
    version = 19
    api = "json2"

    async def make_harness(self, stack: contextlib.AsyncExitStack) -> ConformanceHarness:
        conn, emu = await stack.enter_async_context(odoo(self.version, self.api))

        async def touch(stream: str) -> None:
            emu.set_stock("CAP-NVY", 280.0, 4.0)

        def invoices() -> int:
            return sum(1 for i in emu.invoices() if i["state"] == "posted")

        def orders() -> int:
            return sum(1 for o in emu.sale_orders() if o["state"] == "sale")

        return ConformanceHarness(
            connector=conn,
            settings={
                "base_url": "http://vendor",
                "database": DATABASE,
                "api_key": API_KEY,
                "login": LOGIN,
                "api": self.api,
            },
            touch=touch,
            writes=[
                WriteCase("create_sale_order", ctx(order_record("1001")), orders),
                WriteCase("create_invoice", ctx(order_record("1002"), "odoo:inv:1002"), invoices),
            ],
        )


class TestOdooJson2Conformance(_OdooConformance):
    """Odoo 19 spoken to over JSON-2."""


class TestOdooJsonRpcFallbackConformance(_OdooConformance):
    """Odoo 17 (no /json/2) with ``api: auto``: the connector falls back to JSON-RPC."""

    version = 17
    api = "auto"


# --- actions --------------------------------------------------------------------------------


@pytest.mark.parametrize(("version", "api"), [(19, "json2"), (17, "jsonrpc")])
def test_unknown_sku_becomes_action_refused_with_plain_reason(version: int, api: str) -> None:
    async def test(conn: OdooConnector, emu: OdooEmulator) -> None:
        record = order_record(skus=("TEE-BLK-S", "GHOST-1"))
        with pytest.raises(ActionRefused) as refused:
            await conn.actions["create_sale_order"].perform(ctx(record))
        assert refused.value.category == "unknown_sku"
        assert "Odoo has no product with internal reference GHOST-1" in refused.value.reason
        assert "Internal Reference 'GHOST-1'" in refused.value.fix
        cl, _ = await run_action(conn.actions["create_invoice"], ctx(record))
        assert (cl.outcome, cl.category) == (Outcome.PERMANENT, "unknown_sku")
        assert emu.sale_orders() == [] and emu.partners() == []

    run(test, version, api)


def test_create_sale_order_confirms_order_with_lines_and_refs() -> None:
    async def test(conn: OdooConnector, emu: OdooEmulator) -> None:
        record = order_record("5501", number="#5501")
        _, result = await run_action(conn.actions["create_sale_order"], ctx(record))
        assert result is not None
        [so] = emu.sale_orders()
        assert result.external_id == str(so["id"])
        assert so["state"] == "sale"
        assert so["client_order_ref"] == "#5501"
        assert so["origin"] == "crossdock:shopify/acme:5501"
        assert so["lines"] == 2
        assert so["amount_total"] == pytest.approx(19.90 + 2 * 12.50)

    run(test)


def test_create_invoice_twice_makes_one_sale_order_and_one_posted_invoice() -> None:
    async def test(conn: OdooConnector, emu: OdooEmulator) -> None:
        action = conn.actions["create_invoice"]
        record = order_record("7001", number="#7001")
        first, r1 = await run_action(action, ctx(record))
        second, r2 = await run_action(action, ctx(record, "another-key"))
        assert first.outcome is second.outcome is Outcome.SUCCESS
        assert r1 is not None and r2 is not None
        assert r1.external_id == r2.external_id
        counts = emu.state()["counts"]
        assert counts["sale_orders"] == counts["confirmed_sale_orders"] == 1
        assert counts["invoices"] == counts["posted_invoices"] == 1
        invoice = Invoice.model_validate(r1.record)
        [move] = emu.invoices()
        assert invoice.number == move["name"]
        assert invoice.number.startswith("INV/") and invoice.number.endswith("/00001")
        assert invoice.order is not None and invoice.order.id == "7001"
        assert invoice.order.number == "#7001"
        assert move["ref"] == "#7001" and move["origin"] == emu.sale_orders()[0]["name"]
        assert [(ln.sku, ln.quantity) for ln in invoice.lines] == [
            ("TEE-BLK-S", Decimal("1")),
            ("MUG-WHT", Decimal("2")),
        ]
        assert invoice.totals.total.amount == Decimal("44.90")
        assert invoice.customer is not None and invoice.customer.email == "ada@example.com"

    run(test)


def test_create_invoice_after_create_sale_order_reuses_the_sale_order() -> None:
    async def test(conn: OdooConnector, emu: OdooEmulator) -> None:
        record = order_record("7101")
        _, so = await run_action(conn.actions["create_sale_order"], ctx(record, "k-so"))
        _, inv = await run_action(conn.actions["create_invoice"], ctx(record, "k-inv"))
        assert so is not None and inv is not None
        assert len(emu.sale_orders()) == 1 and len(emu.invoices()) == 1

    run(test, 17, "jsonrpc")


def test_invoice_post_answer_lost_after_effect_is_verified_by_lookup() -> None:
    async def test(conn: OdooConnector, emu: OdooEmulator) -> None:
        emu.faults.add(
            {
                "kind": "timeout",
                "delay": 5,
                "after_effect": True,
                "path": "/json/2/account.move/action_post",
                "count": 1,
            }
        )
        record = order_record("7201")
        cl, result = await run_action(conn.actions["create_invoice"], ctx(record))
        assert (cl.outcome, cl.category) == (Outcome.SUCCESS, "verified")
        assert result is not None and result.verified
        [move] = emu.invoices()
        assert result.external_id == str(move["id"]) and move["state"] == "posted"
        cl2, again = await run_action(conn.actions["create_invoice"], ctx(record))
        assert cl2.outcome is Outcome.SUCCESS and again is not None
        assert again.external_id == result.external_id
        counts = emu.state()["counts"]
        assert (counts["sale_orders"], counts["invoices"], counts["posted_invoices"]) == (1, 1, 1)

    run(test, read_timeout=0.3)


def test_invoice_create_answer_lost_leaves_a_draft_that_the_retry_posts() -> None:
    async def test(conn: OdooConnector, emu: OdooEmulator) -> None:
        emu.faults.add(
            {
                "kind": "timeout",
                "delay": 5,
                "after_effect": True,
                "path": "/json/2/account.move/create",
                "count": 1,
            }
        )
        action = conn.actions["create_invoice"]
        record = order_record("7301")
        cl, _ = await run_action(action, ctx(record))
        # the draft exists, but nothing was posted: not a success, safe to send again
        assert cl.outcome is Outcome.RETRYABLE
        assert [i["state"] for i in emu.invoices()] == ["draft"]
        cl, result = await run_action(action, ctx(record))
        assert cl.outcome is Outcome.SUCCESS and result is not None
        assert [i["state"] for i in emu.invoices()] == ["posted"]
        assert len(emu.sale_orders()) == 1

    run(test, read_timeout=0.3)


def test_sale_order_answer_lost_is_verified_by_lookup() -> None:
    async def test(conn: OdooConnector, emu: OdooEmulator) -> None:
        emu.faults.add(
            {
                "kind": "timeout",
                "delay": 5,
                "after_effect": True,
                "path": "/json/2/sale.order/action_confirm",
                "count": 1,
            }
        )
        cl, result = await run_action(conn.actions["create_sale_order"], ctx(order_record("7401")))
        assert cl.category == "verified" and result is not None
        assert [o["state"] for o in emu.sale_orders()] == ["sale"]

    run(test, read_timeout=0.3)


def test_partner_is_reused_across_orders_with_the_same_email() -> None:
    async def test(conn: OdooConnector, emu: OdooEmulator) -> None:
        action = conn.actions["create_sale_order"]
        await action.perform(ctx(order_record("8001", email="grace@example.com")))
        await action.perform(ctx(order_record("8002", email="GRACE@example.com")))
        await action.perform(ctx(order_record("8003", email="linus@example.com")))
        partners = emu.partners()
        assert sorted(p["email"] for p in partners) == ["grace@example.com", "linus@example.com"]
        by_order = {o["client_order_ref"]: o["partner_id"] for o in emu.sale_orders()}
        assert by_order["#8001"] == by_order["#8002"] != by_order["#8003"]

    run(test)


def test_partner_without_email_is_found_by_name() -> None:
    async def test(conn: OdooConnector, emu: OdooEmulator) -> None:
        action = conn.actions["create_sale_order"]
        await action.perform(ctx(order_record("8101", email=None)))
        await action.perform(ctx(order_record("8102", email=None)))
        assert [p["name"] for p in emu.partners()] == ["Ada Lovelace"]

    run(test, 17, "jsonrpc")


def test_tax_mapping_sets_line_taxes_and_unmapped_tax_is_refused() -> None:
    async def test(conn: OdooConnector, emu: OdooEmulator) -> None:
        record = order_record("8201", skus=("TEE-BLK-S",))
        tax = {"title": "VAT 20%", "rate": "0.2", "amount": {"amount": "3.98", "currency": "EUR"}}
        record["lines"][0]["tax_lines"] = [tax]
        _, result = await run_action(conn.actions["create_invoice"], ctx(record))
        assert result is not None
        assert result.record["totals"]["tax"]["amount"] == "3.98"
        other = order_record("8202", skus=("TEE-BLK-S",))
        other["lines"][0]["tax_lines"] = [{**tax, "title": "GST", "rate": "0.07"}]
        with pytest.raises(ActionRefused) as refused:
            await conn.actions["create_sale_order"].perform(ctx(other))
        assert refused.value.category == "lookup" and "GST" in refused.value.reason

    run(test, tax_map={"VAT 20%": 1})


def test_order_without_any_customer_is_refused() -> None:
    async def test(conn: OdooConnector, emu: OdooEmulator) -> None:
        record = order_record("8301", email=None)
        record["customer"] = None
        record.pop("billing_address")
        with pytest.raises(ActionRefused) as refused:
            await conn.actions["create_sale_order"].perform(ctx(record))
        assert refused.value.category == "validation"
        assert "no customer email or name" in refused.value.reason

    run(test)


# --- the two APIs on the wire ---------------------------------------------------------------


def test_json2_sends_bearer_database_header_and_named_args() -> None:
    async def test(conn: OdooConnector, emu: OdooEmulator) -> None:
        with recording() as rec:
            await conn.actions["create_sale_order"].perform(ctx(order_record("9001")))
        assert rec.exchanges and all("/json/2/" in ex.url for ex in rec.exchanges)
        assert all(API_KEY not in repr(ex) for ex in rec.exchanges)
        calls = [r for r in emu.requests if r["api"] == "json2"]
        assert calls and all(r["auth_scheme"] == "bearer" for r in calls)
        assert all(r["database_header"] == DATABASE for r in calls)
        create = next(r for r in calls if (r["model"], r["method"]) == ("sale.order", "create"))
        [vals] = create["body"]["vals_list"]
        assert vals["client_order_ref"] == "#9001"
        assert vals["order_line"][0][:2] == [0, 0]
        assert vals["order_line"][0][2]["product_uom_qty"] == 1
        search = next(r for r in calls if r["method"] == "search_read")
        assert set(search["body"]) >= {"domain", "fields"}
        confirm = next(r for r in calls if r["method"] == "action_confirm")
        assert confirm["body"] == {"ids": [emu.sale_orders()[0]["id"]]}
        assert not [r for r in emu.requests if r["api"] == "jsonrpc"]

    run(test)


def test_jsonrpc_uses_execute_kw_envelope_after_authenticate() -> None:
    async def test(conn: OdooConnector, emu: OdooEmulator) -> None:
        with recording() as rec:
            await conn.actions["create_sale_order"].perform(ctx(order_record("9101")))
        assert all(ex.url.endswith("/jsonrpc") for ex in rec.exchanges)
        assert all(API_KEY not in repr(ex) for ex in rec.exchanges)
        calls = emu.requests
        assert all(r["api"] == "jsonrpc" for r in calls)
        assert all(r["envelope"]["jsonrpc"] == "2.0" for r in calls)
        assert all(r["envelope"]["method"] == "call" for r in calls)
        assert len({r["envelope"]["id"] for r in calls}) == len(calls)
        assert (calls[0]["service"], calls[0]["method"]) == ("common", "authenticate")
        rest = calls[1:]
        assert rest and all((r["service"], r["method"]) == ("object", "execute_kw") for r in rest)
        assert all(r["args_count"] == 7 for r in rest)
        assert ("sale.order", "action_confirm") in {(r["model"], r["model_method"]) for r in rest}
        # authenticate is asked once per connection
        await conn.actions["create_sale_order"].perform(ctx(order_record("9102")))
        assert sum(1 for r in emu.requests if r["method"] == "authenticate") == 1

    run(test, 19, "jsonrpc")


def test_auto_falls_back_to_jsonrpc_on_404_and_remembers_the_choice() -> None:
    async def test(conn: OdooConnector, emu: OdooEmulator) -> None:
        assert isinstance(conn.transport, AutoTransport)
        text = await conn.check()
        assert "JSON-RPC" in text and "deprecated" in text
        assert conn.transport.api == "jsonrpc"
        await conn.actions["create_sale_order"].perform(ctx(order_record("9201")))
        await conn.check()
        probes = [r for r in emu.requests if r["api"] == "json2"]
        assert probes == []  # version 17 has no /json/2 route at all: 404 before logging
        assert emu.sale_orders()[0]["state"] == "sale"

    run(test, 17, "auto")


def test_auto_prefers_json2_on_odoo_19() -> None:
    async def test(conn: OdooConnector, emu: OdooEmulator) -> None:
        text = await conn.check()
        assert "JSON-2" in text and f"'{DATABASE}'" in text
        assert conn.transport.api == "json2"
        assert not [r for r in emu.requests if r["api"] == "jsonrpc"]

    run(test, 19, "auto")


def test_auto_does_not_fall_back_on_a_bad_api_key() -> None:
    async def test(conn: OdooConnector, emu: OdooEmulator) -> None:
        with pytest.raises(VendorError) as err:
            await conn.check()
        assert err.value.classified.category == "auth"
        assert conn.transport.api == "auto"

    run(test, 19, "auto", key="wrong-key")


def test_bad_api_key_on_json2_is_an_auth_exception_with_the_fix() -> None:
    async def test(conn: OdooConnector, emu: OdooEmulator) -> None:
        cl, _ = await run_action(conn.actions["create_sale_order"], ctx(order_record()))
        assert (cl.outcome, cl.category) == (Outcome.PERMANENT, "auth")
        assert "Invalid apikey" in cl.reason and "New API Key" in cl.fix
        assert "wrong-key" not in cl.reason + cl.fix

    run(test, key="wrong-key")


def test_bad_password_on_jsonrpc_is_an_auth_exception() -> None:
    async def test(conn: OdooConnector, emu: OdooEmulator) -> None:
        cl, _ = await run_action(conn.actions["create_sale_order"], ctx(order_record()))
        assert (cl.outcome, cl.category) == (Outcome.PERMANENT, "auth")
        assert LOGIN in cl.reason and DATABASE in cl.reason

    run(test, 17, "jsonrpc", key="wrong-key")


def test_odoo_validation_error_is_permanent_with_odoos_message() -> None:
    async def test(conn: OdooConnector, emu: OdooEmulator) -> None:
        with pytest.raises(VendorError) as err:
            await conn.transport.call("sale.order", "create", vals_list=[{"origin": "x"}])
        assert err.value.classified.outcome is Outcome.PERMANENT
        assert err.value.classified.category == "validation"
        assert "Customer (partner_id)" in err.value.classified.reason

    run(test, 19, "json2")
    run(test, 17, "jsonrpc")


def test_503_and_429_from_odoo_are_retryable_and_rate_limited() -> None:
    async def test(conn: OdooConnector, emu: OdooEmulator) -> None:
        emu.faults.add({"status": 503, "count": 1})
        cl, _ = await run_action(conn.actions["create_sale_order"], ctx(order_record("9301")))
        assert cl.outcome is Outcome.RETRYABLE
        emu.faults.add({"status": 429, "retry_after": 1, "count": 1})
        cl, _ = await run_action(conn.actions["create_sale_order"], ctx(order_record("9301")))
        assert cl.outcome is Outcome.RATE_LIMITED and cl.retry_after == 1
        assert conn.client.rate.headroom() == 0.0  # the pause is honoured before the next call
        assert emu.sale_orders() == []

    run(test)


# --- stock stream ---------------------------------------------------------------------------


def test_stock_stream_maps_quants_and_pages_with_offset_limit() -> None:
    async def test(conn: OdooConnector, emu: OdooEmulator) -> None:
        emu.set_stock("TEE-BLK-M", 50.0, 8.0)
        stream = conn.streams["stock"]
        cursor = Cursor(stream.initial_cursor, lag_seconds=0)
        events = [ev async for ev in stream.read(cursor)]
        assert len(events) == len(emu.quants())
        pages = [r for r in emu.requests if r["model"] == "stock.quant"]
        assert [r["body"]["offset"] for r in pages] == [0, 5, 10]
        assert all(r["body"]["limit"] == 5 for r in pages)
        by_sku = {e.record["sku"]: InventoryLevel.model_validate(e.record) for e in events}
        tee = by_sku["TEE-BLK-M"]
        assert (tee.on_hand, tee.available, tee.reserved, tee.location) == (50, 42, 8, "WH1")
        assert events[-1].record["sku"] == "TEE-BLK-M"  # written last, read last
        assert [ev async for ev in stream.read(cursor)] == []

    run(test, page_size=5, location_map={"WH/Stock": "WH1"})


# --- emulator -------------------------------------------------------------------------------


def test_emulator_json2_errors_have_odoos_shape_and_status() -> None:
    async def main() -> None:
        app = create_app(api_key=API_KEY)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://vendor"
        ) as c:
            auth = {"Authorization": f"bearer {API_KEY}"}
            r = await c.post("/json/2/res.partner/search", json={"domain": []})
            assert r.status_code == 401
            assert set(r.json()) == {"name", "message", "arguments", "context", "debug"}
            assert r.json()["message"] == "Invalid apikey"
            r = await c.post("/json/2/no.such.model/search", json={}, headers=auth)
            assert r.status_code == 404 and r.json()["name"] == "werkzeug.exceptions.NotFound"
            r = await c.post("/json/2/res.partner/search", json={"bogus": 1}, headers=auth)
            assert r.status_code == 422
            r = await c.post("/json/2/sale.order/action_confirm", json={"ids": [999]}, headers=auth)
            assert r.status_code == 404 and r.json()["name"] == "odoo.exceptions.MissingError"
            r = await c.post("/json/2/res.partner/search_count", json={}, headers=auth)
            assert r.status_code == 200 and r.json() == 0
            r = await c.get("/web/version")
            assert r.json()["version"] == "19.0"

    asyncio.run(main())


def test_emulator_version_17_has_no_json2_but_serves_jsonrpc() -> None:
    async def main() -> None:
        app = create_app(version=17, api_key=API_KEY, database="db", login="bot")
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://vendor"
        ) as c:
            r = await c.post(
                "/json/2/res.partner/search",
                json={},
                headers={"Authorization": f"bearer {API_KEY}"},
            )
            assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")

            async def rpc(service: str, method: str, args: list[Any]) -> Any:
                env = {"service": service, "method": method, "args": args}
                body = {"jsonrpc": "2.0", "method": "call", "params": env, "id": 7}
                resp = await c.post("/jsonrpc", json=body)
                assert resp.status_code == 200 and resp.json()["id"] == 7
                return resp.json()

            assert (await rpc("common", "version", []))["result"]["server_version"] == "17.0"
            assert (await rpc("common", "authenticate", ["db", "bot", "nope", {}]))[
                "result"
            ] is False
            uid = (await rpc("common", "authenticate", ["db", "bot", API_KEY, {}]))["result"]
            denied = await rpc(
                "object", "execute_kw", ["db", uid, "nope", "res.partner", "search", [[]]]
            )
            assert denied["error"]["code"] == 200
            assert denied["error"]["message"] == "Odoo Server Error"
            assert denied["error"]["data"]["name"] == "odoo.exceptions.AccessDenied"
            found = await rpc(
                "object",
                "execute_kw",
                [
                    "db",
                    uid,
                    API_KEY,
                    "product.product",
                    "search_read",
                    [[["default_code", "=ilike", "tee-blk-s"]]],
                    {"fields": ["default_code", "list_price"]},
                ],
            )
            assert found["result"] == [{"id": 1, "default_code": "TEE-BLK-S", "list_price": 19.9}]

    asyncio.run(main())


def test_emulator_domains_support_common_operators() -> None:
    db = create_app().state.emulator.db

    def skus(domain: list[Any]) -> list[str]:
        rows = db.call("product.product", "search_read", None, {"domain": domain})
        return sorted(r["default_code"] for r in rows)

    assert skus([["default_code", "=", "CAP-NVY"]]) == ["CAP-NVY"]
    assert skus([["default_code", "in", ["CAP-NVY", "MUG-WHT", "X"]]]) == ["CAP-NVY", "MUG-WHT"]
    assert skus([["name", "ilike", "hoodie"]]) == ["HOOD-GRY-L", "HOOD-GRY-M"]
    assert skus([["list_price", ">=", 49], ["list_price", "<", 399]]) == [
        "HOOD-GRY-L",
        "HOOD-GRY-M",
    ]
    assert skus(["|", ["default_code", "=", "CAP-NVY"], ["list_price", ">", 300]]) == [
        "ANVIL-50KG",
        "CAP-NVY",
    ]
    assert len(skus([["default_code", "!=", "CAP-NVY"]])) == 11
    assert skus(["!", ["list_price", "<=", 49]]) == ["ANVIL-50KG"]
    quants = db.call(
        "stock.quant", "search_count", None, {"domain": [["location_id.usage", "=", "internal"]]}
    )
    assert quants == 12


def test_emulator_state_reports_orders_invoices_and_counts() -> None:
    async def test(conn: OdooConnector, emu: OdooEmulator) -> None:
        await conn.actions["create_invoice"].perform(ctx(order_record("9901")))
        http = conn.http
        r = await http.post("/_emulator/stock", json={"sku": "CAP-NVY", "quantity": 7})
        assert r.status_code == 200 and r.json()["quantity"] == 7
        app_state = (await http.get("/_emulator/state")).json()
        [so] = app_state["sale_orders"]
        [inv] = app_state["invoices"]
        assert (so["name"], so["state"], so["client_order_ref"]) == ("S00001", "sale", "#9901")
        assert (inv["state"], inv["origin"], inv["amount"]) == ("posted", "S00001", 44.9)
        assert app_state["counts"]["partners"] == 1

    run(test)
