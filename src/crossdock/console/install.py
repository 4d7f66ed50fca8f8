"""Connect a store by installing the app: the OAuth authorization-code flow, from the
Connections page (Shopify).

1. An admin presses "Install in Shopify" on a Shopify connection that has the app's
   ``client_id`` and ``client_secret``: the console keeps a random ``state`` in a
   short-lived HttpOnly cookie and sends the browser to the store's approval page.
2. Shopify sends the browser back to ``/console/oauth/shopify/callback`` with a code, the
   shop, the state and an HMAC over them. The console checks the HMAC (constant time),
   that the state is the one in the cookie, that the shop is the connection's shop and
   that the user is still an admin of the workspace; then trades the code for an access
   token, which the hub keeps encrypted (``store/granted.py``) and uses from now on.

The redirect address is ``CROSSDOCK_PUBLIC_URL`` (the hub's address as browsers and
Shopify see it) plus ``/console/oauth/shopify/callback``; register it in the app's
settings. Without ``CROSSDOCK_PUBLIC_URL`` it is the address the request came to.
"""

from __future__ import annotations

import base64
import os
import secrets
import time
from typing import Any

import orjson
import structlog
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from crossdock.console.web import (
    Administering,
    ConsoleError,
    SignInRequired,
    context,
    not_found,
    session_user,
)
from crossdock.sdk.errors import SignatureRejected, VendorError
from crossdock.security.apikeys import Role
from crossdock.store.granted import grant

log = structlog.get_logger("crossdock.console")

router = APIRouter()
"""Under ``/w/{ws}``: starting an install."""
callback_router = APIRouter()
"""At the console's root: where the vendor sends the browser back."""

STATE_COOKIE = "crossdock_oauth"
CALLBACK_PATH = "/console/oauth/shopify/callback"
SHOPIFY_SCOPES = (
    "read_orders",
    "write_orders",
    "read_fulfillments",
    "write_merchant_managed_fulfillment_orders",
    "read_inventory",
    "write_inventory",
    "read_locations",
    "read_products",
)
"""What the Shopify connector's streams and actions need."""


def _callback_url(request: Request) -> str:
    base = os.environ.get("CROSSDOCK_PUBLIC_URL") or str(request.base_url)
    return base.rstrip("/") + CALLBACK_PATH


def _shopify_settings(request: Request, ws: str, name: str) -> Any:
    rt = context(request).registry().connection(ws, name)
    if rt is None:
        raise not_found("This connection")
    if rt.config.connector != "shopify":
        raise ConsoleError(
            400, "Not a Shopify connection", f"'{name}' is not connected by installing an app."
        )
    settings = rt.config.connector_settings()
    if not settings.client_id or settings.client_secret is None:
        raise ConsoleError(
            400,
            "The app's credentials are missing",
            f"Set client_id and client_secret (the app's, from the Shopify Partner dashboard "
            f"or the store's app settings) on connection '{name}' in crossdock.yaml, apply it, "
            "then install again.",
        )
    return settings


@router.post("/connections/{name}/install")
async def start_install(page: Administering, name: str) -> Response:
    """Send the admin's browser to the store's page that approves the app's scopes."""
    from crossdock.connectors.shopify.oauth import authorize_url

    settings = _shopify_settings(page.request, page.workspace, name)
    state = secrets.token_urlsafe(24)
    url = authorize_url(
        settings.base_url,
        settings.client_id,
        SHOPIFY_SCOPES,
        _callback_url(page.request),
        state,
    )
    cookie = base64.urlsafe_b64encode(
        orjson.dumps({"ws": page.workspace, "name": name, "state": state})
    ).decode()
    resp = RedirectResponse(url, status_code=303)
    resp.set_cookie(
        STATE_COOKIE,
        cookie,
        max_age=600,
        httponly=True,
        samesite="lax",  # the vendor's redirect back is a top-level navigation
        secure=page.request.url.scheme == "https",
        path="/console/oauth",
    )
    return resp


def _back(ws: str, notice: str = "", problem: str = "") -> RedirectResponse:
    from urllib.parse import quote

    q = f"notice={quote(notice, safe='')}" if notice else f"problem={quote(problem, safe='')}"
    return RedirectResponse(f"/console/w/{quote(ws, safe='')}/connections?{q}", status_code=303)


@callback_router.get("/oauth/shopify/callback")
async def shopify_callback(request: Request) -> Response:
    """Check the store's answer, trade its code for a token, keep the token."""
    # Imported here: the Shopify connector (and its GraphQL schema tooling) is loaded
    # only by hubs that use it.
    from crossdock.connectors.shopify.oauth import exchange_code, verify_callback

    user = await session_user(request)
    if user is None:
        raise SignInRequired()
    try:
        saved = orjson.loads(base64.urlsafe_b64decode(request.cookies.get(STATE_COOKIE, "")))
        ws, name, state = str(saved["ws"]), str(saved["name"]), str(saved["state"])
    except (ValueError, KeyError, TypeError):
        raise ConsoleError(
            400,
            "This install was not started here",
            "Start the install again from the Connections page (it is valid for 10 minutes).",
        ) from None
    role = user.role_in(ws)
    if role is None:
        raise not_found("This workspace")
    if not role.allows(Role.ADMIN):
        raise ConsoleError(403, "Not allowed", "Installing an app needs the 'admin' role.")
    settings = _shopify_settings(request, ws, name)
    secret = settings.client_secret.get_secret_value()
    try:
        params = verify_callback(request.url.query, secret, expected_state=state)
        if params.get("shop") != settings.shop_domain:
            raise SignatureRejected(
                f"the store that answered ({params.get('shop')}) is not this connection's "
                f"shop ({settings.shop_domain})"
            )
        from crossdock.runtime.connectors import http_client

        token = await exchange_code(
            http_client(), settings.base_url, settings.client_id, secret, params["code"]
        )
    except SignatureRejected as exc:
        log.warning("oauth_callback_rejected", workspace=ws, connection=name, why=str(exc))
        resp = _back(ws, problem=f"The install was refused: {exc}. Nothing was changed.")
        resp.delete_cookie(STATE_COOKIE, path="/console/oauth")
        return resp
    except VendorError as exc:
        resp = _back(
            ws,
            problem=f"Shopify did not give a token: {exc.classified.reason} Nothing was changed.",
        )
        resp.delete_cookie(STATE_COOKIE, path="/console/oauth")
        return resp
    ctx = context(request)
    box = ctx.secret_box
    await ctx.db.write(
        lambda conn: grant(
            conn,
            box,
            ws,
            name,
            {"/settings/access_token": token["access_token"]},
            scope=token["scope"],
            by=user.username,
            now=time.time(),
        )
    )
    ctx.on_change()
    log.info("oauth_install_granted", workspace=ws, connection=name, by=user.username)
    resp = _back(
        ws, notice=f"Connected: the store granted '{name}' these scopes: {token['scope']}."
    )
    resp.delete_cookie(STATE_COOKIE, path="/console/oauth")
    return resp
