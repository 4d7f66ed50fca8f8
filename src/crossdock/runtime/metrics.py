"""Prometheus metrics for ``/metrics`` and the hub's readiness check (``/readyz``).

Each :class:`~crossdock.runtime.hub.Hub` has its own :class:`HubMetrics` (its own
``CollectorRegistry``), so several hubs in one process never share or clash. The
receiver, the worker and the poller find the metrics of their hub through the database
they share (:func:`for_database`); a process that serves no ``/metrics`` (``crossdock
worker``) has none and records nothing.

Counters and histograms are counted by this process as things happen. Queue depth, lag
and open exceptions are read from the database at scrape time with two ``GROUP BY``
queries, so they are the same whichever process is scraped.

Labels are configured names only (workspace, connection, flow, stream) and small fixed
vocabularies (result, outcome, state, category): never record keys or ids.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import os
import time
import weakref
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import Connection, func, select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from crossdock.store.tables import deliveries, exceptions

if TYPE_CHECKING:
    from crossdock.runtime.hub import Hub
    from crossdock.store.database import Database
    from crossdock.store.deliveries import Claimed, Settlement

__all__ = [
    "UNKNOWN",
    "WORKER_STALE_SECONDS",
    "HubMetrics",
    "for_database",
    "install",
    "metrics_endpoint",
    "queue_snapshot",
    "readiness",
    "readyz_response",
]

#: The label value for a webhook to a workspace or connection that is not configured
#: (the path's words are not used as labels: that would let anyone add series).
UNKNOWN = "_unknown"

#: ``/readyz`` reports the worker not ready when its loop has not ticked for this long.
WORKER_STALE_SECONDS = 30.0

WEBHOOK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
VENDOR_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
DELIVERY_BUCKETS = (
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    300.0, 900.0, 3600.0, 21600.0, 86400.0,
)  # fmt: skip

# A settlement's state -> the ``state`` label of ``crossdock_deliveries_total``.
_STATE_LABEL = {
    "succeeded": "succeeded",
    "skipped": "skipped",
    "exception": "exception",
    "pending": "retry",
}


class HubMetrics:
    """One hub's Prometheus registry: the counters it updates and the gauges it reads."""

    def __init__(self, hub: Hub | None = None) -> None:
        self.hub = hub
        self.registry = CollectorRegistry()
        r = self.registry
        self.webhooks = Counter(
            "crossdock_webhooks",
            "Webhooks answered, by result (accepted, duplicate, rejected, ignored).",
            ["workspace", "connection", "result"],
            registry=r,
        )
        self.webhook_seconds = Histogram(
            "crossdock_webhook_seconds",
            "Time from a webhook's arrival to its event being committed (accepted or duplicate).",
            ["workspace", "connection"],
            buckets=WEBHOOK_BUCKETS,
            registry=r,
        )
        self.vendor_calls = Counter(
            "crossdock_vendor_calls",
            "Calls to destination systems (each attempt or exchange), by outcome.",
            ["workspace", "connection", "outcome"],
            registry=r,
        )
        self.vendor_call_seconds = Histogram(
            "crossdock_vendor_call_seconds",
            "Latency of calls to destination systems, by outcome.",
            ["workspace", "connection", "outcome"],
            buckets=VENDOR_BUCKETS,
            registry=r,
        )
        self.deliveries = Counter(
            "crossdock_deliveries",
            "Delivery attempts settled, by state (succeeded, skipped, retry, exception).",
            ["workspace", "flow", "state"],
            registry=r,
        )
        self.delivery_seconds = Histogram(
            "crossdock_delivery_seconds",
            "End to end: from the event's arrival to its delivery succeeding.",
            ["workspace", "flow"],
            buckets=DELIVERY_BUCKETS,
            registry=r,
        )
        self.polls = Counter(
            "crossdock_polls",
            "Polling rounds run, by result (ok, error).",
            ["workspace", "connection", "stream", "result"],
            registry=r,
        )
        if hub is not None:
            r.register(_QueueCollector(hub))
        # Labelled children, looked up once per label set (``labels()`` takes a lock).
        self._children: dict[tuple[Any, ...], Any] = {}

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    # -- recording (called by the receiver, the worker and the poller) ----------------
    def webhook(
        self, workspace: str, connection: str, result: str, seconds: float | None = None
    ) -> None:
        """Count one answered webhook; ``seconds`` is its handling time when it committed."""
        self._child(self.webhooks, workspace, connection, result).inc()
        if seconds is not None:
            self._child(self.webhook_seconds, workspace, connection).observe(seconds)

    def vendor_calls_made(self, workspace: str, rows: Sequence[dict[str, Any]]) -> None:
        """Count the vendor exchanges of one attempt (its audit rows)."""
        for row in rows:
            labels = (workspace, row["connection"], row["outcome"])
            self._child(self.vendor_calls, *labels).inc()
            self._child(self.vendor_call_seconds, *labels).observe(row["latency_ms"] / 1000.0)

    def settled(self, c: Claimed, s: Settlement, now: float | None = None) -> None:
        """Count one settled attempt of a delivery, its vendor calls and, when it
        succeeded, its end-to-end time since the event arrived."""
        state = _STATE_LABEL.get(s.state, s.state)
        self._child(self.deliveries, c.workspace, c.flow, state).inc()
        if s.attempt_rows:
            self.vendor_calls_made(c.workspace, s.attempt_rows)
        if s.state == "succeeded":
            elapsed = (now if now is not None else time.time()) - c.received_at
            self._child(self.delivery_seconds, c.workspace, c.flow).observe(max(elapsed, 0.0))

    def poll(self, workspace: str, connection: str, stream: str, error: bool) -> None:
        """Count one polling round that ran."""
        self.polls.labels(workspace, connection, stream, "error" if error else "ok").inc()

    def render(self) -> bytes:
        """The registry in the Prometheus text format (reads the database: blocking)."""
        return generate_latest(self.registry)


# -- which hub's metrics a component records to -----------------------------------------
_BY_DATABASE: weakref.WeakKeyDictionary[Database, HubMetrics] = weakref.WeakKeyDictionary()


def for_database(db: Database) -> HubMetrics | None:
    """The metrics of the hub using ``db``, or None when no hub serves ``/metrics``."""
    return _BY_DATABASE.get(db)


def install(hub: Hub) -> HubMetrics:
    """The metrics of ``hub`` (made on first use): its receiver, worker and poller
    record to them from now on."""
    m = _BY_DATABASE.get(hub.db)
    if m is None or m.hub is not hub:
        m = _BY_DATABASE[hub.db] = HubMetrics(hub)
    return m


# -- gauges read at scrape time ----------------------------------------------------------
def queue_snapshot(
    conn: Connection,
) -> tuple[list[tuple[str, str, str, int, float | None]], list[tuple[str, str, int]]]:
    """Deliveries waiting per (workspace, flow, state) with the oldest one's creation
    time, and open exceptions per (workspace, category): two grouped queries."""
    d = deliveries.c
    q = (
        select(d.workspace, d.flow, d.state, func.count(), func.min(d.created_at))
        .where(d.state.in_(("pending", "in_progress")))
        .group_by(d.workspace, d.flow, d.state)
    )
    queue = [(r[0], r[1], r[2], int(r[3]), r[4]) for r in conn.execute(q)]
    e = exceptions.c
    eq = (
        select(e.workspace, e.category, func.count())
        .where(e.state == "open")
        .group_by(e.workspace, e.category)
    )
    open_exceptions = [(r[0], r[1], int(r[2])) for r in conn.execute(eq)]
    return queue, open_exceptions


class _QueueCollector:
    """Queue depth, lag and open exceptions, read from the database when scraped."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def collect(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily(
            "crossdock_queue_depth",
            "Deliveries waiting (pending) or being delivered (in_progress).",
            labels=["workspace", "flow", "state"],
        )
        lag = GaugeMetricFamily(
            "crossdock_lag_seconds",
            "Age of the oldest pending delivery (0 when none is pending).",
            labels=["workspace", "flow"],
        )
        opened = GaugeMetricFamily(
            "crossdock_exceptions_open",
            "Open exceptions waiting for a person, by category.",
            labels=["workspace", "category"],
        )
        up = GaugeMetricFamily(
            "crossdock_database_up", "1 when the database answered this scrape's queries."
        )
        try:
            queue, open_exceptions = self.hub.db.read_sync(queue_snapshot)
        except Exception:  # the counters are still worth serving
            up.add_metric([], 0.0)
            yield up
            return
        up.add_metric([], 1.0)
        now = time.time()
        counts: dict[tuple[str, str, str], int] = {}
        oldest: dict[tuple[str, str], float] = {}
        # Every configured flow has its series, at 0 when nothing waits.
        reg = self.hub._registry
        if reg is not None:
            for ws in reg.workspaces.values():
                for flow in ws.flows:
                    counts[(ws.id, flow, "pending")] = 0
                    counts[(ws.id, flow, "in_progress")] = 0
                    oldest[(ws.id, flow)] = now
        for ws_id, flow, state, n, first in queue:
            counts[(ws_id, flow, state)] = n
            counts.setdefault((ws_id, flow, "in_progress" if state == "pending" else "pending"), 0)
            oldest.setdefault((ws_id, flow), now)
            if state == "pending" and first is not None:
                oldest[(ws_id, flow)] = min(oldest[(ws_id, flow)], first)
        for (ws_id, flow, state), n in sorted(counts.items()):
            depth.add_metric([ws_id, flow, state], float(n))
        for (ws_id, flow), first in sorted(oldest.items()):
            lag.add_metric([ws_id, flow], max(now - first, 0.0))
        for ws_id, category, n in open_exceptions:
            opened.add_metric([ws_id, category], float(n))
        yield depth
        yield lag
        yield opened
        yield up
        w = self.hub.worker
        if w is not None:
            inflight = GaugeMetricFamily(
                "crossdock_worker_inflight", "Deliveries this process's worker is delivering."
            )
            inflight.add_metric([], float(len(w._inflight)))
            yield inflight


def metrics_endpoint(hub: Hub) -> Callable[[Request], Awaitable[Response]]:
    """An endpoint serving ``hub``'s metrics in the Prometheus text format."""
    m = install(hub)
    token = os.environ.get("CROSSDOCK_METRICS_TOKEN", "")

    async def endpoint(request: Request) -> Response:
        if token:  # Prometheus: authorization: {credentials: ...} in the scrape config
            given = request.headers.get("authorization", "")
            expected = f"Bearer {token}"
            if not hmac.compare_digest(given.encode(), expected.encode()):
                return Response(
                    "metrics need 'Authorization: Bearer <CROSSDOCK_METRICS_TOKEN>'\n",
                    status_code=401,
                    headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
                    media_type="text/plain",
                )
        data = await asyncio.to_thread(m.render)
        return Response(data, media_type=CONTENT_TYPE_LATEST)

    return endpoint


# -- readiness ---------------------------------------------------------------------------
@functools.cache
def _head_revision(script_location: str) -> str | None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", script_location)
    return ScriptDirectory.from_config(cfg).get_current_head()


def _schema_revision(conn: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(conn).get_current_revision()


async def readiness(
    hub: Hub, *, timeout: float = 5.0, stale_after: float | None = None
) -> tuple[bool, dict[str, Any]]:
    """Whether ``hub`` is ready for traffic, and a JSON body saying what is not.

    Ready means: the database answers, its schema is at the head revision this version
    of Crossdock ships, and (when this process runs the worker) the worker loop ticked
    in the last ``stale_after`` seconds (default :data:`WORKER_STALE_SECONDS`)."""
    from crossdock.store.migrate import MIGRATIONS

    if stale_after is None:
        stale_after = WORKER_STALE_SECONDS

    checks: dict[str, str] = {}
    try:
        current = await asyncio.wait_for(hub.db.read(_schema_revision), timeout)
    except Exception as exc:  # the type only: a driver's message may name the server
        checks["database"] = f"not answering ({type(exc).__name__})"
        checks["schema"] = "unknown: the database is not answering"
    else:
        checks["database"] = "ok"
        head = _head_revision(str(MIGRATIONS))
        if current == head:
            checks["schema"] = "ok"
        else:
            checks["schema"] = (
                f"at revision {current or 'none'}, this version expects {head}: "
                "run 'crossdock migrate'"
            )
    if hub.run_worker:
        w = hub.worker
        if w is None:
            checks["worker"] = "not started"
        else:
            idle = time.monotonic() - w.last_tick
            checks["worker"] = (
                "ok" if idle <= stale_after else f"the worker loop has not run for {idle:.0f} s"
            )
    not_ready = [k for k, v in checks.items() if v != "ok"]
    body: dict[str, Any] = {"status": "ready" if not not_ready else "not ready", "checks": checks}
    if not_ready:
        body["not_ready"] = not_ready
    return not not_ready, body


async def readyz_response(hub: Hub) -> Response:
    """``/readyz``: 200 when ready, else 503 naming what is not ready."""
    ok, body = await readiness(hub)
    return JSONResponse(body, 200 if ok else 503)
