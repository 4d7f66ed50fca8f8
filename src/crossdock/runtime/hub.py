"""The hub process: webhooks, the API and the worker in one ASGI app.

``crossdock serve`` runs one :class:`Hub`. On PostgreSQL more ``crossdock worker``
processes may share the work; on SQLite the worker runs inside ``serve``, where the
single writer keeps every write in one place.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import Connection, delete
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from crossdock.ingest.receiver import WebhookReceiver
from crossdock.pipeline.ratelimit import RateLimiter, SharedRateLimiter
from crossdock.pipeline.worker import Worker
from crossdock.runtime.loader import config_stamp, load_registry
from crossdock.runtime.registry import Registry
from crossdock.security.crypto import SecretBox
from crossdock.store.database import Database
from crossdock.store.tables import attempts

log = structlog.get_logger("crossdock.hub")


class Hub:
    """Holds the database, the registry (reloaded on change) and the worker."""

    def __init__(
        self,
        db: Database,
        box: SecretBox,
        *,
        root: Path | None = None,
        run_worker: bool = True,
        worker_options: dict[str, Any] | None = None,
        retention_days: float = 30.0,
    ) -> None:
        self.db = db
        self.box = box
        self.root = root
        self.run_worker = run_worker
        self.worker_options = worker_options or {}
        self.retention_days = retention_days
        self._registry: Registry | None = None
        self._stamp: tuple[Any, ...] | None = None
        self.worker: Worker | None = None
        self.poller: Any = None
        self.alerts: Any = None
        self.receiver = WebhookReceiver(db, self.registry, on_recorded=self.wake)
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def registry(self) -> Registry:
        """The current registry (loaded on first use)."""
        if self._registry is None:
            self.reload()
        assert self._registry is not None
        return self._registry

    def reload(self) -> None:
        """Rebuild the registry from the database."""
        self._stamp = self.db.read_sync(config_stamp)
        self._registry = load_registry(self.db, self.box, self.root)

    def wake(self) -> None:
        """Tell the worker there is new work."""
        if self.worker is not None:
            self.worker.wake()

    def limiter(self) -> RateLimiter:
        """One limiter per credential: in memory on SQLite, shared on PostgreSQL."""
        return RateLimiter() if self.db.is_sqlite else SharedRateLimiter(self.db)

    async def _watch_config(self) -> None:
        while not self._stop.is_set():
            await asyncio.sleep(2.0)
            try:
                stamp = await self.db.read(config_stamp)
                if stamp != self._stamp:
                    await asyncio.to_thread(self.reload)
                    log.info("configuration_reloaded")
            except Exception:  # keep serving with the last good configuration
                log.exception("configuration_reload_failed")

    async def _retention(self) -> None:
        while not self._stop.is_set():
            await self.db.write(
                functools.partial(purge_attempts, before=time.time() - self.retention_days * 86400)
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), 3600)

    @asynccontextmanager
    async def lifespan(self, _app: Any = None) -> AsyncIterator[None]:
        """Start the writer, the worker and the watchers; stop them cleanly."""
        self.db.start()
        await asyncio.to_thread(self.reload)
        self._stop.clear()
        self._tasks = [
            asyncio.create_task(self._watch_config()),
            asyncio.create_task(self._retention()),
        ]
        # Alert rules: in every process; on PostgreSQL an advisory lock lets one evaluate.
        from crossdock.alerts import AlertEvaluator

        self.alerts = AlertEvaluator(self.db, self.registry, self.box)
        self._tasks.append(asyncio.create_task(self.alerts.run(self._stop)))
        if self.run_worker:
            from crossdock.ingest.polling import Poller

            self.poller = Poller(self.db, self.registry, on_recorded=self.wake)
            self._tasks.append(asyncio.create_task(self.poller.run(self._stop)))
            self.worker = Worker(
                self.db, self.registry, limiter=self.limiter(), **self.worker_options
            )
            self._tasks.append(asyncio.create_task(self.worker.run(self._stop)))
        try:
            yield
        finally:
            self._stop.set()
            for t in self._tasks[:2]:
                t.cancel()  # the watchers; the alerts, worker and poller stop on their own
            await asyncio.gather(*self._tasks, return_exceptions=True)
            if self.worker is not None:
                await self.worker.close()
            from crossdock.runtime.connectors import close_http_clients

            await close_http_clients()
            self.db.close()

    def asgi(self) -> ASGIApp:
        """The ASGI app: ``/hooks``, ``/api/v1``, ``/healthz``, ``/readyz``, ``/metrics``."""
        from crossdock.api.app import create_api
        from crossdock.api.context import ApiContext
        from crossdock.runtime.metrics import metrics_endpoint

        api = create_api(
            ApiContext(
                db=self.db,
                registry=self.registry,
                secret_box=self.box,
                on_change=self.reload,
                wake=self.wake,
                limiter=lambda: self.worker.limiter if self.worker is not None else None,
            )
        )
        from crossdock.console.app import create_console

        console = create_console(api.state.ctx)
        rest = Starlette(
            routes=[
                Route("/", _to_console),
                Mount("/console", app=console),
                Route("/healthz", self._healthz),
                Route("/readyz", self._readyz),
                Route("/metrics", metrics_endpoint(self)),
                Mount("/api/v1", app=api),
            ],
            lifespan=self.lifespan,
        )
        receiver = self.receiver

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http" and scope["path"].startswith("/hooks/"):
                await receiver(scope, receive, send)
            else:
                await rest(scope, receive, send)

        return app

    async def _healthz(self, _request: Request) -> Response:
        """Liveness: the process answers."""
        return JSONResponse({"status": "ok"})

    async def _readyz(self, _request: Request) -> Response:
        """Readiness: database answers, schema at head, worker loop ticking (else 503)."""
        from crossdock.runtime.metrics import readyz_response

        return await readyz_response(self)


async def _to_console(_request: Request) -> Response:
    return RedirectResponse("/console/", status_code=307)


def purge_attempts(conn: Connection, before: float) -> int:
    """Delete audit records older than ``before`` (the retention setting)."""
    return conn.execute(delete(attempts).where(attempts.c.started_at < before)).rowcount or 0
