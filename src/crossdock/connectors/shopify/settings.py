"""Settings of a Shopify connection."""

from __future__ import annotations

from typing import Self

from pydantic import SecretStr, model_validator

from crossdock.sdk.settings import Settings

__all__ = ["DEFAULT_API_VERSION", "ShopifySettings"]

DEFAULT_API_VERSION = "2025-01"


class ShopifySettings(Settings):
    """One Shopify store.

    Auth: either ``access_token`` (a custom app's Admin API token, or one obtained by the
    OAuth install), or ``client_id`` + ``client_secret`` (client-credentials grant against
    ``{base_url}/admin/oauth/access_token``). ``client_secret`` is also the key Shopify
    signs webhooks with, so set it whenever the connection receives webhooks.
    """

    base_url: str
    """``https://{shop}.myshopify.com`` (or an emulator's root URL)."""
    shop_domain: str
    """``{shop}.myshopify.com``: checked against each webhook's shop-domain header."""
    access_token: SecretStr | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    api_version: str = DEFAULT_API_VERSION
    location_id: str | None = None
    """Inventory location used by ``set_inventory`` (gid or numeric id); None: the
    shop's first location."""
    notify_customer: bool = True
    """Whether ``create_fulfillment`` asks Shopify to e-mail the customer."""
    orders_page_size: int = 10
    """Orders per GraphQL page when polling (10 keeps a page under 1000 cost points)."""

    @model_validator(mode="after")
    def _some_credential(self) -> Self:
        if self.access_token is None and not (self.client_id and self.client_secret):
            raise ValueError(
                "give access_token, or client_id and client_secret (client-credentials grant)"
            )
        if not 1 <= self.orders_page_size <= 50:
            raise ValueError("orders_page_size must be between 1 and 50")
        return self
