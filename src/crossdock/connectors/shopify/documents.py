"""Every GraphQL document the Shopify connector sends, as module constants.

Tests enumerate :data:`DOCUMENTS` and validate each one against Shopify's published
Admin API schema of the pinned version (2025-01), so a typo or a removed field fails CI
instead of a delivery.
"""

from __future__ import annotations

__all__ = [
    "DOCUMENTS",
    "FULFILLMENT_CREATE",
    "INVENTORY_BY_SKU",
    "INVENTORY_SET_QUANTITIES",
    "LOCATIONS",
    "ORDERS",
    "ORDER_FULFILLMENT_STATE",
    "ORDER_LINE_ITEMS",
    "SHOP",
]

_MONEY = "shopMoney { amount currencyCode }"

ORDER_FIELDS = f"""
fragment OrderFields on Order {{
  id
  legacyResourceId
  name
  email
  phone
  createdAt
  updatedAt
  cancelledAt
  displayFinancialStatus
  displayFulfillmentStatus
  currencyCode
  note
  tags
  customer {{ id legacyResourceId firstName lastName phone }}
  shippingAddress {{ ...AddressFields }}
  billingAddress {{ ...AddressFields }}
  subtotalPriceSet {{ {_MONEY} }}
  totalTaxSet {{ {_MONEY} }}
  totalShippingPriceSet {{ {_MONEY} }}
  totalDiscountsSet {{ {_MONEY} }}
  totalPriceSet {{ {_MONEY} }}
  shippingLines(first: 5) {{
    nodes {{ title code originalPriceSet {{ {_MONEY} }} }}
  }}
  lineItems(first: 10) {{
    pageInfo {{ hasNextPage endCursor }}
    nodes {{ ...LineItemFields }}
  }}
}}

fragment LineItemFields on LineItem {{
  id
  sku
  name
  quantity
  currentQuantity
  variant {{ id legacyResourceId }}
  originalUnitPriceSet {{ {_MONEY} }}
}}

fragment AddressFields on MailingAddress {{
  name
  firstName
  lastName
  company
  address1
  address2
  city
  provinceCode
  zip
  countryCodeV2
  phone
}}
"""

SHOP = """
query CrossdockShop {
  shop { name myshopifyDomain currencyCode }
}
"""

ORDERS = (
    """
query CrossdockOrders($first: Int!, $after: String, $query: String) {
  orders(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {
    pageInfo { hasNextPage endCursor }
    nodes { ...OrderFields }
  }
}
"""
    + ORDER_FIELDS
)
"""Orders changed since a time, oldest change first (the backfill / polling stream)."""

ORDER_LINE_ITEMS = f"""
query CrossdockOrderLineItems($id: ID!, $after: String) {{
  order(id: $id) {{
    lineItems(first: 50, after: $after) {{
      pageInfo {{ hasNextPage endCursor }}
      nodes {{
        id
        sku
        name
        quantity
        currentQuantity
        variant {{ id legacyResourceId }}
        originalUnitPriceSet {{ {_MONEY} }}
      }}
    }}
  }}
}}
"""
"""The rest of an order's line items when it has more than fit in :data:`ORDERS`."""

ORDER_FULFILLMENT_STATE = """
query CrossdockOrderFulfillmentState($id: ID!) {
  order(id: $id) {
    id
    legacyResourceId
    name
    cancelledAt
    displayFulfillmentStatus
    fulfillments(first: 20) {
      id
      legacyResourceId
      status
      createdAt
      trackingInfo(first: 3) { company number url }
    }
    fulfillmentOrders(first: 5) {
      nodes {
        id
        status
        lineItems(first: 50) {
          nodes {
            id
            remainingQuantity
            totalQuantity
            lineItem { id sku }
          }
        }
      }
    }
  }
}
"""
"""What a fulfilment needs: existing fulfilments (idempotency) and open work. Sized to
stay near 640 cost points (fulfilment orders of up to 50 lines)."""

FULFILLMENT_CREATE = """
mutation CrossdockFulfillmentCreate($fulfillment: FulfillmentInput!, $message: String) {
  fulfillmentCreate(fulfillment: $fulfillment, message: $message) {
    fulfillment {
      id
      legacyResourceId
      status
      createdAt
      trackingInfo(first: 5) { company number url }
    }
    userErrors { field message }
  }
}
"""

LOCATIONS = """
query CrossdockLocations {
  locations(first: 5) {
    nodes { id legacyResourceId name }
  }
}
"""

INVENTORY_BY_SKU = """
query CrossdockInventoryBySku($query: String!, $locationId: ID!) {
  productVariants(first: 5, query: $query) {
    nodes {
      id
      sku
      inventoryItem {
        id
        legacyResourceId
        tracked
        inventoryLevel(locationId: $locationId) {
          id
          quantities(names: ["available", "on_hand"]) { name quantity }
        }
      }
    }
  }
}
"""
"""A SKU's inventory item and its quantities at one location (read before a set)."""

INVENTORY_SET_QUANTITIES = """
mutation CrossdockInventorySet($input: InventorySetQuantitiesInput!) {
  inventorySetQuantities(input: $input) {
    inventoryAdjustmentGroup {
      id
      reason
      changes { name delta quantityAfterChange }
    }
    userErrors { field message code }
  }
}
"""
"""Compare-and-set: ``compareQuantity`` is the quantity read just before."""

DOCUMENTS: dict[str, str] = {
    "SHOP": SHOP,
    "ORDERS": ORDERS,
    "ORDER_LINE_ITEMS": ORDER_LINE_ITEMS,
    "ORDER_FULFILLMENT_STATE": ORDER_FULFILLMENT_STATE,
    "FULFILLMENT_CREATE": FULFILLMENT_CREATE,
    "LOCATIONS": LOCATIONS,
    "INVENTORY_BY_SKU": INVENTORY_BY_SKU,
    "INVENTORY_SET_QUANTITIES": INVENTORY_SET_QUANTITIES,
}
"""Every document the connector sends, by constant name."""
