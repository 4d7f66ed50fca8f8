"""Vendor rate-limit models, kept per connection (one limit per credential).

Each model is asked ``await before(endpoint, cost)`` ahead of a call and told
``after(endpoint, response, body)`` once the answer is in, so it can follow what the
vendor says about its own state (Shopify's call-limit header, GraphQL's
``extensions.cost.throttleStatus``). A 429 with ``Retry-After`` pauses the model.

- :class:`LeakyBucket` — a bucket of ``capacity`` requests leaking ``leak_rate`` per
  second (Shopify REST; any token-bucket vendor). Syncs from a ``used/capacity`` header.
- :class:`CostBucket` — points: a query costs what it asks; the bucket restores
  ``restore_rate`` points per second (Shopify GraphQL).
- :class:`PerEndpoint` — a separate model per endpoint (Trendyol's 50 per 10 s per
  endpoint, Amazon's usage plans).
- :class:`Unlimited` — for vendors without a published limit.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import httpx

from crossdock.pipeline.outcome import parse_retry_after

__all__ = ["CostBucket", "LeakyBucket", "PerEndpoint", "RateModel", "Unlimited"]

Clock = Callable[[], float]

RECHECK_SECONDS = 0.05
"""How often a waiting call looks again at what the vendor last said about its limit."""


class RateModel(Protocol):
    """What a vendor client asks of a rate-limit model."""

    async def before(self, endpoint: str, cost: float = 1.0) -> None:
        """Wait until a call of ``cost`` to ``endpoint`` is allowed."""
        ...

    def after(self, endpoint: str, response: httpx.Response, body: Any) -> None:
        """Learn from the vendor's answer (headers, cost, 429)."""
        ...

    def headroom(self) -> float:
        """The share of the limit still available now, 0..1 (for the console)."""
        ...


def _pause_for(response: httpx.Response) -> float:
    """Seconds a 429 asks us to wait (``Retry-After``; 1 s when it does not say)."""
    wait = parse_retry_after(response.headers.get("retry-after"))
    return 1.0 if wait is None else wait


class Unlimited:
    """No limit known; still honours ``Retry-After`` on 429."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self.clock = clock
        self.paused_until = 0.0

    async def before(self, endpoint: str, cost: float = 1.0) -> None:
        wait = self.paused_until - self.clock()
        if wait > 0:
            await asyncio.sleep(wait)

    def after(self, endpoint: str, response: httpx.Response, body: Any) -> None:
        if response.status_code == 429:
            self.paused_until = self.clock() + _pause_for(response)

    def headroom(self) -> float:
        return 0.0 if self.paused_until > self.clock() else 1.0


class LeakyBucket:
    """``capacity`` calls that leak out at ``leak_rate`` per second.

    ``header`` names a ``used/capacity`` header the vendor sends (Shopify:
    ``X-Shopify-Shop-Api-Call-Limit: 32/40``); the bucket trusts the vendor's count.
    """

    def __init__(
        self,
        capacity: float,
        leak_rate: float,
        *,
        header: str | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self.capacity = float(capacity)
        self.leak_rate = float(leak_rate)
        self.header = header
        self.clock = clock
        self.level = 0.0
        self.stamp = clock()
        self.paused_until = 0.0
        self._lock = asyncio.Lock()

    def _leak(self) -> None:
        now = self.clock()
        self.level = max(0.0, self.level - (now - self.stamp) * self.leak_rate)
        self.stamp = now

    def delay(self, cost: float = 1.0) -> float:
        """Seconds to wait before a call of ``cost`` fits (0 if it fits now)."""
        self._leak()
        wait = max(0.0, self.paused_until - self.clock())
        over = self.level + min(cost, self.capacity) - self.capacity
        if over > 0:
            wait = max(wait, over / self.leak_rate if self.leak_rate > 0 else 1.0)
        return wait

    async def before(self, endpoint: str, cost: float = 1.0) -> None:
        async with self._lock:
            # Re-check in short steps: an answer arriving meanwhile may say the vendor's
            # bucket has more room (or a 429 may say less) than computed up front.
            while (wait := self.delay(cost)) > 0:
                await asyncio.sleep(min(wait, RECHECK_SECONDS))
            self.level += cost

    def after(self, endpoint: str, response: httpx.Response, body: Any) -> None:
        if self.header:
            raw = response.headers.get(self.header)
            if raw and "/" in raw:
                used, _, cap = raw.partition("/")
                try:
                    self.level, self.capacity = float(used), float(cap)
                    self.stamp = self.clock()
                except ValueError:
                    pass
        if response.status_code == 429:
            self.level = self.capacity
            self.paused_until = self.clock() + _pause_for(response)

    def headroom(self) -> float:
        self._leak()
        return max(0.0, 1.0 - self.level / self.capacity) if self.capacity else 0.0


class CostBucket:
    """A points bucket: Shopify GraphQL's calculated query cost.

    Before a call it waits until ``cost`` points are available at ``restore_rate`` per
    second; after it, it takes the vendor's own ``throttleStatus`` as the truth.
    """

    def __init__(
        self, maximum: float = 1000.0, restore_rate: float = 50.0, *, clock: Clock = time.monotonic
    ) -> None:
        self.maximum = float(maximum)
        self.restore_rate = float(restore_rate)
        self.available = float(maximum)
        self.clock = clock
        self.stamp = clock()
        self.paused_until = 0.0
        self.throttled = 0
        self._lock = asyncio.Lock()

    def _restore(self) -> None:
        now = self.clock()
        self.available = min(self.maximum, self.available + (now - self.stamp) * self.restore_rate)
        self.stamp = now

    def delay(self, cost: float) -> float:
        """Seconds until ``cost`` points are available."""
        self._restore()
        wait = max(0.0, self.paused_until - self.clock())
        short = min(cost, self.maximum) - self.available
        if short > 0:
            wait = max(wait, short / self.restore_rate if self.restore_rate > 0 else 1.0)
        return wait

    async def before(self, endpoint: str, cost: float = 1.0) -> None:
        async with self._lock:
            # Re-check in short steps: Shopify refunds the difference between requested
            # and actual cost in its answers, so the bucket refills faster than computed.
            while (wait := self.delay(cost)) > 0:
                await asyncio.sleep(min(wait, RECHECK_SECONDS))
            self.available -= min(cost, self.available)

    def observe(self, cost: Mapping[str, Any]) -> None:
        """Take a GraphQL ``extensions.cost`` object as the vendor's truth."""
        status = cost.get("throttleStatus")
        if not isinstance(status, Mapping):
            return
        try:
            maximum = float(status.get("maximumAvailable", self.maximum))
            available = float(status.get("currentlyAvailable", self.available))
            restore_rate = float(status.get("restoreRate", self.restore_rate)) or 1.0
        except (TypeError, ValueError):
            return
        self.maximum, self.available, self.restore_rate = maximum, available, restore_rate
        self.stamp = self.clock()

    def after(self, endpoint: str, response: httpx.Response, body: Any) -> None:
        if isinstance(body, dict):
            ext = body.get("extensions")
            if isinstance(ext, dict) and isinstance(ext.get("cost"), dict):
                self.observe(ext["cost"])
            errors = body.get("errors")
            if isinstance(errors, list) and any(
                isinstance(e, dict) and (e.get("extensions") or {}).get("code") == "THROTTLED"
                for e in errors
            ):
                self.throttled += 1
        if response.status_code == 429:
            self.paused_until = self.clock() + _pause_for(response)

    def headroom(self) -> float:
        self._restore()
        return self.available / self.maximum if self.maximum else 0.0


class PerEndpoint:
    """One model per endpoint, made on first use by ``factory(endpoint)``."""

    def __init__(self, factory: Callable[[str], RateModel]) -> None:
        self.factory = factory
        self.models: dict[str, RateModel] = {}

    def model(self, endpoint: str) -> RateModel:
        """The model for ``endpoint``."""
        m = self.models.get(endpoint)
        if m is None:
            m = self.models[endpoint] = self.factory(endpoint)
        return m

    async def before(self, endpoint: str, cost: float = 1.0) -> None:
        await self.model(endpoint).before(endpoint, cost)

    def after(self, endpoint: str, response: httpx.Response, body: Any) -> None:
        self.model(endpoint).after(endpoint, response, body)

    def headroom(self) -> float:
        return min((m.headroom() for m in self.models.values()), default=1.0)
