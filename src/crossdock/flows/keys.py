"""The idempotency key of a delivery: the same (destination, record, operation, version)
always gives the same key, so a retry can never create a twin at the destination."""

from __future__ import annotations

import hashlib

__all__ = ["idempotency_key"]

_SEP = "\x1f"  # ASCII unit separator: cannot appear by accident in names or keys


def idempotency_key(connection: str, record_key: str, operation: str, version: str | None) -> str:
    """SHA-256 (hex) of destination connection, record key, operation and source version."""
    text = _SEP.join([connection, record_key, operation, version or ""])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
