"""What every vendor emulator shares: injected failures, webhook delivery, control routes.

An emulator is a Starlette app standing in for one vendor. Besides the vendor's own
routes it has, under ``/_emulator``:

- ``GET|POST|DELETE /_emulator/faults`` — inject failures: ``{"status": 503, "count": 3}``,
  ``{"status": 429, "retry_after": 2}``, ``{"kind": "timeout", "delay": 30}``, each
  optionally limited to a ``path`` prefix, ``methods`` and a ``probability``;
- ``GET /_emulator/state`` — what the emulator holds (for tests and the demo);
- ``GET /_emulator/webhooks`` — deliveries sent, with their answers;
- ``POST /_emulator/reset`` — forget everything.

:class:`WebhookSender` delivers webhooks the way vendors do: signed, with the vendor's
retry schedule on a non-2xx (scaled by ``time_scale`` for tests), and, with
``duplicate_probability``, the same delivery sent twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = [
    "Fault",
    "FaultMiddleware",
    "Faults",
    "WebhookDelivery",
    "WebhookSender",
    "control_routes",
]


@dataclass
class Fault:
    """One injected failure rule."""

    id: int
    status: int | None = 503
    kind: str = "status"  # status | timeout | drop
    path: str = ""
    methods: tuple[str, ...] = ()
    count: int | None = None
    probability: float = 1.0
    retry_after: float | None = None
    delay: float = 0.0
    after_effect: bool = False
    hits: int = 0

    @classmethod
    def from_dict(cls, fid: int, data: Mapping[str, Any]) -> Fault:
        """Build a rule from its JSON form (raise ValueError naming the bad field)."""
        kind = str(data.get("kind", "status"))
        if kind not in ("status", "timeout", "drop"):
            raise ValueError(f"'kind' must be status, timeout or drop, got {kind!r}")
        status = data.get("status", 503 if kind == "status" else None)
        if kind == "status" and not (isinstance(status, int) and 400 <= status <= 599):
            raise ValueError(f"'status' must be an integer from 400 to 599, got {status!r}")
        methods = data.get("methods") or ()
        if isinstance(methods, str):
            methods = (methods,)
        if not isinstance(methods, list | tuple) or not all(isinstance(m, str) for m in methods):
            raise ValueError(f"'methods' must be a list of HTTP methods, got {methods!r}")
        try:
            return cls._build(fid, data, kind, status, methods)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"invalid fault: {exc}") from None

    @classmethod
    def _build(
        cls,
        fid: int,
        data: Mapping[str, Any],
        kind: str,
        status: Any,
        methods: tuple[str, ...] | list[str],
    ) -> Fault:
        return cls(
            id=fid,
            status=status,
            kind=kind,
            path=str(data.get("path", "")),
            methods=tuple(m.upper() for m in methods),
            count=int(data["count"]) if data.get("count") is not None else None,
            probability=float(data.get("probability", 1.0)),
            retry_after=float(data["retry_after"]) if data.get("retry_after") is not None else None,
            delay=float(data.get("delay", 30.0 if kind == "timeout" else 0.0)),
            after_effect=bool(data.get("after_effect", False)),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "id": self.id,
            "kind": self.kind,
            "status": self.status,
            "path": self.path,
            "methods": list(self.methods),
            "count": self.count,
            "probability": self.probability,
            "retry_after": self.retry_after,
            "delay": self.delay,
            "after_effect": self.after_effect,
            "hits": self.hits,
        }


class Faults:
    """The active fault rules of one emulator."""

    def __init__(self, seed: int | None = None) -> None:
        self.rules: list[Fault] = []
        self.injected = 0
        self._next = 1
        self._random = random.Random(seed)

    def add(self, data: Mapping[str, Any]) -> Fault:
        """Add a rule from its JSON form."""
        rule = Fault.from_dict(self._next, data)
        self._next += 1
        self.rules.append(rule)
        return rule

    def clear(self) -> None:
        """Remove every rule."""
        self.rules.clear()

    def match(self, method: str, path: str) -> Fault | None:
        """The first rule that fires for this request (counting it), if any."""
        if path.startswith("/_emulator"):
            return None
        for rule in self.rules:
            if rule.count is not None and rule.hits >= rule.count:
                continue
            if rule.path and not path.startswith(rule.path):
                continue
            if rule.methods and method.upper() not in rule.methods:
                continue
            if rule.probability < 1.0 and self._random.random() >= rule.probability:
                continue
            rule.hits += 1
            self.injected += 1
            return rule
        return None


class FaultMiddleware:
    """Apply :class:`Faults` to the vendor routes of an emulator (raw ASGI)."""

    def __init__(self, app: ASGIApp, faults: Faults) -> None:
        self.app = app
        self.faults = faults

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rule = self.faults.match(scope["method"], scope["path"])
        if rule is None:
            await self.app(scope, receive, send)
            return
        if rule.after_effect:
            # The vendor applies the request, but the answer is lost or late.
            async def swallow(message: Any) -> None:
                return None

            await self.app(scope, receive, swallow)
        if rule.kind in ("timeout", "drop"):
            await asyncio.sleep(rule.delay)
            if rule.kind == "drop":
                return
        headers: dict[str, str] = {}
        if rule.retry_after is not None:
            # Whole seconds, rounded up: a client honouring it never comes back early.
            headers["Retry-After"] = str(max(0, math.ceil(rule.retry_after)))
        status = rule.status or 503
        response = JSONResponse(
            {"errors": f"injected fault {rule.id}: HTTP {status}"}, status, headers=headers
        )
        await response(scope, receive, send)


@dataclass
class WebhookDelivery:
    """One webhook the emulator sent (or is sending)."""

    id: str
    url: str
    topic: str
    body: bytes
    headers: dict[str, str]
    attempts: int = 0
    statuses: list[int | str] = field(default_factory=list)
    delivered: bool = False
    duplicate_of: str | None = None


class WebhookSender:
    """Sends webhooks in the background with retries, like a vendor does.

    ``retry_delays`` is the vendor's schedule in seconds (scaled by ``time_scale``);
    ``duplicate_probability`` re-sends a delivered webhook once more, unchanged.
    """

    def __init__(
        self,
        *,
        retry_delays: tuple[float, ...] = (1, 5, 30, 120, 600, 1800, 3600, 7200),
        time_scale: float = 1.0,
        duplicate_probability: float = 0.0,
        timeout: float = 5.0,
        seed: int | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.retry_delays = retry_delays
        self.time_scale = time_scale
        self.duplicate_probability = duplicate_probability
        self.timeout = timeout
        self.deliveries: list[WebhookDelivery] = []
        self._random = random.Random(seed)
        self._client = client
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def client(self) -> httpx.AsyncClient:
        """The HTTP client (made on first use, in the running loop)."""
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout)
        return self._client

    def send(self, delivery: WebhookDelivery) -> None:
        """Queue a delivery (returns at once; the send runs in the background)."""
        self.deliveries.append(delivery)
        task = asyncio.get_running_loop().create_task(self._deliver(delivery))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _post(self, d: WebhookDelivery) -> bool:
        d.attempts += 1
        try:
            r = await self.client.post(d.url, content=d.body, headers=d.headers)
        except httpx.HTTPError as exc:
            d.statuses.append(type(exc).__name__)
            return False
        d.statuses.append(r.status_code)
        return 200 <= r.status_code < 300

    async def _deliver(self, d: WebhookDelivery) -> None:
        for delay in (0.0, *self.retry_delays):
            if delay:
                await asyncio.sleep(delay * self.time_scale)
            if await self._post(d):
                d.delivered = True
                break
        if d.delivered and self._random.random() < self.duplicate_probability:
            dup = WebhookDelivery(
                id=d.id + "-dup",
                url=d.url,
                topic=d.topic,
                body=d.body,
                headers=dict(d.headers),
                duplicate_of=d.id,
            )
            self.deliveries.append(dup)
            if await self._post(dup):
                dup.delivered = True

    async def drain(self, timeout: float = 30.0) -> None:
        """Wait until every queued delivery is done (delivered or given up)."""
        deadline = time.monotonic() + timeout
        while self._tasks and time.monotonic() < deadline:
            await asyncio.wait(set(self._tasks), timeout=max(0.0, deadline - time.monotonic()))

    async def close(self) -> None:
        """Cancel pending deliveries and close the client."""
        for t in list(self._tasks):
            t.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()

    def forget(self) -> None:
        """Cancel pending deliveries and forget every delivery (``/_emulator/reset``)."""
        for t in list(self._tasks):
            t.cancel()
        self.deliveries.clear()

    def summary(self) -> list[dict[str, Any]]:
        """The deliveries as JSON (newest last)."""
        return [
            {
                "id": d.id,
                "url": d.url,
                "topic": d.topic,
                "attempts": d.attempts,
                "statuses": d.statuses,
                "delivered": d.delivered,
                "duplicate_of": d.duplicate_of,
            }
            for d in self.deliveries
        ]


def control_routes(
    faults: Faults,
    state: Callable[[], Any],
    reset: Callable[[], Awaitable[None] | None],
    webhooks: WebhookSender | None = None,
) -> list[Route]:
    """The ``/_emulator`` routes every emulator has."""

    async def faults_route(request: Request) -> Response:
        if request.method == "GET":
            return JSONResponse({"faults": [f.to_dict() for f in faults.rules]})
        if request.method == "DELETE":
            faults.clear()
            return JSONResponse({"faults": []})
        try:
            data = await request.json()
            if not isinstance(data, dict):
                raise ValueError('a fault is a JSON object, e.g. {"status": 503}')
            rule = faults.add(data)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, 400)
        return JSONResponse(rule.to_dict(), 201)

    async def state_route(request: Request) -> Response:
        return JSONResponse(state())

    async def webhooks_route(request: Request) -> Response:
        return JSONResponse({"deliveries": webhooks.summary() if webhooks else []})

    async def reset_route(request: Request) -> Response:
        result = reset()
        if result is not None:
            await result
        faults.clear()
        if webhooks is not None:
            webhooks.forget()
        return JSONResponse({"reset": True})

    return [
        Route("/_emulator/faults", faults_route, methods=["GET", "POST", "DELETE"]),
        Route("/_emulator/state", state_route, methods=["GET"]),
        Route("/_emulator/webhooks", webhooks_route, methods=["GET"]),
        Route("/_emulator/reset", reset_route, methods=["POST"]),
    ]
