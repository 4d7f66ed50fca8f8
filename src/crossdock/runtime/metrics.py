"""Prometheus metrics for ``/metrics``.

Counters come from the receiver and the worker of this process; queue depth and lag are
read from the database at scrape time.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from starlette.requests import Request
from starlette.responses import Response

if TYPE_CHECKING:
    from crossdock.runtime.hub import Hub


class _HubCollector:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def collect(self) -> Iterator[Metric]:
        from crossdock.runtime.hub import backlog

        r = self.hub.receiver
        c = CounterMetricFamily(
            "crossdock_webhooks", "Webhook deliveries received", labels=["result"]
        )
        c.add_metric(["accepted"], r.received)
        c.add_metric(["duplicate"], r.duplicates)
        c.add_metric(["rejected"], r.rejected)
        yield c
        w = self.hub.worker
        if w is not None:
            d = CounterMetricFamily(
                "crossdock_deliveries_settled", "Deliveries settled", labels=["state"]
            )
            d.add_metric(["succeeded"], w.stats.succeeded)
            d.add_metric(["skipped"], w.stats.skipped)
            d.add_metric(["retry"], w.stats.retried)
            d.add_metric(["exception"], w.stats.exceptions)
            yield d
        b = self.hub.db.read_sync(backlog)
        g = GaugeMetricFamily("crossdock_backlog", "Deliveries pending or in progress")
        g.add_metric([], b["backlog"])
        yield g
        lag = GaugeMetricFamily("crossdock_lag_seconds", "Age of the oldest undelivered delivery")
        lag.add_metric([], b["lag_seconds"])
        yield lag


def metrics_endpoint(hub: Hub) -> Callable[[Request], Awaitable[Response]]:
    """An endpoint serving this hub's metrics in the Prometheus text format."""
    registry = CollectorRegistry()
    registry.register(_HubCollector(hub))

    async def endpoint(_request: Request) -> Response:
        import asyncio

        data = await asyncio.to_thread(generate_latest, registry)
        return Response(data, media_type=CONTENT_TYPE_LATEST)

    return endpoint
