"""Shopify connector: Admin GraphQL 2025-01 first.

- Webhooks ``orders/create|updated|cancelled`` -> ``order.created|updated|cancelled``
  (canonical Order; event id = ``X-Shopify-Event-Id``).
- Stream ``orders``: backfill/polling by ``updated_at`` with cursor pagination.
- Actions ``create_fulfillment`` (Shipment -> fulfilment with tracking) and
  ``set_inventory`` (InventoryLevel -> compare-and-set of "available").
- OAuth install helpers in :mod:`.oauth`; documents in :mod:`.documents`.
"""

from .connector import ShopifyConnector
from .settings import ShopifySettings

__all__ = ["ShopifyConnector", "ShopifySettings"]
