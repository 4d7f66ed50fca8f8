"""Auth strategies for vendor clients, as ``httpx.Auth`` flows.

- :class:`ApiKeyAuth` — a key in a header (``X-Shopify-Access-Token``, ``API-Key``).
- :class:`BearerAuth` — ``Authorization: Bearer <token>`` (Odoo JSON-2 API keys).
- ``httpx.BasicAuth`` — use httpx's own (WooCommerce, Trendyol).
- :class:`OAuth2ClientCredentials` / :class:`OAuth2RefreshToken` — a token from a token
  endpoint, refreshed *before* it expires (from ``expires_in``, less a margin), and once
  more on a 401 in case the vendor revoked it early.
- :class:`HmacRequestSigner` — an HMAC of the request body in a header.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
from collections.abc import AsyncGenerator, Callable, Generator
from dataclasses import dataclass
from typing import Any

import httpx

__all__ = [
    "ApiKeyAuth",
    "BearerAuth",
    "HmacRequestSigner",
    "OAuth2ClientCredentials",
    "OAuth2RefreshToken",
    "Token",
    "TokenRequestFailed",
]


class ApiKeyAuth(httpx.Auth):
    """Send a key in a header."""

    def __init__(self, header: str, key: str) -> None:
        self.header = header
        self._key = key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers[self.header] = self._key
        yield request


class BearerAuth(httpx.Auth):
    """``Authorization: Bearer <token>``."""

    def __init__(self, token: str) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request


class HmacRequestSigner(httpx.Auth):
    """Sign each request body: ``header = encode(HMAC-SHA256(secret, body))``."""

    requires_request_body = True

    def __init__(self, header: str, secret: str, encoding: str = "base64") -> None:
        self.header = header
        self._secret = secret.encode()
        self.encoding = encoding

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        digest = hmac.new(self._secret, request.content, hashlib.sha256).digest()
        request.headers[self.header] = (
            digest.hex() if self.encoding == "hex" else base64.b64encode(digest).decode()
        )
        yield request


class TokenRequestFailed(httpx.HTTPStatusError):
    """The token endpoint did not issue a token (non-200, or no ``access_token``).

    A subclass of ``httpx.HTTPStatusError`` carrying the token endpoint's response; the
    vendor client classifies it (4xx: permanent ``auth``; 5xx, 429: retry)."""


@dataclass
class Token:
    """An access token and the monotonic time after which it must not be used."""

    value: str
    refresh_at: float


class _OAuth2(httpx.Auth):
    """Shared machinery: cache the token, refresh before expiry, retry once on 401."""

    def __init__(
        self,
        token_url: str,
        *,
        header: str = "Authorization",
        scheme: str | None = "Bearer",
        margin_seconds: float = 60.0,
        default_expires_in: float = 1800.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.token_url = token_url
        self.header = header
        self.scheme = scheme
        self.margin = margin_seconds
        self.default_expires_in = default_expires_in
        self.clock = clock
        self.token: Token | None = None
        self.refreshes = 0
        self._lock = asyncio.Lock()

    def form(self) -> dict[str, str]:
        """The token request's form fields."""
        raise NotImplementedError

    def _apply(self, request: httpx.Request) -> None:
        assert self.token is not None
        value = f"{self.scheme} {self.token.value}" if self.scheme else self.token.value
        request.headers[self.header] = value

    def _build_token_request(self) -> httpx.Request:
        return httpx.Request(
            "POST",
            self.token_url,
            data=self.form(),
            headers={"Accept": "application/json"},
        )

    def _update(self, response: httpx.Response) -> None:
        if response.status_code != 200:
            raise TokenRequestFailed(
                f"token endpoint answered HTTP {response.status_code}",
                request=response.request,
                response=response,
            )
        try:
            data: Any = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            data = {}
        access = data.get("access_token")
        try:
            expires_in = float(data.get("expires_in") or self.default_expires_in)
        except (TypeError, ValueError):
            expires_in = self.default_expires_in
        if not isinstance(access, str) or not access:
            # A 200 without a usable token: as much a refusal as a 4xx.
            raise TokenRequestFailed(
                "token endpoint answered without an access_token",
                request=response.request,
                response=response,
            )
        # Refresh before expiry: at the margin, or at half-life for short-lived tokens.
        lead = min(self.margin, expires_in / 2)
        self.token = Token(access, self.clock() + expires_in - lead)
        self.refreshes += 1
        self.on_token(data)

    def on_token(self, data: dict[str, Any]) -> None:
        """Hook: a new token arrived (e.g. store a rotated refresh token)."""

    def _due(self) -> bool:
        return self.token is None or self.clock() >= self.token.refresh_at

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        if self._due():
            async with self._lock:
                if self._due():  # another request may have refreshed while we waited
                    token_response = yield self._build_token_request()
                    await token_response.aread()
                    self._update(token_response)
        used = self.token
        self._apply(request)
        response = yield request
        if response.status_code == 401:
            # Revoked early: one fresh token, one more try. Requests that failed with the
            # same token share one refresh.
            async with self._lock:
                if self.token is used:
                    token_response = yield self._build_token_request()
                    await token_response.aread()
                    self._update(token_response)
            self._apply(request)
            yield request

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        if self._due():
            token_response = yield self._build_token_request()
            token_response.read()
            self._update(token_response)
        self._apply(request)
        response = yield request
        if response.status_code == 401:
            token_response = yield self._build_token_request()
            token_response.read()
            self._update(token_response)
            self._apply(request)
            yield request


class OAuth2ClientCredentials(_OAuth2):
    """OAuth2 ``client_credentials`` grant (Shopify custom apps, Amazon grantless)."""

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        scope: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(token_url, **kwargs)
        self.client_id = client_id
        self._client_secret = client_secret
        self.scope = scope

    def form(self) -> dict[str, str]:
        out = {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self._client_secret,
        }
        if self.scope:
            out["scope"] = self.scope
        return out


class OAuth2RefreshToken(_OAuth2):
    """OAuth2 ``refresh_token`` grant (Amazon LWA); keeps a rotated refresh token."""

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        **kwargs: Any,
    ) -> None:
        super().__init__(token_url, **kwargs)
        self.client_id = client_id
        self._client_secret = client_secret
        self._refresh_token = refresh_token

    def form(self) -> dict[str, str]:
        return {
            "grant_type": "refresh_token",
            "refresh_token": self._refresh_token,
            "client_id": self.client_id,
            "client_secret": self._client_secret,
        }

    def on_token(self, data: dict[str, Any]) -> None:
        if data.get("refresh_token"):
            self._refresh_token = str(data["refresh_token"])
