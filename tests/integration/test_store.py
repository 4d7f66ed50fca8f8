"""The queue's storage promises, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, select, text

from crossdock.store.database import Database
from crossdock.store.deliveries import Settlement, claim, settle
from crossdock.store.events import FlowRoute, NewEvent, record_events, version_key
from crossdock.store.migrate import current_revision, head_revision, upgrade
from crossdock.store.tables import deliveries, events, metadata


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    d = Database(database_url)
    upgrade(d)
    d.start()
    yield d
    d.close()


def ev(i: int, key: str = "r1", version: str | None = None, dedup: str | None = None) -> NewEvent:
    return NewEvent(
        workspace="acme",
        connection="shop",
        type="order.updated",
        record_key=key,
        version=version if version is not None else str(i),
        dedup_key=dedup or f"id:{i}",
        correlation_id=f"c{i}",
        headers_json="{}",
        body_json=f'{{"n": {i}}}',
        routes=[FlowRoute("to-sink")],
    )


def done(c: object, worker: str = "w") -> Settlement:
    return Settlement(
        c.id,
        worker,
        c.workspace,
        c.flow,
        c.record_key,
        "succeeded",
        1,
        0,
        time.time(),  # type: ignore[attr-defined]
        "success",
        None,
    )


def test_migrated_schema_equals_the_declared_schema(db: Database) -> None:
    assert current_revision(db) == head_revision(db)
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_duplicate_event_is_stored_once(db: Database) -> None:
    first = db.write_sync(lambda c: record_events(c, [ev(1), ev(1)]))
    again = db.write_sync(lambda c: record_events(c, [ev(1)]))
    assert [r.duplicate for r in first] == [False, True]
    assert again[0].duplicate and again[0].event_id == first[0].event_id
    n = db.read_sync(lambda c: c.execute(select(events.c.id)).all())
    assert len(n) == 1
    m = db.read_sync(lambda c: c.execute(select(deliveries.c.id)).all())
    assert len(m) == 1


def test_per_record_order_follows_source_version_not_arrival(db: Database) -> None:
    # Version 3 arrives before version 2: version 2 must be delivered first.
    db.write_sync(lambda c: record_events(c, [ev(3, version="3"), ev(2, version="2")]))
    first = db.write_sync(lambda c: claim(c, "w", 10, 30))
    assert [x.version for x in first] == ["2"]
    db.write_sync(lambda c: settle(c, [done(first[0])]))
    second = db.write_sync(lambda c: claim(c, "w", 10, 30))
    assert [x.version for x in second] == ["3"]


def test_exception_holds_back_only_its_own_record(db: Database) -> None:
    db.write_sync(lambda c: record_events(c, [ev(1, "a"), ev(2, "a"), ev(3, "b")]))
    got = db.write_sync(lambda c: claim(c, "w", 10, 30))
    assert sorted(x.record_key for x in got) == ["a", "b"]
    a = next(x for x in got if x.record_key == "a")
    s = done(a)
    s.state = "exception"
    s.exception = ("rejected", "bad", "fix it")
    db.write_sync(lambda c: settle(c, [s]))
    db.write_sync(lambda c: record_events(c, [ev(4, "b", version="9")]))
    nxt = db.write_sync(lambda c: claim(c, "w", 10, 30))
    # b's second delivery is blocked by b's first (still in progress), a's by the exception.
    assert nxt == []


def test_expired_lease_is_claimed_by_another_worker(db: Database) -> None:
    db.write_sync(lambda c: record_events(c, [ev(1)]))
    a = db.write_sync(lambda c: claim(c, "dead", 10, 0.05))
    assert len(a) == 1
    assert db.write_sync(lambda c: claim(c, "alive", 10, 30)) == []
    time.sleep(0.1)
    b = db.write_sync(lambda c: claim(c, "alive", 10, 30))
    assert [x.id for x in b] == [a[0].id]
    # The dead worker's late settlement does not overwrite the new owner's lease.
    db.write_sync(lambda c: settle(c, [done(a[0], "dead")]))
    state = db.read_sync(
        lambda c: c.execute(select(deliveries.c.state, deliveries.c.lease_owner)).one()
    )
    assert tuple(state) == ("in_progress", "alive")


def test_backoff_delays_the_next_claim(db: Database) -> None:
    db.write_sync(lambda c: record_events(c, [ev(1)]))
    (d,) = db.write_sync(lambda c: claim(c, "w", 10, 30))
    s = done(d)
    s.state, s.next_attempt_at = "pending", time.time() + 3600
    db.write_sync(lambda c: settle(c, [s]))
    assert db.write_sync(lambda c: claim(c, "w", 10, 30)) == []


def test_stale_version_is_flagged_when_a_newer_one_succeeded(db: Database) -> None:
    db.write_sync(lambda c: record_events(c, [ev(5, version="5")]))
    (d,) = db.write_sync(lambda c: claim(c, "w", 10, 30))
    db.write_sync(lambda c: settle(c, [done(d)]))
    db.write_sync(lambda c: record_events(c, [ev(4, version="4")]))
    (old,) = db.write_sync(lambda c: claim(c, "w", 10, 30))
    assert old.stale is True


def test_same_version_seen_again_by_another_event_is_stale_but_a_replay_is_not(
    db: Database,
) -> None:
    # The webhook and the backfill poll saw the same order version: two events (no common
    # vendor id), one delivery to make.
    db.write_sync(lambda c: record_events(c, [ev(1, version="7", dedup="hook")]))
    (first,) = db.write_sync(lambda c: claim(c, "w", 10, 30))
    db.write_sync(lambda c: settle(c, [done(first)]))
    db.write_sync(lambda c: record_events(c, [ev(2, version="7", dedup="poll")]))
    (again,) = db.write_sync(lambda c: claim(c, "w", 10, 30))
    assert again.stale is True
    skipped = done(again)
    skipped.state = "skipped"  # as the worker settles a stale delivery
    db.write_sync(lambda c: settle(c, [skipped]))

    # A replay of the first event (a new generation of its delivery) delivers that
    # version again on purpose.
    def new_generation(c: Connection) -> None:
        row = dict(c.execute(select(deliveries).where(deliveries.c.id == first.id)).one()._mapping)
        row.pop("id")
        row.update(generation=1, state="pending", next_attempt_at=0, lease_owner=None)
        c.execute(deliveries.insert().values(**row))

    db.write_sync(new_generation)
    (replayed,) = db.write_sync(lambda c: claim(c, "w", 10, 30))
    assert replayed.stale is False


def test_one_failing_write_does_not_sink_its_group(db: Database) -> None:
    def bad(conn: Connection) -> None:
        conn.execute(text("INSERT INTO no_such_table VALUES (1)"))

    async def main() -> list[object]:
        return await asyncio.gather(
            db.write_batched(record_events, ev(1)),
            db.write(bad),
            db.write_batched(record_events, ev(2, "b")),
            return_exceptions=True,
        )

    results = asyncio.run(main())
    assert isinstance(results[1], Exception)
    assert db.read_sync(lambda c: len(c.execute(select(events.c.id)).all())) == 2


def test_concurrent_claimers_never_share_a_delivery(database_url: str) -> None:
    a, b = Database(database_url), Database(database_url)
    upgrade(a)
    a.start()
    b.start()
    try:
        a.write_sync(lambda c: record_events(c, [ev(i, f"r{i}") for i in range(300)]))

        async def grab(d: Database, w: str) -> list[int]:
            got: list[int] = []
            for _ in range(20):
                got += [x.id for x in await d.write(lambda c: claim(c, w, 10, 30))]
            return got

        async def main() -> tuple[list[int], list[int]]:
            return await asyncio.gather(grab(a, "a"), grab(b, "b"))

        x, y = asyncio.run(main())
        assert len(x) + len(y) == 300
        assert not set(x) & set(y)
    finally:
        a.close()
        b.close()


def test_version_key_sorts_numbers_and_timestamps_in_order() -> None:
    assert version_key("9") < version_key("10")
    assert version_key(2) < version_key("10")
    assert version_key("2026-01-01T10:00:00Z") < version_key("2026-01-01T11:00:00+00:00")
    assert version_key(None) == ""


def test_older_version_waits_for_a_newer_one_in_flight(db: Database) -> None:
    db.write_sync(lambda c: record_events(c, [ev(4, version="4")]))
    (newer,) = db.write_sync(lambda c: claim(c, "w", 10, 30))
    db.write_sync(lambda c: record_events(c, [ev(3, version="3")]))
    # Version 3 must not overtake version 4, which may already be at the destination.
    assert db.write_sync(lambda c: claim(c, "w", 10, 30)) == []
    db.write_sync(lambda c: settle(c, [done(newer)]))
    (older,) = db.write_sync(lambda c: claim(c, "w", 10, 30))
    assert older.version == "3" and older.stale is True
