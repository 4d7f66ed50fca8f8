"""The ``orders`` stream: order backfill and polling over GraphQL.

``orders(first:, after:, query: "updated_at:>='...'", sortKey: UPDATED_AT)`` read page by
page with ``pageInfo {hasNextPage endCursor}`` (a :class:`CursorPaginator` over the
variables). Orders with more line items than the first page holds get the rest with
``ORDER_LINE_ITEMS``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from crossdock.sdk.events import IncomingEvent
from crossdock.sdk.pagination import CursorPaginator, dig
from crossdock.sdk.streams import Cursor, Stream

from .documents import ORDER_LINE_ITEMS, ORDERS
from .mappers import order_from_graphql, utc_version

__all__ = ["OrdersStream", "event_type_for"]


def event_type_for(node: dict[str, Any]) -> str:
    """order.cancelled / order.created (never changed since) / order.updated."""
    if node.get("cancelledAt"):
        return "order.cancelled"
    if utc_version(node.get("createdAt")) == utc_version(node.get("updatedAt")):
        return "order.created"
    return "order.updated"


class OrdersStream(Stream):
    """Orders changed since the cursor, oldest change first."""

    name = "orders"
    event_types = ("order.created", "order.updated", "order.cancelled")
    initial_cursor = "1970-01-01T00:00:00Z"
    lag_seconds = 60.0
    interval_seconds = 60.0

    async def _all_lines(self, node: dict[str, Any]) -> list[dict[str, Any]]:
        conn = node.get("lineItems") or {}
        lines = list(conn.get("nodes") or [])
        info = conn.get("pageInfo") or {}
        after = info.get("endCursor")
        while info.get("hasNextPage") and after:
            data = await self.connector.api.execute(
                ORDER_LINE_ITEMS, {"id": node["id"], "after": after}
            )
            page = dig(data, "order.lineItems") or {}
            lines += page.get("nodes") or []
            info = page.get("pageInfo") or {}
            after = info.get("endCursor")
        return lines

    async def read(self, cursor: Cursor) -> AsyncIterator[IncomingEvent]:
        paginator = CursorPaginator(
            "data.orders.pageInfo.endCursor", "after", "data.orders.pageInfo.hasNextPage"
        )
        variables: dict[str, Any] = paginator.first(
            {
                "first": self.connector.settings.orders_page_size,
                "query": f"updated_at:>='{cursor.start()}'",
            }
        )
        connection = self.connector.connection
        for _ in range(10_000):
            resp = await self.connector.api.request(ORDERS, variables)
            nodes: list[dict[str, Any]] = dig(resp.body, "data.orders.nodes") or []
            for node in nodes:
                version = utc_version(node.get("updatedAt"))
                oid = str(node.get("legacyResourceId"))
                if cursor.seen(version, oid):
                    continue
                lines = await self._all_lines(node)
                record = order_from_graphql(node, connection, lines)
                yield IncomingEvent(
                    type=event_type_for(node),
                    record_key=record["id"],
                    record=record,
                    version=version,
                    position=version,
                )
                cursor.advance(version, oid)
            nxt = paginator.next(resp, nodes, variables)
            if nxt is None:
                return
            variables = nxt.params
