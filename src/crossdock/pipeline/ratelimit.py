"""One rate limiter per credential, shared by every flow that uses the connection.

In one process (the embedded SQLite default) a token bucket in memory is enough. On
PostgreSQL several worker processes share the bucket through a row in ``rate_buckets``,
updated atomically; a 429 pauses the bucket for every process until ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, text

from crossdock.store.database import Database


@dataclass
class _Bucket:
    rate: float
    burst: float
    tokens: float
    updated: float
    paused_until: float = 0.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class RateLimiter:
    """Token buckets keyed by credential (``workspace/connection``)."""

    def __init__(self) -> None:
        self._buckets: dict[str, _Bucket] = {}
        self._pauses: dict[str, float] = {}

    def configure(self, key: str, per_second: float | None, burst: int | None) -> None:
        """Set or change the bucket of ``key``; ``per_second=None`` means unlimited."""
        if per_second is None:
            self._buckets.pop(key, None)
            return
        b = self._buckets.get(key)
        cap = float(burst or max(1, int(per_second)))
        if b is None:
            self._buckets[key] = _Bucket(per_second, cap, cap, time.monotonic())
        else:
            b.rate, b.burst = per_second, cap

    def pause(self, key: str, seconds: float) -> None:
        """Stop sending on ``key`` for ``seconds`` (after a 429)."""
        until = time.monotonic() + seconds
        self._pauses[key] = max(self._pauses.get(key, 0.0), until)

    def paused_for(self, key: str) -> float:
        """Seconds left in a pause of ``key``."""
        return max(0.0, self._pauses.get(key, 0.0) - time.monotonic())

    def headroom(self, key: str) -> float | None:
        """The share of ``key``'s burst available now (0..1); None when not limited here."""
        b = self._buckets.get(key)
        if b is None or not b.burst:
            return None
        tokens = min(b.burst, b.tokens + max(time.monotonic() - b.updated, 0.0) * b.rate)
        return max(tokens, 0.0) / b.burst

    async def acquire(self, key: str) -> None:
        """Wait until a call on ``key`` is allowed."""
        while (wait := self.paused_for(key)) > 0:
            await asyncio.sleep(wait)
        b = self._buckets.get(key)
        if b is None:
            return
        async with b.lock:
            while True:
                now = time.monotonic()
                b.tokens = min(b.burst, b.tokens + (now - b.updated) * b.rate)
                b.updated = now
                if b.tokens >= 1:
                    b.tokens -= 1
                    return
                await asyncio.sleep((1 - b.tokens) / b.rate)


_TAKE = text(
    """
    UPDATE rate_buckets
       SET tokens = LEAST(:burst, tokens + (:now - updated_at) * :rate) - 1,
           updated_at = :now
     WHERE key = :key
       AND paused_until <= :now
       AND LEAST(:burst, tokens + (:now - updated_at) * :rate) >= 1
    RETURNING tokens
    """
)
_STATE = text("SELECT tokens, updated_at, paused_until FROM rate_buckets WHERE key = :key")
_PAUSE = text(
    "UPDATE rate_buckets SET paused_until = GREATEST(paused_until, :until) WHERE key = :key"
)


class SharedRateLimiter(RateLimiter):
    """Token buckets in PostgreSQL, shared by every worker process."""

    def __init__(self, db: Database) -> None:
        super().__init__()
        self.db = db
        self._config: dict[str, tuple[float, float]] = {}

    def configure(self, key: str, per_second: float | None, burst: int | None) -> None:
        """Set the bucket of ``key`` and create its row if missing."""
        if per_second is None:
            self._config.pop(key, None)
            return
        cap = float(burst or max(1, int(per_second)))
        self._config[key] = (per_second, cap)

        def ensure(conn: Connection) -> None:
            conn.execute(
                text(
                    "INSERT INTO rate_buckets (key, tokens, updated_at, paused_until) "
                    "VALUES (:key, :tokens, :now, 0) ON CONFLICT (key) DO NOTHING"
                ),
                {"key": key, "tokens": cap, "now": time.time()},
            )

        self.db.write_sync(ensure)

    def pause(self, key: str, seconds: float) -> None:
        """Pause ``key`` for every process sharing the database."""
        super().pause(key, seconds)
        if key in self._config:
            until = time.time() + seconds
            self.db.submit(
                lambda conn, items: [conn.execute(_PAUSE, {"key": key, "until": until})],
                None,
            )

    async def acquire(self, key: str) -> None:
        """Take a token from the shared bucket, waiting as long as needed."""
        while (wait := self.paused_for(key)) > 0:
            await asyncio.sleep(wait)
        cfg = self._config.get(key)
        if cfg is None:
            return
        rate, burst = cfg
        while True:
            now = time.time()
            params = {"key": key, "now": now, "rate": rate, "burst": burst}

            def take(
                conn: Connection, p: dict[str, Any] = params, now: float = now
            ) -> tuple[bool, float]:
                row = conn.execute(_TAKE, p).first()
                if row is not None:
                    return True, 0.0
                st = conn.execute(_STATE, {"key": p["key"]}).first()
                if st is None:
                    return True, 0.0
                if st.paused_until > now:
                    return False, st.paused_until - now
                have = min(burst, st.tokens + (now - st.updated_at) * rate)
                return False, max(0.001, (1 - have) / rate)

            ok, wait = await self.db.write(take)
            if ok:
                return
            await asyncio.sleep(wait)
