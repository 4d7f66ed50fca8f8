"""Webhook load generators in their own process (so they share no GIL with the hub).

``open``: an OPEN-LOOP generator. Request *i* is due at ``start + i / rate`` whether or
not earlier requests have been answered; if no keep-alive connection is free another one
is opened (up to ``--max-connections``, then the request waits for one). Latency is
measured from the *scheduled* send time, so a slow server cannot slow the sender down
and hide its own latency (no coordinated omission). The body carries ``sent_at``, the
scheduled send time as an epoch float, for end-to-end latency at the destination.

``preload``: a closed-loop sender of exactly ``--count`` events that retries each one
until it is acknowledged (like a vendor does), for the end-to-end phase.

Both use raw asyncio streams (HTTP/1.1, keep-alive) on uvloop, which costs far less CPU
per request than a general HTTP client on a two-core machine. Both print one JSON object
on stdout::

    python -m crossdock.bench.loadgen open --url http://127.0.0.1:8080 \
        --path /hooks/bench/signed --secret S --rate 1000 --seconds 10
    python -m crossdock.bench.loadgen preload --url ... --path /hooks/bench/shop --count 20000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import math
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import orjson


class HttpError(Exception):
    """The connection broke or the answer could not be read."""


@dataclass
class Target:
    """Where to send and how to sign."""

    host: str
    port: int
    path: str
    secret: bytes | None = None
    prefix: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    records: int = 1000

    def request(self, i: int, sent_at: float) -> bytes:
        """The raw HTTP/1.1 request for event ``i`` (unique id, interleaved versions)."""
        record, version = i % self.records, i // self.records + 1
        body = orjson.dumps(
            {
                "type": "order.updated",
                "order": {
                    "id": f"{self.prefix}-R{record}",
                    "version": version,
                    "total": "49.90",
                    "lines": [{"sku": "ABC-1", "qty": 2}],
                },
                "sent_at": sent_at,
            }
        )
        head = (
            f"POST {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"X-Event-Id: {self.prefix}-{i}\r\n"
        )
        if self.secret is not None:
            sig = hmac.new(self.secret, body, hashlib.sha256).hexdigest()
            head += f"X-Signature: {sig}\r\n"
        return (head + "\r\n").encode() + body


class Connection:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.usable = True
        self.last_body = b""

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        """Connect (asyncio sets TCP_NODELAY on TCP sockets)."""
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def roundtrip(self, raw: bytes) -> int:
        """Send one request and read its whole answer; return the status code."""
        try:
            self.writer.write(raw)
            head = await self.reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            lower = head.lower()
            pos = lower.find(b"\r\ncontent-length:")
            if pos >= 0:
                end = lower.index(b"\r\n", pos + 2)
                length = int(lower[pos + 17 : end])
                self.last_body = await self.reader.readexactly(length) if length else b""
            elif b"transfer-encoding: chunked" in lower:
                while True:
                    size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
                    await self.reader.readexactly(size + 2)
                    if size == 0:
                        break
            if b"\r\nconnection: close" in lower:
                self.usable = False
            return status
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as e:
            self.usable = False
            raise HttpError(f"{type(e).__name__}: {e}") from None

    def close(self) -> None:
        """Close the socket."""
        self.usable = False
        with contextlib.suppress(Exception):
            self.writer.close()


class Pool:
    """Keep-alive connections: reuse an idle one, open a new one up to ``limit``."""

    def __init__(self, host: str, port: int, limit: int) -> None:
        self.host, self.port, self.limit = host, port, limit
        self.idle: list[Connection] = []
        self.opened = 0
        self.peak = 0
        self._open_now = 0
        self._freed = asyncio.Condition()

    async def get(self) -> Connection:
        """An idle connection, a new one, or wait for one to be released."""
        async with self._freed:
            while not self.idle and self._open_now >= self.limit:
                await self._freed.wait()
            if self.idle:
                return self.idle.pop()
            self._open_now += 1
            self.peak = max(self.peak, self._open_now)
        try:
            conn = await Connection.open(self.host, self.port)
        except OSError:
            await self._drop()
            raise
        self.opened += 1
        return conn

    async def put(self, conn: Connection) -> None:
        """Give a connection back (closed and forgotten if it is no longer usable)."""
        if not conn.usable:
            conn.close()
            await self._drop()
            return
        async with self._freed:
            self.idle.append(conn)
            self._freed.notify()

    async def _drop(self) -> None:
        async with self._freed:
            self._open_now -= 1
            self._freed.notify()

    def close(self) -> None:
        """Close every idle connection."""
        for c in self.idle:
            c.close()
        self.idle.clear()


def percentiles(values: list[float]) -> dict[str, float]:
    """p50/p90/p99/p999/max of ``values`` (nearest rank), in the same unit."""
    if not values:
        return {"p50": 0.0, "p90": 0.0, "p99": 0.0, "p999": 0.0, "max": 0.0, "count": 0}
    s = sorted(values)

    def rank(p: float) -> float:
        k = max(0, min(len(s) - 1, math.ceil(p / 100.0 * len(s)) - 1))
        return s[k]

    return {
        "p50": rank(50),
        "p90": rank(90),
        "p99": rank(99),
        "p999": rank(99.9),
        "max": s[-1],
        "count": len(s),
    }


async def open_loop(
    target: Target, rate: float, seconds: float, max_connections: int, timeout: float
) -> dict[str, Any]:
    """Send ``rate * seconds`` webhooks at fixed intervals; measure ack latency."""
    clock = time.perf_counter  # uvloop's loop.time() only has millisecond resolution
    pool = Pool(target.host, target.port, max_connections)
    total = max(1, int(rate * seconds))
    latencies: list[float] = []
    send_lag: list[float] = []
    statuses: dict[int, int] = {}
    errors: dict[str, int] = {}
    last_write = 0.0
    tasks: set[asyncio.Task[None]] = set()

    async def fire(i: int, due: float, wall: float) -> None:
        nonlocal last_write
        try:
            conn = await asyncio.wait_for(pool.get(), timeout)
        except (OSError, TimeoutError) as exc:
            errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
            return
        sent = clock()
        send_lag.append(sent - due)
        last_write = max(last_write, sent)
        try:
            status = await asyncio.wait_for(conn.roundtrip(target.request(i, wall)), timeout)
        except (HttpError, TimeoutError) as exc:
            conn.close()
            name = "timeout" if isinstance(exc, TimeoutError) else "connection"
            errors[name] = errors.get(name, 0) + 1
            await pool.put(conn)
            return
        latencies.append(clock() - due)
        statuses[status] = statuses.get(status, 0) + 1
        await pool.put(conn)

    # Open a few connections before the clock starts, as a running vendor would have.
    warm = [await Connection.open(target.host, target.port) for _ in range(min(8, max_connections))]
    pool.opened = pool._open_now = pool.peak = len(warm)
    pool.idle.extend(warm)

    start = clock()
    wall0 = time.time()  # sent_at = wall0 + (due - start): the scheduled send time
    i = 0
    while i < total:
        due_now = min(total, int((clock() - start) * rate) + 1)
        while i < due_now:
            due = start + i / rate
            task = asyncio.create_task(fire(i, due, wall0 + (due - start)))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            i += 1
        await asyncio.sleep(max(0.0, start + i / rate - clock()))
    schedule_end = clock()
    while tasks:
        await asyncio.gather(*list(tasks), return_exceptions=True)
    finished = clock()
    pool.close()
    ok = sum(n for s, n in statuses.items() if 200 <= s < 300)
    written = len(send_lag)
    return {
        "mode": "open",
        "offered_rate": rate,
        "scheduled": total,
        "sent": written,
        "acked": ok,
        "non_2xx": sum(n for s, n in statuses.items() if not 200 <= s < 300),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "errors": errors,
        "achieved_rate": written / (last_write - start) if last_write > start else 0.0,
        "acked_rate": ok / (finished - start) if finished > start else 0.0,
        "schedule_seconds": schedule_end - start,
        "seconds": finished - start,
        "ack_latency_ms": {
            k: (v * 1000 if k != "count" else v) for k, v in percentiles(latencies).items()
        },
        "send_lag_ms": {
            k: (v * 1000 if k != "count" else v) for k, v in percentiles(send_lag).items()
        },
        "connections_opened": pool.opened,
        "connections_peak": pool.peak,
        "prefix": target.prefix,
        "start_epoch": wall0,
    }


async def preload(target: Target, count: int, concurrency: int, timeout: float) -> dict[str, Any]:
    """Send exactly ``count`` events, each retried until it is acknowledged (2xx)."""
    next_i = 0
    acked = 0
    retries = 0

    async def sender() -> None:
        nonlocal next_i, acked, retries
        conn: Connection | None = None
        while next_i < count:
            i = next_i
            next_i += 1
            last = ""
            for _attempt in range(300):
                try:
                    if conn is None or not conn.usable:
                        conn = await Connection.open(target.host, target.port)
                    raw = target.request(i, time.time())
                    status = await asyncio.wait_for(conn.roundtrip(raw), timeout)
                    last = f"HTTP {status}: {conn.last_body[:300]!r}"
                except (HttpError, OSError, TimeoutError) as exc:
                    if conn is not None:
                        conn.close()
                    conn = None
                    status = 0
                    last = f"{type(exc).__name__}: {exc}"
                if 200 <= status < 300:
                    acked += 1
                    break
                retries += 1
                await asyncio.sleep(0.1)
            else:
                raise RuntimeError(f"event {i} was never acknowledged; last answer: {last}")
        if conn is not None:
            conn.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(concurrency)))
    seconds = time.perf_counter() - t0
    return {
        "mode": "preload",
        "count": count,
        "acked": acked,
        "retries": retries,
        "seconds": seconds,
        "rate": acked / seconds if seconds > 0 else 0.0,
        "prefix": target.prefix,
    }


def _target(args: argparse.Namespace, total: int) -> Target:
    url = urlsplit(args.url)
    return Target(
        host=url.hostname or "127.0.0.1",
        port=url.port or 80,
        path=args.path,
        secret=args.secret.encode() if args.secret else None,
        prefix=args.prefix or uuid.uuid4().hex[:8],
        records=max(1, total // max(1, args.versions)),
    )


def main(argv: list[str] | None = None) -> int:
    """Command line: ``open`` or ``preload``; prints one JSON object."""
    parser = argparse.ArgumentParser(description="Webhook load generator for crossdock bench.")
    sub = parser.add_subparsers(dest="mode", required=True)
    for name in ("open", "preload"):
        p = sub.add_parser(name)
        p.add_argument("--url", required=True, help="Base URL, e.g. http://127.0.0.1:8080")
        p.add_argument("--path", required=True, help="Webhook path, e.g. /hooks/bench/shop")
        p.add_argument("--secret", default=None, help="HMAC-SHA256 secret (X-Signature, hex)")
        p.add_argument("--prefix", default=None, help="Event id prefix (unique per run)")
        p.add_argument("--versions", type=int, default=10, help="Versions per record key")
        p.add_argument("--timeout", type=float, default=30.0, help="Per-request timeout (s)")
    o = sub.choices["open"]
    o.add_argument("--rate", type=float, default=1000.0, help="Requests per second offered")
    o.add_argument("--seconds", type=float, default=10.0)
    o.add_argument("--max-connections", type=int, default=256)
    p = sub.choices["preload"]
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args(argv)

    import uvloop

    if args.mode == "open":
        target = _target(args, int(args.rate * args.seconds))
        result = uvloop.run(
            open_loop(target, args.rate, args.seconds, args.max_connections, args.timeout)
        )
    else:
        target = _target(args, args.count)
        result = uvloop.run(preload(target, args.count, args.concurrency, args.timeout))
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
