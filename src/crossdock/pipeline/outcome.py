"""The ONE place that turns a destination's answer into an outcome.

Outcomes decide what happens next:

- ``success``: the effect happened; record the cross-reference, emit follow-ups.
- ``retryable``: it did not happen and may work later (5xx, connection refused).
- ``rate_limited``: the vendor asked us to slow down (429); honour ``Retry-After``.
- ``uncertain``: the request left but no answer came (timeout after sending); verify at
  the destination before retrying.
- ``permanent``: retrying the same request will not help; a person must act.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

import aiohttp
import httpx


class Outcome(StrEnum):
    """What an attempt's result means for the delivery."""

    SUCCESS = "success"
    RETRYABLE = "retryable"
    RATE_LIMITED = "rate_limited"
    UNCERTAIN = "uncertain"
    PERMANENT = "permanent"


@dataclass(frozen=True)
class Classified:
    """An outcome with the plain-language reason, a category and the suggested fix."""

    outcome: Outcome
    category: str
    reason: str
    fix: str
    retry_after: float | None = None


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        dt = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, dt.timestamp() - (now if now is not None else time.time()))


def classify_response(
    status: int, headers: Mapping[str, str], connection: str, detail: str = ""
) -> Classified:
    """Classify an HTTP answer from connection ``connection``."""
    retry_after = parse_retry_after(headers.get("retry-after") or headers.get("Retry-After"))
    where = f"'{connection}'"
    said = f" It said: {detail}" if detail else ""
    if 200 <= status < 300:
        return Classified(Outcome.SUCCESS, "ok", "delivered", "")
    if status == 429:
        return Classified(
            Outcome.RATE_LIMITED,
            "rate_limited",
            f"{where} asked us to slow down (HTTP 429).",
            "Nothing to do: Crossdock waits as the system asked and tries again.",
            retry_after,
        )
    if status in (408, 409, 425) or status >= 500:
        return Classified(
            Outcome.RETRYABLE,
            "unavailable",
            f"{where} could not take the request right now (HTTP {status}).{said}",
            f"Usually temporary. If it lasts, check that {where} is up, then retry.",
            retry_after,
        )
    if status in (401, 403):
        return Classified(
            Outcome.PERMANENT,
            "auth",
            f"{where} refused our credentials (HTTP {status}).{said}",
            f"Update the credentials of connection {where}, then retry the delivery.",
        )
    if status == 404:
        return Classified(
            Outcome.PERMANENT,
            "not_found",
            f"{where} says the address or the record does not exist (HTTP 404).{said}",
            f"Check the operation's path on connection {where} and the record's "
            "cross-reference, then retry.",
        )
    if status == 413:
        return Classified(
            Outcome.PERMANENT,
            "rejected",
            f"{where} says the request is too large (HTTP 413).",
            "Reduce what the flow's mapping sends, then edit and retry.",
        )
    return Classified(
        Outcome.PERMANENT,
        "rejected",
        f"{where} rejected the data (HTTP {status}).{said}",
        "Correct the data (edit the payload and retry) or the flow's mapping, then replay.",
    )


_NOT_SENT: tuple[type[BaseException], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    aiohttp.ClientConnectorError,
    aiohttp.ConnectionTimeoutError,
)
_MAYBE_APPLIED: tuple[type[BaseException], ...] = (
    httpx.TimeoutException,
    httpx.RemoteProtocolError,
    httpx.ReadError,
    httpx.WriteError,
    TimeoutError,
    aiohttp.ServerTimeoutError,
    aiohttp.ServerDisconnectedError,
    aiohttp.ClientPayloadError,
    aiohttp.ClientOSError,
)


def classify_error(exc: BaseException, connection: str) -> Classified:
    """Classify a transport error (httpx or aiohttp). A timeout or a broken answer after
    the request may have left is *uncertain*: the destination may have applied it."""
    where = f"'{connection}'"
    if isinstance(exc, _NOT_SENT):
        return Classified(
            Outcome.RETRYABLE,
            "unreachable",
            f"Could not connect to {where} ({type(exc).__name__}).",
            f"Check that {where} is running and reachable from Crossdock; retries continue.",
        )
    if isinstance(exc, _MAYBE_APPLIED):
        return Classified(
            Outcome.UNCERTAIN,
            "timeout",
            f"{where} did not answer in time; the request may or may not have been applied.",
            "Crossdock checks at the destination before it tries again.",
        )
    if isinstance(exc, httpx.TransportError | aiohttp.ClientError):
        return Classified(
            Outcome.RETRYABLE,
            "unreachable",
            f"The call to {where} failed ({type(exc).__name__}).",
            f"Check the network path to {where}; retries continue.",
        )
    return Classified(
        Outcome.PERMANENT,
        "internal",
        f"The call to {where} could not be made: {type(exc).__name__}.",
        "Check the connection's settings (base URL, headers), then retry.",
    )
