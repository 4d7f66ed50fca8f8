"""An in-memory Odoo: the JSON-2 API (19.0+) and the JSON-RPC ``execute_kw`` API.

Vendor routes:

- ``POST /json/2/<model>/<method>`` (``version >= 19`` only; older versions answer 404 with
  an HTML page, as a server without the route does). ``Authorization: bearer <api_key>``
  (anything else: 401 ``werkzeug.exceptions.Unauthorized`` "Invalid apikey"); optional
  ``X-Odoo-Database`` (another name: 404 [unconfirmed]); the body holds named arguments
  plus ``ids`` and ``context``. Success: 200 with the method's return value. Errors: a
  4xx/5xx status with ``{name, message, arguments, context, debug}`` — unknown model or
  method 404, arguments that do not bind 422, ``UserError``/``ValidationError`` 422
  [unconfirmed status], missing record 404.
- ``GET /web/version`` (19+): ``{"version_info": [...], "version": "19.0"}``.
- ``POST /jsonrpc`` (every version): ``{"jsonrpc": "2.0", "method": "call", "params":
  {"service": "common"|"object", "method": ..., "args": [...]}, "id": N}``. ``common``:
  ``version``, ``login``/``authenticate(db, login, password, env)`` -> uid or ``false``.
  ``object``: ``execute_kw(db, uid, password, model, method, args, kwargs)`` and
  ``execute``. Errors are HTTP 200 with ``{"error": {"code": 200, "message": "Odoo Server
  Error", "data": {name, debug, message, arguments, context}}}``; a wrong password is
  ``odoo.exceptions.AccessDenied``; an unknown database ``psycopg2.OperationalError``.

Models: ``res.partner``, ``product.product`` (the sandbox catalogue: ``default_code`` =
SKU, ``list_price`` = price), ``stock.location`` (``WH/Stock``), ``stock.quant`` (the
catalogue stock at WH/Stock), ``sale.order`` + ``sale.order.line``, ``account.move`` +
``account.move.line``, ``account.tax`` (1: 20 %, 2: 10 %), ``account.journal``,
``res.currency``, ``res.company``, ``res.users``. Methods: ``search_read``, ``search``,
``read``, ``create``, ``write``, ``search_count``, ``sale.order.action_confirm`` (draft ->
sale), ``account.move.action_post`` (draft -> posted, named ``INV/YYYY/NNNNN``),
``res.users.context_get``. Domains: ``= != in not in like ilike =like =ilike > >= < <=``,
implicit AND, ``& | !`` prefix operators, dotted paths through many2one fields.

Emulator routes (besides the kit's ``/_emulator/faults``, ``/_emulator/webhooks`` and
``/_emulator/reset``):

- ``GET /_emulator/state`` — partners, sale orders (name, state, client_order_ref,
  origin, amount_total), invoices (name, state, origin, ref, amount), quants and
  ``counts`` (partners, sale_orders, confirmed_sale_orders, invoices, posted_invoices,
  json2_requests, jsonrpc_requests).
- ``POST /_emulator/stock`` ``{"sku": "TEE-BLK-S", "quantity": 120, "reserved": 5}`` —
  change a quant at WH/Stock (its ``write_date`` moves, so the stock stream sees it).

Faults (``POST /_emulator/faults``) use the request path: ``{"status": 503, "path":
"/json/2/account.move/create"}``, ``{"kind": "timeout", "delay": 2, "after_effect": true,
"path": "/json/2/account.move/action_post", "count": 1}``; JSON-RPC calls all share
``/jsonrpc``. ``latency`` slows every vendor answer.
"""

from __future__ import annotations

from starlette.applications import Starlette

from crossdock.emulators.kit import Faults, WebhookSender
from crossdock.emulators.odoo.app import OdooEmulator, build_app

__all__ = ["OdooEmulator", "create_app"]


def create_app(
    *,
    version: int = 19,
    api_key: str = "odoo-sandbox-key",
    database: str = "crossdock",
    login: str = "admin",
    currency: str = "EUR",
    latency: float = 0.0,
    webhook_url: str | None = None,
    webhook_secret: str = "odoo-sandbox-webhook-secret",
    time_scale: float = 1.0,
    duplicate_probability: float = 0.0,
    seed: int | None = None,
) -> Starlette:
    """The Odoo emulator. ``version`` 19+ serves JSON-2 and JSON-RPC; below 19, JSON-RPC
    only. ``api_key`` is the bearer key (JSON-2) and the password (JSON-RPC, with
    ``login``). Odoo sends no webhooks by itself; the webhook options exist for symmetry
    with the other emulators."""
    webhooks = WebhookSender(
        time_scale=time_scale, duplicate_probability=duplicate_probability, seed=seed
    )
    emu = OdooEmulator(
        version=version,
        api_key=api_key,
        database=database,
        login=login,
        currency=currency,
        latency=latency,
        webhooks=webhooks,
        faults=Faults(seed),
        webhook_url=webhook_url,
        webhook_secret=webhook_secret,
    )
    return build_app(emu)
