"""The vendor client: one classification per call, every exchange recorded and redacted."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from crossdock.pipeline.outcome import Classified, Outcome
from crossdock.sdk.auth import ApiKeyAuth, BearerAuth
from crossdock.sdk.client import Exchange, VendorClient, recording
from crossdock.sdk.errors import VendorError
from crossdock.sdk.ratelimits import Unlimited
from crossdock.security.redact import REDACTED, Redactor

pytestmark = pytest.mark.anyio

API_KEY = "shpat_0123456789abcdef"
BEARER = "odoo-bearer-token-9876"
CLIENT_SECRET = "client-secret-value-55"


async def _echo(request: Request) -> Response:
    """Answers with everything it received, secrets included (a careless vendor)."""
    body = await request.body()
    return JSONResponse(
        {
            "headers": dict(request.headers),
            "query": dict(request.query_params),
            "body": body.decode(),
            "client_secret": CLIENT_SECRET,
            "echo": f"your key is {API_KEY}",
        },
        headers={"X-Echo": request.headers.get("x-api-key", "")},
    )


async def _status(request: Request) -> Response:
    code = int(request.path_params["code"])
    headers = {"Retry-After": "7"} if code in (429, 503) else {}
    return JSONResponse({"message": f"vendor says {code}"}, code, headers=headers)


async def _invalid(request: Request) -> Response:
    return JSONResponse({"errors": [{"message": "SKU 'ABC-1' does not exist"}]}, 400)


async def _shopify_422(request: Request) -> Response:
    return JSONResponse({"errors": {"title": ["can't be blank"]}}, 422)


async def _plain(request: Request) -> Response:
    return PlainTextResponse("Invalid carrier code", 400)


async def _leaky(request: Request) -> Response:
    return JSONResponse({"message": f"key {API_KEY} is not allowed"}, 403)


async def _soft_fail(request: Request) -> Response:
    return JSONResponse({"ok": False, "error": "duplicate order"}, 200)


APP = Starlette(
    routes=[
        Route("/echo", _echo, methods=["GET", "POST"]),
        Route("/status/{code:int}", _status, methods=["GET", "POST"]),
        Route("/invalid", _invalid, methods=["POST"]),
        Route("/shopify422", _shopify_422, methods=["POST"]),
        Route("/plain", _plain, methods=["POST"]),
        Route("/leaky", _leaky, methods=["GET"]),
        Route("/soft", _soft_fail, methods=["POST"]),
    ]
)


def _client(http: httpx.AsyncClient, **kwargs: Any) -> VendorClient:
    kwargs.setdefault("auth", ApiKeyAuth("X-Api-Key", API_KEY))
    kwargs.setdefault("redactor", Redactor([API_KEY, BEARER, CLIENT_SECRET]))
    return VendorClient(http, connection="shop", base_url="http://vendor.test/", **kwargs)


def _http() -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=APP))


def _flat(ex: Exchange) -> str:
    return repr(dataclasses.asdict(ex))


async def test_2xx_returns_a_vendor_response_with_the_parsed_body() -> None:
    async with _http() as http:
        client = _client(http)
        r = await client.post("/echo", json={"sku": "A-1", "qty": 2}, params={"x": "1"})
    assert r.status == 200
    assert r.body["body"] == '{"sku":"A-1","qty":2}'
    assert r.body["query"] == {"x": "1"}
    assert r.body["headers"]["content-type"] == "application/json"
    assert r.body["headers"]["accept"] == "application/json"
    assert r.body["headers"]["x-api-key"] == API_KEY
    assert client.calls == 1


async def test_base_url_and_paths_join_with_one_slash() -> None:
    async with _http() as http:
        client = _client(http)
        assert client.url("echo") == "http://vendor.test/echo"
        assert client.url("/echo") == "http://vendor.test/echo"
        assert client.url("https://other.test/x") == "https://other.test/x"


async def test_429_is_rate_limited_with_retry_after() -> None:
    async with _http() as http:
        with pytest.raises(VendorError) as err:
            await _client(http).get("/status/429")
    assert err.value.outcome is Outcome.RATE_LIMITED
    assert err.value.classified.retry_after == 7.0
    assert err.value.status == 429


@pytest.mark.parametrize("code", [500, 502, 503, 504, 408])
async def test_5xx_is_retryable(code: int) -> None:
    async with _http() as http:
        with pytest.raises(VendorError) as err:
            await _client(http).get(f"/status/{code}")
    assert err.value.outcome is Outcome.RETRYABLE
    assert err.value.classified.category == "unavailable"
    assert err.value.body == {"message": f"vendor says {code}"}


@pytest.mark.parametrize("code", [401, 403])
async def test_401_and_403_are_permanent_auth(code: int) -> None:
    async with _http() as http:
        with pytest.raises(VendorError) as err:
            await _client(http).get(f"/status/{code}")
    assert err.value.outcome is Outcome.PERMANENT
    assert err.value.classified.category == "auth"
    assert "'shop'" in err.value.classified.fix


async def test_400_is_permanent_rejected_with_the_vendor_message() -> None:
    async with _http() as http:
        with pytest.raises(VendorError) as err:
            await _client(http).post("/invalid", json={})
    cl = err.value.classified
    assert cl.outcome is Outcome.PERMANENT
    assert cl.category == "rejected"
    assert "SKU 'ABC-1' does not exist" in cl.reason


async def test_field_errors_and_plain_text_become_the_detail() -> None:
    async with _http() as http:
        client = _client(http)
        with pytest.raises(VendorError) as err:
            await client.post("/shopify422", json={})
        assert "title: can't be blank" in err.value.classified.reason
        with pytest.raises(VendorError) as err:
            await client.post("/plain", json={})
        assert "Invalid carrier code" in err.value.classified.reason


async def test_404_is_permanent_not_found() -> None:
    async with _http() as http:
        with pytest.raises(VendorError) as err:
            await _client(http).get("/nothing-here")
    assert err.value.classified.category == "not_found"


async def test_a_lookup_404_with_missing_ok_is_an_answer_not_an_error() -> None:
    """A lookup before a create finds nothing: audited as a success (it does not count
    against the connection's error rate or health) and returned with its status."""
    async with _http() as http:
        with recording() as rec:
            resp = await _client(http).get("/nothing-here", missing_ok=True)
        assert resp.status == 404
        assert [x.outcome for x in rec.exchanges] == ["success"]
        with pytest.raises(VendorError):  # any other failure still raises
            await _client(http).get("/status/500", missing_ok=True)


def _raising(exc_type: type[httpx.HTTPError]) -> httpx.AsyncClient:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc_type("simulated", request=request)  # type: ignore[call-arg]

    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


async def test_connect_error_is_retryable_and_recorded_without_status() -> None:
    async with _raising(httpx.ConnectError) as http:
        with recording() as rec, pytest.raises(VendorError) as err:
            await _client(http).get("/orders", params={"since": "2024"})
    assert err.value.outcome is Outcome.RETRYABLE
    assert err.value.classified.category == "unreachable"
    assert err.value.status is None
    (ex,) = rec.exchanges
    assert ex.status is None
    assert ex.outcome == "retryable"
    assert ex.url == "http://vendor.test/orders?since=2024"  # params kept without an answer
    assert ex.response_body == ""


async def test_read_timeout_is_uncertain() -> None:
    async with _raising(httpx.ReadTimeout) as http:
        with pytest.raises(VendorError) as err:
            await _client(http).post("/orders", json={"id": 1})
    assert err.value.outcome is Outcome.UNCERTAIN
    assert err.value.classified.category == "timeout"


async def test_connect_timeout_is_retryable_not_uncertain() -> None:
    async with _raising(httpx.ConnectTimeout) as http:
        with pytest.raises(VendorError) as err:
            await _client(http).post("/orders", json={"id": 1})
    assert err.value.outcome is Outcome.RETRYABLE


async def test_raise_for_outcome_false_returns_the_failed_answer() -> None:
    async with _http() as http:
        r = await _client(http).get("/status/404", raise_for_outcome=False)
    assert r.status == 404
    assert r.body == {"message": "vendor says 404"}


async def test_custom_classify_decides_the_outcome() -> None:
    def classify(response: httpx.Response, body: Any, connection: str) -> Classified:
        if isinstance(body, dict) and body.get("ok") is False:
            return Classified(Outcome.PERMANENT, "duplicate", body["error"], "look")
        return Classified(Outcome.SUCCESS, "ok", "delivered", "")

    async with _http() as http:
        client = _client(http, classify=classify)
        with recording() as rec, pytest.raises(VendorError) as err:
            await client.post("/soft", json={})
        assert err.value.classified.category == "duplicate"
        assert rec.exchanges[0].outcome == "permanent"
        assert rec.exchanges[0].error == "duplicate order"
        # A per-call classify overrides the client's.
        r = await client.post(
            "/soft",
            json={},
            classify=lambda resp, body, conn: Classified(Outcome.SUCCESS, "ok", "", ""),
        )
        assert r.status == 200


async def test_every_exchange_is_recorded_with_secrets_redacted() -> None:
    async with _http() as http:
        client = _client(http)
        with recording() as rec:
            await client.post(
                "/echo",
                json={"password": "hunter22", "note": f"token {API_KEY}"},
                params={"access_token": BEARER},
            )
            with pytest.raises(VendorError):
                await client.get("/leaky")
    assert len(rec.exchanges) == 2
    ok, refused = rec.exchanges
    assert ok.method == "POST" and ok.status == 200 and ok.outcome == "success"
    assert ok.error is None
    assert ok.url.startswith("http://vendor.test/echo?access_token=")
    assert ok.request_headers["x-api-key"] == REDACTED
    assert ok.response_headers["x-echo"] == REDACTED
    assert ok.latency_ms >= 0 and ok.started_at > 0
    for ex in rec.exchanges:
        flat = _flat(ex)
        for secret in (API_KEY, BEARER, CLIENT_SECRET):  # the connection's known secrets
            assert secret not in flat, (secret, flat)
    # A sensitive field we send is hidden by its name, even if it is no known secret.
    assert "hunter22" not in ok.request_body
    assert '"password":"[REDACTED]"' in ok.request_body
    assert refused.status == 403 and refused.outcome == "permanent"
    assert refused.error is not None and REDACTED in refused.error


async def test_bearer_header_is_redacted_in_the_recording() -> None:
    async with _http() as http:
        client = _client(http, auth=BearerAuth(BEARER))
        with recording() as rec:
            await client.get("/echo")
    assert rec.exchanges[0].request_headers["authorization"] == REDACTED
    assert BEARER not in _flat(rec.exchanges[0])


async def test_nothing_is_recorded_outside_a_recording_block() -> None:
    async with _http() as http:
        client = _client(http)
        await client.get("/echo")
        with recording() as rec:
            pass
    assert rec.exchanges == []


async def test_recording_is_per_task() -> None:
    async with _http() as http:
        client = _client(http)

        async def work(tag: str, n: int) -> list[Exchange]:
            with recording() as rec:
                for i in range(n):
                    await client.get("/echo", params={"tag": tag, "i": i})
                    await asyncio.sleep(0)
            return rec.exchanges

        a, b = await asyncio.gather(work("a", 3), work("b", 4))
    assert len(a) == 3 and all("tag=a" in ex.url for ex in a)
    assert len(b) == 4 and all("tag=b" in ex.url for ex in b)


async def test_rate_model_learns_a_429_and_is_asked_before_each_call() -> None:
    now = [100.0]
    rate = Unlimited(clock=lambda: now[0])
    async with _http() as http:
        client = _client(http, rate=rate)
        with pytest.raises(VendorError):
            await client.get("/status/429")
    assert rate.paused_until == 107.0
    assert rate.headroom() == 0.0


async def test_large_bodies_are_truncated_in_the_recording() -> None:
    async def big(request: Request) -> Response:
        return Response(b"x" * (70 * 1024), media_type="text/plain")

    app = Starlette(routes=[Route("/big", big)])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as http:
        client = _client(http)
        with recording() as rec:
            r = await client.get("/big")
    assert len(r.text) == 70 * 1024
    body = rec.exchanges[0].response_body
    assert body.endswith("... [6144 more bytes]")
    assert len(body) < 66 * 1024


async def test_params_merge_into_a_query_the_path_already_has() -> None:
    async with _http() as http:
        r = await _client(http).get("/echo?page_info=abc&limit=3", params={"fields": "id"})
        assert r.body["query"] == {"page_info": "abc", "limit": "3", "fields": "id"}
        r = await _client(http).get("http://vendor.test/echo?page_info=abc", params={})
        assert r.body["query"] == {"page_info": "abc"}
