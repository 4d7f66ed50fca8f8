"""Paginators walk a real (in-process) vendor list page by page and stop at its end."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from crossdock.sdk.client import VendorClient, VendorResponse
from crossdock.sdk.pagination import (
    CursorPaginator,
    LinkHeaderPaginator,
    NextTokenPaginator,
    OffsetPaginator,
    PageNumberPaginator,
    Paginator,
    dig,
    paginate,
)

pytestmark = pytest.mark.anyio

ITEMS = [{"id": i} for i in range(1, 10)]  # 9 items: three full pages of 3
SIZE = 3
BASE = "http://vendor.test"


class Vendor:
    def __init__(self) -> None:
        self.requests: list[dict[str, str]] = []
        self.app = Starlette(
            routes=[
                Route("/link", self.link),
                Route("/cursor", self.cursor),
                Route("/pages", self.pages),
                Route("/offset", self.offset),
                Route("/orders/v0/orders", self.next_token),
                Route("/endless", self.endless),
                Route("/stuck", self.stuck),
            ]
        )

    def _seen(self, request: Request) -> dict[str, str]:
        q = dict(request.query_params)
        self.requests.append({"path": request.url.path, **q})
        return q

    async def link(self, request: Request) -> Response:
        # Shopify: the first request may filter; page_info URLs carry only limit.
        q = self._seen(request)
        if "page_info" in q:
            assert set(q) == {"page_info", "limit"}, q
            page = int(q["page_info"].removeprefix("p"))
        else:
            page = 1
        chunk = ITEMS[(page - 1) * SIZE : page * SIZE]
        headers = {}
        if page * SIZE < len(ITEMS):
            nxt = f"{BASE}/link?page_info=p{page + 1}&limit={SIZE}"
            headers["Link"] = (
                f'<{BASE}/link?page_info=p{page - 1}>; rel="previous", <{nxt}>; rel="next"'
            )
        return JSONResponse({"orders": chunk}, headers=headers)

    async def cursor(self, request: Request) -> Response:
        q = self._seen(request)
        start = int(q["after"].removeprefix("c")) if "after" in q else 0
        chunk = ITEMS[start : start + SIZE]
        end = start + len(chunk)
        return JSONResponse(
            {
                "data": {
                    "orders": {
                        "nodes": chunk,
                        "pageInfo": {"hasNextPage": end < len(ITEMS), "endCursor": f"c{end}"},
                    }
                }
            }
        )

    async def pages(self, request: Request) -> Response:
        q = self._seen(request)
        page, per = int(q["page"]), int(q["per_page"])
        chunk = ITEMS[(page - 1) * per : page * per]
        total_pages = -(-len(ITEMS) // per)
        return JSONResponse(
            chunk, headers={"X-WP-Total": str(len(ITEMS)), "X-WP-TotalPages": str(total_pages)}
        )

    async def offset(self, request: Request) -> Response:
        q = self._seen(request)
        off, lim = int(q["offset"]), int(q["limit"])
        return JSONResponse({"items": ITEMS[off : off + lim], "total": len(ITEMS)})

    async def next_token(self, request: Request) -> Response:
        q = self._seen(request)
        assert q.get("MarketplaceIds") == "ATVPDKIKX0DER", q
        if "NextToken" in q:
            # Amazon: with a NextToken, the other filters must not be repeated.
            assert set(q) == {"MarketplaceIds", "NextToken"}, q
            start = int(q["NextToken"].removeprefix("tok"))
        else:
            assert q.get("CreatedAfter") == "2024-01-01T00:00:00Z", q
            start = 0
        chunk = ITEMS[start : start + SIZE]
        payload: dict[str, Any] = {"Orders": chunk}
        if start + SIZE < len(ITEMS):
            payload["NextToken"] = f"tok{start + SIZE}"
        return JSONResponse({"payload": payload})

    async def endless(self, request: Request) -> Response:
        q = self._seen(request)
        n = int(q.get("cursor", "0"))
        return JSONResponse({"items": [{"id": n}], "next_cursor": str(n + 1)})

    async def stuck(self, request: Request) -> Response:
        self._seen(request)
        return JSONResponse({"items": [{"id": 1}], "next_cursor": "same"})


async def _walk(
    vendor: Vendor,
    path: str,
    paginator: Paginator,
    items: Any,
    params: dict[str, Any] | None = None,
    max_pages: int = 1000,
) -> list[list[Any]]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=vendor.app)) as http:
        client = VendorClient(http, connection="v", base_url=BASE)
        return [
            page
            async for page in paginate(
                client, path, paginator=paginator, items=items, params=params, max_pages=max_pages
            )
        ]


def _ids(pages: list[list[Any]]) -> list[int]:
    return [item["id"] for page in pages for item in page]


async def test_link_header_follows_rel_next_and_stops_without_it() -> None:
    vendor = Vendor()
    pages = await _walk(
        vendor,
        "/link",
        LinkHeaderPaginator(),
        lambda r: r.body["orders"],
        params={"status": "any", "limit": SIZE},
    )
    assert _ids(pages) == list(range(1, 10))
    assert len(pages) == 3
    assert vendor.requests == [
        {"path": "/link", "status": "any", "limit": "3"},
        {"path": "/link", "page_info": "p2", "limit": "3"},
        {"path": "/link", "page_info": "p3", "limit": "3"},
    ]


async def test_cursor_in_body_with_has_next_page() -> None:
    vendor = Vendor()
    pages = await _walk(
        vendor,
        "/cursor",
        CursorPaginator(
            "data.orders.pageInfo.endCursor",
            "after",
            has_more_path="data.orders.pageInfo.hasNextPage",
        ),
        lambda r: r.body["data"]["orders"]["nodes"],
        params={"query": "status:open"},
    )
    assert _ids(pages) == list(range(1, 10))
    assert [r.get("after") for r in vendor.requests] == [None, "c3", "c6"]
    assert all(r["query"] == "status:open" for r in vendor.requests)


async def test_page_number_stops_at_x_wp_totalpages_even_on_a_full_page() -> None:
    vendor = Vendor()
    pages = await _walk(
        vendor, "/pages", PageNumberPaginator(size=SIZE), lambda r: r.body, {"status": "any"}
    )
    assert _ids(pages) == list(range(1, 10))
    assert [(r["page"], r["per_page"]) for r in vendor.requests] == [
        ("1", "3"),
        ("2", "3"),
        ("3", "3"),
    ]


async def test_page_number_without_total_header_stops_on_a_short_page() -> None:
    vendor = Vendor()
    pages = await _walk(
        vendor,
        "/pages",
        PageNumberPaginator(size=4, total_pages_header=None),
        lambda r: r.body,
    )
    assert [len(p) for p in pages] == [4, 4, 1]
    assert len(vendor.requests) == 3


async def test_offset_limit_stops_at_total() -> None:
    vendor = Vendor()
    pages = await _walk(
        vendor,
        "/offset",
        OffsetPaginator(limit=SIZE, total_path="total"),
        lambda r: r.body["items"],
    )
    assert _ids(pages) == list(range(1, 10))
    assert [r["offset"] for r in vendor.requests] == ["0", "3", "6"]


async def test_offset_limit_without_total_stops_on_a_short_page() -> None:
    vendor = Vendor()
    pages = await _walk(vendor, "/offset", OffsetPaginator(limit=4), lambda r: r.body["items"])
    assert [len(p) for p in pages] == [4, 4, 1]
    assert [r["offset"] for r in vendor.requests] == ["0", "4", "8"]


async def test_next_token_keeps_only_marketplace_ids() -> None:
    vendor = Vendor()
    pages = await _walk(
        vendor,
        "/orders/v0/orders",
        NextTokenPaginator(),
        lambda r: r.body["payload"]["Orders"],
        params={"MarketplaceIds": "ATVPDKIKX0DER", "CreatedAfter": "2024-01-01T00:00:00Z"},
    )
    assert _ids(pages) == list(range(1, 10))
    assert [r.get("NextToken") for r in vendor.requests] == [None, "tok3", "tok6"]


async def test_max_pages_bounds_an_endless_list() -> None:
    vendor = Vendor()
    pages = await _walk(
        vendor,
        "/endless",
        CursorPaginator("next_cursor", "cursor"),
        lambda r: r.body["items"],
        max_pages=2,
    )
    assert len(pages) == 2
    assert len(vendor.requests) == 2


async def test_a_repeated_cursor_ends_the_list_instead_of_looping() -> None:
    vendor = Vendor()
    pages = await _walk(
        vendor, "/stuck", CursorPaginator("next_cursor", "cursor"), lambda r: r.body["items"]
    )
    assert len(pages) == 2  # the first page, then the page at "same"; "same" again ends it
    assert len(vendor.requests) == 2


def test_dig_reads_dotted_paths_through_dicts_and_lists() -> None:
    data = {"a": {"b": [{"c": 1}, {"c": 2}]}}
    assert dig(data, "a.b.1.c") == 2
    assert dig(data, "a.b.5.c") is None
    assert dig(data, "a.x.c") is None
    assert dig(None, "a") is None


def test_paginators_first_parameters() -> None:
    assert PageNumberPaginator(size=50).first({"q": 1}) == {"q": 1, "page": 1, "per_page": 50}
    assert OffsetPaginator(limit=20).first({}) == {"offset": 0, "limit": 20}
    assert LinkHeaderPaginator().first({"limit": 5}) == {"limit": 5}


def test_link_paginator_keeps_listed_params() -> None:
    resp = httpx.Response(
        200,
        headers={"Link": '<https://v/x?page_info=abc>; rel="next"'},
        request=httpx.Request("GET", "https://v/x"),
    )
    vr = VendorResponse(200, resp.headers, None, "", resp)
    nxt = LinkHeaderPaginator(keep_params=("fields",)).next(
        vr, [], {"fields": "id,name", "status": "any"}
    )
    assert nxt is not None
    assert nxt.path == "https://v/x?page_info=abc"
    assert nxt.params == {"fields": "id,name"}
