"""The declarative REST WMS connector (``connector: rest-wms``).

A 3PL connects its in-house WMS by writing a definition — base URL, auth, endpoints,
mappings, pagination, error rules, webhook signature — under the connection's
``settings:``; no Python. :mod:`.settings` is the definition's model, :mod:`.definition`
compiles it once, and :mod:`.actions`, :mod:`.streams` and :mod:`.webhooks` run it.
:func:`sandbox_definition` returns the ready definition for the sandbox warehouse
(:mod:`crossdock.emulators.warehouse`).

- actions: ``create_order`` (when_exists ``update_order``), ``update_order``,
  ``cancel_order`` — each declared endpoint is one action; ``ctx.record`` is the
  canonical Order, ``ActionResult.external_id`` the WMS order id.
- streams: ``shipments`` (``shipment.created``, Shipment) and ``stock``
  (``inventory.updated``, InventoryLevel).
- webhooks: per the definition's ``webhook.events``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from crossdock.connectors.restwms.actions import action_class, find
from crossdock.connectors.restwms.api import WmsApi
from crossdock.connectors.restwms.definition import Definition
from crossdock.connectors.restwms.sandbox import SANDBOX_DEFINITION_PATH, sandbox_definition
from crossdock.connectors.restwms.settings import RestWmsSettings
from crossdock.connectors.restwms.streams import ShipmentsStream, StockStream
from crossdock.connectors.restwms.webhooks import RestWmsWebhooks
from crossdock.sdk.actions import Action, ActionResult
from crossdock.sdk.connector import Connector
from crossdock.sdk.settings import Settings
from crossdock.sdk.streams import Stream
from crossdock.sdk.webhooks import WebhookHandler

__all__ = [
    "SANDBOX_DEFINITION_PATH",
    "RestWmsConnector",
    "RestWmsSettings",
    "sandbox_definition",
]


class RestWmsConnector(Connector):
    """A WMS declared in YAML (see the module docstring)."""

    name = "rest-wms"
    title = "REST WMS (declarative)"
    kind = "wms"
    api_version = "definition-1"
    """The version of the definition format; the WMS's own version is in its paths."""
    api_sunset = None
    settings_model: ClassVar[type[Settings]] = RestWmsSettings
    emulator = "crossdock.emulators.warehouse:create_app"

    settings: RestWmsSettings
    definition: Definition
    api: WmsApi

    def setup(self) -> None:
        self.definition = self.settings.compiled
        self.api = WmsApi(
            self.http, self.settings, connection=self.connection, redactor=self.redactor
        )

    def build_webhooks(self) -> WebhookHandler | None:
        return RestWmsWebhooks(self) if self.definition.webhook is not None else None

    def build_streams(self) -> list[Stream]:
        out: list[Stream] = []
        if "get_shipments" in self.definition.lists:
            out.append(ShipmentsStream(self))
        if "get_stock" in self.definition.lists:
            out.append(StockStream(self))
        return out

    def build_actions(self) -> list[Action]:
        return [action_class(w)(self) for w in self.definition.writes.values()]

    async def find_order(self, values: Mapping[str, Any], record: Any) -> ActionResult | None:
        """Find an order at the WMS by reference (``create_order``'s lookup)."""
        create = self.definition.writes.get("create_order")
        if create is None or create.lookup is None or "xref" in create.lookup.path.names:
            return None
        return await find(self, create.lookup, values, record, "endpoints.create_order.lookup")

    async def check(self) -> str:
        d = self.definition
        if d.check is not None:
            method, template, params = d.check
            path = template.render({}, "endpoints.check.path")
            resp = await self.api.request(method, path, params=params or None)
        elif d.lists:
            first = next(iter(d.lists.values()))
            path = first.path
            resp = await self.api.request("GET", path, params=first.params or None)
        else:
            return f"{self.settings.base_url}: nothing to check (no list or check endpoint)"
        return f"{self.settings.base_url}{path} answered HTTP {resp.status} with our credentials"
