"""Paginators: how a vendor's list is read page by page.

A paginator says what the first request adds to the query and, from an answer, what the
next request is (``None`` when the list is done). :func:`paginate` drives one.

- :class:`LinkHeaderPaginator` — ``Link: <url>; rel="next"`` (Shopify REST, WooCommerce,
  GitHub-style APIs); the next URL carries everything (Shopify's ``page_info`` accepts
  only ``limit`` and ``fields``).
- :class:`CursorPaginator` — a cursor in the body (``pageInfo.endCursor`` +
  ``hasNextPage``, or ``next_cursor``) sent back as a parameter.
- :class:`PageNumberPaginator` — ``page`` / ``per_page`` (1-based), stopping on a short
  page or at ``X-WP-TotalPages``.
- :class:`OffsetPaginator` — ``offset`` / ``limit``.
- :class:`NextTokenPaginator` — a ``NextToken`` in the body (Amazon SP-API).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from crossdock.sdk.client import VendorClient, VendorResponse

__all__ = [
    "CursorPaginator",
    "LinkHeaderPaginator",
    "NextRequest",
    "NextTokenPaginator",
    "OffsetPaginator",
    "PageNumberPaginator",
    "Paginator",
    "dig",
    "paginate",
]


def dig(data: Any, path: str) -> Any:
    """The value at a dotted path (``payload.NextToken``); ``None`` where it is absent."""
    cur = data
    for part in path.split("."):
        if isinstance(cur, Mapping):
            cur = cur.get(part)
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            return None
    return cur


@dataclass(frozen=True)
class NextRequest:
    """The next page: a new path/URL (or the same when ``None``) and its parameters."""

    path: str | None
    params: dict[str, Any]


class Paginator(Protocol):
    """Reads a list page by page."""

    def first(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The first request's parameters."""
        ...

    def next(
        self, response: VendorResponse, items: list[Any], params: Mapping[str, Any]
    ) -> NextRequest | None:
        """The next request, or ``None`` when this was the last page."""
        ...


class LinkHeaderPaginator:
    """Follow ``rel="next"`` in the ``Link`` header."""

    def __init__(self, rel: str = "next", keep_params: tuple[str, ...] = ()) -> None:
        self.rel = rel
        self.keep_params = keep_params

    def first(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return dict(params)

    def next(
        self, response: VendorResponse, items: list[Any], params: Mapping[str, Any]
    ) -> NextRequest | None:
        link = response.response.links.get(self.rel)
        if not link or not link.get("url"):
            return None
        return NextRequest(link["url"], {k: params[k] for k in self.keep_params if k in params})


class CursorPaginator:
    """A cursor read from the body at ``cursor_path`` and sent back as ``param``."""

    def __init__(self, cursor_path: str, param: str, has_more_path: str | None = None) -> None:
        self.cursor_path = cursor_path
        self.param = param
        self.has_more_path = has_more_path

    def first(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return dict(params)

    def next(
        self, response: VendorResponse, items: list[Any], params: Mapping[str, Any]
    ) -> NextRequest | None:
        if self.has_more_path is not None and not dig(response.body, self.has_more_path):
            return None
        cursor = dig(response.body, self.cursor_path)
        if cursor in (None, "") or cursor == params.get(self.param):
            return None  # done, or the vendor repeats the cursor (would loop)
        return NextRequest(None, {**params, self.param: cursor})


class PageNumberPaginator:
    """``page`` (1-based) and ``per_page``; stop on a short page or the total pages."""

    def __init__(
        self,
        page_param: str = "page",
        size_param: str = "per_page",
        size: int = 100,
        total_pages_header: str | None = "X-WP-TotalPages",
        start: int = 1,
    ) -> None:
        self.page_param = page_param
        self.size_param = size_param
        self.size = size
        self.total_pages_header = total_pages_header
        self.start = start

    def first(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return {**params, self.page_param: self.start, self.size_param: self.size}

    def next(
        self, response: VendorResponse, items: list[Any], params: Mapping[str, Any]
    ) -> NextRequest | None:
        page = int(params.get(self.page_param, self.start))
        if self.total_pages_header:
            total = response.headers.get(self.total_pages_header)
            if total is not None and total.isdigit() and page >= int(total):
                return None
        if len(items) < self.size:
            return None
        return NextRequest(None, {**params, self.page_param: page + 1})


class OffsetPaginator:
    """``offset`` and ``limit``; stop on a short page or at ``total_path``."""

    def __init__(
        self,
        offset_param: str = "offset",
        limit_param: str = "limit",
        limit: int = 100,
        total_path: str | None = None,
    ) -> None:
        self.offset_param = offset_param
        self.limit_param = limit_param
        self.limit = limit
        self.total_path = total_path

    def first(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return {**params, self.offset_param: 0, self.limit_param: self.limit}

    def next(
        self, response: VendorResponse, items: list[Any], params: Mapping[str, Any]
    ) -> NextRequest | None:
        offset = int(params.get(self.offset_param, 0)) + len(items)
        if self.total_path is not None:
            total = dig(response.body, self.total_path)
            if isinstance(total, int) and offset >= total:
                return None
        if len(items) < self.limit:
            return None
        return NextRequest(None, {**params, self.offset_param: offset})


class NextTokenPaginator:
    """A token in the body (``payload.NextToken``) sent back as ``param``; Amazon wants
    only the token on follow-up pages (``keep_params`` lists what else to repeat)."""

    def __init__(
        self,
        token_path: str = "payload.NextToken",
        param: str = "NextToken",
        keep_params: tuple[str, ...] = ("MarketplaceIds",),
    ) -> None:
        self.token_path = token_path
        self.param = param
        self.keep_params = keep_params

    def first(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return dict(params)

    def next(
        self, response: VendorResponse, items: list[Any], params: Mapping[str, Any]
    ) -> NextRequest | None:
        token = dig(response.body, self.token_path)
        if not token or token == params.get(self.param):
            return None  # done, or the vendor repeats the token (would loop)
        kept = {k: params[k] for k in self.keep_params if k in params}
        return NextRequest(None, {**kept, self.param: token})


async def paginate(
    client: VendorClient,
    path: str,
    *,
    paginator: Paginator,
    items: Callable[[VendorResponse], list[Any]],
    params: Mapping[str, Any] | None = None,
    max_pages: int = 1000,
    endpoint: str | None = None,
) -> AsyncIterator[list[Any]]:
    """Yield each page's items until the paginator says the list is done."""
    req_path: str = path
    req_params: dict[str, Any] = paginator.first(params or {})
    for _ in range(max_pages):
        resp = await client.get(req_path, params=req_params, endpoint=endpoint or path)
        page = items(resp)
        yield page
        nxt = paginator.next(resp, page, req_params)
        if nxt is None:
            return
        if nxt.path is not None:
            req_path = nxt.path
        req_params = nxt.params
