"""The worker: claim deliveries, deliver them, settle the outcome.

A worker process (or the worker inside ``crossdock serve``) runs one :class:`Worker`.
It leases deliveries in batches, runs them concurrently (bounded overall and per
connection), waits for the connection's rate limiter, calls the destination, classifies
the answer in one place, and settles every outcome through the group-commit writer.
Leases are renewed while work is in flight; a worker that dies stops renewing, and its
deliveries are claimed again by another once the lease expires.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
import structlog

from crossdock.connectors.http.outbound import CallResult, perform
from crossdock.flows import MappingFailure
from crossdock.flows.context import event_context
from crossdock.flows.keys import idempotency_key
from crossdock.pipeline.audit import exchange_rows
from crossdock.pipeline.outcome import Classified, Outcome
from crossdock.pipeline.ratelimit import RateLimiter
from crossdock.pipeline.retry import Policy, decide
from crossdock.runtime import tracing
from crossdock.runtime.logs import bound
from crossdock.runtime.metrics import for_database
from crossdock.runtime.registry import ConnectionRuntime, Registry
from crossdock.sdk.actions import ActionContext, run_action
from crossdock.sdk.client import recording
from crossdock.store.database import Database
from crossdock.store.deliveries import Claimed, Settlement, claim, renew_leases, settle
from crossdock.store.events import FlowRoute, NewEvent

log = structlog.get_logger("crossdock.worker")


@dataclass
class WorkerStats:
    """Counters for the status line and the benchmark."""

    claimed: int = 0
    succeeded: int = 0
    skipped: int = 0
    retried: int = 0
    exceptions: int = 0
    calls: int = 0
    latencies_ms: list[float] = field(default_factory=list)


AUTH_PAUSE = 60.0
"""After a connection refused our credentials (401/403), writes to it stop for this long,
or until its settings change: each waiting delivery becomes an exception in the same case
without a call, instead of hammering the vendor with credentials it refused (vendors lock
such clients out). Then one delivery tries again."""


def refused_settlement(
    settlement: Callable[[Claimed, str, str | None, str | None], Settlement],
    c: Claimed,
    connection: str,
    refused: tuple[float, Classified],
) -> Settlement:
    """The exception of a delivery not sent because its connection refused our
    credentials moments ago (no attempt is made or counted)."""
    until, cl = refused
    s = settlement(c, "exception", Outcome.PERMANENT.value, cl.reason)
    when = time.strftime("%H:%M:%S UTC", time.gmtime(until))
    s.exception = (
        cl.category,
        cl.reason,
        f"{cl.fix} Writes to '{connection}' are stopped until its settings change or "
        f"{when}; this delivery was not sent.",
    )
    return s


def new_worker_id() -> str:
    """A worker id that names the host and process, for leases and logs."""
    return f"{socket.gethostname()[:20]}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class Worker:
    """Delivers what is due, forever (``run``) or until nothing is left (``drain``)."""

    def __init__(
        self,
        db: Database,
        registry: Registry | Callable[[], Registry],
        *,
        client: aiohttp.ClientSession | None = None,
        limiter: RateLimiter | None = None,
        worker_id: str | None = None,
        max_inflight: int = 256,
        batch: int = 200,
        lease_seconds: float = 60.0,
        idle_sleep: float = 0.05,
    ) -> None:
        self.db = db
        self._registry = registry
        self._client = client
        self._own_client = client is None
        self.limiter = limiter or RateLimiter()
        self.id = worker_id or new_worker_id()
        self.max_inflight = max_inflight
        self.batch = batch
        self.lease_seconds = lease_seconds
        self.idle_sleep = idle_sleep
        self.stats = WorkerStats()
        self._inflight: dict[int, asyncio.Task[None]] = {}
        self._semaphores: dict[str, asyncio.Semaphore] = {}
        self._wake = asyncio.Event()
        self._configured: set[str] = set()
        self.last_tick = time.monotonic()  # the loop's last turn, for /readyz
        # Connections that refused our credentials: (until, registry then, why).
        self._refused: dict[str, tuple[float, Registry, Classified]] = {}

    @property
    def client(self) -> aiohttp.ClientSession:
        """The HTTP session (made on first use, inside the running event loop)."""
        if self._client is None:
            self._client = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=512, limit_per_host=256),
                auto_decompress=True,
            )
        return self._client

    @property
    def registry(self) -> Registry:
        """The current registry of connections and flows."""
        r = self._registry
        return r if isinstance(r, Registry) else r()

    def wake(self) -> None:
        """Look for work now (called after new events are recorded)."""
        self._wake.set()

    async def close(self) -> None:
        """Wait for in-flight deliveries and release the HTTP client."""
        if self._inflight:
            await asyncio.gather(*self._inflight.values(), return_exceptions=True)
        if self._own_client and self._client is not None:
            await self._client.close()

    async def run(self, stop: asyncio.Event) -> None:
        """Claim and deliver until ``stop`` is set; then finish what is in flight."""
        renewer = asyncio.create_task(self._renew_loop(stop))
        try:
            while not stop.is_set():
                self.last_tick = time.monotonic()
                got = await self.step()
                if got == 0:
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self.idle_sleep)
        finally:
            renewer.cancel()
            if self._inflight:
                await asyncio.gather(*self._inflight.values(), return_exceptions=True)

    async def drain(self, timeout: float = 60.0) -> None:
        """Deliver until nothing is due and nothing is in flight (tests, replay)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = await self.step()
            if got == 0 and not self._inflight:
                return
            if got == 0:
                await asyncio.sleep(0.01)
        raise TimeoutError("deliveries still due after the drain timeout")

    async def step(self) -> int:
        """Claim one batch (as much as there is room for) and start delivering it."""
        room = min(self.batch, self.max_inflight - len(self._inflight))
        if room <= 0:
            # Bounded, so the loop keeps ticking while every slot waits on a slow vendor.
            await asyncio.wait(
                list(self._inflight.values()), timeout=1.0, return_when=asyncio.FIRST_COMPLETED
            )
            return 1
        worker, lease = self.id, self.lease_seconds
        claimed = await self.db.write(lambda conn: claim(conn, worker, room, lease))
        self.stats.claimed += len(claimed)
        for c in claimed:
            task = asyncio.create_task(self._deliver_safely(c))
            self._inflight[c.id] = task
            task.add_done_callback(self._forget(c.id))
        return len(claimed)

    def _forget(self, delivery_id: int) -> Callable[[asyncio.Task[None]], None]:
        def done(_task: asyncio.Task[None]) -> None:
            self._inflight.pop(delivery_id, None)

        return done

    async def _renew_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await asyncio.sleep(self.lease_seconds / 3)
            ids = list(self._inflight)
            if ids:
                await self.db.write(
                    functools.partial(
                        renew_leases, worker=self.id, ids=ids, lease_seconds=self.lease_seconds
                    )
                )

    def _semaphore(self, key: str, size: int) -> asyncio.Semaphore:
        sem = self._semaphores.get(key)
        if sem is None:
            sem = self._semaphores[key] = asyncio.Semaphore(size)
        return sem

    async def _deliver_safely(self, c: Claimed) -> None:
        # Every log line about this delivery carries its correlation id.
        with bound(
            correlation_id=c.correlation_id, workspace=c.workspace, flow=c.flow, delivery=c.id
        ):
            attrs = {
                "crossdock.workspace": c.workspace,
                "crossdock.flow": c.flow,
                "crossdock.delivery_id": c.id,
                "crossdock.event_id": c.event_id,
            }
            with tracing.delivery_span(c.correlation_id, attrs) as span:
                try:
                    s = await self.deliver(c)
                except Exception as exc:  # a bug must not lose the delivery: make it visible
                    log.exception("delivery_crashed")
                    s = self._settlement(
                        c, "exception", None, f"internal error: {type(exc).__name__}"
                    )
                    s.exception = (
                        "internal",
                        f"Crossdock failed while handling this delivery ({type(exc).__name__}).",
                        "Report this with the delivery id; you can retry it once fixed.",
                    )
                await self.db.write_batched(settle, s)
                tracing.end_delivery(
                    span,
                    state=s.state,
                    outcome=s.outcome,
                    attempts=s.attempts,
                    calls=s.attempt_rows,
                    category=s.exception[0] if s.exception is not None else None,
                )
            self._count(s)
            self._observe(c, s)

    def _observe(self, c: Claimed, s: Settlement) -> None:
        """Metrics and log lines for one settled attempt (ids and categories only)."""
        m = for_database(self.db)
        if m is not None:
            m.settled(c, s)
        log.debug(
            "delivery_settled",
            state=s.state,
            outcome=s.outcome,
            attempts=s.attempts,
            calls=len(s.attempt_rows),
        )
        if s.exception is not None:
            log.warning(
                "exception_opened", category=s.exception[0], outcome=s.outcome, attempts=s.attempts
            )

    def _count(self, s: Settlement) -> None:
        if s.state == "succeeded":
            self.stats.succeeded += 1
        elif s.state == "skipped":
            self.stats.skipped += 1
        elif s.state == "exception":
            self.stats.exceptions += 1
        else:
            self.stats.retried += 1

    def _settlement(
        self, c: Claimed, state: str, outcome: str | None, detail: str | None
    ) -> Settlement:
        return Settlement(
            delivery_id=c.id,
            worker=self.id,
            workspace=c.workspace,
            flow=c.flow,
            record_key=c.record_key,
            state=state,
            attempts=c.attempts,
            throttled=c.throttled,
            next_attempt_at=time.time(),
            outcome=outcome,
            detail=detail,
        )

    async def deliver(self, c: Claimed) -> Settlement:
        """Deliver one claimed delivery and say how it ended."""
        reg = self.registry
        flow = reg.flow(c.workspace, c.flow)
        if flow is None:
            s = self._settlement(c, "exception", None, "flow missing")
            s.exception = (
                "config",
                f"The flow '{c.flow}' no longer exists in workspace '{c.workspace}'.",
                "Restore the flow file and retry, or skip this delivery.",
            )
            return s
        if c.stale and flow.options.skip_stale:
            return self._settlement(
                c,
                "skipped",
                None,
                "stale-version: this version of the record or a newer one was already delivered",
            )
        action_conn = flow.action.connection
        target = reg.connection(c.workspace, action_conn)
        if target is None or not target.can_write():
            s = self._settlement(c, "exception", None, "destination connection missing")
            s.exception = (
                "config",
                f"Connection '{action_conn}' is not configured for writing in workspace "
                f"'{c.workspace}'.",
                f"Add connection '{action_conn}' with outbound settings, then retry.",
            )
            return s
        body = orjson.loads(c.body)
        xref = c.xrefs.get(action_conn)
        ctx = event_context(
            body=body,
            headers=orjson.loads(c.headers),
            event_id=c.event_id,
            workspace=c.workspace,
            connection=c.connection,
            event_type=c.event_type,
            record_key=c.record_key,
            version=c.version,
            received_at=c.received_at,
            xref=xref,
        )
        path_params: dict[str, Any] = {}
        if c.override_body is not None:
            # Edit-and-retry: an operator's payload replaces the mapping's output.
            payload = orjson.loads(c.override_body)
            with contextlib.suppress(MappingFailure):
                path_params = dict(flow.render(ctx).path_params)
        else:
            try:
                if not flow.accepts(ctx):
                    return self._settlement(
                        c, "skipped", None, "filter: the flow's filter is false"
                    )
                rendered = flow.render(ctx)
            except MappingFailure as mf:
                s = self._settlement(c, "exception", None, mf.reason)
                s.exception = (mf.category, mf.reason, mf.fix)
                return s
            payload, path_params = rendered.body, dict(rendered.path_params)
        refused = self._credentials_refused(target)
        if refused is not None:
            return refused_settlement(self._settlement, c, target.name, refused)
        if not target.is_http:
            record = body if payload is None else payload
            return await self._deliver_connector(c, flow, target, record, xref)
        assert target.config.outbound is not None
        operation: str = flow.action.operation
        # A create checks the cross-reference first: the record exists there already.
        when_exists = target.config.outbound.operations[operation].when_exists
        if xref and when_exists:
            operation = when_exists
        key = idempotency_key(action_conn, c.record_key, operation, c.version)
        path_params["xref"] = xref
        limiter_key = self._limiter_key(target)
        await self.limiter.acquire(limiter_key)
        async with self._semaphore(limiter_key, target.config.concurrency):
            results = await perform(
                self.client,
                connection=action_conn,
                outbound=target.config.outbound,
                operation=operation,
                body=payload,
                path_params=path_params,
                idempotency_key=key,
                correlation_id=c.correlation_id,
                redact_headers=target.redactor.headers,
                redact_text=target.redactor.text,
                external_id=target.external_id(operation),
            )
        self.stats.calls += len(results)
        last = results[-1]
        return self._settle(
            c,
            flow,
            target,
            last.classified,
            self._rows(c, target, results),
            last.external_id,
            last.response_json,
        )

    def _credentials_refused(self, target: ConnectionRuntime) -> tuple[float, Classified] | None:
        """When the connection refused our credentials in the last :data:`AUTH_PAUSE`
        seconds and the configuration has not changed since: (until, the refusal)."""
        hit = self._refused.get(target.limiter_key)
        if hit is None:
            return None
        until, registry, cl = hit
        if time.time() >= until or registry is not self.registry:
            del self._refused[target.limiter_key]  # try again: time is up, or new settings
            return None
        return until, cl

    def _limiter_key(self, target: ConnectionRuntime) -> str:
        limiter_key = target.limiter_key
        if limiter_key not in self._configured:
            rl = target.config.rate_limit
            self.limiter.configure(
                limiter_key, rl.per_second if rl else None, rl.burst if rl else None
            )
            self._configured.add(limiter_key)
        return limiter_key

    async def _deliver_connector(
        self, c: Claimed, flow: Any, target: ConnectionRuntime, record: Any, xref: str | None
    ) -> Settlement:
        """Deliver through a named connector's action (vendor client, SDK outcomes)."""
        inst = target.connector()
        operation: str = flow.action.operation
        action = inst.actions.get(operation)
        if action is None:
            s = self._settlement(c, "exception", None, "action missing")
            s.exception = (
                "config",
                f"Connector '{target.config.connector}' of connection '{target.name}' has no "
                f"action '{operation}'.",
                "Change the flow's action to one the connector offers, then retry.",
            )
            return s
        # A create checks the cross-reference first: the record exists there already.
        if xref and action.when_exists and action.when_exists in inst.actions:
            action = inst.actions[action.when_exists]
            operation = action.name
        ctx = ActionContext(
            record=record,
            idempotency_key=idempotency_key(target.name, c.record_key, operation, c.version),
            record_key=c.record_key,
            version=c.version,
            xref=xref,
            event_type=c.event_type,
            source_connection=c.connection,
            correlation_id=c.correlation_id,
        )
        limiter_key = self._limiter_key(target)
        await self.limiter.acquire(limiter_key)
        async with self._semaphore(limiter_key, target.config.concurrency):
            with recording() as rec:
                cl, result = await run_action(action, ctx)
        self.stats.calls += len(rec.exchanges)
        rows = exchange_rows(
            rec.exchanges,
            workspace=c.workspace,
            delivery_id=c.id,
            connection=target.name,
            correlation_id=c.correlation_id,
        )
        external_id = result.external_id if result is not None else None
        follow = result.record if result is not None and result.record is not None else None
        return self._settle(c, flow, target, cl, rows, external_id, follow)

    def _rows(self, c: Claimed, target: Any, results: list[CallResult]) -> list[dict[str, Any]]:
        return [
            {
                "workspace": c.workspace,
                "delivery_id": c.id,
                "connection": target.name,
                "correlation_id": c.correlation_id,
                "started_at": r.started_at,
                "latency_ms": r.latency_ms,
                "method": r.method,
                "url": r.url,
                "status": r.status,
                "outcome": r.classified.outcome.value,
                "error": None if r.classified.outcome is Outcome.SUCCESS else r.classified.reason,
                "request_headers": orjson.dumps(r.request_headers).decode(),
                "request_body": r.request_body,
                "response_headers": orjson.dumps(r.response_headers).decode(),
                "response_body": r.response_body,
            }
            for r in results
        ]

    def _settle(
        self,
        c: Claimed,
        flow: Any,
        target: Any,
        cl: Classified,
        rows: list[dict[str, Any]],
        external_id: str | None,
        response_json: Any,
    ) -> Settlement:
        now = time.time()
        attempts = c.attempts + 1
        throttled = c.throttled + (1 if cl.outcome is Outcome.RATE_LIMITED else 0)
        if cl.outcome is Outcome.SUCCESS:
            s = self._settlement(c, "succeeded", cl.outcome.value, None)
            s.attempts, s.throttled, s.attempt_rows = attempts, throttled, rows
            if external_id:
                s.xref = (c.connection, c.record_key, target.name, external_id)
            if flow.emit:
                s.follow_up = self._follow_up(c, flow, target, response_json)
            return s
        if cl.outcome is Outcome.RATE_LIMITED:
            self.limiter.pause(target.limiter_key, cl.retry_after or 1.0)
        if cl.outcome is Outcome.PERMANENT:
            if cl.category == "auth":
                self._refused[target.limiter_key] = (now + AUTH_PAUSE, self.registry, cl)
            s = self._settlement(c, "exception", cl.outcome.value, cl.reason)
            s.attempts, s.throttled, s.attempt_rows = attempts, throttled, rows
            s.exception = (cl.category, cl.reason, cl.fix)
            return s
        r = flow.options.retry
        policy = Policy(
            max_attempts=r.max_attempts,
            initial_delay=r.initial_delay,
            max_delay=r.max_delay,
            multiplier=r.multiplier,
            jitter=r.jitter,
            max_age=r.max_age,
        )
        decision = decide(
            policy,
            cl.outcome,
            failures=attempts - throttled,
            first_seen=c.created_at,
            now=now,
            retry_after=cl.retry_after,
        )
        if decision.retry_at is None:
            s = self._settlement(c, "exception", cl.outcome.value, cl.reason)
            s.attempts, s.throttled, s.attempt_rows = attempts, throttled, rows
            s.exception = (
                "retries_exhausted",
                f"{cl.reason} Crossdock {decision.give_up}.",
                cl.fix or "Check the destination, then retry.",
            )
            return s
        s = self._settlement(c, "pending", cl.outcome.value, cl.reason)
        s.attempts, s.throttled, s.attempt_rows = attempts, throttled, rows
        s.next_attempt_at = decision.retry_at
        return s

    def _follow_up(self, c: Claimed, flow: Any, target: Any, response_json: Any) -> NewEvent:
        routes = [
            FlowRoute(f.name, f.options.ordering == "record", f.options.priority)
            for f in self.registry.flows_for(c.workspace, target.name, flow.emit)
        ]
        return NewEvent(
            workspace=c.workspace,
            connection=target.name,
            type=flow.emit,
            record_key=c.record_key,
            version=c.version,
            dedup_key=f"follow-up:{c.id}",
            correlation_id=c.correlation_id,
            headers_json="{}",
            body_json=orjson.dumps(response_json).decode(),
            routes=routes,
            origin="follow-up",
        )
