"""The Shopify connector (storefront), speaking Admin GraphQL 2025-01."""

from __future__ import annotations

from datetime import date

import httpx

from crossdock.sdk.auth import ApiKeyAuth, OAuth2ClientCredentials
from crossdock.sdk.client import VendorClient
from crossdock.sdk.connector import Connector
from crossdock.sdk.ratelimits import CostBucket

from .actions import CreateFulfillment, SetInventory
from .api import ShopifyApi, classify
from .documents import SHOP
from .settings import ShopifySettings
from .streams import OrdersStream
from .webhooks import ShopifyWebhooks

__all__ = ["ShopifyConnector"]


class ShopifyConnector(Connector):
    """Orders in (webhooks + polling), fulfilments and stock out."""

    name = "shopify"
    title = "Shopify"
    kind = "storefront"
    api_version = "2025-01"
    api_sunset = date(2026, 1, 1)  # each version is supported for about 12 months
    settings_model = ShopifySettings
    webhook_handler = ShopifyWebhooks
    stream_types = (OrdersStream,)
    action_types = (CreateFulfillment, SetInventory)
    emulator = "crossdock.emulators.shopify:create_app"

    settings: ShopifySettings

    def setup(self) -> None:
        s = self.settings
        base = s.base_url.rstrip("/")
        auth: httpx.Auth
        if s.access_token is not None:
            auth = ApiKeyAuth("X-Shopify-Access-Token", s.access_token.get_secret_value())
        else:
            assert s.client_id and s.client_secret  # the settings validator guarantees it
            auth = OAuth2ClientCredentials(
                f"{base}/admin/oauth/access_token",
                s.client_id,
                s.client_secret.get_secret_value(),
                header="X-Shopify-Access-Token",
                scheme=None,
            )
        self.auth = auth
        self.rate = CostBucket(1000.0, 50.0)
        self.client = VendorClient(
            self.http,
            connection=self.connection,
            base_url=base,
            auth=auth,
            rate=self.rate,
            classify=classify,
            redactor=self.redactor,
        )
        self.api = ShopifyApi(self.client, s.api_version)

    @property
    def answered_version(self) -> str | None:
        """The API version Shopify last answered with, when not the pinned one."""
        return self.api.answered_version

    def version_warning(self) -> str | None:
        """A plain warning when Shopify answered with another version than pinned."""
        answered = self.api.answered_version
        if answered is None:
            return None
        return (
            f"Shopify answered with API version {answered}, not the pinned "
            f"{self.api.api_version}: the pinned version is no longer supported and Shopify "
            "fell forward. Upgrade Crossdock's Shopify connector."
        )

    async def check(self) -> str:
        data = await self.api.execute(SHOP)
        shop = (data or {}).get("shop") or {}
        version = self.api.answered_version or self.api.api_version
        return (
            f"Shopify shop {shop.get('name')} ({shop.get('myshopifyDomain')}), "
            f"API version {version}"
        )
