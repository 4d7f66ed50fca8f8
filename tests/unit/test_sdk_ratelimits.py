"""Rate-limit models: wait when full, follow what the vendor says, pause on 429."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from crossdock.sdk.ratelimits import CostBucket, LeakyBucket, PerEndpoint, RateModel, Unlimited

pytestmark = pytest.mark.anyio


class FakeClock:
    def __init__(self, now: float = 500.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _answer(status: int = 200, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, headers=headers or {}, request=httpx.Request("GET", "http://v/"))


async def _timed(coro: Any) -> float:
    t0 = time.perf_counter()
    await coro
    return time.perf_counter() - t0


# --- LeakyBucket -------------------------------------------------------------------------


async def test_leaky_bucket_lets_calls_through_until_full_then_computes_the_wait() -> None:
    clock = FakeClock()
    bucket = LeakyBucket(capacity=2, leak_rate=1, clock=clock)
    assert await _timed(bucket.before("/orders")) < 0.01
    assert await _timed(bucket.before("/orders")) < 0.01
    assert bucket.level == 2
    assert bucket.delay() == pytest.approx(1.0)
    clock.advance(0.5)
    assert bucket.delay() == pytest.approx(0.5)
    assert bucket.headroom() == pytest.approx(0.25)
    clock.advance(5)
    assert bucket.delay() == 0.0
    assert bucket.level == 0.0  # never below empty
    assert bucket.headroom() == 1.0


async def test_leaky_bucket_waits_when_full() -> None:
    bucket = LeakyBucket(capacity=1, leak_rate=20)  # one call every 50 ms
    await bucket.before("/a")
    waited = await _timed(bucket.before("/a"))
    assert 0.04 <= waited < 0.5


async def test_leaky_bucket_serialises_concurrent_waiters() -> None:
    bucket = LeakyBucket(capacity=1, leak_rate=40)  # 25 ms per call
    t0 = time.perf_counter()
    await asyncio.gather(*(bucket.before("/a") for _ in range(4)))
    assert time.perf_counter() - t0 >= 0.07  # three of the four waited one leak each


async def test_leaky_bucket_syncs_from_the_vendor_call_limit_header() -> None:
    clock = FakeClock()
    bucket = LeakyBucket(2, 2, header="X-Shopify-Shop-Api-Call-Limit", clock=clock)
    await bucket.before("/orders.json")
    bucket.after("/orders.json", _answer(headers={"X-Shopify-Shop-Api-Call-Limit": "32/40"}), {})
    assert bucket.level == 32
    assert bucket.capacity == 40
    assert bucket.headroom() == pytest.approx(0.2)
    assert bucket.delay() == 0.0
    bucket.after("/o", _answer(headers={"X-Shopify-Shop-Api-Call-Limit": "40/40"}), {})
    assert bucket.delay() == pytest.approx(0.5)  # one call leaks out in 1/2 s
    bucket.after("/o", _answer(headers={"X-Shopify-Shop-Api-Call-Limit": "garbage/x"}), {})
    assert bucket.level == 40  # a malformed header changes nothing


async def test_leaky_bucket_pauses_for_retry_after_on_429() -> None:
    clock = FakeClock()
    bucket = LeakyBucket(40, 2, clock=clock)
    bucket.after("/o", _answer(429, {"Retry-After": "2.0"}), None)
    assert bucket.level == bucket.capacity
    assert bucket.delay() == pytest.approx(2.0)  # the pause outlasts one leak (0.5 s)
    assert bucket.paused_until == pytest.approx(clock() + 2.0)
    assert bucket.headroom() == 0.0


async def test_429_pause_is_waited_for_in_real_time() -> None:
    rate = Unlimited()
    rate.after("/o", _answer(429, {"Retry-After": "0.06"}), None)
    assert rate.headroom() == 0.0
    waited = await _timed(rate.before("/o"))
    assert 0.05 <= waited < 0.5
    assert rate.headroom() == 1.0


async def test_429_without_retry_after_pauses_one_second_and_zero_means_zero() -> None:
    clock = FakeClock()
    rate = Unlimited(clock=clock)
    rate.after("/o", _answer(429), None)
    assert rate.paused_until == pytest.approx(clock() + 1.0)
    rate.paused_until = 0.0
    rate.after("/o", _answer(429, {"Retry-After": "0"}), None)
    assert rate.paused_until == pytest.approx(clock())
    assert await _timed(rate.before("/o")) < 0.01


async def test_unlimited_does_not_wait_and_has_full_headroom() -> None:
    rate = Unlimited()
    assert await _timed(rate.before("/o")) < 0.01
    rate.after("/o", _answer(200), None)
    assert rate.headroom() == 1.0


# --- CostBucket --------------------------------------------------------------------------


def _graphql_body(available: float, maximum: float = 1000, restore: float = 50) -> dict[str, Any]:
    return {
        "data": {},
        "extensions": {
            "cost": {
                "requestedQueryCost": 101,
                "actualQueryCost": 46,
                "throttleStatus": {
                    "maximumAvailable": maximum,
                    "currentlyAvailable": available,
                    "restoreRate": restore,
                },
            }
        },
    }


async def test_cost_bucket_waits_for_points_at_the_restore_rate() -> None:
    clock = FakeClock()
    bucket = CostBucket(maximum=100, restore_rate=50, clock=clock)
    await bucket.before("graphql", cost=80)
    assert bucket.available == 20
    assert bucket.delay(50) == pytest.approx(0.6)  # 30 points short at 50/s
    clock.advance(0.2)
    assert bucket.delay(50) == pytest.approx(0.4)
    assert bucket.headroom() == pytest.approx(0.3)
    assert bucket.delay(5000) == pytest.approx((100 - 30) / 50)  # capped at the maximum


async def test_cost_bucket_really_waits() -> None:
    bucket = CostBucket(maximum=10, restore_rate=200)
    await bucket.before("graphql", cost=10)
    waited = await _timed(bucket.before("graphql", cost=10))
    assert 0.04 <= waited < 0.5


async def test_cost_bucket_takes_throttle_status_as_the_truth() -> None:
    clock = FakeClock()
    bucket = CostBucket(maximum=1000, restore_rate=50, clock=clock)
    await bucket.before("graphql", cost=101)
    bucket.after("graphql", _answer(), _graphql_body(available=120, maximum=2000, restore=100))
    assert (bucket.available, bucket.maximum, bucket.restore_rate) == (120, 2000, 100)
    assert bucket.delay(220) == pytest.approx(1.0)
    # A body without cost, or with a broken one, changes nothing.
    bucket.after("graphql", _answer(), {"data": {}})
    bucket.after("graphql", _answer(), {"extensions": {"cost": {"throttleStatus": None}}})
    bucket.after("graphql", _answer(), {"extensions": {"cost": {"throttleStatus": "x"}}})
    bucket.after(
        "graphql",
        _answer(),
        {"extensions": {"cost": {"throttleStatus": {"currentlyAvailable": "lots"}}}},
    )
    assert (bucket.available, bucket.maximum, bucket.restore_rate) == (120, 2000, 100)


async def test_cost_bucket_counts_throttled_answers() -> None:
    bucket = CostBucket(clock=FakeClock())
    throttled = {
        "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
        **_graphql_body(available=10),
    }
    bucket.after("graphql", _answer(200), throttled)
    bucket.after("graphql", _answer(200), {"errors": [{"message": "other"}]})
    assert bucket.throttled == 1
    assert bucket.available == 10
    assert bucket.delay(100) == pytest.approx(90 / 50)


async def test_cost_bucket_pauses_on_429() -> None:
    clock = FakeClock()
    bucket = CostBucket(clock=clock)
    bucket.after("graphql", _answer(429, {"Retry-After": "3"}), None)
    assert bucket.delay(1) == pytest.approx(3.0)


# --- PerEndpoint -------------------------------------------------------------------------


async def test_per_endpoint_keeps_separate_budgets() -> None:
    clock = FakeClock()
    made: list[str] = []

    def factory(endpoint: str) -> RateModel:
        made.append(endpoint)
        return LeakyBucket(1, 1, clock=clock)

    rate = PerEndpoint(factory)
    assert rate.headroom() == 1.0
    assert await _timed(rate.before("/orders")) < 0.01
    assert await _timed(rate.before("/products")) < 0.01  # its own, untouched budget
    assert made == ["/orders", "/products"]
    orders = rate.model("/orders")
    assert isinstance(orders, LeakyBucket)
    assert orders.delay() == pytest.approx(1.0)
    rate.after("/products", _answer(429, {"Retry-After": "9"}), None)
    products = rate.model("/products")
    assert isinstance(products, LeakyBucket)
    assert products.delay() == pytest.approx(9.0)
    assert orders.delay() == pytest.approx(1.0)  # a 429 on one endpoint pauses only it
    assert rate.headroom() == 0.0
    clock.advance(1)
    assert orders.headroom() == 1.0
    assert rate.model("/orders") is orders
    assert made == ["/orders", "/products"]
