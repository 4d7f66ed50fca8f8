"""Odoo (ERP): sale orders and invoices for orders, stock levels from quants.

Speaks the External JSON-2 API (Odoo 19+) and falls back to the JSON-RPC ``execute_kw``
API for older servers (``api: auto``); see :mod:`.transport`.

- actions ``create_sale_order`` and ``create_invoice`` take a canonical Order;
- stream ``stock`` yields ``inventory.updated`` (canonical InventoryLevel).
"""

from __future__ import annotations

from datetime import date
from typing import ClassVar

from crossdock.connectors.odoo.actions import CreateInvoice, CreateSaleOrder
from crossdock.connectors.odoo.sales import Sales
from crossdock.connectors.odoo.settings import OdooSettings
from crossdock.connectors.odoo.streams import StockStream
from crossdock.connectors.odoo.transport import (
    AutoTransport,
    Json2Transport,
    JsonRpcTransport,
    Transport,
)
from crossdock.sdk.client import VendorClient
from crossdock.sdk.connector import Connector
from crossdock.sdk.ratelimits import Unlimited

__all__ = ["OdooConnector", "OdooSettings"]


class OdooConnector(Connector):
    """An Odoo database."""

    name = "odoo"
    title = "Odoo"
    kind = "erp"
    api_version = "19.0 (JSON-2)"
    api_sunset: ClassVar[date | None] = None
    """JSON-2 has no announced end. The JSON-RPC fallback is deprecated since 19.0 and
    planned for removal in Odoo 22 (fall 2028, no exact date): ``check()`` says so."""
    settings_model = OdooSettings
    stream_types = (StockStream,)
    action_types = (CreateSaleOrder, CreateInvoice)
    emulator = "crossdock.emulators.odoo:create_app"

    settings: OdooSettings

    def setup(self) -> None:
        s = self.settings
        # Odoo publishes no request rate limit for its external API; Unlimited still
        # honours a 429's Retry-After (Odoo.sh / Online front proxies).
        self.client = VendorClient(
            self.http,
            connection=self.connection,
            base_url=s.base_url,
            headers={"User-Agent": "Crossdock (odoo connector)"},
            rate=Unlimited(),
            redactor=self.redactor,
            timeout=s.timeout_seconds,
        )
        key = s.api_key.get_secret_value()
        json2 = Json2Transport(self.client, s.database, key)
        jsonrpc = JsonRpcTransport(self.client, s.database, s.login, key)
        self.transport: Transport
        if s.api == "json2":
            self.transport = json2
        elif s.api == "jsonrpc":
            self.transport = jsonrpc
        else:
            self.transport = AutoTransport(json2, jsonrpc)
        self.sales = Sales(self.transport, s, self.connection)

    async def check(self) -> str:
        ctx = await self.transport.call("res.users", "context_get")
        api = self.transport.api
        uid = ctx.get("uid") if isinstance(ctx, dict) else None
        lang = ctx.get("lang") if isinstance(ctx, dict) else None
        where = f"database '{self.settings.database}'" if self.settings.database else "server"
        text = f"Odoo {where} via {'JSON-2' if api == 'json2' else 'JSON-RPC'}: user {uid}"
        if lang:
            text += f", language {lang}"
        if api == "jsonrpc":
            text += " (JSON-RPC is deprecated since Odoo 19; removal is planned for Odoo 22)"
        return text
