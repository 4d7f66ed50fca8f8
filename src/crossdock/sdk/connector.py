"""The connector: one vendor's API, declared.

A connector class declares who it talks to and what it can do; an instance is one
*connection* (settings + credentials) with a vendor client on an injected
``httpx.AsyncClient``::

    class ShopifyConnector(Connector):
        name = "shopify"
        title = "Shopify"
        kind = "storefront"
        api_version = "2025-01"
        api_sunset = date(2026, 1, 1)
        settings_model = ShopifySettings
        webhook_handler = ShopifyWebhooks
        stream_types = (OrdersStream,)
        action_types = (CreateFulfillment, SetInventory)
        emulator = "crossdock.emulators.shopify:create_app"

        def setup(self) -> None:
            self.client = VendorClient(self.http, connection=self.connection, ...)

Third-party connectors are packages that register their class under the entry-point
group ``crossdock.connectors`` (see :mod:`crossdock.sdk.registry`).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, ClassVar

import httpx

from crossdock.sdk.actions import Action
from crossdock.sdk.settings import Settings, secret_values
from crossdock.sdk.streams import Stream
from crossdock.sdk.webhooks import WebhookHandler
from crossdock.security.redact import Redactor

__all__ = ["SUNSET_WARNING_DAYS", "Connector"]

SUNSET_WARNING_DAYS = 90


class Connector:
    """Base of every connector (see the module docstring)."""

    name: ClassVar[str]
    """The name used as ``connector:`` in ``crossdock.yaml``."""
    title: ClassVar[str]
    kind: ClassVar[str] = "generic"
    """storefront, marketplace, wms, carrier, erp or generic."""
    api_version: ClassVar[str]
    """The vendor API version this connector speaks."""
    api_sunset: ClassVar[date | None] = None
    """When the vendor stops supporting ``api_version`` (None: not announced)."""
    settings_model: ClassVar[type[Settings]]
    webhook_handler: ClassVar[type[WebhookHandler] | None] = None
    stream_types: ClassVar[tuple[type[Stream], ...]] = ()
    action_types: ClassVar[tuple[type[Action], ...]] = ()
    emulator: ClassVar[str | None] = None
    """``module:factory`` making this vendor's emulator (an ASGI app)."""

    def __init__(
        self,
        settings: Settings | dict[str, Any],
        *,
        http: httpx.AsyncClient,
        connection: str = "connection",
        redactor: Redactor | None = None,
    ) -> None:
        if not isinstance(settings, self.settings_model):
            settings = self.settings_model.model_validate(settings)
        self.settings = settings
        self.http = http
        self.connection = connection
        self.redactor = redactor or Redactor(secret_values(settings))
        self.setup()
        self.webhooks: WebhookHandler | None = self.build_webhooks()
        self.streams: dict[str, Stream] = {s.name: s for s in self.build_streams()}
        self.actions: dict[str, Action] = {a.name: a for a in self.build_actions()}

    def setup(self) -> None:
        """Build the vendor client and anything the handlers share (override)."""

    def build_webhooks(self) -> WebhookHandler | None:
        """The webhook handler (default: ``webhook_handler(self)``)."""
        return self.webhook_handler(self) if self.webhook_handler is not None else None

    def build_streams(self) -> list[Stream]:
        """The polling streams (default: one of each ``stream_types``)."""
        return [s(self) for s in self.stream_types]

    def build_actions(self) -> list[Action]:
        """The writes (default: one of each ``action_types``)."""
        return [a(self) for a in self.action_types]

    def capabilities(self) -> list[str]:
        """What this connection can do: ``webhooks``, ``stream:NAME``, ``action:NAME``."""
        caps = ["webhooks"] if self.webhooks is not None else []
        caps += [f"stream:{n}" for n in self.streams]
        caps += [f"action:{n}" for n in self.actions]
        return caps

    @classmethod
    def days_to_sunset(cls, today: date | None = None) -> int | None:
        """Days until ``api_sunset`` (negative once past), or None if not announced."""
        if cls.api_sunset is None:
            return None
        today = today or datetime.now(UTC).date()
        return (cls.api_sunset - today).days

    @classmethod
    def sunset_warning(cls, today: date | None = None) -> str | None:
        """A plain warning when the pinned API version's sunset is near or past."""
        days = cls.days_to_sunset(today)
        if days is None or days > SUNSET_WARNING_DAYS:
            return None
        if days < 0:
            return (
                f"{cls.title} API version {cls.api_version} passed its sunset on "
                f"{cls.api_sunset}; {cls.title} now answers with a newer version. Upgrade "
                "Crossdock's connector."
            )
        return (
            f"{cls.title} API version {cls.api_version} reaches its sunset in {days} days "
            f"({cls.api_sunset}). Upgrade Crossdock's connector before then."
        )

    async def check(self) -> str:
        """Make one cheap authenticated call; return what it proved (``connections
        test``). Raise :class:`~crossdock.sdk.errors.VendorError` when it fails."""
        raise NotImplementedError
