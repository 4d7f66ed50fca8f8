"""Auth strategies: tokens fetched once, refreshed before expiry, retried once on 401."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from crossdock.pipeline.outcome import Outcome
from crossdock.sdk.auth import (
    ApiKeyAuth,
    BearerAuth,
    HmacRequestSigner,
    OAuth2ClientCredentials,
    OAuth2RefreshToken,
    TokenRequestFailed,
)
from crossdock.sdk.client import VendorClient
from crossdock.sdk.errors import VendorError

pytestmark = pytest.mark.anyio

TOKEN_URL = "https://auth.vendor.test/oauth/token"
API = "https://api.vendor.test"


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Vendor:
    """A token endpoint and an API that accepts only the latest token."""

    def __init__(
        self,
        expires_in: float | None = 3600,
        token_delay: float = 0.0,
        api_delay: float = 0.0,
        rotate_refresh: bool = False,
    ) -> None:
        self.expires_in = expires_in
        self.token_delay = token_delay
        self.api_delay = api_delay
        self.rotate_refresh = rotate_refresh
        self.issued = 0
        self.valid: set[str] = set()
        self.token_forms: list[dict[str, str]] = []
        self.api_tokens: list[str] = []
        self.token_status = 200

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if str(request.url) == TOKEN_URL:
            if self.token_delay:
                await asyncio.sleep(self.token_delay)
            form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
            self.token_forms.append(form)
            if self.token_status != 200:
                return httpx.Response(self.token_status, json={"error": "invalid_client"})
            self.issued += 1
            token = f"tok-{self.issued}"
            self.valid = {token}
            body: dict[str, Any] = {"access_token": token, "token_type": "bearer"}
            if self.expires_in is not None:
                body["expires_in"] = self.expires_in
            if self.rotate_refresh:
                body["refresh_token"] = f"rt-{self.issued + 1}"
            return httpx.Response(200, json=body)
        auth = request.headers.get("authorization", "")
        self.api_tokens.append(auth)
        if self.api_delay:
            await asyncio.sleep(self.api_delay)
        if auth.removeprefix("Bearer ") in self.valid:
            return httpx.Response(200, json={"ok": True})
        return httpx.Response(401, json={"errors": "[API] Invalid API key or access token"})

    def revoke(self) -> None:
        self.valid = set()


def _http(vendor: Callable[[httpx.Request], Any]) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(vendor))


def _cc(clock: FakeClock, **kwargs: Any) -> OAuth2ClientCredentials:
    return OAuth2ClientCredentials(
        TOKEN_URL, "client-id", "client-secret-xyz", scope="read write", clock=clock, **kwargs
    )


async def test_client_credentials_fetches_one_token_and_reuses_it() -> None:
    vendor = Vendor()
    auth = _cc(FakeClock())
    async with _http(vendor) as http:
        for _ in range(3):
            r = await http.get(API + "/orders", auth=auth)
            assert r.status_code == 200
    assert vendor.issued == 1
    assert auth.refreshes == 1
    assert vendor.token_forms == [
        {
            "grant_type": "client_credentials",
            "client_id": "client-id",
            "client_secret": "client-secret-xyz",
            "scope": "read write",
        }
    ]
    assert vendor.api_tokens == ["Bearer tok-1"] * 3


async def test_token_is_refreshed_before_expiry_computed_from_expires_in() -> None:
    vendor = Vendor(expires_in=3600)
    clock = FakeClock()
    auth = _cc(clock, margin_seconds=60)
    async with _http(vendor) as http:
        await http.get(API + "/a", auth=auth)
        clock.advance(3600 - 60 - 1)  # one second before the refresh point
        await http.get(API + "/a", auth=auth)
        assert vendor.issued == 1
        clock.advance(1)  # at the refresh point: 60 s before the token would expire
        await http.get(API + "/a", auth=auth)
        assert vendor.issued == 2
    assert vendor.api_tokens == ["Bearer tok-1", "Bearer tok-1", "Bearer tok-2"]


async def test_short_lived_token_is_refreshed_at_half_life() -> None:
    vendor = Vendor(expires_in=40)
    clock = FakeClock()
    auth = _cc(clock, margin_seconds=60)
    async with _http(vendor) as http:
        await http.get(API + "/a", auth=auth)
        clock.advance(19.9)
        await http.get(API + "/a", auth=auth)
        assert vendor.issued == 1
        clock.advance(0.1)
        await http.get(API + "/a", auth=auth)
        assert vendor.issued == 2


async def test_missing_expires_in_uses_the_default_lifetime() -> None:
    vendor = Vendor(expires_in=None)
    clock = FakeClock()
    auth = _cc(clock, margin_seconds=60, default_expires_in=600)
    async with _http(vendor) as http:
        await http.get(API + "/a", auth=auth)
        clock.advance(539)
        await http.get(API + "/a", auth=auth)
        assert vendor.issued == 1
        clock.advance(1)
        await http.get(API + "/a", auth=auth)
        assert vendor.issued == 2


async def test_401_refreshes_once_and_retries_the_request() -> None:
    vendor = Vendor()
    auth = _cc(FakeClock())
    async with _http(vendor) as http:
        await http.get(API + "/a", auth=auth)
        vendor.revoke()  # the vendor revoked the token early
        r = await http.get(API + "/a", auth=auth)
    assert r.status_code == 200
    assert vendor.issued == 2
    assert vendor.api_tokens == ["Bearer tok-1", "Bearer tok-1", "Bearer tok-2"]


async def test_401_after_a_fresh_token_is_returned_not_retried_forever() -> None:
    vendor = Vendor()

    async def refuse_all(request: httpx.Request) -> httpx.Response:
        r = await vendor(request)
        if str(request.url) != TOKEN_URL:
            return httpx.Response(401, json={"errors": "account suspended"})
        return r

    auth = _cc(FakeClock())
    async with _http(refuse_all) as http:
        r = await http.get(API + "/a", auth=auth)
    assert r.status_code == 401
    assert vendor.issued == 2  # the first token and exactly one refresh
    assert len(vendor.api_tokens) == 2


async def test_concurrent_requests_share_one_token_fetch() -> None:
    vendor = Vendor(token_delay=0.02)
    auth = _cc(FakeClock())
    async with _http(vendor) as http:
        rs = await asyncio.gather(*(http.get(API + f"/a/{i}", auth=auth) for i in range(10)))
    assert [r.status_code for r in rs] == [200] * 10
    assert vendor.issued == 1


async def test_concurrent_401s_share_one_refresh() -> None:
    vendor = Vendor(api_delay=0.02)
    auth = _cc(FakeClock())
    async with _http(vendor) as http:
        await http.get(API + "/warm", auth=auth)
        vendor.revoke()
        rs = await asyncio.gather(*(http.get(API + f"/a/{i}", auth=auth) for i in range(5)))
    assert [r.status_code for r in rs] == [200] * 5
    assert vendor.issued == 2  # the first token, then ONE refresh for all five 401s


async def test_refresh_token_grant_keeps_a_rotated_refresh_token() -> None:
    vendor = Vendor(rotate_refresh=True)
    clock = FakeClock()
    auth = OAuth2RefreshToken(TOKEN_URL, "lwa-client", "lwa-secret", "rt-1", clock=clock)
    async with _http(vendor) as http:
        await http.get(API + "/a", auth=auth)
        clock.advance(3600)
        await http.get(API + "/a", auth=auth)
        clock.advance(3600)
        await http.get(API + "/a", auth=auth)
    assert [f["refresh_token"] for f in vendor.token_forms] == ["rt-1", "rt-2", "rt-3"]
    assert vendor.token_forms[0] == {
        "grant_type": "refresh_token",
        "refresh_token": "rt-1",
        "client_id": "lwa-client",
        "client_secret": "lwa-secret",
    }


async def test_refresh_token_is_kept_when_the_vendor_does_not_rotate_it() -> None:
    vendor = Vendor(rotate_refresh=False)
    clock = FakeClock()
    auth = OAuth2RefreshToken(TOKEN_URL, "c", "s", "rt-original", clock=clock)
    async with _http(vendor) as http:
        await http.get(API + "/a", auth=auth)
        clock.advance(3600)
        await http.get(API + "/a", auth=auth)
    assert [f["refresh_token"] for f in vendor.token_forms] == ["rt-original"] * 2


async def test_custom_header_and_no_scheme() -> None:
    vendor = Vendor()
    seen: list[str | None] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        if str(request.url) != TOKEN_URL:
            seen.append(request.headers.get("x-amz-access-token"))
            return httpx.Response(200, json={})
        return await vendor(request)

    auth = _cc(FakeClock(), header="x-amz-access-token", scheme=None)
    async with _http(handler) as http:
        await http.get(API + "/a", auth=auth)
    assert seen == ["tok-1"]


async def test_refused_token_request_is_a_permanent_auth_failure() -> None:
    vendor = Vendor()
    vendor.token_status = 401
    auth = _cc(FakeClock())
    async with _http(vendor) as http:
        client = VendorClient(http, connection="shop", base_url=API, auth=auth)
        with pytest.raises(VendorError) as err:
            await client.get("/orders")
    assert err.value.outcome is Outcome.PERMANENT
    assert err.value.classified.category == "auth"
    assert "invalid_client" in err.value.classified.reason
    assert vendor.api_tokens == []  # the API was never called without a token


async def test_token_endpoint_outage_is_retryable() -> None:
    vendor = Vendor()
    vendor.token_status = 503
    auth = _cc(FakeClock())
    async with _http(vendor) as http:
        client = VendorClient(http, connection="shop", base_url=API, auth=auth)
        with pytest.raises(VendorError) as err:
            await client.get("/orders")
    assert err.value.outcome is Outcome.RETRYABLE


async def test_token_answer_without_access_token_is_refused() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>login</html>")

    auth = _cc(FakeClock())
    async with _http(handler) as http:
        with pytest.raises(TokenRequestFailed):
            await http.get(API + "/a", auth=auth)
        client = VendorClient(http, connection="shop", base_url=API, auth=auth)
        with pytest.raises(VendorError) as err:
            await client.get("/a")
    assert err.value.classified.category == "auth"
    assert auth.token is None


async def test_token_refresh_works_after_a_failed_fetch() -> None:
    vendor = Vendor()
    vendor.token_status = 500
    auth = _cc(FakeClock())
    async with _http(vendor) as http:
        with pytest.raises(httpx.HTTPStatusError):
            await http.get(API + "/a", auth=auth)
        vendor.token_status = 200  # the lock was released: the next call fetches
        r = await asyncio.wait_for(http.get(API + "/a", auth=auth), 2)
    assert r.status_code == 200


# --- static credentials ------------------------------------------------------------------


def _capture() -> tuple[httpx.AsyncClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    return _http(handler), seen


async def test_api_key_auth_sets_exactly_the_named_header() -> None:
    http, seen = _capture()
    async with http:
        await http.get(API, auth=ApiKeyAuth("X-Shopify-Access-Token", "shpat_abc123"))
    assert seen[0].headers["X-Shopify-Access-Token"] == "shpat_abc123"
    assert "authorization" not in seen[0].headers


async def test_bearer_auth_header_is_exact() -> None:
    http, seen = _capture()
    async with http:
        await http.get(API, auth=BearerAuth("odoo-key-42"))
    assert seen[0].headers["Authorization"] == "Bearer odoo-key-42"


async def test_hmac_signer_matches_rfc4231_vector() -> None:
    # RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
    body = b"what do ya want for nothing?"
    http, seen = _capture()
    async with http:
        await http.post(API, content=body, auth=HmacRequestSigner("X-Signature", "Jefe"))
        await http.post(
            API, content=body, auth=HmacRequestSigner("X-Signature", "Jefe", encoding="hex")
        )
    assert seen[0].headers["X-Signature"] == "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM="
    assert seen[1].headers["X-Signature"] == (
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )


async def test_hmac_signer_signs_the_json_body_the_client_sends() -> None:
    import base64
    import hashlib
    import hmac

    http, seen = _capture()
    async with http:
        client = VendorClient(
            http,
            connection="wms",
            base_url=API,
            auth=HmacRequestSigner("X-Signature", "s3cr3t-key"),
        )
        await client.post("/orders", json={"b": 1, "a": [1, 2]})
    sent = seen[0]
    expected = base64.b64encode(
        hmac.new(b"s3cr3t-key", sent.content, hashlib.sha256).digest()
    ).decode()
    assert sent.content == b'{"b":1,"a":[1,2]}'
    assert sent.headers["X-Signature"] == expected
