"""``crossdock send``: post a signed test webhook to a running hub, as the vendor would."""

from __future__ import annotations

import random
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson

from crossdock.ingest.signatures import (
    HmacSignature,
    StandardWebhooksSignature,
    sign_hmac,
    sign_standard_webhooks,
)


def sample_order(n: int, *, sku: str | None = None) -> dict[str, Any]:
    """A realistic order body matching the example project's shop connection."""
    rng = random.Random(n)
    skus = ["ABC-1", "ABC-2", "ABC-3"]
    quantities = [rng.randint(1, 3) for _ in range(rng.randint(1, 3))]
    lines = [{"sku": sku or rng.choice(skus), "quantity": q, "price": "19.90"} for q in quantities]
    total = sum(quantities) * 19.90
    return {
        "id": str(1000 + n),
        "version": 1,
        "name": f"#{1000 + n}",
        "currency": "EUR",
        "total": f"{total:.2f}",
        "created_at": datetime.now(UTC).isoformat(),
        "line_items": lines,
    }


def signed_headers(signature: Any, body: bytes) -> dict[str, str]:
    """The signature headers the connection expects for ``body``."""
    if isinstance(signature, HmacSignature):
        value = sign_hmac(signature.secret, body, signature.encoding, signature.prefix)
        return {signature.header: value}
    if isinstance(signature, StandardWebhooksSignature):
        return sign_standard_webhooks(
            signature.secret, "msg_" + uuid.uuid4().hex, time.time(), body
        )
    return {}


def send(url: str, signature: Any, body: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
    """POST one webhook, signed like the vendor would."""
    raw = orjson.dumps(body)
    all_headers = {"Content-Type": "application/json", **headers, **signed_headers(signature, raw)}
    return httpx.post(url, content=raw, headers=all_headers, timeout=10)
