"""Vendor exchanges recorded by the SDK's client, as rows of the audit trail."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from crossdock.sdk.client import Exchange

__all__ = ["exchange_rows"]


def exchange_rows(
    exchanges: Iterable[Exchange],
    *,
    workspace: str,
    delivery_id: int,
    connection: str,
    correlation_id: str,
) -> list[dict[str, Any]]:
    """``attempts`` rows (``delivery_id`` 0 for polling) for already-redacted exchanges."""
    return [
        {
            "workspace": workspace,
            "delivery_id": delivery_id,
            "connection": connection,
            "correlation_id": correlation_id,
            "started_at": x.started_at,
            "latency_ms": x.latency_ms,
            "method": x.method,
            "url": x.url,
            "status": x.status,
            "outcome": x.outcome,
            "error": x.error,
            "request_headers": orjson.dumps(x.request_headers).decode(),
            "request_body": x.request_body,
            "response_headers": orjson.dumps(x.response_headers).decode(),
            "response_body": x.response_body,
        }
        for x in exchanges
    ]
