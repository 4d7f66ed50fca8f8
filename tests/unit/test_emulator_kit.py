"""The emulator kit: injected faults, control routes, webhook delivery like a vendor."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from crossdock.emulators.kit import (
    Fault,
    FaultMiddleware,
    Faults,
    WebhookDelivery,
    WebhookSender,
    control_routes,
)

pytestmark = pytest.mark.anyio


class Emulator:
    """A tiny vendor: POST /orders creates an order; GET /orders lists them."""

    def __init__(self, seed: int | None = 7) -> None:
        self.orders: list[dict[str, Any]] = []
        self.resets = 0
        self.faults = Faults(seed=seed)
        self.webhooks = WebhookSender()

        async def create(request: Request) -> Response:
            self.orders.append(await request.json())
            return JSONResponse({"id": len(self.orders)}, 201)

        async def listing(request: Request) -> Response:
            return JSONResponse({"orders": self.orders})

        async def other(request: Request) -> Response:
            return JSONResponse({"ok": True})

        def reset() -> None:
            self.orders.clear()
            self.resets += 1

        app = Starlette(
            routes=[
                Route("/orders", create, methods=["POST"]),
                Route("/orders", listing, methods=["GET"]),
                Route("/products", other),
                *control_routes(
                    self.faults, lambda: {"orders": len(self.orders)}, reset, self.webhooks
                ),
            ]
        )
        self.app = FaultMiddleware(app, self.faults)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://emu.test"
        )


# --- Faults ------------------------------------------------------------------------------


def test_fault_matches_by_path_prefix_and_method() -> None:
    faults = Faults()
    faults.add({"status": 503, "path": "/orders", "methods": ["post"]})
    assert faults.match("GET", "/orders") is None
    assert faults.match("POST", "/products") is None
    rule = faults.match("POST", "/orders/1/fulfil")
    assert rule is not None and rule.status == 503 and rule.hits == 1
    assert faults.injected == 1


def test_fault_count_limits_how_often_it_fires() -> None:
    faults = Faults()
    faults.add({"status": 500, "count": 2})
    fired = [faults.match("GET", "/x") is not None for _ in range(4)]
    assert fired == [True, True, False, False]


def test_fault_probability_is_seeded_and_roughly_right() -> None:
    def run(seed: int) -> list[bool]:
        faults = Faults(seed=seed)
        faults.add({"status": 503, "probability": 0.3})
        return [faults.match("GET", "/x") is not None for _ in range(400)]

    a = run(11)
    assert a == run(11)  # deterministic for a seed
    assert 80 <= sum(a) <= 160
    never = Faults(seed=1)
    never.add({"status": 503, "probability": 0.0})
    assert all(never.match("GET", "/x") is None for _ in range(50))


def test_control_paths_are_never_faulted() -> None:
    faults = Faults()
    faults.add({"status": 503})
    assert faults.match("GET", "/_emulator/faults") is None
    assert faults.match("GET", "/x") is not None


def test_first_matching_rule_wins() -> None:
    faults = Faults()
    faults.add({"status": 429, "path": "/orders", "count": 1})
    faults.add({"status": 500})
    first = faults.match("GET", "/orders")
    second = faults.match("GET", "/orders")
    assert first is not None and first.status == 429
    assert second is not None and second.status == 500


@pytest.mark.parametrize(
    "data",
    [
        {"kind": "explode"},
        {"status": 200},
        {"status": "503"},
        {"count": "many"},
        {"probability": None},
        {"methods": [1, 2]},
        {"retry_after": "soon"},
    ],
)
def test_bad_fault_definitions_raise_value_error(data: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Fault.from_dict(1, data)


def test_fault_json_form_round_trips() -> None:
    rule = Fault.from_dict(3, {"kind": "timeout", "path": "/o", "methods": "GET", "delay": 2})
    d = rule.to_dict()
    assert d["id"] == 3 and d["kind"] == "timeout" and d["methods"] == ["GET"]
    assert d["delay"] == 2.0 and d["status"] is None
    assert Fault.from_dict(4, {"kind": "timeout"}).delay == 30.0


# --- FaultMiddleware ---------------------------------------------------------------------


async def test_injected_status_with_retry_after_then_normal_answers() -> None:
    emu = Emulator()
    emu.faults.add({"status": 429, "retry_after": 2, "count": 1})
    emu.faults.add({"status": 503, "retry_after": 2.5, "count": 1})
    async with emu.client() as http:
        r1 = await http.get("/products")
        r2 = await http.get("/products")
        r3 = await http.get("/products")
    assert (r1.status_code, r1.headers["retry-after"]) == (429, "2")
    assert (r2.status_code, r2.headers["retry-after"]) == (503, "3")  # rounded up, never early
    assert "injected fault" in r1.json()["errors"]
    assert r3.status_code == 200 and "retry-after" not in r3.headers


async def test_fault_without_after_effect_does_not_apply_the_request() -> None:
    emu = Emulator()
    emu.faults.add({"status": 500, "path": "/orders", "methods": ["POST"], "count": 1})
    async with emu.client() as http:
        r = await http.post("/orders", json={"n": 1})
        assert r.status_code == 500
        assert emu.orders == []
        r = await http.post("/orders", json={"n": 2})
        assert r.status_code == 201
    assert emu.orders == [{"n": 2}]


async def test_after_effect_applies_the_request_then_fails() -> None:
    emu = Emulator()
    emu.faults.add({"status": 502, "path": "/orders", "methods": ["POST"], "after_effect": True})
    async with emu.client() as http:
        r = await http.post("/orders", json={"n": 1})
    assert r.status_code == 502
    assert emu.orders == [{"n": 1}]  # the vendor applied it; the answer was lost


async def test_timeout_fault_delays_the_answer() -> None:
    emu = Emulator()
    emu.faults.add({"kind": "timeout", "delay": 0.08, "count": 1, "after_effect": True})
    async with emu.client() as http:
        t0 = time.perf_counter()
        r = await http.post("/orders", json={"n": 1})
        took = time.perf_counter() - t0
    assert took >= 0.07
    assert r.status_code >= 500
    assert emu.orders == [{"n": 1}]


async def test_timeout_fault_makes_a_real_client_time_out() -> None:
    """Over a real socket the client's read timeout fires while the fault delays."""
    import socket

    import uvicorn

    emu = Emulator()
    emu.faults.add({"kind": "timeout", "delay": 0.5, "count": 1})
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(emu.app, log_level="error", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            with pytest.raises(httpx.ReadTimeout):
                await http.get("/products", timeout=0.1)
            assert (await http.get("/products")).status_code == 200
    finally:
        server.should_exit = True
        await task
        sock.close()


# --- control routes ----------------------------------------------------------------------


async def test_control_routes_add_list_clear_faults() -> None:
    emu = Emulator()
    async with emu.client() as http:
        r = await http.post("/_emulator/faults", json={"status": 503, "path": "/orders"})
        assert r.status_code == 201
        assert r.json()["id"] == 1 and r.json()["status"] == 503
        r = await http.post("/_emulator/faults", json={"kind": "timeout", "delay": 1})
        assert r.json()["id"] == 2
        listed = (await http.get("/_emulator/faults")).json()["faults"]
        assert [f["id"] for f in listed] == [1, 2]
        assert (await http.get("/orders")).status_code == 503
        hits = (await http.get("/_emulator/faults")).json()["faults"][0]["hits"]
        assert hits == 1
        r = await http.delete("/_emulator/faults")
        assert r.json() == {"faults": []}
        assert (await http.get("/orders")).status_code == 200


async def test_control_routes_reject_bad_faults() -> None:
    emu = Emulator()
    async with emu.client() as http:
        r = await http.post("/_emulator/faults", json={"status": 200})
        assert r.status_code == 400 and "status" in r.json()["error"]
        r = await http.post("/_emulator/faults", content=b"not json")
        assert r.status_code == 400
        r = await http.post("/_emulator/faults", json=[{"status": 503}])
        assert r.status_code == 400
        r = await http.post("/_emulator/faults", json={"probability": None})
        assert r.status_code == 400
    assert emu.faults.rules == []


async def test_state_and_reset() -> None:
    emu = Emulator()
    async with emu.client() as http:
        await http.post("/orders", json={"n": 1})
        assert (await http.get("/_emulator/state")).json() == {"orders": 1}
        await http.post("/_emulator/faults", json={"status": 503})
        r = await http.post("/_emulator/reset")  # control routes are never faulted
        assert r.json() == {"reset": True}
        assert (await http.get("/_emulator/state")).json() == {"orders": 0}
        assert (await http.get("/_emulator/faults")).json() == {"faults": []}
        assert (await http.get("/_emulator/webhooks")).json() == {"deliveries": []}
    assert emu.resets == 1


async def test_reset_may_be_async() -> None:
    calls: list[str] = []

    async def reset() -> None:
        await asyncio.sleep(0)
        calls.append("reset")

    app = Starlette(routes=control_routes(Faults(), dict, reset))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://e"
    ) as http:
        assert (await http.post("/_emulator/reset")).status_code == 200
        assert (await http.get("/_emulator/webhooks")).json() == {"deliveries": []}
    assert calls == ["reset"]


# --- WebhookSender -----------------------------------------------------------------------


class Receiver:
    """A hub stand-in that fails the first ``failures`` deliveries."""

    def __init__(self, failures: int = 0, status: int = 500) -> None:
        self.failures = failures
        self.status = status
        self.got: list[tuple[float, bytes, dict[str, str]]] = []

        async def hook(request: Request) -> Response:
            self.got.append((time.perf_counter(), await request.body(), dict(request.headers)))
            if len(self.got) <= self.failures:
                return JSONResponse({"error": "busy"}, self.status)
            return JSONResponse({"ok": True})

        self.app = Starlette(routes=[Route("/hooks/shop", hook, methods=["POST"])])

    def http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app))


def _delivery(did: str = "d1") -> WebhookDelivery:
    return WebhookDelivery(
        id=did,
        url="http://hub.test/hooks/shop",
        topic="orders/create",
        body=b'{"id": 1}',
        headers={"X-Shopify-Hmac-Sha256": "sig", "X-Shopify-Topic": "orders/create"},
    )


async def test_webhook_is_retried_on_the_scaled_schedule_until_2xx() -> None:
    receiver = Receiver(failures=2)
    async with receiver.http() as http:
        sender = WebhookSender(retry_delays=(1, 3, 30), time_scale=0.02, client=http)
        t0 = time.perf_counter()
        sender.send(_delivery())
        await sender.drain(timeout=5)
    d = sender.deliveries[0]
    assert d.delivered and d.attempts == 3 and d.statuses == [500, 500, 200]
    times = [t for t, _, _ in receiver.got]
    assert times[1] - times[0] >= 0.018  # 1 s scaled
    assert times[2] - times[1] >= 0.058  # 3 s scaled
    assert times[2] - t0 < 0.5  # 30 s scaled was never needed
    assert sender.summary()[0] == {
        "id": "d1",
        "url": "http://hub.test/hooks/shop",
        "topic": "orders/create",
        "attempts": 3,
        "statuses": [500, 500, 200],
        "delivered": True,
        "duplicate_of": None,
    }


async def test_webhook_gives_up_after_the_schedule() -> None:
    receiver = Receiver(failures=100, status=503)
    async with receiver.http() as http:
        sender = WebhookSender(retry_delays=(1, 1), time_scale=0.01, client=http)
        sender.send(_delivery())
        await sender.drain(timeout=5)
    d = sender.deliveries[0]
    assert not d.delivered and d.attempts == 3 and d.statuses == [503, 503, 503]


async def test_unreachable_receiver_is_recorded_by_error_name() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as http:
        sender = WebhookSender(retry_delays=(1,), time_scale=0.01, client=http)
        sender.send(_delivery())
        await sender.drain(timeout=5)
    assert sender.deliveries[0].statuses == ["ConnectError", "ConnectError"]


async def test_duplicate_is_sent_with_the_same_body_and_headers() -> None:
    receiver = Receiver()
    async with receiver.http() as http:
        sender = WebhookSender(duplicate_probability=1.0, client=http)
        sender.send(_delivery())
        await sender.drain(timeout=5)
    assert len(receiver.got) == 2
    (_, body1, h1), (_, body2, h2) = receiver.got
    assert body1 == body2 == b'{"id": 1}'
    assert h1["x-shopify-hmac-sha256"] == h2["x-shopify-hmac-sha256"] == "sig"
    assert h1["x-shopify-topic"] == h2["x-shopify-topic"]
    original, dup = sender.deliveries
    assert dup.duplicate_of == original.id and dup.delivered
    assert dup.id == "d1-dup"


async def test_no_duplicate_by_default() -> None:
    receiver = Receiver()
    async with receiver.http() as http:
        sender = WebhookSender(client=http)
        for i in range(5):
            sender.send(_delivery(f"d{i}"))
        await sender.drain(timeout=5)
    assert len(receiver.got) == 5
    assert all(d.duplicate_of is None for d in sender.deliveries)


async def test_send_returns_at_once_and_drain_waits() -> None:
    receiver = Receiver(failures=1)
    async with receiver.http() as http:
        sender = WebhookSender(retry_delays=(5,), time_scale=0.02, client=http)
        sender.send(_delivery())
        assert sender.deliveries[0].attempts == 0  # queued, not yet sent
        await sender.drain(timeout=5)
        assert sender.deliveries[0].delivered
        assert sender.deliveries[0].attempts == 2


async def test_drain_gives_up_at_its_timeout_and_close_cancels() -> None:
    receiver = Receiver(failures=1)
    async with receiver.http() as http:
        sender = WebhookSender(retry_delays=(60,), client=http)
        sender.send(_delivery())
        t0 = time.perf_counter()
        await sender.drain(timeout=0.1)
        assert time.perf_counter() - t0 < 1
        assert not sender.deliveries[0].delivered
        await sender.close()
    assert sender.deliveries[0].attempts == 1


async def test_reset_forgets_and_cancels_deliveries() -> None:
    receiver = Receiver(failures=1)
    async with receiver.http() as http:
        sender = WebhookSender(retry_delays=(60,), client=http)
        faults = Faults()
        app = Starlette(routes=control_routes(faults, dict, lambda: None, sender))
        sender.send(_delivery())
        await asyncio.sleep(0.05)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://e"
        ) as control:
            listed = (await control.get("/_emulator/webhooks")).json()["deliveries"]
            assert [d["id"] for d in listed] == ["d1"]
            await control.post("/_emulator/reset")
            assert (await control.get("/_emulator/webhooks")).json() == {"deliveries": []}
        await sender.drain(timeout=1)
    assert len(receiver.got) == 1  # the pending retry was cancelled
