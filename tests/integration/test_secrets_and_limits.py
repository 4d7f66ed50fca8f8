"""Secrets at rest rotate to a new key; one rate limit per credential, shared by every
process on PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from crossdock.pipeline.ratelimit import RateLimiter, SharedRateLimiter
from crossdock.security.crypto import SecretBox, generate_key
from crossdock.store.database import Database
from crossdock.store.migrate import upgrade
from crossdock.store.secrets import rotate_all
from crossdock.store.tables import connections


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    d = Database(database_url)
    upgrade(d)
    d.start()
    yield d
    d.close()


def test_rotation_reencrypts_credentials_under_the_new_key(db: Database) -> None:
    old_key = generate_key()
    old = SecretBox([old_key])
    token = old.encrypt_json({"/outbound/auth/token": "s3cret-value"})
    db.write_sync(
        lambda c: c.execute(
            connections.insert().values(
                workspace="acme",
                name="sink",
                connector="http",
                settings="{}",
                secrets=token,
                source="api",
                updated_at=time.time(),
            )
        )
    )
    assert "s3cret-value" not in token
    new_key = generate_key()
    both = SecretBox([new_key, old_key])
    assert rotate_all(db, both) == (1, 1)
    stored = db.read_sync(lambda c: c.execute(select(connections.c.secrets)).scalar_one())
    assert SecretBox([new_key]).decrypt_json(stored) == {"/outbound/auth/token": "s3cret-value"}
    assert rotate_all(db, both) == (0, 1)


def test_one_rate_limit_is_shared_by_every_process(db: Database) -> None:
    if db.is_sqlite:
        pytest.skip("on SQLite one process runs the worker: the limiter is in memory")
    other = Database(db.url)
    other.start()
    try:
        a, b = SharedRateLimiter(db), SharedRateLimiter(other)
        for lim in (a, b):
            lim.configure("acme/sink", per_second=20, burst=5)

        async def take(lim: RateLimiter, n: int) -> None:
            for _ in range(n):
                await lim.acquire("acme/sink")

        async def main() -> float:
            t0 = time.monotonic()
            await asyncio.gather(take(a, 15), take(b, 15))
            return time.monotonic() - t0

        elapsed = asyncio.run(main())
        # 30 calls at 20/s with a burst of 5 need at least (30 - 5) / 20 = 1.25 s in total,
        # whichever process makes them.
        assert elapsed >= 1.1, elapsed
    finally:
        other.close()


def test_a_429_pause_holds_back_every_flow_on_the_credential() -> None:
    lim = RateLimiter()
    lim.configure("acme/sink", per_second=1000, burst=10)
    lim.pause("acme/sink", 0.3)

    async def main() -> float:
        t0 = time.monotonic()
        await lim.acquire("acme/sink")
        return time.monotonic() - t0

    assert asyncio.run(main()) >= 0.28
