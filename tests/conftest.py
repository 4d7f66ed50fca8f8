"""Shared fixtures: every storage test runs on SQLite AND on a real PostgreSQL server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from crossdock.testing.pgserver import PostgresServer


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer | None]:
    """A PostgreSQL server for the session (started on first use)."""
    if os.environ.get("CROSSDOCK_TEST_PG_URL"):
        yield None
        return
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.stop()


def _pg_url(pg_server: PostgresServer | None) -> str:
    if pg_server is None:
        import uuid

        import psycopg

        base = os.environ["CROSSDOCK_TEST_PG_URL"]
        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return base.rsplit("/", 1)[0] + "/" + name
    return pg_server.create_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'crossdock.db'}"
    return _pg_url(request.getfixturevalue("pg_server"))


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run on asyncio."""
    return "asyncio"
