"""Keyset pagination, time conversion and JSON helpers shared by the routes.

Lists answer ``{"items": [...], "next_cursor": ...}``. The cursor is opaque to clients:
the last item's id, encoded. Times are stored as epoch seconds and shown as ISO 8601 UTC.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import Depends, Query

from crossdock.api.problems import Problem

MAX_LIMIT = 500


@dataclass(frozen=True)
class PageParams:
    """``limit`` and the decoded ``cursor`` (``None`` on the first page)."""

    limit: int
    after: int | str | None


def encode_cursor(value: int | str) -> str:
    """An opaque cursor for a keyset position."""
    return base64.urlsafe_b64encode(orjson.dumps([value])).decode().rstrip("=")


def decode_cursor(cursor: str) -> int | str:
    """The keyset position in a cursor made by :func:`encode_cursor`."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        value = None
    if not (isinstance(value, list) and len(value) == 1 and isinstance(value[0], int | str)):
        raise Problem(
            422,
            "The cursor is not valid.",
            title="Invalid request",
            issues=[
                {
                    "location": "query",
                    "field": "cursor",
                    "message": "not a cursor this API made",
                    "expected": "the next_cursor of a previous page",
                }
            ],
        )
    found: int | str = value[0]
    return found


def page_params(
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description="Items per page (at most 500).")
    ] = 50,
    cursor: Annotated[
        str | None, Query(description="The next_cursor of the previous page.")
    ] = None,
) -> PageParams:
    """The pagination query parameters of a list route."""
    return PageParams(limit=limit, after=decode_cursor(cursor) if cursor else None)


Page = Annotated[PageParams, Depends(page_params)]


def page(
    rows: Sequence[Any],
    params: PageParams,
    render: Callable[[Any], dict[str, Any]],
    key: Callable[[Any], int | str] = lambda r: r.id,
) -> dict[str, Any]:
    """A page from ``rows`` fetched with ``limit + 1``: the items and the next cursor."""
    more = len(rows) > params.limit
    rows = rows[: params.limit]
    return {
        "items": [render(r) for r in rows],
        "next_cursor": encode_cursor(key(rows[-1])) if more and rows else None,
    }


def iso(ts: float | None) -> str | None:
    """Epoch seconds as ISO 8601 UTC (``2025-01-31T12:00:00.000Z``)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def epoch(value: datetime | float | int | None) -> float | None:
    """A time from a request (naive means UTC) as epoch seconds."""
    if value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def json_or_text(text: str | None) -> Any:
    """A stored JSON text parsed, or the text itself if it is not JSON."""
    if text is None:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text
