"""The Shopify emulator: an Admin API shop for tests, the demo and go-live rehearsal.

Vendor routes (every answer carries ``X-Shopify-API-Version``; a version older than
``oldest_version`` is answered by ``oldest_version``, as Shopify "falls forward"):

- ``POST /admin/api/{version}/graphql.json`` — Admin GraphQL. ``X-Shopify-Access-Token``
  required (otherwise 401 ``{"errors": "[API] Invalid API key or access token
  (unrecognized login or wrong password)"}``). Queries: ``shop``, ``orders`` (query
  ``updated_at:>='...'``/``created_at``/``status``/``financial_status``/``name``, sortKey
  ``ID|UPDATED_AT|CREATED_AT|PROCESSED_AT``, keyset cursors), ``order(id)``,
  ``locations``, ``productVariants(query: "sku:'X'")``, ``inventoryItems``. Mutations:
  ``fulfillmentCreate`` (marks lines fulfilled, sends ``orders/updated``) and
  ``inventorySetQuantities`` (compare-and-set; ``COMPARE_QUANTITY_STALE`` on a mismatch).
  Every answer has ``extensions.cost``; a query asking more points than available gets
  ``THROTTLED`` (HTTP 200). The schema is NOT needed at runtime: answers are shaped from
  plain dicts by walking the selection set (see :mod:`.graphql`).
- ``GET /admin/api/{version}/orders.json`` — REST (legacy): ``limit`` (default 50, max
  250), ``status`` (open|cancelled|any), ``updated_at_min``, ``created_at_min``,
  ``since_id``; ``Link`` header pagination with ``page_info`` (which accepts only
  ``limit`` and ``fields``); ``X-Shopify-Shop-Api-Call-Limit``; over the leaky bucket ->
  429 with ``Retry-After``.
- ``GET /admin/oauth/authorize`` — redirects to ``redirect_uri`` with ``code, hmac, host,
  shop, state, timestamp``.
- ``POST /admin/oauth/access_token`` — JSON or form: ``{client_id, client_secret, code}``
  -> ``{access_token, scope}``; ``grant_type=client_credentials`` -> ``{access_token,
  scope, expires_in}``.

Scenario routes (beside the kit's ``/_emulator/faults|state|webhooks|reset``):

- ``POST /_emulator/orders`` — ``{lines: [{sku, quantity, price?}], email?,
  shipping_address?: {first_name, last_name, address1, city, zip, country_code, ...},
  financial_status?: "paid"|"pending"|..., shipping_price?, currency?, note?, tags?}``;
  priced from the catalogue (unknown SKUs become custom lines); sends ``orders/create``.
  Answers 201 ``{"order": <REST order>}``.
- ``POST /_emulator/orders/{id}/cancel`` — cancels; sends ``orders/cancelled``.
- ``POST /_emulator/orders/{id}/update`` — ``{note?, tags?, financial_status?}``; sends
  ``orders/updated``.
- ``POST /_emulator/inventory`` — ``{sku, available?, on_hand?}`` sets stock directly;
  ``{sku, race: delta}`` changes stock by ``delta`` just before the next
  ``inventorySetQuantities`` of that SKU (a sale racing a compare-and-set).
- ``GET /_emulator/state`` — orders with fulfilments (tracking numbers, notify flag),
  stock per SKU, counts (orders, fulfillments, inventory_sets, stale_compares,
  throttled, webhooks), the cost bucket.

Webhooks (``orders/create|updated|cancelled``) go to ``webhook_url`` signed with the app
client secret (``X-Shopify-Hmac-Sha256``), with topic, shop domain, API version, webhook
id, triggered-at and event id headers (``webhook_header_style="plain"`` drops the
``X-``); any non-2xx is retried 8 times over about 4 hours (times ``time_scale``); with
``duplicate_probability`` a delivered webhook is sent again with the same event id.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import json
import re
import time
from collections.abc import AsyncIterator
from urllib.parse import parse_qsl, urlencode

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from crossdock.emulators.kit import FaultMiddleware, Faults, WebhookSender, control_routes

from .graphql import execute
from .state import SCOPES, SHOPIFY_RETRY_DELAYS, ShopifyEmulator

__all__ = ["ShopifyEmulator", "create_app"]

INVALID_TOKEN = "[API] Invalid API key or access token (unrecognized login or wrong password)"
_VERSION = re.compile(r"^(\d{4}-(01|04|07|10)|unstable)$")


def _version_or_404(request: Request, emu: ShopifyEmulator) -> str | Response:
    version = request.path_params["version"]
    if not _VERSION.fullmatch(version):
        return JSONResponse({"errors": "Not Found"}, 404)
    return emu.answer_version(version)


def create_app(
    *,
    shop: str = "crossdock-demo.myshopify.com",
    access_token: str = "shpat_crossdock_emulator_token",
    client_id: str = "crossdock-emulator-client",
    client_secret: str | None = None,
    webhook_url: str | None = None,
    webhook_secret: str = "shpss_crossdock_emulator_secret",
    webhook_header_style: str = "x",
    oldest_version: str = "2025-01",
    currency: str = "USD",
    cost_max: int = 1000,
    cost_restore_rate: float = 50.0,
    rest_bucket_size: int = 40,
    rest_leak_rate: float = 2.0,
    token_ttl: int = 86399,
    time_scale: float = 1.0,
    duplicate_probability: float = 0.0,
    seed: int | None = None,
) -> Starlette:
    """The emulator app; ``app.state.emulator`` is its :class:`ShopifyEmulator`.

    ``client_secret`` (None: ``webhook_secret``) is the app's secret: Shopify signs
    webhooks and OAuth callbacks with it and checks it at the token endpoint.
    """
    sender = WebhookSender(
        retry_delays=SHOPIFY_RETRY_DELAYS,
        time_scale=time_scale,
        duplicate_probability=duplicate_probability,
        timeout=5.0,
        seed=seed,
    )
    emu = ShopifyEmulator(
        shop=shop,
        access_token=access_token,
        client_id=client_id,
        client_secret=client_secret or webhook_secret,
        webhook_url=webhook_url,
        header_style=webhook_header_style,
        oldest_version=oldest_version,
        currency=currency,
        cost_max=cost_max,
        cost_restore_rate=cost_restore_rate,
        rest_bucket_size=rest_bucket_size,
        rest_leak_rate=rest_leak_rate,
        token_ttl=token_ttl,
        sender=sender,
        seed=seed,
    )
    faults = Faults(seed)

    async def graphql_route(request: Request) -> Response:
        version = _version_or_404(request, emu)
        if isinstance(version, Response):
            return version
        headers = {"X-Shopify-API-Version": version}
        if not emu.token_ok(request.headers.get("x-shopify-access-token")):
            return JSONResponse({"errors": INVALID_TOKEN}, 401, headers=headers)
        try:
            body = json.loads(await request.body())
            query = body["query"]
            if not isinstance(query, str):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            return JSONResponse(
                {"errors": {"query": "Required parameter missing or invalid"}}, 400, headers=headers
            )
        variables = body.get("variables") if isinstance(body.get("variables"), dict) else None
        answer = execute(emu, query, variables, body.get("operationName"))
        return JSONResponse(answer, headers=headers)

    async def orders_json(request: Request) -> Response:
        version = _version_or_404(request, emu)
        if isinstance(version, Response):
            return version
        headers = {"X-Shopify-API-Version": version}
        if not emu.token_ok(request.headers.get("x-shopify-access-token")):
            return JSONResponse({"errors": INVALID_TOKEN}, 401, headers=headers)
        wait = emu.rest.take()
        headers["X-Shopify-Shop-Api-Call-Limit"] = emu.rest.header()
        if wait is not None:
            headers["Retry-After"] = f"{max(1.0, wait):.1f}"
            return JSONResponse(
                {
                    "errors": "Exceeded 2 calls per second for api client. Reduce request "
                    "rates to resume uninterrupted service."
                },
                429,
                headers=headers,
            )
        params = dict(request.query_params)
        try:
            limit = int(params.get("limit", 50))
        except ValueError:
            return JSONResponse({"errors": {"limit": "expected Integer"}}, 400, headers=headers)
        limit = max(1, min(limit, 250))
        if "page_info" in params:
            extra = set(params) - {"page_info", "limit", "fields"}
            if extra:
                return JSONResponse(
                    {"errors": {"page_info": f"Cannot be used with {', '.join(sorted(extra))}"}},
                    400,
                    headers=headers,
                )
            try:
                info = json.loads(base64.urlsafe_b64decode(params["page_info"] + "=="))
                filters, last_id = dict(info["filters"]), int(info["last_id"])
            except (ValueError, KeyError, TypeError):
                return JSONResponse({"errors": "page_info - Invalid value."}, 400, headers=headers)
        else:
            filters = {
                k: params[k]
                for k in ("status", "updated_at_min", "created_at_min", "since_id")
                if k in params
            }
            last_id = 0
        orders = sorted(emu.orders.values(), key=lambda o: o["id"])
        status = filters.get("status", "open")
        if status == "open":
            orders = [o for o in orders if not o["cancelled_at"] and not o["closed_at"]]
        elif status == "cancelled":
            orders = [o for o in orders if o["cancelled_at"]]
        for key, fname in (("updated_at_min", "updated_at"), ("created_at_min", "created_at")):
            if key in filters:
                orders = [o for o in orders if o[fname] >= filters[key]]
        if "since_id" in filters:
            orders = [o for o in orders if o["id"] > int(filters["since_id"])]
        orders = [o for o in orders if o["id"] > last_id]
        page = orders[:limit]
        if len(orders) > limit:
            token = (
                base64.urlsafe_b64encode(
                    json.dumps({"filters": filters, "last_id": page[-1]["id"]}).encode()
                )
                .decode()
                .rstrip("=")
            )
            url = str(request.url.replace(query=urlencode({"limit": limit, "page_info": token})))
            headers["Link"] = f'<{url}>; rel="next"'
        fields = [f for f in params.get("fields", "").split(",") if f]
        out = [emu.rest_order(o) for o in page]
        if fields:
            out = [{k: v for k, v in o.items() if k in fields} for o in out]
        return JSONResponse({"orders": out}, headers=headers)

    async def authorize(request: Request) -> Response:
        q = request.query_params
        if q.get("client_id") != emu.client_id or not q.get("redirect_uri"):
            return JSONResponse(
                {
                    "error": "invalid_request",
                    "error_description": "The client_id or redirect_uri provided is invalid",
                },
                400,
            )
        code = base64.b32encode(emu.random.randbytes(10)).decode().lower()
        emu.codes[code] = q.get("scope") or SCOPES
        params = {
            "code": code,
            "host": base64.b64encode(f"{emu.shop}/admin".encode()).decode(),
            "shop": emu.shop,
            "state": q.get("state", ""),
            "timestamp": str(int(time.time())),
        }
        params["hmac"] = emu.sign_callback(params)
        sep = "&" if "?" in q["redirect_uri"] else "?"
        return RedirectResponse(q["redirect_uri"] + sep + urlencode(params), 302)

    async def access_token_route(request: Request) -> Response:
        raw = await request.body()
        if request.headers.get("content-type", "").startswith("application/json"):
            try:
                form = {str(k): str(v) for k, v in json.loads(raw or b"{}").items()}
            except (ValueError, AttributeError):
                form = {}
        else:
            form = dict(parse_qsl(raw.decode("utf-8", "replace")))
        if form.get("client_id") != emu.client_id or not hmac.compare_digest(
            form.get("client_secret", "").encode(), emu.client_secret.encode()
        ):
            return JSONResponse(
                {"error": "invalid_client", "error_description": "Client credentials are invalid"},
                400,
            )
        if form.get("grant_type") == "client_credentials":
            token = emu.issue_token(emu.token_ttl)
            return JSONResponse(
                {"access_token": token, "scope": SCOPES, "expires_in": emu.token_ttl}
            )
        scope = emu.codes.pop(form.get("code", ""), None)
        if scope is None:
            return JSONResponse(
                {
                    "error": "invalid_request",
                    "error_description": "The authorization code was not found or was already used",
                },
                400,
            )
        return JSONResponse({"access_token": emu.issue_token(None), "scope": scope})

    async def scenario_order(request: Request) -> Response:
        try:
            spec = await request.json()
            order = emu.create_order(spec if isinstance(spec, dict) else {})
        except (ValueError, TypeError, AttributeError) as exc:
            return JSONResponse({"error": str(exc)}, 400)
        return JSONResponse({"order": emu.rest_order(order)}, 201)

    def _order_or_404(request: Request) -> int | Response:
        try:
            oid = int(request.path_params["id"])
        except ValueError:
            oid = -1
        if oid not in emu.orders:
            return JSONResponse({"error": f"no order {request.path_params['id']}"}, 404)
        return oid

    async def scenario_cancel(request: Request) -> Response:
        oid = _order_or_404(request)
        if isinstance(oid, Response):
            return oid
        try:
            order = emu.cancel_order(oid)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, 422)
        return JSONResponse({"order": emu.rest_order(order)})

    async def scenario_update(request: Request) -> Response:
        oid = _order_or_404(request)
        if isinstance(oid, Response):
            return oid
        body = await request.body()
        changes = json.loads(body) if body else {}
        order = emu.update_order(oid, changes if isinstance(changes, dict) else {})
        return JSONResponse({"order": emu.rest_order(order)})

    async def scenario_inventory(request: Request) -> Response:
        data = await request.json()
        variant = emu.variant_by_sku(str(data.get("sku", ""))) if isinstance(data, dict) else None
        if variant is None:
            return JSONResponse({"error": "unknown sku"}, 404)
        level = emu.levels[variant["inventory_item_id"]]
        if "race" in data:
            emu.races.setdefault(variant["sku"], []).append(int(data["race"]))
        for name in ("available", "on_hand"):
            if name in data:
                level[name] = int(data[name])
        return JSONResponse({"sku": variant["sku"], **level})

    def reset() -> None:
        emu.reset()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        with contextlib.suppress(asyncio.CancelledError):
            await sender.close()

    routes = [
        Route("/admin/api/{version}/graphql.json", graphql_route, methods=["POST"]),
        Route("/admin/api/{version}/orders.json", orders_json, methods=["GET"]),
        Route("/admin/oauth/authorize", authorize, methods=["GET"]),
        Route("/admin/oauth/access_token", access_token_route, methods=["POST"]),
        Route("/_emulator/orders", scenario_order, methods=["POST"]),
        Route("/_emulator/orders/{id}/cancel", scenario_cancel, methods=["POST"]),
        Route("/_emulator/orders/{id}/update", scenario_update, methods=["POST"]),
        Route("/_emulator/inventory", scenario_inventory, methods=["POST"]),
        *control_routes(faults, emu.snapshot, reset, sender),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(FaultMiddleware, faults=faults)],
        lifespan=lifespan,
    )
    app.state.emulator = emu
    app.state.faults = faults
    app.state.webhooks = sender
    return app
