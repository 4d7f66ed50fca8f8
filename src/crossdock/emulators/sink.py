"""The reference sink: a destination stand-in that records what it receives.

The sink is what the hub's promise tests, outage tests and benchmark deliver into. It keeps
records per *collection*, deduplicates writes by ``Idempotency-Key`` (like Stripe), records
every *effect* (a write that changed something) in arrival order, and can be told to fail.

Wire contract (``/records`` routes; every answer is JSON, errors are RFC 9457 problem JSON):

- ``POST /records/{collection}`` creates a record. A new key answers ``201`` with
  ``{"id": "<collection>-<n>", "collection", "idempotency_key", "body"}`` and records one
  effect. The same key again answers the *same* stored body with ``200`` and
  ``Idempotent-Replayed: true`` and records nothing. The same key with a different body
  (or method, collection or id) answers ``422``. Invalid JSON answers ``400``.
- ``PUT /records/{collection}/{id}`` replaces a record's body (idempotency-keyed the same
  way; ``404`` if the id is unknown). ``GET /records/{collection}/{id}`` reads it.
- ``GET /records/{collection}/by-key/{idempotency_key}`` answers ``200`` with the stored
  response of that key, or ``404``: what the hub calls to *verify* an uncertain outcome.
- With a token, every ``/records`` request needs ``Authorization: Bearer <token>`` (``401``).
- With a rate limit (token bucket), a request over the limit answers ``429`` with
  ``Retry-After`` (integer seconds, rounded up) and has no effect.

Requests to ``/records`` are handled in this order: route, read body, auth, fault rules,
rate limit, then the write or read itself.

Control API under ``/_sink/`` (no auth, not counted in the stats): ``GET /_sink/health``,
``GET /_sink/effects?collection=&since=``, ``GET /_sink/stats``, ``POST /_sink/reset``,
``GET|POST|DELETE /_sink/faults`` and ``GET|PUT /_sink/rate-limit``.

Fault rules (see :class:`FaultRule`) are checked in the order they were added. ``slow``
rules delay and let later rules and the request proceed; the first other rule that fires
decides the answer.

The hot path is a raw ASGI callable with orjson and no logging. State changes happen
without an ``await`` between the idempotency check and the write, so one event loop needs
no locks; another thread (a test reading :class:`SinkState`) sees consistent snapshots
because lists and dicts are copied under the GIL.
"""

from __future__ import annotations

import argparse
import contextlib
import hmac
import math
import random
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote

import anyio
import orjson

from crossdock.emulators.serving import bind, serving, uvicorn_server

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

FAULT_KINDS = ("status", "rate_limit", "slow", "timeout", "outage")
MAX_BODY_BYTES = 16 * 1024 * 1024
PROBLEM_BASE = "urn:crossdock:sink:"

_JSON = b"application/json"
_PROBLEM = b"application/problem+json"
_REPLAYED = (b"idempotent-replayed", b"true")
_FAULT_TEXT = {
    "rate_limit": ("Too many requests", "Injected rate limit."),
    "outage": ("Service unavailable", "Injected outage."),
}
_POST = ("POST",)
_GET = ("GET",)
_GET_PUT = ("GET", "PUT")
_FAULT_FIELDS = frozenset(
    {
        "kind",
        "status",
        "retry_after",
        "delay",
        "after_effect",
        "probability",
        "count",
        "collection",
        "methods",
        "start_in",
        "duration",
    }
)


class FaultRuleError(ValueError):
    """A fault rule could not be built from the given settings."""


def problem(status: int, title: str, detail: str, slug: str = "error") -> bytes:
    """Encode an RFC 9457 problem document (``type``, ``title``, ``status``, ``detail``)."""
    return orjson.dumps(
        {"type": PROBLEM_BASE + slug, "title": title, "status": status, "detail": detail}
    )


def _number(data: Mapping[str, Any], name: str, default: float | None) -> float | None:
    value = data.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FaultRuleError(f"'{name}' must be a number, got {value!r}")
    if value < 0 or math.isnan(value) or math.isinf(value):
        raise FaultRuleError(f"'{name}' must be a finite number >= 0, got {value!r}")
    return float(value)


@dataclass
class FaultRule:
    """One injected fault, applied to matching ``/records`` requests.

    Kinds: ``status`` (answer ``status``, 4xx or 5xx, before any effect), ``rate_limit``
    (``429`` with ``Retry-After: ceil(retry_after)``), ``slow`` (wait ``delay`` seconds then
    go on), ``timeout`` (hang ``delay`` seconds; with ``after_effect`` the request is
    applied first, so the client times out not knowing it succeeded, and a client that
    waits it out gets the real answer; without it nothing is applied and a client that
    waits gets ``504``), ``outage`` (``503`` for every request in the window).

    Filters: ``collection``, ``methods`` (e.g. ``["POST", "PUT"]`` to keep verification
    lookups working), ``probability`` (0-1), ``count`` (fire at most N times), and the
    window ``start_in``/``duration`` in seconds from when the rule was added.
    ``retry_after`` also adds a ``Retry-After`` header to ``status`` and ``outage`` answers.
    """

    kind: str
    status: int = 503
    retry_after: float | None = None
    delay: float = 0.0
    after_effect: bool = False
    probability: float = 1.0
    count: int | None = None
    collection: str | None = None
    methods: frozenset[str] | None = None
    start_in: float = 0.0
    duration: float | None = None
    id: int = 0
    added_at: float = field(default_factory=time.monotonic)
    applied: int = 0

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FaultRule:
        """Validate and build a rule from its JSON form; raise :class:`FaultRuleError`."""
        if not isinstance(data, Mapping):
            raise FaultRuleError("a fault rule must be a JSON object")
        unknown = sorted(set(data) - _FAULT_FIELDS)
        if unknown:
            raise FaultRuleError(
                f"unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(_FAULT_FIELDS))}"
            )
        kind = data.get("kind")
        if kind not in FAULT_KINDS:
            raise FaultRuleError(f"'kind' must be one of {', '.join(FAULT_KINDS)}, got {kind!r}")
        status = data.get("status", 429 if kind == "rate_limit" else 503)
        if kind != "status" and "status" in data:
            raise FaultRuleError(f"'status' only applies to kind 'status', not {kind!r}")
        if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
            raise FaultRuleError(f"'status' must be an integer from 400 to 599, got {status!r}")
        probability = _number(data, "probability", 1.0)
        assert probability is not None
        if probability > 1:
            raise FaultRuleError(f"'probability' must be between 0 and 1, got {probability!r}")
        count = data.get("count")
        if count is not None and (isinstance(count, bool) or not isinstance(count, int)):
            raise FaultRuleError(f"'count' must be an integer, got {count!r}")
        if count is not None and count < 1:
            raise FaultRuleError(f"'count' must be >= 1, got {count!r}")
        collection = data.get("collection")
        if collection is not None and not isinstance(collection, str):
            raise FaultRuleError(f"'collection' must be a string, got {collection!r}")
        methods_raw = data.get("methods")
        methods: frozenset[str] | None = None
        if methods_raw is not None:
            items = [methods_raw] if isinstance(methods_raw, str) else methods_raw
            if not isinstance(items, list) or not all(isinstance(m, str) for m in items):
                raise FaultRuleError("'methods' must be a string or a list of strings")
            methods = frozenset(m.upper() for m in items)
        default_delay = {"slow": 0.5, "timeout": 30.0}.get(kind, 0.0)
        after_effect = data.get("after_effect", False)
        if not isinstance(after_effect, bool):
            raise FaultRuleError(f"'after_effect' must be true or false, got {after_effect!r}")
        retry_after = _number(data, "retry_after", 1.0 if kind == "rate_limit" else None)
        duration = _number(data, "duration", None)
        delay = _number(data, "delay", default_delay)
        start_in = _number(data, "start_in", 0.0)
        assert delay is not None and start_in is not None
        return cls(
            kind=kind,
            status=429 if kind == "rate_limit" else status,
            retry_after=retry_after,
            delay=delay,
            after_effect=after_effect,
            probability=probability,
            count=count,
            collection=collection,
            methods=methods,
            start_in=start_in,
            duration=duration,
        )

    def to_dict(self) -> dict[str, Any]:
        """The rule's JSON form, with its ``id`` and how many times it has ``applied``."""
        now = time.monotonic()
        return {
            "id": self.id,
            "kind": self.kind,
            "status": self.status,
            "retry_after": self.retry_after,
            "delay": self.delay,
            "after_effect": self.after_effect,
            "probability": self.probability,
            "count": self.count,
            "collection": self.collection,
            "methods": sorted(self.methods) if self.methods is not None else None,
            "start_in": self.start_in,
            "duration": self.duration,
            "applied": self.applied,
            "active": self.in_window(now) and not self.exhausted,
        }

    @property
    def exhausted(self) -> bool:
        """True once the rule has fired ``count`` times."""
        return self.count is not None and self.applied >= self.count

    def in_window(self, now: float) -> bool:
        """True if ``now`` (``time.monotonic()``) is inside the rule's time window."""
        start = self.added_at + self.start_in
        if now < start:
            return False
        return self.duration is None or now < start + self.duration

    def matches(self, collection: str, method: str, now: float) -> bool:
        """True if the rule applies to this request now (before the probability roll)."""
        if self.count is not None and self.applied >= self.count:
            return False
        if self.collection is not None and self.collection != collection:
            return False
        if self.methods is not None and method not in self.methods:
            return False
        return self.in_window(now)


class TokenBucket:
    """A token bucket: ``rate`` tokens per second, at most ``burst`` in the bucket."""

    __slots__ = ("burst", "last", "rate", "tokens")

    def __init__(self, rate: float, burst: int | None = None) -> None:
        if rate <= 0:
            raise ValueError("rate must be > 0")
        self.rate = float(rate)
        self.burst = float(burst if burst is not None else max(1, math.ceil(rate)))
        if self.burst < 1:
            raise ValueError("burst must be >= 1")
        self.tokens = self.burst
        self.last = time.monotonic()

    def take(self, now: float | None = None) -> float:
        """Take one token: ``0.0`` if allowed, else the seconds until one is available."""
        if now is None:
            now = time.monotonic()
        tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if tokens >= 1.0:
            self.tokens = tokens - 1.0
            return 0.0
        self.tokens = tokens
        return (1.0 - tokens) / self.rate

    def refill(self) -> None:
        """Fill the bucket to ``burst``."""
        self.tokens = self.burst
        self.last = time.monotonic()

    def to_dict(self) -> dict[str, float]:
        """The bucket's settings as JSON."""
        return {"per_second": self.rate, "burst": self.burst}


class _Stored:
    """What an idempotency key is bound to: the request's fingerprint and the answer."""

    __slots__ = ("body", "collection", "method", "record_id", "response")

    def __init__(
        self, method: str, collection: str, record_id: str | None, body: Any, response: bytes
    ) -> None:
        self.method = method
        self.collection = collection
        self.record_id = record_id
        self.body = body
        self.response = response


class SinkState:
    """Everything the sink holds: records, idempotency keys, effects, stats and faults.

    One instance backs one app (:func:`create_sink_app`); tests keep a reference to read
    :attr:`effects`, call :meth:`add_fault` and so on while the app runs.
    ``seed`` makes fault probabilities reproducible.
    """

    def __init__(self, *, seed: int | None = None) -> None:
        self.random = random.Random(seed)
        self.limiter: TokenBucket | None = None
        self.faults: list[FaultRule] = []
        self._next_fault_id = 1
        self.reset()

    def reset(self) -> None:
        """Forget every record, key, effect, statistic and fault rule; refill the bucket."""
        self.effects: list[dict[str, Any]] = []
        self.records: dict[tuple[str, str], dict[str, Any]] = {}
        self.keys: dict[str, _Stored] = {}
        self.counters: dict[str, int] = {}
        self.requests_total = 0
        self.replays = 0
        self.conflicts = 0
        self.rate_limited = 0
        self.client_disconnects = 0
        self.faults_injected = 0
        self.faults_by_kind: dict[str, int] = {}
        self.by_status: dict[int, int] = {}
        self.faults = []
        if self.limiter is not None:
            self.limiter.refill()

    # -- faults ---------------------------------------------------------------------------

    def add_fault(self, rule: FaultRule | Mapping[str, Any]) -> FaultRule:
        """Add a fault rule (a :class:`FaultRule` or its JSON form); its window starts now."""
        built = rule if isinstance(rule, FaultRule) else FaultRule.from_dict(rule)
        built.id = self._next_fault_id
        self._next_fault_id += 1
        built.added_at = time.monotonic()
        built.applied = 0
        self.faults = [*self.faults, built]  # copy-on-write: the hot path reads a snapshot
        return built

    def clear_faults(self) -> int:
        """Remove every fault rule; return how many there were."""
        n = len(self.faults)
        self.faults = []
        return n

    def draw_faults(self, collection: str, method: str) -> list[FaultRule]:
        """The rules that fire for this request, counted as applied: any ``slow`` rules,
        then at most one deciding rule (``status``, ``rate_limit``, ``timeout``, ``outage``)."""
        now = time.monotonic()
        fired: list[FaultRule] = []
        for rule in self.faults:
            if not rule.matches(collection, method, now):
                continue
            if rule.probability < 1.0 and self.random.random() >= rule.probability:
                continue
            rule.applied += 1
            self.faults_injected += 1
            self.faults_by_kind[rule.kind] = self.faults_by_kind.get(rule.kind, 0) + 1
            fired.append(rule)
            if rule.kind != "slow":
                break
        return fired

    def set_rate_limit(self, per_second: float | None, burst: int | None = None) -> None:
        """Set (or with ``None`` remove) the sink's own token-bucket rate limit."""
        self.limiter = TokenBucket(per_second, burst) if per_second else None

    # -- reading --------------------------------------------------------------------------

    def effects_for(self, collection: str | None = None) -> list[dict[str, Any]]:
        """Effects in arrival order, all of them or only those of ``collection``."""
        effects = list(self.effects)
        if collection is None:
            return effects
        return [e for e in effects if e["collection"] == collection]

    def lookup(self, collection: str, key: str) -> dict[str, Any] | None:
        """The stored response for ``key`` in ``collection``, or ``None``."""
        stored = self.keys.get(key)
        if stored is None or stored.collection != collection:
            return None
        result: dict[str, Any] = orjson.loads(stored.response)
        return result

    def stats(self) -> dict[str, Any]:
        """Counters: requests, effects, replays, answers by status code, faults injected."""
        return {
            "requests_total": self.requests_total,
            "effects": len(self.effects),
            "replays": self.replays,
            "conflicts": self.conflicts,
            "rate_limited": self.rate_limited,
            "client_disconnects": self.client_disconnects,
            "records": len(self.records),
            "idempotency_keys": len(self.keys),
            "by_status": {str(k): v for k, v in sorted(dict(self.by_status).items())},
            "faults_injected": self.faults_injected,
            "faults_by_kind": dict(self.faults_by_kind),
            "faults_active": len(self.faults),
        }

    # -- writing (no await inside: atomic on one event loop) -----------------------------

    def _check_key(
        self, key: str, method: str, collection: str, record_id: str | None, body: Any
    ) -> tuple[int, bytes, bool] | None:
        stored = self.keys.get(key)
        if stored is None:
            return None
        if (
            stored.method == method
            and stored.collection == collection
            and stored.record_id == record_id
            and stored.body == body
        ):
            self.replays += 1
            return 200, stored.response, True
        self.conflicts += 1
        return (
            422,
            problem(
                422,
                "Idempotency key reused",
                f"Idempotency-Key '{key}' was first used with a different request "
                f"({stored.method} to collection '{stored.collection}'"
                + (f", record '{stored.record_id}'" if stored.record_id else "")
                + "); a key may only be retried with the same request.",
                "idempotency-key-reuse",
            ),
            False,
        )

    def _effect(
        self,
        method: str,
        collection: str,
        record_id: str,
        key: str | None,
        body: Any,
        correlation_id: str | None,
    ) -> None:
        headers: dict[str, str] = {}
        if key is not None:
            headers["Idempotency-Key"] = key
        if correlation_id is not None:
            headers["X-Correlation-Id"] = correlation_id
        self.effects.append(
            {
                "seq": len(self.effects) + 1,
                "collection": collection,
                "id": record_id,
                "idempotency_key": key,
                "method": method,
                "body": body,
                "headers": headers,
                "received_at": time.time(),
            }
        )

    def create(
        self, collection: str, body: Any, key: str | None, correlation_id: str | None = None
    ) -> tuple[int, bytes, bool]:
        """Apply ``POST /records/{collection}``: ``(status, response body, replayed)``."""
        if key is not None:
            known = self._check_key(key, "POST", collection, None, body)
            if known is not None:
                return known
        n = self.counters.get(collection, 0) + 1
        self.counters[collection] = n
        record_id = f"{collection}-{n}"
        record = {"id": record_id, "collection": collection, "idempotency_key": key, "body": body}
        self.records[(collection, record_id)] = record
        response = orjson.dumps(record)
        self._effect("POST", collection, record_id, key, body, correlation_id)
        if key is not None:
            self.keys[key] = _Stored("POST", collection, None, body, response)
        return 201, response, False

    def update(
        self,
        collection: str,
        record_id: str,
        body: Any,
        key: str | None,
        correlation_id: str | None = None,
    ) -> tuple[int, bytes, bool]:
        """Apply ``PUT /records/{collection}/{id}``: ``(status, response body, replayed)``."""
        if key is not None:
            known = self._check_key(key, "PUT", collection, record_id, body)
            if known is not None:
                return known
        if (collection, record_id) not in self.records:
            return (
                404,
                problem(
                    404,
                    "Record not found",
                    f"No record '{record_id}' in collection '{collection}'.",
                    "not-found",
                ),
                False,
            )
        record = {"id": record_id, "collection": collection, "idempotency_key": key, "body": body}
        self.records[(collection, record_id)] = record
        response = orjson.dumps(record)
        self._effect("PUT", collection, record_id, key, body, correlation_id)
        if key is not None:
            self.keys[key] = _Stored("PUT", collection, record_id, body, response)
        return 200, response, False


# -- ASGI plumbing ----------------------------------------------------------------------------


class _ClientGone(Exception):
    """The client disconnected before the request body was read."""


async def _read_body(receive: Receive) -> bytes:
    message = await receive()
    if message["type"] == "http.disconnect":
        raise _ClientGone
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        return body
    chunks = [body]
    size = len(body)
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise OverflowError
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _respond(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes = _JSON,
    extra: Sequence[tuple[bytes, bytes]] = (),
) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    if extra:
        headers.extend(extra)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _hang(receive: Receive, delay: float) -> bool:
    """Wait ``delay`` seconds or until the client goes away; True if it went away."""
    with anyio.move_on_after(delay):
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return True
    return False


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def _segment(raw: bytes) -> str:
    text = raw.decode("utf-8", "replace")
    return unquote(text) if "%" in text else text


def _retry_after(seconds: float) -> tuple[bytes, bytes]:
    return (b"retry-after", str(max(0, math.ceil(seconds))).encode())


def _route(parts: list[bytes], method: str) -> tuple[str, str, str] | int:
    """``/records/...`` path segments -> ``(op, collection, id-or-key)``, or 404/405."""
    n = len(parts)
    collection = _segment(parts[2])
    if not collection:
        return 404
    if n == 3:
        return ("create", collection, "") if method == "POST" else 405
    if n == 4 and parts[3]:
        if method == "GET":
            return "get", collection, _segment(parts[3])
        return ("update", collection, _segment(parts[3])) if method == "PUT" else 405
    if n == 5 and parts[3] == b"by-key" and parts[4]:
        return ("by_key", collection, _segment(parts[4])) if method == "GET" else 405
    return 404


def create_sink_app(
    state: SinkState | None = None,
    *,
    token: str | None = None,
    rate_limit: float | None = None,
    burst: int | None = None,
) -> ASGIApp:
    """Build the sink's ASGI app over ``state`` (a new :class:`SinkState` if ``None``).

    ``token`` requires ``Authorization: Bearer <token>`` on ``/records``; ``rate_limit``
    (requests per second) with ``burst`` (bucket size, default ``ceil(rate_limit)``) turns
    on the built-in token bucket. The app exposes its state as ``app.state`` (attribute).
    """
    st = state if state is not None else SinkState()
    if rate_limit is not None:
        st.set_rate_limit(rate_limit, burst)
    expected_auth = ("Bearer " + token).encode() if token else None

    async def answer(
        send: Send,
        status: int,
        body: bytes,
        ctype: bytes = _JSON,
        extra: Sequence[tuple[bytes, bytes]] = (),
    ) -> None:
        by_status = st.by_status
        by_status[status] = by_status.get(status, 0) + 1
        await _respond(send, status, body, ctype, extra)

    async def fail(
        send: Send,
        status: int,
        title: str,
        detail: str,
        slug: str,
        extra: Sequence[tuple[bytes, bytes]] = (),
    ) -> None:
        await answer(send, status, problem(status, title, detail, slug), _PROBLEM, extra)

    async def records(scope: Scope, receive: Receive, send: Send, parts: list[bytes]) -> None:
        st.requests_total += 1
        method: str = scope["method"]
        route = _route(parts, method)
        if isinstance(route, int):
            if route == 404:
                await fail(send, 404, "Not found", "No such route.", "no-route")
            else:
                allow = ", ".join(
                    _GET_PUT if len(parts) == 4 else _GET if len(parts) == 5 else _POST
                )
                await fail(
                    send,
                    405,
                    "Method not allowed",
                    f"{method} is not allowed here; allowed: {allow}.",
                    "method-not-allowed",
                    [(b"allow", allow.encode())],
                )
            return
        op, collection, record_id = route

        key: str | None = None
        correlation_id: str | None = None
        auth: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"idempotency-key":
                key = value.decode("latin-1") or None
            elif name == b"x-correlation-id":
                correlation_id = value.decode("latin-1") or None
            elif name == b"authorization":
                auth = value

        raw = b""
        if method != "GET":
            try:
                raw = await _read_body(receive)
            except _ClientGone:
                st.client_disconnects += 1
                return
            except OverflowError:
                detail = f"The body is over {MAX_BODY_BYTES} bytes."
                await fail(send, 413, "Payload too large", detail, "too-large")
                return

        if expected_auth is not None and (
            auth is None or not hmac.compare_digest(auth, expected_auth)
        ):
            detail = "A valid 'Authorization: Bearer <token>' header is required."
            await fail(
                send,
                401,
                "Unauthorized",
                detail,
                "unauthorized",
                [(b"www-authenticate", b'Bearer realm="sink"')],
            )
            return

        timeout_rule: FaultRule | None = None
        if st.faults:
            for rule in st.draw_faults(collection, method):
                if rule.kind == "slow":
                    await anyio.sleep(rule.delay)
                elif rule.kind == "timeout":
                    timeout_rule = rule
                else:
                    extra = [_retry_after(rule.retry_after)] if rule.retry_after is not None else []
                    title, detail = _FAULT_TEXT.get(
                        rule.kind, ("Injected failure", f"Injected HTTP {rule.status}.")
                    )
                    await fail(send, rule.status, title, detail, "injected-" + rule.kind, extra)
                    return
            if timeout_rule is not None and not timeout_rule.after_effect:
                if await _hang(receive, timeout_rule.delay):
                    st.client_disconnects += 1
                    return
                detail = "Injected timeout; nothing was applied."
                await fail(send, 504, "Gateway timeout", detail, "injected-timeout")
                return

        limiter = st.limiter
        if limiter is not None:
            wait = limiter.take()
            if wait > 0.0:
                st.rate_limited += 1
                detail = f"Rate limit of {limiter.rate:g}/s exceeded; retry after {wait:.3f}s."
                header = (b"retry-after", str(max(1, math.ceil(wait))).encode())
                await fail(send, 429, "Too many requests", detail, "rate-limited", [header])
                return

        status: int
        out: bytes
        replayed = False
        if op == "get":
            record = st.records.get((collection, record_id))
            if record is None:
                detail = f"No record '{record_id}' in collection '{collection}'."
                status, out = 404, problem(404, "Record not found", detail, "not-found")
            else:
                status, out = 200, orjson.dumps(record)
        elif op == "by_key":
            stored = st.keys.get(record_id)
            if stored is None or stored.collection != collection:
                detail = f"No request with Idempotency-Key '{record_id}' in '{collection}'."
                status, out = 404, problem(404, "Idempotency key not found", detail, "not-found")
            else:
                status, out = 200, stored.response
        else:
            try:
                payload = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                detail = f"The request body is not valid JSON: {exc}."
                await fail(send, 400, "Invalid JSON", detail, "invalid-json")
                return
            if op == "create":
                status, out, replayed = st.create(collection, payload, key, correlation_id)
            else:
                status, out, replayed = st.update(
                    collection, record_id, payload, key, correlation_id
                )

        if timeout_rule is not None and await _hang(receive, timeout_rule.delay):
            st.client_disconnects += 1
            return
        ctype = _JSON if status < 400 else _PROBLEM
        await answer(send, status, out, ctype, (_REPLAYED,) if replayed else ())

    async def control(scope: Scope, receive: Receive, send: Send, name: str) -> None:
        method: str = scope["method"]
        if name == "health" and method == "GET":
            await _respond(send, 200, b'{"ok":true}')
        elif name == "effects" and method == "GET":
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            collection = query.get("collection", [None])[0] or None
            effects = st.effects_for(collection)
            since = query.get("since", [None])[0]
            if since:
                try:
                    after = int(since)
                except ValueError:
                    await _respond(
                        send,
                        400,
                        problem(400, "Bad query", "'since' must be an integer.", "bad-query"),
                        _PROBLEM,
                    )
                    return
                effects = [e for e in effects if e["seq"] > after]
            await _respond(send, 200, orjson.dumps(effects))
        elif name == "stats" and method == "GET":
            await _respond(send, 200, orjson.dumps(st.stats()))
        elif name == "reset" and method == "POST":
            st.reset()
            await _respond(send, 200, b'{"reset":true}')
        elif name == "faults" and method == "GET":
            await _respond(send, 200, orjson.dumps([r.to_dict() for r in st.faults]))
        elif name == "faults" and method == "DELETE":
            await _respond(send, 200, orjson.dumps({"cleared": st.clear_faults()}))
        elif name == "faults" and method == "POST":
            try:
                data = orjson.loads(await _read_body(receive))
                items = data if isinstance(data, list) else [data]
                rules = [FaultRule.from_dict(item) for item in items]
            except _ClientGone:
                return
            except (orjson.JSONDecodeError, FaultRuleError, OverflowError) as exc:
                await _respond(
                    send,
                    400,
                    problem(400, "Invalid fault rule", str(exc), "invalid-fault"),
                    _PROBLEM,
                )
                return
            added = [st.add_fault(r).to_dict() for r in rules]
            await _respond(send, 201, orjson.dumps(added if isinstance(data, list) else added[0]))
        elif name == "rate-limit" and method == "GET":
            limiter = st.limiter
            await _respond(send, 200, orjson.dumps(limiter.to_dict() if limiter else None))
        elif name == "rate-limit" and method == "PUT":
            try:
                data = orjson.loads(await _read_body(receive))
                if data is None:
                    st.set_rate_limit(None)
                else:
                    st.set_rate_limit(float(data["per_second"]), data.get("burst"))
            except _ClientGone:
                return
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
                await _respond(
                    send,
                    400,
                    problem(
                        400,
                        "Invalid rate limit",
                        f'Expected {{"per_second": N, "burst": B}} or null ({exc}).',
                        "invalid-rate-limit",
                    ),
                    _PROBLEM,
                )
                return
            limiter = st.limiter
            await _respond(send, 200, orjson.dumps(limiter.to_dict() if limiter else None))
        else:
            await _respond(
                send,
                404,
                problem(404, "Not found", f"No control route {method} /_sink/{name}.", "no-route"),
                _PROBLEM,
            )

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await _lifespan(receive, send)
            return
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        parts = raw_path.split(b"/")
        if len(parts) >= 3 and parts[1] == b"records":
            await records(scope, receive, send, parts)
        elif len(parts) == 3 and parts[1] == b"_sink":
            await control(scope, receive, send, _segment(parts[2]))
        else:
            await _respond(
                send, 404, problem(404, "Not found", "No such route.", "no-route"), _PROBLEM
            )

    app.state = st  # type: ignore[attr-defined]
    return app


# -- running it -------------------------------------------------------------------------------


@dataclass
class RunningSink:
    """A sink serving on a loopback socket: its base ``url``, ``port`` and ``state``."""

    url: str
    host: str
    port: int
    state: SinkState
    server: Any
    thread: threading.Thread


@contextlib.contextmanager
def running_sink(
    port: int = 0,
    *,
    host: str = "127.0.0.1",
    state: SinkState | None = None,
    token: str | None = None,
    rate_limit: float | None = None,
    burst: int | None = None,
    startup_timeout: float = 10.0,
) -> Iterator[RunningSink]:
    """Serve a sink with uvicorn in a background thread for the ``with`` block.

    ``port=0`` picks a free port. Yields a :class:`RunningSink` once the server accepts
    connections; on exit the server is asked to stop and the thread is joined.
    """
    st = state if state is not None else SinkState()
    app = create_sink_app(st, token=token, rate_limit=rate_limit, burst=burst)
    with serving(app, host=host, port=port, startup_timeout=startup_timeout) as srv:
        yield RunningSink(
            url=srv.url,
            host=host,
            port=srv.port,
            state=st,
            server=srv.server,
            thread=srv.thread,
        )


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: ``python -m crossdock.emulators.sink --host H --port N [...]``."""
    parser = argparse.ArgumentParser(
        prog="python -m crossdock.emulators.sink",
        description="Crossdock's reference sink: a destination that records what it receives.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8900, help="0 picks a free port")
    parser.add_argument("--token", default=None, help="require 'Authorization: Bearer TOKEN'")
    parser.add_argument("--rate-limit", type=float, default=None, metavar="PER_SECOND")
    parser.add_argument("--burst", type=int, default=None, metavar="B")
    parser.add_argument("--seed", type=int, default=None, help="seed for fault probabilities")
    args = parser.parse_args(argv)
    if args.burst is not None and args.rate_limit is None:
        parser.error("--burst needs --rate-limit")
    app = create_sink_app(
        SinkState(seed=args.seed), token=args.token, rate_limit=args.rate_limit, burst=args.burst
    )
    sock = bind(args.host, args.port)
    port = sock.getsockname()[1]
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(f"crossdock sink listening on http://{shown}:{port}", flush=True)
    server = uvicorn_server(app)
    server.run(sockets=[sock])


if __name__ == "__main__":
    main()
