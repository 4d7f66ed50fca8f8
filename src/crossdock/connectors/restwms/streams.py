"""Polling streams of a declared WMS: ``shipments`` and ``stock``.

Each reads its list endpoint with the declared paginator (Link header, cursor, page,
offset or next-token, from :mod:`crossdock.sdk.pagination`), sends the stream's position
as ``cursor.param``, maps every item with the declared mapping and waits out the WMS's
429s as ``Retry-After`` says.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, ClassVar

from crossdock.connectors.restwms.definition import SITE, CompiledList
from crossdock.connectors.restwms.records import RecordMappingError, key_value, to_record
from crossdock.connectors.restwms.settings import (
    CursorPagination,
    LinkPagination,
    NextTokenPagination,
    OffsetPagination,
    PagePagination,
    PaginationConfig,
)
from crossdock.flows.failures import MappingFailure, evaluate
from crossdock.sdk.events import IncomingEvent
from crossdock.sdk.pagination import (
    CursorPaginator,
    LinkHeaderPaginator,
    NextRequest,
    NextTokenPaginator,
    OffsetPaginator,
    PageNumberPaginator,
    Paginator,
)
from crossdock.sdk.streams import Cursor, Stream

if TYPE_CHECKING:
    from crossdock.connectors.restwms import RestWmsConnector

__all__ = ["ListStream", "ShipmentsStream", "StockStream", "build_paginator"]

MAX_PAGES = 1000


class _OnePage:
    """The whole list in one answer."""

    def first(self, params: Any) -> dict[str, Any]:
        return dict(params)

    def next(self, response: Any, items: list[Any], params: Any) -> NextRequest | None:
        return None


def build_paginator(cfg: PaginationConfig) -> Paginator:
    """The SDK paginator for a declared ``pagination``."""
    if isinstance(cfg, LinkPagination):
        return LinkHeaderPaginator(cfg.rel, tuple(cfg.keep_params))
    if isinstance(cfg, CursorPagination):
        return CursorPaginator(cfg.cursor_path, cfg.param, cfg.has_more_path)
    if isinstance(cfg, PagePagination):
        return PageNumberPaginator(
            cfg.page_param, cfg.size_param, cfg.size, cfg.total_pages_header, cfg.start
        )
    if isinstance(cfg, OffsetPagination):
        return OffsetPaginator(cfg.offset_param, cfg.limit_param, cfg.limit, cfg.total_path)
    if isinstance(cfg, NextTokenPagination):
        return NextTokenPaginator(cfg.token_path, cfg.param, tuple(cfg.keep_params))
    return _OnePage()


class ListStream(Stream):
    """A declared list endpoint read incrementally."""

    endpoint: ClassVar[str]
    emit: ClassVar[str]

    def __init__(self, connector: RestWmsConnector) -> None:
        super().__init__(connector)
        self.wms = connector
        self.list: CompiledList = connector.definition.lists[self.endpoint]
        cfg = getattr(connector.settings.endpoints, self.endpoint)
        self.pagination: PaginationConfig = cfg.pagination

    async def read(self, cursor: Cursor) -> AsyncIterator[IncomingEvent]:
        lst = self.list
        where = f"endpoints.{self.endpoint}"
        paginator = build_paginator(self.pagination)
        params: dict[str, Any] = dict(lst.params)
        if lst.cursor_param:
            params[lst.cursor_param] = cursor.start()
        path, req = lst.path, paginator.first(params)
        for _ in range(MAX_PAGES):
            resp = await self.wms.api.read(path, req, endpoint=lst.path)
            headers = {k.lower(): v for k, v in resp.headers.items()}
            try:
                items = evaluate(
                    lst.items,
                    {"response": resp.body, "headers": headers},
                    field=f"{where}.items",
                    line=0,
                    site=SITE,
                )
            except MappingFailure as failure:
                raise RecordMappingError(
                    f"the answer of {lst.path} has no list where {where}.items looks: "
                    f"{failure.reason}"
                ) from None
            page = items if isinstance(items, list) else []
            for item in page:
                ev = self._event(item, resp.body, headers, where)
                if cursor.seen(ev.position, ev.record_key):
                    continue
                cursor.advance(ev.position, ev.record_key)
                yield ev
            nxt = paginator.next(resp, page, req)
            if nxt is None:
                return
            if nxt.path is not None:
                path = nxt.path
            req = nxt.params

    def _event(self, item: Any, body: Any, headers: dict[str, str], where: str) -> IncomingEvent:
        lst = self.list
        ctx = {"data": item, "body": body, "headers": headers}
        record = to_record(lst.mapping, ctx, self.emit, lst.mapping_name)
        kctx = {**ctx, "record": record}
        key = key_value(lst.record_key, kctx, f"{where}.record_key")
        if key is None:
            raise RecordMappingError(f"{where}.record_key gave an empty key")
        version = key_value(lst.version, kctx, f"{where}.version")
        position = (
            key_value(lst.position, ctx, f"{where}.cursor.position")
            if lst.position is not None
            else version
        )
        return IncomingEvent(
            type=self.emit, record_key=key, record=record, version=version, position=position
        )


class ShipmentsStream(ListStream):
    """Shipments made by the warehouse (``endpoints.get_shipments``)."""

    name = "shipments"
    event_types = ("shipment.created",)
    endpoint = "get_shipments"
    emit = "shipment.created"


class StockStream(ListStream):
    """Stock levels (``endpoints.get_stock``)."""

    name = "stock"
    event_types = ("inventory.updated",)
    endpoint = "get_stock"
    emit = "inventory.updated"
