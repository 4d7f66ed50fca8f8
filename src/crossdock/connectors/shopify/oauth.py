"""Shopify OAuth: the install (authorization code) flow, as plain functions.

1. :func:`authorize_url` — where to send the merchant to approve the app's scopes.
2. :func:`verify_callback` — Shopify redirects back with ``code, shop, state, timestamp,
   hmac``; the hmac is HMAC-SHA256 (hex, app client secret) over the query string without
   ``hmac`` (and the old ``signature``), its pairs sorted by key; compared in constant
   time. The shop must be a ``*.myshopify.com`` host and ``state`` the nonce we sent.
3. :func:`exchange_code` — ``POST https://{shop}/admin/oauth/access_token`` with
   ``{client_id, client_secret, code}`` -> ``{access_token, scope}``.

Merchant-owned apps can skip the install and use the client-credentials grant against
the same token endpoint (settings ``client_id`` + ``client_secret``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx

from crossdock.pipeline.outcome import classify_response
from crossdock.sdk.errors import SignatureRejected, VendorError

__all__ = ["authorize_url", "callback_message", "exchange_code", "shop_url", "verify_callback"]

_SHOP_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9\-]*\.myshopify\.com$")


def shop_url(shop: str) -> str:
    """``https://{shop}`` for a shop domain; an URL (an emulator's) passes through."""
    if shop.startswith(("http://", "https://")):
        return shop.rstrip("/")
    return f"https://{shop}"


def authorize_url(
    shop: str,
    client_id: str,
    scopes: Sequence[str],
    redirect_uri: str,
    state: str,
    *,
    online: bool = False,
) -> str:
    """The URL that asks the merchant to install the app (``shop`` may be a base URL)."""
    params: list[tuple[str, str]] = [
        ("client_id", client_id),
        ("scope", ",".join(scopes)),
        ("redirect_uri", redirect_uri),
        ("state", state),
    ]
    if online:
        params.append(("grant_options[]", "per-user"))
    return f"{shop_url(shop)}/admin/oauth/authorize?{urlencode(params)}"


def _escape(text: str, key: bool) -> str:
    # Shopify's own libraries escape these before signing.
    text = text.replace("%", "%25").replace("&", "%26")
    return text.replace("=", "%3D") if key else text


def callback_message(query: Mapping[str, str] | str) -> str:
    """The signed message: ``k=v`` pairs without ``hmac``/``signature``, sorted, ``&``."""
    pairs = parse_qsl(query, keep_blank_values=True) if isinstance(query, str) else query.items()
    kept = sorted(
        (_escape(k, True), _escape(v, False)) for k, v in pairs if k not in ("hmac", "signature")
    )
    return "&".join(f"{k}={v}" for k, v in kept)


def verify_callback(
    query: Mapping[str, str] | str, client_secret: str, *, expected_state: str | None = None
) -> dict[str, str]:
    """Check an OAuth callback; return its parameters. Raise :class:`SignatureRejected`."""
    params = (
        dict(parse_qsl(query, keep_blank_values=True)) if isinstance(query, str) else dict(query)
    )
    given = params.get("hmac")
    if not given:
        raise SignatureRejected("the OAuth callback has no hmac parameter")
    digest = hmac.new(
        client_secret.encode(), callback_message(params).encode(), hashlib.sha256
    ).hexdigest()
    if not hmac.compare_digest(digest.encode(), given.strip().lower().encode()):
        raise SignatureRejected("the OAuth callback's hmac does not match its parameters")
    if not _SHOP_RE.fullmatch(params.get("shop", "")):
        raise SignatureRejected("the OAuth callback's shop is not a myshopify.com domain")
    if expected_state is not None and not hmac.compare_digest(
        params.get("state", "").encode(), expected_state.encode()
    ):
        raise SignatureRejected("the OAuth callback's state is not the one we sent")
    return params


async def exchange_code(
    http: httpx.AsyncClient, shop: str, client_id: str, client_secret: str, code: str
) -> dict[str, Any]:
    """Trade the callback's ``code`` for ``{access_token, scope}`` (raise VendorError)."""
    response = await http.post(
        f"{shop_url(shop)}/admin/oauth/access_token",
        json={"client_id": client_id, "client_secret": client_secret, "code": code},
        headers={"Accept": "application/json"},
    )
    body: Any = None
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code != 200 or not isinstance(body, dict) or "access_token" not in body:
        detail = ""
        if isinstance(body, dict):
            detail = str(body.get("error_description") or body.get("error") or "")
        status = response.status_code if response.status_code != 200 else 502
        raise VendorError(
            classify_response(status, response.headers, shop, detail), response.status_code, body
        )
    return {"access_token": str(body["access_token"]), "scope": str(body.get("scope", ""))}
