"""The database handle: engine set-up for SQLite and PostgreSQL and the group-commit writer.

On SQLite, writes awaited from the event loop run their statements *in* the loop
(``inline`` mode) and only the COMMIT (the fsync) goes to a thread. No hand-off of every
job to a writer thread, so no fight for the GIL between the loop and that thread (which
measured as the main cost of ingest), and while one commit is on disk the next group
gathers: group commit without blocking the loop on the disk. On PostgreSQL, and for
blocking callers, a writer thread does the same.

Every write goes through one writer thread per process. The writer drains its queue and
runs everything it found in ONE transaction (group commit), so a thousand webhooks a
second cost a few dozen commits, not a thousand. Jobs of the same *batch function* are
handed to that function together, so it can use one multi-row statement for all of them.
If a group fails, each job is re-run in its own transaction so one bad job cannot sink
the others. On SQLite this is also what keeps writers from fighting over the lock.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

T = TypeVar("T")
BatchFn = Callable[[Connection, list[Any]], Sequence[Any]]

DEFAULT_SQLITE_URL = "sqlite:///.crossdock/crossdock.db"


def normalize_url(url: str, root: Path | None = None) -> str:
    """Return a SQLAlchemy URL: ``postgresql://`` uses psycopg 3, relative SQLite paths
    are resolved against ``root``."""
    u = make_url(url)
    if u.drivername in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+psycopg")
    if u.get_backend_name() == "sqlite" and u.database and u.database != ":memory:":
        path = Path(u.database)
        if not path.is_absolute() and root is not None:
            path = root / path
        path.parent.mkdir(parents=True, exist_ok=True)
        u = u.set(database=str(path))
    return u.render_as_string(hide_password=False)


@dataclass
class _Job:
    batch_fn: BatchFn
    item: Any
    future: Any  # concurrent.futures.Future (writer thread) or asyncio.Future (inline)


def _execute(conn: Connection, jobs: list[_Job]) -> list[tuple[list[_Job], Sequence[Any]]]:
    """Run a group's jobs, each batch function once with all of its items."""
    groups: dict[BatchFn, list[_Job]] = {}
    for job in jobs:
        groups.setdefault(job.batch_fn, []).append(job)
    return [(js, fn(conn, [j.item for j in js])) for fn, js in groups.items()]


def _call_each(conn: Connection, fns: list[Callable[[Connection], Any]]) -> list[Any]:
    return [fn(conn) for fn in fns]


class Database:
    """One database: an engine for reads and a single writer thread for writes."""

    def __init__(self, url: str, *, root: Path | None = None, max_batch: int = 500) -> None:
        self.url = normalize_url(url, root)
        self.dialect = make_url(self.url).get_backend_name()
        self.is_sqlite = self.dialect == "sqlite"
        self.max_batch = max_batch
        kwargs: dict[str, Any] = {}
        if self.is_sqlite:
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
            kwargs["pool_size"] = 8
        else:
            kwargs["pool_size"] = 8
            kwargs["max_overflow"] = 8
            kwargs["pool_pre_ping"] = True
        self.engine: Engine = create_engine(self.url, **kwargs)
        self._write_engine: Engine = self.engine
        if self.is_sqlite:
            # The writer takes SQLite's write lock when its transaction begins (BEGIN
            # IMMEDIATE), so a claim's SELECT and UPDATE see the same state even when
            # another process writes the same file. Readers use deferred transactions.
            self._write_engine = create_engine(
                self.url, connect_args=kwargs["connect_args"], pool_size=2
            )
            _sqlite_setup(self.engine, "BEGIN")
            _sqlite_setup(self._write_engine, "BEGIN IMMEDIATE")

        inline_default = "1" if self.is_sqlite else "0"
        self.inline = os.environ.get("CROSSDOCK_INLINE_WRITES", inline_default) != "0"
        self._pending: list[_Job] = []
        self._flushing = False
        self._flush_task: asyncio.Task[None] | None = None
        self._inline_conn: Connection | None = None
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.commits = 0
        self.jobs = 0

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        """Start the writer thread (idempotent)."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._writer_loop, name="crossdock-writer", daemon=True
                )
                self._thread.start()

    def close(self) -> None:
        """Stop the writer after the queued jobs and dispose the engine."""
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=30)
        self._thread = None
        if self._inline_conn is not None:
            self._inline_conn.close()
            self._inline_conn = None
        self.engine.dispose()
        self._write_engine.dispose()

    # -- writes ----------------------------------------------------------------------
    def submit(self, batch_fn: BatchFn, item: Any) -> concurrent.futures.Future[Any]:
        """Queue ``item`` for ``batch_fn``; the future holds ``batch_fn``'s result for it."""
        if self._thread is None:
            self.start()
        fut: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._queue.put(_Job(batch_fn, item, fut))
        return fut

    async def write_batched(self, batch_fn: BatchFn, item: Any) -> Any:
        """Run ``batch_fn(conn, [.., item, ..])`` in the next group commit; await its result."""
        if not self.inline:
            return await asyncio.wrap_future(self.submit(batch_fn, item))
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        self._pending.append(_Job(batch_fn, item, fut))
        if not self._flushing:
            self._flushing = True
            self._flush_task = loop.create_task(self._flush_inline())
        return await fut

    async def write(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn(conn)`` in the writer's next transaction and await its result."""
        result: T = await self.write_batched(_call_each, fn)
        return result

    async def _flush_inline(self) -> None:
        """Commit what was queued, group after group, until the queue is empty."""
        try:
            while self._pending:
                jobs, self._pending = (
                    self._pending[: self.max_batch],
                    self._pending[self.max_batch :],
                )
                if self._inline_conn is None:
                    self._inline_conn = self._write_engine.connect()
                conn = self._inline_conn
                trans = conn.begin()
                try:
                    results = _execute(conn, jobs)
                    await asyncio.to_thread(trans.commit)
                except Exception:
                    if trans.is_active:
                        trans.rollback()
                    for job in jobs:  # isolate the bad job: each in its own transaction
                        self._run_one(conn, job)
                    continue
                self._done(jobs, results)
        finally:
            self._flushing = False

    def write_sync(self, fn: Callable[[Connection], T]) -> T:
        """Blocking form of :meth:`write` for the CLI and tests."""
        result: T = self.submit(_call_each, fn).result()
        return result

    # -- reads -----------------------------------------------------------------------
    def read_sync(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn(conn)`` on a pooled read connection."""
        with self.engine.connect() as conn:
            return fn(conn)

    async def read(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn(conn)`` on a pooled read connection in a worker thread."""
        return await asyncio.to_thread(self.read_sync, fn)

    # -- the writer ------------------------------------------------------------------
    def _writer_loop(self) -> None:
        conn = self._write_engine.connect()
        try:
            while True:
                job = self._queue.get()
                if job is None:
                    return
                jobs = [job]
                stop = False
                while len(jobs) < self.max_batch:
                    try:
                        nxt = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is None:
                        stop = True
                        break
                    jobs.append(nxt)
                try:
                    self._run_group(conn, jobs)
                except Exception:  # pragma: no cover - connection broken: start afresh
                    conn.close()
                    conn = self._write_engine.connect()
                    self._run_group(conn, jobs)
                if stop:
                    return
        finally:
            conn.close()

    def _run_group(self, conn: Connection, jobs: list[_Job]) -> None:
        try:
            with conn.begin():
                results = _execute(conn, jobs)
        except Exception:
            # Isolate the bad job: each one again, in its own transaction.
            for job in jobs:
                self._run_one(conn, job)
            return
        self._done(jobs, results)

    def _done(self, jobs: list[_Job], results: list[tuple[list[_Job], Sequence[Any]]]) -> None:
        """Count a committed group and hand each job its result."""
        self.commits += 1
        self.jobs += len(jobs)
        for js, res in results:
            for j, r in zip(js, res, strict=True):
                if not j.future.cancelled():
                    j.future.set_result(r)

    def _run_one(self, conn: Connection, job: _Job) -> None:
        try:
            with conn.begin():
                (res,) = job.batch_fn(conn, [job.item])
        except Exception as exc:
            if not job.future.cancelled():
                job.future.set_exception(exc)
            return
        self.commits += 1
        self.jobs += 1
        if not job.future.cancelled():
            job.future.set_result(res)


def _sqlite_setup(engine: Engine, begin: str) -> None:
    """Pragmas for every SQLite connection, and explicit transaction control: the stdlib
    driver would otherwise open transactions late (only before a data change)."""
    synchronous = os.environ.get("CROSSDOCK_SQLITE_SYNCHRONOUS", "FULL").upper()
    if synchronous not in ("FULL", "NORMAL", "EXTRA"):
        synchronous = "FULL"

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql(begin)


def database_url_from_env(default: str | None = None) -> str:
    """The database URL: ``CROSSDOCK_DATABASE_URL`` or the given default (embedded SQLite)."""
    return os.environ.get("CROSSDOCK_DATABASE_URL") or default or DEFAULT_SQLITE_URL
